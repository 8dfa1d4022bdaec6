// Renderers of a capacity report. Text, Markdown, HTML and CSV are rendered from one document
// model (sections of labelled figures and tables), so the formats cannot disagree; JSON is
// rendered from the Report itself, in base units (W, J -> kWh is the only exception, s).
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "daemon/http/http.h"
#include "daemon/reports/report.h"

namespace facility {
namespace {

std::string num(double v, int digits) {
  if (std::isnan(v)) return "n/a";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}
std::string kw(double w) { return num(w / 1000, 1); }
std::string pct(double ratio) { return std::isnan(ratio) ? "n/a" : num(ratio * 100, 1) + " %"; }
std::string money(double v) { return num(v, 0); }

std::string duration(double s) {
  if (std::isnan(s)) return "n/a";
  const auto t = std::llround(s);
  char buf[64];
  if (t >= 86400) {
    std::snprintf(buf, sizeof buf, "%lldd %lldh %02lldm", t / 86400, t % 86400 / 3600, t % 3600 / 60);
  } else if (t >= 3600) {
    std::snprintf(buf, sizeof buf, "%lldh %02lldm", t / 3600, t % 3600 / 60);
  } else {
    std::snprintf(buf, sizeof buf, "%lldm %02llds", t / 60, t % 60);
  }
  return buf;
}

struct Item {
  std::string key;    // machine name (CSV "quantity")
  std::string label;  // for people
  std::string value;  // as shown
  double raw = kNaN;  // for CSV
  std::string unit;   // unit of `raw` in CSV
};
struct Table {
  std::string key, title;
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
};
struct Section {
  std::string key, title;
  std::vector<Item> items;
  std::vector<Table> tables;
  std::vector<std::string> notes;
};

Item item(std::string key, std::string label, std::string shown, double raw, std::string unit) {
  return {std::move(key), std::move(label), std::move(shown), raw, std::move(unit)};
}
Item kw_item(std::string key, std::string label, double w) {
  return item(std::move(key), std::move(label), kw(w) + " kW", w / 1000, "kW");
}
Item count_item(std::string key, std::string label, double n) {
  return item(std::move(key), std::move(label), num(n, 0), n, "cabinets");
}
Item ratio_item(std::string key, std::string label, double r) {
  return item(std::move(key), std::move(label), pct(r), r, "ratio");
}
Item money_item(std::string key, std::string label, double v, const std::string& currency) {
  return item(std::move(key), std::move(label), std::isnan(v) ? "n/a" : money(v) + " " + currency,
              v, currency);
}

// The powered count is taken where every cabinet's state was known; say so when that is not
// the last row, or never.
std::string powered_note(const Report& r) {
  if (!r.powered) {
    return r.rows > 0 ? "Powered cabinets: n/a, no recorded interval had every cabinet's powered "
                        "state known."
                      : "";
  }
  if (r.powered_at == r.last_row_t) return "";
  return "Powered cabinets are counted at " + format_utc(r.powered_at) +
         ", the last time every cabinet's powered state was known (later data had stale "
         "cabinets, whose count is only a lower bound).";
}

// How much of the period the history covers, and its gaps.
Section coverage_section(const Report& r) {
  Section s{"coverage", "Data coverage", {}, {}, {}};
  s.items.push_back(ratio_item("recorded", "Recorded (of the period)", r.coverage_recorded));
  s.items.push_back(ratio_item("recorded_since_history_start",
                               "Recorded since the history starts (the daemon was running)",
                               r.coverage_recorded_history));
  if (r.before_history_s > 0) {
    s.items.push_back(item("before_history", "Before the history starts (not recorded)",
                           duration(r.before_history_s), r.before_history_s, "s"));
  }
  s.items.push_back(ratio_item("cabinet_power", "Cabinet power known (cabinet-time)",
                               r.coverage_cabinet_power));
  s.items.push_back(ratio_item("capacity", "Every cabinet's power known (site sum)",
                               r.coverage_capacity));
  s.items.push_back(ratio_item("it_power", "IT power known", r.coverage_it));
  s.items.push_back(ratio_item("facility_power", "Facility power known", r.coverage_facility));
  s.items.push_back(ratio_item("pue", "IT and facility power both known (PUE)", r.coverage_pue));
  s.items.push_back(ratio_item("cooling_headroom", "Cooling headroom known", r.coverage_cooling));
  s.items.push_back(item("gaps", "Gaps (no data, since the history starts)",
                         std::to_string(r.gap_count) + ", " + duration(r.gap_total_s) + " in total",
                         r.gap_total_s, "s"));
  Table t{"gaps", "Longest gaps", {"from", "length"}, {}};
  for (const auto& g : r.gaps) t.rows.push_back({format_utc(g.start), duration(double(g.seconds))});
  if (!t.rows.empty()) s.tables.push_back(t);
  if (r.history_start && *r.history_start > r.requested_from && *r.history_start < r.to) {
    s.notes.push_back("The history starts at " + format_utc(*r.history_start) +
                      ", after the start of the requested period (" + format_utc(r.requested_from) +
                      "): \"recorded since the history starts\" is of the " +
                      duration(r.history_period_s) + " since then.");
  }
  if (r.coverage_recorded < 0.999) {
    s.notes.push_back("Figures below are computed over the recorded time only; nothing is "
                      "extrapolated into the gaps.");
  }
  return s;
}

// Cabinet counts, rated and measured power, headroom to rated and to the reserve.
Section capacity_section(const Report& r) {
  const std::string eq_label = num(r.equivalent_w / 1000, 1) + " kW";
  const double eq = r.equivalent_w;
  const double powered = r.powered ? double(*r.powered) : kNaN;
  const std::string pnote = powered_note(r);
  Section s{"capacity", "Capacity", {}, {}, {}};
  s.items.push_back(count_item("planned", "Cabinets planned", r.planned));
  s.items.push_back(count_item("delivered", "Cabinets delivered", r.delivered));
  s.items.push_back(count_item("powered", "Cabinets powered (end of period)", powered));
  s.items.push_back(count_item("powered_max", "Cabinets powered (most at once)", r.powered_max));
  s.items.push_back(count_item("sold", "Cabinets sold", r.sold));
  s.items.push_back(count_item("internal", "Cabinets internal", r.internal));
  s.items.push_back(count_item("free", "Cabinets free", r.free));
  s.items.push_back(kw_item("rated", "Rated power (delivered)", r.rated_w));
  s.items.push_back(kw_item("reserve", "Reserve (" + pct(r.reserve_ratio) + " of rated)", r.reserve_w));
  s.items.push_back(kw_item("average", "Measured average (sum of cabinets)", r.avg_w));
  s.items.push_back(kw_item("p95", "Measured p95", r.p95_w));
  s.items.push_back(kw_item("peak", "Measured peak", r.peak_w));
  s.items.push_back(kw_item("it_average", "IT power average (site IT term)", r.it_avg_w));
  s.items.push_back(kw_item("it_p95", "IT power p95 (site IT term)", r.it_p95_w));
  s.items.push_back(kw_item("it_peak", "IT power peak (site IT term)", r.it_peak_w));
  Table t{"headroom", "Headroom", {"", "kW", eq_label + " cabinets"}, {}};
  auto row = [&](const std::string& label, double w) {
    t.rows.push_back({label, kw(w), num(w / eq, 1)});
  };
  row("to rated, at p95", r.headroom_p95_w);
  row("to rated, at peak", r.headroom_peak_w);
  row("to reserve, at p95", r.headroom_reserve_p95_w);
  row("to reserve, at peak", r.headroom_reserve_peak_w);
  s.tables.push_back(t);
  if (!pnote.empty()) s.notes.push_back(pnote);
  return s;
}

// The utilisation bands' names in JSON (the numbers are the default thresholds).
constexpr const char* kBandNames[] = {"below_40", "40_to_80", "80_to_95", "95_and_above"};

// Utilisation bands, the top cabinets, overload incidents, negative failover headroom.
Section cabinets_section(const Report& r) {
  Section s{"cabinets", "Cabinets", {}, {}, {}};
  // 80 % and 95 % are the default overload warning and critical; each cabinet is banded by its
  // own (its class's), like the histogram above.
  const char* labels[] = {"< 40 % of rated at p95", "40 % to warning (80 % by default)",
                          "warning to critical (80-95 % by default)",
                          ">= critical (95 % by default)"};
  for (int i = 0; i < 4; ++i)
    s.items.push_back(count_item(kBandNames[i], labels[i], r.bands[std::size_t(i)]));
  s.items.push_back(count_item("no_data", "In use, no power data", r.bands_no_data));
  s.items.push_back(count_item("overload_incidents", "Overload incidents", r.incidents));
  s.items.push_back(item("overload_duration", "Overload duration (all cabinets)",
                         duration(r.incident_s), r.incident_s, "s"));
  s.items.push_back(count_item("failover_negative", "Cabinets with negative failover headroom",
                               double(r.failover_negative.size())));
  Table top{"top", "Top 10 by peak utilisation",
            {"cabinet", "room", "status", "rated kW", "peak kW", "peak util", "p95 kW",
             "p95 util", "incidents"},
            {}};
  for (auto i : r.top) {
    const auto& c = r.cabinets[i];
    top.rows.push_back({c.id, c.room, c.status, kw(c.rated_w), kw(c.peak_w), pct(c.peak_util),
                        kw(c.p95_w), pct(c.p95_util), std::to_string(c.incidents)});
  }
  s.tables.push_back(top);
  Table fo{"failover", "Negative failover headroom (one feed carrying the whole cabinet; worst feed or phase)",
           {"cabinet", "room", "lowest headroom kW", "time negative"}, {}};
  for (auto i : r.failover_negative) {
    const auto& c = r.cabinets[i];
    fo.rows.push_back({c.id, c.room, kw(c.failover_min_w), duration(c.failover_neg_s)});
  }
  if (!fo.rows.empty()) s.tables.push_back(fo);
  return s;
}

// Stranded power and idle cabinets, with their cost.
Section stranded_section(const Report& r) {
  const std::string eq_label = num(r.equivalent_w / 1000, 1) + " kW";
  const double eq = r.equivalent_w;
  Section s{"stranded", "Stranded power and idle cabinets", {}, {}, {}};
  // Cabinets in use without data are not counted: the sum is then a lower bound.
  const std::string at_least = r.stranded_unknown > 0 && !std::isnan(r.stranded_w) ? ">= " : "";
  Item stranded = kw_item("stranded", "Stranded power (rated - p95, powered or sold cabinets)",
                          r.stranded_w);
  stranded.value = at_least + stranded.value;
  s.items.push_back(stranded);
  s.items.push_back(item("stranded_equivalent", "Stranded, in " + eq_label + " cabinets",
                         at_least + num(r.stranded_w / eq, 1), r.stranded_w / eq, "cabinets"));
  s.items.push_back(count_item("stranded_cabinets", "Cabinets counted", r.stranded_cabinets));
  s.items.push_back(money_item("stranded_cost_month", "Stranded cost per month",
                               r.stranded_cost_month, r.currency));
  s.items.push_back(money_item("stranded_cost_period", "Stranded cost over the period (" +
                                                           num(r.months, 2) + " months)",
                               r.stranded_cost_period, r.currency));
  s.items.push_back(count_item("idle", "Idle delivered cabinets (never powered)", r.idle_cabinets));
  s.items.push_back(kw_item("idle_rated", "Rated power of idle cabinets", r.idle_rated_w));
  s.items.push_back(money_item("idle_cost_month", "Idle cabinets' cost per month",
                               r.idle_cost_month, r.currency));
  s.items.push_back(money_item("idle_cost_period", "Idle cabinets' cost over the period",
                               r.idle_cost_period, r.currency));
  if (!std::isnan(r.idle_sales_forgone_period)) {
    s.items.push_back(money_item("idle_sales_forgone", "Sales forgone on unsold idle cabinets",
                                 r.idle_sales_forgone_period, r.currency));
  }
  s.notes.push_back("Price basis: " + r.price_basis + ".");
  if (r.stranded_unknown > 0) {
    s.notes.push_back(std::to_string(r.stranded_unknown) +
                      " cabinets in use had no power data and are not counted: stranded power "
                      "and its cost are lower bounds.");
  }
  return s;
}

// Occupancy against the build-out plan, and the linear forecasts.
Section plan_section(const Report& r) {
  const double powered = r.powered ? double(*r.powered) : kNaN;
  const std::string pnote = powered_note(r);
  Section s{"plan", "Occupancy against the build-out plan", {}, {}, {}};
  s.items.push_back(item("plan_at_end", "Planned powered cabinets (end of period)",
                         r.plan_at_end ? std::to_string(*r.plan_at_end) : "no plan",
                         r.plan_at_end ? double(*r.plan_at_end) : kNaN, "cabinets"));
  s.items.push_back(count_item("powered", "Powered cabinets (end of period)", powered));
  s.items.push_back(ratio_item("attainment", "Attainment (powered / planned)", r.attainment));
  if (!pnote.empty()) s.notes.push_back(pnote);
  Table f{"forecast", "Linear forecast", {"quantity", "limit", "trend per day", "reached on", "status"}, {}};
  for (const auto& fc : r.forecasts) {
    const bool w = fc.unit == "W";
    f.rows.push_back({fc.quantity, w ? kw(fc.limit) + " kW" : num(fc.limit, 0),
                      w ? kw(fc.slope_per_day) + " kW" : num(fc.slope_per_day, 2),
                      fc.date ? format_utc(*fc.date, false) : "-", fc.status});
  }
  s.tables.push_back(f);
  Table d{"days", "Planned vs actual by day", {"day", "planned", "actual (most powered)", "peak kW"}, {}};
  const std::size_t step = std::max<std::size_t>(1, (r.days.size() + 59) / 60);
  for (std::size_t i = 0; i < r.days.size(); i += step) {
    const auto& p = r.days[i];
    d.rows.push_back({format_utc(p.day, false), p.planned ? std::to_string(*p.planned) : "-",
                      p.actual ? std::to_string(*p.actual) : "n/a", kw(p.peak_w)});
  }
  s.tables.push_back(d);
  if (step > 1) s.notes.push_back("Every " + std::to_string(step) + "th day is listed.");
  s.notes.push_back("Limits: powered cabinets = planned cabinets; cabinet power = rated power "
                    "of the delivered cabinets minus the reserve.");
  return s;
}

// Energy and PUE over the period, and the cooling headroom.
Section energy_section(const Report& r) {
  Section s{"energy", "Energy and PUE", {}, {}, {}};
  s.items.push_back(item("it_energy", "IT energy", num(r.it_kwh, 1) + " kWh", r.it_kwh, "kWh"));
  s.items.push_back(item("facility_energy", "Facility energy", num(r.facility_kwh, 1) + " kWh",
                         r.facility_kwh, "kWh"));
  s.items.push_back(item("cooling_energy", "Cooling energy", num(r.cooling_kwh, 1) + " kWh",
                         r.cooling_kwh, "kWh"));
  s.items.push_back(item("pue", "PUE (energy-weighted), " + r.pue_category_name, num(r.pue, 3),
                         r.pue, "ratio"));
  s.items.push_back(kw_item("cooling_headroom_min", "Cooling N+1 headroom, worst room, lowest",
                            r.cooling_headroom_min_w));
  s.items.push_back(kw_item("cooling_headroom_end", "Cooling N+1 headroom, worst room, at the end",
                            r.cooling_headroom_end_w));
  s.notes.push_back("PUE = facility energy / IT energy over the time both were measured (" +
                    pct(r.coverage_pue) + " of the period).");
  return s;
}

std::vector<Section> document(const Report& r) {
  return {coverage_section(r), capacity_section(r), cabinets_section(r),
          stranded_section(r), plan_section(r),     energy_section(r)};
}

std::string header_line(const Report& r) {
  return "Capacity report: " + r.site + " - " + r.site_name + " (" + r.ownership + ")";
}
std::string period_line(const Report& r) {
  return "Period: " + format_utc(r.from) + " to " + format_utc(r.to) + " (" +
         duration(r.period_s) + "), resolution " + (r.resolution_s == 60 ? "1 minute" : "1 hour") +
         "; generated " + format_utc(r.generated_at);
}

// How the period covered differs from the one requested, and why; "" when it does not.
// (A difference of seconds, which the times below do not show, is not one.)
std::string period_note(const Report& r) {
  if (format_utc(r.requested_from) == format_utc(r.from) &&
      format_utc(r.requested_to) == format_utc(r.to)) {
    return "";
  }
  std::vector<std::string> why;
  if (r.from > r.requested_from) why.emplace_back("the default period starts with the history");
  const char* unit = r.resolution_s == 60 ? "minute" : "hour";
  if (r.from < r.requested_from) why.push_back(std::string("from the start of the ") + unit);
  if (r.to > r.requested_to) why.push_back(std::string("to the end of the ") + unit);
  if (r.requested_to > r.generated_at) {
    why.emplace_back("ending when the report was generated: nothing later is recorded");
  }
  std::string s = "Requested " + format_utc(r.requested_from) + " to " +
                  format_utc(r.requested_to) + "; covered " + format_utc(r.from) + " to " +
                  format_utc(r.to);
  for (std::size_t i = 0; i < why.size(); ++i) s += (i ? "; " : " (") + why[i];
  return s + (why.empty() ? "." : ").");
}

// The lines under the title: the period, how it differs from the request, what to do.
std::vector<std::string> head_lines(const Report& r) {
  std::vector<std::string> v{period_line(r)};
  if (auto n = period_note(r); !n.empty()) v.push_back(n);
  if (!r.hint.empty()) v.push_back("No data: " + r.hint);
  return v;
}

std::string render_text(const Report& r, const std::vector<Section>& doc) {
  std::ostringstream os;
  os << header_line(r) << "\n";
  for (const auto& l : head_lines(r)) os << l << "\n";
  for (const auto& s : doc) {
    os << "\n" << s.title << "\n" << std::string(s.title.size(), '-') << "\n";
    std::size_t w = 0;
    for (const auto& i : s.items) w = std::max(w, i.label.size());
    for (const auto& i : s.items) {
      os << "  " << i.label << std::string(w - i.label.size() + 2, ' ') << i.value << "\n";
    }
    for (const auto& t : s.tables) {
      if (t.rows.empty()) continue;
      os << "\n  " << t.title << "\n";
      std::vector<std::size_t> cw(t.header.size(), 0);
      for (std::size_t c = 0; c < t.header.size(); ++c) cw[c] = t.header[c].size();
      for (const auto& row : t.rows)
        for (std::size_t c = 0; c < row.size() && c < cw.size(); ++c) cw[c] = std::max(cw[c], row[c].size());
      auto line = [&](const std::vector<std::string>& row) {
        os << "   ";
        for (std::size_t c = 0; c < row.size(); ++c) {
          os << " " << row[c] << std::string(cw[c] - row[c].size(), ' ');
        }
        os << "\n";
      };
      line(t.header);
      for (const auto& row : t.rows) line(row);
    }
    for (const auto& n : s.notes) os << "  Note: " << n << "\n";
  }
  return os.str();
}

std::string md_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '|') o += "\\|";
    else o += c;
  }
  return o;
}

