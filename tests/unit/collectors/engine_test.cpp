// PollEngine against the simulator's ModbusServer on loopback: decoding, RTU over TCP, fault
// isolation (silent, busy, illegal address inside a batch, closing devices) while healthy
// devices keep their schedule, more than 1,024 connections, and only function codes 1-4 sent.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include "collectors/modbus/engine.h"
#include "collectors/unique_fd.h"
#include "sim/modbus_server.h"

namespace facility::modbus {
namespace {

using namespace std::chrono_literals;
using sim::Fault;
using sim::ModbusServer;
using sim::UnitImage;

class Recorder : public PollObserver {
 public:
  struct Device {
    int ok = 0, failed = 0;
    std::uint64_t overruns = 0;
    std::chrono::system_clock::time_point first_ok_at;
    std::map<std::string, int> results;  // request result label -> count
    PollResult last_ok;
    std::string last_error;
  };
  void on_result(PollResult&& r) override {
    std::lock_guard l(mu_);
    Device& d = devs_[r.device_index];
    if (r.ok) {
      if (++d.ok == 1) d.first_ok_at = r.completed_at;
      d.last_ok = std::move(r);
    } else {
      ++d.failed;
      d.last_error = r.error;
    }
    cv_.notify_all();
  }
  void on_request(const RequestEvent& e) override {
    std::lock_guard l(mu_);
    std::string label = to_string(e.result);
    if (e.result == RequestResult::kException) label += "_" + std::to_string(e.exception_code);
    ++devs_[e.device_index].results[label];
  }
  void on_overrun(std::size_t i) override {
    std::lock_guard l(mu_);
    ++devs_[i].overruns;
  }
  void on_connection(std::size_t, bool up) override { connections_ += up ? 1 : 0; }
  void on_discarded(std::size_t endpoint, std::size_t bytes) override {
    std::lock_guard l(mu_);
    discarded_[endpoint] += bytes;
  }
  std::map<std::size_t, std::size_t> discarded() {
    std::lock_guard l(mu_);
    return discarded_;
  }

