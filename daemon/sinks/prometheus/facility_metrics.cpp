// Exposition of the facility model: cabinets, rack sensors, cooling units, rooms, sites, device
// health and the model's alert states. Every family is documented in docs/metrics.md with its
// formula, and docs/prometheus.md ("Cardinality") says why each per-cabinet family is there. A
// value the model does not know (stale source, withheld for coverage, not enough history) has
// no series at all.
//
// Sharded daemons (daemon.shard): cabinets, their devices and sensors are written by the shard
// that owns the cabinet; site and room series only by the site's home shard, and only those that
// are whole there (daemon/config/shard.h says why they are).
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>

#include "daemon/sinks/prometheus/facility_metrics.h"
#include "daemon/config/shard.h"

namespace facility::metrics_detail {
namespace {

double unix_seconds(TimePoint t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

std::string power_class(double rated_w) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3gkW", rated_w / 1000.0);
  return buf;
}

double flag(bool b) { return b ? 1.0 : 0.0; }
double level(OverloadState s) { return static_cast<double>(static_cast<int>(s)); }

// Long by design: the declarations of the cabinet families with their help texts, then one
// loop that writes them; splitting would move a family's help away from where it is written.
// NOLINTNEXTLINE(readability-function-size)
void render_cabinets(Families& fam, const FacilitySnapshot& snap) {
  auto g = [&fam](const char* name, const char* help) -> Family& {
    return fam.family(name, help, Type::kGauge);
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
  auto& feed_est = g("facility_cabinet_feed_power_estimated",
                     "1 while the feed's power is estimated from current x voltage x power factor "
                     "(present only then; a measured feed has no series).");
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
                      "phase currents (phase powers if no currents), ratio.");
  auto& headroom = g("facility_cabinet_failover_headroom_watts",
                     "If the cabinet's other feed(s) fail, one feed carries the whole cabinet: "
                     "derated feed capacity - cabinet power, in watts. Negative = failover risk.");
  auto& ph_headroom = g("facility_cabinet_phase_failover_headroom_watts",
                        "Per phase after a failover (every feed three-phase): derated feed "
                        "capacity / 3 - the sum of that phase over all feeds, in watts.");
  auto& threshold =
      g("facility_cabinet_utilization_threshold_ratio",
        "The utilisation at which the cabinet's overload state becomes warning or critical "
        "(label severity): facility.overload, its cabinet class's or its own, ratio.");
  auto& overload = g("facility_cabinet_overload_state",
                     "Cabinet overload state: 0 ok, 1 warning, 2 critical (utilisation against the "
                     "thresholds, with hysteresis and hold time). Held while power is unknown.");
  auto& powered = g("facility_cabinet_powered",
                    "1 if the cabinet is powered (an outlet on, or power above the powered "
                    "threshold), 0 if not; absent when unknown.");
  auto& units =
      g("facility_cabinet_rack_units",
        "Rack units (U) of the cabinet: occupied (reported by its rack sensor) and total.");

  const ShardSettings& shard = snap.config->daemon.shard;
  for (const auto& ss : snap.sites) {
    const Site& site = *ss.site;
    for (const auto& cs : ss.cabinets) {
      const Cabinet& c = *cs.cabinet;
      if (!owns_cabinet(shard, site.id, c.id)) continue;
      const Labels l = cabinet_labels(c);
      power.gauge(l, cs.power_w);
      rated.gauge(l, c.rated_w);
      util.gauge(l, cs.utilization);
      // Identical for every feed (one capacity per cabinet): one series per cabinet.
      headroom.gauge(l, cs.failover_headroom_w);
      overload.gauge(l, level(cs.overload));
      threshold.gauge(l.with({{"severity", "warning"}}), c.overload.warning);
      threshold.gauge(l.with({{"severity", "critical"}}), c.overload.critical);
      if (cs.powered_known) powered.gauge(l, flag(cs.powered));
      if (cs.u_occupied) {
        units.gauge(l.with({{"state", "occupied"}}), *cs.u_occupied);
        units.gauge(l.with({{"state", "total"}}), cs.u_total);
      }
      const std::string pclass = power_class(c.rated_w);
      info.gauge(l.with({{"power_class", pclass},
                         {"ownership", to_string(site.ownership)},
                         {"status", to_string(c.status)},
                         {"cabinet_class", c.cabinet_class}}),
                 1.0);
      bool phase_headroom_done = false;
      for (const auto& f : cs.feeds) {
        const Labels lf = l.with({{"feed", f.feed}});
        feed.gauge(lf, f.power_w);
        if (f.power_w && f.estimated) feed_est.gauge(lf, 1.0);
        feed_i.gauge(lf, f.current_a);
        feed_v.gauge(lf, f.voltage_v);
        imbalance.gauge(lf, f.phase_imbalance);
        for (const auto& ph : f.phases) {
          const Labels lp = lf.with({{"phase", ph.phase}});
          ph_p.gauge(lp, ph.power_w);
          ph_i.gauge(lp, ph.current_a);
          ph_v.gauge(lp, ph.voltage_v);
          // The post-failover phase load sums every feed: the same on each feed.
          if (!phase_headroom_done) ph_headroom.gauge(l.with({{"phase", ph.phase}}),
                                                      ph.failover_headroom_w);
        }
        if (!f.phases.empty()) phase_headroom_done = true;
      }
    }
  }
}

void render_racks_and_cooling(Families& fam, const FacilitySnapshot& snap) {
  auto g = [&fam](const char* name, const char* help) -> Family& {
    return fam.family(name, help, Type::kGauge);
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
  const ShardSettings& shard = snap.config->daemon.shard;
  for (const auto& ss : snap.sites) {
    // By id, once per site: Site::find_cabinet per sensor was quadratic (4 M string compares
    // per scrape at 3,000 cabinets).
    std::unordered_map<std::string_view, const Cabinet*> cabinets;
    cabinets.reserve(ss.site->cabinets.size());
    for (const auto& c : ss.site->cabinets) cabinets.emplace(c.id, &c);
    for (const auto& rs : ss.rack_sensors) {
      const auto it = cabinets.find(rs.cabinet);
      const Cabinet* c = it == cabinets.end() ? nullptr : it->second;
      if (!c || !owns_cabinet(shard, ss.site->id, c->id)) continue;
      const Labels l = cabinet_labels(*c).with({{"sensor", rs.device->id}});
      in.gauge(l, rs.inlet_c);
      out.gauge(l, rs.outlet_c);
      hum.gauge(l, rs.humidity_ratio);
      dew.gauge(l, rs.dew_point_c);
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
    if (!owns_site_home(shard, ss.site->id)) continue;
    for (const auto& cs : ss.cooling) {
      const Labels l{{"site", ss.site->id}, {"room", cs.device->room}, {"unit", cs.device->id}};
      sup.gauge(l, cs.supply_c);
      ret.gauge(l, cs.return_c);
      dt.gauge(l, cs.delta_t_c);
      pow.gauge(l, cs.power_w);
      fan.gauge(l, cs.fan_ratio);
      if (cs.running) run.gauge(l, flag(*cs.running));
      cap.gauge(l, cs.device->capacity_w);
    }
  }
}

// UPSs: output, load, battery, source, alert levels (docs/metrics.md, "UPS").
void render_ups(Families& fam, const FacilitySnapshot& snap) {
  auto g = [&fam](const char* name, const char* help) -> Family& {
    return fam.family(name, help, Type::kGauge);
  };
  auto& power = g("facility_ups_output_power_watts", "UPS output active power, in watts.");
  auto& ph_power =
      g("facility_ups_phase_output_power_watts", "UPS output active power of one phase, in watts.");
  auto& load = g("facility_ups_load_ratio",
                 "UPS output load against its rating (the highest phase's), ratio.");
  auto& ph_load =
      g("facility_ups_phase_load_ratio", "UPS output load of one phase against its rating, ratio.");
  auto& rated =
      g("facility_ups_rated_power_watts", "UPS rated output active power (rated_kw), in watts.");
  auto& runtime = g("facility_ups_battery_runtime_seconds",
                    "Estimated battery runtime at the present load, in seconds.");
  auto& charge = g("facility_ups_battery_charge_ratio", "Battery state of charge, ratio.");
  auto& on_batt = g("facility_ups_on_battery", "1 while the UPS output runs on battery, else 0.");
  auto& on_byp = g("facility_ups_on_bypass", "1 while the UPS output is on bypass, else 0.");
  auto& source = g("facility_ups_output_source",
                   "What supplies the UPS output, as its state name (label source); value 1.");
  auto& batt = g("facility_ups_battery_state",
                 "The battery state name the UPS reports (label state); value 1.");
  auto& overload = g("facility_ups_overload_state",
                     "UPS overload state: 0 ok, 1 warning, 2 critical (load ratio against the "
                     "thresholds, or the UPS's own overload flag; hysteresis and hold time).");
  auto& rt_state = g("facility_ups_runtime_state",
                     "UPS battery runtime state: 0 ok, 1 warning, 2 critical (below the "
                     "thresholds; hysteresis and hold time).");
  const ShardSettings& shard = snap.config->daemon.shard;
  for (const auto& ss : snap.sites) {
    if (!owns_site_home(shard, ss.site->id)) continue;
    for (const auto& u : ss.ups) {
      const Labels l{{"site", ss.site->id}, {"ups", u.device->id}};
      power.gauge(l, u.power_w);
      load.gauge(l, u.load_ratio);
      rated.gauge(l, u.device->rated_w);
      runtime.gauge(l, u.runtime_s);
      charge.gauge(l, u.charge_ratio);
      if (u.on_battery) on_batt.gauge(l, flag(*u.on_battery));
      if (u.on_bypass) on_byp.gauge(l, flag(*u.on_bypass));
      if (!u.output_source.empty()) source.gauge(l.with({{"source", u.output_source}}), 1.0);
      if (!u.battery_state.empty()) batt.gauge(l.with({{"state", u.battery_state}}), 1.0);
      overload.gauge(l, level(u.overload));
      rt_state.gauge(l, level(u.runtime_state));
      for (const auto& p : u.phases) {
        ph_power.gauge(l.with({{"phase", p.phase}}), p.power_w);
        ph_load.gauge(l.with({{"phase", p.phase}}), p.load_ratio);
      }
    }
  }
}

// Cabinet counts, occupancy and capacity, for a site (prefix "facility_site") or a room.
struct Scope {
  Family *cabinets, *occupancy, *capacity, *equivalents;
};

Scope scope_families(Families& fam, const std::string& prefix, const std::string& what) {
  const bool site = what == "site";
  Scope s;
  s.cabinets = &fam.family(prefix + "_cabinets",
                           "Cabinets of the " + what +
                               " by state: total (delivered, in the inventory), powered, measured "
                               "(power known), sold, internal, free" +
                               (site ? ", planned (planned_cabinets)." : "."),
                           Type::kGauge);
  s.occupancy = &fam.family(prefix + "_occupancy_ratio",
                            "Occupancy of the " + what +
                                " (0..1) by basis: powered / total, sold / total, rack_units "
                                "occupied / total" +
                                (site ? ", planned = powered / planned_cabinets." : "."),
                            Type::kGauge);
  s.capacity = &fam.family(prefix + "_capacity_watts",
                           "Power capacity of the " + what +
                               " in watts by quantity: rated, measured, headroom (rated - "
                               "measured), reserve, headroom_to_reserve (rated - reserve - "
                               "measured), stranded (rated - peak of powered or sold cabinets).",
                           Type::kGauge);
  s.equivalents = &fam.family(prefix + "_capacity_equivalent_cabinets",
                              "The " + what +
                                  "'s capacity quantities in equivalent cabinets of "
                                  "facility.cabinet_equivalent_kw (default 4.4 kW), cabinets.",
                              Type::kGauge);
  return s;
}

// `sharded`: leave out the counts that would only cover this shard's cabinets.
void render_scope(const Scope& f, const Labels& l, const Occupancy& o, const CapacitySnapshot& c,
                  double equivalent_w, bool sharded) {
  const std::pair<const char*, int> states[] = {{"total", o.total},       {"powered", o.powered},
                                                {"measured", o.measured}, {"sold", o.sold},
                                                {"internal", o.internal}, {"free", o.free}};
  for (const auto& [state, n] : states) {
    if (sharded && (std::string_view(state) == "powered" || std::string_view(state) == "measured"))
      continue;
    f.cabinets->gauge(l.with({{"state", state}}), n);
  }
  f.occupancy->gauge(l.with({{"basis", "powered"}}), o.ratio_powered());
  f.occupancy->gauge(l.with({{"basis", "sold"}}), o.ratio_sold());
  f.occupancy->gauge(l.with({{"basis", "rack_units"}}), o.ratio_rack_units());
  const std::pair<const char*, std::optional<double>> qs[] = {
      {"rated", c.rated_w},
      {"measured", c.measured_w},
      {"headroom", c.headroom_w},
      {"reserve", c.reserve_w},
      {"headroom_to_reserve", c.headroom_to_reserve_w},
      {"stranded", c.stranded_w}};
  for (const auto& [q, v] : qs) {
    f.capacity->gauge(l.with({{"quantity", q}}), v);
    if (v && equivalent_w > 0) f.equivalents->gauge(l.with({{"quantity", q}}), *v / equivalent_w);
  }
}

void render_rooms(Families& fam, const FacilitySnapshot& snap) {
  const Scope f = scope_families(fam, "facility_room", "room");
  auto& cool_cap = fam.family("facility_room_cooling_capacity_watts",
                              "Cooling capacity of the room's units in watts: installed (all "
                              "units), running, n_plus_1 (running minus the largest running unit).",
                              Type::kGauge);
  auto& heat = fam.family("facility_room_cooling_heat_load_watts",
                          "IT heat load of the room: the power of its cabinets, in watts.",
                          Type::kGauge);
  auto& head = fam.family("facility_room_cooling_headroom_watts",
                          "Cooling headroom of the room in watts: redundancy n = running capacity "
                          "- heat load; n_plus_1 = N+1 capacity - heat load.",
                          Type::kGauge);
  auto& units = fam.family("facility_room_cooling_units",
                           "Cooling units of the room: total, running.", Type::kGauge);
  auto& state = fam.family("facility_room_cooling_state",
                           "Cooling redundancy state of the room: 0 ok, 1 N+1 lost (warning), "
                           "2 running capacity below the heat load (critical).",
                           Type::kGauge);
  const ShardSettings& shard = snap.config->daemon.shard;
  for (const auto& ss : snap.sites) {
    const Site& site = *ss.site;
    if (!owns_site_home(shard, site.id)) continue;
    for (const auto& rs : ss.rooms) {
      const Labels l{{"site", site.id}, {"room", rs.room->id}};
      render_scope(f, l, rs.occupancy, rs.capacity, site.facility.cabinet_equivalent_w,
                   shard.sharded());
      const CoolingCapacity& c = rs.cooling;
      if (c.units == 0) continue;
      cool_cap.gauge(l.with({{"state", "installed"}}), c.installed_w);
      cool_cap.gauge(l.with({{"state", "running"}}), c.running_w);
      cool_cap.gauge(l.with({{"state", "n_plus_1"}}), c.n_plus_1_w);
      heat.gauge(l, c.heat_load_w);
      head.gauge(l.with({{"redundancy", "n"}}), c.headroom_w);
      head.gauge(l.with({{"redundancy", "n_plus_1"}}), c.headroom_n_plus_1_w);
      units.gauge(l.with({{"state", "total"}}), c.units);
      if (c.units_known == c.units) units.gauge(l.with({{"state", "running"}}), c.units_running);
      // The state needs the heat load, which a shard never knows whole: it would sit at 0.
      if (!shard.sharded()) state.gauge(l, level(rs.cooling_state));
    }
  }
}

// "meter" when the site has IT meters (its IT power and PUE come from them), else "pdu_sum".
const char* it_power_source(const Site& site) {
  for (const auto& d : site.devices) {
    const Contribution c = kind_info(d.kind).contributes;
    if ((c == Contribution::kSiteMeter || c == Contribution::kUpsOutput) &&
        it_category(d.role, site.pue_category) > 0)
      return "meter";
  }
  return "pdu_sum";
}

// Long by design, as render_cabinets: the site families with their help texts, then one loop.
// NOLINTNEXTLINE(readability-function-size)
void render_sites(Families& fam, const FacilitySnapshot& snap) {
  auto g = [&fam](const char* name, const char* help) -> Family& {
    return fam.family(name, help, Type::kGauge);
  };
  auto& info = g("facility_site_info",
                 "Site attributes as labels (name, ownership, it_power_source: meter or pdu_sum); "
                 "value is always 1.");
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
                 "Partial PUE of a subsystem: (IT + subsystem) / IT, by category and window, "
                 "ratio.");
  auto& target = g("facility_site_pue_target_ratio",
                   "The site's PUE target (facility.pue_target), ratio; the SitePUEDegraded alert "
                   "compares the 24-hour energy PUE with it.");
  auto& inlet = g("facility_site_inlet_threshold_celsius",
                  "Rack inlet temperature bounds of the site's inlet state (facility.inlet): "
                  "severity warning = the recommended range, critical = the allowable range; "
                  "bound low or high, degrees Celsius.");
  auto& ewin = g("facility_site_energy_window_joules",
                 "Energy of one role over a rolling window ending at the latest 10-s grid point, "
                 "in joules: only the device-time that is measured (see "
                 "facility_site_energy_coverage_ratio); absent until the history covers it.");
  auto& rated = g("facility_site_rated_power_watts",
                  "Sum of rated power of all cabinets of the site, in watts.");
  auto& cov = g("facility_site_coverage_ratio",
                "Fraction (0..1) of the sources of a site aggregate that reported fresh data.");
  auto& energy = fam.family("facility_site_energy_joules_total",
                            "Energy of the site's meters of one role (pdu_sum: its PDUs) since "
                            "facilityd started, in joules, across counter wraps and resets. "
                            "Absent while a meter of the role is missing.",
                            Type::kCounter);
  auto& ecov = g("facility_site_energy_coverage_ratio",
                 "Fraction (0..1) of a window's device-time whose energy is known, per role; "
                 "absent until the history reaches back the whole window.");
  auto& ehist = g("facility_site_energy_history_seconds",
                  "How far back the energy history of a role reaches (restored from the "
                  "SQLite history at start-up), in seconds.");
  auto& equiv = g("facility_site_cabinet_equivalent_watts",
                  "Size of one equivalent cabinet used by the *_capacity_equivalent_cabinets "
                  "metrics, in watts.");
  auto& plan = g("facility_site_plan_powered_cabinets",
                 "Powered cabinets planned by the build-out plan at this time, cabinets.");
  auto& attain = g("facility_site_plan_attainment_ratio",
                   "Powered cabinets / planned powered cabinets (build-out plan) now, ratio.");
  auto& units = g("facility_site_rack_units",
                  "Rack units (U) over the cabinets whose sensors report them: occupied, total.");
  auto& ccap = g("facility_site_cooling_capacity_watts",
                 "Cooling capacity of the site's units in watts: installed, running.");
  const Scope f = scope_families(fam, "facility_site", "site");

  const ShardSettings& shard = snap.config->daemon.shard;
  const bool sharded = shard.sharded();
  for (const auto& ss : snap.sites) {
    const Site& site = *ss.site;
    if (!owns_site_home(shard, site.id)) continue;
    const Labels l{{"site", site.id}};
    info.gauge(l.with({{"name", site.name},
                       {"ownership", to_string(site.ownership)},
                       {"it_power_source", it_power_source(site)}}),
               1.0);
    it.gauge(l.with({{"source", ss.it_power_source}}), ss.it_power_w);
    fac.gauge(l, ss.facility_power_w);
    cool.gauge(l, ss.cooling_power_w);
    for (const auto& p : ss.pue_values) {
      // A shard never covers the PDU sum: with facility.pue_min_coverage below 1 the model
      // would extrapolate this shard's part to the whole site. Only whole terms here.
      if (sharded && (p.it_coverage.value_or(1) < 1 || p.facility_coverage.value_or(1) < 1))
        continue;
      const std::string cat = std::to_string(p.category);
      const Labels lp = l.with({{"category", cat}, {"window", p.window}});
      pue.gauge(lp, p.pue);
      ppue.gauge(lp.with({{"subsystem", "cooling"}}), p.partial_cooling);
    }
    target.gauge(l, site.facility.pue_target);
    const InletSettings& in = site.facility.inlet;
    inlet.gauge(l.with({{"severity", "warning"}, {"bound", "low"}}), in.recommended_low_c);
    inlet.gauge(l.with({{"severity", "warning"}, {"bound", "high"}}), in.recommended_high_c);
    inlet.gauge(l.with({{"severity", "critical"}, {"bound", "low"}}), in.allowable_low_c);
    inlet.gauge(l.with({{"severity", "critical"}, {"bound", "high"}}), in.allowable_high_c);
    rated.gauge(l, ss.rated_w);
    if (!sharded) {
      for (const auto& [q, v] : ss.coverage) cov.gauge(l.with({{"quantity", q}}), v);
    }
    for (const auto& e : ss.energy) {
      const Labels le = l.with({{"role", e.role}});
      if (e.total_j) energy.counter(le, *e.total_j);
      if (sharded && e.role == "pdu_sum") continue;  // the PDUs are spread over the shards
      ehist.gauge(le, e.history_s);
      for (const auto& [w, c] : e.window_coverage) ecov.gauge(le.with({{"window", w}}), c);
      for (const auto& [w, j] : e.window_energy_j) ewin.gauge(le.with({{"window", w}}), j);
    }
    render_scope(f, l, ss.occupancy, ss.capacity, site.facility.cabinet_equivalent_w, sharded);
    f.cabinets->gauge(l.with({{"state", "planned"}}), site.planned_cabinets);
    if (ss.occupancy_planned)
      f.occupancy->gauge(l.with({{"basis", "planned"}}), ss.occupancy_planned);
    equiv.gauge(l, site.facility.cabinet_equivalent_w);
    if (ss.plan_powered) plan.gauge(l, *ss.plan_powered);
    attain.gauge(l, ss.plan_attainment);
    if (!sharded && ss.occupancy.u_reporting > 0) {
      units.gauge(l.with({{"state", "occupied"}}), ss.occupancy.u_occupied);
      units.gauge(l.with({{"state", "total"}}), ss.occupancy.u_total);
    }
    if (ss.cooling_capacity.units > 0) {
      ccap.gauge(l.with({{"state", "installed"}}), ss.cooling_capacity.installed_w);
      ccap.gauge(l.with({{"state", "running"}}), ss.cooling_capacity.running_w);
    }
  }
}

void render_devices_and_alerts(Families& fam, const FacilitySnapshot& snap) {
  auto& up = fam.family("facility_device_up",
                        "1 if the device is up: its last poll succeeded, its data is fresh and "
                        "it gave at least one value (state up or partial), else 0.",
                        Type::kGauge);
  auto& state = fam.family("facility_device_state",
                           "The device's state, as a label (always 1): up (every point read), "
                           "partial (some points refused by the device), no_data (it answers "
                           "but gives no value), down (poll failed or data stale).",
                           Type::kGauge);
  auto& last = fam.family("facility_device_last_success_timestamp_seconds",
                          "Unix time of the device's last successful poll, in seconds.",
                          Type::kGauge);
  auto& events = fam.family("facility_site_energy_reading_events_total",
                            "Energy counter events seen by the model, by device: wrap (passed its "
                            "integer range), reset (restarted, e.g. a reboot), rejected "
                            "(implausible jump, not counted). Present once non-zero.",
                            Type::kCounter);
  const ShardSettings& shard = snap.config->daemon.shard;
  for (const auto& ds : snap.devices) {
    const Device& d = *ds.device;
    if (!owns_device(shard, d)) continue;
    const Labels l{{"site", d.site}, {"device", d.id}, {"kind", to_string(d.kind)}};
    up.gauge(l, flag(ds.up));
    state.gauge(l.with({{"state", to_string(ds.state)}}), 1);
    if (ds.last_success != TimePoint{}) last.gauge(l, unix_seconds(ds.last_success));
    if (!ds.counter_tracked) continue;
    // Only events that happened: three zero counters per PDU would triple the energy
    // families' cost on a PDU-summed site (docs/prometheus.md, "Cardinality").
    const Labels le{{"site", d.site}, {"device", d.id}};
    const std::pair<const char*, std::uint64_t> ev[] = {{"wrap", ds.counter_wraps},
                                                         {"reset", ds.counter_resets},
                                                         {"rejected", ds.counter_rejected}};
    for (const auto& [name, n] : ev) {
      if (n > 0) events.counter(le.with({{"event", name}}), static_cast<double>(n));
    }
  }

  auto& alert = fam.family("facility_alert_raised_timestamp_seconds",
                           "The facility model's raised alerts (the same as the MQTT alert "
                           "topics), by kind, subject and severity: unix time the alert entered "
                           "its current state, in seconds. Present only while raised.",
                           Type::kGauge);
  for (const auto& a : snap.alerts) {
    if (!a.raised) continue;
    const bool room_alert = a.kind == "cooling_redundancy";
    // A UPS's alerts belong to its site's home shard, like the UPS.
    const bool ups_alert = a.kind.rfind("ups_", 0) == 0;
    if (shard.sharded() && ups_alert) {
      if (!owns_site_home(shard, a.site)) continue;
    } else if (shard.sharded() && (room_alert || !owns_cabinet(shard, a.site, a.subject))) {
      continue;
    }
    alert.gauge(Labels{{"site", a.site}, {"kind", a.kind}, {"subject", a.subject},
                       {"severity", a.severity}},
                unix_seconds(a.since));
  }

  fam.family("facility_snapshot_timestamp_seconds",
             "Unix time the facility model computed the snapshot this scrape shows, in seconds "
             "(the model runs every 0.25-5 s; a value a minute old means the model is stuck).",
             Type::kGauge)
      .gauge(Labels{}, unix_seconds(snap.computed_at));
}

}  // namespace

// Each family is created once and filled from every site: one HELP/TYPE per name.
void render_facility(Families& fam, const FacilitySnapshot& snap) {
  render_cabinets(fam, snap);
  render_racks_and_cooling(fam, snap);
  render_ups(fam, snap);
  render_rooms(fam, snap);
  render_sites(fam, snap);
  render_devices_and_alerts(fam, snap);
}

}  // namespace facility::metrics_detail