std::string render_markdown(const Report& r, const std::vector<Section>& doc) {
  std::ostringstream os;
  os << "# " << header_line(r) << "\n";
  for (const auto& l : head_lines(r)) os << "\n" << l << "\n";
  for (const auto& s : doc) {
    os << "\n## " << s.title << "\n\n| | |\n|---|---:|\n";
    for (const auto& i : s.items) os << "| " << md_escape(i.label) << " | " << i.value << " |\n";
    for (const auto& t : s.tables) {
      if (t.rows.empty()) continue;
      os << "\n**" << t.title << "**\n\n|";
      for (const auto& h : t.header) os << " " << md_escape(h) << " |";
      os << "\n|";
      for (std::size_t c = 0; c < t.header.size(); ++c) os << (c ? "---:|" : "---|");
      os << "\n";
      for (const auto& row : t.rows) {
        os << "|";
        for (const auto& cell : row) os << " " << md_escape(cell) << " |";
        os << "\n";
      }
    }
    for (const auto& n : s.notes) os << "\n> " << n << "\n";
  }
  return os.str();
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string o = "\"";
  for (char c : s) {
    if (c == '"') o += '"';
    o += c;
  }
  return o + "\"";
}

std::string raw(double v) {
  if (std::isnan(v)) return "";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  return buf;
}

