#include "collectors/modbus/scan_link.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <modbus/modbus.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "collectors/modbus/device_id.h"

namespace facility::modbus {
namespace {

using SteadyClock = std::chrono::steady_clock;

int ms_until(SteadyClock::time_point deadline) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
  return static_cast<int>(std::max<long long>(0, left.count()));
}

// A non-blocking TCP connection to host:port within `timeout`; -1 with `error` set on failure.
int connect_tcp(const std::string& host, int port, std::chrono::milliseconds timeout,
                std::string& error) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (const int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res)) {
    error = "cannot resolve " + host + ": " + ::gai_strerror(rc);
    return -1;
  }
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    ::freeaddrinfo(res);
    error = "socket: errno " + std::to_string(errno);
    return -1;
  }
  int rc = ::connect(fd, res->ai_addr, res->ai_addrlen);
  ::freeaddrinfo(res);
  if (rc < 0 && errno == EINPROGRESS) {
    pollfd p{fd, POLLOUT, 0};
    rc = ::poll(&p, 1, static_cast<int>(timeout.count()));
    int err = 0;
    socklen_t len = sizeof err;
    if (rc == 1) ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (rc == 1 && err == 0) return fd;
    error = rc == 0 ? "connect timed out" : "connect failed: " + std::string(std::strerror(err));
  } else if (rc == 0) {
    return fd;
  } else {
    error = "connect failed: " + std::string(std::strerror(errno));
  }
  ::close(fd);
  return -1;
}

}  // namespace

// libmodbus only opens and configures the tty (termios, RS-485 timing); the bytes are ours.
struct ScanLink::Serial {
  modbus_t* ctx = nullptr;
  ~Serial() {
    if (!ctx) return;
    modbus_close(ctx);
    modbus_free(ctx);
  }
};

ScanLink::ScanLink(LinkSpec spec) : spec_(std::move(spec)) {}

ScanLink::~ScanLink() { close(); }

void ScanLink::close() {
  if (serial_) {
    serial_.reset();  // closes the tty
  } else if (fd_ >= 0) {
    ::close(fd_);
  }
  fd_ = -1;
  in_.clear();
}

bool ScanLink::open(std::string& error) {
  if (fd_ >= 0) return true;
  if (spec_.kind == LinkSpec::Kind::kSerial) {
    auto s = std::make_unique<Serial>();
    s->ctx = modbus_new_rtu(spec_.device.c_str(), spec_.baud, spec_.parity, 8, spec_.stop_bits);
    if (!s->ctx || modbus_connect(s->ctx) == -1) {
      error = "cannot open " + spec_.device + ": " + std::strerror(errno);
      return false;
    }
    fd_ = modbus_get_socket(s->ctx);
    serial_ = std::move(s);
  } else {
    fd_ = connect_tcp(spec_.host, spec_.port, spec_.connect_timeout, error);
    if (fd_ < 0) return false;
  }
  if (spec_.pause_after_connect.count() > 0) std::this_thread::sleep_for(spec_.pause_after_connect);
  return true;
}

bool ScanLink::send_all(const std::vector<std::uint8_t>& bytes, std::string& error) {
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t n = serial_ ? ::write(fd_, bytes.data() + sent, bytes.size() - sent)
                              : ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
      pollfd p{fd_, POLLOUT, 0};
      ::poll(&p, 1, 100);
      continue;
    }
    if (n <= 0) {
      error = "write failed: " + std::string(std::strerror(errno));
      return false;
    }
    sent += static_cast<std::size_t>(n);
  }
  return true;
}

bool ScanLink::read_more(SteadyClock::time_point deadline, bool& closed) {
  closed = false;
  pollfd p{fd_, POLLIN, 0};
  const int rc = ::poll(&p, 1, ms_until(deadline));
  if (rc <= 0) return false;
  std::uint8_t buf[512];
  const ssize_t n = ::read(fd_, buf, sizeof buf);
  if (n <= 0) {
    closed = n == 0 || (errno != EINTR && errno != EAGAIN);
    return !closed;
  }
  in_.insert(in_.end(), buf, buf + n);
  return true;
}

// After a timeout on an RTU link: let a late reply arrive, then drop it.
void ScanLink::drain() {
  const auto until = SteadyClock::now() + std::chrono::milliseconds(50);
  bool closed = false;
  while (read_more(until, closed)) {
  }
  in_.clear();
  dirty_ = false;
}

