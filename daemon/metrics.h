// Prometheus exposition of the facility model and of facilityd's own health.
//
// SnapshotCollectable renders, at scrape time, the newest immutable FacilitySnapshot: a scrape
// never mixes two poll cycles of one device and never takes a lock that polling holds for long.
// Values that are not fresh are absent (no series), never frozen at their last value.
//
// Every family is documented in docs/metrics.md. Names use base units (watts, celsius, ratio,
// seconds) and `_total` for counters.
//
// Thread-safety: Collect() may be called from any thread (civetweb workers).
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <functional>
#include <memory>
#include <vector>

#include "daemon/collector_stats.h"
#include "daemon/model.h"

namespace facility {

struct MqttStatsView {
  bool enabled = false;
  bool connected = false;
  std::uint64_t published = 0;
  std::map<std::string, std::uint64_t> dropped;  // by reason
  std::uint64_t queued = 0;  // in the outbox now, in flight included
  std::uint64_t queue_bytes = 0;
  std::uint64_t queue_limit_messages = 0;
  std::uint64_t queue_limit_bytes = 0;
  std::uint64_t queued_total = 0;  // ever handed to the outbox
  std::uint64_t unchanged = 0;  // not queued: within the deadbands
  std::uint64_t connects = 0;
  std::uint64_t persist_errors = 0;
};

struct ExpositionSources {
  std::function<std::shared_ptr<const FacilitySnapshot>()> snapshot;
  const CollectorStats* collector = nullptr;
  std::function<MqttStatsView()> mqtt;  // may be empty
  double config_loaded_at = 0;          // unix seconds
};

// Renders the metric families for one snapshot (pure; unit-tested).
std::vector<prometheus::MetricFamily> render_metrics(const ExpositionSources& src);

class SnapshotCollectable : public prometheus::Collectable {
 public:
  explicit SnapshotCollectable(ExpositionSources src) : src_(std::move(src)) {}
  std::vector<prometheus::MetricFamily> Collect() const override { return render_metrics(src_); }

 private:
  ExpositionSources src_;
};

}  // namespace facility