// Long format: one figure per line, so any spreadsheet or script can pick what it needs.
std::string render_csv(const Report& r, const std::vector<Section>& doc) {
  std::ostringstream os;
  os << "section,subject,quantity,value,unit\n";
  auto line = [&](const std::string& sec, const std::string& subj, const std::string& q,
                  const std::string& v, const std::string& u) {
    os << csv_field(sec) << "," << csv_field(subj) << "," << csv_field(q) << "," << csv_field(v)
       << "," << csv_field(u) << "\n";
  };
  line("report", r.site, "from", std::to_string(r.from), "unix_seconds");
  line("report", r.site, "to", std::to_string(r.to), "unix_seconds");
  line("report", r.site, "resolution", std::to_string(r.resolution_s), "s");
  for (const auto& s : doc) {
    for (const auto& i : s.items) line(s.key, r.site, i.key, raw(i.raw), i.unit);
  }
  for (const auto& c : r.cabinets) {
    line("cabinet", c.id, "rated", raw(c.rated_w / 1000), "kW");
    line("cabinet", c.id, "average", raw(c.avg_w / 1000), "kW");
    line("cabinet", c.id, "p95", raw(c.p95_w / 1000), "kW");
    line("cabinet", c.id, "peak", raw(c.peak_w / 1000), "kW");
    line("cabinet", c.id, "p95_utilisation", raw(c.p95_util), "ratio");
    line("cabinet", c.id, "peak_utilisation", raw(c.peak_util), "ratio");
    line("cabinet", c.id, "overload_incidents", std::to_string(c.incidents), "count");
    line("cabinet", c.id, "overload_duration", raw(c.overload_s), "s");
    line("cabinet", c.id, "failover_headroom_min", raw(c.failover_min_w / 1000), "kW");
    line("cabinet", c.id, "powered_time", raw(c.powered_s), "s");
  }
  for (const auto& d : r.days) {
    const std::string day = format_utc(d.day, false);
    if (d.planned) line("plan", day, "planned", std::to_string(*d.planned), "cabinets");
    if (d.actual) line("plan", day, "actual", std::to_string(*d.actual), "cabinets");
  }
  for (const auto& f : r.forecasts) {
    line("forecast", f.quantity, "date", f.date ? format_utc(*f.date, false) : "", f.status);
  }
  return os.str();
}

