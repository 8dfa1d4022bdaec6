#include "daemon/model/alerts.h"

namespace facility::model_detail {

bool HoldAlarm::update(std::optional<bool> raise, std::optional<bool> clear, TimePoint now,
                       std::chrono::milliseconds hold) {
  const std::optional<bool>& toward = active_ ? clear : raise;
  if (!toward || !*toward) {
    pending_.reset();
    return false;
  }
  if (!pending_) pending_ = now;
  if (now - *pending_ < hold) return false;
  active_ = !active_;
  since_ = now;
  pending_.reset();
  return true;
}

bool LevelAlarm::update(Conditions warning, Conditions critical, TimePoint now,
                        std::chrono::milliseconds hold) {
  const bool a = warning_.update(warning.raise, warning.clear, now, hold);
  const bool b = critical_.update(critical.raise, critical.clear, now, hold);
  return a || b;
}

OverloadState LevelAlarm::level() const {
  if (critical_.active()) return OverloadState::kCritical;
  if (warning_.active()) return OverloadState::kWarning;
  return OverloadState::kOk;
}

void AlertBook::report(const Report& r, const std::function<std::string()>& message, TimePoint now,
                       std::chrono::milliseconds retention) {
  const auto key = std::make_tuple(r.site, r.kind, r.subject);
  auto it = alerts_.find(key);
  const bool raise = r.level != OverloadState::kOk;
  if (it == alerts_.end()) {
    if (!raise) return;  // never raised: nothing to say
    it = alerts_.emplace(key, Entry{}).first;
    it->second.state.site = r.site;
    it->second.state.kind = r.kind;
    it->second.state.subject = r.subject;
  }
  Entry& e = it->second;
  e.retention = retention;
  AlertState& a = e.state;
  const std::string severity = to_string(r.level);
  if (raise && (!a.raised || a.severity != severity)) {
    a.raised = true;
    a.severity = severity;
    a.value = r.value;
    a.threshold = r.threshold;
    a.unit = r.unit;
    a.since = now;
    a.message = message();
  } else if (!raise && a.raised) {
    a.raised = false;  // severity stays: the last raised one
    a.value = r.value;
    a.since = now;
    a.message = "cleared: " + message();
  }
}

void AlertBook::collect(TimePoint now, std::vector<AlertState>& out) {
  for (auto it = alerts_.begin(); it != alerts_.end();) {
    const Entry& e = it->second;
    if (!e.state.raised && now - e.state.since > e.retention) {
      it = alerts_.erase(it);
      continue;
    }
    out.push_back(e.state);
    ++it;
  }
}

}  // namespace facility::model_detail
