#include "collectors/modbus/serial_poller.h"

#include <fcntl.h>
#include <modbus.h>
#include <sys/select.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "collectors/modbus/engine.h"
#include "collectors/modbus/frame.h"

namespace facility::modbus {
namespace {


void set_timeout(modbus_t* ctx, std::chrono::milliseconds t) {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(t).count();
  modbus_set_response_timeout(ctx, static_cast<uint32_t>(us / 1'000'000),
                              static_cast<uint32_t>(us % 1'000'000));
}

}  // namespace

SerialLinePoller::SerialLinePoller(std::size_t endpoint_index, SerialSpec spec,
                                   std::vector<std::pair<std::size_t, DeviceSpec>> devices,
                                   PollObserver& observer)
    : endpoint_index_(endpoint_index), spec_(std::move(spec)), obs_(observer) {
  for (auto& [idx, ds] : devices) devs_.push_back(Dev{DevicePoll(std::move(ds), idx)});
}

SerialLinePoller::SerialLinePoller(std::size_t endpoint_index, SerialSpec spec,
                                   std::vector<std::pair<std::size_t, DeviceSpec>> devices,
                                   PollObserver& observer, SerialLinePoller& previous)
    : endpoint_index_(endpoint_index), spec_(std::move(spec)), obs_(observer) {
  previous.halt();
  const bool same_line = previous.spec_ == spec_;
  for (auto& [index, ds] : devices) {
    const std::string& id = ds.id;
    auto old = std::find_if(previous.devs_.begin(), previous.devs_.end(),
                            [&id](const Dev& d) { return d.poll.spec().id == id; });
    if (same_line && old != previous.devs_.end() && old->poll.spec() == ds) {
      old->poll.set_index(index);
      devs_.push_back(std::move(*old));
      previous.devs_.erase(old);
      adopted_devices_.push_back(index);
    } else {
      devs_.push_back(Dev{DevicePoll(std::move(ds), index)});
    }
  }
  if (!same_line) return;
  line_adopted_ = static_cast<bool>(previous.ctx_);
  ctx_ = std::move(previous.ctx_);
  next_open_ = previous.next_open_;
  backoff_ = previous.backoff_;
  open_error_ = previous.open_error_;
  unreachable_ = previous.unreachable_;
  last_io_ = previous.last_io_;
}

SerialLinePoller::~SerialLinePoller() {
  stop();
  close_line();
}

void SerialLinePoller::start() {
  if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
}

void SerialLinePoller::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void SerialLinePoller::halt() {
  {
    std::lock_guard lock(mu_);
    keep_line_ = true;
  }
  stop();
}

bool SerialLinePoller::wait_until(SteadyTime t) {
  std::unique_lock lock(mu_);
  return !cv_.wait_until(lock, t, [this] { return stopping_; });
}

void SerialLinePoller::CtxCloser::operator()(modbus_t* ctx) const {
  modbus_close(ctx);  // a no-op on a context that never connected
  modbus_free(ctx);
}

void SerialLinePoller::close_line() {
  if (ctx_) {
    ctx_.reset();
    obs_.on_connection(endpoint_index_, false);
  }
}

bool SerialLinePoller::open_line(std::string& error) {
  if (ctx_) return true;
  const auto now = SteadyClock::now();
  if (now < next_open_) {
    error = open_error_;
    return false;
  }
  auto fail = [&](const std::string& why) {
    backoff_ = backoff_.count() == 0 ? spec_.backoff_initial
                                     : std::min(backoff_ * 2, spec_.backoff_max);
    next_open_ = now + backoff_;
    open_error_ = "open " + spec_.key + " failed: " + why + "; retry in " +
                  std::to_string(backoff_.count()) + " ms";
    error = open_error_;
    if (!unreachable_) {
      unreachable_ = true;
      obs_.on_reachability(endpoint_index_, false, "open failed: " + why);
    }
    return false;
  };
  std::unique_ptr<modbus_t, CtxCloser> ctx(modbus_new_rtu(
      spec_.device.c_str(), spec_.baud, spec_.parity, spec_.data_bits, spec_.stop_bits));
  if (!ctx) return fail("invalid serial settings");
  // We own recovery: libmodbus' link recovery can loop forever.
  modbus_set_error_recovery(ctx.get(), MODBUS_ERROR_RECOVERY_NONE);
  if (modbus_connect(ctx.get()) == -1) {
    const int e = errno;
    // Under systemd the unit sees no devices until the serial-ports.conf drop-in opens them.
    return fail(e == ENOENT   ? "no such device (under systemd: DeviceAllow= drop-in, "
                                "/usr/share/doc/facilityd/examples/serial-ports.conf)"
                : e == EACCES ? "permission denied (the dialout group; under systemd: "
                                "/usr/share/doc/facilityd/examples/serial-ports.conf)"
                : e == EBUSY  ? "device busy"
                              : "errno " + std::to_string(e));
  }
  int fd = modbus_get_socket(ctx.get());
  if (fd >= FD_SETSIZE) {
    // libmodbus 3.1.6 select()s on this fd: move it below FD_SETSIZE or give up.
    const int low = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (low < 0 || low >= FD_SETSIZE) {
      if (low >= 0) ::close(low);
      return fail("no file descriptor below " + std::to_string(FD_SETSIZE) +
                  " free for libmodbus' select()");
    }
    ::close(fd);
    modbus_set_socket(ctx.get(), low);
  }
  ctx_ = std::move(ctx);
  backoff_ = std::chrono::milliseconds(0);
  obs_.on_connection(endpoint_index_, true);
  if (unreachable_) {
    unreachable_ = false;
    obs_.on_reachability(endpoint_index_, true, "");
  }
  last_io_ = now;
  if (spec_.pause_after_connect.count() > 0) wait_until(now + spec_.pause_after_connect);
  return true;
}

// After a timeout or a bad frame: wait for the line to fall silent (3.5 character times, at
// least 1.75 ms as the RTU spec says for fast lines; a late reply lands meanwhile), then drop
// whatever arrived, so the next request starts on a clean line.
void SerialLinePoller::drain_line() {
  if (!ctx_) return;
  const double char_us = 11.0 * 1e6 / std::max(spec_.baud, 1);  // start + 8 data + parity/stop
  const auto silence = std::chrono::microseconds(
      std::max<long>(1750, static_cast<long>(3.5 * char_us)));
  wait_until(SteadyClock::now() + silence);
  modbus_flush(ctx_.get());
  last_io_ = SteadyClock::now();
}

// Sends the current request of `p` on the line and classifies what comes back. `port_failed`
// is set when the tty itself failed (read or write error), not the device.
DevicePoll::Outcome SerialLinePoller::exchange(DevicePoll& p, std::uint8_t* rsp,
                                               bool& port_failed) {
  modbus_t* ctx = ctx_.get();
  const ReadRequest& r = p.request();
  const std::uint8_t unit = static_cast<std::uint8_t>(p.spec().unit);
  const std::uint8_t req[6] = {unit,
                               static_cast<std::uint8_t>(r.kind),
                               static_cast<std::uint8_t>(r.address >> 8),
                               static_cast<std::uint8_t>(r.address & 0xFF),
                               static_cast<std::uint8_t>(r.count >> 8),
                               static_cast<std::uint8_t>(r.count & 0xFF)};
  modbus_set_slave(ctx, unit);
  set_timeout(ctx, p.spec().timeout);
  p.on_sent();
  if (modbus_send_raw_request(ctx, req, sizeof req) == -1) {
    port_failed = true;
    return p.on_connection_lost("write to " + spec_.key + " failed (errno " +
                                std::to_string(errno) + ")");
  }
  const int rc = modbus_receive_confirmation(ctx, rsp);
  last_io_ = SteadyClock::now();
  if (rc == -1) {
    const int e = errno;
    if (e == ETIMEDOUT) return p.on_timeout();
    if (e == EMBBADCRC || e == EMBBADDATA || e == EMBMDATA || e == EMBBADSLAVE) {
      return p.on_malformed(e == EMBBADCRC ? "bad CRC" : "invalid frame");
    }
    port_failed = true;
    return p.on_connection_lost("read from " + spec_.key + " failed (errno " + std::to_string(e) +
                                ")");
  }
  if (rc < 4 || rsp[0] != unit) {
    return p.on_malformed(rc < 4 ? "short frame" : "reply from unit " + std::to_string(rsp[0]));
  }
  // ADU = unit + PDU + CRC (libmodbus has checked the CRC); our parser checks the rest.
  return p.on_reply(std::span<const std::uint8_t>(rsp + 1, static_cast<std::size_t>(rc - 3)));
}

void SerialLinePoller::poll_device(Dev& d, SteadyTime slot) {
  DevicePoll& p = d.poll;
  p.begin(SteadyClock::now(), slot);
  DevicePoll::Outcome o = p.first();
  std::string error;
  if (!open_line(error)) {
    o = p.fail(error);
    obs_.on_request(o.event);
  }
  std::uint8_t rsp[MODBUS_RTU_MAX_ADU_LENGTH];
  // The port itself failed (read/write error: an unplugged adapter). A silent or garbling
  // slave is not fixed by reopening the tty: for those the line is only flushed.
  bool port_failed = false;
  while (o.step != DevicePoll::Step::kDone && o.step != DevicePoll::Step::kDoneReconnect) {
    if (o.step == DevicePoll::Step::kSendAfter && !wait_until(SteadyClock::now() + o.delay)) {
      o = p.fail("stopping");
      break;
    }
    if (o.step == DevicePoll::Step::kReconnectSend) {
      if (port_failed || !ctx_) {
        close_line();
        next_open_ = {};
        if (!open_line(error)) {
          o = p.fail(error);
          obs_.on_request(o.event);
          break;
        }
        port_failed = false;
      } else {
        drain_line();
      }
    }
    if (spec_.pause_between_requests.count() > 0) {
      wait_until(last_io_ + spec_.pause_between_requests);
    }
    o = exchange(p, rsp, port_failed);
    obs_.on_request(o.event);
    if (o.step == DevicePoll::Step::kDoneReconnect) {
      if (port_failed) {
        close_line();
      } else {
        drain_line();  // the next device on the line starts clean
      }
    }
  }
  const auto now = SteadyClock::now();
  PollResult res = p.take_result(now);
  d.backoff_until = p.next_poll(now, now);
  obs_.on_result(std::move(res));
}

void SerialLinePoller::run() {
  const SteadyTime t0 = SteadyClock::now();
  for (auto& d : devs_) {
    if (d.scheduled) continue;  // taken over with its schedule
    const auto& sp = d.poll.spec();
    d.next_slot = t0 + sp.first_poll_offset.value_or(start_offset(sp.id, sp.interval));
    d.scheduled = true;
  }
  while (!devs_.empty()) {
    auto it = std::min_element(devs_.begin(), devs_.end(), [](const Dev& a, const Dev& b) {
      return a.next_slot < b.next_slot;
    });
    if (!wait_until(it->next_slot)) break;
    const SteadyTime slot = it->next_slot;
    const auto interval = it->poll.spec().interval;
    if (SteadyClock::now() >= it->backoff_until) poll_device(*it, slot);
    const NextSlot next = advance_slot(slot, interval, SteadyClock::now());
    for (long i = 0; i < next.skipped; ++i) obs_.on_overrun(it->poll.index());
    it->next_slot = next.at;
  }
  if (devs_.empty()) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return stopping_; });
  }
  bool keep = false;
  {
    std::lock_guard lock(mu_);
    keep = keep_line_;
  }
  if (!keep) close_line();
}

}  // namespace facility::modbus
