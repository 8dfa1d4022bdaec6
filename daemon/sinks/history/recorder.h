// HistoryRecorder: folds model snapshots into the minute in progress, on the model thread
// (daemon/sinks/history/history.h has the whole picture).
//
// Thread-safety: none; one thread (the model's) calls add() and flush().
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "daemon/config/config.h"
#include "daemon/model/model.h"
#include "daemon/sinks/history/records.h"

namespace facility {

// Folds snapshots into minutes. Runs on the model thread; not thread-safe.
class HistoryRecorder {
 public:
  // Seconds one cycle may stand for at most: 3 x the longest automatic model step (5 s, see
  // auto_model_step), so a late step still counts whole and a stall is not stretched.
  static constexpr double kMaxSampleGap = 15.0;

  explicit HistoryRecorder(std::shared_ptr<const Config> config);
  // Adds one snapshot; returns the minutes it completed (those before the snapshot's minute).
  std::vector<MinuteRecord> add(const FacilitySnapshot& snap);
  // The minutes in progress (partial), e.g. at shutdown.
  std::vector<MinuteRecord> flush();

 private:
  struct SiteState {
    std::optional<MinuteRecord> current;
    std::vector<int> last_overload;  // previous overload state per cabinet
  };
  std::shared_ptr<const Config> config_;
  std::vector<SiteState> sites_;
  std::optional<TimePoint> last_;
};

}  // namespace facility
