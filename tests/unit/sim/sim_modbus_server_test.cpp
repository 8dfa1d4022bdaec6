// ModbusServer over real loopback sockets: framing, function codes, exceptions, faults and the
// function-code counts. Every server binds port 0 and reads its port back.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <modbus.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "collectors/modbus/codec.h"
#include "sim/modbus_server.h"
#include "sim/unique_fd.h"

namespace facility::sim {
namespace {

using modbus::RegisterKind;
using Bytes = std::vector<std::uint8_t>;
using namespace std::chrono_literals;

// A bare Modbus TCP client on a raw socket, so tests can send exactly the bytes they want.
class RawClient {
 public:
  explicit RawClient(std::uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    const int one = 1;
    ::setsockopt(fd_.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  bool connected() const { return connected_; }

  void send(const Bytes& b) {
    ASSERT_EQ(::send(fd_.get(), b.data(), b.size(), MSG_NOSIGNAL), static_cast<ssize_t>(b.size()));
  }

  enum class Result { kFrame, kTimeout, kClosed };
  // Reads one whole MBAP frame (header + PDU) into *frame.
  Result read_frame(Bytes* frame, std::chrono::milliseconds timeout = 2000ms) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      if (buf_.size() >= 6) {
        const std::size_t need = 6 + static_cast<std::size_t>((buf_[4] << 8) | buf_[5]);
        if (buf_.size() >= need) {
          frame->assign(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(need));
          buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(need));
          return Result::kFrame;
        }
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() < 0) return Result::kTimeout;  // 0: look once without waiting
      pollfd p{fd_.get(), POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return Result::kTimeout;
      std::uint8_t tmp[512];
      const ssize_t n = ::recv(fd_.get(), tmp, sizeof tmp, 0);
      if (n <= 0) return Result::kClosed;
      buf_.insert(buf_.end(), tmp, tmp + n);
    }
  }

  // Sends one request and returns the reply's PDU (empty on timeout or close).
  Bytes request(std::uint8_t unit, const Bytes& pdu, std::uint16_t tid = 0x1234) {
    send(frame(tid, unit, pdu));
    Bytes f;
    if (read_frame(&f) != Result::kFrame) return {};
    EXPECT_EQ(f[0], tid >> 8);
    EXPECT_EQ(f[1], tid & 0xFF);
    EXPECT_EQ(f[2], 0);
    EXPECT_EQ(f[3], 0);
    EXPECT_EQ(f[6], unit);
    return Bytes(f.begin() + 7, f.end());
  }

  static Bytes frame(std::uint16_t tid, std::uint8_t unit, const Bytes& pdu,
                     std::uint16_t protocol = 0) {
    const auto len = static_cast<std::uint16_t>(pdu.size() + 1);
    Bytes b{static_cast<std::uint8_t>(tid >> 8), static_cast<std::uint8_t>(tid),
            static_cast<std::uint8_t>(protocol >> 8), static_cast<std::uint8_t>(protocol),
            static_cast<std::uint8_t>(len >> 8), static_cast<std::uint8_t>(len), unit};
    b.insert(b.end(), pdu.begin(), pdu.end());
    return b;
  }

