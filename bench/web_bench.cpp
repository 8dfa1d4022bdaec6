// The NOC view at site scale (issue 12, "Benchmark"): render time and page size of a site's
// floor map (and of the overview, a cabinet page and the site's JSON) while the daemon polls at
// full rate, and whether polling stays on schedule while a client reloads the floor map back to
// back. Not part of scripts/test.
//
//   ninja -C build web_bench && build/web_bench [--interval S] [--window S] [CABINETS ...]
//
// For each size (default 2000 cabinets), in one process: facility-sim's Simulator serves a
// synthetic site (bench/synthetic_site.h: A/B PDUs, a rack sensor per cabinet, cooling units,
// meters) on loopback Modbus TCP; the real Daemon polls it every --interval seconds. Once every
// device is up: a quiet window, then a window of back-to-back GET /sites/s (each a new
// connection, connect to last byte). Polls counted against the schedule in both windows. Then,
// on one fixed snapshot, the render time of each page next to the render of /metrics' facility
// part for the same snapshot (a ratio in one run, not a lone absolute time).
#include <spdlog/spdlog.h>

#include <cstdio>
#include <thread>

#include "bench/daemon_bench.h"
#include "daemon/sinks/payloads.h"
#include "daemon/sinks/prometheus/exposition.h"
#include "daemon/web/api.h"
#include "daemon/web/pages.h"

namespace {

using namespace facility;
using namespace facility::bench;

void run(int cabinets, int interval_s, int window_s, const std::string& src) {
  LiveSite site(load_bench_config(synthetic_config(cabinets, interval_s, src + "/config/profiles"),
                                 "facilityd-web-bench", "site-" + std::to_string(cabinets)),
                interval_s);
  Daemon& daemon = site.daemon();
  const int port = site.port();
  const std::size_t devices = site.devices, up = site.up;
  // One interval more, so that both windows start in steady polling.
  std::this_thread::sleep_for(std::chrono::seconds(interval_s));

  const PollCount q0 = poll_count(daemon);
  std::this_thread::sleep_for(std::chrono::seconds(window_s));
  const PollCount q1 = poll_count(daemon);

  std::vector<double> lat;
  std::size_t bytes = 0;
  const PollCount s0 = poll_count(daemon);
  const auto end = Steady::now() + std::chrono::seconds(window_s);
  while (Steady::now() < end) {
    const Scrape s = http_scrape(port, false, "/sites/s");
    bytes = s.bytes;
    lat.push_back(s.ms);
  }
  const PollCount s1 = poll_count(daemon);
  const std::size_t overview_bytes = http_scrape(port, false, "/").bytes;
  const std::size_t cabinet_bytes = http_scrape(port, false, "/sites/s/cabinets/c1").bytes;
  const std::size_t api_bytes = http_scrape(port, false, "/api/v1/sites/s").bytes;

  // Render times on one fixed snapshot, taking turns so that load changes hit all alike.
  const ScrapeSources fixed = daemon.scrape_sources();
  const FacilitySnapshot& snap = *fixed.snapshot;
  const web::PageOptions po;
  std::vector<double> floor_ms, overview_ms, api_ms, metrics_ms;
  for (int r = 0; r < 15; ++r) {
    floor_ms.push_back(ms_of([&] { (void)web::site_page(snap, "s", po); }));
    overview_ms.push_back(ms_of([&] { (void)web::overview_page(snap, po); }));
    api_ms.push_back(ms_of([&] { (void)dump_payload(*web::api_site(snap, "s")); }));
    metrics_ms.push_back(ms_of([&] { Exposition().render(fixed); }));
  }
  site.stop();

  const double expected = static_cast<double>(devices) * window_s / interval_s;
  const double m = percentile(metrics_ms, 0.5);
  std::printf(
      "| %d | %zu | %zu | %.2f MB | %zu | %.1f / %.1f / %.1f | %.1f %% / %llu | %.1f %% / %llu | "
      "%.2f (x%.2f) | %.2f (x%.2f) | %.2f (x%.2f) | %.2f | %.0f kB | %.0f kB | %.2f MB |\n",
      cabinets, devices, up, bytes / 1e6, lat.size(), percentile(lat, 0.5), percentile(lat, 0.99),
      *std::max_element(lat.begin(), lat.end()), 100.0 * double(q1.polls - q0.polls) / expected,
      static_cast<unsigned long long>(q1.overruns - q0.overruns),
      100.0 * double(s1.polls - s0.polls) / expected,
      static_cast<unsigned long long>(s1.overruns - s0.overruns), percentile(floor_ms, 0.5),
      percentile(floor_ms, 0.5) / m, percentile(overview_ms, 0.5), percentile(overview_ms, 0.5) / m,
      percentile(api_ms, 0.5), percentile(api_ms, 0.5) / m, m, overview_bytes / 1e3,
      cabinet_bytes / 1e3, api_bytes / 1e6);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  spdlog::set_level(spdlog::level::warn);
  int interval_s = 5, window_s = 20;  // window_s >= 1 (at least one GET is made)
  std::vector<int> sizes;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--interval" && i + 1 < argc) {
      interval_s = std::stoi(argv[++i]);
    } else if (a == "--window" && i + 1 < argc) {
      window_s = std::max(1, std::stoi(argv[++i]));
    } else {
      sizes.push_back(std::stoi(a));
    }
  }
  if (sizes.empty()) sizes = {2000};
  std::printf(
      "poll interval %d s, windows %d s; times in ms; (xN) = render time / the render "
      "of /metrics' facility part of the same snapshot\n\n",
      interval_s, window_s);
  std::printf(
      "| cabinets | devices | up | floor map body | back-to-back GETs | their p50 / p99 / max | "
      "polls on schedule / overruns, quiet | ... while reloading | render floor map | "
      "overview | site JSON | /metrics render | overview body | cabinet page | site JSON body "
      "|\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (int s : sizes) run(s, interval_s, window_s, FACILITYD_SOURCE_DIR);
  return 0;
}
