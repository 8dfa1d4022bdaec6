#include "daemon/reports/report.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <numeric>
#include <regex>
#include <sqlite3.h>
#include <unordered_map>

namespace facility {
namespace {

constexpr std::int64_t kDay = 86400;
constexpr double kMonthS = 365.25 / 12 * 86400;
constexpr std::int64_t kDefaultPeriod = 30 * kDay;
constexpr std::int64_t kMaxMinutePeriod = 7 * kDay;
constexpr std::size_t kMaxSeriesPoints = 400;

// Nearest-rank percentile: the smallest value with at least q of the values at or below it.
template <typename T>
double percentile(std::vector<T>& v, double q) {
  if (v.empty()) return kNaN;
  const std::size_t rank = std::size_t(std::ceil(q * double(v.size())));
  const std::size_t k = std::clamp<std::size_t>(rank, 1, v.size()) - 1;
  std::nth_element(v.begin(), v.begin() + std::ptrdiff_t(k), v.end());
  return v[k];
}

double nmax(double a, double b) { return std::isnan(a) ? b : std::isnan(b) ? a : std::max(a, b); }

std::string category_name(int c) {
  const auto* info = pue_category_info(c);
  return info ? "category " + std::to_string(c) + " (" + info->where + ")" : "unknown category";
}

// Least-squares line through (x, y); returns the trend and its forecast against `limit`.
ReportForecast forecast(std::string quantity, std::string unit, double limit,
                        const std::vector<std::pair<double, double>>& pts) {
  ReportForecast f;
  f.quantity = std::move(quantity);
  f.unit = std::move(unit);
  f.limit = limit;
  if (pts.size() < 3 || pts.back().first - pts.front().first < 2 || !(limit > 0)) {
    f.status = "not enough data";
    return f;
  }
  double sx = 0, sy = 0;
  for (const auto& [x, y] : pts) {
    sx += x;
    sy += y;
  }
  const double n = double(pts.size()), mx = sx / n, my = sy / n;
  double sxx = 0, sxy = 0;
  for (const auto& [x, y] : pts) {
    sxx += (x - mx) * (x - mx);
    sxy += (x - mx) * (y - my);
  }
  const double a = sxy / sxx, b = my - a * mx;
  f.slope_per_day = a;
  const double last_x = pts.back().first;
  if (pts.back().second >= limit || a * last_x + b >= limit) {
    f.status = "reached";
    return f;
  }
  if (a <= 1e-12) {
    f.status = "no growth";
    return f;
  }
  const double x = (limit - b) / a;  // days since the epoch
  if (x > 1e6) {
    f.status = "no growth";
    return f;
  }
  f.date = std::int64_t(std::llround(x * kDay));
  f.status = "forecast";
  return f;
}

}  // namespace

std::optional<ReportFormat> parse_report_format(const std::string& s) {
  if (s == "text" || s == "txt") return ReportFormat::kText;
  if (s == "markdown" || s == "md") return ReportFormat::kMarkdown;
  if (s == "csv") return ReportFormat::kCsv;
  if (s == "json") return ReportFormat::kJson;
  if (s == "html") return ReportFormat::kHtml;
  return std::nullopt;
}

const char* content_type(ReportFormat f) {
  switch (f) {
    case ReportFormat::kText:
      return "text/plain; charset=utf-8";
    case ReportFormat::kMarkdown:
      return "text/markdown; charset=utf-8";
    case ReportFormat::kCsv:
      return "text/csv; charset=utf-8";
    case ReportFormat::kJson:
      return "application/json";
    case ReportFormat::kHtml:
      return "text/html; charset=utf-8";
  }
  return "text/plain";
}

const char* file_extension(ReportFormat f) {
  switch (f) {
    case ReportFormat::kText:
      return "txt";
    case ReportFormat::kMarkdown:
      return "md";
    case ReportFormat::kCsv:
      return "csv";
    case ReportFormat::kJson:
      return "json";
    case ReportFormat::kHtml:
      return "html";
  }
  return "txt";
}

namespace {

// Times a report may span: the period's ends become system_clock time points (nanoseconds in
// 64 bits, which end in 2262), so "9999-12-31" or "-999999d" would overflow them.
constexpr std::int64_t kEarliestTime = 0;           // 1970-01-01
constexpr std::int64_t kLatestTime = 7258118400;    // 2200-01-01

std::int64_t in_report_range(const std::string& s, std::int64_t t) {
  if (t < kEarliestTime || t > kLatestTime) {
    throw ReportError("time \"" + s + "\" is out of range (1970-01-01 to 2200-01-01)");
  }
  return t;
}

}  // namespace

std::int64_t parse_report_time(const std::string& s, std::int64_t now) {
  if (s == "now") return now;
  static const std::regex rel(R"(^-([0-9]{1,6})([mhd])$)");
  static const std::regex abs(
      R"(^([0-9]{4})-([0-9]{2})-([0-9]{2})(?:[T ]([0-9]{2}):([0-9]{2})(?::([0-9]{2}))?Z?)?$)");
  std::smatch m;
  if (std::regex_match(s, m, rel)) {
    const std::int64_t n = std::stoll(m[1].str());
    const char u = m[2].str()[0];
    return in_report_range(s, now - n * (u == 'm' ? 60 : u == 'h' ? 3600 : kDay));
  }
  if (std::regex_match(s, m, abs)) {
    using namespace std::chrono;
    const year_month_day ymd{year(std::stoi(m[1].str())), month(unsigned(std::stoi(m[2].str()))),
                             day(unsigned(std::stoi(m[3].str())))};
    const int hh = m[4].matched ? std::stoi(m[4].str()) : 0;
    const int mm = m[5].matched ? std::stoi(m[5].str()) : 0;
    const int ss = m[6].matched ? std::stoi(m[6].str()) : 0;
    if (ymd.ok() && hh < 24 && mm < 60 && ss < 60) {
      return in_report_range(
          s, sys_days(ymd).time_since_epoch().count() * kDay + hh * 3600 + mm * 60 + ss);
    }
  }
  throw ReportError("bad time \"" + s +
                    "\": expected YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS][Z] (UTC), now, or -7d / -12h "
                    "/ -90m");
}

std::string format_utc(std::int64_t t, bool with_time) {
  using namespace std::chrono;
  const auto days = sys_days(floor<std::chrono::days>(sys_seconds(seconds(t))));
  const year_month_day ymd(days);
  const std::int64_t sod = t - days.time_since_epoch().count() * kDay;
  char buf[64];
  if (with_time) {
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02u %02d:%02d UTC", int(ymd.year()),
                  unsigned(ymd.month()), unsigned(ymd.day()), int(sod / 3600),
                  int(sod % 3600 / 60));
  } else {
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", int(ymd.year()), unsigned(ymd.month()),
                  unsigned(ymd.day()));
  }
  return buf;
}

