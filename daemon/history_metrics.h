// facility_history_* metrics: the health of the history writer (minutes written, dropped,
// write errors, pending, database size). A Collectable of its own, registered on the Exposer
// next to the snapshot collectable; documented in docs/metrics.md ("History").
//
// Thread-safety: Collect() may be called from any thread; it reads HistoryWriter::stats().
#pragma once

#include <prometheus/collectable.h>

#include "daemon/history.h"

namespace facility {

class HistoryCollectable : public prometheus::Collectable {
 public:
  explicit HistoryCollectable(const HistoryWriter* writer) : writer_(writer) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const HistoryWriter* writer_;  // null: history disabled or not open
};

}  // namespace facility
