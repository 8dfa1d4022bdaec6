#include "sim/modbus_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <termios.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <deque>
#include <stdexcept>
#include <system_error>

#include <spdlog/spdlog.h>

#include "collectors/modbus/frame.h"
#include "daemon/config/config.h"

namespace facility::sim {
namespace {

constexpr std::size_t kMbapSize = 7;  // transaction id, protocol id, length, unit id
constexpr std::uint16_t kMinLength = 2;    // unit id + function code
constexpr std::uint16_t kMaxLength = 254;  // unit id + 253-byte PDU
constexpr int kMaxBitsPerRead = 2000;
constexpr int kMaxRegistersPerRead = 125;

using modbus::kIllegalDataAddress;
using modbus::kIllegalDataValue;
using modbus::kIllegalFunction;
using modbus::kServerDeviceBusy;
constexpr std::uint8_t kGatewayTargetFailed = modbus::kGatewayTargetNoResponse;

std::uint16_t get16(const std::uint8_t* p) {
  return static_cast<std::uint16_t>((p[0] << 8) | p[1]);
}
void put16(std::vector<std::uint8_t>& v, std::uint16_t x) {
  v.push_back(static_cast<std::uint8_t>(x >> 8));
  v.push_back(static_cast<std::uint8_t>(x & 0xFF));
}

std::system_error errno_error(const std::string& what) {
  return std::system_error(errno, std::generic_category(), what);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::optional<std::uint16_t> parse_address(std::string_view s) {
  int base = 10;
  if (s.starts_with("0x") || s.starts_with("0X")) {
    s.remove_prefix(2);
    base = 16;
  }
  unsigned v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty() || v > 65535) {
    return std::nullopt;
  }
  return static_cast<std::uint16_t>(v);
}

// A gateway's quirks applied to a whole reply frame: sent twice, junk bytes after it.
std::vector<std::uint8_t> quirks(std::vector<std::uint8_t> frame, const Fault& f) {
  if (f.duplicate) {
    const std::size_t n = frame.size();
    frame.reserve(2 * n + f.trailing);
    for (std::size_t i = 0; i < n; ++i) frame.push_back(frame[i]);
  }
  for (std::uint16_t i = 0; i < f.trailing; ++i) frame.push_back(static_cast<std::uint8_t>(0xA5 ^ i));
  return frame;
}

}  // namespace

// ---- Fault ---------------------------------------------------------------------------------

std::string Fault::describe() const {
  std::string s;
  auto add = [&s](const std::string& part) { s += (s.empty() ? "" : ",") + part; };
  if (close) add("close");
  if (silent) add("silent");
  if (busy) add("busy");
  if (delay.count() > 0) add("delay:" + std::to_string(delay.count()) + "ms");
  if (trailing > 0) add("trailing:" + std::to_string(trailing));
  if (duplicate) add("duplicate");
  for (std::uint16_t a : illegal_addresses) add("illegal:" + std::to_string(a));
  if (on_battery) add("on_battery");
  return s.empty() ? "none" : s;
}

std::optional<std::string> parse_fault(std::string_view spec, Fault& out) {
  if (trim(spec).empty()) return "empty fault (expected silent, busy, close, delay:DUR, illegal:ADDR, trailing:N, duplicate, on_battery)";
  while (!spec.empty()) {
    const auto comma = spec.find(',');
    const std::string_view item = trim(spec.substr(0, comma));
    spec = comma == std::string_view::npos ? std::string_view{} : spec.substr(comma + 1);
    if (item == "silent") {
      out.silent = true;
    } else if (item == "busy") {
      out.busy = true;
    } else if (item == "close") {
      out.close = true;
    } else if (item == "duplicate") {
      out.duplicate = true;
    } else if (item == "on_battery") {
      out.on_battery = true;
    } else if (item.starts_with("trailing:")) {
      const std::string arg(item.substr(9));
      unsigned n = 0;
      auto [p, ec] = std::from_chars(arg.data(), arg.data() + arg.size(), n);
      if (ec != std::errc() || p != arg.data() + arg.size() || n < 1 || n > 250) {
        return "bad trailing \"" + arg + "\" (expected a byte count 1..250, e.g. trailing:6)";
      }
      out.trailing = static_cast<std::uint16_t>(n);
    } else if (item == "none") {
      out = Fault{};
    } else if (item.starts_with("delay:")) {
      const std::string arg(item.substr(6));
      unsigned ms = 0;
      auto [p, ec] = std::from_chars(arg.data(), arg.data() + arg.size(), ms);
      if (ec == std::errc() && p == arg.data() + arg.size() && !arg.empty()) {
        out.delay = std::chrono::milliseconds(ms);  // bare number: milliseconds
      } else if (auto d = parse_duration(arg)) {
        out.delay = *d;
      } else {
        return "bad delay \"" + arg + "\" (expected e.g. delay:500ms or delay:2s)";
      }
    } else if (item.starts_with("illegal:")) {
      const auto addr = parse_address(item.substr(8));
      if (!addr) {
        return "bad address in \"" + std::string(item) +
               "\" (expected a 0-based register address 0..65535, e.g. illegal:3 or illegal:0x10)";
      }
      out.illegal_addresses.insert(*addr);
    } else {
      return "unknown fault \"" + std::string(item) +
             "\" (expected silent, busy, close, delay:DUR, illegal:ADDR, trailing:N, duplicate, "
             "on_battery or none)";
    }
  }
  return std::nullopt;
}

// ---- Connection ----------------------------------------------------------------------------

struct ModbusServer::Connection {
  UniqueFd fd;
  std::uint32_t port = 0;  // unit key: the listener's port, or the serial line's key
  bool rtu = false;        // RTU framing (over TCP or on a serial line) instead of MBAP
  bool serial = false;
  std::vector<std::uint8_t> in;  // bytes received but not yet parsed into a whole frame
  struct Pending {
    Clock::time_point due;
    std::vector<std::uint8_t> bytes;
  };
  // Replies in request order. A delayed reply holds back the ones behind it, as a real
  // single-threaded device would.
  std::deque<Pending> out;
  std::size_t out_sent = 0;  // bytes of out.front() already written
  bool want_write = false;   // EPOLLOUT currently registered
};

// ---- ModbusServer --------------------------------------------------------------------------

ModbusServer::ModbusServer()
    : epoll_(::epoll_create1(EPOLL_CLOEXEC)),
      wake_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)),
      reserve_(::open("/dev/null", O_RDONLY | O_CLOEXEC)) {
  if (!epoll_ || !wake_) throw errno_error("modbus server: epoll/eventfd");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = wake_.get();
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, wake_.get(), &ev) != 0) {
    throw errno_error("modbus server: epoll_ctl");
  }
}