nlohmann::json jnum(double v) { return std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v); }

nlohmann::json json_site(const Report& r) {
  using nlohmann::json;
  return {{"id", r.site}, {"name", r.site_name}, {"ownership", r.ownership}};
}

nlohmann::json json_period(const Report& r) {
  using nlohmann::json;
  return {{"from", r.from},
          {"to", r.to},
          {"from_utc", format_utc(r.from)},
          {"to_utc", format_utc(r.to)},
          {"requested_from", r.requested_from},
          {"requested_to", r.requested_to},
          {"history_start", r.history_start ? json(*r.history_start) : json(nullptr)},
          {"history_end", r.history_end ? json(*r.history_end) : json(nullptr)},
          {"resolution_s", r.resolution_s},
          {"rows", r.rows},
          {"generated_at", r.generated_at}};
}

nlohmann::json json_coverage(const Report& r) {
  using nlohmann::json;
  json gaps = json::array();
  for (const auto& g : r.gaps) gaps.push_back({{"start", g.start}, {"seconds", g.seconds}});
  return {{"period_s", r.period_s},
          {"recorded_s", r.recorded_s},
          {"recorded", r.coverage_recorded},
          {"history_period_s", r.history_period_s},
          {"before_history_s", r.before_history_s},
          {"recorded_since_history_start", jnum(r.coverage_recorded_history)},
          {"hint", r.hint.empty() ? json(nullptr) : json(r.hint)},
          {"cabinet_power", r.coverage_cabinet_power},
          {"capacity", r.coverage_capacity},
          {"it_power", r.coverage_it},
          {"facility_power", r.coverage_facility},
          {"pue", r.coverage_pue},
          {"cooling_headroom", r.coverage_cooling},
          {"gap_count", r.gap_count},
          {"gap_total_s", r.gap_total_s},
          {"longest_gaps", gaps}};
}