namespace {

// One read transaction, so every query of a report sees the same snapshot of the history: the
// writer commits every flush interval and rolls hours up, which moves rolled_up_to and the rows
// it separates between the hour and minute tables.
struct ReadSnapshot {
  HistoryDb& db;
  explicit ReadSnapshot(HistoryDb& d) : db(d) { db.exec("BEGIN;"); }
  ~ReadSnapshot() { sqlite3_exec(db.handle(), "COMMIT;", nullptr, nullptr, nullptr); }
  ReadSnapshot(const ReadSnapshot&) = delete;
  ReadSnapshot& operator=(const ReadSnapshot&) = delete;
};

// ---- Header: site, period and resolution ---------------------------------------------------

// The start of the part of the period the history covers: the period's start, or the
// history's if later; the period's end when there is no history.
std::int64_t covered_from(const Report& r) {
  return r.history_start ? std::clamp(*r.history_start, r.from, r.to) : r.to;
}

Resolution fill_header(HistoryDb& db, const Site& site, const ReportRequest& req, Report& r) {
  r.site = site.id;
  r.site_name = site.name;
  r.ownership = to_string(site.ownership);
  r.currency = site.report.currency;
  r.generated_at = req.now;
  r.requested_to = req.to.value_or(req.now);
  // Nothing after now is recorded yet: a period never ends in the future.
  r.to = std::min(r.requested_to, req.now);
  r.requested_from = req.from.value_or(r.to - kDefaultPeriod);
  r.from = r.requested_from;
  const auto ext_min = db.extent(Resolution::kMinute, site.id);
  const auto ext_hour = db.extent(Resolution::kHour, site.id);
  if (ext_min) {
    r.history_start = ext_min->first;
    r.history_end = ext_min->second;
  }
  if (ext_hour) {
    r.history_start = std::min(r.history_start.value_or(ext_hour->first), ext_hour->first);
    r.history_end = std::max(r.history_end.value_or(ext_hour->second), ext_hour->second);
  }
  if (!req.from && r.history_start && *r.history_start > r.from) {
    r.from = *r.history_start;  // the default period starts where the history starts
  }
  if (r.to <= r.from) {
    throw ReportError(
        "empty period: from " + format_utc(r.from) + " is not before to " + format_utc(r.to) +
        (r.requested_to > req.now ? " (now: a period cannot end in the future)" : ""));
  }
  Resolution res = Resolution::kHour;
  if (req.resolution) {
    res = *req.resolution;
    // The exact per-cabinet p95 keeps one value per cabinet per row: at minutes over 35 days a
    // 2,000-cabinet site would need ~400 MB in the monitoring daemon, for one HTTP request.
    if (res == Resolution::kMinute && r.to - r.from > kMaxMinutePeriod) {
      throw ReportError("resolution minute covers at most 7 days (this period is " +
                        std::to_string((r.to - r.from + kDay - 1) / kDay) +
                        " days): use resolution hour, or a shorter period");
    }
  } else if (ext_min && ext_min->first <= covered_from(r) + 60 &&
             r.to - r.from <= kMaxMinutePeriod) {
    // Minutes when they reach back to the start of what the history covers: a period that
    // starts before the history does is not thereby read in hours (which hide short gaps).
    res = Resolution::kMinute;
  }
  r.resolution_s = int(res);
  if (res == Resolution::kHour) {
    // Whole hours, but never past now: the hour in progress ends the period at now.
    r.from = r.from / 3600 * 3600;
    r.to = std::min((r.to + 3599) / 3600 * 3600, req.now);
  } else {
    r.from = r.from / 60 * 60;
  }
  r.period_s = double(r.to - r.from);
  r.months = r.period_s / kMonthS;
  const std::int64_t start = covered_from(r);
  r.history_period_s = double(r.to - start);
  r.before_history_s = double(start - r.from);
  return res;
}

// ---- Inventory (the configuration as it is now) ----------------------------------------------

// Returns the index of each cabinet id in r.cabinets.
std::unordered_map<std::string, std::size_t> fill_inventory(const Site& site, Report& r) {
  std::unordered_map<std::string, std::size_t> index;
  for (const auto& c : site.cabinets) {
    CabinetFigures f;
    f.id = c.id;
    f.room = c.room;
    f.status = to_string(c.status);
    f.rated_w = c.rated_w;
    f.warning = c.overload.warning;
    f.critical = c.overload.critical;
    index.emplace(c.id, r.cabinets.size());
    r.cabinets.push_back(std::move(f));
    r.rated_w += c.rated_w;
    ++r.delivered;
    if (c.status == CabinetStatus::kSold) ++r.sold;
    if (c.status == CabinetStatus::kInternal) ++r.internal;
    if (c.status == CabinetStatus::kFree) ++r.free;
  }
  const FacilitySettings& fs = site.facility;
  r.planned = site.planned_cabinets;  // the loader resolves "absent" to the delivered ones
  r.reserve_ratio = fs.capacity_reserve;
  r.reserve_w = r.rated_w * fs.capacity_reserve;
  r.equivalent_w = fs.cabinet_equivalent_w;
  return index;
}

// ---- Site rows -----------------------------------------------------------------------------

// What the site rows of the period add up to, for the sections below.
struct SiteRows {
  std::vector<double> site_avgs, it_avgs;  // per row: sum of cabinet power, IT term
  SiteInterval total, last;
  std::map<std::int64_t, PlanPoint> days;
  std::vector<SeriesPoint> rows;
  double last_cool = kNaN;
};

SiteRows read_site_rows(HistoryDb& db, Resolution res, const Site& site, Report& r) {
  SiteRows sr;
  db.read_sites(res, site.id, r.from, r.to, [&](std::int64_t t, const SiteInterval& s) {
    if (s.samples_s <= 0 && s.cab_known_s <= 0) return;
    sr.total.merge(s);
    sr.last = s;
    r.last_row_t = t;
    if (s.powered_known == s.total && s.total > 0) {
      r.powered = s.powered;
      r.powered_at = t;
    }
    ++r.rows;
    SeriesPoint p;
    p.t = t;
    if (s.cab_s > 0) {
      p.avg_w = s.cab_j / s.cab_s;
      sr.site_avgs.push_back(p.avg_w);
    }
    p.peak_w = s.cab_peak_w;
    if (s.it_s > 0) {
      p.it_w = s.it_j / s.it_s;
      sr.it_avgs.push_back(p.it_w);
    }
    sr.rows.push_back(p);
    if (!std::isnan(s.cool_hr_min_w)) sr.last_cool = s.cool_hr_min_w;
    PlanPoint& d = sr.days[t / kDay * kDay];
    d.day = t / kDay * kDay;
    if (s.powered_known == s.total && s.total > 0) {
      d.actual = std::max(d.actual.value_or(0), s.powered_max);
    }
    d.peak_w = nmax(d.peak_w, s.cab_peak_w);
  });
  return sr;
}

// Appends the intervals of [from, to) without any row at `res` to `gaps`.
void gaps_between(HistoryDb& db, Resolution res, const std::string& site, std::int64_t from,
                  std::int64_t to, std::vector<ReportGap>& gaps) {
  if (to <= from) return;
  const std::int64_t step = std::int64_t(res);
  std::int64_t expected = from;
  auto gap_until = [&](std::int64_t t) {
    if (t > expected) gaps.push_back({expected, t - expected});
  };
  // From the row that holds `from`: an hour read from 10:23 starts at 10:00.
  db.read_sites(res, site, from / step * step, to, [&](std::int64_t t, const SiteInterval& s) {
    if (s.samples_s <= 0 && s.cab_known_s <= 0) return;
    gap_until(t);
    expected = std::max(expected, t + step);
  });
  gap_until(to);
}

// The gaps after the history starts (the time before it is not a gap of the daemon; the report
// states it apart), counted from the minute rows wherever they exist, so that reading the period
// in hours does not hide a 4-minute outage: hourly rows only where the minutes are pruned.
std::vector<ReportGap> find_gaps(HistoryDb& db, const std::string& site, const Report& r) {
  std::vector<ReportGap> gaps;
  const std::int64_t start = covered_from(r);
  const auto ext_min = db.extent(Resolution::kMinute, site);
  if (ext_min && ext_min->first <= start + 60) {
    gaps_between(db, Resolution::kMinute, site, start, r.to, gaps);
    return gaps;
  }
  // Hours up to the first whole hour of minutes (the hour before may be partly pruned).
  const std::int64_t minutes_from =
      ext_min ? std::clamp((ext_min->first + 3599) / 3600 * 3600, start, r.to) : r.to;
  gaps_between(db, Resolution::kHour, site, start, minutes_from, gaps);
  std::vector<ReportGap> later;
  gaps_between(db, Resolution::kMinute, site, minutes_from, r.to, later);
  for (const auto& g : later) {
    if (!gaps.empty() && gaps.back().start + gaps.back().seconds == g.start) {
      gaps.back().seconds += g.seconds;  // one gap across the boundary
    } else {
      gaps.push_back(g);
    }
  }
  return gaps;
}

void fill_coverage(SiteRows& sr, std::vector<ReportGap> gaps, Report& r) {
  const SiteInterval& total = sr.total;
  r.recorded_s = total.samples_s;
  r.coverage_recorded = total.samples_s / r.period_s;
  if (r.history_period_s > 0) r.coverage_recorded_history = total.samples_s / r.history_period_s;
  const double cab_expected = double(r.delivered) * r.period_s;
  r.coverage_cabinet_power = cab_expected > 0 ? total.cab_known_s / cab_expected : 0;
  r.coverage_capacity = total.cab_s / r.period_s;
  r.coverage_it = total.it_s / r.period_s;
  r.coverage_facility = total.fac_s / r.period_s;
  r.coverage_pue = total.pue_s / r.period_s;
  r.coverage_cooling = total.cool_hr_s / r.period_s;
  std::sort(gaps.begin(), gaps.end(),
            [](const ReportGap& a, const ReportGap& b) { return a.seconds > b.seconds; });
  r.gap_count = int(gaps.size());
  for (const auto& g : gaps) r.gap_total_s += double(g.seconds);
  if (gaps.size() > 10) gaps.resize(10);
  r.gaps = std::move(gaps);
}

void fill_capacity(SiteRows& sr, Report& r) {
  const SiteInterval& total = sr.total;
  r.powered_max = total.powered_max;
  if (total.cab_s > 0) r.avg_w = total.cab_j / total.cab_s;
  r.p95_w = percentile(sr.site_avgs, 0.95);
  r.peak_w = total.cab_peak_w;
  if (total.it_s > 0) r.it_avg_w = total.it_j / total.it_s;
  r.it_peak_w = total.it_peak_w;
  r.it_p95_w = percentile(sr.it_avgs, 0.95);
  r.headroom_p95_w = r.rated_w - r.p95_w;
  r.headroom_peak_w = r.rated_w - r.peak_w;
  r.headroom_reserve_p95_w = r.rated_w - r.reserve_w - r.p95_w;
  r.headroom_reserve_peak_w = r.rated_w - r.reserve_w - r.peak_w;
}

void fill_energy(const SiteRows& sr, Report& r) {
  const SiteInterval& total = sr.total;
  if (total.it_s > 0) r.it_kwh = total.it_j / 3.6e6;
  if (total.fac_s > 0) r.facility_kwh = total.fac_j / 3.6e6;
  if (total.cool_s > 0) r.cooling_kwh = total.cool_j / 3.6e6;
  if (total.pue_it_j > 0) r.pue = total.pue_fac_j / total.pue_it_j;
  r.pue_category = sr.last.pue_category;
  r.pue_category_name = category_name(sr.last.pue_category);
  r.cooling_headroom_min_w = total.cool_hr_min_w;
  r.cooling_headroom_end_w = sr.last_cool;
}

// Chart series, at most kMaxSeriesPoints (averages of averages, highest peak).
void fill_series(const std::vector<SeriesPoint>& rows, Report& r) {
  const std::size_t per =
      std::max<std::size_t>(1, (rows.size() + kMaxSeriesPoints - 1) / kMaxSeriesPoints);
  for (std::size_t i = 0; i < rows.size(); i += per) {
    SeriesPoint p;
    p.t = rows[i].t;
    double sa = 0, si = 0;
    int na = 0, ni = 0;
    for (std::size_t k = i; k < std::min(rows.size(), i + per); ++k) {
      if (!std::isnan(rows[k].avg_w)) sa += rows[k].avg_w, ++na;
      if (!std::isnan(rows[k].it_w)) si += rows[k].it_w, ++ni;
      p.peak_w = nmax(p.peak_w, rows[k].peak_w);
    }
    if (na) p.avg_w = sa / na;
    if (ni) p.it_w = si / ni;
    r.series.push_back(p);
  }
}

// ---- Cabinet rows --------------------------------------------------------------------------

// Per cabinet: the merged intervals and one average per row (for the exact p95).
struct CabinetRows {
  std::vector<CabinetInterval> sums;
  std::vector<std::vector<float>> avgs;
};

CabinetRows read_cabinet_rows(HistoryDb& db, Resolution res, const Site& site, const Report& r,
                              const std::unordered_map<std::string, std::size_t>& index,
                              const ReportProgress& progress) {
  // Rows name their cabinets through a layout; map each layout position to today's cabinet.
  std::unordered_map<std::int64_t, std::vector<std::optional<std::size_t>>> map_of_layout;
  for (const auto& [id, l] : db.layouts(site.id)) {
    auto& m = map_of_layout[id];
    for (const auto& c : l.cabinets) {
      auto it = index.find(c.id);
      m.push_back(it == index.end() ? std::nullopt : std::optional(it->second));
    }
  }
  CabinetRows cr;
  cr.sums.resize(r.cabinets.size());
  cr.avgs.resize(r.cabinets.size());
  const double expected_rows =
      double(std::max<std::int64_t>(1, db.count_rows(res, site.id, r.from, r.to)));
  std::int64_t seen = 0;
  db.read_cabinets(res, site.id, r.from, r.to,
                   [&](std::int64_t, std::int64_t layout, const std::vector<CabinetInterval>& v) {
                     auto it = map_of_layout.find(layout);
                     if (it != map_of_layout.end()) {
                       const auto& m = it->second;
                       for (std::size_t k = 0; k < v.size() && k < m.size(); ++k) {
                         if (!m[k]) continue;
                         cr.sums[*m[k]].merge(v[k]);
                         if (v[k].known_s > 0) cr.avgs[*m[k]].push_back(float(v[k].avg_w()));
                       }
                     }
                     if (progress && ++seen % 256 == 0) {
                       progress(0.05 + 0.9 * std::min(1.0, double(seen) / expected_rows));
                     }
                   });
  return cr;
}

// One cabinet's figures from its merged intervals.
void fill_cabinet(const CabinetInterval& s, std::vector<float>& avgs, CabinetFigures& f) {
  f.known_s = s.known_s;
  f.powered_s = s.powered_s;
  f.overload_s = s.overload_s;
  f.incidents = s.overload_starts;
  f.failover_min_w = s.failover_min_w;
  f.failover_neg_s = s.failover_neg_s;
  f.avg_w = s.avg_w();
  f.peak_w = s.peak_w;
  f.p95_w = percentile(avgs, 0.95);
  if (f.rated_w > 0) {
    f.p95_util = f.p95_w / f.rated_w;
    f.peak_util = f.peak_w / f.rated_w;
  }
  f.in_use = s.powered_s > 0 || f.status == "sold";
  f.idle = s.known_s > 0 && s.powered_s <= 0;
}

// The band of a p95 utilisation `u` with a cabinet's own overload thresholds: 0 below 40 %,
// 1 from 40 % to warning, 2 from warning to critical, 3 at or above critical (the thresholds
// win over the fixed 40 %: a cabinet above its warning is never "below 40 %").
int utilisation_band(double u, double warning, double critical) {
  if (u >= critical) return 3;
  if (u >= warning) return 2;
  return u < 0.40 ? 0 : 1;
}

// The cabinets section, and the stranded power and idle cabinets that come from the same loop.
void fill_cabinets(CabinetRows& cr, Report& r) {
  double stranded_w = 0;
  for (std::size_t i = 0; i < r.cabinets.size(); ++i) {
    CabinetFigures& f = r.cabinets[i];
    fill_cabinet(cr.sums[i], cr.avgs[i], f);
    r.incidents += f.incidents;
    r.incident_s += f.overload_s;
    if (f.in_use) {
      if (std::isnan(f.p95_util)) {
        ++r.bands_no_data;
        ++r.stranded_unknown;
      } else {
        f.band = utilisation_band(f.p95_util, f.warning, f.critical);
        const auto bin = std::size_t(std::clamp(int(std::floor(f.p95_util * 10)), 0, 11));
        ++r.bands[std::size_t(f.band)];
        ++r.histogram[bin];
        ++r.histogram_bands[bin][std::size_t(f.band)];
        // An overloaded cabinet strands nothing; it does not give capacity back either.
        stranded_w += std::max(0.0, f.rated_w - f.p95_w);
        ++r.stranded_cabinets;
      }
    }
    if (f.idle) {
      ++r.idle_cabinets;
      r.idle_rated_w += f.rated_w;
      if (f.status != "sold") ++r.idle_unsold;
    }
    if (!std::isnan(f.failover_min_w) && f.failover_min_w < 0) r.failover_negative.push_back(i);
  }
  // No cabinet with data: unknown, not "0 W stranded".
  if (r.stranded_cabinets > 0) r.stranded_w = stranded_w;
  for (std::size_t i = 0; i < r.cabinets.size(); ++i) {
    if (!std::isnan(r.cabinets[i].peak_util)) r.top.push_back(i);
  }
  std::stable_sort(r.top.begin(), r.top.end(), [&](std::size_t a, std::size_t b) {
    return r.cabinets[a].peak_util > r.cabinets[b].peak_util;
  });
  if (r.top.size() > 10) r.top.resize(10);
  std::stable_sort(r.failover_negative.begin(), r.failover_negative.end(),
                   [&](std::size_t a, std::size_t b) {
                     return r.cabinets[a].failover_min_w < r.cabinets[b].failover_min_w;
                   });
}

// ---- Cost ----------------------------------------------------------------------------------

void fill_costs(const ReportSettings& ps, Report& r) {
  if (ps.price_per_kw_month) {
    r.price_basis = "stranded kW x " + std::to_string(std::llround(*ps.price_per_kw_month)) +
                    " " + ps.currency + " per kW-month";
    r.stranded_cost_month = r.stranded_w / 1000 * *ps.price_per_kw_month;
    r.idle_cost_month = r.idle_rated_w / 1000 * *ps.price_per_kw_month;
  } else if (ps.price_per_cabinet_month) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "stranded kW / %.1f kW x %.0f %s per cabinet-month",
                  r.equivalent_w / 1000, *ps.price_per_cabinet_month, ps.currency.c_str());
    r.price_basis = buf;
    r.stranded_cost_month = r.stranded_w / r.equivalent_w * *ps.price_per_cabinet_month;
    r.idle_cost_month = r.idle_cabinets * *ps.price_per_cabinet_month;
  } else {
    r.price_basis = "no price configured (report.price_per_cabinet_month or price_per_kw_month)";
  }
  r.stranded_cost_period = r.stranded_cost_month * r.months;
  r.idle_cost_period = r.idle_cost_month * r.months;
  if (ps.sell_price_per_cabinet_month) {
    r.idle_sales_forgone_period = r.idle_unsold * *ps.sell_price_per_cabinet_month * r.months;
  }
}

