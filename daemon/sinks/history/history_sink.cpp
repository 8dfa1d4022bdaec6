#include "daemon/sinks/history/history_sink.h"

#include <spdlog/spdlog.h>

namespace facility {

using metrics_detail::Labels;
using metrics_detail::Type;

HistorySink::HistorySink(std::shared_ptr<const Config> config) : config_(std::move(config)) {}

HistorySink::~HistorySink() { stop(); }

void HistorySink::seed(FacilityModel& model, TimePoint now) {
  if (config_->history.enabled) restore_energy_windows(model, history_path(*config_), now);
}

void HistorySink::start() {
  if (!config_->history.enabled) return;
  const std::string path = history_path(*config_);
  auto writer = std::make_shared<HistoryWriter>(config_, path);
  try {
    writer->start();
  } catch (const std::exception& e) {
    // Monitoring matters more than the history: run without it, and say so (and
    // facility_history_up says 0).
    spdlog::error("history disabled: {} (set daemon.state_dir, or history.enabled: false)",
                  e.what());
    return;
  }
  writer_ = std::move(writer);
  recorder_ = std::make_unique<HistoryRecorder>(config_);
  spdlog::info("history in {}", path);
}

void HistorySink::take(std::shared_ptr<const FacilitySnapshot> snap) {
  if (!recorder_ || !writer_) return;
  auto minutes = recorder_->add(*snap);
  if (!minutes.empty()) writer_->submit(std::move(minutes));
}

void HistorySink::stop() {
  if (!writer_) return;
  if (recorder_) writer_->submit(recorder_->flush());
  recorder_.reset();
  writer_->stop();
}

void HistorySink::health(MetricWriter& out) const {
  const HistoryWriter* writer = writer_.get();
  const HistoryStats s = writer ? writer->stats() : HistoryStats{};
  const Labels none;
  out.family("facility_history_up",
             "1 if the history is open and its last write succeeded, 0 otherwise.", Type::kGauge)
      .gauge(none, writer && s.ok ? 1.0 : 0.0);
  out.family("facility_history_enabled",
             "1 if the history is configured (history.enabled), 0 if not; with "
             "facility_history_up it tells a history that is down from one that is off.",
             Type::kGauge)
      .gauge(none, config_->history.enabled ? 1.0 : 0.0);
  if (!writer) return;
  out.family("facility_history_records_written_total",
             "Site-minute records (one per site and minute) written to the history database.",
             Type::kCounter)
      .counter(none, double(s.minutes_written));
  out.family("facility_history_records_dropped_total",
             "Site-minute records dropped because they waited longer than history.max_pending "
             "(disk slow or failing).",
             Type::kCounter)
      .counter(none, double(s.minutes_dropped));
  out.family("facility_history_write_errors_total",
             "Failed history transactions (each is retried).", Type::kCounter)
      .counter(none, double(s.write_errors));
  out.family("facility_history_pending_records",
             "Completed site-minute records waiting to be written.", Type::kGauge)
      .gauge(none, double(s.pending));
  out.family("facility_history_database_bytes",
             "Size of the history database and its write-ahead log, bytes.", Type::kGauge)
      .gauge(none, double(s.db_bytes));
  if (s.last_write_unix > 0) {
    out.family("facility_history_last_write_timestamp_seconds",
               "When the last history transaction committed, unix seconds.", Type::kGauge)
        .gauge(none, s.last_write_unix);
    out.family("facility_history_last_write_duration_seconds",
               "How long the last history transaction took, seconds.", Type::kGauge)
        .gauge(none, s.last_write_duration_s);
  }
}

std::shared_ptr<Sink> make_history_sink(const std::shared_ptr<const Config>& config) {
  return std::make_shared<HistorySink>(config);
}

}  // namespace facility
