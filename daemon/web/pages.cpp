#include "daemon/web/pages.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <unordered_map>

#include "daemon/config/device_kinds.h"
#include "daemon/http/http.h"
#include "daemon/sinks/payloads.h"
#include "daemon/web/status.h"

namespace facility::web {
namespace {

using http::html_escape;
using http::url_encode;

// ---- Numbers with their units; "no data" is never a number -------------------------------

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

// Thousands separated by a thin space, so 1234567.8 W reads "1 234.6 kW".
std::string grouped(double v, int decimals) {
  std::string s = fixed(v, decimals);
  const std::size_t dot = s.find('.');
  std::size_t end = dot == std::string::npos ? s.size() : dot;
  const std::size_t begin = s[0] == '-' ? 1 : 0;
  for (std::size_t i = end; i > begin + 3; i -= 3) s.insert(i - 3, "\u2009");
  return s;
}

const char* kNoData = "<span class=\"nd\">no data</span>";

std::string kw(const std::optional<double>& w, int decimals = 1) {
  return w && std::isfinite(*w) ? grouped(*w / 1000, decimals) + " kW" : kNoData;
}
std::string pct(const std::optional<double>& r) {
  return r && std::isfinite(*r) ? fixed(*r * 100, 1) + " %" : kNoData;
}
std::string celsius(const std::optional<double>& c) {
  return c && std::isfinite(*c) ? fixed(*c, 1) + " \u00b0C" : kNoData;
}
std::string amps(const std::optional<double>& a) {
  return a && std::isfinite(*a) ? fixed(*a, 2) + " A" : kNoData;
}
std::string volts(const std::optional<double>& v) {
  return v && std::isfinite(*v) ? fixed(*v, 1) + " V" : kNoData;
}
std::string ratio2(const std::optional<double>& v) {
  return v && std::isfinite(*v) ? fixed(*v, 2) : kNoData;
}

std::string clock_time(TimePoint t) {
  std::string s = format_rfc3339_ms(t);  // 2026-12-07T17:21:05.123Z
  return s.substr(0, 10) + " " + s.substr(11, 8) + " UTC";
}

std::string age(TimePoint now, TimePoint t) {
  const double s = std::chrono::duration<double>(now - t).count();
  if (s < 0) return "0 s";
  if (s < 120) return fixed(s, 0) + " s";
  if (s < 7200) return fixed(s / 60, 0) + " min";
  if (s < 172800) return fixed(s / 3600, 0) + " h";
  return fixed(s / 86400, 0) + " d";
}

// " <small>name</small>", unless the name says nothing more than the id.
std::string name_suffix(const std::string& id, const std::string& name) {
  return name.empty() || name == id ? "" : " <small>" + html_escape(name) + "</small>";
}

// "47 powered", or "≥ 45 powered (2 unknown)" while a stale feed may hide a cabinet's load.
std::string powered_text(const Occupancy& o) {
  const int unknown = o.total - o.powered_known;
  if (unknown <= 0) return std::to_string(o.powered) + " powered";
  return "\u2265 " + std::to_string(o.powered) + " powered (" + std::to_string(unknown) +
         " unknown)";
}

// A device's row on the device health page (which lists every device with all=1).
std::string device_href(const std::string& site, const std::string& device) {
  return "/devices?site=" + url_encode(site) + "&amp;all=1#dev-" + url_encode(device);
}

std::string site_href(const std::string& site) { return "/sites/" + url_encode(site); }
std::string cabinet_href(const std::string& site, const std::string& cabinet) {
  return site_href(site) + "/cabinets/" + url_encode(cabinet);
}

// ---- Layout --------------------------------------------------------------------------------

constexpr const char* kStyle = R"css(
:root{color-scheme:dark}
*{box-sizing:border-box}
body{margin:0;font:15px/1.4 system-ui,"Segoe UI",Roboto,"Noto Sans",sans-serif;background:#101317;color:#e7e9ec}
a{color:#8fc1ff}
header{display:flex;flex-wrap:wrap;gap:.4rem 1.4rem;align-items:baseline;padding:.5rem 1rem;background:#1a1f26;border-bottom:1px solid #2c333c}
header .brand{font-weight:700;font-size:1.1rem;color:#fff;text-decoration:none}
header .ts{margin-left:auto;color:#9aa5b1;font-variant-numeric:tabular-nums}
main{padding:.8rem 1rem 2rem}
h1{font-size:1.4rem;margin:.2rem 0 .8rem}
h2{font-size:1.15rem;margin:1.2rem 0 .5rem}
small,.dim{color:#9aa5b1}
.nd{color:#c9a0ff;font-style:italic}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(25rem,1fr));gap:1rem}
.card{background:#1a1f26;border:1px solid #2c333c;border-radius:6px;padding:.7rem 1rem}
.card h2{margin:0 0 .5rem}
.big{display:flex;gap:1.6rem;margin:.2rem 0 .6rem}
.big div{display:flex;flex-direction:column}
.big b{font-size:1.7rem;font-variant-numeric:tabular-nums}
dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:.15rem .9rem;margin:0}
dl.kv dt{color:#9aa5b1}
dl.kv dd{margin:0;font-variant-numeric:tabular-nums}
table{border-collapse:collapse;margin:.3rem 0}
th,td{padding:.25rem .6rem;border-bottom:1px solid #2c333c;text-align:left;vertical-align:top}
th{color:#9aa5b1;font-weight:600}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.sev-critical,.st-down{color:#ff6b6b;font-weight:700}
.sev-warning,.st-no_data,.st-partial{color:#ffc857;font-weight:600}
.st-up{color:#7bd88f}
.room{margin-bottom:1.4rem}
.row{display:flex;gap:.5rem;margin:.35rem 0;align-items:stretch}
.rowname{flex:0 0 7.5rem;padding:.2rem .3rem;background:#1a1f26;border-radius:4px;font-size:.85rem}
.rowname b{display:block;font-size:.95rem}
.tiles{display:flex;flex-wrap:wrap;gap:4px}
.tile{display:flex;flex-direction:column;width:6.8rem;min-height:5.4rem;padding:.25rem .4rem;border-radius:4px;text-decoration:none;color:#111;font-size:.78rem;line-height:1.25;border:2px solid transparent}
.tile b{font-size:.85rem;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.tile .u{font-size:1.2rem;font-weight:700;font-variant-numeric:tabular-nums}
.l-ok{background:#6cc57c}
.l-warning{background:#ffc857}
.l-critical{background:#ff5c5c}
.l-nodata{background:repeating-linear-gradient(45deg,#3b414a 0 6px,#2b3037 6px 12px);color:#e7e9ec}
.tile.free{opacity:.6}
.l-other{background:#22272e;color:#9aa5b1;border:1px dashed #4a525c}
.tile.risk{border-color:#111;outline:3px dashed #ff8c1a;outline-offset:-3px}
.badge{display:inline-block;margin-top:2px;padding:0 .3rem;border-radius:3px;background:#111;color:#ffb35c;font-size:.7rem;font-weight:700}
.legend{display:flex;flex-wrap:wrap;gap:.6rem;align-items:center;font-size:.85rem;margin:.3rem 0 .6rem}
.legend span.sw{display:inline-block;width:1.1rem;height:.9rem;border-radius:2px;vertical-align:middle;margin-right:.25rem}
.frozen{background:#5a1414;border:1px solid #ff6b6b;padding:.5rem .8rem;border-radius:4px;font-weight:600}
svg.chart{background:#1a1f26;border:1px solid #2c333c;border-radius:4px;max-width:100%;height:auto}
svg.chart text{fill:#9aa5b1;font-size:11px}
@media (min-width:1800px){body{font-size:17px}.tile{width:7.4rem}}
)css";

// Fetches the page again and swaps its <main>: no flicker, scroll position kept. A page that
// cannot be fetched (daemon restarting) keeps the last good one and says so in the header.
constexpr const char* kRefreshScript =
    "(function(){var s=%d*1000;function tick(){fetch(location.href,{cache:'no-store',"
    "credentials:'same-origin'}).then(function(r){if(!r.ok)throw r.status;return r.text()})"
    ".then(function(t){var d=new DOMParser().parseFromString(t,'text/html');"
    "var m=d.querySelector('main'),h=d.querySelector('header .ts');"
    "if(m)document.querySelector('main').replaceWith(m);"
    "if(h)document.querySelector('header .ts').replaceWith(h)}).catch(function(e){"
    "var h=document.querySelector('header .ts');if(h)h.textContent='update failed ('+e+"
    "'); retrying'}).finally(function(){setTimeout(tick,s)})}setTimeout(tick,s)})();";

std::string layout(const FacilitySnapshot& snap, const std::string& title, const std::string& main,
                   const PageOptions& opt) {
  std::string h;
  h.reserve(main.size() + 6000);
  h += "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
       "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
       "<title>";
  h += html_escape(title);
  h += " \u2013 facilityd</title><style>";
  h += kStyle;
  h += "</style>";
  if (opt.refresh_s > 0) {
    h += "<noscript><meta http-equiv=\"refresh\" content=\"" +
         std::to_string(std::max(opt.refresh_s, 10)) + "\"></noscript>";
  }
  h += "</head><body><header><a class=\"brand\" href=\"/\">facilityd</a>"
       "<a href=\"/\">Sites</a><a href=\"/devices\">Device health</a>";
  if (opt.reports) h += "<a href=\"/reports\">Capacity reports</a>";
  h += "<a href=\"/api/v1/sites\">JSON API</a><a href=\"/metrics\">/metrics</a>"
       "<span class=\"ts\" title=\"when the model computed what this page shows\">model at ";
  h += clock_time(snap.computed_at);
  h += "</span></header>\n<main>";
  if (const std::string shard = shard_text(snap); !shard.empty()) {
    h += "<p class=\"dim\" data-shard>This daemon is " + shard +
         ": it polls its share of the devices. Cabinets of other shards are marked \"other "
         "shard\" and their devices are not listed; a site's IT and facility power and PUE "
         "are complete on the site's home shard.</p>";
  }
  if (opt.now != TimePoint{} && opt.now - snap.computed_at > PageOptions::kFrozenAfter) {
    h += "<p class=\"frozen\" data-frozen>The model's newest snapshot is " +
         age(opt.now, snap.computed_at) +
         " old: facilityd's model has stopped, and every value on this page is frozen at " +
         clock_time(snap.computed_at) + ". See facilityd's log.</p>";
  }
  h += main;
  h += "</main>";
  if (opt.refresh_s > 0) {
    char script[1024];
    std::snprintf(script, sizeof script, kRefreshScript, opt.refresh_s);
    h += "<script>";
    h += script;
    h += "</script>";
  }
  h += "</body></html>\n";
  return h;
}

std::string alerts_table(const FacilitySnapshot& snap, const std::string& site) {
  const auto alerts = active_alerts(snap, site);
  std::string h = "<h2>Active alerts (" + std::to_string(alerts.size()) + ")</h2>";
  if (alerts.empty()) return h + "<p class=\"dim\">No alert is raised.</p>";
  h += "<table class=\"alerts\"><tr><th>Since</th><th>Site</th><th>Subject</th><th>Alert</th>"
       "<th>Severity</th><th>Message</th></tr>";
  const DeviceIndex devices(snap);
  for (const AlertState* a : alerts) {
    std::string subject = html_escape(a->subject);
    if (const SiteSnapshot* s = find_site(snap, a->site); s && find_cabinet(*s, a->subject)) {
      subject = "<a href=\"" + cabinet_href(a->site, a->subject) + "\">" + subject + "</a>";
    } else if (devices.find(a->subject)) {
      subject = "<a href=\"" + device_href(a->site, a->subject) + "\">" + subject + "</a>";
    }
    h += "<tr data-alert=\"" + html_escape(a->kind) + "\" data-subject=\"" +
         html_escape(a->subject) + "\" data-severity=\"" + html_escape(a->severity) + "\"><td>" +
         clock_time(a->since) + "<br><small>" + age(snap.computed_at, a->since) +
         " ago</small></td><td><a href=\"" + site_href(a->site) + "\">" + html_escape(a->site) +
         "</a></td><td>" + subject + "</td><td>" + html_escape(a->kind) + "</td><td class=\"sev-" +
         html_escape(a->severity) + "\">" + html_escape(a->severity) + "</td><td>" +
         html_escape(a->message) + "</td></tr>";
  }
  return h + "</table>";
}

std::string site_card(const FacilitySnapshot& snap, const SiteSnapshot& s, const PageOptions& opt) {
  const Site& site = *s.site;
  const SiteStatus st = site_status(snap, s);
  const std::string href = site_href(site.id);
  std::string h = "<section class=\"card\" data-site=\"" + html_escape(site.id) +
                  "\"><h2><a href=\"" + href + "\">" + html_escape(site.id) + "</a>" +
                  name_suffix(site.id, site.name) + "</h2>";
  h += "<div class=\"big\"><div><small>IT power</small><b>" + kw(s.it_power_w) +
       "</b></div><div><small>PUE</small><b data-pue>" + ratio2(s.pue) +
       "</b></div><div><small>Devices up</small><b>" + std::to_string(st.devices_up) + " / " +
       std::to_string(st.devices_total) + "</b></div></div><dl class=\"kv\">";
  h += "<dt>IT power</dt><dd>" + kw(s.it_power_w) +
       (s.it_power_source.empty() ? ""
                                  : " <small>(" + html_escape(s.it_power_source) + ")</small>") +
       "</dd>";
  h += "<dt>Facility power</dt><dd>" + kw(s.facility_power_w) + "</dd>";
  h += "<dt>PUE now</dt><dd>" + ratio2(s.pue) + " <small>category " +
       std::to_string(s.pue_category) + " (ISO/IEC 30134-2)</small></dd>";
  h += "<dt>PUE energy</dt><dd>";
  if (st.energy_pue) {
    h += fixed(st.energy_pue->pue, 2) + " <small>over " + html_escape(st.energy_pue->window) +
         ", category " + std::to_string(st.energy_pue->category) + "</small>";
  } else {
    h += "<span class=\"nd\">withheld</span> <small>(no window meets "
         "facility.pue_min_coverage yet)</small>";
  }
  if (site.facility.pue_target)
    h += " <small>target " + fixed(*site.facility.pue_target, 2) + "</small>";
  h += "</dd>";
  const Occupancy& o = s.occupancy;
  h += "<dt>Cabinets</dt><dd>" + powered_text(o) + " / " + std::to_string(o.sold) + " sold / " +
       std::to_string(o.total) + " delivered / " + std::to_string(site.planned_cabinets) +
       " planned</dd>";
  h += "<dt>Occupancy</dt><dd>" + pct(s.occupancy_powered) + " powered, " + pct(s.occupancy_sold) +
       " sold";
  if (s.occupancy_planned) h += ", " + pct(s.occupancy_planned) + " of plan";
  h += "</dd>";
  h += "<dt>Load</dt><dd>" + kw(s.capacity.measured_w) + " of " + kw(s.capacity.rated_w) +
       " rated</dd>";
  h += "<dt>Headroom</dt><dd>" + kw(st.headroom_w);
  if (st.headroom_cabinets) {
    // Whole cabinets that still fit; none when the site is over its rating.
    h += " = " + fixed(std::max(0.0, std::floor(*st.headroom_cabinets)), 0) + " cabinets of " +
         fixed(site.facility.cabinet_equivalent_w / 1000, 1) + " kW";
  }
  h += "</dd>";
  h += "<dt>Alerts</dt><dd><span class=\"" +
       std::string(st.alerts_critical ? "sev-critical" : "dim") + "\">" +
       std::to_string(st.alerts_critical) + " critical</span> \u00b7 <span class=\"" +
       std::string(st.alerts_warning ? "sev-warning" : "dim") + "\">" +
       std::to_string(st.alerts_warning) + " warning</span></dd></dl>";
  h += "<p><a href=\"" + href +
       "\">Floor map</a> \u00b7 <a href=\"/devices?site=" + url_encode(site.id) + "\">Devices</a>";
  if (opt.reports)
    h += " \u00b7 <a href=\"/reports/" + url_encode(site.id) + "\">Capacity report</a>";
  h += "</p></section>";
  return h;
}

std::string legend() {
  return "<div class=\"legend\"><span><span class=\"sw l-ok\"></span>below the cabinet's "
         "warning threshold</span><span><span class=\"sw l-warning\"></span>warning</span>"
         "<span><span class=\"sw l-critical\"></span>critical</span><span><span class=\"sw "
         "l-nodata\"></span>no data (power unknown)</span><span><span class=\"badge\">failover "
         "risk</span> one feed cannot carry the cabinet</span><span class=\"dim\">Faded: free "
         "cabinet. Percent: power of rated power, coloured by the cabinet's own thresholds."
         "</span></div>";
}

// A cabinet another shard polls: its number is on that daemon's view.
std::string other_shard_tile(const SiteSnapshot& s, const Cabinet& c) {
  return "<a class=\"tile l-other\" href=\"" + cabinet_href(s.site->id, c.id) +
         "\" data-cabinet=\"" + html_escape(c.id) +
         "\" data-level=\"other_shard\" title=\"polled by another shard\"><b>" + html_escape(c.id) +
         "</b><span class=\"u\">other shard</span></a>";
}

std::string tile(const SiteSnapshot& s, const CabinetSnapshot& cs) {
  const Cabinet& c = *cs.cabinet;
  const Level level = cabinet_level(cs);
  const char* lv = to_string(level);
  std::string cls = std::string("tile l-") + lv;
  if (c.status == CabinetStatus::kFree) cls += " free";
  const bool risk = failover_risk(cs);
  if (risk) cls += " risk";
  std::string title = c.id + ": ";
  title += level == Level::kNoData
               ? std::string("power unknown")
               : fixed(*cs.power_w / 1000, 2) + " kW of " + fixed(c.rated_w / 1000, 1) + " kW (" +
                     fixed(*cs.utilization * 100, 1) + " %)";
  title += ", " + level_text(cs);
  std::string h = "<a class=\"" + cls + "\" href=\"" + cabinet_href(s.site->id, c.id) +
                  "\" data-cabinet=\"" + html_escape(c.id) + "\" data-level=\"" + lv +
                  "\" data-alert=\"" + to_string(cs.overload) + "\"";
  if (cs.utilization) h += " data-utilization=\"" + fixed(*cs.utilization, 4) + "\"";
  if (risk) h += " data-failover-risk=\"1\"";
  h += " title=\"" + html_escape(title) + "\"><b>" + html_escape(c.id) + "</b>";
  if (level == Level::kNoData) {
    h += "<span class=\"u\">no data</span>";
  } else {
    h += "<span class=\"u\">" + fixed(*cs.utilization * 100, 1) + " %</span><span>" +
         fixed(*cs.power_w / 1000, 2) + " kW</span>";
    if (level != Level::kOk || cs.overload != OverloadState::kOk) {
      h += "<span class=\"lv\">" + level_text(cs) + "</span>";
    }
  }
  if (cs.inlet_c) h += "<span>" + fixed(*cs.inlet_c, 1) + " \u00b0C</span>";
  if (cs.inlet_state != OverloadState::kOk) {
    h += std::string("<span class=\"badge\">inlet ") + to_string(cs.inlet_state) + "</span>";
  }
  if (risk) h += "<span class=\"badge\">failover risk</span>";
  return h + "</a>";
}

// Sum of the known power of a row's or room's cabinets (those this daemon polls), with how many
// are known: a lower bound while one is not, no number when none is.
struct Total {
  double power_w = 0, rated_w = 0;
  int measured = 0, count = 0, other_shard = 0;
  void add(const CabinetSnapshot& cs) {
    ++count;
    rated_w += cs.cabinet->rated_w;
    if (cs.power_w) {
      ++measured;
      power_w += *cs.power_w;
    }
  }
  void add(const Total& t) {
    power_w += t.power_w;
    rated_w += t.rated_w;
    measured += t.measured;
    count += t.count;
    other_shard += t.other_shard;
  }
  std::string text() const {
    std::string t;
    if (count > 0 && measured == 0) {
      t = std::string(kNoData) + " of " + grouped(rated_w / 1000, 1) + " kW";
    } else {
      t = grouped(power_w / 1000, 1) + " kW of " + grouped(rated_w / 1000, 1) + " kW";
      if (measured < count) {
        t += " <small>(" + std::to_string(measured) + " of " + std::to_string(count) +
             " cabinets measured: at least)</small>";
      } else if (rated_w > 0) {
        t += " <small>(" + fixed(power_w / rated_w * 100, 1) + " %)</small>";
      }
    }
    if (other_shard > 0) {
      t += " <small>(" + std::to_string(other_shard) + " on other shards)</small>";
    }
    return t;
  }
};

const char* device_state_of(const DeviceIndex& devices, const Device& d) {
  const DeviceSnapshot* ds = devices.find(d.id);
  return ds ? to_string(ds->state) : "down";
}

std::string yes_no(const std::optional<bool>& b, const char* yes, const char* no) {
  return b ? (*b ? yes : no) : kNoData;
}

// The room's cooling units (those this daemon polls): temperatures, power, fan, running.
std::string cooling_table(const FacilitySnapshot& snap, const DeviceIndex& devices,
                          const SiteSnapshot& s, const std::string& room) {
  std::string rows;
  for (const auto& c : s.cooling) {
    if (c.device->room != room || !owned(snap, *c.device)) continue;
    const char* st = device_state_of(devices, *c.device);
    rows += "<tr data-cooling=\"" + html_escape(c.device->id) + "\"><td>" +
            html_escape(c.device->id) + "</td><td class=\"st-" + st + "\">" + st + "</td><td>" +
            yes_no(c.running, "running", "stopped") + "</td><td class=\"n\">" +
            celsius(c.supply_c) + "</td><td class=\"n\">" + celsius(c.return_c) +
            "</td><td class=\"n\">" + celsius(c.delta_t_c) + "</td><td class=\"n\">" +
            kw(c.power_w, 2) + "</td><td class=\"n\">" + pct(c.fan_ratio) +
            "</td><td class=\"n\">" + kw(c.device->capacity_w, 1) + "</td></tr>";
  }
  if (rows.empty()) return "";
  return "<table class=\"cooling\"><tr><th>Cooling unit</th><th>State</th><th>Running</th>"
         "<th class=\"n\">Supply</th><th class=\"n\">Return</th><th class=\"n\">\u0394T</th>"
         "<th class=\"n\">Power</th><th class=\"n\">Fan</th><th class=\"n\">Capacity</th></tr>" +
         rows + "</table>";
}

// The site's UPSs (those this daemon polls): output, load level, battery, source.
std::string ups_table(const FacilitySnapshot& snap, const DeviceIndex& devices,
                      const SiteSnapshot& s) {
  std::string rows;
  for (const auto& u : s.ups) {
    if (!owned(snap, *u.device)) continue;
    const char* st = device_state_of(devices, *u.device);
    std::string source =
        u.output_source.empty() ? std::string(kNoData) : html_escape(u.output_source);
    if (u.on_battery_alert) source += " <span class=\"sev-critical\">on battery</span>";
    if (u.on_bypass_alert) source += " <span class=\"sev-warning\">on bypass</span>";
    rows += "<tr data-ups=\"" + html_escape(u.device->id) + "\"><td>" + html_escape(u.device->id) +
            "</td><td class=\"st-" + st + "\">" + st + "</td><td class=\"n\">" + kw(u.power_w, 1) +
            "</td><td class=\"n sev-" + to_string(u.overload) + "\">" + pct(u.load_ratio) +
            "</td><td class=\"n sev-" + to_string(u.runtime_state) + "\">" +
            (u.runtime_s ? fixed(*u.runtime_s / 60, 0) + " min" : std::string(kNoData)) +
            "</td><td class=\"n\">" + pct(u.charge_ratio) + "</td><td>" + source + "</td></tr>";
  }
  if (rows.empty()) return "";
  return "<h2>UPS</h2><table class=\"ups\"><tr><th>UPS</th><th>State</th><th class=\"n\">"
         "Output</th><th class=\"n\">Load</th><th class=\"n\">Runtime</th><th class=\"n\">"
         "Charge</th><th>Source</th></tr>" +
         rows + "</table>";
}

}  // namespace

std::string overview_page(const FacilitySnapshot& snap, const PageOptions& opt) {
  std::string m = "<h1>Sites</h1><div class=\"cards\">";
  for (const auto& s : snap.sites) m += site_card(snap, s, opt);
  m += "</div>";
  m += alerts_table(snap, "");
  return layout(snap, "Sites", m, opt);
}

std::optional<std::string> site_page(const FacilitySnapshot& snap, const std::string& site_id,
                                     const PageOptions& opt) {
  const SiteSnapshot* s = find_site(snap, site_id);
  if (!s) return std::nullopt;
  std::unordered_map<std::string, const CabinetSnapshot*> by_id;
  for (const auto& c : s->cabinets) by_id.emplace(c.cabinet->id, &c);
  const Site& site = *s->site;
  std::string m = "<h1>" + html_escape(site.id) + name_suffix(site.id, site.name) + "</h1><p>IT " +
                  kw(s->it_power_w) + " \u00b7 facility " + kw(s->facility_power_w) +
                  " \u00b7 PUE " + ratio2(s->pue) + " \u00b7 " + powered_text(s->occupancy) +
                  " of " + std::to_string(s->occupancy.total) + " cabinets</p>" + legend();
  const DeviceIndex devices(snap);
  for (const auto& r : s->rooms) {
    const Room& room = *r.room;
    Total room_total;
    std::string rows;
    for (const auto& row : room.rows) {
      Total t;
      std::string tiles;
      for (const auto& id : row.cabinet_ids) {
        const auto it = by_id.find(id);
        if (it == by_id.end()) continue;
        const CabinetSnapshot& cs = *it->second;
        if (!owned_cabinet(snap, site.id, *cs.cabinet)) {
          ++t.other_shard;
          tiles += other_shard_tile(*s, *cs.cabinet);
          continue;
        }
        t.add(cs);
        tiles += tile(*s, cs);
      }
      room_total.add(t);
      rows += "<div class=\"row\" data-row=\"" + html_escape(row.id) +
              "\"><div class=\"rowname\"><b>Row " + html_escape(row.id) + "</b>" + t.text() +
              "</div><div class=\"tiles\">" + tiles + "</div></div>";
    }
    m += "<section class=\"room\" data-room=\"" + html_escape(room.id) + "\"><h2>Room " +
         html_escape(room.id) + name_suffix(room.id, room.name) + "</h2><p>Load " +
         room_total.text() + " \u00b7 " + powered_text(r.occupancy) + " of " +
         std::to_string(r.occupancy.total) + " cabinets";
    if (r.cooling.units > 0) {
      m += " \u00b7 cooling " + std::to_string(r.cooling.units_running) + " of " +
           std::to_string(r.cooling.units) + " units running, N+1 headroom " +
           kw(r.cooling.headroom_n_plus_1_w);
      if (r.cooling_state != OverloadState::kOk) {
        m += std::string(" <span class=\"sev-") + to_string(r.cooling_state) + "\">" +
             to_string(r.cooling_state) + "</span>";
      }
    }
    m += "</p>" + rows + cooling_table(snap, devices, *s, room.id) + "</section>";
  }
  m += ups_table(snap, devices, *s);
  m += alerts_table(snap, site.id);
  return layout(snap, site.id + " floor map", m, opt);
}

namespace {

// The chart's geometry: the last hour on x, 0..ymax W on y.
struct Chart {
  static constexpr double kW = 720, kH = 200, kLeft = 56, kRight = 12, kTop = 10, kBottom = 24;
  static constexpr double kPw = kW - kLeft - kRight, kPh = kH - kTop - kBottom;
  TimePoint now;
  double ymax = 1;
  double x(TimePoint t) const {
    const double span_s =
        std::chrono::duration<double>(LiveView::kStep).count() * double(LiveView::kSamples);
    const double ago = std::chrono::duration<double>(now - t).count();
    return kLeft + kPw * (1 - std::clamp(ago / span_s, 0.0, 1.0));
  }
  double y(double w) const { return kTop + kPh * (1 - std::clamp(w / ymax, 0.0, 1.0)); }

  // Axes: kW on the left at 0, half and full scale; time at -60, -30 min and now.
  void axes(std::string& h) const {
    for (double f : {0.0, 0.5, 1.0}) {
      const double yy = y(ymax * f);
      h += "<line x1=\"" + fixed(kLeft, 0) + "\" x2=\"" + fixed(kW - kRight, 0) + "\" y1=\"" +
           fixed(yy, 1) + "\" y2=\"" + fixed(yy, 1) + "\" stroke=\"#2c333c\"/>";
      h += "<text x=\"" + fixed(kLeft - 4, 0) + "\" y=\"" + fixed(yy + 4, 1) +
           "\" text-anchor=\"end\">" + fixed(ymax * f / 1000, 1) + " kW</text>";
    }
    const char* label[] = {"\u221260 min", "\u221230 min", "now"};
    for (int i = 0; i <= 2; ++i) {
      h += "<text x=\"" + fixed(kLeft + kPw * i / 2, 1) + "\" y=\"" + fixed(kH - 6, 0) +
           "\" text-anchor=\"" +
           (i == 0   ? "start"
            : i == 2 ? "end"
                     : "middle") +
           "\">" + label[i] + "</text>";
    }
  }

  // A dashed threshold line; labels alternate left and right, so close lines stay readable.
  void threshold(std::string& h, double w, const char* colour, const std::string& label,
                 bool left) const {
    const double yy = y(w);
    h += "<line x1=\"" + fixed(kLeft, 0) + "\" x2=\"" + fixed(kW - kRight, 0) + "\" y1=\"" +
         fixed(yy, 1) + "\" y2=\"" + fixed(yy, 1) + "\" stroke=\"" + colour +
         "\" stroke-dasharray=\"5 4\"/><text x=\"" + fixed(left ? kLeft + 4 : kW - kRight - 2, 0) +
         "\" y=\"" + fixed(yy - 3, 1) + "\" text-anchor=\"" + (left ? "start" : "end") +
         "\" style=\"fill:" + colour + "\">" + label + "</text>";
  }

  // The power as polylines (a lone point as a dot), broken where it was unknown and where
  // samples are missing (the daemon restarting or reloading, a stalled model). Returns how many.
  int lines(std::string& h, const std::vector<LiveView::Sample>& history) const {
    std::string pts;
    int n = 0, count = 0;
    const auto flush = [&] {
      if (n == 1) {
        const auto c = pts.find(',');
        h += "<circle cx=\"" + pts.substr(0, c) + "\" cy=\"" + pts.substr(c + 1) +
             "\" r=\"2.5\" fill=\"#8fc1ff\"/>";
      } else if (n > 1) {
        h += "<polyline fill=\"none\" stroke=\"#8fc1ff\" stroke-width=\"2\" points=\"" + pts +
             "\"/>";
      }
      if (n > 0) ++count;
      pts.clear();
      n = 0;
    };
    const auto max_step = std::chrono::duration_cast<Clock::duration>(LiveView::kStep * 1.5);
    TimePoint prev{};
    for (const auto& s : history) {
      if (!s.power_w) {
        flush();
        continue;
      }
      if (n > 0 && s.t - prev > max_step) flush();
      prev = s.t;
      if (n++) pts += ' ';
      pts += fixed(x(s.t), 1) + "," + fixed(y(*s.power_w), 1);
    }
    flush();
    return count;
  }
};

}  // namespace

std::string power_chart_svg(const std::vector<LiveView::Sample>& history, TimePoint now,
                            const Cabinet& cabinet) {
  Chart chart{now};
  chart.ymax = cabinet.rated_w * 1.1;
  for (const auto& s : history)
    if (s.power_w) chart.ymax = std::max(chart.ymax, *s.power_w * 1.1);
  if (chart.ymax <= 0) chart.ymax = 1;
  std::string h = "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 " +
                  fixed(Chart::kW, 0) + " " + fixed(Chart::kH, 0) + "\" width=\"" +
                  fixed(Chart::kW, 0) + "\" height=\"" + fixed(Chart::kH, 0) +
                  "\" role=\"img\" aria-label=\"power of " + html_escape(cabinet.id) +
                  " over the last hour\">";
  chart.axes(h);
  if (cabinet.rated_w > 0) {
    chart.threshold(h, cabinet.rated_w, "#c8ccd2",
                    "rated " + fixed(cabinet.rated_w / 1000, 1) + " kW", true);
    chart.threshold(h, cabinet.rated_w * cabinet.overload.critical, "#ff5c5c",
                    "critical " + fixed(cabinet.overload.critical * 100, 0) + " %", false);
    chart.threshold(h, cabinet.rated_w * cabinet.overload.warning, "#ffc857",
                    "warning " + fixed(cabinet.overload.warning * 100, 0) + " %", true);
  }
  if (chart.lines(h, history) == 0) {
    h += "<text x=\"" + fixed(Chart::kLeft + Chart::kPw / 2, 0) + "\" y=\"" +
         fixed(Chart::kTop + Chart::kPh / 2, 0) +
         "\" text-anchor=\"middle\">no power measured yet (one sample every " +
         std::to_string(LiveView::kStep.count()) + " s)</text>";
  }
  return h + "</svg>";
}

namespace {

std::string cabinet_facts(const CabinetSnapshot& cs) {
  const Cabinet& c = *cs.cabinet;
  const Level level = cabinet_level(cs);
  std::string m = "<div class=\"cards\"><section class=\"card\"><dl class=\"kv\">";
  m += "<dt>Power</dt><dd>" + kw(cs.power_w, 2) + " of " + kw(c.rated_w, 1) + " rated</dd>";
  m += "<dt>Utilisation</dt><dd class=\"sev-" + std::string(to_string(level)) + "\">" +
       pct(cs.utilization) + " \u00b7 " + level_text(cs) + "</dd>";
  m += "<dt>Thresholds</dt><dd>warning " + fixed(c.overload.warning * 100, 0) + " %, critical " +
       fixed(c.overload.critical * 100, 0) + " % of rated</dd>";
  m += "<dt>Failover</dt><dd>";
  if (cs.failover_margin) {
    const bool now = *cs.failover_margin < 0;
    m +=
        std::string(now || cs.failover_risk ? "<span class=\"sev-warning\">at risk</span>" : "ok") +
        (now && !cs.failover_risk   ? " (alert pending)"
         : !now && cs.failover_risk ? " (alert until it clears)"
                                    : "") +
        ": worst case " + html_escape(cs.failover_worst) + ", headroom " +
        kw(cs.failover_worst_w, 2);
  } else if (c.feeds.size() < 2) {
    m += "single feed";
  } else {
    m += kNoData;
    if (cs.failover_risk) m += " <span class=\"sev-warning\">(failover risk alert held)</span>";
  }
  m += "</dd><dt>Inlet</dt><dd>" + celsius(cs.inlet_c);
  if (cs.inlet_state != OverloadState::kOk) {
    m += std::string(" <span class=\"sev-") + to_string(cs.inlet_state) + "\">" +
         to_string(cs.inlet_state) + "</span>";
  }
  m += "</dd><dt>Humidity</dt><dd>" + pct(cs.humidity_ratio) + "</dd>";
  if (cs.u_total) {
    m += "<dt>Rack units</dt><dd>" + fixed(cs.u_occupied.value_or(0), 0) + " of " +
         fixed(*cs.u_total, 0) + " U</dd>";
  }
  return m + "</dl></section></div>";
}

std::string feeds_table(const std::string& site_id, const CabinetSnapshot& cs) {
  const Cabinet& c = *cs.cabinet;
  std::string m =
      "<h2>Feeds</h2><table><tr><th>Feed</th><th>PDU</th><th class=\"n\">Power</th>"
      "<th class=\"n\">Current</th><th class=\"n\">Voltage</th><th class=\"n\">"
      "Derated capacity</th><th class=\"n\">Failover headroom</th></tr>";
  const double feed_cap = c.derating * c.feed_capacity_w;
  for (const auto& f : cs.feeds) {
    m += "<tr data-feed=\"" + html_escape(f.feed) + "\"><td>" + html_escape(f.feed) + "</td><td>" +
         (f.device.empty()
              ? std::string("<span class=\"dim\">none</span>")
              : "<a href=\"" + device_href(site_id, f.device) + "\">" + html_escape(f.device) +
                    "</a>" + (f.fresh ? "" : " <span class=\"st-down\">stale</span>")) +
         "</td><td class=\"n\">" + kw(f.power_w, 2) + (f.estimated ? " <small>est.</small>" : "") +
         "</td><td class=\"n\">" + amps(f.current_a) + "</td><td class=\"n\">" +
         volts(f.voltage_v) + "</td><td class=\"n\">" + kw(feed_cap, 2) + "</td><td class=\"n\">" +
         kw(f.failover_headroom_w, 2) + "</td></tr>";
    for (const auto& p : f.phases) {
      m += "<tr class=\"phase\"><td>\u2003" + html_escape(p.phase) +
           "</td><td></td><td class=\"n\">" + kw(p.power_w, 2) + "</td><td class=\"n\">" +
           amps(p.current_a) + "</td><td class=\"n\">" + volts(p.voltage_v) +
           "</td><td class=\"n\">" + kw(feed_cap / 3, 2) + "</td><td class=\"n\">" +
           kw(p.failover_headroom_w, 2) + "</td></tr>";
    }
  }
  return m + "</table>";
}

std::string sensors_table(const SiteSnapshot& s, const Cabinet& c) {
  std::string rows;
  for (const auto& r : s.rack_sensors) {
    if (r.cabinet != c.id) continue;
    rows += "<tr><td>" + html_escape(r.device->id) + "</td><td class=\"n\">" + celsius(r.inlet_c) +
            "</td><td class=\"n\">" + celsius(r.outlet_c) + "</td><td class=\"n\">" +
            pct(r.humidity_ratio) + "</td><td class=\"n\">" + celsius(r.dew_point_c) + "</td></tr>";
  }
  if (rows.empty()) return "";
  return "<h2>Rack sensors</h2><table><tr><th>Sensor</th><th class=\"n\">Inlet</th><th "
         "class=\"n\">Outlet</th><th class=\"n\">Humidity</th><th class=\"n\">Dew point</th>"
         "</tr>" +
         rows + "</table>";
}

std::string cabinet_devices_table(const FacilitySnapshot& snap, const std::string& site_id,
                                  const Cabinet& c) {
  std::string m =
      "<h2>Devices</h2><table><tr><th>Device</th><th>Kind</th><th>State</th><th>"
      "Last good data</th><th>Reason</th><th>Endpoint</th></tr>";
  for (const auto& d : snap.devices) {
    if (!d.device || d.device->site != site_id || d.device->cabinet != c.id) continue;
    const char* st = to_string(d.state);
    m += "<tr><td><a href=\"" + device_href(site_id, d.device->id) + "\">" +
         html_escape(d.device->id) + "</a></td><td>" + kind_info(d.device->kind).name +
         "</td><td class=\"st-" + st + "\">" + st + "</td><td>" +
         (d.last_success == TimePoint{} ? std::string("never")
                                        : age(snap.computed_at, d.last_success) + " ago") +
         "</td><td>" + (d.state == DeviceState::kUp ? "" : html_escape(d.last_error)) +
         "</td><td>" + html_escape(d.device->endpoint.key()) + " unit " +
         std::to_string(d.device->unit) + "</td></tr>";
  }
  return m + "</table>";
}

}  // namespace

std::optional<std::string> cabinet_page(const FacilitySnapshot& snap, const std::string& site_id,
                                        const std::string& cabinet_id,
                                        const std::vector<LiveView::Sample>& history,
                                        const PageOptions& opt) {
  const SiteSnapshot* s = find_site(snap, site_id);
  const CabinetSnapshot* cs = s ? find_cabinet(*s, cabinet_id) : nullptr;
  if (!cs) return std::nullopt;
  const Cabinet& c = *cs->cabinet;
  std::string m =
      "<p><a href=\"" + site_href(site_id) + "\">" + html_escape(site_id) + "</a> \u203a room " +
      html_escape(c.room) + " \u203a row " + html_escape(c.row) + "</p><h1 data-cabinet=\"" +
      html_escape(c.id) + "\" data-level=\"" + to_string(cabinet_level(*cs)) + "\">Cabinet " +
      html_escape(c.id) + " <small>" + to_string(c.status) +
      (c.cabinet_class.empty() ? "" : ", class " + html_escape(c.cabinet_class)) + "</small></h1>";
  if (!owned_cabinet(snap, site_id, c)) {
    m += "<p>Another shard polls this cabinet: see its power on that daemon's view.</p>";
    return layout(snap, "Cabinet " + c.id, m, opt);
  }
  m += cabinet_facts(*cs);
  m += "<h2>Last hour</h2>" + power_chart_svg(history, snap.computed_at, c);
  m += feeds_table(site_id, *cs);
  m += sensors_table(*s, c);
  m += cabinet_devices_table(snap, site_id, c);
  m += alerts_table(snap, site_id);
  return layout(snap, "Cabinet " + c.id, m, opt);
}

namespace {

std::string device_row(const FacilitySnapshot& snap, const DeviceSnapshot& d) {
  const Device& dev = *d.device;
  const char* st = to_string(d.state);
  std::string reason = d.state == DeviceState::kUp ? "" : d.last_error;
  if (reason.empty() && d.state != DeviceState::kUp) {
    reason = d.state == DeviceState::kPartial  ? "some points refused (see the device's log)"
             : d.state == DeviceState::kNoData ? "answers, but no point gave a value"
                                               : "no data yet";
  }
  const std::string where = dev.cabinet.empty()
                                ? html_escape(dev.room)
                                : "<a href=\"" + cabinet_href(dev.site, dev.cabinet) + "\">" +
                                      html_escape(dev.cabinet) + "</a>" +
                                      (dev.feed.empty() ? "" : " feed " + html_escape(dev.feed));
  return "<tr id=\"dev-" + url_encode(dev.id) + "\" data-device=\"" + html_escape(dev.id) +
         "\" data-state=\"" + st + "\"><td>" + html_escape(dev.site) + "</td><td>" +
         html_escape(dev.id) + "</td><td>" + kind_info(dev.kind).name + "</td><td class=\"st-" +
         st + "\">" + st + "</td><td>" + html_escape(reason) + "</td><td>" +
         (d.last_success == TimePoint{}
              ? std::string("never (since start)")
              : clock_time(d.last_success) + "<br><small>" + age(snap.computed_at, d.last_success) +
                    " ago</small>") +
         "</td><td>" + html_escape(dev.endpoint.key()) + " unit " + std::to_string(dev.unit) +
         "</td><td>" + where + "</td></tr>";
}

}  // namespace

std::string devices_page(const FacilitySnapshot& snap, const std::string& site, bool all,
                         const PageOptions& opt) {
  std::string m =
      "<h1>Device health" +
      (site.empty() ? std::string() : " <small>site " + html_escape(site) + "</small>") +
      "</h1><table><tr><th>Kind</th><th class=\"n\">Up</th><th class=\"n\">Partial</th>"
      "<th class=\"n\">No data</th><th class=\"n\">Down</th><th class=\"n\">Total</th>"
      "</tr>";
  for (const auto& [kind, c] : device_counts(snap, site)) {
    m += "<tr data-kind=\"" + kind + "\"><td>" + kind + "</td><td class=\"n st-up\">" +
         std::to_string(c.up) + "</td><td class=\"n\">" + std::to_string(c.partial) +
         "</td><td class=\"n\">" + std::to_string(c.no_data) + "</td><td class=\"n" +
         (c.down ? " st-down" : "") + "\">" + std::to_string(c.down) + "</td><td class=\"n\">" +
         std::to_string(c.total()) + "</td></tr>";
  }
  m += "</table>";
  std::vector<const DeviceSnapshot*> rows;
  for (const auto& d : snap.devices) {
    if (!d.device || (!site.empty() && d.device->site != site) || !owned(snap, *d.device)) continue;
    if (all || d.state != DeviceState::kUp) rows.push_back(&d);
  }
  // Down first, then no data, then partial (then up); the longest without data first.
  const auto rank = [](DeviceState s) {
    return s == DeviceState::kDown      ? 0
           : s == DeviceState::kNoData  ? 1
           : s == DeviceState::kPartial ? 2
                                        : 3;
  };
  std::stable_sort(rows.begin(), rows.end(), [&](const DeviceSnapshot* a, const DeviceSnapshot* b) {
    if (rank(a->state) != rank(b->state)) return rank(a->state) < rank(b->state);
    return a->last_success < b->last_success;
  });
  const std::string all_href =
      "/devices?" + (site.empty() ? std::string() : "site=" + url_encode(site) + "&amp;") + "all=1";
  m += all ? "<h2>Every device (" + std::to_string(rows.size()) + ")</h2>"
           : "<h2>Down, no data or partial (" + std::to_string(rows.size()) +
                 ")</h2><p class=\"dim\">Partial: fresh data, but the device refuses some "
                 "points (a profile problem); it counts as up in facility_device_up. <a href=\"" +
                 all_href + "\">Every device</a></p>";
  if (rows.empty()) {
    m += "<p class=\"dim\">Every device is up: fresh data, every configured point read.</p>";
  } else {
    m += "<table class=\"devices\"><tr><th>Site</th><th>Device</th><th>Kind</th><th>State</th>"
         "<th>Reason</th><th>Last good data</th><th>Endpoint</th><th>Where</th></tr>";
    for (const DeviceSnapshot* d : rows) m += device_row(snap, *d);
    m += "</table>";
  }
  return layout(snap, "Device health", m, opt);
}

}  // namespace facility::web
