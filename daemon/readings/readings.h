// Latest decoded readings per device, as produced by the collectors.
//
// ReadingStore is written by poll workers and read by the model; it is thread-safe.
// A DeviceReading is one complete poll cycle of one device: all its points come from the same
// cycle, so a consumer never mixes two cycles of one device.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "daemon/readings/point_map.h"

namespace facility {

enum class Quality { kGood, kStale, kError };
const char* to_string(Quality q);

// What a device gives, as the NOC sees it (docs/metrics.md, facility_device_state):
//   up        fresh data, every configured point read
//   partial   fresh data, but the device refuses some points' addresses (a profile problem)
//   no_data   it answers, but not one point gave a value (every read refused, or all "not
//             available"): as good as down for the facility, and alerted like it
//   down      its last poll failed, or its data is stale
enum class DeviceState { kUp, kPartial, kNoData, kDown };
const char* to_string(DeviceState s);

struct DeviceReading {
  std::string device_id;
  TimePoint polled_at{};                    // when the cycle completed
  PointMap points;                          // by point name; only points read this cycle
  bool complete = true;                      // every configured point was read
  std::size_t unreadable = 0;  // points the device refuses (exception 1, 2 or 3)
  // Points that gave something: a value, an enumeration name or a string. 0 = "no data".
  // Counted by ReadingStore::put_success.
  std::size_t with_data = 0;
};

struct DeviceHealth {
  TimePoint last_attempt{};
  TimePoint last_success{};  // epoch = never
  bool up = false;           // the last poll cycle succeeded
  std::string last_error;
  std::uint64_t polls_ok = 0;
  std::uint64_t polls_failed = 0;
};

class ReadingStore {
 public:
  void put_success(DeviceReading r);
  void put_failure(const std::string& device_id, TimePoint when, std::string error);

  struct Entry {
    std::shared_ptr<const DeviceReading> reading;  // last successful cycle, may be null
    DeviceHealth health;
  };
  // A copy of every device's latest state, for one model run.
  std::unordered_map<std::string, Entry> snapshot() const;
  // Forgets every device for which keep(device_id) is false (a configuration reload removed or
  // changed it, so its last reading no longer means what the new configuration says).
  void retain(const std::function<bool(const std::string& device_id)>& keep);

 private:
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;
};

}  // namespace facility
