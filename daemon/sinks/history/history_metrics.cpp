#include "daemon/sinks/history/history_metrics.h"

namespace facility {

void render_history_metrics(metrics_detail::Families& fam, const HistoryWriter* writer) {
  using metrics_detail::Labels;
  using metrics_detail::Type;
  const HistoryStats s = writer ? writer->stats() : HistoryStats{};
  const Labels none;
  fam.family("facility_history_up",
             "1 if the history is open and its last write succeeded, 0 otherwise.", Type::kGauge)
      .gauge(none, writer && s.ok ? 1.0 : 0.0);
  if (!writer) return;
  fam.family("facility_history_records_written_total",
             "Site-minute records (one per site and minute) written to the history database.",
             Type::kCounter)
      .counter(none, double(s.minutes_written));
  fam.family("facility_history_records_dropped_total",
             "Site-minute records dropped because they waited longer than history.max_pending "
             "(disk slow or failing).",
             Type::kCounter)
      .counter(none, double(s.minutes_dropped));
  fam.family("facility_history_write_errors_total",
             "Failed history transactions (each is retried).", Type::kCounter)
      .counter(none, double(s.write_errors));
  fam.family("facility_history_pending_records",
             "Completed site-minute records waiting to be written.", Type::kGauge)
      .gauge(none, double(s.pending));
  fam.family("facility_history_database_bytes",
             "Size of the history database and its write-ahead log, bytes.", Type::kGauge)
      .gauge(none, double(s.db_bytes));
  if (s.last_write_unix > 0) {
    fam.family("facility_history_last_write_timestamp_seconds",
               "When the last history transaction committed, unix seconds.", Type::kGauge)
        .gauge(none, s.last_write_unix);
    fam.family("facility_history_last_write_duration_seconds",
               "How long the last history transaction took, seconds.", Type::kGauge)
        .gauge(none, s.last_write_duration_s);
  }
}

}  // namespace facility