nlohmann::json json_capacity(const Report& r) {
  using nlohmann::json;
  return {
      {"cabinets",
       {{"planned", r.planned},
        {"delivered", r.delivered},
        {"powered", r.powered ? json(*r.powered) : json(nullptr)},
        {"powered_at", r.powered ? json(format_utc(r.powered_at)) : json(nullptr)},
        {"powered_max", r.powered_max},
        {"sold", r.sold},
        {"internal", r.internal},
        {"free", r.free}}},
      {"rated_w", r.rated_w},
      {"reserve_ratio", r.reserve_ratio},
      {"reserve_w", r.reserve_w},
      {"cabinet_equivalent_w", r.equivalent_w},
      {"average_w", jnum(r.avg_w)},
      {"p95_w", jnum(r.p95_w)},
      {"peak_w", jnum(r.peak_w)},
      {"it_average_w", jnum(r.it_avg_w)},
      {"it_p95_w", jnum(r.it_p95_w)},
      {"it_peak_w", jnum(r.it_peak_w)},
      {"headroom_w",
       {{"rated_at_p95", jnum(r.headroom_p95_w)},
        {"rated_at_peak", jnum(r.headroom_peak_w)},
        {"reserve_at_p95", jnum(r.headroom_reserve_p95_w)},
        {"reserve_at_peak", jnum(r.headroom_reserve_peak_w)}}},
      {"headroom_equivalent_cabinets",
       {{"rated_at_p95", jnum(r.headroom_p95_w / r.equivalent_w)},
        {"rated_at_peak", jnum(r.headroom_peak_w / r.equivalent_w)},
        {"reserve_at_p95", jnum(r.headroom_reserve_p95_w / r.equivalent_w)},
        {"reserve_at_peak", jnum(r.headroom_reserve_peak_w / r.equivalent_w)}}}};
}

nlohmann::json json_cabinets(const Report& r) {
  using nlohmann::json;
  json cabs = json::array();
  for (const auto& c : r.cabinets) {
    cabs.push_back({{"id", c.id},
                    {"room", c.room},
                    {"status", c.status},
                    {"rated_w", c.rated_w},
                    {"average_w", jnum(c.avg_w)},
                    {"p95_w", jnum(c.p95_w)},
                    {"peak_w", jnum(c.peak_w)},
                    {"p95_utilization", jnum(c.p95_util)},
                    {"peak_utilization", jnum(c.peak_util)},
                    {"known_s", c.known_s},
                    {"powered_s", c.powered_s},
                    {"overload_incidents", c.incidents},
                    {"overload_s", c.overload_s},
                    {"failover_headroom_min_w", jnum(c.failover_min_w)},
                    {"failover_negative_s", c.failover_neg_s},
                    {"in_use", c.in_use},
                    {"idle", c.idle},
                    {"overload_warning", c.warning},
                    {"overload_critical", c.critical},
                    {"band", c.band >= 0 ? json(kBandNames[c.band]) : json(nullptr)}});
  }
  json by_band = json::array();
  for (const auto& bin : r.histogram_bands) {
    json b = json::object();
    for (std::size_t k = 0; k < 4; ++k) b[kBandNames[k]] = bin[k];
    by_band.push_back(b);
  }
  auto ids = [&](const std::vector<std::size_t>& v) {
    json a = json::array();
    for (auto i : v) a.push_back(r.cabinets[i].id);
    return a;
  };
  return {{"bands_at_p95",
           {{"below_40", r.bands[0]},
            {"40_to_80", r.bands[1]},
            {"80_to_95", r.bands[2]},
            {"95_and_above", r.bands[3]},
            {"no_data", r.bands_no_data}}},
          {"utilization_histogram_p95", r.histogram},
          {"utilization_histogram_p95_by_band", by_band},
          {"top_by_peak_utilization", ids(r.top)},
          {"negative_failover_headroom", ids(r.failover_negative)},
          {"overload_incidents", r.incidents},
          {"overload_s", r.incident_s},
          {"list", cabs}};
}

