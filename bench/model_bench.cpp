// Cost of one facility-model cycle at the demo and full-scale sizes (the daemon runs one every
// second). Compares, in the same run, the stateless snapshot (compute_snapshot), the stateful
// model (FacilityModel::update: alerts, energy series, peaks) and the Prometheus rendering of
// the result. Not part of scripts/test.
//
//   ninja -C build model_bench && build/model_bench [cabinets ...]
//
// Each size: a synthetic site of N cabinets (A/B single-phase PDUs with energy counters, one
// rack sensor each), 4 site meters, one cooling unit per 25 cabinets; IT from the PDUs (so the
// PDU-sum energy series with 2N devices is exercised). Readings are refreshed every 15
// simulated seconds; the model runs every simulated second for 10 simulated minutes.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "bench/synthetic_site.h"
#include "daemon/sinks/prometheus/exposition.h"
#include "daemon/model/model.h"
#include "tests/support/reference_exposition.h"

namespace {

using namespace facility;
using Steady = std::chrono::steady_clock;

std::string make_config(int cabinets, const std::string& profiles) {
  int unit = 0;
  bench::SyntheticSite site;
  site.cabinets = cabinets;
  site.profiles_dir = profiles;
  site.endpoint = [&unit] {
    ++unit;
    return "\"tcp://127.0.0.1:" + std::to_string(20000 + unit / 240) +
           "\", unit: " + std::to_string(unit % 240 + 1);
  };
  return bench::synthetic_site_config(site);
}

// Fresh readings for every device at `t` (seconds since start).
void refresh(const Config& cfg, double t, TimePoint at,
             std::unordered_map<std::string, ReadingStore::Entry>& store) {
  for (const Device* d : cfg.all_devices()) {
    auto r = std::make_shared<DeviceReading>();
    r->device_id = d->id;
    r->polled_at = at;
    const double w = 1500 + 300 * std::sin(t / 600 + d->unit);
    switch (d->kind) {
      case DeviceKind::kPdu:
        r->points["active_power"] = {w, "W"};
        r->points["current"] = {w / 220 / 0.95, "A"};
        r->points["voltage"] = {220, "V"};
        r->points["energy"] = {1000 + w * t / 3.6e6, "kWh"};
        break;
      case DeviceKind::kRackSensor:
        r->points["inlet_temperature"] = {23, "celsius"};
        r->points["humidity"] = {45, "percent"};
        r->points["u_occupied"] = {20, "none"};
        break;
      case DeviceKind::kCooling:
        r->points["supply_temperature"] = {19, "celsius"};
        r->points["return_temperature"] = {30, "celsius"};
        r->points["running"] = {1, "none"};
        break;
      case DeviceKind::kMeter:
        r->points["active_power"] = {w, "kW"};
        r->points["energy"] = {1e6 + w * t / 3600, "kWh"};
        break;
      case DeviceKind::kUps:
        r->points["active_power"] = {w, "kW"};
        r->points["on_battery"] = {0, "none"};
        break;
    }
    auto& e = store[d->id];
    e.reading = std::move(r);
    e.health.last_success = at;
    e.health.up = true;
  }
}

double ms_since(Steady::time_point t0) {
  return std::chrono::duration<double, std::milli>(Steady::now() - t0).count();
}

void run(int cabinets, const std::string& profiles) {
  const auto dir = std::filesystem::temp_directory_path() / "facilityd-model-bench";
  std::filesystem::create_directories(dir);
  const auto path = dir / ("site-" + std::to_string(cabinets) + ".yaml");
  std::ofstream(path) << make_config(cabinets, profiles);
  auto cfg = std::make_shared<const Config>(load_config(path.string()));
  FacilityModel model(cfg);
  std::unordered_map<std::string, ReadingStore::Entry> store;
  const TimePoint t0 = Clock::now();
  double stateless_ms = 0, stateful_ms = 0, render_ms = 0;
  std::size_t series = 0;
  const int seconds = 600;
  for (int s = 0; s <= seconds; ++s) {
    const TimePoint now = t0 + std::chrono::seconds(s);
    if (s % 15 == 0) refresh(*cfg, s, now, store);
    auto a = Steady::now();
    auto plain = compute_snapshot(cfg, store, now);
    stateless_ms += ms_since(a);
    a = Steady::now();
    auto snap = model.update(store, now);
    stateful_ms += ms_since(a);
    if (s % 15 == 0) {  // a scrape every 15 s
      ScrapeSources src;
      src.config = cfg;
      src.snapshot = snap;
      a = Steady::now();
      series = 0;
      for (const auto& f : render_metrics(src)) series += f.metric.size();
      render_ms += ms_since(a);
    }
  }
  const double n = seconds + 1;
  std::printf(
      "%6d cabinets %6zu devices: stateless %7.2f ms  stateful %7.2f ms (x%.2f)  "
      "render %7.2f ms for %zu series\n",
      cabinets, cfg->all_devices().size(), stateless_ms / n, stateful_ms / n,
      stateful_ms / stateless_ms, render_ms / (seconds / 15 + 1), series);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string profiles = std::string(FACILITYD_SOURCE_DIR) + "/config/profiles";
  std::vector<int> sizes{120, 2013};
  if (argc > 1) {
    sizes.clear();
    for (int i = 1; i < argc; ++i) sizes.push_back(std::stoi(argv[i]));
  }
  for (int n : sizes) run(n, profiles);
  return 0;
}