LinkReply ScanLink::exchange(std::uint8_t unit, std::span<const std::uint8_t> pdu,
                             std::chrono::milliseconds timeout) {
  LinkReply r;
  for (int attempt = 0; attempt < 2; ++attempt) {  // once more on a fresh connection
    if (!open(r.error)) return r;
    if (dirty_) drain();
    std::vector<std::uint8_t> frame;
    const bool tcp = spec_.kind == LinkSpec::Kind::kTcp;
    if (tcp) {
      ++tid_;
      const auto len = static_cast<std::uint16_t>(pdu.size() + 1);
      frame = {static_cast<std::uint8_t>(tid_ >> 8), static_cast<std::uint8_t>(tid_), 0,   0,
               static_cast<std::uint8_t>(len >> 8),  static_cast<std::uint8_t>(len),  unit};
      frame.insert(frame.end(), pdu.begin(), pdu.end());
    } else {
      frame.push_back(unit);
      frame.insert(frame.end(), pdu.begin(), pdu.end());
      const std::uint16_t crc = crc16(frame);
      frame.push_back(static_cast<std::uint8_t>(crc & 0xFF));
      frame.push_back(static_cast<std::uint8_t>(crc >> 8));
      in_.clear();
    }
    if (!send_all(frame, r.error)) {
      close();
      continue;
    }
    const auto deadline = SteadyClock::now() + timeout;
    r = tcp ? receive_tcp(tid_, unit, deadline) : receive_rtu(unit, deadline);
    if (r.status != LinkReply::Status::kFailed) return r;
    close();
  }
  return r;
}

LinkReply ScanLink::receive_tcp(std::uint16_t tid, std::uint8_t unit,
                                SteadyClock::time_point deadline) {
  LinkReply r;
  for (;;) {
    while (in_.size() >= kMbapHeaderSize) {
      const std::uint16_t got = static_cast<std::uint16_t>(in_[0] << 8 | in_[1]);
      const std::size_t len = static_cast<std::size_t>(in_[4] << 8 | in_[5]);
      if (in_[2] != 0 || in_[3] != 0 || len < 2 || len > 254) {
        in_.clear();
        r.status = LinkReply::Status::kFailed;  // the stream is out of step: reconnect
        r.error = "malformed MBAP header";
        return r;
      }
      if (in_.size() < 6 + len) break;
      std::vector<std::uint8_t> frame(in_.begin(),
                                      in_.begin() + static_cast<std::ptrdiff_t>(6 + len));
      in_.erase(in_.begin(), in_.begin() + static_cast<std::ptrdiff_t>(6 + len));
      if (got != tid) continue;  // a late reply to an earlier request
      if (frame[6] != unit) {
        r.status = LinkReply::Status::kMalformed;
        r.error = "reply from unit " + std::to_string(frame[6]);
        return r;
      }
      r.status = LinkReply::Status::kReply;
      r.pdu.assign(frame.begin() + 7, frame.end());
      return r;
    }
    bool closed = false;
    if (!read_more(deadline, closed)) {
      r.status = closed ? LinkReply::Status::kFailed : LinkReply::Status::kTimeout;
      r.error = closed ? "connection closed" : "timeout";
      return r;
    }
  }
}

LinkReply ScanLink::receive_rtu(std::uint8_t unit, SteadyClock::time_point deadline) {
  LinkReply r;
  for (;;) {
    if (const auto size = rtu_reply_size(in_)) {
      if (*size == 0 || *size > kMaxAduSize) {
        dirty_ = true;
        r.status = LinkReply::Status::kMalformed;
        r.error = "unexpected function code in the reply";
        return r;
      }
      if (in_.size() >= *size) {
        const std::uint16_t crc = crc16(std::span(in_.data(), *size - 2));
        const bool crc_ok = (in_[*size - 2] | (in_[*size - 1] << 8)) == crc;
        r.status =
            crc_ok && in_[0] == unit ? LinkReply::Status::kReply : LinkReply::Status::kMalformed;
        r.error = !crc_ok ? "bad CRC" : "reply from unit " + std::to_string(in_[0]);
        if (r.status == LinkReply::Status::kReply) {
          r.pdu.assign(in_.begin() + 1, in_.begin() + static_cast<std::ptrdiff_t>(*size - 2));
        }
        in_.erase(in_.begin(), in_.begin() + static_cast<std::ptrdiff_t>(*size));
        dirty_ = r.status != LinkReply::Status::kReply || !in_.empty();
        return r;
      }
    }
    bool closed = false;
    if (!read_more(deadline, closed)) {
      dirty_ = true;
      r.status = closed ? LinkReply::Status::kFailed : LinkReply::Status::kTimeout;
      r.error = closed ? "connection closed" : "timeout";
      return r;
    }
  }
}

}  // namespace facility::modbus