nlohmann::json json_stranded(const Report& r) {
  using nlohmann::json;
  return {{"power_w", jnum(r.stranded_w)},
          {"equivalent_cabinets", jnum(r.stranded_w / r.equivalent_w)},
          {"cabinets_counted", r.stranded_cabinets},
          {"cabinets_without_data", r.stranded_unknown},
          {"currency", r.currency},
          {"price_basis", r.price_basis},
          {"months", r.months},
          {"cost_per_month", jnum(r.stranded_cost_month)},
          {"cost_period", jnum(r.stranded_cost_period)},
          {"idle_cabinets", r.idle_cabinets},
          {"idle_unsold", r.idle_unsold},
          {"idle_rated_w", r.idle_rated_w},
          {"idle_cost_per_month", jnum(r.idle_cost_month)},
          {"idle_cost_period", jnum(r.idle_cost_period)},
          {"idle_sales_forgone_period", jnum(r.idle_sales_forgone_period)}};
}

nlohmann::json json_plan(const Report& r) {
  using nlohmann::json;
  json days = json::array();
  for (const auto& d : r.days) {
    days.push_back({{"day", format_utc(d.day, false)},
                    {"planned", d.planned ? json(*d.planned) : json(nullptr)},
                    {"actual", d.actual ? json(*d.actual) : json(nullptr)},
                    {"peak_w", jnum(d.peak_w)}});
  }
  json fc = json::array();
  for (const auto& f : r.forecasts) {
    fc.push_back({{"quantity", f.quantity},
                  {"limit", jnum(f.limit)},
                  {"unit", f.unit},
                  {"slope_per_day", jnum(f.slope_per_day)},
                  {"date", f.date ? json(format_utc(*f.date, false)) : json(nullptr)},
                  {"status", f.status}});
  }
  return {{"planned_at_end", r.plan_at_end ? json(*r.plan_at_end) : json(nullptr)},
          {"attainment", jnum(r.attainment)},
          {"days", days},
          {"forecasts", fc}};
}

nlohmann::json json_energy(const Report& r) {
  using nlohmann::json;
  return {{"it_kwh", jnum(r.it_kwh)},
          {"facility_kwh", jnum(r.facility_kwh)},
          {"cooling_kwh", jnum(r.cooling_kwh)},
          {"pue", jnum(r.pue)},
          {"pue_category", r.pue_category},
          {"cooling_headroom_n_plus_1_min_w", jnum(r.cooling_headroom_min_w)},
          {"cooling_headroom_n_plus_1_end_w", jnum(r.cooling_headroom_end_w)}};
}

nlohmann::json json_series(const Report& r) {
  using nlohmann::json;
  json series = json::array();
  for (const auto& p : r.series) {
    series.push_back({{"t", p.t}, {"average_w", jnum(p.avg_w)}, {"peak_w", jnum(p.peak_w)},
                      {"it_w", jnum(p.it_w)}});
  }
  return series;
}

std::string render_json(const Report& r) {
  nlohmann::json j;
  j["site"] = json_site(r);
  j["period"] = json_period(r);
  j["coverage"] = json_coverage(r);
  j["capacity"] = json_capacity(r);
  j["cabinets"] = json_cabinets(r);
  j["stranded"] = json_stranded(r);
  j["plan"] = json_plan(r);
  j["energy"] = json_energy(r);
  j["series"] = json_series(r);
  return j.dump(2) + "\n";
}

// ---- HTML --------------------------------------------------------------------------------

std::string esc(const std::string& s) { return http::html_escape(s); }

constexpr int kW = 720, kH = 240, kL = 60, kR = 16, kT = 16, kB = 36;

struct Scale {
  double x0, x1, y0, y1;
  double x(double v) const { return kL + (v - x0) / (x1 - x0 > 0 ? x1 - x0 : 1) * (kW - kL - kR); }
  double y(double v) const { return kH - kB - (v - y0) / (y1 - y0 > 0 ? y1 - y0 : 1) * (kH - kT - kB); }
};

std::string axes(const Scale& s, const std::string& y_unit, bool time_axis) {
  std::ostringstream os;
  os << "<line class=\"axis\" x1=\"" << kL << "\" y1=\"" << kH - kB << "\" x2=\"" << kW - kR
     << "\" y2=\"" << kH - kB << "\"/>";
  os << "<line class=\"axis\" x1=\"" << kL << "\" y1=\"" << kT << "\" x2=\"" << kL << "\" y2=\""
     << kH - kB << "\"/>";
  for (int i = 0; i <= 4; ++i) {
    const double v = s.y0 + (s.y1 - s.y0) * i / 4;
    os << "<text class=\"tick\" x=\"" << kL - 4 << "\" y=\"" << num(s.y(v) + 4, 1)
       << "\" text-anchor=\"end\">" << num(v, v < 10 ? 1 : 0) << "</text>";
    os << "<line class=\"grid\" x1=\"" << kL << "\" y1=\"" << num(s.y(v), 1) << "\" x2=\""
       << kW - kR << "\" y2=\"" << num(s.y(v), 1) << "\"/>";
  }
  os << "<text class=\"tick\" x=\"4\" y=\"" << kT - 4 << "\">" << esc(y_unit) << "</text>";
  if (time_axis) {
    for (int i = 0; i <= 2; ++i) {
      const double t = s.x0 + (s.x1 - s.x0) * i / 2;
      os << "<text class=\"tick\" x=\"" << num(s.x(t), 1) << "\" y=\"" << kH - kB + 16
         << "\" text-anchor=\"" << (i == 0 ? "start" : i == 2 ? "end" : "middle") << "\">"
         << esc(format_utc(std::int64_t(t))) << "</text>";
    }
  }
  return os.str();
}