ModbusServer::~ModbusServer() { stop(); }

std::uint16_t ModbusServer::listen(const std::string& host, std::uint16_t port, bool rtu) {
  if (thread_.joinable()) throw std::logic_error("ModbusServer::listen() after start()");
  const std::string where = host + ":" + std::to_string(port);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  const std::string ip = host == "localhost" ? "127.0.0.1" : host;
  if (::inet_pton(AF_INET, ip.c_str(), &addr.sin_addr) != 1) {
    throw std::system_error(std::make_error_code(std::errc::invalid_argument),
                            "listen " + where + ": not an IPv4 address");
  }
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) throw errno_error("socket for " + where);
  const int one = 1;
  // Lets the simulator restart at once on the same ports while old connections sit in TIME_WAIT.
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    throw errno_error("bind " + where);
  }
  if (::listen(fd.get(), SOMAXCONN) != 0) throw errno_error("listen " + where);
  socklen_t len = sizeof addr;
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    throw errno_error("getsockname " + where);
  }
  const std::uint16_t bound = ntohs(addr.sin_port);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = fd.get();
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd.get(), &ev) != 0) {
    throw errno_error("epoll_ctl " + where);
  }
  listener_index_[fd.get()] = listeners_.size();
  listeners_.push_back(Listener{std::move(fd), bound, rtu});
  return bound;
}

