// Scrape latency and size of /metrics, measured while the daemon polls at full rate, and whether
// polling stays on schedule during scrapes (issue 5, "Benchmark"). Not part of scripts/test.
//
//   ninja -C build scrape_bench && build/scrape_bench [--interval S] [--window S] [SIZE ...]
//
// SIZE is `demo` (config/demo/facilityd.yaml) or a number of cabinets of a synthetic site
// (defaults: demo 1000 2000 2950: 2950 cabinets are about 100,000 series). For each size, in one process:
//   * facility-sim's Simulator serves every device on loopback Modbus TCP (ports picked free);
//   * the real Daemon (pollers, facility model every second, HTTP listener with the default
//     cached exposition; no MQTT, no history) polls them every --interval seconds;
//   * once every device is up: a quiet window (no scrape) and a scrape window of the same
//     length in which a client scrapes /metrics over HTTP back to back (far more often than any
//     Prometheus would). Per window: completed polls against the schedule (devices x window /
//     interval) and overruns (scheduled polls skipped). Per scrape: time from connect to the
//     last byte, body size, series. Then 8 scrapes 1.1 s apart, as Prometheus makes them: each
//     meets a new snapshot (the model makes one every second) and pays its rendering;
//   * in the same run, on one fixed snapshot, the render time of the three exposition modes:
//     cached (facility part rendered once per snapshot: the first scrape of a snapshot, and a
//     later one), direct (everything at every scrape) and prometheus-cpp (MetricFamily +
//     prometheus::TextSerializer, what a prometheus-cpp Registry would do).
//
// Synthetic site: N cabinets with A/B single-phase PDUs (every fourth cabinet three-phase) and
// one rack sensor each, one cooling unit per 25 cabinets, 4 meters; up to 100 devices per
// endpoint (as behind a gateway).

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/daemon_bench.h"
#include "daemon/app/daemon.h"
#include "daemon/sinks/prometheus/exposition.h"
#include "tests/support/reference_exposition.h"

