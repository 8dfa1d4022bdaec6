// The history as a sink (daemon/sinks/sink.h): each snapshot is folded into the minute in
// progress on the model thread (HistoryRecorder, microseconds), completed minutes go to the
// writer thread (HistoryWriter), and the writer's health is the facility_history_* families
// (docs/metrics.md, "History").
//
// Monitoring matters more than the history: if the database cannot be opened the sink logs it,
// runs without it and says facility_history_up 0; it never makes the daemon fail to start.
// With history.enabled: false the sink keeps nothing and says facility_history_up 0 too.
//
// Thread-safety: as Sink. The writer is set by start() before the sink is handed to scrapes and
// not replaced afterwards; HistoryWriter::stats() is thread-safe.
#pragma once

#include <memory>
#include <string>

#include "daemon/config/config.h"
#include "daemon/sinks/history/history.h"
#include "daemon/sinks/sink.h"

namespace facility {

class HistorySink : public Sink {
 public:
  explicit HistorySink(std::shared_ptr<const Config> config);
  ~HistorySink() override;

  // Restores the model's energy PUE windows from the database (restore.h).
  void seed(FacilityModel& model, TimePoint now) override;
  void start() override;
  void take(std::shared_ptr<const FacilitySnapshot> snap) override;
  // Writes the minute in progress too, so a clean restart or reload loses nothing.
  void stop() override;
  void health(MetricWriter& out) const override;
  std::string report_source() const override { return writer_ ? writer_->path() : ""; }

 private:
  std::shared_ptr<const Config> config_;
  std::shared_ptr<HistoryWriter> writer_;      // null: disabled or not open
  std::unique_ptr<HistoryRecorder> recorder_;  // model thread only
};

std::shared_ptr<Sink> make_history_sink(const std::shared_ptr<const Config>& config);

}  // namespace facility
