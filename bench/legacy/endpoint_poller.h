// THE PREVIOUS DESIGN, kept for benchmarks only (bench/modbus_bench.cpp compares it with
// collectors/modbus/engine.h in the same run). Unchanged from git history except for the
// namespace (facility::legacy), so that both designs link into one binary.
//
// Polling of the devices behind one Modbus TCP endpoint (a device, or a gateway in front of a
// serial bus) with libmodbus.
//
// One EndpointPoller owns one connection and one thread: an endpoint answers one request at a
// time, so its devices are polled in turn, each at its own interval with start offsets spread
// over the interval. A dead or slow device only costs its own endpoint's time; other endpoints
// have their own threads.
//
// Only read function codes (1-4) are ever sent: this class has no write path.
//
// libmodbus 3.1.6 (Debian 12) waits with select(), which corrupts memory for fds >= 1024; a
// connection whose socket lands at or above FD_SETSIZE is refused and reported instead of used.
//
// Thread-safety: start()/stop() from one owner thread; the result callback is invoked on the
// poller's own thread and must be thread-safe with respect to the caller's other state.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "collectors/modbus/codec.h"
#include "collectors/modbus/planner.h"

namespace facility::legacy {

using modbus::PlanOptions;
using modbus::PointCodec;
using modbus::PointSpec;
using modbus::ReadRequest;
using modbus::RegisterKind;

struct DeviceSpec {
  std::string id;
  int unit = 1;
  std::chrono::milliseconds interval{15000};
  std::chrono::milliseconds timeout{1000};
  int max_registers_per_read = 125;
  std::vector<PointSpec> points;
};

// Outcome class of one request, as counted in facility_modbus_requests_total{result}.
enum class RequestResult { kOk, kTimeout, kException, kMalformed, kConnection };
const char* to_string(RequestResult r);

struct PolledValue {
  std::string name;
  std::optional<double> value;  // nullopt: the device reported "not available"
  std::string unit;
};

struct PollResult {
  std::string device_id;
  bool ok = false;            // every request of the cycle succeeded
  std::string error;          // first error, human-readable
  std::chrono::system_clock::time_point completed_at;
  std::chrono::nanoseconds duration{0};
  std::vector<PolledValue> values;  // only when ok
};

struct RequestEvent {
  std::string device_id;
  int function = 0;
  RequestResult result = RequestResult::kOk;
  int exception_code = 0;  // when result == kException
};

struct EndpointOptions {
  std::string host;
  int port = 502;
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds backoff_initial{1000};
  std::chrono::milliseconds backoff_max{60000};
};

class EndpointPoller {
 public:
  using ResultFn = std::function<void(const PollResult&)>;
  using RequestFn = std::function<void(const RequestEvent&)>;

  EndpointPoller(EndpointOptions opt, std::vector<DeviceSpec> devices, ResultFn on_result,
                 RequestFn on_request = nullptr);
  ~EndpointPoller();
  EndpointPoller(const EndpointPoller&) = delete;
  EndpointPoller& operator=(const EndpointPoller&) = delete;

  void start();
  void stop();  // idempotent; returns when the thread has exited

  std::uint64_t overruns() const { return overruns_.load(); }
  std::string key() const;

 private:
  struct Scheduled {
    DeviceSpec spec;
    std::vector<PointCodec> codecs;
    std::vector<ReadRequest> plan;
    std::chrono::steady_clock::time_point next_due;
  };

  void run();
  bool ensure_connected();
  void disconnect();
  PollResult poll_device(Scheduled& d);
  bool wait_until(std::chrono::steady_clock::time_point t);

  EndpointOptions opt_;
  std::vector<Scheduled> devices_;
  ResultFn on_result_;
  RequestFn on_request_;

  void* ctx_ = nullptr;  // modbus_t*, only touched by the poller thread
  std::chrono::steady_clock::time_point next_connect_{};
  std::chrono::milliseconds backoff_{0};
  std::string connect_error_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
  std::atomic<std::uint64_t> overruns_{0};
};

}  // namespace facility::legacy
