// Site and room aggregates: occupancy, capacity (rated, measured, headroom, reserve, stranded),
// cooling capacity with N+1, IT terms by PUE category and instantaneous PUE, coverage.
#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "daemon/config/points.h"
#include "daemon/model/internal.h"

namespace facility::model_detail {
namespace {

void count(Occupancy& o, const CabinetSnapshot& cs) {
  ++o.total;
  if (cs.powered) ++o.powered;
  if (cs.powered_known) ++o.powered_known;
  if (cs.power_w) ++o.measured;
  switch (cs.cabinet->status) {
    case CabinetStatus::kSold:
      ++o.sold;
      break;
    case CabinetStatus::kInternal:
      ++o.internal;
      break;
    case CabinetStatus::kFree:
      ++o.free;
      break;
  }
  if (cs.u_occupied && cs.u_total) {
    o.u_occupied += *cs.u_occupied;
    o.u_total += *cs.u_total;
    ++o.u_reporting;
  }
}

CapacitySnapshot capacity_of(const std::vector<const CabinetSnapshot*>& cabs, double reserve) {
  CapacitySnapshot c;
  double measured = 0;
  bool all = true;
  for (const auto* cs : cabs) {
    c.rated_w += cs->cabinet->rated_w;
    if (cs->power_w)
      measured += *cs->power_w;
    else
      all = false;
  }
  c.reserve_w = c.rated_w * reserve;
  if (all && !cabs.empty()) {
    c.measured_w = measured;
    c.headroom_w = c.rated_w - measured;
    c.headroom_to_reserve_w = c.rated_w - c.reserve_w - measured;
  }
  return c;
}

std::optional<double> stranded_of(const std::vector<const CabinetSnapshot*>& cabs) {
  double sum = 0;
  for (const auto* cs : cabs) {
    if (!cs->powered && cs->cabinet->status != CabinetStatus::kSold) continue;
    if (!cs->peak_w) return std::nullopt;
    // An overloaded cabinet strands nothing; it does not give capacity back either.
    sum += std::max(0.0, cs->cabinet->rated_w - *cs->peak_w);
  }
  return sum;
}

CoolingCapacity cooling_of(const std::vector<const CoolingSnapshot*>& units,
                           std::optional<double> heat_load_w) {
  CoolingCapacity c;
  bool all_rated = true;
  double running = 0, largest = 0;
  for (const auto* u : units) {
    ++c.units;
    const auto cap = u->device->capacity_w;
    if (cap)
      c.installed_w += *cap;
    else
      all_rated = false;
    if (u->running) {
      ++c.units_known;
      if (*u->running) {
        ++c.units_running;
        running += cap.value_or(0.0);
        largest = std::max(largest, cap.value_or(0.0));
      }
    }
  }
  c.heat_load_w = heat_load_w;
  if (c.units == 0 || !all_rated || c.units_known < c.units) return c;
  c.running_w = running;
  c.n_plus_1_w = running - largest;
  if (heat_load_w) {
    c.headroom_w = running - *heat_load_w;
    c.headroom_n_plus_1_w = *c.n_plus_1_w - *heat_load_w;
  }
  return c;
}

}  // namespace

const char* it_role_name(int category) {
  const auto* c = pue_category_info(category);
  return c ? c->role_name : "it_total";
}

std::vector<std::vector<const Device*>> it_meters_by_category(const Site& site) {
  std::vector<std::vector<const Device*>> out(3);
  for (const auto& d : site.devices) {
    // Meters by role; a UPS with role it_at_ups_output measures category 1 at its output.
    const Contribution c_of = kind_info(d.kind).contributes;
    if (c_of != Contribution::kSiteMeter && c_of != Contribution::kUpsOutput) continue;
    const int c = it_category(d.role, site.pue_category);
    if (c >= 1 && c <= 3) out[std::size_t(c - 1)].push_back(&d);
  }
  return out;
}

void compute_stranded(SiteSnapshot& ss) {
  std::vector<const CabinetSnapshot*> all;
  for (const auto& cs : ss.cabinets) all.push_back(&cs);
  ss.capacity.stranded_w = stranded_of(all);
  for (auto& room : ss.rooms) {
    std::vector<const CabinetSnapshot*> mine;
    for (const auto& cs : ss.cabinets) {
      if (cs.cabinet->room == room.room->id) mine.push_back(&cs);
    }
    room.capacity.stranded_w = stranded_of(mine);
  }
}

namespace {

// The site's devices sorted by what they contribute (device_kinds.h): the PDUs and sensors of
// each cabinet, the meters by role; rack sensors and cooling units become snapshots here.
struct SiteDevices {
  std::unordered_map<std::string, std::vector<const Device*>> pdus_by_cab, sensors_by_cab;
  std::vector<const Device*> facility_meters, cooling_meters;
  int sensors = 0, sensors_fresh = 0;
};

RackSensorSnapshot rack_sensor_of(const Device& d, const FreshView& v) {
  RackSensorSnapshot rs;
  rs.device = &d;
  rs.cabinet = d.cabinet;
  rs.inlet_c = v.get(d.id, points::kInletTemperature);
  rs.outlet_c = v.get(d.id, points::kOutletTemperature);
  rs.humidity_ratio = v.get(d.id, points::kHumidity);
  if (rs.inlet_c && rs.humidity_ratio) {
    rs.dew_point_c = dew_point_c(*rs.inlet_c, *rs.humidity_ratio);
  }
  return rs;
}

CoolingSnapshot cooling_unit_of(const Device& d, const FreshView& v) {
  CoolingSnapshot cs;
  cs.device = &d;
  cs.supply_c = v.get(d.id, points::kSupplyTemperature);
  cs.return_c = v.get(d.id, points::kReturnTemperature);
  cs.power_w = v.get(d.id, points::kActivePower);
  cs.fan_ratio = v.get(d.id, points::kFanSpeed);
  if (auto r = v.get(d.id, points::kRunning)) cs.running = *r != 0.0;
  if (cs.supply_c && cs.return_c) cs.delta_t_c = *cs.return_c - *cs.supply_c;
  return cs;
}

SiteDevices sort_devices(const Site& site, const FreshView& v, SiteSnapshot& ss) {
  SiteDevices sd;
  for (const auto& d : site.devices) {
    switch (kind_info(d.kind).contributes) {
      case Contribution::kCabinetFeed:
        sd.pdus_by_cab[d.cabinet].push_back(&d);
        break;
      case Contribution::kCabinetSensor:
        sd.sensors_by_cab[d.cabinet].push_back(&d);
        ss.rack_sensors.push_back(rack_sensor_of(d, v));
        ++sd.sensors;
        if (ss.rack_sensors.back().inlet_c) ++sd.sensors_fresh;
        break;
      case Contribution::kRoomCooling:
        ss.cooling.push_back(cooling_unit_of(d, v));
        break;
      case Contribution::kSiteMeter:
        if (d.role == MeterRole::kFacilityTotal) sd.facility_meters.push_back(&d);
        if (d.role == MeterRole::kCooling) sd.cooling_meters.push_back(&d);
        break;
      case Contribution::kUpsOutput:
        ss.ups.push_back(compute_ups(d, v, site.facility.ups));
        break;
    }
  }
  return sd;
}

// Every cabinet; returns how many have a rack sensor whose profile reports rack units.
int compute_cabinets(const Config& cfg, const Site& site, const FreshView& v, SiteDevices& sd,
                     SiteSnapshot& ss) {
  int u_capable = 0;
  for (const Cabinet& cab : site.cabinets) {
    const auto& sens = sd.sensors_by_cab[cab.id];
    if (std::any_of(sens.begin(), sens.end(), [](const Device* s) {
          return s->profile && s->profile->find(points::kUOccupied);
        })) {
      ++u_capable;
    }
    ss.cabinets.push_back(compute_cabinet(cab, sd.pdus_by_cab[cab.id], sens, v,
                                          cfg.daemon.powered_threshold_w, site.facility.inlet));
  }
  return u_capable;
}

RoomSnapshot compute_room(const Room& room, const SiteSnapshot& ss, double capacity_reserve) {
  RoomSnapshot rs;
  rs.room = &room;
  std::vector<const CabinetSnapshot*> mine;
  for (const auto& cs : ss.cabinets) {
    if (cs.cabinet->room == room.id) {
      mine.push_back(&cs);
      count(rs.occupancy, cs);
    }
  }
  rs.capacity = capacity_of(mine, capacity_reserve);
  std::vector<const CoolingSnapshot*> units;
  for (const auto& c : ss.cooling) {
    if (c.device->room == room.id) units.push_back(&c);
  }
  rs.cooling = cooling_of(units, rs.capacity.measured_w);
  if (rs.cooling.headroom_w && *rs.cooling.headroom_w < 0) {
    rs.cooling_state = OverloadState::kCritical;
  } else if (rs.cooling.headroom_n_plus_1_w && *rs.cooling.headroom_n_plus_1_w < 0) {
    rs.cooling_state = OverloadState::kWarning;
  }
  return rs;
}

// Rooms, then the site as a whole: occupancy, capacity, cooling capacity, stranded power.
// Returns the cooling units whose running state is known.
int compute_rooms_and_capacity(const Site& site, SiteSnapshot& ss) {
  const FacilitySettings& fs = site.facility;
  std::vector<const CabinetSnapshot*> all;
  for (const auto& cs : ss.cabinets) {
    all.push_back(&cs);
    count(ss.occupancy, cs);
  }
  int cooling_known = 0;
  for (const Room& room : site.rooms) {
    RoomSnapshot rs = compute_room(room, ss, fs.capacity_reserve);
    ss.cooling_capacity.units += rs.cooling.units;
    ss.cooling_capacity.units_running += rs.cooling.units_running;
    ss.cooling_capacity.units_known += rs.cooling.units_known;
    cooling_known += rs.cooling.units_known;
    ss.cooling_capacity.installed_w += rs.cooling.installed_w;
    ss.rooms.push_back(rs);
  }
  ss.capacity = capacity_of(all, fs.capacity_reserve);
  ss.cooling_capacity.heat_load_w = ss.capacity.measured_w;
  double running = 0;
  bool all_running_known = ss.cooling_capacity.units > 0;
  for (const auto& r : ss.rooms) {
    if (r.cooling.units == 0) continue;
    if (!r.cooling.running_w)
      all_running_known = false;
    else
      running += *r.cooling.running_w;
  }
  if (all_running_known) ss.cooling_capacity.running_w = running;
  compute_stranded(ss);
  return cooling_known;
}

// The flat cabinet counts, occupancy ratios and the build-out plan at `now`.
void fill_occupancy(const Site& site, TimePoint now, SiteSnapshot& ss) {
  const Occupancy& o = ss.occupancy;
  ss.rated_w = ss.capacity.rated_w;
  ss.cabinets_total = o.total;
  ss.cabinets_powered = o.powered;
  ss.cabinets_sold = o.sold;
  ss.cabinets_internal = o.internal;
  ss.cabinets_free = o.free;
  ss.cabinets_measured = o.measured;
  ss.occupancy_powered = o.ratio_powered();
  ss.occupancy_sold = o.ratio_sold();
  if (site.planned_cabinets > 0 && o.powered_known == o.total) {
    ss.occupancy_planned = double(o.powered) / site.planned_cabinets;
  }
  ss.plan_powered = plan_at(site.build_out_plan, now);
  if (ss.plan_powered && *ss.plan_powered > 0 && o.powered_known == o.total) {
    ss.plan_attainment = double(o.powered) / *ss.plan_powered;
  }
}

struct ItTerm {
  int category;
  SourceSum sum;
};

// IT terms: meters by category; without any IT meter, the sum of the PDUs (category 2).
std::vector<ItTerm> it_terms_of(const Site& site, const FreshView& v, SiteSnapshot& ss) {
  std::vector<ItTerm> it_terms;
  const auto by_cat = it_meters_by_category(site);
  for (int c = 1; c <= 3; ++c) {
    const auto& meters = by_cat[std::size_t(c - 1)];
    if (!meters.empty()) it_terms.push_back({c, sum_points(meters, points::kActivePower, v)});
  }
  if (!it_terms.empty()) {
    ss.it_power_source = "meter";
    return it_terms;
  }
  // Coverage counts feeds, so one silent PDU of a pair is 50 % of that cabinet, not 0 or 100.
  ItTerm t{2, {}};
  int fresh = 0;
  for (const auto& cs : ss.cabinets) {
    for (const auto& f : cs.feeds) {
      ++t.sum.count;
      if (f.power_w) {
        t.sum.partial += *f.power_w;
        ++fresh;
      }
    }
  }
  t.sum.coverage = t.sum.count > 0 ? double(fresh) / t.sum.count : 0.0;
  if (t.sum.count > 0 && fresh == t.sum.count) t.sum.value = t.sum.partial;
  ss.it_power_source = "pdu_sum";
  it_terms.push_back(t);
  return it_terms;
}

// Site power terms and the instant PUE of every category with an IT source.
void compute_power_and_pue(const Site& site, const FreshView& v, const SourceSum& fac,
                           const SourceSum& cool, SiteSnapshot& ss) {
  const FacilitySettings& fs = site.facility;
  const std::vector<ItTerm> it_terms = it_terms_of(site, v, ss);
  ss.it_power_w = it_terms.front().sum.value;
  ss.it_coverage = it_terms.front().sum.coverage;
  ss.pue_category = it_terms.front().category;
  ss.facility_power_w = fac.value;
  ss.facility_coverage = fac.coverage;
  ss.cooling_power_w = cool.value;
  for (const auto& t : it_terms) {
    PueValue pv;
    pv.category = t.category;
    pv.window = "instant";
    pv.it_coverage = t.sum.coverage;
    if (fac.count > 0) pv.facility_coverage = fac.coverage;
    if (cool.count > 0) pv.cooling_coverage = cool.coverage;
    const auto it = covered_value(t.sum, fs.pue_min_coverage);
    const auto f = covered_value(fac, fs.pue_min_coverage);
    // An IT power of zero has no meaningful PUE.
    if (it && *it > 0) {
      if (f) pv.pue = *f / *it;
      if (auto c = covered_value(cool, fs.pue_min_coverage)) pv.partial_cooling = (*it + *c) / *it;
    }
    if (t.category == ss.pue_category) ss.pue = pv.pue;
    ss.pue_values.push_back(pv);
  }
}

}  // namespace

void compute_site(const Config& cfg, const Site& site, const FreshView& v, TimePoint now,
                  SiteSnapshot& ss) {
  ss.site = &site;
  SiteDevices sd = sort_devices(site, v, ss);
  const int u_capable = compute_cabinets(cfg, site, v, sd, ss);
  const int cooling_known = compute_rooms_and_capacity(site, ss);
  fill_occupancy(site, now, ss);
  const SourceSum fac = sum_points(sd.facility_meters, points::kActivePower, v);
  const SourceSum cool = sum_points(sd.cooling_meters, points::kActivePower, v);
  compute_power_and_pue(site, v, fac, cool, ss);

  // Coverage of every aggregate.
  const Occupancy& o = ss.occupancy;
  auto cover = [&ss](const char* q, double c) { ss.coverage.emplace_back(q, c); };
  cover("it_power", ss.it_coverage);
  if (fac.count > 0) cover("facility_power", fac.coverage);
  if (cool.count > 0) cover("cooling_power", cool.coverage);
  if (o.total > 0) {
    cover("cabinet_power", double(o.measured) / o.total);
    cover("powered_state", double(o.powered_known) / o.total);
  }
  if (sd.sensors > 0) cover("rack_inlet", double(sd.sensors_fresh) / sd.sensors);
  if (u_capable > 0) cover("rack_units", double(o.u_reporting) / u_capable);
  if (ss.cooling_capacity.units > 0) {
    cover("cooling_units", double(cooling_known) / ss.cooling_capacity.units);
  }
}

}  // namespace facility::model_detail
