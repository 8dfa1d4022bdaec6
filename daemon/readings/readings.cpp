#include "daemon/readings/readings.h"

namespace facility {

const char* to_string(Quality q) {
  switch (q) {
    case Quality::kGood: return "good";
    case Quality::kStale: return "stale";
    case Quality::kError: return "error";
  }
  return "?";
}

const char* to_string(DeviceState s) {
  switch (s) {
    case DeviceState::kUp: return "up";
    case DeviceState::kPartial: return "partial";
    case DeviceState::kNoData: return "no_data";
    case DeviceState::kDown: return "down";
  }
  return "?";
}

void ReadingStore::put_success(DeviceReading r) {
  r.with_data = 0;
  for (const auto& [name, pv] : r.points) r.with_data += (pv.value || !pv.text.empty()) ? 1 : 0;
  auto shared = std::make_shared<const DeviceReading>(std::move(r));
  std::lock_guard lock(mu_);
  auto& e = entries_[shared->device_id];
  e.health.last_attempt = shared->polled_at;
  e.health.last_success = shared->polled_at;
  e.health.up = true;
  e.health.last_error.clear();
  ++e.health.polls_ok;
  e.reading = std::move(shared);
}

void ReadingStore::put_failure(const std::string& device_id, TimePoint when, std::string error) {
  std::lock_guard lock(mu_);
  auto& e = entries_[device_id];
  e.health.last_attempt = when;
  e.health.up = false;
  e.health.last_error = std::move(error);
  ++e.health.polls_failed;
}

std::unordered_map<std::string, ReadingStore::Entry> ReadingStore::snapshot() const {
  std::lock_guard lock(mu_);
  return entries_;
}

void ReadingStore::retain(const std::function<bool(const std::string&)>& keep) {
  std::lock_guard lock(mu_);
  std::erase_if(entries_, [&keep](const auto& e) { return !keep(e.first); });
}

}  // namespace facility
