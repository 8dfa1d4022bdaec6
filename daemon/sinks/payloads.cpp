#include "daemon/sinks/payloads.h"

#include <cmath>
#include <cstdio>

#include "daemon/config/device_kinds.h"
#include "daemon/readings/decimal.h"

namespace facility {

namespace {

using nlohmann::json;

// The payload vocabulary is part of the MQTT contract (docs/mqtt.md), so it is spelled out here
// rather than borrowed from the config/model to_string() helpers: renaming an enum value there
// must not silently change what dashboards receive. (A device's "kind" is the name its kind has
// in the configuration, daemon/config/device_kinds.h: the same word in both places.)

const char* cabinet_status_name(CabinetStatus s) {
  switch (s) {
    case CabinetStatus::kSold: return "sold";
    case CabinetStatus::kInternal: return "internal";
    case CabinetStatus::kFree: return "free";
  }
  return "free";
}

const char* overload_name(OverloadState s) {
  switch (s) {
    case OverloadState::kOk: return "ok";
    case OverloadState::kWarning: return "warning";
    case OverloadState::kCritical: return "critical";
  }
  return "ok";
}

// JSON has no NaN/Inf: nlohmann would print them as null anyway, but being explicit keeps the
// "unknown is null, never 0" rule visible at every call site. Every number of a payload passes
// here and is rounded to 15 significant digits, so 0.602 is published as 0.602, not as
// 0.6020000000000001 (the noise of the arithmetic; daemon/readings/decimal.h).
json num(double v) { return std::isfinite(v) ? json(denoised(v)) : json(nullptr); }
json num(const std::optional<double>& v) { return v ? num(*v) : json(nullptr); }
json opt_bool(const std::optional<bool>& v) { return v ? json(*v) : json(nullptr); }
json opt_string(const std::string& s) { return s.empty() ? json(nullptr) : json(s); }

json phase_json(const PhasePower& p, bool total_known) {
  return json{
      {"power_w", num(p.power_w)},
      {"current_a", num(p.current_a)},
      {"voltage_v", num(p.voltage_v)},
      // Headroom compares against the cabinet total, which is only known when every feed is.
      {"failover_headroom_w", total_known ? num(p.failover_headroom_w) : json(nullptr)},
  };
}



}  // namespace

using nlohmann::json;

const char* quality_name(Quality q) {
  switch (q) {
    case Quality::kGood: return "good";
    case Quality::kStale: return "stale";
    case Quality::kError: return "error";
  }
  return "error";
}

// A site summary is "good" when every source of its IT and facility power is fresh.
Quality summary_quality(const SiteSnapshot& s) {
  bool has_facility_meter = false;
  for (const auto& d : s.site->devices)
    if (kind_info(d.kind).contributes == Contribution::kSiteMeter &&
        d.role == MeterRole::kFacilityTotal)
      has_facility_meter = true;
  const bool it_ok = s.it_coverage >= 1.0;
  const bool fac_ok = !has_facility_meter || s.facility_coverage >= 1.0;
  return it_ok && fac_ok ? Quality::kGood : Quality::kStale;
}

std::string dump_payload(const json& body) {
  return body.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string format_rfc3339_ms(TimePoint t) {
  using namespace std::chrono;
  const auto ms = floor<milliseconds>(t);  // floor, not round: never jump into the next second
  const auto day = floor<days>(ms);
  const year_month_day ymd{day};
  const hh_mm_ss<milliseconds> hms{ms - day};
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                static_cast<int>(hms.seconds().count()),
                static_cast<int>(hms.subseconds().count()));
  return buf;
}

json cabinet_json(const SiteSnapshot& site, const CabinetSnapshot& cs, const std::string& ts) {
  const Cabinet& c = *cs.cabinet;
  // Totals and everything derived from them are only meaningful when every feed is fresh; the
  // model already leaves them empty otherwise, and this keeps it true even if the model changes.
  const bool good = cs.quality == Quality::kGood;
  const auto total = [good](const auto& v) { return good ? num(v) : json(nullptr); };

  json feeds = json::object();
  // Configured feeds always appear, measured or not.
  for (const auto& f : c.feeds)
    feeds[f] = json{{"power_w", nullptr},
                    {"device", nullptr},
                    {"estimated", false},
                    {"failover_headroom_w", nullptr},
                    {"phases", json::object()}};
  for (const auto& f : cs.feeds) {
    json phases = json::object();
    for (const auto& p : f.phases) phases[p.phase] = phase_json(p, good);
    // A feed's own power comes from its own PDU: shown whenever that PDU is fresh, even if the
    // other feed's PDU is not (the model leaves power_w empty for a stale feed).
    feeds[f.feed] = json{{"power_w", num(f.power_w)},
                         {"device", opt_string(f.device)},
                         {"estimated", f.estimated},
                         {"failover_headroom_w", total(f.failover_headroom_w)},
                         {"phases", std::move(phases)}};
  }

  return json{
      {"ts", ts},
      {"site", site.site->id},
      {"room", c.room},
      {"row", c.row},
      {"cabinet", c.id},
      {"status", cabinet_status_name(c.status)},
      // Undecided (a silent feed may hide the load) is null, never a fresh "false".
      {"powered", cs.powered_known ? json(cs.powered) : json(nullptr)},
      {"quality", quality_name(cs.quality)},
      {"estimated", cs.estimated},
      {"power_w", total(cs.power_w)},
      {"rated_w", num(c.rated_w)},
      {"utilization", total(cs.utilization)},
      {"failover_headroom_w", total(cs.failover_headroom_w)},
      {"overload", good ? json(overload_name(cs.overload)) : json(nullptr)},
      {"phase_imbalance", total(cs.phase_imbalance)},
      {"feeds", std::move(feeds)},
      {"inlet_c", num(cs.inlet_c)},
      {"humidity_ratio", num(cs.humidity_ratio)},
      {"units",
       {{"power_w", "W"},
        {"rated_w", "W"},
        {"failover_headroom_w", "W"},
        {"utilization", "ratio"},
        {"phase_imbalance", "ratio"},
        {"current_a", "A"},
        {"voltage_v", "V"},
        {"inlet_c", "celsius"},
        {"humidity_ratio", "ratio"}}},
  };
}

json summary_json(const SiteSnapshot& s, const std::string& ts) {
  const Site& site = *s.site;
  return json{
      {"ts", ts},
      {"site", site.id},
      {"name", site.name},
      {"quality", quality_name(summary_quality(s))},
      {"it_power_w", num(s.it_power_w)},
      {"it_power_source", opt_string(s.it_power_source)},
      {"facility_power_w", num(s.facility_power_w)},
      {"cooling_power_w", num(s.cooling_power_w)},
      {"pue", num(s.pue)},
      {"pue_category", s.pue_category},
      {"coverage", {{"it", num(s.it_coverage)}, {"facility", num(s.facility_coverage)}}},
      {"rated_w", num(s.rated_w)},
      {"cabinets",
       {{"total", s.cabinets_total},
        {"powered", s.cabinets_powered},
        {"sold", s.cabinets_sold},
        {"internal", s.cabinets_internal},
        {"free", s.cabinets_free},
        {"planned", site.planned_cabinets},
        {"measured", s.cabinets_measured}}},
      {"occupancy", {{"powered", num(s.occupancy_powered)}, {"sold", num(s.occupancy_sold)}}},
      {"units",
       {{"it_power_w", "W"},
        {"facility_power_w", "W"},
        {"cooling_power_w", "W"},
        {"rated_w", "W"},
        {"pue", "ratio"},
        {"coverage", "ratio"},
        {"occupancy", "ratio"}}},
  };
}

json cooling_json(const std::string& site_id, const CoolingSnapshot& cs, const DeviceSnapshot* ds,
                  const std::string& ts) {
  const Device& d = *cs.device;
  // Without a device entry we cannot vouch for freshness: report stale and show no numbers.
  const Quality q = ds ? ds->quality : Quality::kStale;
  const bool good = q == Quality::kGood;
  std::optional<double> delta;
  if (cs.supply_c && cs.return_c) delta = *cs.return_c - *cs.supply_c;
  const auto v = [good](const std::optional<double>& x) { return good ? num(x) : json(nullptr); };
  return json{
      {"ts", ts},
      {"site", site_id},
      {"device", d.id},
      {"room", opt_string(d.room)},
      {"quality", quality_name(q)},
      {"supply_c", v(cs.supply_c)},
      {"return_c", v(cs.return_c)},
      {"delta_t_c", v(delta)},
      {"power_w", v(cs.power_w)},
      {"fan_ratio", v(cs.fan_ratio)},
      {"running", good ? opt_bool(cs.running) : json(nullptr)},
      {"units",
       {{"supply_c", "celsius"},
        {"return_c", "celsius"},
        {"delta_t_c", "celsius"},
        {"power_w", "W"},
        {"fan_ratio", "ratio"}}},
  };
}

json ups_json(const std::string& site_id, const UpsSnapshot& u, const DeviceSnapshot* ds,
              const std::string& ts) {
  const Device& d = *u.device;
  const Quality q = ds ? ds->quality : Quality::kStale;
  const bool good = q == Quality::kGood && u.fresh;
  const auto v = [good](const std::optional<double>& x) { return good ? num(x) : json(nullptr); };
  const auto b = [good](const std::optional<bool>& x) {
    return good ? opt_bool(x) : json(nullptr);
  };
  const auto name = [good](const std::string& x) { return good ? opt_string(x) : json(nullptr); };
  json phases = json::object();
  for (const auto& p : u.phases) {
    phases[p.phase] = json{{"power_w", v(p.power_w)}, {"load_ratio", v(p.load_ratio)}};
  }
  return json{
      {"ts", ts},
      {"site", site_id},
      {"device", d.id},
      {"room", opt_string(d.room)},
      {"quality", quality_name(q)},
      {"it_source", d.role == MeterRole::kItUpsOutput},
      {"power_w", v(u.power_w)},
      {"rated_w", d.rated_w ? num(*d.rated_w) : json(nullptr)},
      {"load_ratio", v(u.load_ratio)},
      {"phases", std::move(phases)},
      {"runtime_s", v(u.runtime_s)},
      {"charge_ratio", v(u.charge_ratio)},
      {"output_source", name(u.output_source)},
      {"battery_state", name(u.battery_state)},
      {"on_battery", b(u.on_battery)},
      {"on_bypass", b(u.on_bypass)},
      // Alert levels are held across stale data, like a cabinet's overload.
      {"overload", overload_name(u.overload)},
      {"runtime_state", overload_name(u.runtime_state)},
      {"units",
       {{"power_w", "W"},
        {"rated_w", "W"},
        {"load_ratio", "ratio"},
        {"runtime_s", "s"},
        {"charge_ratio", "ratio"}}},
  };
}

json device_json(const DeviceSnapshot& ds, const std::string& ts) {
  const Device& d = *ds.device;
  json j{
      {"ts", ts},
      {"site", d.site},
      {"device", d.id},
      {"kind", kind_info(d.kind).name},
      {"profile", d.profile_name},
      {"up", ds.up},
      {"state", to_string(ds.state)},
      {"quality", quality_name(ds.quality)},
      {"last_success",
       ds.last_success == TimePoint{} ? json(nullptr) : json(format_rfc3339_ms(ds.last_success))},
      // An old error next to a working device only confuses: show it while the device is down.
      {"error", ds.up ? json(nullptr) : opt_string(ds.last_error)},
  };
  if (!d.cabinet.empty()) j["cabinet"] = d.cabinet;
  if (!d.feed.empty()) j["feed"] = d.feed;
  if (!d.room.empty()) j["room"] = d.room;

  // Points as read, in the profile's unit; only from a fresh reading, never stale values.
  json points = json::object();
  if (ds.reading && ds.quality == Quality::kGood) {
    for (const auto& [name, pv] : ds.reading->points) {
      json p{{"value", num(pv.value)}, {"unit", pv.unit}};
      // Enumerations carry their state name, string points their content (the value is then
      // the enum's code, or null for a string).
      if (!pv.text.empty()) p["text"] = pv.text;
      points[name] = std::move(p);
    }
  }
  j["points"] = std::move(points);
  return j;
}

json alert_json(const AlertState& a, const std::string& quality, const std::string& ts) {
  return json{
      {"ts", ts},
      {"site", a.site},
      {"kind", a.kind},
      {"subject", a.subject},
      {"state", a.raised ? "raised" : "cleared"},
      {"raised", a.raised},
      {"severity", a.severity.empty() ? json(nullptr) : json(a.severity)},
      {"value", num(a.value)},
      {"threshold", num(a.threshold)},
      {"unit", opt_string(a.unit)},
      {"since", a.since == TimePoint{} ? json(nullptr) : json(format_rfc3339_ms(a.since))},
      {"message", opt_string(a.message)},
      {"quality", quality},
  };
}

namespace {

std::string subject_key(const std::string& site, const std::string& subject) {
  return site + '\n' + subject;
}

}  // namespace

AlertSubjectQuality::AlertSubjectQuality(const FacilitySnapshot& snap, const std::string& site) {
  for (const auto& ds : snap.devices) {
    if (ds.device && (site.empty() || ds.device->site == site))
      by_subject_[subject_key(ds.device->site, ds.device->id)] = ds.quality;
  }
  for (const auto& ss : snap.sites) {
    if (!ss.site || (!site.empty() && ss.site->id != site)) continue;
    for (const auto& cs : ss.cabinets)
      if (cs.cabinet) by_subject_[subject_key(ss.site->id, cs.cabinet->id)] = cs.quality;
    by_subject_[subject_key(ss.site->id, ss.site->id)] = summary_quality(ss);
  }
}

const char* AlertSubjectQuality::of(const AlertState& a) const {
  const auto q = by_subject_.find(subject_key(a.site, a.subject));
  if (q != by_subject_.end()) return quality_name(q->second);
  return a.value ? "good" : "stale";
}

}  // namespace facility
