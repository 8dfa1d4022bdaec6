// Modbus polling benchmark: one design polls every device of a facilityd config (served by
// facility-sim in another process) for a warm-up and a measurement window, then prints one JSON
// line of figures. bench/run_modbus_bench.py drives it; see bench/RESULTS.md.
//
//   facility-bench-modbus --config FILE --design new|legacy [--warmup 5s] [--measure 20s]
//
// new:    PollingService (the daemon's own path: PollEngine, ReadingStore, CollectorStats)
// legacy: the previous design from git history (bench/legacy): one thread and one libmodbus
//         connection per endpoint, refusing sockets at fd >= 1024
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "bench/legacy/endpoint_poller.h"
#include "daemon/polling/collector_stats.h"
#include "daemon/config/config.h"
#include "daemon/polling/polling.h"
#include "daemon/readings/readings.h"

namespace {

using Clock = std::chrono::steady_clock;

double cpu_seconds() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// Resident memory now (VmRSS), in MiB: the steady state, unlike the peak, which includes
// parsing the configuration.
double rss_now_mb() {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return 0;
  char line[256];
  double kb = 0;
  while (std::fgets(line, sizeof line, f)) {
    if (std::sscanf(line, "VmRSS: %lf kB", &kb) == 1) break;
  }
  std::fclose(f);
  return kb / 1024.0;
}

double peak_rss_mb() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;
}

