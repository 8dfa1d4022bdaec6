#include "daemon/model.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

namespace facility {
namespace {

struct UnitInfo {
  const char* name;
  double factor;  // multiply to get the base unit
};
constexpr UnitInfo kUnits[] = {
    {"W", 1.0},         {"kW", 1e3},     {"Wh", 3600.0},  {"kWh", 3.6e6}, {"MWh", 3.6e9},
    {"A", 1.0},         {"V", 1.0},      {"Hz", 1.0},     {"celsius", 1.0},
    {"percent", 0.01},  {"ratio", 1.0},  {"rpm", 1.0},    {"none", 1.0},
};

// Fresh readings of one model run, by device id, converted to base units.
class FreshView {
 public:
  FreshView(const Config& cfg, const std::unordered_map<std::string, ReadingStore::Entry>& rd,
            TimePoint now) {
    for (const Device* d : cfg.all_devices()) {
      DeviceSnapshot ds;
      ds.device = d;
      auto it = rd.find(d->id);
      if (it != rd.end()) {
        const auto& e = it->second;
        ds.last_success = e.health.last_success;
        ds.last_error = e.health.last_error;
        const auto bound = d->interval * cfg.daemon.stale_after_intervals;
        const bool fresh = e.reading && e.health.last_success != TimePoint{} &&
                           now - e.health.last_success <= bound;
        if (fresh) {
          ds.quality = Quality::kGood;
          ds.reading = e.reading;
        } else {
          ds.quality = e.reading ? Quality::kStale : Quality::kError;
        }
        ds.up = e.health.up && fresh;
      }
      index_[d->id] = devices_.size();
      devices_.push_back(std::move(ds));
    }
  }

  bool fresh(const std::string& id) const {
    auto it = index_.find(id);
    return it != index_.end() && devices_[it->second].reading != nullptr;
  }

  std::optional<double> get(const std::string& id, const std::string& point) const {
    auto it = index_.find(id);
    if (it == index_.end()) return std::nullopt;
    const auto& r = devices_[it->second].reading;
    if (!r) return std::nullopt;
    auto p = r->points.find(point);
    if (p == r->points.end() || !p->second.value) return std::nullopt;
    return to_base_unit(*p->second.value, p->second.unit);
  }

  std::vector<DeviceSnapshot> take() { return std::move(devices_); }

