// Prometheus exposition of the facility model and of facilityd's own health: the body of
// /metrics (Prometheus text format 0.0.4).
//
// A scrape renders the newest immutable FacilitySnapshot: it never mixes two poll cycles of one
// device and never takes a lock that polling holds. Values that are not fresh are absent (no
// series), never frozen at their last value. The body has two parts:
//   * the facility part (cabinets, sensors, rooms, sites, device health, model alerts) is a
//     function of the snapshot alone: rendered once per snapshot and cached (the model makes a
//     new snapshot every second; scrapes that meet the same snapshot share the text);
//   * the live part (build, configuration and shard info, Modbus request counters, MQTT,
//     history, process_*) is rendered at every scrape.
// The text is written directly (daemon/sinks/metric_writer.h says why); ExpositionMode::kPrometheusCpp
// renders the same families through prometheus-cpp's MetricFamily and TextSerializer instead,
// for comparison (tests, bench/).
//
// Every family is documented in docs/metrics.md. Names use base units (watts, celsius, ratio,
// seconds) and `_total` for counters.
//
// Thread-safety: Exposition::render() may be called from any thread (civetweb workers); the
// sources are shared pointers, so a configuration reload can replace them during a scrape.
#pragma once

#include <prometheus/metric_family.h>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "daemon/polling/collector_stats.h"
#include "daemon/model/model.h"

namespace facility {

class HistoryWriter;

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
  std::uint64_t alert_backlog_dropped = 0;
};

// Outcome of the configuration loads (start and SIGHUP reloads).
struct ReloadStatus {
  bool last_successful = true;
  double last_success_unix = 0;  // unix seconds of the last successful load
};

// What one scrape reads.
struct ScrapeSources {
  std::shared_ptr<const Config> config;  // the configuration in effect (shard, build info)
  std::shared_ptr<const FacilitySnapshot> snapshot;
  std::shared_ptr<const CollectorStats> collector;
  std::function<MqttStatsView()> mqtt;           // empty when MQTT is off
  bool history_metrics = true;                   // facility_history_* (up = 0 without writer)
  std::shared_ptr<const HistoryWriter> history;  // null: history disabled or not open
  ReloadStatus reload;
};

enum class ExpositionMode {
  kCached,         // direct text, facility part cached per snapshot (the default)
  kDirect,         // direct text, everything rendered at every scrape
  kPrometheusCpp,  // MetricFamily + prometheus::TextSerializer at every scrape
};
std::optional<ExpositionMode> parse_exposition_mode(const std::string& s);

class Exposition {
 public:
  explicit Exposition(ExpositionMode mode = ExpositionMode::kCached) : mode_(mode) {}

  struct Body {
    std::shared_ptr<const std::string> facility;  // may be shared with other scrapes
    std::string live;
    std::size_t size() const { return (facility ? facility->size() : 0) + live.size(); }
    std::string text() const { return (facility ? *facility : std::string()) + live; }
  };
  Body render(const ScrapeSources& src) const;
  ExpositionMode mode() const { return mode_; }

  static constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

 private:
  ExpositionMode mode_;
  mutable std::mutex mu_;  // one render of a new snapshot at a time; others then share it
  mutable std::shared_ptr<const FacilitySnapshot> cached_snapshot_;
  mutable std::shared_ptr<const std::string> cached_text_;
};

// The same families as prometheus-cpp objects (reference for tests and benchmarks).
std::vector<prometheus::MetricFamily> render_metrics(const ScrapeSources& src);

}  // namespace facility
