#include "bench/legacy/endpoint_poller.h"

#include <modbus.h>
#include <spdlog/spdlog.h>
#include <sys/select.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>

namespace facility::legacy {

using modbus::is_bit_kind;
using modbus::plan_reads;
namespace {

using SteadyClock = std::chrono::steady_clock;

modbus_t* as_ctx(void* p) { return static_cast<modbus_t*>(p); }

// modbus_strerror() calls strerror(), which is not thread-safe: map the codes ourselves.
std::string describe_errno(int e) {
  switch (e) {
    case EMBXILFUN: return "exception 1 (illegal function)";
    case EMBXILADD: return "exception 2 (illegal data address)";
    case EMBXILVAL: return "exception 3 (illegal data value)";
    case EMBXSFAIL: return "exception 4 (server device failure)";
    case EMBXACK: return "exception 5 (acknowledge)";
    case EMBXSBUSY: return "exception 6 (server device busy)";
    case EMBXNACK: return "exception 7 (negative acknowledge)";
    case EMBXMEMPAR: return "exception 8 (memory parity error)";
    case EMBXGPATH: return "exception 10 (gateway path unavailable)";
    case EMBXGTAR: return "exception 11 (gateway target device failed to respond)";
    case EMBBADCRC: return "malformed reply (bad CRC)";
    case EMBBADDATA: return "malformed reply (invalid data)";
    case EMBBADEXC: return "malformed reply (invalid exception code)";
    case EMBMDATA: return "malformed reply (too many data)";
    case EMBBADSLAVE: return "malformed reply (response from another unit)";
    case ETIMEDOUT: return "timeout (no reply within the response timeout)";
    case ECONNRESET: return "connection reset by the device";
    case ECONNREFUSED: return "connection refused";
    case EPIPE: return "connection closed (broken pipe)";
    case EHOSTUNREACH: return "host unreachable";
    case EINVAL: return "invalid request (EINVAL)";
    default: return "I/O error (errno " + std::to_string(e) + ")";
  }
}

RequestResult classify(int e, int* exception_code) {
  if (e > MODBUS_ENOBASE && e < EMBBADCRC) {
    *exception_code = e - MODBUS_ENOBASE;
    return RequestResult::kException;
  }
  if (e == EMBBADCRC || e == EMBBADDATA || e == EMBBADEXC || e == EMBMDATA || e == EMBBADSLAVE) {
    return RequestResult::kMalformed;
  }
  if (e == ETIMEDOUT) return RequestResult::kTimeout;
  return RequestResult::kConnection;
}

// Spread devices' first polls over their interval so an endpoint is not hit by a burst.
std::chrono::milliseconds start_offset(const std::string& id, std::chrono::milliseconds interval) {
  const auto h = std::hash<std::string>{}(id);
  return std::chrono::milliseconds(static_cast<long>(h % static_cast<std::size_t>(
                                                             std::max<long>(1, interval.count()))));
}

void set_timeout(modbus_t* ctx, std::chrono::milliseconds t) {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(t).count();
  modbus_set_response_timeout(ctx, static_cast<uint32_t>(us / 1'000'000),
                              static_cast<uint32_t>(us % 1'000'000));
}

}  // namespace

const char* to_string(RequestResult r) {
  switch (r) {
    case RequestResult::kOk: return "ok";
    case RequestResult::kTimeout: return "timeout";
    case RequestResult::kException: return "exception";
    case RequestResult::kMalformed: return "malformed";
    case RequestResult::kConnection: return "connection";
  }
  return "?";
}

EndpointPoller::EndpointPoller(EndpointOptions opt, std::vector<DeviceSpec> devices,
                               ResultFn on_result, RequestFn on_request)
    : opt_(std::move(opt)), on_result_(std::move(on_result)), on_request_(std::move(on_request)) {
  const auto now = SteadyClock::now();
  for (auto& spec : devices) {
    Scheduled s;
    for (const auto& p : spec.points) s.codecs.emplace_back(p);
    PlanOptions po;
    po.max_registers = spec.max_registers_per_read;
    s.plan = plan_reads(spec.points, po);
    s.next_due = now + start_offset(spec.id, spec.interval);
    s.spec = std::move(spec);
    devices_.push_back(std::move(s));
  }
}

EndpointPoller::~EndpointPoller() {
  stop();
  disconnect();
}

std::string EndpointPoller::key() const {
  return "tcp://" + opt_.host + ":" + std::to_string(opt_.port);
}

void EndpointPoller::start() { thread_ = std::thread([this] { run(); }); }

void EndpointPoller::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool EndpointPoller::wait_until(SteadyClock::time_point t) {
  std::unique_lock lock(mu_);
  return !cv_.wait_until(lock, t, [this] { return stopping_; });
}

void EndpointPoller::disconnect() {
  if (ctx_) {
    modbus_close(as_ctx(ctx_));
    modbus_free(as_ctx(ctx_));
    ctx_ = nullptr;
  }
}

bool EndpointPoller::ensure_connected() {
  if (ctx_) return true;
  const auto now = SteadyClock::now();
  if (now < next_connect_) return false;
  const std::string port = std::to_string(opt_.port);
  modbus_t* ctx = modbus_new_tcp_pi(opt_.host.c_str(), port.c_str());
  if (!ctx) {
    connect_error_ = "cannot create Modbus context for " + key();
    return false;
  }
  // We own recovery: libmodbus' link recovery can loop forever on send.
  modbus_set_error_recovery(ctx, MODBUS_ERROR_RECOVERY_NONE);
  set_timeout(ctx, opt_.connect_timeout);
  if (modbus_connect(ctx) == -1) {
    const int e = errno;
    modbus_free(ctx);
    backoff_ = backoff_.count() == 0 ? opt_.backoff_initial
                                     : std::min(backoff_ * 2, opt_.backoff_max);
    next_connect_ = now + backoff_;
    connect_error_ = "connect to " + key() + " failed: " + describe_errno(e) + "; retry in " +
                     std::to_string(backoff_.count()) + " ms";
    return false;
  }
  if (modbus_get_socket(ctx) >= FD_SETSIZE) {
    // libmodbus 3.1.6 would select() on it and corrupt memory.
    modbus_close(ctx);
    modbus_free(ctx);
    backoff_ = opt_.backoff_max;
    next_connect_ = now + backoff_;
    connect_error_ = "connection to " + key() + " got fd >= " + std::to_string(FD_SETSIZE) +
                     ", which libmodbus 3.1.6 cannot use safely";
    return false;
  }
  ctx_ = ctx;
  backoff_ = std::chrono::milliseconds(0);
  connect_error_.clear();
  return true;
}

PollResult EndpointPoller::poll_device(Scheduled& d) {
  PollResult r;
  r.device_id = d.spec.id;
  const auto t0 = SteadyClock::now();
  auto finish = [&]() -> PollResult {
    r.completed_at = std::chrono::system_clock::now();
    r.duration = SteadyClock::now() - t0;
    return r;
  };
  if (!ensure_connected()) {
    r.error = connect_error_;
    if (on_request_) on_request_({d.spec.id, 0, RequestResult::kConnection, 0});
    return finish();
  }
  modbus_t* ctx = as_ctx(ctx_);
  modbus_set_slave(ctx, d.spec.unit);
  set_timeout(ctx, d.spec.timeout);

  std::vector<std::optional<double>> values(d.spec.points.size());
  std::vector<std::uint16_t> regs(125);
  std::vector<std::uint8_t> bits(2000);
  for (const ReadRequest& req : d.plan) {
    int rc = -1;
    switch (req.kind) {
      case RegisterKind::kCoil:
        rc = modbus_read_bits(ctx, req.address, req.count, bits.data());
        break;
      case RegisterKind::kDiscreteInput:
        rc = modbus_read_input_bits(ctx, req.address, req.count, bits.data());
        break;
      case RegisterKind::kHolding:
        rc = modbus_read_registers(ctx, req.address, req.count, regs.data());
        break;
      case RegisterKind::kInput:
        rc = modbus_read_input_registers(ctx, req.address, req.count, regs.data());
        break;
    }
    const int fc = static_cast<int>(req.kind);
    if (rc != req.count) {
      const int e = rc == -1 ? errno : EMBBADDATA;
      int exc = 0;
      const RequestResult cls = classify(e, &exc);
      if (on_request_) on_request_({d.spec.id, fc, cls, exc});
      r.error = "unit " + std::to_string(d.spec.unit) + " FC" + std::to_string(fc) + " @" +
                std::to_string(req.address) + "+" + std::to_string(req.count) + ": " +
                describe_errno(e);
      // A device exception leaves the connection usable; anything else may have desynchronised
      // the stream (or the peer is gone), so start over on a fresh connection.
      if (cls != RequestResult::kException) {
        modbus_flush(ctx);
        disconnect();
      }
      return finish();
    }
    if (on_request_) on_request_({d.spec.id, fc, RequestResult::kOk, 0});
    for (std::size_t pi : req.points) {
      const PointSpec& p = d.spec.points[pi];
      const std::size_t off = p.address - req.address;
      if (is_bit_kind(req.kind)) {
        values[pi] = d.codecs[pi].decode_bit(bits[off] != 0);
      } else {
        values[pi] = d.codecs[pi].decode_registers(
            std::span<const std::uint16_t>(regs.data() + off, static_cast<std::size_t>(p.width())));
      }
    }
  }
  r.ok = true;
  for (std::size_t i = 0; i < values.size(); ++i) {
    r.values.push_back({d.spec.points[i].name, values[i], d.spec.points[i].unit});
  }
  return finish();
}

void EndpointPoller::run() {
  while (true) {
    if (devices_.empty()) {
      wait_until(SteadyClock::now() + std::chrono::hours(24));
      std::lock_guard lock(mu_);
      if (stopping_) break;
      continue;
    }
    auto next = std::min_element(devices_.begin(), devices_.end(),
                                 [](const Scheduled& a, const Scheduled& b) {
                                   return a.next_due < b.next_due;
                                 });
    if (!wait_until(next->next_due)) break;
    PollResult res = poll_device(*next);
    on_result_(res);
    // Next slot on the device's own grid; if we fell behind by whole intervals, skip them and
    // count the overrun instead of bursting to catch up.
    next->next_due += next->spec.interval;
    const auto now = SteadyClock::now();
    if (next->next_due <= now) {
      overruns_.fetch_add(1);
      const auto behind = now - next->next_due;
      const auto skip = behind / next->spec.interval + 1;
      next->next_due += next->spec.interval * skip;
    }
  }
  disconnect();
}

}  // namespace facility::legacy
