// Capacity reports of one site over a period, computed from the embedded history
// (daemon/sinks/history/history.h): capacity counts and kW with headroom to rated and to reserve, utilisation
// bands at p95, the top cabinets, negative failover headroom, overload incidents, stranded power
// and idle cabinets with their cost, occupancy against the build-out plan with a linear
// forecast, energy and energy-weighted PUE, cooling headroom, and the data coverage of the
// period. Rendered as text, Markdown, CSV, JSON or one self-contained HTML file
// (render.cpp). docs/reports.md defines every figure.
//
// Unknown values are NaN (rendered as "n/a" / JSON null), never zero.
//
// Thread-safety: compute_report() uses only its arguments (its own HistoryDb connection);
// reports may be computed concurrently on different connections.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "daemon/config/config.h"
#include "daemon/sinks/history/history.h"

namespace facility {

enum class ReportFormat { kText, kMarkdown, kCsv, kJson, kHtml };
std::optional<ReportFormat> parse_report_format(const std::string& s);
const char* content_type(ReportFormat f);
const char* file_extension(ReportFormat f);

// A bad request (unknown site, bad date): the message is meant for the user.
class ReportError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// "2025-03-01" (00:00 UTC), "2025-03-01T12:30", "2025-03-01T12:30:15Z", "now", or an offset
// from now: "-7d", "-12h", "-90m". Unix seconds; throws ReportError.
std::int64_t parse_report_time(const std::string& s, std::int64_t now);
std::string format_utc(std::int64_t t, bool with_time = true);  // "2025-03-01 12:30 UTC"

struct ReportRequest {
  std::string site;
  std::optional<std::int64_t> from, to;  // unix seconds; default: the last 30 days
  std::optional<Resolution> resolution;  // default: minutes for periods up to 7 days
  std::int64_t now = 0;                  // unix seconds (injected); no period ends after it
};

struct CabinetFigures {
  std::string id, room, status;
  double rated_w = 0;
  double avg_w = kNaN, p95_w = kNaN, peak_w = kNaN;
  double p95_util = kNaN, peak_util = kNaN;
  double known_s = 0, powered_s = 0, overload_s = 0;
  int incidents = 0;
  double failover_min_w = kNaN, failover_neg_s = 0;
  bool in_use = false;  // powered at some time in the period, or sold
  bool idle = false;    // delivered, measured, and never powered in the period
  // The cabinet's own overload thresholds (its class's, else the defaults), as ratios of rated
  // power: the utilisation bands and the histogram's colours use them.
  double warning = 0.80, critical = 0.95;
  int band = -1;  // 0 < 40 %, 1 40 % to warning, 2 warning to critical, 3 >= critical; -1 none
};

struct ReportGap {
  std::int64_t start = 0;
  std::int64_t seconds = 0;
};

struct PlanPoint {
  std::int64_t day = 0;             // 00:00 UTC
  std::optional<int> planned;       // build-out plan in effect that day
  std::optional<int> actual;        // most cabinets powered at once that day
  double peak_w = kNaN;             // highest sum of cabinet power that day
};

struct ReportForecast {
  std::string quantity;  // "powered cabinets" | "cabinet power"
  double limit = kNaN;
  std::string unit;               // "cabinets" | "W"
  double slope_per_day = kNaN;    // fitted trend
  std::optional<std::int64_t> date;  // when the trend reaches the limit
  std::string status;  // "forecast", "reached", "no growth", "not enough data"
};

struct SeriesPoint {
  std::int64_t t = 0;
  double avg_w = kNaN, peak_w = kNaN;  // sum of cabinet power
  double it_w = kNaN;                  // the IT term (meters or PDUs)
};

// A report is its sections, each a struct that one function of report.cpp fills and one function
// per format of render.cpp renders: the same section model for text, Markdown, CSV, HTML and
// JSON. Report inherits them all, so a figure is read as report.stranded_w whatever its section.

struct ReportHeader {
  std::string site, site_name, ownership, currency;
  std::int64_t from = 0, to = 0, requested_from = 0, requested_to = 0, generated_at = 0;
  std::optional<std::int64_t> history_start, history_end;  // the site's oldest and newest row
  // What to do when the period has no data at all (an empty history, or one that does not
  // reach the period); empty otherwise.
  std::string hint;
  int resolution_s = 60;
  std::int64_t rows = 0;
};

struct ReportCoverage {
  double period_s = 0, recorded_s = 0;
  // The part of the period from where the history starts (the whole period when it starts
  // before; 0 without any history), and the part before it.
  double history_period_s = 0, before_history_s = 0;
  double coverage_recorded = 0;             // recorded_s / period_s
  double coverage_recorded_history = kNaN;  // recorded_s / history_period_s: the daemon ran
  double coverage_cabinet_power = 0;   // cabinet-seconds with known power / cabinet-seconds
  double coverage_capacity = 0;        // seconds with every cabinet's power known
  double coverage_it = 0, coverage_facility = 0, coverage_pue = 0, coverage_cooling = 0;
  // Intervals without any record after the history starts, from the minute rows where they
  // exist (whatever the resolution), else the hourly rows. Longest first, at most 10.
  std::vector<ReportGap> gaps;
  int gap_count = 0;
  double gap_total_s = 0;
};

struct ReportCapacity {
  int planned = 0, delivered = 0, powered_max = 0, sold = 0, internal = 0, free = 0;
  // Powered cabinets at the last row in which every cabinet's powered state was known (a count
  // with unknown cabinets is only a lower bound), and that row's start; unset when there is
  // none. powered_at is before the last row when the end of the period had stale data.
  std::optional<int> powered;
  std::int64_t powered_at = 0;
  std::int64_t last_row_t = 0;
  double rated_w = 0, reserve_ratio = 0, reserve_w = 0, equivalent_w = 4400;
  double avg_w = kNaN, p95_w = kNaN, peak_w = kNaN;  // sum of cabinet power
  double it_avg_w = kNaN, it_p95_w = kNaN, it_peak_w = kNaN;  // the IT term
  double headroom_p95_w = kNaN, headroom_peak_w = kNaN;
  double headroom_reserve_p95_w = kNaN, headroom_reserve_peak_w = kNaN;
};

struct ReportCabinets {
  std::vector<CabinetFigures> cabinets;  // in inventory order
  // Cabinets in use by p95 utilisation: < 40 %, 40 % to warning, warning to critical,
  // >= critical, with each cabinet's own thresholds (80 % and 95 % by default).
  std::array<int, 4> bands{};
  int bands_no_data = 0;                 // in use, but no power known in the period
  std::array<int, 12> histogram{};       // p95 utilisation, 10 % bins, the last >= 110 %
  // The same bins split by band: a bin may hold cabinets of two bands (90-100 % holds 92 % in
  // warning-critical and 96 % in >= critical with the defaults); each is drawn in its colour.
  std::array<std::array<int, 4>, 12> histogram_bands{};
  std::vector<std::size_t> top;          // indexes into cabinets: top 10 by peak utilisation
  std::vector<std::size_t> failover_negative;  // indexes: lowest failover headroom < 0
  int incidents = 0;
  double incident_s = 0;
};

// Stranded power and idle cabinets.
struct ReportStranded {
  // Over the cabinets in use with power data (NaN when there are none); with
  // stranded_unknown > 0 it is a lower bound (those cabinets are not counted).
  double stranded_w = kNaN;
  int stranded_cabinets = 0, stranded_unknown = 0;
  double months = 0;
  std::string price_basis;  // how the cost is computed, or why there is none
  double stranded_cost_month = kNaN, stranded_cost_period = kNaN;
  int idle_cabinets = 0, idle_unsold = 0;
  double idle_rated_w = 0;
  double idle_cost_month = kNaN, idle_cost_period = kNaN, idle_sales_forgone_period = kNaN;
};

// Occupancy against the build-out plan, and the forecast.
struct ReportPlan {
  std::vector<PlanPoint> days;
  std::optional<int> plan_at_end;
  double attainment = kNaN;  // powered / plan, both at powered_at; NaN when powered is unset
  std::vector<ReportForecast> forecasts;
};

struct ReportEnergy {
  double it_kwh = kNaN, facility_kwh = kNaN, cooling_kwh = kNaN;
  double pue = kNaN;
  int pue_category = 0;
  std::string pue_category_name;
  double cooling_headroom_min_w = kNaN, cooling_headroom_end_w = kNaN;
};

struct ReportCharts {
  std::vector<SeriesPoint> series;
};

struct Report : ReportHeader,
                ReportCoverage,
                ReportCapacity,
                ReportCabinets,
                ReportStranded,
                ReportPlan,
                ReportEnergy,
                ReportCharts {};

using ReportProgress = std::function<void(double fraction)>;

// Computes the report of req.site from `db`. Throws ReportError for an unknown site or an
// empty period, std::runtime_error for a history it cannot read.
Report compute_report(HistoryDb& db, const Config& cfg, const ReportRequest& req,
                      const ReportProgress& progress = {});

std::string render_report(const Report& r, ReportFormat f);

}  // namespace facility