 private:
  UniqueFd fd_;
  bool connected_ = false;
  Bytes buf_;
};

Bytes read_pdu(std::uint8_t fc, std::uint16_t addr, std::uint16_t qty) {
  return {fc, static_cast<std::uint8_t>(addr >> 8), static_cast<std::uint8_t>(addr),
          static_cast<std::uint8_t>(qty >> 8), static_cast<std::uint8_t>(qty)};
}

Bytes exception_pdu(std::uint8_t fc, std::uint8_t code) {
  return {static_cast<std::uint8_t>(fc | 0x80), code};
}

modbus::PointCodec codec(RegisterKind kind, std::uint16_t addr, modbus::DataType type,
                         modbus::WordOrder order = modbus::WordOrder::kABCD, double scale = 1) {
  modbus::PointSpec s;
  s.name = "p";
  s.kind = kind;
  s.address = addr;
  s.type = type;
  s.order = order;
  s.scale = scale;
  return modbus::PointCodec(s);
}

class ModbusServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    port_ = server_.listen("127.0.0.1", 0);
    ASSERT_NE(port_, 0);
    UnitImage img;
    // Holding 0..9: a float32 CDAB at 4..5, a uint32 at 0..1 (scale 0.01), a gap at 2..3 (reads 0).
    img.table(RegisterKind::kHolding).start = 0;
    img.table(RegisterKind::kHolding).values.assign(10, 0);
    put(img, codec(RegisterKind::kHolding, 0, modbus::DataType::kUInt32, modbus::WordOrder::kABCD, 0.01), 123456.78);
    put(img, codec(RegisterKind::kHolding, 4, modbus::DataType::kFloat32, modbus::WordOrder::kCDAB), 229.5);
    img.table(RegisterKind::kHolding).values[9] = 0xBEEF;
    // Input 100..104.
    img.table(RegisterKind::kInput).start = 100;
    img.table(RegisterKind::kInput).values = {1, 2, 3, 4, 0xFFFF};
    // Coils 0..19: every third set. Discrete inputs 5..7: 1,0,1.
    auto& coils = img.table(RegisterKind::kCoil);
    for (int i = 0; i < 20; ++i) coils.values.push_back(i % 3 == 0 ? 1 : 0);
    img.table(RegisterKind::kDiscreteInput).start = 5;
    img.table(RegisterKind::kDiscreteInput).values = {1, 0, 1};
    image_ = img;
    server_.set_unit(port_, 1, img);
    server_.set_unit(port_, 2, img);
    server_.start();
  }

  static void put(UnitImage& img, const modbus::PointCodec& c, double v) {
    const auto words = c.encode_registers(v);
    auto& t = img.table(c.spec().kind);
    for (std::size_t i = 0; i < words.size(); ++i) t.values[c.spec().address - t.start + i] = words[i];
  }

  ModbusServer server_;
  std::uint16_t port_ = 0;
  UnitImage image_;
};

TEST_F(ModbusServerTest, ReadsEachFunctionCodeWithLibmodbus) {
  std::unique_ptr<modbus_t, void (*)(modbus_t*)> ctx(modbus_new_tcp("127.0.0.1", port_),
                                                     modbus_free);
  ASSERT_TRUE(ctx);
  ASSERT_EQ(modbus_connect(ctx.get()), 0) << modbus_strerror(errno);
  modbus_set_slave(ctx.get(), 1);

  std::uint16_t regs[10];
  ASSERT_EQ(modbus_read_registers(ctx.get(), 0, 10, regs), 10);
  auto u32 = codec(RegisterKind::kHolding, 0, modbus::DataType::kUInt32, modbus::WordOrder::kABCD, 0.01);
  EXPECT_NEAR(*u32.decode_registers(std::span(regs, 2)), 123456.78, 1e-6);
  EXPECT_EQ(regs[2], 0);  // gap inside the mapped range reads 0
  EXPECT_EQ(regs[3], 0);
  auto f32 = codec(RegisterKind::kHolding, 4, modbus::DataType::kFloat32, modbus::WordOrder::kCDAB);
  EXPECT_FLOAT_EQ(static_cast<float>(*f32.decode_registers(std::span(regs + 4, 2))), 229.5f);
  EXPECT_EQ(regs[9], 0xBEEF);

  std::uint16_t in[5];
  ASSERT_EQ(modbus_read_input_registers(ctx.get(), 100, 5, in), 5);
  EXPECT_EQ(in[0], 1);
  EXPECT_EQ(in[4], 0xFFFF);

  std::uint8_t bits[20];
  ASSERT_EQ(modbus_read_bits(ctx.get(), 0, 20, bits), 20);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(bits[i], i % 3 == 0 ? 1 : 0) << i;
  ASSERT_EQ(modbus_read_input_bits(ctx.get(), 5, 3, bits), 3);
  EXPECT_EQ(bits[0], 1);
  EXPECT_EQ(bits[1], 0);
  EXPECT_EQ(bits[2], 1);
  modbus_close(ctx.get());
}