  // Waits until pred(devices) holds; false after the deadline.
  bool wait(const std::function<bool(const std::map<std::size_t, Device>&)>& pred,
            std::chrono::seconds deadline = 30s) {
    std::unique_lock l(mu_);
    return cv_.wait_for(l, deadline, [&] { return pred(devs_); });
  }
  std::map<std::size_t, Device> snapshot() {
    std::lock_guard l(mu_);
    return devs_;
  }
  std::atomic<int> connections_{0};

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::size_t, Device> devs_;
  std::map<std::size_t, std::size_t> discarded_;  // by endpoint
};

UnitImage counting_image(int n) {
  UnitImage img;
  auto& t = img.table(RegisterKind::kHolding);
  t.start = 0;
  for (int i = 0; i < n; ++i) t.values.push_back(static_cast<std::uint16_t>(1000 + i));
  return img;
}

DeviceSpec device(const std::string& id, int unit, int npoints,
                  std::chrono::milliseconds interval = 500ms) {
  DeviceSpec s;
  s.id = id;
  s.unit = unit;
  s.interval = interval;
  s.timeout = 1000ms;  // not the subject unless a test says so: generous for a loaded machine
  s.retries = 0;
  s.busy_retries = 1;
  s.busy_retry_delay = 20ms;
  s.backoff_max = 2000ms;
  for (int i = 0; i < npoints; ++i) {
    PointSpec p;
    p.name = "r" + std::to_string(i);
    p.kind = RegisterKind::kHolding;
    p.address = static_cast<std::uint16_t>(i);
    p.type = DataType::kUInt16;
    s.points.push_back(p);
  }
  return s;
}

EngineEndpoint endpoint(std::size_t index, std::uint16_t port, bool rtu = false) {
  EngineEndpoint e;
  e.index = index;
  e.spec.key = "tcp://127.0.0.1:" + std::to_string(port);
  e.spec.framing = rtu ? Framing::kRtu : Framing::kTcp;
  e.spec.host = "127.0.0.1";
  e.spec.port = port;
  e.spec.backoff_initial = 100ms;
  e.spec.backoff_max = 1000ms;
  return e;
}

// A Recorder::wait predicate: at least `devices` devices reported, each with `n` good polls.
std::function<bool(const std::map<std::size_t, Recorder::Device>&)> all_ok(std::size_t devices, int n) {
  return [=](const std::map<std::size_t, Recorder::Device>& d) {
    if (d.size() < devices) return false;
    for (const auto& [i, dev] : d) {
      if (dev.ok < n) return false;
    }
    return true;
  };
}

void expect_read_only(const ModbusServer& s) {
  for (const auto& [fc, n] : s.function_code_counts()) {
    EXPECT_TRUE(fc >= 1 && fc <= 4) << "function code " << fc << " sent " << n << " times";
  }
}

TEST(PollEngine, PollsAndDecodesOverTcpAndRtuOverTcp) {
  ModbusServer server;
  const auto tcp = server.listen("127.0.0.1", 0);
  const auto rtu = server.listen("127.0.0.1", 0, /*rtu=*/true);
  for (int u = 1; u <= 3; ++u) {
    server.set_unit(tcp, static_cast<std::uint8_t>(u), counting_image(10));
    server.set_unit(rtu, static_cast<std::uint8_t>(u), counting_image(10));
  }
  server.start();
  std::vector<EngineEndpoint> eps{endpoint(0, tcp), endpoint(1, rtu, true)};
  for (int u = 1; u <= 3; ++u) {
    eps[0].devices.emplace_back(u - 1, device("tcp" + std::to_string(u), u, 10, 200ms));
    eps[1].devices.emplace_back(2 + u, device("rtu" + std::to_string(u), u, 10, 200ms));
  }
  Recorder rec;
  PollEngine engine(std::move(eps), rec);
  engine.start();
  ASSERT_TRUE(rec.wait(all_ok(6, 3)));
  engine.stop();
  for (const auto& [i, dev] : rec.snapshot()) {
    SCOPED_TRACE(i);
    EXPECT_EQ(dev.failed, 0) << dev.last_error;
    ASSERT_EQ(dev.last_ok.values.size(), 10u);
    for (int r = 0; r < 10; ++r) EXPECT_EQ(dev.last_ok.values[static_cast<std::size_t>(r)].value, 1000 + r);
    EXPECT_EQ(dev.last_ok.requests, 1);  // ten registers, one read
  }
  // One connection per endpoint, kept across polls.
  EXPECT_EQ(rec.connections_.load(), 2);
  expect_read_only(server);
}

TEST(PollEngine, FaultyDevicesCostOnlyTheirOwnSlot) {
  ModbusServer server;
  const auto healthy = server.listen("127.0.0.1", 0);
  const auto silent = server.listen("127.0.0.1", 0);
  const auto gateway = server.listen("127.0.0.1", 0);  // one silent unit, one healthy unit
  const auto busy = server.listen("127.0.0.1", 0);
  const auto illegal = server.listen("127.0.0.1", 0);
  const auto closing = server.listen("127.0.0.1", 0);
  for (auto port : {healthy, silent, gateway, busy, illegal, closing}) {
    for (int u = 1; u <= 3; ++u) server.set_unit(port, static_cast<std::uint8_t>(u), counting_image(8));
  }
  Fault f;
  f.silent = true;
  server.set_fault(silent, 1, f);
  server.set_fault(gateway, 1, f);
  Fault b;
  b.busy = true;
  server.set_fault(busy, 1, b);
  Fault il;
  il.illegal_addresses = {5};
  server.set_fault(illegal, 1, il);
  Fault cl;
  cl.close = true;
  server.set_fault(closing, 1, cl);
  server.start();

  // Device indexes: 0-2 healthy endpoint, 3 silent, 4 gateway-silent, 5 gateway-healthy,
  // 6 busy, 7 illegal-in-batch, 8 closing.
  std::vector<EngineEndpoint> eps{endpoint(0, healthy), endpoint(1, silent), endpoint(2, gateway),
                                  endpoint(3, busy),    endpoint(4, illegal), endpoint(5, closing)};
  for (int u = 1; u <= 3; ++u) eps[0].devices.emplace_back(u - 1, device("h" + std::to_string(u), u, 8));
  DeviceSpec silent_dev = device("silent", 1, 8), gw_silent = device("gw-silent", 1, 8);
  silent_dev.timeout = gw_silent.timeout = 150ms;  // the subject: they time out
  eps[1].devices.emplace_back(3, silent_dev);
  eps[2].devices.emplace_back(4, gw_silent);
  eps[2].devices.emplace_back(5, device("gw-healthy", 2, 8));
  eps[3].devices.emplace_back(6, device("busy", 1, 8));
  eps[4].devices.emplace_back(7, device("illegal", 1, 8));
  eps[5].devices.emplace_back(8, device("closing", 1, 8));
  Recorder rec;
  PollEngine engine(std::move(eps), rec);
  engine.start();
  // Run until each healthy device has completed 8 polls (4 s at 500 ms).
  ASSERT_TRUE(rec.wait([](const auto& d) {
    for (std::size_t i : {0u, 1u, 2u}) {
      auto it = d.find(i);
      if (it == d.end() || it->second.ok < 8) return false;
    }
    return true;
  }));
  engine.stop();
  auto d = rec.snapshot();
  for (std::size_t i : {0u, 1u, 2u}) {
    SCOPED_TRACE(i);
    EXPECT_EQ(d[i].failed, 0);
    EXPECT_EQ(d[i].overruns, 0u);  // every slot polled: the faulty endpoints cost them nothing
  }
  // Silent: timeouts, failed polls, and backoff (fewer attempts than slots).
  EXPECT_EQ(d[3].ok, 0);
  EXPECT_GE(d[3].results["timeout"], 2);
  EXPECT_LT(d[3].results["timeout"], 8);
  EXPECT_NE(d[3].last_error.find("timeout"), std::string::npos);
  // The healthy unit behind the same gateway as a silent one still gets through.
  EXPECT_GE(d[5].ok, 3);
  EXPECT_EQ(d[5].failed, 0);
  EXPECT_EQ(d[4].ok, 0);
  // Busy: exception 6 counted, retried, polls fail.
  EXPECT_EQ(d[6].ok, 0);
  EXPECT_GE(d[6].results["exception_6"], 4);
  // Illegal address inside the batch: the other points arrive; the bad one is unreadable.
  ASSERT_GE(d[7].ok, 3);
  EXPECT_EQ(d[7].failed, 0);
  for (int r = 0; r < 8; ++r) {
    const auto& v = d[7].last_ok.values[static_cast<std::size_t>(r)];
    if (r == 5) {
      EXPECT_TRUE(v.unreadable);
    } else {
      EXPECT_EQ(v.value, 1000 + r);
    }
  }
  // ... and only the first cycle needed the split: later cycles send no exception.
  EXPECT_LE(d[7].results["exception_2"], 4);
  // Closing: the connection loss is counted, never a value.
  EXPECT_EQ(d[8].ok, 0);
  EXPECT_GE(d[8].results["connection"], 1);
  expect_read_only(server);
}

TEST(PollEngine, MoreThan1024Connections) {
  // 1,100 endpoints with one device each: 1,100 client sockets plus as many on the server side
  // and its listeners, so client fds are far above FD_SETSIZE (1024).
  constexpr int kEndpoints = 1100;
  rlimit rl{};
  ::getrlimit(RLIMIT_NOFILE, &rl);
  const rlim_t want = 4 * kEndpoints + 200;
  if (rl.rlim_cur < want) {
    rl.rlim_cur = std::min(want, rl.rlim_max);
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }
  ASSERT_GE(rl.rlim_cur, want) << "cannot raise RLIMIT_NOFILE to " << want;
  ModbusServer server;
  std::vector<EngineEndpoint> eps;
  for (int i = 0; i < kEndpoints; ++i) {
    const auto port = server.listen("127.0.0.1", 0);
    server.set_unit(port, 1, counting_image(4));
    EngineEndpoint e = endpoint(static_cast<std::size_t>(i), port);
    e.devices.emplace_back(i, device("d" + std::to_string(i), 1, 4, 1000ms));
    eps.push_back(std::move(e));
  }
  server.start();
  Recorder rec;
  PollEngine engine(std::move(eps), rec);
  engine.start();
  const bool all = rec.wait(all_ok(kEndpoints, 2), 60s);
  engine.stop();
  ASSERT_TRUE(all);
  int failed = 0;
  for (const auto& [i, dev] : rec.snapshot()) {
    failed += dev.failed;
    EXPECT_EQ(dev.last_ok.values.at(3).value, 1003);
  }
  EXPECT_EQ(failed, 0);
  EXPECT_EQ(rec.connections_.load(), kEndpoints);
  EXPECT_GE(server.stats().connections, static_cast<std::uint64_t>(kEndpoints));
  expect_read_only(server);
}

// A raw Modbus TCP device on loopback for the tests below: one connection at a time, served by
// serve(connection) on the device's own thread until stop.
class RawDevice {
 public:
  RawDevice() : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(fd_.get(), 8) != 0) {
      throw std::runtime_error("listen failed");
    }
    socklen_t len = sizeof a;
    ::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  virtual ~RawDevice() { join(); }
  std::uint16_t port() const { return port_; }
  int connections() const { return connections_; }

