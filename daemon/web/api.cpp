#include "daemon/web/api.h"

#include <cmath>

#include "daemon/http/http.h"
#include "daemon/readings/decimal.h"
#include "daemon/sinks/payloads.h"
#include "daemon/web/status.h"

namespace facility::web {
namespace {

using nlohmann::json;

constexpr const char* kApi = "facilityd/v1";

json num(const std::optional<double>& v) {
  return v && std::isfinite(*v) ? json(denoised(*v)) : json(nullptr);
}

json envelope(const FacilitySnapshot& snap) {
  return json{{"api", kApi}, {"ts", format_rfc3339_ms(snap.computed_at)}};
}

json capacity_json(const CapacitySnapshot& c) {
  return json{{"rated_w", num(c.rated_w)},
              {"reserve_w", num(c.reserve_w)},
              {"measured_w", num(c.measured_w)},
              {"headroom_w", num(c.headroom_w)},
              {"headroom_to_reserve_w", num(c.headroom_to_reserve_w)},
              {"stranded_w", num(c.stranded_w)}};
}

json occupancy_json(const Occupancy& o) {
  return json{
      {"total", o.total},
      {"powered", o.powered},
      {"powered_known", o.powered_known},
      {"sold", o.sold},
      {"internal", o.internal},
      {"free", o.free},
      {"measured", o.measured},
      {"u_occupied", num(o.u_reporting ? std::optional<double>(o.u_occupied) : std::nullopt)},
      {"u_total", num(o.u_reporting ? std::optional<double>(o.u_total) : std::nullopt)},
      {"u_reporting", o.u_reporting}};
}

json site_entry(const FacilitySnapshot& snap, const SiteSnapshot& s) {
  const SiteStatus st = site_status(snap, s);
  const std::string ts = format_rfc3339_ms(snap.computed_at);
  const Site& site = *s.site;
  json pue_energy = nullptr;
  if (st.energy_pue) {
    pue_energy = json{{"window", st.energy_pue->window},
                      {"pue", num(st.energy_pue->pue)},
                      {"category", st.energy_pue->category}};
  }
  return json{
      {"site", site.id},
      {"summary", summary_json(s, ts)},
      {"pue_energy", pue_energy},
      {"pue_target", num(site.facility.pue_target)},
      {"occupancy", occupancy_json(s.occupancy)},
      {"planned_cabinets", site.planned_cabinets},
      {"plan_powered", s.plan_powered ? json(*s.plan_powered) : json(nullptr)},
      {"capacity", capacity_json(s.capacity)},
      {"headroom_cabinets", num(st.headroom_cabinets)},
      {"cabinet_equivalent_w", num(site.facility.cabinet_equivalent_w)},
      {"devices", {{"up", st.devices_up}, {"total", st.devices_total}}},
      {"alerts", {{"critical", st.alerts_critical}, {"warning", st.alerts_warning}}},
      {"links",
       {{"page", "/sites/" + http::url_encode(site.id)},
        {"report", "/reports/" + http::url_encode(site.id)}}},
  };
}

json room_json(const RoomSnapshot& r) {
  json rows = json::array();
  for (const auto& row : r.room->rows)
    rows.push_back({{"id", row.id}, {"cabinets", row.cabinet_ids}});
  const CoolingCapacity& c = r.cooling;
  return json{
      {"room", r.room->id},
      {"name", r.room->name},
      {"occupancy", occupancy_json(r.occupancy)},
      {"capacity", capacity_json(r.capacity)},
      {"cooling",
       {{"units", c.units},
        {"units_running", c.units_running},
        {"installed_w", num(c.installed_w)},
        {"running_w", num(c.running_w)},
        {"n_plus_1_w", num(c.n_plus_1_w)},
        {"heat_load_w", num(c.heat_load_w)},
        {"headroom_w", num(c.headroom_w)},
        {"headroom_n_plus_1_w", num(c.headroom_n_plus_1_w)},
        {"state", to_string(r.cooling_state)}}},
      {"rows", std::move(rows)},
  };
}

json device_entry(const DeviceSnapshot& d, const std::string& ts) {
  return json{{"device", device_json(d, ts)},
              {"endpoint", d.device->endpoint.key()},
              {"unit", d.device->unit},
              {"interval_s", num(std::chrono::duration<double>(d.device->interval).count())}};
}

}  // namespace

json api_sites(const FacilitySnapshot& snap) {
  json j = envelope(snap);
  json sites = json::array();
  for (const auto& s : snap.sites) sites.push_back(site_entry(snap, s));
  j["sites"] = std::move(sites);
  return j;
}

std::optional<json> api_site(const FacilitySnapshot& snap, const std::string& id) {
  const SiteSnapshot* s = find_site(snap, id);
  if (!s) return std::nullopt;
  const std::string ts = format_rfc3339_ms(snap.computed_at);
  json j = envelope(snap);
  j.update(site_entry(snap, *s));
  json rooms = json::array(), cabinets = json::array(), cooling = json::array(),
       ups = json::array();
  for (const auto& r : s->rooms) rooms.push_back(room_json(r));
  for (const auto& c : s->cabinets) {
    json cj = cabinet_json(*s, c, ts);
    const bool own = owned_cabinet(snap, id, *c.cabinet);
    cabinets.push_back({{"cabinet", std::move(cj)},
                        {"level", to_string(own ? cabinet_level(c) : Level::kOtherShard)},
                        {"level_text", level_text(c)},
                        {"failover_risk", failover_risk(c)},
                        {"inlet_state", to_string(c.inlet_state)}});
  }
  const DeviceIndex devices(snap);
  for (const auto& c : s->cooling)
    cooling.push_back(cooling_json(id, c, devices.find(c.device->id), ts));
  for (const auto& u : s->ups) ups.push_back(ups_json(id, u, devices.find(u.device->id), ts));
  j["rooms"] = std::move(rooms);
  j["cabinets"] = std::move(cabinets);
  j["cooling"] = std::move(cooling);
  j["ups"] = std::move(ups);
  return j;
}

std::optional<json> api_cabinet(const FacilitySnapshot& snap, const std::string& site,
                                const std::string& cabinet,
                                const std::vector<LiveView::Sample>& history) {
  const SiteSnapshot* s = find_site(snap, site);
  const CabinetSnapshot* c = s ? find_cabinet(*s, cabinet) : nullptr;
  if (!c) return std::nullopt;
  const std::string ts = format_rfc3339_ms(snap.computed_at);
  const Cabinet& cab = *c->cabinet;
  json j = envelope(snap);
  j["site"] = site;
  j["cabinet"] = cabinet_json(*s, *c, ts);
  j["level"] = to_string(owned_cabinet(snap, site, cab) ? cabinet_level(*c) : Level::kOtherShard);
  j["level_text"] = level_text(*c);
  j["thresholds"] = {{"warning_ratio", num(cab.overload.warning)},
                     {"critical_ratio", num(cab.overload.critical)},
                     {"feed_capacity_w", num(cab.feed_capacity_w)},
                     {"derating", num(cab.derating)}};
  j["failover"] = {{"risk", failover_risk(*c)},
                   {"alert", c->failover_risk},
                   {"margin_ratio", num(c->failover_margin)},
                   {"worst_headroom_w", num(c->failover_worst_w)},
                   {"worst", c->failover_worst.empty() ? json(nullptr) : json(c->failover_worst)}};
  j["inlet_state"] = to_string(c->inlet_state);
  json sensors = json::array();
  for (const auto& r : s->rack_sensors) {
    if (r.cabinet != cabinet) continue;
    sensors.push_back({{"device", r.device->id},
                       {"inlet_c", num(r.inlet_c)},
                       {"outlet_c", num(r.outlet_c)},
                       {"humidity_ratio", num(r.humidity_ratio)},
                       {"dew_point_c", num(r.dew_point_c)}});
  }
  j["sensors"] = std::move(sensors);
  json devices = json::array();
  for (const auto& d : snap.devices) {
    if (d.device && d.device->site == site && d.device->cabinet == cabinet &&
        owned(snap, *d.device))
      devices.push_back(device_entry(d, ts));
  }
  j["devices"] = std::move(devices);
  json points = json::array();
  for (const auto& h : history)
    points.push_back({{"t", format_rfc3339_ms(h.t)}, {"power_w", num(h.power_w)}});
  j["history"] = {{"step_s", LiveView::kStep.count()}, {"points", std::move(points)}};
  return j;
}

json api_alerts(const FacilitySnapshot& snap) {
  const std::string ts = format_rfc3339_ms(snap.computed_at);
  json j = envelope(snap);
  json alerts = json::array();
  const AlertSubjectQuality quality(snap);
  for (const AlertState* a : active_alerts(snap))
    alerts.push_back(alert_json(*a, quality.of(*a), ts));
  j["alerts"] = std::move(alerts);
  return j;
}

json api_devices(const FacilitySnapshot& snap) {
  const std::string ts = format_rfc3339_ms(snap.computed_at);
  json j = envelope(snap);
  json counts = json::object();
  for (const auto& [kind, c] : device_counts(snap)) {
    counts[kind] = {{"up", c.up},
                    {"partial", c.partial},
                    {"no_data", c.no_data},
                    {"down", c.down},
                    {"total", c.total()}};
  }
  json devices = json::array();
  for (const auto& d : snap.devices)
    if (d.device && owned(snap, *d.device)) devices.push_back(device_entry(d, ts));
  j["counts"] = std::move(counts);
  j["devices"] = std::move(devices);
  return j;
}

}  // namespace facility::web