 private:
  std::vector<DeviceSnapshot> devices_;
  std::unordered_map<std::string, std::size_t> index_;
};

// Sum of one point over a set of meters; coverage is the fraction that answered fresh.
struct MeterSum {
  std::optional<double> value;
  double coverage = 0;
  int count = 0;
};
MeterSum sum_meters(const Site& site, MeterRole role, const FreshView& v) {
  MeterSum m;
  double sum = 0;
  int ok = 0;
  for (const auto& d : site.devices) {
    if (d.kind != DeviceKind::kMeter || d.role != role) continue;
    ++m.count;
    if (auto p = v.get(d.id, "active_power")) {
      sum += *p;
      ++ok;
    }
  }
  if (m.count > 0) {
    m.coverage = double(ok) / m.count;
    if (ok == m.count) m.value = sum;
  }
  return m;
}

}  // namespace

const char* to_string(OverloadState s) {
  switch (s) {
    case OverloadState::kWarning: return "warning";
    case OverloadState::kCritical: return "critical";
    case OverloadState::kOk: break;
  }
  return "ok";
}

bool is_known_unit(const std::string& unit) {
  return std::any_of(std::begin(kUnits), std::end(kUnits),
                     [&](const UnitInfo& u) { return unit == u.name; });
}

double to_base_unit(double v, const std::string& unit) {
  for (const auto& u : kUnits) {
    if (unit == u.name) return v * u.factor;
  }
  return v;
}

std::shared_ptr<const FacilitySnapshot> compute_snapshot(
    std::shared_ptr<const Config> config,
    const std::unordered_map<std::string, ReadingStore::Entry>& readings, TimePoint now) {
  auto snap = std::make_shared<FacilitySnapshot>();
  snap->computed_at = now;
  snap->config = config;
  const Config& cfg = *config;
  FreshView view(cfg, readings, now);

  for (const Site& site : cfg.sites) {
    SiteSnapshot ss;
    ss.site = &site;

    // Which PDU measures which (cabinet, feed); which sensors sit in which cabinet.
    std::unordered_map<std::string, std::vector<const Device*>> pdus_by_cab, sensors_by_cab;
    for (const auto& d : site.devices) {
      if (d.kind == DeviceKind::kPdu) pdus_by_cab[d.cabinet].push_back(&d);
      if (d.kind == DeviceKind::kRackSensor) sensors_by_cab[d.cabinet].push_back(&d);
    }

    for (const auto& d : site.devices) {
      if (d.kind == DeviceKind::kRackSensor) {
        RackSensorSnapshot rs;
        rs.device = &d;
        rs.cabinet = d.cabinet;
        rs.inlet_c = view.get(d.id, "inlet_temperature");
        rs.outlet_c = view.get(d.id, "outlet_temperature");
        rs.humidity_ratio = view.get(d.id, "humidity");
        ss.rack_sensors.push_back(rs);
      } else if (d.kind == DeviceKind::kCooling) {
        CoolingSnapshot cs;
        cs.device = &d;
        cs.supply_c = view.get(d.id, "supply_temperature");
        cs.return_c = view.get(d.id, "return_temperature");
        cs.power_w = view.get(d.id, "active_power");
        cs.fan_ratio = view.get(d.id, "fan_speed");
        if (auto r = view.get(d.id, "running")) cs.running = *r != 0.0;
        ss.cooling.push_back(cs);
      }
    }

    double cab_sum = 0;
    for (const Cabinet& cab : site.cabinets) {
      CabinetSnapshot cs;
      cs.cabinet = &cab;
      bool all = true;
      double total = 0;
      const auto& pdus = pdus_by_cab[cab.id];
      for (const auto& feed : cab.feeds) {
        FeedPower fp;
        fp.feed = feed;
        for (const Device* p : pdus) {
          if (p->feed == feed) {
            fp.device = p->id;
            fp.power_w = view.get(p->id, "active_power");
          }
        }
        if (fp.power_w) {
          total += *fp.power_w;
        } else {
          all = false;
        }
        cs.feeds.push_back(fp);
      }
      // A cabinet's power is only known when every feed is measured fresh: a missing feed must
      // never quietly halve it.
      if (all) {
        cs.power_w = total;
        cs.utilization = cab.rated_w > 0 ? std::optional(total / cab.rated_w) : std::nullopt;
        cs.powered = total > cfg.daemon.powered_threshold_w;
        cs.quality = Quality::kGood;
        ++ss.cabinets_measured;
        cab_sum += total;
      } else {
        cs.quality = Quality::kStale;
      }
      for (const Device* s : sensors_by_cab[cab.id]) {
        if (auto t = view.get(s->id, "inlet_temperature")) {
          cs.inlet_c = cs.inlet_c ? std::max(*cs.inlet_c, *t) : *t;
        }
        if (auto h = view.get(s->id, "humidity")) cs.humidity_ratio = *h;
      }
      ss.rated_w += cab.rated_w;
      ++ss.cabinets_total;
      if (cs.powered) ++ss.cabinets_powered;
      switch (cab.status) {
        case CabinetStatus::kSold: ++ss.cabinets_sold; break;
        case CabinetStatus::kInternal: ++ss.cabinets_internal; break;
        case CabinetStatus::kFree: ++ss.cabinets_free; break;
      }
      ss.cabinets.push_back(std::move(cs));
    }

    const MeterSum it = sum_meters(site, MeterRole::kItTotal, view);
    if (it.count > 0) {
      ss.it_power_source = "meter";
      ss.it_power_w = it.value;
      ss.it_coverage = it.coverage;
    } else {
      ss.it_power_source = "pdu_sum";
      ss.it_coverage = ss.cabinets_total > 0 ? double(ss.cabinets_measured) / ss.cabinets_total : 0;
      if (ss.cabinets_total > 0 && ss.cabinets_measured == ss.cabinets_total) ss.it_power_w = cab_sum;
    }
    const MeterSum fac = sum_meters(site, MeterRole::kFacilityTotal, view);
    ss.facility_power_w = fac.value;
    ss.facility_coverage = fac.coverage;
    ss.cooling_power_w = sum_meters(site, MeterRole::kCooling, view).value;
    // PUE only from fully covered terms; an IT power of zero has no meaningful PUE.
    if (ss.facility_power_w && ss.it_power_w && *ss.it_power_w > 0) {
      ss.pue = *ss.facility_power_w / *ss.it_power_w;
    }
    if (ss.cabinets_total > 0) {
      ss.occupancy_powered = double(ss.cabinets_powered) / ss.cabinets_total;
      ss.occupancy_sold = double(ss.cabinets_sold) / ss.cabinets_total;
    }
    snap->sites.push_back(std::move(ss));
  }
  snap->devices = view.take();
  return snap;
}

std::shared_ptr<const FacilitySnapshot> FacilityModel::update(
    const std::unordered_map<std::string, ReadingStore::Entry>& readings, TimePoint now) {
  return compute_snapshot(config_, readings, now);
}

}  // namespace facility