TEST_F(ModbusServerTest, BitRepliesArePackedLsbFirst) {
  RawClient c(port_);
  ASSERT_TRUE(c.connected());
  // Coils 0..9: 1,0,0,1,0,0,1,0 | 0,1 -> 0x49, 0x02.
  EXPECT_EQ(c.request(1, read_pdu(1, 0, 10)), (Bytes{1, 2, 0x49, 0x02}));
  EXPECT_EQ(c.request(1, read_pdu(2, 5, 3)), (Bytes{2, 1, 0x05}));
  EXPECT_EQ(c.request(1, read_pdu(4, 103, 2)), (Bytes{4, 4, 0x00, 0x04, 0xFF, 0xFF}));
}

TEST_F(ModbusServerTest, WriteFunctionCodesGetIllegalFunction) {
  RawClient c(port_);
  // FC 6: write single register; FC 16: write multiple registers; FC 43: device id; FC 5.
  EXPECT_EQ(c.request(1, {6, 0, 1, 0, 42}), exception_pdu(6, 1));
  EXPECT_EQ(c.request(1, {16, 0, 0, 0, 1, 2, 0, 7}), exception_pdu(16, 1));
  EXPECT_EQ(c.request(1, {5, 0, 0, 0xFF, 0}), exception_pdu(5, 1));
  EXPECT_EQ(c.request(1, {43, 14, 1, 0}), exception_pdu(43, 1));
  // Nothing was written.
  EXPECT_EQ(c.request(1, read_pdu(3, 1, 1)), (Bytes{3, 2, static_cast<std::uint8_t>(image_.table(RegisterKind::kHolding).values[1] >> 8),
                                                   static_cast<std::uint8_t>(image_.table(RegisterKind::kHolding).values[1])}));
}

TEST_F(ModbusServerTest, OutOfRangeAddressesGetIllegalDataAddress) {
  RawClient c(port_);
  EXPECT_EQ(c.request(1, read_pdu(3, 10, 1)), exception_pdu(3, 2));   // just past the end
  EXPECT_EQ(c.request(1, read_pdu(3, 8, 5)), exception_pdu(3, 2));    // straddles the end
  EXPECT_EQ(c.request(1, read_pdu(4, 99, 2)), exception_pdu(4, 2));   // starts before
  EXPECT_EQ(c.request(1, read_pdu(1, 19, 2)), exception_pdu(1, 2));
  EXPECT_EQ(c.request(1, read_pdu(2, 0, 1)), exception_pdu(2, 2));
  EXPECT_EQ(c.request(1, read_pdu(3, 0xFFFF, 2)), exception_pdu(3, 2));  // wraps the space
  EXPECT_EQ(c.request(1, read_pdu(3, 9, 1)).size(), 4u);  // the last mapped register is fine
}

TEST_F(ModbusServerTest, BadQuantitiesGetIllegalDataValue) {
  RawClient c(port_);
  EXPECT_EQ(c.request(1, read_pdu(3, 0, 126)), exception_pdu(3, 3));
  EXPECT_EQ(c.request(1, read_pdu(4, 100, 0)), exception_pdu(4, 3));
  EXPECT_EQ(c.request(1, read_pdu(1, 0, 2001)), exception_pdu(1, 3));
  EXPECT_EQ(c.request(1, {3, 0, 0}), exception_pdu(3, 3));  // truncated read request
}

TEST_F(ModbusServerTest, DeviceQuirkSmallerMaxRegistersPerRead) {
  UnitImage img;
  img.max_registers_per_read = 64;
  img.table(RegisterKind::kInput).values.assign(200, 7);
  server_.set_unit(port_, 9, img);
  RawClient c(port_);
  EXPECT_EQ(c.request(9, read_pdu(4, 0, 64)).size(), 2u + 128u);
  EXPECT_EQ(c.request(9, read_pdu(4, 0, 65)), exception_pdu(4, 3));
}

TEST_F(ModbusServerTest, UnknownUnitGetsGatewayTargetFailed) {
  RawClient c(port_);
  EXPECT_EQ(c.request(77, read_pdu(3, 0, 1)), exception_pdu(3, 0x0B));
}