// ---- Plan and forecast ---------------------------------------------------------------------

void fill_plan(const Site& site, std::map<std::int64_t, PlanPoint>& days, Report& r) {
  const auto& plan = site.build_out_plan;
  for (auto& [day, d] : days) {
    if (!plan.empty()) d.planned = plan_at(plan, TimePoint(std::chrono::seconds(day)));
    r.days.push_back(d);
  }
  if (!plan.empty()) {
    r.plan_at_end = plan_at(plan, TimePoint(std::chrono::seconds(r.to - 1)));
    // Against the plan at the time of the count, which is the end unless the end was stale.
    const auto plan_then =
        r.powered ? plan_at(plan, TimePoint(std::chrono::seconds(r.powered_at + r.resolution_s -
                                                                 1)))
                  : std::nullopt;
    if (r.powered && plan_then && *plan_then > 0) {
      r.attainment = double(*r.powered) / *plan_then;
    }
  }
  std::vector<std::pair<double, double>> cab_pts, pow_pts;
  for (const auto& d : r.days) {
    const double x = double(d.day) / kDay + 0.5;
    if (d.actual) cab_pts.emplace_back(x, *d.actual);
    if (!std::isnan(d.peak_w)) pow_pts.emplace_back(x, d.peak_w);
  }
  r.forecasts.push_back(forecast("powered cabinets", "cabinets", r.planned, cab_pts));
  r.forecasts.push_back(forecast("cabinet power (daily peak)", "W", r.rated_w - r.reserve_w,
                                 pow_pts));
}

