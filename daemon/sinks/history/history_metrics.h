// facility_history_* metrics: the health of the history writer (minutes written, dropped,
// write errors, pending, database size), written into the /metrics body next to the facility
// families; documented in docs/metrics.md ("History").
//
// Thread-safety: reentrant; reads HistoryWriter::stats(), which is thread-safe.
#pragma once

#include "daemon/sinks/history/history.h"
#include "daemon/sinks/metric_writer.h"

namespace facility {

// `writer` null: history disabled or not open (facility_history_up 0).
void render_history_metrics(metrics_detail::Families& fam, const HistoryWriter* writer);

}  // namespace facility
