// What the NOC view (daemon/web/routes.h) shows: the newest snapshot of the model, and each
// cabinet's power over the last hour, sampled from the snapshots as they pass. A sink like the
// others (daemon/sinks/sink.h), but owned by the daemon for as long as its HTTP listener, so the
// hour of history survives a reload (cabinets are keyed by site and id; one that a reload
// removes is forgotten at the next sample).
//
// Memory: one sample (24 bytes) per cabinet per 30 s, 120 per cabinet: about 6 MB for 2,000
// cabinets.
//
// Thread-safety: take() from the model thread; latest() and cabinet_history() from any thread
// (an HTTP worker rendering a page).
#pragma once

#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "daemon/sinks/sink.h"

namespace facility {

class LiveView : public Sink {
 public:
  static constexpr std::chrono::seconds kStep{30};
  static constexpr std::size_t kSamples = 120;  // one hour of kStep

  struct Sample {
    TimePoint t{};
    std::optional<double> power_w;  // nullopt: the cabinet's power was unknown (no data)
  };

  void start() override {}
  void take(std::shared_ptr<const FacilitySnapshot> snap) override;
  void stop() override {}
  void health(MetricWriter&) const override {}

  std::shared_ptr<const FacilitySnapshot> latest() const;
  // Oldest first; empty for an unknown cabinet.
  std::vector<Sample> cabinet_history(const std::string& site, const std::string& cabinet) const;

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const FacilitySnapshot> latest_;
  TimePoint next_sample_{};
  std::unordered_map<std::string, std::deque<Sample>> history_;  // "site\ncabinet"
};

}  // namespace facility
