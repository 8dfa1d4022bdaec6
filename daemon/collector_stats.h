// Counters about polling itself (requests by result, poll durations, overruns), fed by the
// endpoint pollers' callbacks and read by the metrics exposition.
//
// Thread-safety: all methods are thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "collectors/modbus/endpoint_poller.h"

namespace facility {

class CollectorStats {
 public:
  // Upper bounds (seconds) of the poll-duration histogram buckets.
  static constexpr std::array<double, 10> kDurationBuckets{0.005, 0.01, 0.025, 0.05, 0.1,
                                                           0.25,  0.5,  1.0,   2.5,  5.0};
  struct Histogram {
    std::array<std::uint64_t, kDurationBuckets.size()> buckets{};  // non-cumulative
    std::uint64_t count = 0;
    double sum = 0;
  };
  // (device, function, result label) -> count
  using RequestKey = std::tuple<std::string, int, std::string>;

  void on_request(const modbus::RequestEvent& e);
  void on_poll(const std::string& device, double seconds);

  std::map<RequestKey, std::uint64_t> requests() const;
  std::map<std::string, Histogram> poll_durations() const;

 private:
  mutable std::mutex mu_;
  std::map<RequestKey, std::uint64_t> requests_;
  std::map<std::string, Histogram> durations_;
};

}  // namespace facility