// ---- What to do about a period without data -------------------------------------------------

void fill_hint(const Config& cfg, Report& r) {
  if (r.rows > 0) return;
  if (!r.history_start) {
    r.hint =
        "The history has no records of site " + r.site + ". Is the history enabled (" +
        (cfg.history.enabled ? "history.enabled is true here" : "history.enabled is false here") +
        ")? Has facilityd run with this state directory (daemon.state_dir: " +
        cfg.daemon.state_dir +
        ", or the --db given)? It records from when the daemon starts: report again once it "
        "has run for a while.";
    return;
  }
  r.hint = "The history of site " + r.site + " has records from " + format_utc(*r.history_start) +
           " until " + format_utc(*r.history_end) +
           ", nothing of this period: choose --from / --to (from= / to=) within it, or check "
           "that facilityd is running and recording (facility_history_up).";
}

}  // namespace

Report compute_report(HistoryDb& db, const Config& cfg, const ReportRequest& req,
                      const ReportProgress& progress) {
  const Site* site = cfg.find_site(req.site);
  if (!site) {
    std::string ids;
    for (const auto& s : cfg.sites) ids += (ids.empty() ? "" : ", ") + s.id;
    throw ReportError("unknown site \"" + req.site + "\" (configured: " + ids + ")");
  }
  ReadSnapshot snapshot(db);
  Report r;
  const Resolution res = fill_header(db, *site, req, r);
  const auto index = fill_inventory(*site, r);

  SiteRows rows = read_site_rows(db, res, *site, r);
  if (progress) progress(0.05);
  fill_coverage(rows, find_gaps(db, site->id, r), r);
  fill_capacity(rows, r);
  fill_energy(rows, r);
  fill_series(rows.rows, r);

  CabinetRows cabinets = read_cabinet_rows(db, res, *site, r, index, progress);
  fill_cabinets(cabinets, r);
  fill_costs(site->report, r);
  fill_plan(*site, rows.days, r);
  fill_hint(cfg, r);
  if (progress) progress(1.0);
  return r;
}

}  // namespace facility
