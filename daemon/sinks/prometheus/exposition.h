// Prometheus exposition of the facility model and of facilityd's own health: the body of
// /metrics (Prometheus text format 0.0.4).
//
// A scrape renders the newest immutable FacilitySnapshot: it never mixes two poll cycles of one
// device and never takes a lock that polling holds. Values that are not fresh are absent (no
// series), never frozen at their last value. The body has two parts:
//   * the facility part (cabinets, sensors, rooms, sites, device health, model alerts) is a
//     function of the snapshot alone: rendered once per snapshot and cached (the model makes a
//     new snapshot every 0.8 poll intervals; scrapes that meet the same snapshot share the text);
//   * the live part (build, configuration and shard info, Modbus request counters, every sink's
//     health, process_*) is rendered at every scrape.
// The text is written directly (daemon/sinks/metric_writer.h says why).
//
// Every family is documented in docs/metrics.md. Names use base units (watts, celsius, ratio,
// seconds) and `_total` for counters.
//
// Thread-safety: Exposition::render() may be called from any thread (the HTTP workers); the
// sources are shared pointers, so a configuration reload can replace them during a scrape.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "daemon/model/model.h"
#include "daemon/polling/collector_stats.h"
#include "daemon/sinks/metric_writer.h"
#include "daemon/sinks/sink.h"

namespace facility {

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
  // Each writes its own health (Sink::health) into the live part.
  std::vector<std::shared_ptr<const Sink>> sinks;
  // The HTTP listener's own health (facility_http_*), written by the app that owns it.
  std::function<void(MetricWriter&)> listener;
  ReloadStatus reload;
};

// The whole body, written at once (no cache): the facility part, then the live part. The
// exposition below writes the same; tests and benchmarks use this with a SampleObserver.
void render_scrape(MetricWriter& out, const ScrapeSources& src);

class Exposition {
 public:
  struct Body {
    std::shared_ptr<const std::string> facility;  // may be shared with other scrapes
    std::string live;
    bool gzip = false;  // the two parts are one gzip member (daemon/sinks/gzip_parts.h)
    std::size_t size() const { return (facility ? facility->size() : 0) + live.size(); }
    std::string text() const { return (facility ? *facility : std::string()) + live; }
  };
  // `gzip`: the body gzip-compressed. The facility part is then compressed once per snapshot
  // too (a 6,000-device site: 21 MB of text, about a tenth of it compressed) and shared.
  Body render(const ScrapeSources& src, bool gzip = false) const;

  static constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

 private:
  mutable std::mutex mu_;  // one render of a new snapshot at a time; others then share it
  mutable std::shared_ptr<const FacilitySnapshot> cached_snapshot_;
  mutable std::shared_ptr<const std::string> cached_text_;
  // The gzip header and cached_text_ deflated (not final), made at the first gzip scrape of the
  // snapshot; its CRC and size go into each scrape's trailer.
  mutable std::shared_ptr<const std::string> cached_gzip_;
  mutable std::uint32_t cached_gzip_crc_ = 0;
};

}  // namespace facility