std::string polyline(const std::vector<std::pair<double, double>>& pts, const Scale& s,
                     const std::string& cls) {
  std::ostringstream os;
  // Breaks at unknown values, so a gap is drawn as a gap.
  std::string cur;
  auto flush = [&] {
    if (!cur.empty()) os << "<polyline class=\"" << cls << "\" points=\"" << cur << "\"/>";
    cur.clear();
  };
  for (const auto& [x, y] : pts) {
    if (std::isnan(y)) {
      flush();
      continue;
    }
    cur += num(s.x(x), 1) + "," + num(s.y(y), 1) + " ";
  }
  flush();
  return os.str();
}

std::string hline(const Scale& s, double v, const std::string& cls, const std::string& label) {
  std::ostringstream os;
  os << "<line class=\"" << cls << "\" x1=\"" << kL << "\" y1=\"" << num(s.y(v), 1) << "\" x2=\""
     << kW - kR << "\" y2=\"" << num(s.y(v), 1) << "\"/><text class=\"tick\" x=\"" << kW - kR - 4
     << "\" y=\"" << num(s.y(v) - 4, 1) << "\" text-anchor=\"end\">" << esc(label) << "</text>";
  return os.str();
}

std::string svg_open(const std::string& id, const std::string& label) {
  return "<svg class=\"chart\" id=\"" + id + "\" role=\"img\" aria-label=\"" + esc(label) +
         "\" viewBox=\"0 0 " + std::to_string(kW) + " " + std::to_string(kH) +
         "\" xmlns=\"http://www.w3.org/2000/svg\"><title>" + esc(label) + "</title>";
}

std::string chart_power(const Report& r) {
  std::ostringstream os;
  os << svg_open("chart-power", "Power over time: sum of cabinet power (average and peak), IT "
                                "power, rated power and the reserve line");
  double ymax = r.rated_w;
  for (const auto& p : r.series) ymax = std::max({ymax, std::isnan(p.peak_w) ? 0 : p.peak_w,
                                                  std::isnan(p.it_w) ? 0 : p.it_w});
  const Scale s{double(r.from), double(r.to), 0, ymax * 1.05 / 1000};
  os << axes(s, "kW", true);
  std::vector<std::pair<double, double>> avg, peak, it;
  for (const auto& p : r.series) {
    avg.emplace_back(p.t, p.avg_w / 1000);
    peak.emplace_back(p.t, p.peak_w / 1000);
    it.emplace_back(p.t, p.it_w / 1000);
  }
  os << hline(s, r.rated_w / 1000, "rated", "rated " + kw(r.rated_w) + " kW");
  os << hline(s, (r.rated_w - r.reserve_w) / 1000, "reserve", "reserve line");
  os << polyline(peak, s, "peak") << polyline(avg, s, "avg") << polyline(it, s, "it");
  os << "</svg>";
  os << "<p class=\"legend\"><span class=\"k peak\"></span>peak <span class=\"k avg\"></span>"
        "average (sum of cabinets) <span class=\"k it\"></span>IT power (site IT term)</p>";
  return os.str();
}

// Each bar is stacked by band, in the band's colour: the bands are those of the table (each
// cabinet's own warning and critical), so a cabinet has the same band in both.
std::string chart_histogram(const Report& r) {
  std::ostringstream os;
  os << svg_open("chart-utilisation",
                 "Utilisation histogram: cabinets in use by p95 utilisation, 10 % bins, coloured "
                 "by band (each cabinet's own warning and critical thresholds)");
  int ymax = 1;
  for (int n : r.histogram) ymax = std::max(ymax, n);
  const Scale s{0, 12, 0, double(ymax)};
  os << axes(s, "cabinets", false);
  for (int i = 0; i < 12; ++i) {
    const double x = s.x(i) + 2, w = s.x(i + 1) - s.x(i) - 4;
    int below = 0;
    for (int b = 0; b < 4; ++b) {
      const int n = r.histogram_bands[std::size_t(i)][std::size_t(b)];
      if (n == 0) continue;
      os << "<rect class=\"bar b" << b << "\" x=\"" << num(x, 1) << "\" y=\""
         << num(s.y(below + n), 1) << "\" width=\"" << num(w, 1) << "\" height=\""
         << num(s.y(below) - s.y(below + n), 1) << "\"><title>" << n << " " << kBandNames[b]
         << "</title></rect>";
      below += n;
    }
    os << "<text class=\"tick\" x=\"" << num(x + w / 2, 1) << "\" y=\"" << kH - kB + 16
       << "\" text-anchor=\"middle\">" << (i == 11 ? std::string("110+") : std::to_string(i * 10))
       << "</text>";
  }
  os << "<text class=\"tick\" x=\"" << kW - kR << "\" y=\"" << kH - 4
     << "\" text-anchor=\"end\">p95 utilisation, % of rated</text></svg>";
  os << "<p class=\"legend\"><span class=\"k b0\"></span>&lt; 40 % "
        "<span class=\"k b1\"></span>40 % to warning <span class=\"k b2\"></span>warning to "
        "critical <span class=\"k b3\"></span>&gt;= critical (each cabinet's own thresholds; "
        "80 % and 95 % by default)</p>";
  return os.str();
}