TEST_F(ModbusServerTest, BusyFaultAnswersException6) {
  Fault f;
  f.busy = true;
  server_.set_fault(port_, 1, f);
  RawClient c(port_);
  EXPECT_EQ(c.request(1, read_pdu(3, 0, 2)), exception_pdu(3, 6));
  EXPECT_EQ(c.request(2, read_pdu(3, 0, 2)).size(), 6u);  // the other unit is fine
  server_.set_fault(port_, 1, Fault{});
  EXPECT_EQ(c.request(1, read_pdu(3, 0, 2)).size(), 6u);  // cleared
  EXPECT_EQ(server_.stats().exceptions.at(6), 1u);
}

TEST_F(ModbusServerTest, SilentFaultNeverAnswers) {
  Fault f;
  f.silent = true;
  server_.set_fault(port_, 1, f);
  RawClient c(port_);
  c.send(RawClient::frame(1, 1, read_pdu(3, 0, 1)));
  Bytes frame;
  EXPECT_EQ(c.read_frame(&frame, 300ms), RawClient::Result::kTimeout);
  // The connection is still usable for another unit.
  EXPECT_EQ(c.request(2, read_pdu(3, 0, 1)).size(), 4u);
  EXPECT_EQ(server_.stats().dropped, 1u);
}

TEST_F(ModbusServerTest, CloseFaultDropsTheConnection) {
  Fault f;
  f.close = true;
  server_.set_fault(port_, 1, f);
  RawClient c(port_);
  c.send(RawClient::frame(1, 1, read_pdu(3, 0, 1)));
  Bytes frame;
  EXPECT_EQ(c.read_frame(&frame), RawClient::Result::kClosed);
}

TEST_F(ModbusServerTest, DelayFaultDelaysOnlyItsUnit) {
  Fault f;
  f.delay = 1500ms;
  server_.set_fault(port_, 1, f);
  RawClient slow(port_), fast(port_);
  const auto t0 = std::chrono::steady_clock::now();
  slow.send(RawClient::frame(1, 1, read_pdu(3, 0, 1)));
  // While unit 1's reply is pending, unit 2 on another connection answers: its reply comes
  // first (an order, not a duration; only a stall of the whole 1.5 s could reverse it).
  EXPECT_EQ(fast.request(2, read_pdu(3, 0, 1)).size(), 4u);
  Bytes frame;
  EXPECT_EQ(slow.read_frame(&frame, 0ms), RawClient::Result::kTimeout);
  ASSERT_EQ(slow.read_frame(&frame, 5000ms), RawClient::Result::kFrame);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 1500ms);  // a lower bound: load-proof
  EXPECT_EQ(frame.size(), 7u + 4u);
}

TEST_F(ModbusServerTest, IllegalAddressFaultHitsReadsCoveringIt) {
  Fault f;
  f.illegal_addresses = {5};
  server_.set_fault(port_, 1, f);
  RawClient c(port_);
  EXPECT_EQ(c.request(1, read_pdu(3, 0, 10)), exception_pdu(3, 2));
  EXPECT_EQ(c.request(1, read_pdu(3, 5, 1)), exception_pdu(3, 2));
  EXPECT_EQ(c.request(1, read_pdu(3, 0, 5)).size(), 2u + 10u);  // ends just before it
  EXPECT_EQ(c.request(1, read_pdu(3, 6, 4)).size(), 2u + 8u);   // starts just after it
}

TEST_F(ModbusServerTest, NonZeroProtocolIdClosesTheConnection) {
  RawClient c(port_);
  c.send(RawClient::frame(1, 1, read_pdu(3, 0, 1), /*protocol=*/1));
  Bytes frame;
  EXPECT_EQ(c.read_frame(&frame), RawClient::Result::kClosed);
  EXPECT_EQ(server_.stats().protocol_errors, 1u);
}

TEST_F(ModbusServerTest, BadLengthClosesTheConnection) {
  RawClient c(port_);
  c.send({0, 1, 0, 0, 0x01, 0x00, 1, 3, 0, 0, 0, 1});  // length 256 > 254
  Bytes frame;
  EXPECT_EQ(c.read_frame(&frame), RawClient::Result::kClosed);
  RawClient d(port_);
  d.send({0, 1, 0, 0, 0x00, 0x01, 1});  // length 1: no function code
  EXPECT_EQ(d.read_frame(&frame), RawClient::Result::kClosed);
}

