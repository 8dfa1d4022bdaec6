// Exposition of the facility model: cabinets, rack sensors, cooling units, rooms and sites.
// Every family is documented in docs/metrics.md with its formula. A value the model does not
// know (stale source, withheld for coverage, not enough history) has no series at all.
#include <map>
#include <sstream>

#include "daemon/metrics_util.h"

namespace facility::metrics_detail {
namespace {

std::string power_class(double rated_w) {
  std::ostringstream os;
  os.precision(3);
  os << rated_w / 1000.0 << "kW";
  return os.str();
}

double flag(bool b) { return b ? 1.0 : 0.0; }
double level(OverloadState s) { return static_cast<double>(static_cast<int>(s)); }

Labels with(Labels l, std::initializer_list<ClientMetric::Label> extra) {
  for (const auto& e : extra) l.push_back(e);
  return l;
}

void render_cabinets(Families& fam, const FacilitySnapshot& snap) {
  auto g = [&fam](const char* name, const char* help) -> MetricFamily& {
    return fam.family(name, help, MetricType::Gauge);
  };
  auto& power =
      g("facility_cabinet_power_watts",
        "Cabinet active power, sum of all feeds, in watts. Absent unless every feed's PDU "
        "reported fresh data.");
  auto& feed = g("facility_cabinet_feed_power_watts",
                 "Active power of one cabinet feed (A/B), in watts, from its PDU (measured, or "
                 "estimated from current: see facility_cabinet_feed_power_estimated).");
  auto& rated = g("facility_cabinet_rated_power_watts",
                  "Cabinet rated (contracted) power in watts, from rated_kw or the breaker (V x A, "
                  "or sqrt(3) x V x A for three phases).");
  auto& util = g("facility_cabinet_utilization_ratio",
                 "Cabinet power divided by its rated power (0..1, may exceed 1 when overloaded).");
  auto& info =
      g("facility_cabinet_info", "Cabinet inventory attributes as labels; value is always 1.");
  auto& estimated = g("facility_cabinet_power_estimated",
                      "1 if the cabinet's power includes a feed estimated from current x voltage x "
                      "power factor, 0 if every feed is measured active power.");
  auto& feed_est = g("facility_cabinet_feed_power_estimated",
                     "1 if the feed's power is estimated from current x voltage x power factor.");
  auto& coverage = g("facility_cabinet_power_coverage_ratio",
                     "Fraction (0..1) of the cabinet's feeds whose power is known; below 1 the "
                     "cabinet has no power value.");
  auto& feed_i = g("facility_cabinet_feed_current_amperes",
                   "Inlet current of a single-phase feed's PDU, in amperes.");
  auto& feed_v = g("facility_cabinet_feed_voltage_volts",
                   "Inlet voltage of a single-phase feed's PDU, in volts.");
  auto& ph_p = g("facility_cabinet_phase_power_watts",
                 "Active power of one phase of a three-phase feed, in watts.");
  auto& ph_i = g("facility_cabinet_phase_current_amperes",
                 "Current of one phase of a three-phase feed, in amperes.");
  auto& ph_v = g("facility_cabinet_phase_voltage_volts",
                 "Line-to-neutral voltage of one phase of a three-phase feed, in volts.");
  auto& imbalance = g("facility_cabinet_phase_imbalance_ratio",
                      "Phase imbalance of a three-phase feed: max |phase - mean| / mean of the "
                      "phase currents (phase powers if no currents).");
  auto& headroom = g("facility_cabinet_failover_headroom_watts",
                     "If the cabinet's other feed(s) fail, this feed carries the whole cabinet: "
                     "derated feed capacity - cabinet power, in watts. Negative = failover risk.");
  auto& ph_headroom = g("facility_cabinet_phase_failover_headroom_watts",
                        "Per phase of a three-phase feed after a failover: derated feed capacity / "
                        "3 - the sum of that phase over all feeds, in watts.");
  auto& capacity = g("facility_cabinet_derated_feed_capacity_watts",
                     "What one feed may carry continuously: breaker (else rated) power x "
                     "derating, in watts.");
  auto& risk = g("facility_cabinet_failover_risk",
                 "1 while the cabinet_failover_risk state is raised (a feed or phase failover "
                 "headroom below 0, with hold time and hysteresis).");
  auto& overload = g("facility_cabinet_overload_state",
                     "Cabinet overload state: 0 ok, 1 warning, 2 critical (utilisation against the "
                     "thresholds, with hysteresis and hold time). Held while power is unknown.");
  auto& inlet = g("facility_cabinet_inlet_state",
                  "Cabinet inlet temperature state against its ASHRAE class: 0 within the "
                  "recommended range, 1 outside it, 2 outside the allowable range.");
  auto& powered = g("facility_cabinet_powered",
                    "1 if the cabinet is powered (an outlet on, or power above the powered "
                    "threshold), 0 if not; absent when unknown.");
  auto& peak = g("facility_cabinet_peak_power_watts",
                 "Highest cabinet power over the peak window (facility.peak_window, or since "
                 "start), in watts.");
  auto& units =
      g("facility_cabinet_rack_units",
        "Rack units (U) of the cabinet: occupied (reported by its rack sensor) and total.");

  for (const auto& ss : snap.sites) {
    const Site& site = *ss.site;
    for (const auto& cs : ss.cabinets) {
      const Cabinet& c = *cs.cabinet;
      const Labels l = cabinet_labels(c);
      gauge(power, l, cs.power_w);
      gauge(rated, l, c.rated_w);
      gauge(util, l, cs.utilization);
      if (cs.power_w) gauge(estimated, l, flag(cs.estimated));
      gauge(coverage, l, cs.feed_coverage);
      gauge(capacity, l, c.feed_capacity_w * c.derating);
      if (c.feeds.size() >= 2) gauge(risk, l, flag(cs.failover_risk));
      gauge(overload, l, level(cs.overload));
      if (cs.inlet_c) gauge(inlet, l, level(cs.inlet_state));
      if (cs.powered_known) gauge(powered, l, flag(cs.powered));
      gauge(peak, l, cs.peak_w);
      if (cs.u_occupied) {
        gauge(units, with(l, {{"state", "occupied"}}), cs.u_occupied);
        gauge(units, with(l, {{"state", "total"}}), cs.u_total);
      }
      gauge(info,
            cabinet_labels(c, {{"power_class", power_class(c.rated_w)},
                               {"ownership", to_string(site.ownership)},
                               {"status", to_string(c.status)},
                               {"cabinet_class", c.cabinet_class}}),
            1.0);
      for (const auto& f : cs.feeds) {
        const Labels lf = cabinet_labels(c, {{"feed", f.feed}});
        gauge(feed, lf, f.power_w);
        if (f.power_w) gauge(feed_est, lf, flag(f.estimated));
        gauge(feed_i, lf, f.current_a);
        gauge(feed_v, lf, f.voltage_v);
        gauge(imbalance, lf, f.phase_imbalance);
        gauge(headroom, lf, f.failover_headroom_w);
        for (const auto& ph : f.phases) {
          const Labels lp = with(lf, {{"phase", ph.phase}});
          gauge(ph_p, lp, ph.power_w);
          gauge(ph_i, lp, ph.current_a);
          gauge(ph_v, lp, ph.voltage_v);
          gauge(ph_headroom, lp, ph.failover_headroom_w);
        }
      }
    }
  }
}

void render_racks_and_cooling(Families& fam, const FacilitySnapshot& snap) {
  auto g = [&fam](const char* name, const char* help) -> MetricFamily& {
    return fam.family(name, help, MetricType::Gauge);
  };
  auto& in = g("facility_rack_inlet_temperature_celsius",
               "Rack inlet air temperature in degrees Celsius, per sensor.");
  auto& out = g("facility_rack_outlet_temperature_celsius",
                "Rack outlet (exhaust) air temperature in degrees Celsius, per sensor.");
  auto& hum =
      g("facility_rack_humidity_ratio", "Rack relative humidity as a ratio (0..1), per sensor.");
  auto& dew = g("facility_rack_dew_point_celsius",
                "Dew point at the rack inlet in degrees Celsius, from inlet temperature and "
                "humidity (Magnus formula).");
  for (const auto& ss : snap.sites) {
    for (const auto& rs : ss.rack_sensors) {
      const Cabinet* c = ss.site->find_cabinet(rs.cabinet);
      if (!c) continue;
      const Labels l = cabinet_labels(*c, {{"sensor", rs.device->id}});
      gauge(in, l, rs.inlet_c);
      gauge(out, l, rs.outlet_c);
      gauge(hum, l, rs.humidity_ratio);
      gauge(dew, l, rs.dew_point_c);
    }
  }
  auto& sup = g("facility_cooling_supply_temperature_celsius",
                "Cooling unit supply air temperature in degrees Celsius.");
  auto& ret = g("facility_cooling_return_temperature_celsius",
                "Cooling unit return air temperature in degrees Celsius.");
  auto& dt = g("facility_cooling_delta_temperature_celsius",
               "Cooling unit return - supply air temperature, in kelvin (degrees Celsius of "
               "difference).");
  auto& pow = g("facility_cooling_power_watts", "Cooling unit electrical power in watts.");
  auto& fan =
      g("facility_cooling_fan_speed_ratio", "Cooling unit fan speed as a ratio of maximum (0..1).");
  auto& run = g("facility_cooling_running", "1 if the cooling unit reports running, 0 if stopped.");
  auto& cap = g("facility_cooling_capacity_watts",
                "Rated thermal (cooling) capacity of the unit in watts, from its capacity_kw.");
  for (const auto& ss : snap.sites) {
    for (const auto& cs : ss.cooling) {
      const Labels l{{"site", ss.site->id}, {"room", cs.device->room}, {"unit", cs.device->id}};
      gauge(sup, l, cs.supply_c);
      gauge(ret, l, cs.return_c);
      gauge(dt, l, cs.delta_t_c);
      gauge(pow, l, cs.power_w);
      gauge(fan, l, cs.fan_ratio);
      if (cs.running) gauge(run, l, flag(*cs.running));
      gauge(cap, l, cs.device->capacity_w);
    }
  }
}

// Cabinet counts, occupancy and capacity, for a site (prefix "facility_site") or a room.
struct Scope {
  MetricFamily *cabinets, *occupancy, *capacity, *equivalents;
};

Scope scope_families(Families& fam, const std::string& prefix, const std::string& what) {
  Scope s;
  s.cabinets = &fam.family(prefix + "_cabinets",
                           "Cabinets of the " + what +
                               " by state: total (delivered, in the "
                               "inventory), powered, measured (power known), sold, internal, free" +
                               (what == "site" ? ", planned (planned_cabinets)." : "."),
                           MetricType::Gauge);
  s.occupancy = &fam.family(prefix + "_occupancy_ratio",
                            "Occupancy of the " + what +
                                " (0..1) by basis: powered / total, "
                                "sold / total, rack_units occupied / total" +
                                (what == "site" ? ", planned = powered / planned_cabinets." : "."),
                            MetricType::Gauge);
  s.capacity =
      &fam.family(prefix + "_capacity_watts",
                  "Power capacity of the " + what +
                      " in watts by quantity: rated, "
                      "measured, headroom (rated - measured), reserve, headroom_to_reserve "
                      "(rated - reserve - measured), stranded (rated - peak of powered or "
                      "sold cabinets).",
                  MetricType::Gauge);
  s.equivalents = &fam.family(prefix + "_capacity_equivalent_cabinets",
                              "The " + what +
                                  "'s capacity quantities in equivalent cabinets of "
                                  "facility.cabinet_equivalent_kw (default 4.4 kW).",
                              MetricType::Gauge);
  return s;
}

void render_scope(const Scope& f, const Labels& l, const Occupancy& o, const CapacitySnapshot& c,
                  double equivalent_w) {
  const std::pair<const char*, int> states[] = {{"total", o.total},       {"powered", o.powered},
                                                {"measured", o.measured}, {"sold", o.sold},
                                                {"internal", o.internal}, {"free", o.free}};
  for (const auto& [state, n] : states) gauge(*f.cabinets, with(l, {{"state", state}}), n);
  gauge(*f.occupancy, with(l, {{"basis", "powered"}}), o.ratio_powered());
  gauge(*f.occupancy, with(l, {{"basis", "sold"}}), o.ratio_sold());
  gauge(*f.occupancy, with(l, {{"basis", "rack_units"}}), o.ratio_rack_units());
  const std::pair<const char*, std::optional<double>> qs[] = {
      {"rated", c.rated_w},
      {"measured", c.measured_w},
      {"headroom", c.headroom_w},
      {"reserve", c.reserve_w},
      {"headroom_to_reserve", c.headroom_to_reserve_w},
      {"stranded", c.stranded_w}};
  for (const auto& [q, v] : qs) {
    gauge(*f.capacity, with(l, {{"quantity", q}}), v);
    if (v && equivalent_w > 0) gauge(*f.equivalents, with(l, {{"quantity", q}}), *v / equivalent_w);
  }
}

void render_rooms(Families& fam, const FacilitySnapshot& snap) {
  const Scope f = scope_families(fam, "facility_room", "room");
  auto& cool_cap = fam.family("facility_room_cooling_capacity_watts",
                              "Cooling capacity of the room's units in watts: installed (all "
                              "units), running, n_plus_1 (running minus the largest running unit).",
                              MetricType::Gauge);
  auto& heat = fam.family("facility_room_cooling_heat_load_watts",
                          "IT heat load of the room: the power of its cabinets, in watts.",
                          MetricType::Gauge);
  auto& head = fam.family("facility_room_cooling_headroom_watts",
                          "Cooling headroom of the room in watts: redundancy n = running capacity "
                          "- heat load; n_plus_1 = N+1 capacity - heat load.",
                          MetricType::Gauge);
  auto& units = fam.family("facility_room_cooling_units",
                           "Cooling units of the room: total, running.", MetricType::Gauge);
  auto& state = fam.family("facility_room_cooling_state",
                           "Cooling redundancy state of the room: 0 ok, 1 N+1 lost (warning), "
                           "2 running capacity below the heat load (critical).",
                           MetricType::Gauge);
  for (const auto& ss : snap.sites) {
    const Site& site = *ss.site;
    for (const auto& rs : ss.rooms) {
      const Labels l{{"site", site.id}, {"room", rs.room->id}};
      render_scope(f, l, rs.occupancy, rs.capacity, site.facility.cabinet_equivalent_w);
      const CoolingCapacity& c = rs.cooling;
      if (c.units == 0) continue;
      gauge(cool_cap, with(l, {{"state", "installed"}}), c.installed_w);
      gauge(cool_cap, with(l, {{"state", "running"}}), c.running_w);
      gauge(cool_cap, with(l, {{"state", "n_plus_1"}}), c.n_plus_1_w);
      gauge(heat, l, c.heat_load_w);
      gauge(head, with(l, {{"redundancy", "n"}}), c.headroom_w);
      gauge(head, with(l, {{"redundancy", "n_plus_1"}}), c.headroom_n_plus_1_w);
      gauge(units, with(l, {{"state", "total"}}), c.units);
      if (c.units_known == c.units) gauge(units, with(l, {{"state", "running"}}), c.units_running);
      gauge(state, l, level(rs.cooling_state));
    }
  }
}

void render_sites(Families& fam, const FacilitySnapshot& snap) {
  auto g = [&fam](const char* name, const char* help) -> MetricFamily& {
    return fam.family(name, help, MetricType::Gauge);
  };
  auto& it = g("facility_site_it_power_watts",
               "Site IT power in watts: the IT meter(s) of the lowest PUE category, or the sum of "
               "all PDUs when there is none (label source). Absent unless fully covered.");
  auto& fac = g("facility_site_facility_power_watts",
                "Site total facility power in watts from the facility_total meter(s).");
  auto& cool = g("facility_site_cooling_power_watts",
                 "Site cooling power in watts from the cooling meter(s).");
  auto& pue = g("facility_site_pue_ratio",
                "Power usage effectiveness (ISO/IEC 30134-2): facility / IT, from power (window "
                "instant) or energy over a rolling window; category = where IT is measured: 1 UPS "
                "output, 2 PDU output, 3 IT equipment input. Absent below the coverage bound.");
  auto& ppue = g("facility_site_partial_pue_ratio",
                 "Partial PUE of a subsystem: (IT + subsystem) / IT, by category and window.");
  auto& rated = g("facility_site_rated_power_watts",
                  "Sum of rated power of all cabinets of the site, in watts.");
  auto& cov = g("facility_site_coverage_ratio",
                "Fraction (0..1) of the sources of a site aggregate that reported fresh data.");
  auto& energy = fam.family("facility_site_energy_joules_total",
                            "Energy of the site's meters of one role (pdu_sum: its PDUs) since "
                            "facilityd started, in joules, across counter wraps and resets. "
                            "Absent while a meter of the role is missing.",
                            MetricType::Counter);
  auto& ecov = g("facility_site_energy_coverage_ratio",
                 "Fraction (0..1) of a window's device-time whose energy is known, per role; "
                 "absent until the history reaches back the whole window.");
  auto& ehist = g("facility_site_energy_history_seconds",
                  "How far back the in-memory energy history of a role reaches, in seconds.");
  auto& events = fam.family("facility_site_energy_reading_events_total",
                            "Energy counter events seen by the model, by device: wrap (passed its "
                            "integer range), reset (restarted, e.g. a reboot), rejected "
                            "(implausible jump, not counted).",
                            MetricType::Counter);
  auto& equiv = g("facility_site_cabinet_equivalent_watts",
                  "Size of one equivalent cabinet used by the *_capacity_equivalent_cabinets "
                  "metrics, in watts.");
  auto& plan = g("facility_site_plan_powered_cabinets",
                 "Powered cabinets planned by the build-out plan at this time.");
  auto& attain = g("facility_site_plan_attainment_ratio",
                   "Powered cabinets / planned powered cabinets (build-out plan) now.");
  auto& units = g("facility_site_rack_units",
                  "Rack units (U) over the cabinets whose sensors report them: occupied, total.");
  auto& ccap = g("facility_site_cooling_capacity_watts",
                 "Cooling capacity of the site's units in watts: installed, running.");
  auto& alerts = g("facility_site_alerts",
                   "Alerts currently raised, by kind and severity (see docs/metrics.md, Alerts).");
  const Scope f = scope_families(fam, "facility_site", "site");

  for (const auto& ss : snap.sites) {
    const Site& site = *ss.site;
    const Labels l{{"site", site.id}};
    gauge(it, with(l, {{"source", ss.it_power_source}}), ss.it_power_w);
    gauge(fac, l, ss.facility_power_w);
    gauge(cool, l, ss.cooling_power_w);
    for (const auto& p : ss.pue_values) {
      const Labels lp = with(l, {{"category", std::to_string(p.category)}, {"window", p.window}});
      gauge(pue, lp, p.pue);
      gauge(ppue, with(lp, {{"subsystem", "cooling"}}), p.partial_cooling);
    }
    gauge(rated, l, ss.rated_w);
    for (const auto& [q, v] : ss.coverage) gauge(cov, with(l, {{"quantity", q}}), v);
    for (const auto& e : ss.energy) {
      const Labels le = with(l, {{"role", e.role}});
      if (e.total_j) counter(energy, le, *e.total_j);
      gauge(ehist, le, e.history_s);
      for (const auto& [w, c] : e.window_coverage) gauge(ecov, with(le, {{"window", w}}), c);
    }
    for (const auto& ds : snap.devices) {
      if (!ds.counter_tracked || ds.device->site != site.id) continue;
      const Labels ld = with(l, {{"device", ds.device->id}});
      counter(events, with(ld, {{"event", "wrap"}}), double(ds.counter_wraps));
      counter(events, with(ld, {{"event", "reset"}}), double(ds.counter_resets));
      counter(events, with(ld, {{"event", "rejected"}}), double(ds.counter_rejected));
    }
    render_scope(f, l, ss.occupancy, ss.capacity, site.facility.cabinet_equivalent_w);
    gauge(*f.cabinets, with(l, {{"state", "planned"}}), site.planned_cabinets);
    if (ss.occupancy_planned)
      gauge(*f.occupancy, with(l, {{"basis", "planned"}}), ss.occupancy_planned);
    gauge(equiv, l, site.facility.cabinet_equivalent_w);
    if (ss.plan_powered) gauge(plan, l, *ss.plan_powered);
    gauge(attain, l, ss.plan_attainment);
    if (ss.occupancy.u_reporting > 0) {
      gauge(units, with(l, {{"state", "occupied"}}), ss.occupancy.u_occupied);
      gauge(units, with(l, {{"state", "total"}}), ss.occupancy.u_total);
    }
    if (ss.cooling_capacity.units > 0) {
      gauge(ccap, with(l, {{"state", "installed"}}), ss.cooling_capacity.installed_w);
      gauge(ccap, with(l, {{"state", "running"}}), ss.cooling_capacity.running_w);
    }
    std::map<std::pair<std::string, std::string>, int> raised;
    for (const auto& a : snap.alerts) {
      if (a.site == site.id && a.raised) ++raised[{a.kind, a.severity}];
    }
    for (const auto& [k, n] : raised) {
      gauge(alerts, with(l, {{"kind", k.first}, {"severity", k.second}}), n);
    }
  }
}

}  // namespace

// Each family is created once and filled from every site: one HELP/TYPE per name.
void render_facility(Families& fam, const FacilitySnapshot& snap) {
  render_cabinets(fam, snap);
  render_racks_and_cooling(fam, snap);
  render_rooms(fam, snap);
  render_sites(fam, snap);
}

}  // namespace facility::metrics_detail