std::string chart_plan(const Report& r) {
  std::ostringstream os;
  os << svg_open("chart-plan", "Plan vs actual: planned and powered cabinets by day");
  double ymax = 1;
  for (const auto& d : r.days) {
    if (d.planned) ymax = std::max(ymax, double(*d.planned));
    if (d.actual) ymax = std::max(ymax, double(*d.actual));
  }
  const Scale s{double(r.from), double(r.to), 0, ymax * 1.1};
  os << axes(s, "cabinets", true);
  std::vector<std::pair<double, double>> plan, actual;
  for (const auto& d : r.days) {
    const double x0 = std::max<double>(double(d.day), double(r.from));
    const double x1 = std::min<double>(double(d.day + 86400), double(r.to));
    const double p = d.planned ? double(*d.planned) : kNaN;
    plan.emplace_back(x0, p);
    plan.emplace_back(x1, p);
    const double a = d.actual ? double(*d.actual) : kNaN;
    actual.emplace_back(x0, a);
    actual.emplace_back(x1, a);
  }
  os << polyline(plan, s, "plan") << polyline(actual, s, "actual") << "</svg>";
  os << "<p class=\"legend\"><span class=\"k plan\"></span>planned <span class=\"k actual\">"
        "</span>actual (most powered that day)</p>";
  return os.str();
}

const char* kCss = R"(body{font-family:sans-serif;max-width:60rem;margin:1rem auto;color:#111;
padding:0 1rem}h1{font-size:1.4rem}h2{font-size:1.15rem;border-bottom:1px solid #999;
margin-top:1.6rem}table{border-collapse:collapse;margin:.4rem 0}td,th{padding:.15rem .6rem;
border-bottom:1px solid #ddd;text-align:right}td:first-child,th:first-child{text-align:left}
.meta{color:#444}.note{color:#444;font-style:italic}svg.chart{width:100%;max-width:720px;
height:auto;display:block}.axis{stroke:#333}.grid{stroke:#ddd}.tick{font-size:11px;fill:#333}
polyline{fill:none;stroke-width:1.5}.avg{stroke:#1f5fbf}.peak{stroke:#d9822b}.it{stroke:#2a9d4b;
stroke-dasharray:4 2}.plan{stroke:#777;stroke-dasharray:6 3}.actual{stroke:#1f5fbf}
.rated{stroke:#b00;stroke-dasharray:2 2}.reserve{stroke:#b60;stroke-dasharray:6 2}
.bar.b0,.k.b0{fill:#9ab;background:#9ab}.bar.b1,.k.b1{fill:#2a9d4b;background:#2a9d4b}
.bar.b2,.k.b2{fill:#d9822b;background:#d9822b}.bar.b3,.k.b3{fill:#b00;background:#b00}
.legend{font-size:.85rem}.k{display:inline-block;width:1.2em;height:.25em;margin:0 .3em .2em 1em;
background:#999}.k.avg,.k.actual{background:#1f5fbf}.k.peak{background:#d9822b}
.k.it{background:#2a9d4b}.k.plan{background:#777}
@media print{body{max-width:none;margin:0;font-size:10pt}h2{break-after:avoid}
table,svg{break-inside:avoid}})";

std::string render_html(const Report& r, const std::vector<Section>& doc) {
  std::ostringstream os;
  os << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>"
     << esc(header_line(r)) << "</title><style>" << kCss << "</style></head><body>\n";
  os << "<h1>" << esc(header_line(r)) << "</h1>";
  for (const auto& l : head_lines(r)) os << "<p class=\"meta\">" << esc(l) << "</p>";
  os << "\n";
  for (const auto& s : doc) {
    os << "<section id=\"" << s.key << "\"><h2>" << esc(s.title) << "</h2>\n";
    if (s.key == "capacity") os << "<h3>Power over time</h3>" << chart_power(r);
    if (s.key == "cabinets") os << "<h3>Utilisation histogram</h3>" << chart_histogram(r);
    if (s.key == "plan") os << "<h3>Plan vs actual</h3>" << chart_plan(r);
    os << "<table class=\"figures\">";
    for (const auto& i : s.items) {
      os << "<tr><td>" << esc(i.label) << "</td><td>" << esc(i.value) << "</td></tr>";
    }
    os << "</table>\n";
    for (const auto& t : s.tables) {
      if (t.rows.empty()) continue;
      os << "<h3>" << esc(t.title) << "</h3><table class=\"" << t.key << "\"><tr>";
      for (const auto& h : t.header) os << "<th>" << esc(h) << "</th>";
      os << "</tr>";
      for (const auto& row : t.rows) {
        os << "<tr>";
        for (const auto& c : row) os << "<td>" << esc(c) << "</td>";
        os << "</tr>";
      }
      os << "</table>\n";
    }
    for (const auto& n : s.notes) os << "<p class=\"note\">" << esc(n) << "</p>";
    os << "</section>\n";
  }
  os << "</body></html>\n";
  return os.str();
}

}  // namespace

std::string render_report(const Report& r, ReportFormat f) {
  if (f == ReportFormat::kJson) return render_json(r);
  const auto doc = document(r);
  switch (f) {
    case ReportFormat::kText:
      return render_text(r, doc);
    case ReportFormat::kMarkdown:
      return render_markdown(r, doc);
    case ReportFormat::kCsv:
      return render_csv(r, doc);
    case ReportFormat::kHtml:
      return render_html(r, doc);
    case ReportFormat::kJson:
      break;
  }
  return render_json(r);
}

}  // namespace facility