std::uint32_t ModbusServer::serve_serial(const std::string& path) {
  if (thread_.joinable()) throw std::logic_error("ModbusServer::serve_serial() after start()");
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC));
  if (!fd) throw errno_error("open serial " + path);
  termios tio{};
  if (::tcgetattr(fd.get(), &tio) == 0) {
    ::cfmakeraw(&tio);
    ::tcsetattr(fd.get(), TCSANOW, &tio);
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = fd.get();
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd.get(), &ev) != 0) {
    throw errno_error("epoll_ctl " + path);
  }
  const auto key = static_cast<std::uint32_t>(65536 + serial_fds_.size());
  auto c = std::make_unique<Connection>();
  c->port = key;
  c->rtu = true;
  c->serial = true;
  const int raw = fd.get();
  c->fd = std::move(fd);
  conns_[raw] = std::move(c);
  serial_fds_.push_back(raw);
  return key;
}

void ModbusServer::set_unit(std::uint32_t port, std::uint8_t unit, UnitImage image) {
  std::lock_guard lock(mu_);
  units_[{port, unit}] = std::move(image);
}

void ModbusServer::set_fault(std::uint32_t port, std::uint8_t unit, Fault fault) {
  std::lock_guard lock(mu_);
  if (fault.empty()) {
    faults_.erase({port, unit});
  } else {
    faults_[{port, unit}] = std::move(fault);
  }
}

void ModbusServer::start() {
  if (thread_.joinable() || stopping_) return;
  thread_ = std::thread([this] { loop(); });
}

void ModbusServer::stop() {
  stopping_ = true;
  const std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wake_.get(), &one, sizeof one);
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

ServerStats ModbusServer::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

std::map<int, std::uint64_t> ModbusServer::function_code_counts() const {
  std::lock_guard lock(mu_);
  return stats_.function_codes;
}

std::map<int, std::uint64_t> ModbusServer::function_code_counts(std::uint32_t port,
                                                                std::uint8_t unit) const {
  std::lock_guard lock(mu_);
  auto it = unit_fc_counts_.find({port, unit});
  return it == unit_fc_counts_.end() ? std::map<int, std::uint64_t>{} : it->second;
}

void ModbusServer::loop() {
  std::array<epoll_event, 128> events;
  while (!stopping_) {
    int timeout_ms = -1;
    if (!timers_.empty()) {
      const auto wait = timers_.begin()->first - Clock::now();
      // Round up so we never wake a hair early and spin.
      const auto ms = std::chrono::ceil<std::chrono::milliseconds>(wait).count();
      timeout_ms = static_cast<int>(std::clamp<long long>(ms, 0, 60'000));
    }
    const int n = ::epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()),
                               timeout_ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      spdlog::error("modbus server: epoll_wait: {}", std::strerror(errno));
      break;
    }
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == wake_.get()) continue;  // stopping_ is checked by the loop condition
      // A map, not a scan: a simulated site may listen on thousands of ports.
      if (auto li = listener_index_.find(fd); li != listener_index_.end()) {
        accept_all(listeners_[li->second]);
        continue;
      }
      auto it = conns_.find(fd);
      if (it == conns_.end()) continue;  // closed earlier in this batch
      if (events[i].events & EPOLLOUT) {
        if (!flush(*it->second)) continue;
      }
      if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) on_readable(fd);
    }
    // Delayed replies that have come due.
    const auto now = Clock::now();
    while (!timers_.empty() && timers_.begin()->first <= now) {
      const int fd = timers_.begin()->second;
      timers_.erase(timers_.begin());
      // The fd may have been closed (and even reused) meanwhile; flush() only sends what is due.
      if (auto it = conns_.find(fd); it != conns_.end()) flush(*it->second);
    }
  }
  conns_.clear();
  open_connections_ = 0;
  timers_.clear();
}

