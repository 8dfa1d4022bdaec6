// A UPS from its fresh reading: output power and load, battery runtime and charge, and where
// its output comes from, by the state names of the profile's enumerations (docs/config.md,
// "Point names": output_source normal / battery / bypass / maintenance_bypass / ...).
#include <algorithm>
#include <chrono>

#include "daemon/config/points.h"
#include "daemon/model/internal.h"

namespace facility::model_detail {
namespace {

std::optional<bool> flag(const DeviceReading& r, const char* point) {
  if (auto v = point_value(r, point)) return *v != 0.0;
  return std::nullopt;
}

// Where the output comes from, as a state name; "" when the point is absent, "other" for a code
// the profile does not name.
std::string source_of(const DeviceReading& r) {
  std::string s = point_text(r, points::kOutputSource);
  if (s.rfind("unknown(", 0) == 0) return "other";
  return s;
}

void fill_load(const Device& d, const DeviceReading& r, UpsSnapshot& u) {
  std::optional<double> highest;
  for (const UpsPhase& ph : u.phases) {
    if (ph.load_ratio) highest = std::max(highest.value_or(*ph.load_ratio), *ph.load_ratio);
  }
  if (highest) {
    u.load_ratio = highest;
  } else if (auto l = point_value(r, points::kLoadRatio)) {
    u.load_ratio = l;
  } else if (u.power_w) {
    const std::optional<double> rated = d.rated_w ? d.rated_w : point_value(r, points::kRatedPower);
    if (rated && *rated > 0) u.load_ratio = *u.power_w / *rated;
  }
}

}  // namespace

std::string point_text(const DeviceReading& r, const std::string& point) {
  auto p = r.points.find(point);
  return p == r.points.end() ? std::string() : p->second.text;
}

UpsSnapshot compute_ups(const Device& d, const FreshView& v, const UpsAlertSettings& s) {
  UpsSnapshot u;
  u.device = &d;
  const DeviceReading* r = v.reading(d.id);
  if (!r) return u;
  u.fresh = true;
  u.power_w = point_value(*r, points::kActivePower);
  double sum = 0;
  int powers = 0;
  for (int ph = 1; ph <= 3; ++ph) {
    UpsPhase p{"L" + std::to_string(ph),
               point_value(*r, points::phase_point(points::kActivePower, ph)),
               point_value(*r, points::phase_point(points::kLoadRatio, ph))};
    if (!p.power_w && !p.load_ratio) continue;
    if (p.power_w) {
      sum += *p.power_w;
      ++powers;
    }
    u.phases.push_back(std::move(p));
  }
  if (!u.power_w && powers > 0 && powers == static_cast<int>(u.phases.size())) u.power_w = sum;
  fill_load(d, *r, u);
  u.runtime_s = point_value(*r, points::kBatteryRuntime);
  u.charge_ratio = point_value(*r, points::kBatteryCharge);
  u.output_source = source_of(*r);
  u.battery_state = point_text(*r, points::kBatteryState);
  u.on_battery = flag(*r, points::kOnBattery);
  if (!u.on_battery && !u.output_source.empty()) u.on_battery = u.output_source == "battery";
  u.on_bypass = flag(*r, points::kOnBypass);
  if (!u.on_bypass && !u.output_source.empty()) {
    u.on_bypass = u.output_source == "bypass" || u.output_source == "maintenance_bypass";
  }
  u.overload_flag = flag(*r, points::kOutputOverload);
  // Instantaneous levels; FacilityModel replaces them with held ones.
  if (u.load_ratio) u.overload = overload_level(*u.load_ratio, s.overload);
  if (u.overload_flag && *u.overload_flag) u.overload = OverloadState::kCritical;
  if (u.runtime_s) {
    const double secs = *u.runtime_s;
    u.runtime_state =
        secs < std::chrono::duration<double>(s.runtime_critical).count()  ? OverloadState::kCritical
        : secs < std::chrono::duration<double>(s.runtime_warning).count() ? OverloadState::kWarning
                                                                          : OverloadState::kOk;
  }
  u.on_battery_alert = u.on_battery.value_or(false);
  u.on_bypass_alert = u.on_bypass.value_or(false);
  return u;
}

}  // namespace facility::model_detail
