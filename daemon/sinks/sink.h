// A sink: where the facility model's snapshots go. The daemon holds its sinks as one list
// (daemon/app/sinks.cpp registers them) and does the same with each: start() once, take() every
// snapshot of the model, stop() once, and health() at every /metrics scrape. The core never
// names a concrete sink. Implementations: the Prometheus exposition (sinks/prometheus), the
// MQTT publisher (sinks/mqtt) and the history (sinks/history).
//
// A new sink (an InfluxDB line-protocol writer, say) is a folder under daemon/sinks/ with a
// class implementing this interface and a factory, plus one line in daemon/app/sinks.cpp.
//
// Thread-safety (what every implementation guarantees): seed(), start() and stop() are called by
// the daemon's owning thread; take() by the model thread, once per model cycle (and once by the
// owning thread, with the model's first snapshot, before the model thread starts), and must return
// quickly (hand the snapshot to the sink's own thread, never wait on disk or network);
// health() may be called from any thread at any time, including concurrently with take() and
// after stop().
#pragma once

#include <memory>
#include <string>

#include "daemon/model/model.h"
#include "daemon/sinks/metric_writer.h"

namespace facility {

class Sink {
 public:
  virtual ~Sink() = default;

  // Before the model's first update (and before start()): a sink that keeps model state across
  // restarts gives it back to the new model. The history restores the energy PUE windows
  // (sinks/history/restore.h). Default: nothing.
  virtual void seed(FacilityModel& /*model*/, TimePoint /*now*/) {}
  // Starts the sink's threads and connections. Throws std::runtime_error (or what a library
  // throws) if the sink cannot run at all; a sink that can run degraded (the history without
  // its database) logs it, says so in health() and does not throw.
  virtual void start() = 0;
  // The newest snapshot of the model. Never blocks the model thread.
  virtual void take(std::shared_ptr<const FacilitySnapshot> snap) = 0;
  // Flushes what the sink holds (as far as it can) and stops its threads. Idempotent.
  virtual void stop() = 0;
  // The sink's own health metrics (facility_mqtt_*, facility_history_*), written into the live
  // part of /metrics through the same writer as every other family (docs/metrics.md).
  virtual void health(MetricWriter& out) const = 0;
  // A history database that capacity reports can be computed from, or "" (the default) when
  // the sink keeps none or cannot open it.
  virtual std::string report_source() const { return {}; }
};

}  // namespace facility