void ModbusServer::accept_all(const Listener& l) {
  while (true) {
    UniqueFd fd(::accept4(l.fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
      if ((errno == EMFILE || errno == ENFILE) && reserve_) {
        // Out of descriptors: a level-triggered listener would wake us forever. Free the
        // spare fd, accept the pending connection and close it at once, then take the spare
        // back, so the client sees a clean close instead of a hang.
        spdlog::warn("modbus server: out of file descriptors, shedding a connection on port {}",
                     l.port);
        reserve_.reset();
        UniqueFd shed(::accept4(l.fd.get(), nullptr, nullptr, SOCK_CLOEXEC));
        reserve_.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
        continue;
      }
      spdlog::warn("modbus server: accept on port {}: {}", l.port, std::strerror(errno));
      return;
    }
    const int one = 1;
    // Replies are single small writes; don't let Nagle hold them back.
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.fd = fd.get();
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd.get(), &ev) != 0) {
      spdlog::warn("modbus server: epoll_ctl: {}", std::strerror(errno));
      continue;
    }
    auto c = std::make_unique<Connection>();
    c->port = l.port;
    c->rtu = l.rtu;
    const int key = fd.get();
    c->fd = std::move(fd);
    conns_[key] = std::move(c);
    ++open_connections_;
    std::lock_guard lock(mu_);
    ++stats_.connections;
  }
}

void ModbusServer::on_readable(int fd) {
  auto it = conns_.find(fd);
  if (it == conns_.end()) return;
  Connection& c = *it->second;
  std::array<std::uint8_t, 4096> buf;
  bool peer_closed = false;
  while (true) {
    // A serial line is not a socket: read(), not recv().
    const ssize_t n = c.serial ? ::read(fd, buf.data(), buf.size()) : ::recv(fd, buf.data(), buf.size(), 0);
    if (n > 0) {
      c.in.insert(c.in.end(), buf.data(), buf.data() + n);
      // Parse as we go so a flood of pipelined requests can't grow the buffer without bound.
      if (!process_input(c)) return;
      continue;
    }
    if (n == 0) {
      peer_closed = true;
    } else if (errno == EINTR) {
      continue;
    } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
      peer_closed = true;  // ECONNRESET and friends
    }
    break;
  }
  if (peer_closed) {
    close_connection(fd);
    return;
  }
  flush(c);
}

bool ModbusServer::process_input(Connection& c) {
  return c.rtu ? process_rtu(c) : process_tcp(c);
}

void ModbusServer::queue_reply(Connection& c, std::vector<std::uint8_t> bytes,
                               std::chrono::milliseconds delay) {
  const auto due = Clock::now() + delay;
  c.out.push_back({due, std::move(bytes)});
  if (delay.count() > 0) timers_.emplace(due, c.fd.get());
}

bool ModbusServer::process_tcp(Connection& c) {
  std::size_t pos = 0;
  bool keep = true;
  while (c.in.size() - pos >= 4) {
    const std::uint8_t* p = c.in.data() + pos;
    const std::size_t avail = c.in.size() - pos;
    // Reject as soon as the header shows garbage: after a bad frame there is no way to find
    // the next frame boundary, so the only safe answer is to drop the connection.
    if (get16(p + 2) != 0) {
      keep = false;
      break;
    }
    if (avail < 6) break;
    const std::uint16_t length = get16(p + 4);
    if (length < kMinLength || length > kMaxLength) {
      keep = false;
      break;
    }
    const std::size_t frame_size = 6 + length;
    if (avail < frame_size) break;
    std::vector<std::uint8_t> body;
    Fault shape;
    const Action a = handle_pdu(c, p[6], p + kMbapSize, frame_size - kMbapSize, body, shape);
    const std::uint16_t tid = get16(p);
    const std::uint8_t uid = p[6];
    pos += frame_size;
    if (a == Action::kClose) {
      close_connection(c.fd.get());
      return false;
    }
    if (a == Action::kReply) {
      std::vector<std::uint8_t> reply;
      reply.reserve(kMbapSize + body.size());
      put16(reply, tid);
      put16(reply, 0);
      put16(reply, static_cast<std::uint16_t>(1 + body.size()));
      reply.push_back(uid);
      reply.insert(reply.end(), body.begin(), body.end());
      queue_reply(c, quirks(std::move(reply), shape), shape.delay);
    }
  }
  if (!keep) {
    {
      std::lock_guard lock(mu_);
      ++stats_.protocol_errors;
    }
    close_connection(c.fd.get());
    return false;
  }
  c.in.erase(c.in.begin(), c.in.begin() + static_cast<std::ptrdiff_t>(pos));
  return true;
}