namespace {

using namespace facility;
using namespace facility::bench;

// The demo configuration with its endpoints moved to free ports and its poll intervals set.
std::string demo_config(const std::string& src, int interval_s) {
  std::ifstream in(src + "/config/demo/facilityd.yaml");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  std::map<std::string, int> moved;
  std::string out;
  static const std::regex ep(R"(tcp://127\.0\.0\.1:(\d+))");
  auto it = std::sregex_iterator(text.begin(), text.end(), ep);
  std::size_t last = 0;
  for (; it != std::sregex_iterator(); ++it) {
    auto [m, fresh] = moved.emplace((*it)[1].str(), 0);
    if (fresh) m->second = free_port();
    out += text.substr(last, it->position() - last) + "tcp://127.0.0.1:" +
           std::to_string(m->second);
    last = it->position() + it->length();
  }
  out += text.substr(last);
  out = std::regex_replace(out, std::regex(R"(interval: \d+s)"),
                           "interval: " + std::to_string(interval_s) + "s");
  out = std::regex_replace(out, std::regex(R"(profiles_dir: \S+)"),
                           "profiles_dir: " + src + "/config/profiles");
  return out;
}

void run(const std::string& size, int interval_s, int window_s, const std::string& src) {
  const std::string text =
      size == "demo" ? demo_config(src, interval_s)
                     : synthetic_config(std::stoi(size), interval_s, src + "/config/profiles");
  LiveSite site(load_bench_config(text, "facilityd-scrape-bench", "site-" + size), interval_s);
  Daemon& daemon = site.daemon();
  const int port = site.port();
  const std::size_t devices = site.devices, up = site.up;
  std::this_thread::sleep_for(std::chrono::seconds(interval_s));

  // Quiet window.
  PollCount q0 = poll_count(daemon);
  std::this_thread::sleep_for(std::chrono::seconds(window_s));
  PollCount q1 = poll_count(daemon);

  // Scrape window: back-to-back scrapes.
  std::vector<double> lat;
  std::size_t bytes = 0, series = 0;
  PollCount s0 = poll_count(daemon);
  const auto end = Steady::now() + std::chrono::seconds(window_s);
  while (Steady::now() < end) {
    Scrape s = http_scrape(port, lat.empty());
    if (lat.empty()) series = count_series(s.body);
    bytes = s.bytes;
    lat.push_back(s.ms);
  }
  PollCount s1 = poll_count(daemon);
  // Scrapes as Prometheus makes them (seconds apart): each meets a snapshot no scrape has
  // rendered yet, so each pays the facility part's rendering.
  std::vector<double> spaced;
  for (int i = 0; i < 8; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    spaced.push_back(http_scrape(port, false).ms);
  }

  // Render modes on one fixed snapshot.
  const ScrapeSources fixed = daemon.scrape_sources();
  // The modes take turns in every round, so that a change in the machine's load hits all alike.
  const int reps = series > 50000 ? 7 : 15;
  std::vector<double> hit, miss, direct, pcpp;
  Exposition warm;
  warm.render(fixed);
  for (int r = 0; r < reps; ++r) {
    hit.push_back(ms_of([&] { warm.render(fixed); }));
    miss.push_back(ms_of([&] { Exposition().render(fixed); }));
    direct.push_back(ms_of([&] { testing::ReferenceExposition(ExpositionMode::kDirect).render(fixed); }));
    pcpp.push_back(ms_of([&] { testing::ReferenceExposition(ExpositionMode::kPrometheusCpp).render(fixed); }));
  }
  const double cached_hit = percentile(hit, 0.5), cached_miss = percentile(miss, 0.5);
  const double direct_ms = percentile(direct, 0.5), pcpp_ms = percentile(pcpp, 0.5);

  site.stop();

  const double expected = static_cast<double>(devices) * window_s / interval_s;
  std::printf(
      "| %s | %zu | %zu | %zu | %.1f MB | %.1f / %.1f | %zu | %.1f / %.1f / %.1f | %.1f %% / %llu "
      "| %.1f %% / %llu | %.2f | %.2f | %.2f | %.2f | x%.1f |\n",
      size == "demo" ? "demo" : (size + " cabinets").c_str(), devices, up, series, bytes / 1e6, percentile(spaced, 0.5),
      *std::max_element(spaced.begin(), spaced.end()), lat.size(), percentile(lat, 0.5), percentile(lat, 0.99),
      *std::max_element(lat.begin(), lat.end()), 100.0 * (q1.polls - q0.polls) / expected,
      static_cast<unsigned long long>(q1.overruns - q0.overruns),
      100.0 * (s1.polls - s0.polls) / expected,
      static_cast<unsigned long long>(s1.overruns - s0.overruns), cached_hit, cached_miss,
      direct_ms, pcpp_ms, pcpp_ms / cached_miss);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  spdlog::set_level(spdlog::level::warn);
  int interval_s = 5, window_s = 20;
  std::vector<std::string> sizes;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--interval" && i + 1 < argc) {
      interval_s = std::stoi(argv[++i]);
    } else if (a == "--window" && i + 1 < argc) {
      window_s = std::stoi(argv[++i]);
    } else {
      sizes.push_back(a);
    }
  }
  if (sizes.empty()) sizes = {"demo", "1000", "2000", "2950"};
  std::printf("poll interval %d s, windows %d s; times in ms\n\n", interval_s, window_s);
  std::printf(
      "| site | devices | devices up | series | body | scrape, 1.1 s apart p50 / max | "
      "back-to-back scrapes | their p50 / p99 / max | polls on schedule / overruns, quiet | "
      "... while scraping | render cached (hit) | cached (new snapshot) | direct | "
      "prometheus-cpp | prometheus-cpp / cached new |\n"
      "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const auto& s : sizes) run(s, interval_s, window_s, FACILITYD_SOURCE_DIR);
  return 0;
}
