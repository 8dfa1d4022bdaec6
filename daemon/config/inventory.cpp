// The inventory: `sites`, each with its rooms, rows and cabinets, then its devices
// (devices.cpp), and the checks that need a whole site.
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <unordered_set>

#include "daemon/config/reader.h"

namespace facility::config_detail {
namespace {

// `breaker`: the cabinet's rating from its circuit breaker (V x A, or sqrt(3) x V x A).
void parse_breaker(Diagnostics& d, MapReader& cr, const std::string& cw, Cabinet& cab) {
  MapReader br(d, cr.get("breaker"), cw + " breaker", {"amps", "volts", "phases"});
  Breaker b;
  auto a = br.num("amps", true);
  auto v = br.num("volts", true);
  if (auto p = br.integer("phases", 1, 3)) {
    if (*p == 2) d.error(br.get("phases"), cw + ": breaker phases must be 1 or 3");
    b.phases = int(*p);
  }
  if (a && v) {
    if (*a <= 0 || *v <= 0) {
      d.error(cr.get("breaker"), cw + ": breaker amps and volts must be > 0");
    }
    b.amps = *a;
    b.volts = *v;
    cab.breaker = b;
    cab.rated_w = b.phases == 3 ? std::sqrt(3.0) * b.volts * b.amps : b.volts * b.amps;
  }
}

void parse_cabinet(LoadContext& ctx, Site& site, const std::string& sw, const Room& room, Row& row,
                   const YAML::Node& cn) {
  Diagnostics& d = ctx.d;
  MapReader cr(d, cn, sw + " cabinet",
               {"id", "rated_kw", "breaker", "feeds", "status", "class", "rack_units", "simulate"});
  if (!cr.ok()) return;
  Cabinet cab;
  if (!check_id(d, cr, sw + " cabinet", cab.id)) return;
  const std::string cw = sw + " cabinet \"" + cab.id + "\"";
  cr.set_what(cw);
  cab.site = site.id;
  cab.room = room.id;
  cab.row = row.id;
  cab.loc = d.loc(cn);
  if (site.find_cabinet(cab.id)) {
    d.error(cr.get("id"), cw + ": duplicate cabinet id in this site");
  }
  cab.rated_w = ctx.defs.rated_w;
  if (cr.has("rated_kw") && cr.has("breaker")) {
    d.error(cr.key_node("breaker"), cw + ": give either rated_kw or breaker, not both");
  }
  if (auto v = cr.num("rated_kw")) {
    if (*v <= 0 || *v > 1000) d.error(cr.get("rated_kw"), cw + ": rated_kw must be in (0, 1000]");
    cab.rated_w = *v * 1000;
  }
  if (cr.has("breaker")) parse_breaker(d, cr, cw, cab);
  cab.feeds = ctx.defs.feeds;
  if (cr.has("feeds")) {
    cab.feeds.clear();
    std::unordered_set<std::string> fs_seen;
    for (auto& [f, at] : cr.str_list("feeds")) {
      if (!fs_seen.insert(f).second) d.error(at, cw + ": duplicate feed \"" + f + "\"");
      cab.feeds.push_back(f);
    }
    if (cab.feeds.empty()) d.error(cr.get("feeds"), cw + ": at least one feed is needed");
  }
  if (auto s = cr.choice<CabinetStatus>("status", {{"sold", CabinetStatus::kSold},
                                                   {"internal", CabinetStatus::kInternal},
                                                   {"free", CabinetStatus::kFree}})) {
    cab.status = *s;
  }
  cab.sim = parse_sim(d, cr, {"load"});
  resolve_cabinet(d, cr, ctx.cfg, site, cab);
  row.cabinet_ids.push_back(cab.id);
  site.cabinets.push_back(std::move(cab));
}

// The site's rooms, their rows and cabinets; returns the room ids.
std::unordered_set<std::string> parse_rooms(LoadContext& ctx, MapReader& sr, Site& site,
                                            const std::string& sw) {
  Diagnostics& d = ctx.d;
  std::unordered_set<std::string> room_ids;
  for (const auto& rn : sr.seq("rooms", true)) {
    MapReader rr(d, rn, sw + " room", {"id", "name", "rows"});
    if (!rr.ok()) continue;
    Room room;
    if (!check_id(d, rr, sw + " room", room.id)) continue;
    if (!room_ids.insert(room.id).second) {
      d.error(rr.get("id"), sw + ": duplicate room id \"" + room.id + "\"");
    }
    room.name = rr.str("name").value_or(room.id);
    std::unordered_set<std::string> row_ids;
    for (const auto& wn : rr.seq("rows", true)) {
      MapReader wr(d, wn, sw + " row", {"id", "cabinets"});
      if (!wr.ok()) continue;
      Row row;
      if (!check_id(d, wr, sw + " row", row.id)) continue;
      if (!row_ids.insert(row.id).second) {
        d.error(wr.get("id"),
                sw + " room \"" + room.id + "\": duplicate row id \"" + row.id + "\"");
      }
      for (const auto& cn : wr.seq("cabinets", true)) parse_cabinet(ctx, site, sw, room, row, cn);
      room.rows.push_back(std::move(row));
    }
    site.rooms.push_back(std::move(room));
  }
  return room_ids;
}

// The site's own keys (everything but rooms and devices).
void parse_site_settings(LoadContext& ctx, MapReader& sr, Site& site, const std::string& sw) {
  Diagnostics& d = ctx.d;
  const Config& cfg = ctx.cfg;
  site.name = sr.str("name").value_or(site.id);
  if (auto o = sr.choice<Ownership>(
          "ownership", {{"self_built", Ownership::kSelfBuilt}, {"leased", Ownership::kLeased}})) {
    site.ownership = *o;
  }
  if (auto n = sr.integer("planned_cabinets", 0, 1'000'000)) site.planned_cabinets = int(*n);
  if (auto n = sr.integer("pue_category", 1, 3)) site.pue_category = int(*n);
  site.sim = parse_sim(d, sr, {"pue"});
  site.facility = cfg.facility;
  if (sr.has("facility")) {
    site.facility = parse_facility_settings(d, sr.get("facility"), sw + " facility", cfg.facility);
  }
  site.report = sr.has("report")
                    ? parse_report_settings(d, sr.get("report"), sw + " report", cfg.report)
                    : cfg.report;
  if (sr.has("build_out_plan")) {
    site.build_out_plan = parse_build_out_plan(d, sr.get("build_out_plan"), sw);
  }
}

}  // namespace

void parse_site(LoadContext& ctx, const YAML::Node& sn) {
  Diagnostics& d = ctx.d;
  MapReader sr(d, sn, "site",
               {"id", "name", "ownership", "planned_cabinets", "pue_category", "simulate", "rooms",
                "devices", "facility", "build_out_plan", "report"});
  if (!sr.ok()) return;
  Site site;
  if (!check_id(d, sr, "site", site.id)) return;
  const std::string sw = "site \"" + site.id + "\"";
  sr.set_what(sw);
  if (!ctx.site_ids.insert(site.id).second) d.error(sr.get("id"), sw + ": duplicate site id");
  parse_site_settings(ctx, sr, site, sw);
  const auto room_ids = parse_rooms(ctx, sr, site, sw);
  for (const auto& dn : sr.seq("devices")) parse_device(ctx, site, room_ids, dn);
  check_feeds_measured_once(d, site);
  if (site.planned_cabinets == 0) site.planned_cabinets = static_cast<int>(site.cabinets.size());
  if (site.planned_cabinets < static_cast<int>(site.cabinets.size())) {
    d.error(sr.get("planned_cabinets"), sw + ": planned_cabinets (" +
                                            std::to_string(site.planned_cabinets) +
                                            ") is less than the cabinets in the inventory (" +
                                            std::to_string(site.cabinets.size()) + ")");
  }
  check_site_facility(d, sr, site);
  ctx.cfg.sites.push_back(std::move(site));
}

}  // namespace facility::config_detail