// RTU has no length field: a request's length follows from its function code. On a serial line
// a bad frame is skipped byte by byte until a valid one starts (as a bus listener resyncs); over
// TCP the connection is closed, as for bad MBAP framing.
bool ModbusServer::process_rtu(Connection& c) {
  std::size_t pos = 0;
  bool keep = true;
  while (c.in.size() - pos >= 2) {
    const std::uint8_t* p = c.in.data() + pos;
    const std::size_t avail = c.in.size() - pos;
    const std::uint8_t fc = p[1];
    std::size_t need = 0;
    if (fc >= 1 && fc <= 6) {
      need = 8;
    } else if (fc == modbus::kFunctionDeviceId) {
      need = 7;  // unit, 2B, 0E, code, object id, CRC
    } else if (fc == 15 || fc == 16) {
      if (avail < 7) break;
      need = 9 + std::size_t{p[6]};
    }
    bool bad = need == 0;
    if (!bad) {
      if (avail < need) break;
      const std::uint16_t crc = modbus::crc16(std::span(p, need - 2));
      bad = crc != static_cast<std::uint16_t>(p[need - 2] | (p[need - 1] << 8));
    }
    if (bad) {
      {
        std::lock_guard lock(mu_);
        ++stats_.protocol_errors;
      }
      if (!c.serial) {
        keep = false;
        break;
      }
      ++pos;  // resync
      continue;
    }
    std::vector<std::uint8_t> body;
    Fault shape;
    const std::uint8_t uid = p[0];
    const Action a = handle_pdu(c, uid, p + 1, need - 3, body, shape);
    pos += need;
    if (a == Action::kClose) {
      if (c.serial) continue;  // a serial line cannot be "closed": treat as silence
      close_connection(c.fd.get());
      return false;
    }
    if (a == Action::kReply) {
      std::vector<std::uint8_t> reply;
      reply.push_back(uid);
      reply.insert(reply.end(), body.begin(), body.end());
      const std::uint16_t crc = modbus::crc16(reply);
      reply.push_back(static_cast<std::uint8_t>(crc & 0xFF));
      reply.push_back(static_cast<std::uint8_t>(crc >> 8));
      queue_reply(c, quirks(std::move(reply), shape), shape.delay);
    }
  }
  if (!keep) {
    close_connection(c.fd.get());
    return false;
  }
  c.in.erase(c.in.begin(), c.in.begin() + static_cast<std::ptrdiff_t>(pos));
  return true;
}

