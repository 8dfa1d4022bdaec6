#include "daemon/history_metrics.h"

#include "daemon/metrics_util.h"

namespace facility {

std::vector<prometheus::MetricFamily> HistoryCollectable::Collect() const {
  using namespace metrics_detail;
  Families fam;
  const HistoryStats s = writer_ ? writer_->stats() : HistoryStats{};
  gauge(fam.family("facility_history_up",
                   "1 if the history is open and its last write succeeded, 0 otherwise.",
                   MetricType::Gauge),
        {}, writer_ && s.ok ? 1.0 : 0.0);
  if (writer_) {
    counter(fam.family("facility_history_records_written_total",
                       "Site-minute records (one per site and minute) written to the history database.", MetricType::Counter),
            {}, double(s.minutes_written));
    counter(fam.family("facility_history_records_dropped_total",
                       "Site-minute records dropped because they waited longer than history.max_pending "
                       "(disk slow or failing).",
                       MetricType::Counter),
            {}, double(s.minutes_dropped));
    counter(fam.family("facility_history_write_errors_total",
                       "Failed history transactions (each is retried).", MetricType::Counter),
            {}, double(s.write_errors));
    gauge(fam.family("facility_history_pending_records",
                     "Completed site-minute records waiting to be written.", MetricType::Gauge),
          {}, double(s.pending));
    gauge(fam.family("facility_history_database_bytes",
                     "Size of the history database and its write-ahead log, bytes.",
                     MetricType::Gauge),
          {}, double(s.db_bytes));
    if (s.last_write_unix > 0) {
      gauge(fam.family("facility_history_last_write_timestamp_seconds",
                       "When the last history transaction committed, unix seconds.",
                       MetricType::Gauge),
            {}, s.last_write_unix);
      gauge(fam.family("facility_history_last_write_duration_seconds",
                       "How long the last history transaction took, seconds.", MetricType::Gauge),
            {}, s.last_write_duration_s);
    }
  }
  return fam.take();
}

}  // namespace facility