TEST_F(ModbusServerTest, RequestSentByteByByteIsAnswered) {
  RawClient c(port_);
  const Bytes req = RawClient::frame(0xABCD, 1, read_pdu(4, 100, 3));
  for (std::uint8_t b : req) {
    c.send({b});
    std::this_thread::sleep_for(2ms);  // make each byte its own segment
  }
  Bytes frame;
  ASSERT_EQ(c.read_frame(&frame), RawClient::Result::kFrame);
  EXPECT_EQ(frame, (Bytes{0xAB, 0xCD, 0, 0, 0, 9, 1, 4, 6, 0, 1, 0, 2, 0, 3}));
}

TEST_F(ModbusServerTest, SeveralFramesInOneSegmentAreAnsweredInOrder) {
  RawClient c(port_);
  Bytes burst;
  for (std::uint16_t tid = 1; tid <= 5; ++tid) {
    const Bytes f = RawClient::frame(tid, 1, read_pdu(4, 100, tid));
    burst.insert(burst.end(), f.begin(), f.end());
  }
  // Plus the first half of a sixth frame, completed later.
  const Bytes sixth = RawClient::frame(6, 2, read_pdu(3, 9, 1));
  burst.insert(burst.end(), sixth.begin(), sixth.begin() + 5);
  c.send(burst);
  for (std::uint16_t tid = 1; tid <= 5; ++tid) {
    Bytes frame;
    ASSERT_EQ(c.read_frame(&frame), RawClient::Result::kFrame);
    EXPECT_EQ(frame[1], tid);
    EXPECT_EQ(frame[8], 2 * tid);  // byte count
  }
  c.send(Bytes(sixth.begin() + 5, sixth.end()));
  Bytes frame;
  ASSERT_EQ(c.read_frame(&frame), RawClient::Result::kFrame);
  EXPECT_EQ(frame, (Bytes{0, 6, 0, 0, 0, 5, 2, 3, 2, 0xBE, 0xEF}));
}

TEST_F(ModbusServerTest, CountsEveryFunctionCodeReceived) {
  RawClient c(port_);
  c.request(1, read_pdu(3, 0, 1));
  c.request(1, read_pdu(3, 0, 1));
  c.request(1, read_pdu(4, 100, 1));
  c.request(2, read_pdu(1, 0, 1));
  c.request(1, {6, 0, 1, 0, 42});
  c.request(55, read_pdu(2, 5, 1));  // unknown unit: still counted
  const auto all = server_.function_code_counts();
  EXPECT_EQ(all, (std::map<int, std::uint64_t>{{1, 1}, {2, 1}, {3, 2}, {4, 1}, {6, 1}}));
  EXPECT_EQ(server_.function_code_counts(port_, 1),
            (std::map<int, std::uint64_t>{{3, 2}, {4, 1}, {6, 1}}));
  EXPECT_EQ(server_.function_code_counts(port_, 2), (std::map<int, std::uint64_t>{{1, 1}}));
  const ServerStats st = server_.stats();
  EXPECT_EQ(st.replies, 4u);
  EXPECT_EQ(st.exceptions.at(1), 1u);
  EXPECT_EQ(st.exceptions.at(0x0B), 1u);
}

TEST_F(ModbusServerTest, UnitImageUpdatesAreSeenByClients) {
  RawClient c(port_);
  EXPECT_EQ(c.request(1, read_pdu(4, 100, 1)), (Bytes{4, 2, 0, 1}));
  UnitImage img = image_;
  img.table(RegisterKind::kInput).values[0] = 0x0102;
  server_.set_unit(port_, 1, img);
  EXPECT_EQ(c.request(1, read_pdu(4, 100, 1)), (Bytes{4, 2, 1, 2}));
}

// More connections than select() could handle (fd >= 1024), all served by the one loop thread.
TEST_F(ModbusServerTest, ServesMoreThan1024Connections) {
  rlimit rl{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
  constexpr int kClients = 1100;
  if (rl.rlim_cur < 2 * kClients + 100) GTEST_SKIP() << "RLIMIT_NOFILE too low";
  std::vector<std::unique_ptr<RawClient>> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(std::make_unique<RawClient>(port_));
    ASSERT_TRUE(clients.back()->connected());
  }
  for (auto& c : clients) c->send(RawClient::frame(7, 1, read_pdu(4, 100, 1)));
  int ok = 0;
  for (auto& c : clients) {
    Bytes f;
    if (c->read_frame(&f) == RawClient::Result::kFrame && f.size() == 11) ++ok;
  }
  EXPECT_EQ(ok, kClients);
  EXPECT_EQ(server_.open_connections(), static_cast<std::size_t>(kClients));
}

