#include "daemon/collector_stats.h"

namespace facility {

void CollectorStats::on_request(const modbus::RequestEvent& e) {
  std::string result = modbus::to_string(e.result);
  if (e.result == modbus::RequestResult::kException) {
    result += "_" + std::to_string(e.exception_code);
  }
  std::lock_guard lock(mu_);
  ++requests_[{e.device_id, e.function, std::move(result)}];
}

void CollectorStats::on_poll(const std::string& device, double seconds) {
  std::lock_guard lock(mu_);
  auto& h = durations_[device];
  ++h.count;
  h.sum += seconds;
  for (std::size_t i = 0; i < kDurationBuckets.size(); ++i) {
    if (seconds <= kDurationBuckets[i]) {
      ++h.buckets[i];
      break;
    }
  }
}

std::map<CollectorStats::RequestKey, std::uint64_t> CollectorStats::requests() const {
  std::lock_guard lock(mu_);
  return requests_;
}

std::map<std::string, CollectorStats::Histogram> CollectorStats::poll_durations() const {
  std::lock_guard lock(mu_);
  return durations_;
}

}  // namespace facility
