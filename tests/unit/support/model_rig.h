// A small rig for facility-model tests: writes test profiles and a config, feeds readings with
// explicit timestamps on a synthetic clock, and finds things in snapshots.
#pragma once

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

#include "daemon/model/model.h"
#include "test_util.h"

namespace facility::testing {

// Register maps used by the model tests (units as real devices report them).
inline const char* kRigProfiles[][2] = {
    {"pdu", R"(name: pdu
points:
  - {name: voltage, function: input, address: 0, type: uint16, scale: 0.1, unit: V}
  - {name: current, function: input, address: 1, type: uint16, scale: 0.01, unit: A}
  - {name: active_power, function: input, address: 2, type: uint32, unit: W}
  - {name: power_factor, function: input, address: 4, type: int16, scale: 0.001, unit: ratio}
  - {name: energy, function: input, address: 6, type: uint32, scale: 0.01, unit: kWh}
  - {name: outlets_on, function: input, address: 8, type: uint16, unit: none}
)"},
    {"pdu-current", R"(name: pdu-current
points:
  - {name: voltage, function: input, address: 0, type: uint16, scale: 0.1, unit: V}
  - {name: current, function: input, address: 1, type: uint16, scale: 0.01, unit: A}
  - {name: power_factor, function: input, address: 2, type: int16, scale: 0.001, unit: ratio}
)"},
    {"pdu3", R"(name: pdu3
points:
  - {name: current_l1, function: input, address: 0, type: uint16, scale: 0.01, unit: A}
  - {name: current_l2, function: input, address: 1, type: uint16, scale: 0.01, unit: A}
  - {name: current_l3, function: input, address: 2, type: uint16, scale: 0.01, unit: A}
  - {name: active_power_l1, function: input, address: 3, type: uint32, unit: W}
  - {name: active_power_l2, function: input, address: 5, type: uint32, unit: W}
  - {name: active_power_l3, function: input, address: 7, type: uint32, unit: W}
  - {name: active_power, function: input, address: 9, type: uint32, unit: W}
)"},
    {"meter", R"(name: meter
points:
  - {name: active_power, function: holding, address: 0, type: float32, order: CDAB, unit: kW}
  - {name: energy, function: holding, address: 256, type: uint32, order: CDAB, scale: 0.1, unit: kWh}
)"},
    {"env", R"(name: env
points:
  - {name: inlet_temperature, function: input, address: 0, type: int16, scale: 0.1, unit: celsius}
  - {name: humidity, function: input, address: 1, type: uint16, scale: 0.1, unit: percent}
  - {name: u_occupied, function: input, address: 2, type: uint16, unit: none}
)"},
    {"crah", R"(name: crah
points:
  - {name: supply_temperature, function: input, address: 0, type: int16, scale: 0.1, unit: celsius}
  - {name: return_temperature, function: input, address: 1, type: int16, scale: 0.1, unit: celsius}
  - {name: running, function: input, address: 2, type: bool, bit: 0, unit: none}
)"},
    {"ups", R"(name: ups
kinds: [ups]
points:
  - {name: active_power_l1, function: input, address: 0, type: uint16, scale: 10, unit: W}
  - {name: active_power_l2, function: input, address: 1, type: uint16, scale: 10, unit: W}
  - {name: active_power_l3, function: input, address: 2, type: uint16, scale: 10, unit: W}
  - {name: load_ratio_l1, function: input, address: 3, type: uint16, unit: percent}
  - {name: load_ratio_l2, function: input, address: 4, type: uint16, unit: percent}
  - {name: load_ratio_l3, function: input, address: 5, type: uint16, unit: percent}
  - {name: battery_runtime, function: input, address: 6, type: uint16, unit: min}
  - {name: battery_charge, function: input, address: 7, type: uint16, unit: percent}
  - {name: output_source, function: input, address: 8, type: uint16, unit: none,
     enum: {0: normal, 1: battery, 2: bypass}}
  - {name: active_power, derive: {sum: [active_power_l1, active_power_l2, active_power_l3]},
     unit: W}
)"},
};

// 2026-01-01T00:00:00Z: a multiple of every grid step the model uses.
inline TimePoint rig_t0() {
  using namespace std::chrono;
  return TimePoint(sys_days(year(2026) / January / 1));
}
inline TimePoint at_s(double s) {
  return rig_t0() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

using Points = std::map<std::string, std::pair<double, std::string>>;

class Rig {
 public:
  explicit Rig(const std::string& config_yaml) {
    for (const auto& p : kRigProfiles) dir_.write(std::string("profiles/") + p[0] + ".yaml", p[1]);
    config_ = std::make_shared<const Config>(load_config(dir_.write("site.yaml", config_yaml)));
    model_ = std::make_unique<FacilityModel>(config_);
  }

  // A successful poll of `device` completed at `t`; `read_at`: points carried from an earlier
  // read (a slower point group), with the time of that read; `texts`: enumeration names.
  void put(const std::string& device, const Points& pts, TimePoint t,
           const std::map<std::string, TimePoint>& read_at = {},
           const std::map<std::string, std::string>& texts = {}) {
    auto reading = std::make_shared<DeviceReading>();
    reading->device_id = device;
    reading->polled_at = t;
    for (const auto& [k, v] : pts) reading->points[k] = PointValue{v.first, v.second};
    reading->with_data = pts.size();  // every point gave a value, as a poll would count them
    for (const auto& [k, at] : read_at) reading->points.at(k).read_at = at;
    for (const auto& [k, text] : texts) reading->points.at(k).text = text;
    auto& e = entries_[device];
    e.reading = std::move(reading);
    e.health.last_success = t;
    e.health.last_attempt = t;
    e.health.up = true;
  }
  void forget(const std::string& device) { entries_.erase(device); }

  std::shared_ptr<const FacilitySnapshot> stateless(TimePoint now) const {
    return compute_snapshot(config_, entries_, now);
  }
  std::shared_ptr<const FacilitySnapshot> update(TimePoint now) {
    return model_->update(entries_, now);
  }

  const Config& config() const { return *config_; }
  FacilityModel& model() { return *model_; }

 private:
  TempDir dir_;
  std::shared_ptr<const Config> config_;
  std::unique_ptr<FacilityModel> model_;
  std::unordered_map<std::string, ReadingStore::Entry> entries_;
};

inline Points watts(double w) { return {{"active_power", {w, "W"}}}; }
inline Points kw(double p_kw, double energy_kwh) {
  return {{"active_power", {p_kw, "kW"}}, {"energy", {energy_kwh, "kWh"}}};
}

// A GPU cabinet on two three-phase 16 A / 380 V feeds: one feed's capacity is
// sqrt(3) x 380 x 16 = 10,530.76 W; derated 0.8 -> 8,424.61 W, 2,808.20 W per phase.
inline const char* kThreePhaseSite = R"(
sites:
  - id: s
    rooms:
      - id: r
        rows:
          - id: w
            cabinets:
              - {id: g, breaker: {amps: 16, volts: 380, phases: 3}, status: sold}
    devices:
      - {id: ga, kind: pdu, profile: pdu3, endpoint: "tcp://127.0.0.1:1", unit: 1, cabinet: g, feed: A}
      - {id: gb, kind: pdu, profile: pdu3, endpoint: "tcp://127.0.0.1:1", unit: 2, cabinet: g, feed: B}
)";

inline Points phases(std::optional<std::array<double, 3>> amps, std::array<double, 3> w) {
  Points p;
  for (int i = 0; i < 3; ++i) {
    const std::string n = std::to_string(i + 1);
    if (amps) p["current_l" + n] = {(*amps)[std::size_t(i)], "A"};
    p["active_power_l" + n] = {w[std::size_t(i)], "W"};
  }
  p["active_power"] = {w[0] + w[1] + w[2], "W"};
  return p;
}

inline const SiteSnapshot& site_of(const FacilitySnapshot& s, const std::string& id) {
  for (const auto& ss : s.sites) {
    if (ss.site->id == id) return ss;
  }
  throw std::runtime_error("no site " + id);
}
inline const CabinetSnapshot& cabinet_of(const SiteSnapshot& s, const std::string& id) {
  for (const auto& cs : s.cabinets) {
    if (cs.cabinet->id == id) return cs;
  }
  throw std::runtime_error("no cabinet " + id);
}
inline const FeedPower& feed_of(const CabinetSnapshot& c, const std::string& feed) {
  for (const auto& f : c.feeds) {
    if (f.feed == feed) return f;
  }
  throw std::runtime_error("no feed " + feed);
}
inline const PueValue* pue_of(const SiteSnapshot& s, int category, const std::string& window) {
  for (const auto& p : s.pue_values) {
    if (p.category == category && p.window == window) return &p;
  }
  return nullptr;
}
inline const EnergySnapshot* energy_of(const SiteSnapshot& s, const std::string& role) {
  for (const auto& e : s.energy) {
    if (e.role == role) return &e;
  }
  return nullptr;
}
inline std::optional<double> coverage_of(const SiteSnapshot& s, const std::string& quantity) {
  for (const auto& [q, v] : s.coverage) {
    if (q == quantity) return v;
  }
  return std::nullopt;
}
inline const DeviceSnapshot& device_of(const FacilitySnapshot& s, const std::string& id) {
  for (const auto& d : s.devices) {
    if (d.device->id == id) return d;
  }
  throw std::runtime_error("no device " + id);
}
inline const AlertState* alert_of(const FacilitySnapshot& s, const std::string& kind,
                                  const std::string& subject) {
  for (const auto& a : s.alerts) {
    if (a.kind == kind && a.subject == subject) return &a;
  }
  return nullptr;
}

}  // namespace facility::testing