 protected:
  // Derived constructors call start() last, derived destructors join() first.
  void start() { thread_ = std::thread([this] { run(); }); }
  void join() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  virtual void serve(int connection) = 0;
  // One request (12 bytes) from c, or false at EOF / stop.
  bool read_request(int c, std::uint8_t (&req)[12]) {
    std::size_t got = 0;
    while (got < sizeof req && !stop_) {
      pollfd p{c, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      const ssize_t n = ::recv(c, req + got, sizeof req - got, 0);
      if (n <= 0) return false;
      got += static_cast<std::size_t>(n);
    }
    return got == sizeof req;
  }
  // The FC3 reply to `req` with every register = `value`.
  static std::vector<std::uint8_t> reply(const std::uint8_t (&req)[12], std::uint8_t value) {
    const int count = req[10] << 8 | req[11];
    std::vector<std::uint8_t> rep{req[0], req[1], 0, 0, 0, static_cast<std::uint8_t>(3 + 2 * count),
                                  req[6], 3, static_cast<std::uint8_t>(2 * count)};
    for (int i = 0; i < count; ++i) rep.insert(rep.end(), {0, value});
    return rep;
  }
  std::atomic<bool> stop_{false};

 private:
  void run() {
    while (!stop_) {
      pollfd p{fd_.get(), POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      UniqueFd c(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!c) continue;
      ++connections_;
      serve(c.get());
    }
  }

  UniqueFd fd_;
  std::uint16_t port_ = 0;
  std::atomic<int> connections_{0};
  std::thread thread_;
};

// A Modbus TCP device on a raw socket, one connection at a time: answers FC3 reads (every
// register = 7) and records, per request, when it arrived and when its reply was about to be
// sent, on the device's side of the wire. With close_after_reply it closes the connection after
// every transaction, shutting its side in the same segment as the reply (TCP_CORK), so the
// client sees the reply and the FIN in one read.
class RecordingDevice : public RawDevice {
 public:
  explicit RecordingDevice(bool close_after_reply) : close_(close_after_reply) { start(); }
  ~RecordingDevice() override { join(); }
  struct Exchange {
    std::chrono::steady_clock::time_point arrived, replying;
  };
  std::vector<Exchange> exchanges() {
    std::lock_guard l(mu_);
    return exchanges_;
  }

 private:
  void serve(int c) override {
    std::uint8_t req[12];
    while (read_request(c, req) && req[7] == 3) {
      Exchange x{std::chrono::steady_clock::now(), {}};
      const auto rep = reply(req, 7);
      const int one = 1;
      if (close_) ::setsockopt(c, IPPROTO_TCP, TCP_CORK, &one, sizeof one);
      x.replying = std::chrono::steady_clock::now();
      {
        std::lock_guard l(mu_);
        exchanges_.push_back(x);
      }
      (void)::send(c, rep.data(), rep.size(), MSG_NOSIGNAL);
      if (close_) {
        ::shutdown(c, SHUT_WR);  // flushes the corked reply together with the FIN
        pollfd w{c, POLLIN, 0};
        (void)::poll(&w, 1, 1000);  // let the client close first
        break;
      }
    }
  }

  bool close_;
  std::mutex mu_;
  std::vector<Exchange> exchanges_;
};

// Pauses are lower bounds, measured where a loaded machine cannot shrink them: on the device's
// side of the wire. The engine starts a pause when it has the previous reply, which is after the
// device began sending it; so (request i+1 arrived) - (reply i began) >= pause_between_requests
// whatever the scheduler does. The first request cannot arrive sooner than pause_after_connect
// after start().
TEST(PollEngine, PausesAfterConnectAndBetweenRequests) {
  RecordingDevice server(/*close_after_reply=*/false);
  std::vector<EngineEndpoint> eps{endpoint(0, server.port())};
  eps[0].spec.pause_after_connect = 150ms;
  eps[0].spec.pause_between_requests = 80ms;
  for (int u = 1; u <= 3; ++u) {
    DeviceSpec d = device("p" + std::to_string(u), u, 4, 200ms);
    d.first_poll_offset = 0ms;  // all three due at once: the pauses must space them
    eps[0].devices.emplace_back(u - 1, d);
  }
  Recorder rec;
  PollEngine engine(std::move(eps), rec);
  const auto started = std::chrono::steady_clock::now();
  engine.start();
  ASSERT_TRUE(rec.wait(all_ok(3, 3)));
  engine.stop();
  const auto x = server.exchanges();
  ASSERT_GE(x.size(), 9u);
  EXPECT_EQ(server.connections(), 1);
  EXPECT_GE(x[0].arrived - started, 150ms);
  for (std::size_t i = 1; i < x.size(); ++i) {
    EXPECT_GE(x[i].arrived - x[i - 1].replying, 80ms) << "request " << i;
  }
}

TEST(PollEngine, UnreachableEndpointFailsFastAndBacksOff) {
  // A port nobody listens on: connect is refused at once; polls fail with "connection".
  // A port bound but not listening: refused, and no other process can take it meanwhile.
  UniqueFd reserved(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(reserved.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  ::getsockname(reserved.get(), reinterpret_cast<sockaddr*>(&a), &len);
  const std::uint16_t port = ntohs(a.sin_port);
  std::vector<EngineEndpoint> eps{endpoint(0, port)};
  eps[0].devices.emplace_back(0, device("gone", 1, 2, 100ms));
  Recorder rec;
  PollEngine engine(std::move(eps), rec);
  engine.start();
  ASSERT_TRUE(rec.wait([](const auto& d) { return d.count(0) && d.at(0).failed >= 3; }));
  std::this_thread::sleep_for(1s);
  engine.stop();
  auto d = rec.snapshot();
  EXPECT_EQ(d[0].ok, 0);
  EXPECT_NE(d[0].last_error.find("refused"), std::string::npos) << d[0].last_error;
  // Backoff: ~15 slots of 100 ms passed, far fewer polls were attempted.
  EXPECT_LT(d[0].failed, 12);
}

TEST(PollEngine, AReplyThatArrivesWithTheDevicesCloseIsUsed) {
  RecordingDevice server(/*close_after_reply=*/true);
  std::vector<EngineEndpoint> eps{endpoint(0, server.port())};
  DeviceSpec d = device("closer", 1, 1, 100ms);
  d.timeout = 2000ms;  // not the subject: generous for a loaded machine
  PointSpec far = d.points[0];
  far.name = "far";
  far.address = 200;  // a second read in the same cycle: it needs a new connection
  d.points.push_back(far);
  eps[0].devices.emplace_back(0, d);
  Recorder rec;
  PollEngine engine(std::move(eps), rec);
  engine.start();
  const bool ok = rec.wait([](const auto& devs) { return devs.count(0) && devs.at(0).ok >= 3; });
  engine.stop();
  auto s = rec.snapshot();
  ASSERT_TRUE(ok) << "ok " << s[0].ok << ", failed " << s[0].failed << ": " << s[0].last_error;
  EXPECT_EQ(s[0].failed, 0) << s[0].last_error;
  EXPECT_EQ(s[0].results["connection"], 0);
  EXPECT_GE(s[0].results["ok"], 6);
  EXPECT_EQ(s[0].last_ok.values[0].value, 7);
  EXPECT_EQ(s[0].last_ok.values[1].value, 7);
  EXPECT_GE(server.connections(), 6);  // one per request
}

// Host names: looked up on the resolver thread, again after each failure.
TEST(PollEngine, AHostNameThatDidNotResolveIsLookedUpAgain) {
  ModbusServer server;
  const auto port = server.listen("127.0.0.1", 0);
  server.set_unit(port, 1, counting_image(2));
  server.start();
  auto calls = std::make_shared<std::atomic<int>>(0);
  // DNS is down for the first two lookups (the daemon started before the network).
  ResolveFn resolve = [calls](const std::string& host, int p) {
    if (++*calls <= 2) return ResolvedAddress{{}, 0, "cannot resolve " + host + ": no network"};
    return parse_ipv4("127.0.0.1", p);
  };
  std::vector<EngineEndpoint> eps{endpoint(0, port)};
  eps[0].spec.host = "meter.example";
  DeviceSpec d = device("named", 1, 2, 100ms);
  d.timeout = 2000ms;
  eps[0].devices.emplace_back(0, d);
  Recorder rec;
  PollEngine engine(std::move(eps), rec, resolve);
  engine.start();
  const bool ok = rec.wait([](const auto& devs) { return devs.count(0) && devs.at(0).ok >= 2; });
  engine.stop();
  auto s = rec.snapshot();
  ASSERT_TRUE(ok) << s[0].last_error;
  EXPECT_GE(s[0].failed, 1);
  EXPECT_NE(s[0].last_error.find("cannot resolve meter.example"), std::string::npos) << s[0].last_error;
  EXPECT_GE(calls->load(), 3);
  EXPECT_EQ(s[0].last_ok.values[1].value, 1001);
}

TEST(PollEngine, ASlowLookupDelaysOnlyItsOwnEndpoint) {
  ModbusServer server;
  const auto port = server.listen("127.0.0.1", 0);
  server.set_unit(port, 1, counting_image(2));
  server.set_unit(port, 2, counting_image(2));
  server.start();
  // The lookup of slow.example hangs until the test lets it go (a dead DNS server).
  auto release = std::make_shared<std::atomic<bool>>(false);
  ResolveFn resolve = [release](const std::string&, int p) {
    for (int i = 0; i < 3000 && !*release; ++i) std::this_thread::sleep_for(10ms);
    return parse_ipv4("127.0.0.1", p);
  };
  std::vector<EngineEndpoint> eps{endpoint(0, port), endpoint(1, port)};
  eps[0].spec.host = "slow.example";
  eps[0].spec.connect_timeout = 200ms;
  DeviceSpec slow = device("slow", 1, 2, 100ms), fast = device("fast", 2, 2, 100ms);
  slow.timeout = fast.timeout = 2000ms;
  eps[0].devices.emplace_back(0, slow);
  eps[1].devices.emplace_back(1, fast);
  Recorder rec;
  PollEngine engine(std::move(eps), rec, resolve);
  engine.start();
  // The literal endpoint polls while the lookup hangs; the named one's polls fail, named.
  const bool fast_ok = rec.wait([](const auto& devs) {
    return devs.count(1) && devs.at(1).ok >= 3 && devs.count(0) && devs.at(0).failed >= 1;
  });
  auto before = rec.snapshot();
  *release = true;
  const bool slow_ok = rec.wait([](const auto& devs) { return devs.count(0) && devs.at(0).ok >= 1; });
  engine.stop();
  ASSERT_TRUE(fast_ok);
  EXPECT_EQ(before[0].ok, 0);
  EXPECT_NE(before[0].last_error.find("resolving slow.example took longer than 200 ms"),
            std::string::npos)
      << before[0].last_error;
  EXPECT_TRUE(slow_ok);
}

TEST(PollEngine, AnIllegalAddressInABridgedGapCostsOneExceptionOnly) {
  // Points at 0 and 10: the planner bridges 1..9 (max_gap 16); the device rejects 5, which no
  // point maps. After the first split the hole is never read again.
  ModbusServer server;
  const auto port = server.listen("127.0.0.1", 0);
  server.set_unit(port, 1, counting_image(16));
  Fault il;
  il.illegal_addresses = {5};
  server.set_fault(port, 1, il);
  server.start();
  std::vector<EngineEndpoint> eps{endpoint(0, port)};
  DeviceSpec d = device("gap", 1, 1, 100ms);
  d.timeout = 2000ms;
  d.plan.max_gap = 16;
  PointSpec b = d.points[0];
  b.name = "b";
  b.address = 10;
  d.points.push_back(b);
  eps[0].devices.emplace_back(0, d);
  Recorder rec;
  PollEngine engine(std::move(eps), rec);
  engine.start();
  const bool ok = rec.wait([](const auto& devs) { return devs.count(0) && devs.at(0).ok >= 5; });
  engine.stop();
  auto s = rec.snapshot();
  ASSERT_TRUE(ok) << s[0].last_error;
  EXPECT_EQ(s[0].failed, 0);
  EXPECT_EQ(s[0].results["exception_2"], 1);
  EXPECT_EQ(s[0].last_ok.values[0].value, 1000);
  EXPECT_EQ(s[0].last_ok.values[1].value, 1010);
  EXPECT_FALSE(s[0].last_ok.values[1].unreadable);
  expect_read_only(server);
}

TEST(PollEngine, SlotsAlreadyPastAreSkippedAndCounted) {
  const SteadyTime t{};
  // On time: the next slot, nothing skipped.
  NextSlot n = advance_slot(t, 1000ms, t + 500ms);
  EXPECT_EQ(n.at, t + 1000ms);
  EXPECT_EQ(n.skipped, 0);
  // 3.5 intervals late: slots 1, 2 and 3 are gone (not made up), the next is slot 4.
  n = advance_slot(t, 1000ms, t + 3500ms);
  EXPECT_EQ(n.at, t + 4000ms);
  EXPECT_EQ(n.skipped, 3);
  // Hours late (a suspended host): every skipped slot is counted, none is capped away.
  n = advance_slot(t, 1000ms, t + std::chrono::hours(2) + 1ms);
  EXPECT_EQ(n.skipped, 7200);
  EXPECT_EQ(n.at, t + std::chrono::hours(2) + 1000ms);
}

// Gateways that append junk to a reply, or send it twice (cf. Telegraf #11099): the reply is
// used, the rest dropped and counted; Modbus TCP keeps its connection (transaction ids tell
// replies apart), RTU framing starts the next request on a fresh one.
TEST(PollEngine, TrailingBytesAndRepliesSentTwiceAreDroppedAndTheDevicesWork) {
  ModbusServer server;
  std::vector<std::uint16_t> ports;
  for (bool rtu : {false, false, true, true}) ports.push_back(server.listen("127.0.0.1", 0, rtu));
  Fault trailing, twice;
  trailing.trailing = 6;
  twice.duplicate = true;
  for (std::size_t i = 0; i < ports.size(); ++i) {
    server.set_unit(ports[i], 1, counting_image(10));
    server.set_fault(ports[i], 1, i % 2 == 0 ? trailing : twice);
  }
  server.start();
  std::vector<EngineEndpoint> eps;
  for (std::size_t i = 0; i < ports.size(); ++i) {
    eps.push_back(endpoint(i, ports[i], /*rtu=*/i >= 2));
    DeviceSpec d = device("d" + std::to_string(i), 1, 10, 200ms);
    d.plan.max_registers = 5;  // two reads per cycle: the second one meets what the first left
    eps.back().devices.emplace_back(i, d);
  }
  Recorder rec;
  PollEngine engine(std::move(eps), rec);
  engine.start();
  const bool ok = rec.wait(all_ok(4, 4));
  engine.stop();
  ASSERT_TRUE(ok);
  const auto discarded = rec.discarded();
  for (const auto& [i, dev] : rec.snapshot()) {
    SCOPED_TRACE(i);
    EXPECT_EQ(dev.failed, 0) << dev.last_error;
    EXPECT_EQ(dev.results.count("malformed"), 0u);
    ASSERT_EQ(dev.last_ok.values.size(), 10u);
    for (int r = 0; r < 10; ++r) {
      EXPECT_EQ(dev.last_ok.values[static_cast<std::size_t>(r)].value, 1000 + r);
    }
    EXPECT_EQ(dev.last_ok.requests, 2);
    ASSERT_TRUE(discarded.count(i));
    // Every reply came with 6 junk bytes, or with itself again (7 + 1 + 1 + 10 = 19 bytes for
    // TCP, 1 + 1 + 1 + 10 + 2 = 15 for RTU): at least 4 cycles x 2 reads of it were dropped.
    const std::size_t per_reply = i % 2 == 0 ? 6 : (i < 2 ? 19 : 15);
    EXPECT_GE(discarded.at(i), 8 * per_reply);
    EXPECT_EQ(discarded.at(i) % per_reply, 0u);
  }
  // Two TCP endpoints kept their connections; the RTU ones reconnected after each such reply.
  EXPECT_GE(rec.connections_.load(), 2 + 2 * 8);
  expect_read_only(server);
}

// A gateway that repeats each reply late, just before its answer to the next request: the
// old reply is recognised by its transaction id, skipped and counted, and the new one used on
// the same connection. (Without the skip, every reply after the first is malformed.)
class EchoingGateway : public RawDevice {
 public:
  EchoingGateway() { start(); }
  ~EchoingGateway() override { join(); }

 private:
  void serve(int c) override {
    std::uint8_t req[12];
    std::vector<std::uint8_t> previous;
    while (read_request(c, req)) {
      std::vector<std::uint8_t> out = previous;  // the last reply, again
      previous = reply(req, 42);
      out.insert(out.end(), previous.begin(), previous.end());
      (void)::send(c, out.data(), out.size(), MSG_NOSIGNAL);
    }
  }
};

TEST(PollEngine, AReplyToAnEarlierRequestIsSkippedByItsTransactionId) {
  EchoingGateway server;
  std::vector<EngineEndpoint> eps{endpoint(0, server.port())};
  DeviceSpec d = device("echo", 1, 2, 100ms);
  eps[0].devices.emplace_back(0, d);
  Recorder rec;
  PollEngine engine(std::move(eps), rec);
  engine.start();
  const bool ok = rec.wait([](const auto& devs) { return devs.count(0) && devs.at(0).ok >= 5; });
  engine.stop();
  auto s = rec.snapshot();
  ASSERT_TRUE(ok) << "ok " << s[0].ok << ", failed " << s[0].failed << ": " << s[0].last_error;
  EXPECT_EQ(s[0].failed, 0) << s[0].last_error;
  EXPECT_EQ(s[0].results.count("malformed"), 0u);
  EXPECT_EQ(s[0].last_ok.values[1].value, 42);
  EXPECT_EQ(server.connections(), 1);  // no reconnect
  // Every reply but the first came after a copy of the one before: 7 + 2 + 2 x 2 = 13 bytes.
  EXPECT_GE(rec.discarded()[0], 4u * 13);
  EXPECT_EQ(rec.discarded()[0] % 13, 0u);
}

// A reload (the daemon builds a new engine from the halted one): an unchanged endpoint keeps its
// connection, and on it an unchanged device keeps its schedule, under its new index; a changed
// device on it starts afresh without a new connection; a changed endpoint reconnects; a new one
// connects. Four servers, one per endpoint, count the connections.
TEST(PollEngine, AReloadTakesOverUnchangedEndpointsAndDevicesRenumbered) {
  std::array<ModbusServer, 4> servers;  // a, b, c: before and after; d: added by the reload
  std::array<std::uint16_t, 4> ports{};
  for (std::size_t i = 0; i < servers.size(); ++i) {
    ports[i] = servers[i].listen("127.0.0.1", 0);
    for (int u = 1; u <= 2; ++u) {
      servers[i].set_unit(ports[i], static_cast<std::uint8_t>(u), counting_image(4));
    }
    servers[i].start();
  }
  DeviceSpec a1 = device("a1", 1, 4, 1000ms);
  a1.first_poll_offset = 0ms;  // its grid: start + k s
  // Half a second out of a1's phase: not in flight at the reload (a changed device's request in
  // flight would cost its endpoint the connection: its reply must not be read as another's).
  DeviceSpec a2 = device("a2", 2, 4, 1000ms);
  a2.first_poll_offset = 500ms;
  std::vector<EngineEndpoint> before{endpoint(0, ports[0]), endpoint(1, ports[1]),
                                     endpoint(2, ports[2])};
  before[0].devices = {{0, a1}, {1, a2}};
  before[1].devices = {{2, device("b1", 1, 4, 200ms)}};
  before[2].devices = {{3, device("c1", 1, 4, 200ms)}};
  Recorder rec1;
  PollEngine first(before, rec1);
  first.start();
  ASSERT_TRUE(rec1.wait([](const auto& d) {
    return d.size() == 4 && d.at(0).ok >= 2 && d.at(1).ok >= 1 && d.at(2).ok >= 3 &&
           d.at(3).ok >= 3;
  }));
  // Just after one of a1's polls: a fresh schedule would poll it at once, its own in ~1 s.
  const int a1_polls = rec1.snapshot().at(0).ok;
  ASSERT_TRUE(rec1.wait([&](const auto& d) { return d.at(0).ok > a1_polls; }));
  const auto last_a1 = rec1.snapshot().at(0).last_ok.completed_at;
  std::this_thread::sleep_for(200ms);

  // The new plan: d added first (every index moves), a2's timeout changed, c's endpoint
  // settings changed.
  std::vector<EngineEndpoint> after{endpoint(0, ports[3]), endpoint(1, ports[0]),
                                    endpoint(2, ports[1]), endpoint(3, ports[2])};
  after[0].devices = {{0, device("d1", 1, 4, 200ms)}};
  a2.timeout = 1500ms;
  after[1].devices = {{1, a1}, {2, a2}};
  after[2].devices = {{3, device("b1", 1, 4, 200ms)}};
  after[3].spec.connect_timeout = 1500ms;
  after[3].devices = {{4, device("c1", 1, 4, 200ms)}};
  Recorder rec2;
  PollEngine second(after, rec2, first);
  EXPECT_EQ(second.adopted().devices, (std::vector<std::size_t>{1, 3}));
  EXPECT_EQ(second.adopted().connected_endpoints, (std::vector<std::size_t>{1, 2}));
  const int a1_before = rec1.snapshot().at(0).ok;
  second.start();
  ASSERT_TRUE(rec2.wait(all_ok(5, 3)));
  second.stop();
  EXPECT_EQ(rec1.snapshot().at(0).ok, a1_before) << "the halted engine reported after the reload";

  const auto r = rec2.snapshot();
  const std::array<const char*, 5> ids{"d1", "a1", "a2", "b1", "c1"};
  for (std::size_t i = 0; i < ids.size(); ++i) {
    EXPECT_EQ(r.at(i).last_ok.device_id, ids[i]) << "results carry the new index " << i;
    EXPECT_EQ(r.at(i).failed, 0) << ids[i] << ": " << r.at(i).last_error;
  }
  // a1 went on in its own grid: its next poll came about 1 s after the last, not at the reload.
  EXPECT_GE(r.at(1).first_ok_at - last_a1, 700ms);
  // a and b kept their connections; c reconnected with its new settings; d is new.
  EXPECT_EQ(servers[0].stats().connections, 1u);
  EXPECT_EQ(servers[1].stats().connections, 1u);
  EXPECT_EQ(servers[2].stats().connections, 2u);
  EXPECT_EQ(servers[3].stats().connections, 1u);
  // Connections the successor took over are not reported again, nor the ones it closed.
  EXPECT_EQ(rec2.connections_.load(), 2);  // c's new one and d's
}

// A reload while a changed device's request is in flight on Modbus TCP: the connection stays
// (its late reply carries an old transaction id: skipped and counted), and the unchanged device
// beside it goes on polling on it.
TEST(PollEngine, AReloadAbandonsAChangedDevicesRequestInFlightWithoutReconnecting) {
  ModbusServer server;
  const auto port = server.listen("127.0.0.1", 0);
  server.set_unit(port, 1, counting_image(4));
  server.set_unit(port, 2, counting_image(4));
  Fault slow;
  slow.delay = 600ms;
  server.set_fault(port, 2, slow);
  server.start();
  DeviceSpec x = device("x", 2, 4, 5000ms);
  x.first_poll_offset = 300ms;
  std::vector<EngineEndpoint> before{endpoint(0, port)};
  before[0].devices = {{0, device("y", 1, 4, 200ms)}, {1, x}};
  Recorder rec1;
  PollEngine first(before, rec1);
  first.start();
  // x's request is on the wire, its reply 600 ms away.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (server.function_code_counts(port, 2).empty() &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(2ms);
  }
  x.timeout = 1500ms;
  x.first_poll_offset = 4000ms;  // the new x polls after this test: a result of x is the old one
  std::vector<EngineEndpoint> after{endpoint(0, port)};
  after[0].devices = {{0, device("y", 1, 4, 200ms)}, {1, x}};
  Recorder rec2;
  PollEngine second(after, rec2, first);
  ASSERT_TRUE(rec1.snapshot()[1].ok == 0) << "x answered before the reload: the test is void";
  EXPECT_EQ(second.adopted().connected_endpoints, (std::vector<std::size_t>{0}));
  second.start();
  ASSERT_TRUE(rec2.wait([](const auto& d) { return d.count(0) && d.at(0).ok >= 8; }));
  // x's old reply came and went while y polled on.
  const auto discarded_by = std::chrono::steady_clock::now() + 5s;
  while (rec2.discarded()[0] == 0 && std::chrono::steady_clock::now() < discarded_by) {
    std::this_thread::sleep_for(10ms);
  }
  second.stop();
  EXPECT_GT(rec2.discarded()[0], 0u) << "x's late reply was not seen";
  EXPECT_EQ(server.stats().connections, 1u);
  EXPECT_EQ(rec2.snapshot()[0].failed, 0) << rec2.snapshot()[0].last_error;
  EXPECT_EQ(rec2.snapshot()[1].ok + rec2.snapshot()[1].failed, 0) << "x's old cycle was reported";
}

}  // namespace
}  // namespace facility::modbus