TEST(ModbusServerListen, RejectsNonIpv4HostAndReportsBusyPort) {
  ModbusServer a;
  EXPECT_THROW(a.listen("not-an-ip", 0), std::system_error);
  const std::uint16_t port = a.listen("127.0.0.1", 0);
  ModbusServer b;
  try {
    b.listen("127.0.0.1", port);
    FAIL() << "bound a port already in use";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), std::errc::address_in_use);
    EXPECT_NE(std::string(e.what()).find(std::to_string(port)), std::string::npos);
  }
}

TEST(ModbusServerLifecycle, StopIsIdempotentAndClosesConnections) {
  auto s = std::make_unique<ModbusServer>();
  const std::uint16_t port = s->listen("127.0.0.1", 0);
  s->set_unit(port, 1, UnitImage{});
  s->start();
  RawClient c(port);
  ASSERT_TRUE(c.connected());
  c.send(RawClient::frame(1, 1, read_pdu(3, 0, 1)));
  Bytes f;
  ASSERT_EQ(c.read_frame(&f), RawClient::Result::kFrame);  // empty image: exception 2
  EXPECT_EQ(Bytes(f.begin() + 7, f.end()), exception_pdu(3, 2));
  s->stop();
  s->stop();
  EXPECT_EQ(c.read_frame(&f), RawClient::Result::kClosed);
  s.reset();
}

TEST(ParseFault, AcceptsEveryKindAndCombinations) {
  Fault f;
  EXPECT_FALSE(parse_fault("delay:500ms,busy", f));
  EXPECT_EQ(f.delay, 500ms);
  EXPECT_TRUE(f.busy);
  EXPECT_FALSE(parse_fault("illegal:0x10, illegal:3", f));
  EXPECT_EQ(f.illegal_addresses, (std::set<std::uint16_t>{3, 16}));
  EXPECT_FALSE(parse_fault("silent", f));
  EXPECT_FALSE(parse_fault("close", f));
  EXPECT_TRUE(f.silent && f.close);
  EXPECT_EQ(f.describe(), "close,silent,busy,delay:500ms,illegal:3,illegal:16");
  EXPECT_FALSE(parse_fault("none", f));
  EXPECT_TRUE(f.empty());
  EXPECT_FALSE(parse_fault("delay:2s", f));
  EXPECT_EQ(f.delay, 2000ms);
  EXPECT_FALSE(parse_fault("delay:250", f));
  EXPECT_EQ(f.delay, 250ms);
  EXPECT_FALSE(parse_fault("trailing:6,duplicate", f));
  EXPECT_EQ(f.trailing, 6);
  EXPECT_TRUE(f.duplicate);
  EXPECT_FALSE(f.empty());
  EXPECT_EQ(f.describe(), "delay:250ms,trailing:6,duplicate");
  EXPECT_FALSE(parse_fault("none", f));
  EXPECT_FALSE(parse_fault("on_battery", f));
  EXPECT_TRUE(f.on_battery);
  EXPECT_FALSE(f.empty());
  EXPECT_EQ(f.describe(), "on_battery");
  EXPECT_TRUE(parse_fault("trailing:0", f));
  EXPECT_TRUE(parse_fault("trailing:251", f));
  EXPECT_TRUE(parse_fault("trailing:x", f));
}

TEST(ParseFault, RejectsGarbageWithAHelpfulMessage) {
  Fault f;
  auto err = parse_fault("slow", f);
  ASSERT_TRUE(err);
  EXPECT_NE(err->find("silent, busy, close"), std::string::npos);
  EXPECT_TRUE(parse_fault("delay:soon", f));
  EXPECT_TRUE(parse_fault("illegal:70000", f));
  EXPECT_TRUE(parse_fault("illegal:", f));
  EXPECT_TRUE(parse_fault("", f));
}

}  // namespace
}  // namespace facility::sim
