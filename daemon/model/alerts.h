// Alert state machines of the facility model: conditions with hysteresis and hold time, and the
// book of current and recently cleared alerts that becomes FacilitySnapshot::alerts.
//
// Time is injected (every call takes `now`), so tests drive these with a synthetic clock.
// Thread-safety: none; owned by FacilityModel, used by the model thread only.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "daemon/model/model.h"

namespace facility::model_detail {

// A boolean condition with hysteresis and a hold time. It becomes active once `raise` has been
// true at every update for at least `hold`, and inactive once `clear` has been true for `hold`.
// Hysteresis lives in the caller's two conditions (raise: u >= 0.80; clear: u < 0.75), so a
// value between them keeps the state. Unknown input (nullopt) keeps the state and restarts the
// pending timer: a state never changes without continuous evidence.
class HoldAlarm {
 public:
  // Returns true when the state changed.
  bool update(std::optional<bool> raise, std::optional<bool> clear, TimePoint now,
              std::chrono::milliseconds hold);
  bool active() const { return active_; }
  TimePoint since() const { return since_; }

 private:
  bool active_ = false;
  std::optional<TimePoint> pending_;
  TimePoint since_{};
};

// Two HoldAlarms, warning and critical; the level is the highest active one.
class LevelAlarm {
 public:
  struct Conditions {
    std::optional<bool> raise, clear;
  };
  bool update(Conditions warning, Conditions critical, TimePoint now,
              std::chrono::milliseconds hold);
  OverloadState level() const;

 private:
  HoldAlarm warning_, critical_;
};

// Alerts by (site, kind, subject): every raised one, and cleared ones until their retention
// has passed.
class AlertBook {
 public:
  struct Report {
    std::string site, kind, subject;
    OverloadState level = OverloadState::kOk;
    std::optional<double> value, threshold;
    std::string unit;
  };
  // The condition's current (hysteretic) level. A change of level is a transition: raised,
  // escalated / de-escalated (severity changes, `since` restarts) or cleared. `message`
  // describes the condition; it is called only on a transition ("cleared: " is prefixed).
  void report(const Report& r, const std::function<std::string()>& message, TimePoint now,
              std::chrono::milliseconds retention);
  // Forgets cleared alerts older than their retention and appends the others to `out`.
  void collect(TimePoint now, std::vector<AlertState>& out);

 private:
  struct Entry {
    AlertState state;
    std::chrono::milliseconds retention{};
  };
  std::map<std::tuple<std::string, std::string, std::string>, Entry> alerts_;
};

}  // namespace facility::model_detail