ModbusServer::Action ModbusServer::handle_pdu(const Connection& c, std::uint8_t uid,
                                              const std::uint8_t* pdu, std::size_t pdu_len,
                                              std::vector<std::uint8_t>& body,
                                              Fault& in_effect) {
  const std::uint8_t fc = pdu[0];
  auto exception = [&body, fc](std::uint8_t code) {
    body = {static_cast<std::uint8_t>(fc | 0x80), code};
  };

  {
    std::lock_guard lock(mu_);
    const UnitKey key{c.port, uid};
    ++stats_.function_codes[fc];
    ++unit_fc_counts_[key][fc];

    const Fault* fault = nullptr;
    if (auto f = faults_.find(key); f != faults_.end()) fault = &f->second;
    if (fault && (fault->close || fault->silent)) {
      ++stats_.dropped;
      return fault->close ? Action::kClose : Action::kNoReply;
    }
    if (fault) in_effect = *fault;

    const auto u = units_.find(key);
    if (u == units_.end() && c.serial) {
      return Action::kNoReply;  // nobody on the bus has this address
    }
    if (u == units_.end()) {
      // What a gateway answers when nothing behind it has this unit id.
      exception(kGatewayTargetFailed);
    } else if (fault && fault->busy) {
      exception(kServerDeviceBusy);
    } else if (fc == modbus::kFunctionDeviceId) {
      body = modbus::device_id_response(std::span(pdu, pdu_len), u->second.device_id);
    } else if (fc < 1 || fc > 4) {
      exception(kIllegalFunction);
    } else if (pdu_len != 5) {
      exception(kIllegalDataValue);  // a read request is exactly fc + address + quantity
    } else {
      const std::uint16_t addr = get16(pdu + 1);
      const std::uint16_t qty = get16(pdu + 3);
      const auto kind = static_cast<modbus::RegisterKind>(fc);
      const bool bits = modbus::is_bit_kind(kind);
      const int max_qty =
          bits ? kMaxBitsPerRead
               : std::clamp(u->second.max_registers_per_read, 1, kMaxRegistersPerRead);
      const RegisterTable& t = u->second.table(kind);
      bool illegal = false;
      if (fault) {
        auto hit = fault->illegal_addresses.lower_bound(addr);
        illegal = hit != fault->illegal_addresses.end() &&
                  static_cast<std::uint32_t>(*hit) < static_cast<std::uint32_t>(addr) + qty;
      }
      if (qty < 1 || qty > max_qty) {
        exception(kIllegalDataValue);
      } else if (!t.covers(addr, qty) || illegal) {
        exception(kIllegalDataAddress);
      } else {
        const std::size_t first = addr - t.start;
        body.push_back(fc);
        if (bits) {
          body.push_back(static_cast<std::uint8_t>((qty + 7) / 8));
          body.resize(body.size() + (qty + 7) / 8, 0);
          for (std::size_t i = 0; i < qty; ++i) {
            if (t.values[first + i] != 0) body[2 + i / 8] |= static_cast<std::uint8_t>(1u << (i % 8));
          }
        } else {
          body.push_back(static_cast<std::uint8_t>(qty * 2));
          for (std::size_t i = 0; i < qty; ++i) put16(body, t.values[first + i]);
        }
      }
    }
    if (body[0] & 0x80) {
      ++stats_.exceptions[body[1]];
    } else {
      ++stats_.replies;
    }
  }

  return Action::kReply;
}

bool ModbusServer::flush(Connection& c) {
  const auto now = Clock::now();
  bool blocked = false;
  while (!c.out.empty() && c.out.front().due <= now) {
    auto& front = c.out.front();
    const ssize_t n =
        c.serial ? ::write(c.fd.get(), front.bytes.data() + c.out_sent,
                           front.bytes.size() - c.out_sent)
                 : ::send(c.fd.get(), front.bytes.data() + c.out_sent,
                          front.bytes.size() - c.out_sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        blocked = true;
        break;
      }
      close_connection(c.fd.get());  // EPIPE, ECONNRESET: the client is gone
      return false;
    }
    c.out_sent += static_cast<std::size_t>(n);
    if (c.out_sent == front.bytes.size()) {
      c.out.pop_front();
      c.out_sent = 0;
    }
  }
  update_interest(c, blocked);
  return true;
}

void ModbusServer::update_interest(Connection& c, bool want_write) {
  if (c.want_write == want_write) return;
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP | (want_write ? EPOLLOUT : 0u);
  ev.data.fd = c.fd.get();
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, c.fd.get(), &ev) == 0) c.want_write = want_write;
}

void ModbusServer::close_connection(int fd) {
  auto it = conns_.find(fd);
  if (it == conns_.end()) return;
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
  conns_.erase(it);  // UniqueFd closes the socket
  --open_connections_;
}

}  // namespace facility::sim
