// Parsing of the facility-model settings: `facility` (top level and per site), `cabinet_classes`,
// a site's `build_out_plan`, and the facility keys of cabinets and devices.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <regex>
#include <sstream>
#include <unordered_set>

#include "daemon/config/reader.h"

namespace facility {

OverloadSettings OverloadOverride::apply(OverloadSettings base) const {
  if (warning) base.warning = *warning;
  if (critical) base.critical = *critical;
  if (hysteresis) base.hysteresis = *hysteresis;
  if (hold) base.hold = *hold;
  return base;
}

std::optional<int> plan_at(const std::vector<PlanStep>& plan,
                           std::chrono::system_clock::time_point t) {
  if (plan.empty()) return std::nullopt;
  int v = 0;
  for (const auto& s : plan) {
    if (s.date > t) break;
    v = s.powered;
  }
  return v;
}

int it_category(MeterRole r, int site_category) {
  if (r == MeterRole::kItTotal) return site_category;
  for (const auto& c : kPueCategories) {
    if (c.role == r) return c.category;
  }
  return 0;
}

const PueCategoryInfo* pue_category_info(int category) {
  for (const auto& c : kPueCategories) {
    if (c.category == category) return &c;
  }
  return nullptr;
}

namespace config_detail {
namespace {

using Millis = std::chrono::milliseconds;

// ASHRAE TC 9.9 (2021) thermal classes: recommended 18-27 degC for all; allowable per class.
struct AshraeClass {
  const char* name;
  double allowable_low, allowable_high;
};
constexpr AshraeClass kAshrae[] = {
    {"A1", 15, 32}, {"A2", 10, 35}, {"A3", 5, 40}, {"A4", 5, 45}, {"H1", 15, 25}};

std::optional<double> ratio_in(Diagnostics& d, MapReader& r, const char* key, double lo, double hi,
                               bool lo_open) {
  auto v = r.num(key);
  if (!v) return std::nullopt;
  if ((lo_open ? *v <= lo : *v < lo) || *v > hi) {
    d.error(r.get(key), r.what() + ": \"" + key + "\" must be in " + (lo_open ? "(" : "[") +
                            config_detail::format_number(lo) + ", " +
                            config_detail::format_number(hi) + "]");
    return std::nullopt;
  }
  return v;
}

void parse_overload_keys(Diagnostics& d, MapReader& r, OverloadOverride& o) {
  o.warning = ratio_in(d, r, "warning", 0, 2, true);
  o.critical = ratio_in(d, r, "critical", 0, 2, true);
  o.hysteresis = ratio_in(d, r, "hysteresis", 0, 0.5, false);
  o.hold = r.duration("hold");
}

void check_overload(Diagnostics& d, const YAML::Node& at, const std::string& what,
                    const OverloadSettings& o) {
  if (o.warning >= o.critical) {
    d.error(at, what + ": overload warning (" + format_number(o.warning) +
                    ") must be below critical (" + format_number(o.critical) + ")");
  }
  if (o.hysteresis >= o.warning) {
    d.error(at, what + ": overload hysteresis (" + format_number(o.hysteresis) +
                    ") must be below the warning threshold (" + format_number(o.warning) + ")");
  }
}

// [low, high] as a two-number list.
std::optional<std::pair<double, double>> range(Diagnostics& d, MapReader& r, const char* key) {
  if (!r.has(key)) return std::nullopt;
  const auto items = r.str_list(key);
  if (items.size() != 2) {
    d.error(r.get(key), r.what() + ": \"" + key + "\" must be a list [low, high] in degC");
    return std::nullopt;
  }
  double v[2];
  for (int i = 0; i < 2; ++i) {
    try {
      std::size_t pos = 0;
      v[i] = std::stod(items[static_cast<std::size_t>(i)].first, &pos);
      if (pos != items[static_cast<std::size_t>(i)].first.size()) throw std::invalid_argument("x");
    } catch (...) {
      d.error(items[static_cast<std::size_t>(i)].second,
              r.what() + ": \"" + key + "\" entries must be numbers");
      return std::nullopt;
    }
  }
  if (v[0] >= v[1]) {
    d.error(r.get(key), r.what() + ": \"" + key + "\" low must be below high");
    return std::nullopt;
  }
  return std::make_pair(v[0], v[1]);
}

void parse_inlet(Diagnostics& d, const YAML::Node& node, const std::string& what,
                 InletSettings& in) {
  MapReader r(d, node, what + " inlet",
              {"class", "recommended_c", "allowable_c", "hysteresis_c", "hold"});
  if (!r.ok()) return;
  if (auto c = r.str("class")) {
    const auto* cls = std::find_if(std::begin(kAshrae), std::end(kAshrae),
                                   [&](const AshraeClass& a) { return *c == a.name; });
    if (cls == std::end(kAshrae)) {
      d.error(r.get("class"),
              r.what() + ": unknown ASHRAE class \"" + *c + "\" (expected A1, A2, A3, A4, H1)");
    } else {
      in.ashrae_class = cls->name;
      in.allowable_low_c = cls->allowable_low;
      in.allowable_high_c = cls->allowable_high;
      // H1 (high-density) has a narrower recommended range: 18-22 degC.
      in.recommended_low_c = 18;
      in.recommended_high_c = in.ashrae_class == "H1" ? 22 : 27;
    }
  }
  if (auto v = range(d, r, "recommended_c"))
    std::tie(in.recommended_low_c, in.recommended_high_c) = *v;
  if (auto v = range(d, r, "allowable_c")) std::tie(in.allowable_low_c, in.allowable_high_c) = *v;
  if (auto v = ratio_in(d, r, "hysteresis_c", 0, 5, false)) in.hysteresis_c = *v;
  if (auto v = r.duration("hold")) in.hold = *v;
  if (in.allowable_low_c > in.recommended_low_c || in.allowable_high_c < in.recommended_high_c) {
    d.error(node, r.what() + ": the allowable range (" + format_number(in.allowable_low_c) + ".." +
                      format_number(in.allowable_high_c) +
                      " degC) must contain the recommended range (" +
                      format_number(in.recommended_low_c) + ".." +
                      format_number(in.recommended_high_c) + " degC)");
  }
}

// `ups`: the UPS alerts' thresholds and hold times.
void parse_ups_alerts(Diagnostics& d, const YAML::Node& node, const std::string& what,
                      UpsAlertSettings& u) {
  MapReader r(d, node, what + " ups", {"overload", "runtime", "on_battery", "on_bypass"});
  if (!r.ok()) return;
  if (r.has("overload")) {
    MapReader o(d, r.get("overload"), r.what() + " overload",
                {"warning", "critical", "hysteresis", "hold"});
    if (o.ok()) {
      OverloadOverride ov;
      parse_overload_keys(d, o, ov);
      u.overload = ov.apply(u.overload);
      check_overload(d, r.get("overload"), r.what(), u.overload);
    }
  }
  if (r.has("runtime")) {
    MapReader t(d, r.get("runtime"), r.what() + " runtime",
                {"warning", "critical", "hysteresis", "hold"});
    if (auto v = t.duration("warning")) u.runtime_warning = *v;
    if (auto v = t.duration("critical")) u.runtime_critical = *v;
    if (auto v = t.duration("hysteresis")) u.runtime_hysteresis = *v;
    if (auto v = t.duration("hold")) u.runtime_hold = *v;
    if (u.runtime_critical >= u.runtime_warning) {
      d.error(r.get("runtime"), t.what() + ": critical must be shorter than warning");
    }
  }
  for (const char* k : {"on_battery", "on_bypass"}) {
    if (!r.has(k)) continue;
    MapReader h(d, r.get(k), r.what() + " " + k, {"hold"});
    if (auto v = h.duration("hold")) {
      (std::string(k) == "on_battery" ? u.on_battery_hold : u.on_bypass_hold) = *v;
    }
  }
}

void parse_windows(Diagnostics& d, MapReader& r, std::vector<Millis>& out) {
  if (!r.has("pue_windows")) return;
  std::vector<Millis> ws;
  for (const auto& [s, at] : r.str_list("pue_windows")) {
    auto w = parse_duration(s);
    if (!w) {
      d.error(at,
              r.what() + ": pue_windows entry \"" + s + "\" must be a duration like 15m, 1h, 30d");
      continue;
    }
    const auto ms = w->count();
    if (ms % 10'000 != 0 || ms < 10'000 || ms > 31LL * 86'400'000) {
      d.error(at, r.what() + ": pue window \"" + s +
                      "\" must be a whole multiple of 10s, from 10s to 31 days");
      continue;
    }
    if (ms > 25LL * 3'600'000 && ms % 300'000 != 0) {
      d.error(at, r.what() + ": pue window \"" + s + "\" above 25h must be a multiple of 5m");
      continue;
    }
    if (std::find(ws.begin(), ws.end(), *w) != ws.end()) {
      d.error(at, r.what() + ": duplicate pue window \"" + s + "\"");
      continue;
    }
    ws.push_back(*w);
  }
  std::sort(ws.begin(), ws.end());
  out = std::move(ws);
}

}  // namespace

std::string format_number(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

FacilitySettings parse_facility_settings(Diagnostics& d, const YAML::Node& node,
                                         const std::string& what, const FacilitySettings& base) {
  FacilitySettings s = base;
  MapReader r(d, node, what,
              {"derating", "nominal_voltage_v", "nominal_power_factor", "overload", "failover",
               "inlet", "ups", "pue_min_coverage", "pue_windows", "capacity_reserve",
               "cabinet_equivalent_kw", "peak_window", "alert_retention", "pue_target"});
  if (!r.ok()) return s;
  if (auto v = ratio_in(d, r, "derating", 0, 1, true)) s.derating = *v;
  if (auto v = ratio_in(d, r, "nominal_voltage_v", 0, 1000, true)) s.nominal_voltage_v = *v;
  if (auto v = ratio_in(d, r, "nominal_power_factor", 0, 1, true)) s.nominal_power_factor = *v;
  if (r.has("overload")) {
    MapReader o(d, r.get("overload"), what + " overload",
                {"warning", "critical", "hysteresis", "hold"});
    if (o.ok()) {
      OverloadOverride ov;
      parse_overload_keys(d, o, ov);
      s.overload = ov.apply(s.overload);
      check_overload(d, r.get("overload"), what, s.overload);
    }
  }
  if (r.has("failover")) {
    MapReader f(d, r.get("failover"), what + " failover", {"hysteresis", "hold"});
    if (f.ok()) {
      if (auto v = ratio_in(d, f, "hysteresis", 0, 0.5, false)) s.failover.hysteresis = *v;
      if (auto v = f.duration("hold")) s.failover.hold = *v;
    }
  }
  if (r.has("inlet")) parse_inlet(d, r.get("inlet"), what, s.inlet);
  if (r.has("ups")) parse_ups_alerts(d, r.get("ups"), what, s.ups);
  if (auto v = ratio_in(d, r, "pue_min_coverage", 0, 1, true)) s.pue_min_coverage = *v;
  parse_windows(d, r, s.pue_windows);
  if (auto v = ratio_in(d, r, "capacity_reserve", 0, 0.9, false)) s.capacity_reserve = *v;
  if (auto v = ratio_in(d, r, "cabinet_equivalent_kw", 0, 1000, true))
    s.cabinet_equivalent_w = *v * 1000;
  if (auto v = r.duration("peak_window")) s.peak_window = *v;
  if (auto v = r.duration("alert_retention")) s.alert_retention = *v;
  if (auto v = ratio_in(d, r, "pue_target", 1, 5, false)) s.pue_target = *v;
  return s;
}

std::vector<CabinetClass> parse_cabinet_classes(Diagnostics& d, const YAML::Node& node) {
  std::vector<CabinetClass> out;
  if (!node.IsSequence()) {
    d.error(node, "cabinet_classes: must be a list of classes");
    return out;
  }
  std::unordered_set<std::string> ids;
  for (const auto& cn : node) {
    MapReader r(d, cn, "cabinet class",
                {"id", "rated_kw", "breaker", "feeds", "derating", "overload"});
    if (!r.ok()) continue;
    CabinetClass c;
    auto id = r.str("id", true);
    if (!id) continue;
    c.id = *id;
    r.set_what("cabinet class \"" + c.id + "\"");
    if (!ids.insert(c.id).second) d.error(r.get("id"), r.what() + ": duplicate class id");
    if (r.has("rated_kw") && r.has("breaker")) {
      d.error(r.key_node("breaker"), r.what() + ": give either rated_kw or breaker, not both");
    }
    if (auto v = ratio_in(d, r, "rated_kw", 0, 1000, true)) c.rated_w = *v * 1000;
    if (r.has("breaker")) {
      MapReader br(d, r.get("breaker"), r.what() + " breaker", {"amps", "volts", "phases"});
      if (br.ok()) {
        c.breaker_amps = ratio_in(d, br, "amps", 0, 10000, true);
        c.breaker_volts = ratio_in(d, br, "volts", 0, 100000, true);
        if (!br.has("amps") || !br.has("volts")) {
          d.error(r.get("breaker"), r.what() + ": breaker needs amps and volts");
        }
        c.breaker_phases = 1;
        if (auto p = br.integer("phases", 1, 3)) {
          if (*p == 2) d.error(br.get("phases"), r.what() + ": breaker phases must be 1 or 3");
          c.breaker_phases = int(*p);
        }
      }
    }
    if (r.has("feeds")) {
      std::vector<std::string> feeds;
      for (auto& [f, at] : r.str_list("feeds")) {
        if (std::find(feeds.begin(), feeds.end(), f) != feeds.end()) {
          d.error(at, r.what() + ": duplicate feed \"" + f + "\"");
        }
        feeds.push_back(f);
      }
      if (feeds.empty()) d.error(r.get("feeds"), r.what() + ": at least one feed is needed");
      c.feeds = std::move(feeds);
    }
    c.derating = ratio_in(d, r, "derating", 0, 1, true);
    if (r.has("overload")) {
      MapReader o(d, r.get("overload"), r.what() + " overload",
                  {"warning", "critical", "hysteresis", "hold"});
      if (o.ok()) parse_overload_keys(d, o, c.overload);
    }
    out.push_back(std::move(c));
  }
  return out;
}

std::vector<PlanStep> parse_build_out_plan(Diagnostics& d, const YAML::Node& node,
                                           const std::string& what) {
  std::vector<PlanStep> out;
  if (!node.IsSequence()) {
    d.error(node, what + ": build_out_plan must be a list of {date: YYYY-MM-DD, powered: N}");
    return out;
  }
  static const std::regex date_re(R"(^([0-9]{4})-([0-9]{2})-([0-9]{2})$)");
  for (const auto& pn : node) {
    MapReader r(d, pn, what + " build_out_plan", {"date", "powered"});
    if (!r.ok()) continue;
    PlanStep step;
    auto date = r.str("date", true);
    auto powered = r.integer("powered", 0, 1'000'000, true);
    if (!date || !powered) continue;
    std::smatch m;
    std::chrono::year_month_day ymd{};
    if (std::regex_match(*date, m, date_re)) {
      ymd = std::chrono::year_month_day{std::chrono::year(std::stoi(m[1].str())),
                                        std::chrono::month(unsigned(std::stoi(m[2].str()))),
                                        std::chrono::day(unsigned(std::stoi(m[3].str())))};
    }
    if (!ymd.ok()) {
      d.error(r.get("date"),
              r.what() + ": date \"" + *date + "\" must be a calendar date YYYY-MM-DD");
      continue;
    }
    // The range report times have (docs/reports.md): a plan date is compared with nanosecond
    // time points, which hold 1678..2262 only (year 1013 overflowed: found by fuzzing).
    if (ymd.year() < std::chrono::year(1970) || ymd.year() >= std::chrono::year(2200)) {
      d.error(r.get("date"),
              r.what() + ": date \"" + *date + "\" is out of range (1970-01-01 to 2199-12-31)");
      continue;
    }
    step.date = std::chrono::sys_days(ymd);
    step.date_text = *date;
    step.powered = int(*powered);
    if (!out.empty() && step.date <= out.back().date) {
      d.error(r.get("date"), r.what() + ": dates must be in ascending order (" + *date +
                                 " is not after " + out.back().date_text + ")");
      continue;
    }
    out.push_back(step);
  }
  return out;
}

void resolve_cabinet(Diagnostics& d, MapReader& cr, const Config& cfg, const Site& site,
                     Cabinet& cab) {
  const CabinetClass* cls = nullptr;
  if (auto name = cr.str("class")) {
    for (const auto& c : cfg.cabinet_classes) {
      if (c.id == *name) cls = &c;
    }
    if (!cls) {
      std::string list;
      for (const auto& c : cfg.cabinet_classes) list += (list.empty() ? "" : ", ") + c.id;
      d.error(cr.get("class"), cr.what() + ": unknown cabinet class \"" + *name + "\"" +
                                   (list.empty() ? " (no cabinet_classes are defined)"
                                                 : " (defined: " + list + ")"));
    } else {
      cab.cabinet_class = cls->id;
    }
  }
  if (cls && !cr.has("rated_kw") && !cr.has("breaker")) {
    if (cls->rated_w) cab.rated_w = *cls->rated_w;
    if (cls->breaker_amps && cls->breaker_volts) {
      Breaker b{*cls->breaker_amps, *cls->breaker_volts, cls->breaker_phases.value_or(1)};
      cab.breaker = b;
      cab.rated_w = b.phases == 3 ? std::sqrt(3.0) * b.volts * b.amps : b.volts * b.amps;
    }
  }
  if (cls && cls->feeds && !cr.has("feeds")) cab.feeds = *cls->feeds;
  cab.feed_capacity_w = cab.rated_w;
  if (cab.breaker) {
    const Breaker& b = *cab.breaker;
    cab.feed_capacity_w = b.phases == 3 ? std::sqrt(3.0) * b.volts * b.amps : b.volts * b.amps;
  }
  cab.derating = cls && cls->derating ? *cls->derating : site.facility.derating;
  cab.overload = cls ? cls->overload.apply(site.facility.overload) : site.facility.overload;
  if (cls && (cls->overload.warning || cls->overload.critical || cls->overload.hysteresis)) {
    check_overload(d, cr.get("class"), cr.what() + " (class \"" + cls->id + "\")", cab.overload);
  }
  if (auto u = cr.integer("rack_units", 1, 100)) cab.rack_units = int(*u);
}

void parse_device_facility(Diagnostics& d, MapReader& dr, const Site& site, Device& dev) {
  // Whether the device's kind has these keys at all is checked with the kind's other keys.
  dev.nominal_voltage_v = site.facility.nominal_voltage_v;
  dev.nominal_power_factor = site.facility.nominal_power_factor;
  if (auto v = ratio_in(d, dr, "nominal_voltage_v", 0, 1000, true)) dev.nominal_voltage_v = *v;
  if (auto v = ratio_in(d, dr, "nominal_power_factor", 0, 1, true)) dev.nominal_power_factor = *v;
  if (auto v = ratio_in(d, dr, "capacity_kw", 0, 100000, true)) dev.capacity_w = *v * 1000;
  if (auto v = ratio_in(d, dr, "rated_kw", 0, 100000, true)) dev.rated_w = *v * 1000;
}

void check_profile_points(Diagnostics& d, MapReader& dr, const Device& dev) {
  const DeviceKindInfo& kind = kind_info(dev.kind);
  if (!dev.profile || kind.required_points.empty()) return;
  const Profile& p = *dev.profile;
  const bool served =
      std::any_of(kind.required_points.begin(), kind.required_points.end(), [&p](const auto& set) {
        return std::all_of(set.begin(), set.end(), [&p](const char* n) { return p.has_point(n); });
      });
  if (!served) {
    d.error(dr.get("profile"), dr.what() + ": profile \"" + dev.profile_name +
                                   "\" has no point " + kind.missing_points + ", which a " +
                                   kind.name + " needs");
  }
}

void check_site_facility(Diagnostics& d, MapReader& sr, const Site& site) {
  for (const auto& step : site.build_out_plan) {
    if (step.powered > site.planned_cabinets) {
      d.error(sr.get("build_out_plan"), sr.what() + ": build_out_plan " + step.date_text +
                                            " plans " + std::to_string(step.powered) +
                                            " powered cabinets, more than planned_cabinets (" +
                                            std::to_string(site.planned_cabinets) + ")");
    }
  }
}

}  // namespace config_detail
}  // namespace facility