// Counters both designs feed; reset at the start of the measurement window.
struct Tally {
  std::mutex mu;
  bool measuring = false;
  std::uint64_t requests = 0, polls_ok = 0, polls_failed = 0;
  std::vector<double> lateness_ms;
  std::map<std::string, int> errors;  // first words of failure messages
  void poll(bool ok, int requests_sent, double late_ms, bool late_known, const std::string& err) {
    std::lock_guard l(mu);
    if (!measuring) return;
    requests += static_cast<std::uint64_t>(requests_sent);
    (ok ? polls_ok : polls_failed) += 1;
    if (late_known) lateness_ms.push_back(late_ms);
    if (!ok) ++errors[err.substr(0, 60)];
  }
};

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(p * static_cast<double>(v.size() - 1))];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"facility-bench-modbus: one Modbus polling design against facility-sim"};
  std::string config_path, design = "new", warmup_s = "5s", measure_s = "20s";
  app.add_option("--config", config_path, "facilityd config (the one facility-sim serves)")->required();
  app.add_option("--design", design, "new or legacy")->check(CLI::IsMember({"new", "legacy"}));
  app.add_option("--warmup", warmup_s, "time before measuring")->capture_default_str();
  app.add_option("--measure", measure_s, "measurement window")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::err);

  // Thousands of sockets: raise the soft limit as a service manager would (LimitNOFILE).
  rlimit rl{};
  ::getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &rl);

  const auto cfg = facility::load_config(config_path);
  const auto warmup = *facility::parse_duration(warmup_s);
  const auto measure = *facility::parse_duration(measure_s);
  const auto devices = cfg.all_devices();
  const auto interval = devices.front()->interval;

  // What the planner promises: reads per cycle and a lower bound.
  std::size_t planned = 0, bound = 0, points = 0;
  std::map<std::string, int> endpoints;
  for (const auto* d : devices) {
    const auto spec = facility::make_device_spec(*d);
    planned += facility::modbus::make_plan(spec.points, spec.plan).reads.size();
    bound += static_cast<std::size_t>(facility::modbus::plan_lower_bound(spec.points, spec.plan));
    points += spec.points.size();
    ++endpoints[d->endpoint.key()];
  }

  Tally tally;
  facility::ReadingStore store;
  facility::CollectorStats stats;
  std::unique_ptr<facility::PollingService> service;
  std::vector<std::unique_ptr<facility::legacy::EndpointPoller>> legacy;
  std::atomic<std::uint64_t> legacy_requests{0};

  const double cpu0_total = cpu_seconds();
  if (design == "new") {
    service = std::make_unique<facility::PollingService>(
        cfg, store, stats, [&tally](const facility::modbus::PollResult& r) {
          tally.poll(r.ok, r.requests, std::chrono::duration<double, std::milli>(r.lateness).count(),
                     true, r.error);
        });
    service->start();
  } else {
    std::map<std::string, std::pair<facility::legacy::EndpointOptions,
                                    std::vector<facility::legacy::DeviceSpec>>> eps;
    for (const auto* d : devices) {
      auto& [eo, specs] = eps[d->endpoint.key()];
      eo.host = d->endpoint.host;
      eo.port = d->endpoint.port;
      facility::legacy::DeviceSpec spec;
      spec.id = d->id;
      spec.unit = d->unit;
      spec.interval = d->interval;
      spec.timeout = d->timeout;
      spec.max_registers_per_read = d->profile->max_registers_per_read;
      for (const auto& p : d->profile->points) spec.points.push_back(p.spec);
      specs.push_back(std::move(spec));
    }
    for (auto& [key, v] : eps) {
      legacy.push_back(std::make_unique<facility::legacy::EndpointPoller>(
          v.first, std::move(v.second),
          [&](const facility::legacy::PollResult& r) {
            // What the old PollingService did with a result.
            if (r.ok) {
              facility::DeviceReading dr;
              dr.device_id = r.device_id;
              dr.polled_at = r.completed_at;
              for (const auto& pv : r.values) dr.points[pv.name] = facility::PointValue{pv.value, pv.unit};
              store.put_success(std::move(dr));
            } else {
              store.put_failure(r.device_id, r.completed_at, r.error);
            }
            tally.poll(r.ok, 0, 0, false, r.error);
          },
          [&](const facility::legacy::RequestEvent& e) {
            if (e.function != 0) legacy_requests.fetch_add(1);
          }));
    }
    for (auto& p : legacy) p->start();
  }

  std::this_thread::sleep_for(warmup);
  const std::uint64_t legacy_req0 = legacy_requests.load();
  {
    std::lock_guard l(tally.mu);
    tally.measuring = true;
  }
  const double cpu0 = cpu_seconds();
  const auto t0 = Clock::now();
  std::this_thread::sleep_for(measure);
  const double cpu1 = cpu_seconds();
  const double window = std::chrono::duration<double>(Clock::now() - t0).count();
  {
    std::lock_guard l(tally.mu);
    tally.measuring = false;
  }
  const std::uint64_t legacy_req = legacy_requests.load() - legacy_req0;

  // Freshness as the exposition judges it: last success within stale_after_intervals.
  const auto snap = store.snapshot();
  const auto now = facility::Clock::now();
  std::size_t fresh = 0, fresh_1 = 0;
  for (const auto* d : devices) {
    auto it = snap.find(d->id);
    if (it == snap.end() || it->second.health.last_success == facility::TimePoint{}) continue;
    const auto age = now - it->second.health.last_success;
    fresh += age <= d->interval * cfg.daemon.stale_after_intervals ? 1 : 0;
    fresh_1 += age <= d->interval + std::chrono::milliseconds(500) ? 1 : 0;
  }
  std::uint64_t overruns = 0;
  for (std::size_t i = 0; i < devices.size(); ++i) overruns += stats.overruns(i);

  const double cpu = cpu1 - cpu0;
  nlohmann::json out;
  {
    std::lock_guard l(tally.mu);
    const std::uint64_t requests = design == "new" ? tally.requests : legacy_req;
    const double slots = static_cast<double>(devices.size()) * window /
                         std::chrono::duration<double>(interval).count();
    out = {{"design", design},
           {"devices", devices.size()},
           {"endpoints", endpoints.size()},
           {"interval_s", std::chrono::duration<double>(interval).count()},
           {"window_s", window},
           {"threads", design == "new" ? 1 : legacy.size()},
           {"requests", requests},
           {"polls_ok", tally.polls_ok},
           {"polls_failed", tally.polls_failed},
           {"cpu_s", cpu},
           {"cpu_core_fraction", cpu / window},
           {"cpu_ms_per_1000_requests", requests ? cpu * 1e6 / static_cast<double>(requests) : 0.0},
           {"requests_per_cycle", tally.polls_ok ? static_cast<double>(requests) /
                                                       static_cast<double>(tally.polls_ok) *
                                                       static_cast<double>(devices.size())
                                                 : 0.0},
           {"planned_reads_per_cycle", planned},
           {"points_per_cycle", points},
           {"lower_bound_reads_per_cycle", bound},
           {"polls_on_time_pct", std::min(100.0, 100.0 * static_cast<double>(tally.polls_ok) / slots)},
           {"overruns", overruns},
           {"fresh_pct", 100.0 * static_cast<double>(fresh) / static_cast<double>(devices.size())},
           {"fresh_within_one_interval_pct",
            100.0 * static_cast<double>(fresh_1) / static_cast<double>(devices.size())},
           {"lateness_p50_ms", percentile(tally.lateness_ms, 0.5)},
           {"lateness_p99_ms", percentile(tally.lateness_ms, 0.99)},
           {"lateness_max_ms", percentile(tally.lateness_ms, 1.0)},
           {"peak_rss_mb", peak_rss_mb()},
           {"rss_mb", rss_now_mb()},
           {"cpu_total_s", cpu1 - cpu0_total}};
    nlohmann::json errs = nlohmann::json::object();
    for (const auto& [e, n] : tally.errors) errs[e] = n;
    out["errors"] = errs;
  }
  if (service) service->stop();
  for (auto& p : legacy) p->stop();
  std::printf("%s\n", out.dump().c_str());
  return 0;
}
