#include "daemon/web/live_view.h"

#include <unordered_set>

namespace facility {
namespace {

std::string key_of(const std::string& site, const std::string& cabinet) {
  return site + '\n' + cabinet;
}

}  // namespace

void LiveView::take(std::shared_ptr<const FacilitySnapshot> snap) {
  if (!snap) return;
  std::lock_guard lock(mu_);
  const TimePoint now = snap->computed_at;
  if (now >= next_sample_) {
    // One sample per 30 s step of the clock (the first snapshot at or after each step, stamped
    // with its own time), whatever the model interval.
    const auto step = std::chrono::duration_cast<Clock::duration>(kStep);
    next_sample_ = TimePoint((now.time_since_epoch() / step + 1) * step);
    std::unordered_set<std::string> seen;
    for (const auto& site : snap->sites) {
      for (const auto& cs : site.cabinets) {
        std::string key = key_of(site.site->id, cs.cabinet->id);
        auto& ring = history_[key];
        ring.push_back(Sample{now, cs.power_w});
        while (ring.size() > kSamples) ring.pop_front();
        seen.insert(std::move(key));
      }
    }
    for (auto it = history_.begin(); it != history_.end();) {
      it = seen.count(it->first) ? std::next(it) : history_.erase(it);
    }
  }
  latest_ = std::move(snap);
}

std::shared_ptr<const FacilitySnapshot> LiveView::latest() const {
  std::lock_guard lock(mu_);
  return latest_;
}

std::vector<LiveView::Sample> LiveView::cabinet_history(const std::string& site,
                                                        const std::string& cabinet) const {
  std::lock_guard lock(mu_);
  const auto it = history_.find(key_of(site, cabinet));
  if (it == history_.end()) return {};
  return {it->second.begin(), it->second.end()};
}

}  // namespace facility
