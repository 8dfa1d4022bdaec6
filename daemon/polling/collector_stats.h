// Counters about polling itself -- requests by device, function and result, poll durations,
// overruns, endpoint connections, unreadable points -- fed by the pollers (PollObserver calls
// from PollingService) and read by the metrics exposition.
//
// Built for thousands of devices polled every second: configure() lays out one block of
// relaxed atomic counters per device, so counting a request is an array increment, with no
// lock, no map lookup and no string.
//
// Thread-safety: configure() before any poller starts, from one thread; every other method is
// thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "collectors/modbus/device_poll.h"

namespace facility {

class CollectorStats {
 public:
  // Upper bounds (seconds) of the poll-duration histogram buckets.
  static constexpr std::array<double, 10> kDurationBuckets{0.005, 0.01, 0.025, 0.05, 0.1,
                                                           0.25,  0.5,  1.0,   2.5,  5.0};
  static constexpr int kFunctions = 5;  // 0 (nothing sent: no connection), 1..4
  // Result slots: ok, timeout, malformed, connection, exception_1 .. exception_15, exception_other.
  static constexpr int kResults = 20;
  static std::string_view result_label(int slot);

  struct Histogram {
    std::array<std::uint64_t, kDurationBuckets.size()> buckets{};  // non-cumulative
    std::uint64_t count = 0;
    double sum = 0;
  };

  // `device_endpoint[i]`: the endpoint index of device i (empty: unknown; the exposition then
  // cannot aggregate per endpoint).
  void configure(std::vector<std::string> device_ids, std::vector<std::string> endpoint_keys,
                 std::vector<std::size_t> device_endpoint = {});

  // After a reload, right after configure() and before any poller reports: every counter of a
  // device or endpoint that `old` also has (the same id or key) goes on from its value there, so
  // a reload is no counter reset. The unreadable-points gauge carries over for `kept_devices`
  // (their pollers were taken over, with what they learned) and the up state for
  // `open_endpoints` (connections taken over open); the others start as a new poller does.
  void carry_over(const CollectorStats& old, const std::vector<std::size_t>& kept_devices,
                  const std::vector<std::size_t>& open_endpoints);

  void on_request(const modbus::RequestEvent& e);
  void on_poll(std::size_t device, double seconds, bool ok);
  void on_overrun(std::size_t device);
  void on_connection(std::size_t endpoint, bool up);
  void on_discarded(std::size_t endpoint, std::size_t bytes);
  void set_unreadable_points(std::size_t device, std::size_t n);

  const std::vector<std::string>& device_ids() const { return device_ids_; }
  const std::vector<std::string>& endpoint_keys() const { return endpoint_keys_; }
  // Endpoint index of a device; endpoint_keys().size() when unknown.
  std::size_t endpoint_of(std::size_t device) const {
    return device < device_endpoint_.size() ? device_endpoint_[device] : endpoint_keys_.size();
  }

  // Read side (consistent per counter, not across counters).
  void for_each_request(
      const std::function<void(const std::string& device, int function, std::string_view result,
                               std::uint64_t n)>& fn) const;
  Histogram poll_duration(std::size_t device) const;
  std::uint64_t overruns(std::size_t device) const;
  std::uint64_t unreadable_points(std::size_t device) const;
  bool endpoint_up(std::size_t endpoint) const;
  std::uint64_t endpoint_connects(std::size_t endpoint) const;  // successful connects so far
  std::uint64_t endpoint_discarded_bytes(std::size_t endpoint) const;
  std::uint64_t polls(std::size_t device) const;

 private:
  struct Device {
    std::array<std::atomic<std::uint64_t>, kFunctions * kResults> requests{};
    std::array<std::atomic<std::uint64_t>, kDurationBuckets.size() + 1> buckets{};  // + overflow
    std::atomic<std::uint64_t> polls{0};
    std::atomic<std::uint64_t> sum_ns{0};
    std::atomic<std::uint64_t> overruns{0};
    std::atomic<std::uint64_t> unreadable{0};
  };
  struct EndpointState {
    std::atomic<bool> up{false};
    std::atomic<std::uint64_t> connects{0};
    std::atomic<std::uint64_t> discarded_bytes{0};
  };
  std::vector<std::string> device_ids_;
  std::vector<std::string> endpoint_keys_;
  std::vector<std::size_t> device_endpoint_;
  std::unique_ptr<Device[]> devices_;
  std::unique_ptr<EndpointState[]> endpoints_;
};

}  // namespace facility
