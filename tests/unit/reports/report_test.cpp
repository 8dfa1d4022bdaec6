// Capacity reports from a synthetic 90-day hourly history inserted directly, checked against
// values computed by hand (in the comments); the JSON and CSV renderings parse and agree.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <sstream>

#include "daemon/reports/report.h"
#include "model_rig.h"
#include "test_util.h"

namespace facility::testing {
namespace {

// Four 4.4 kW cabinets: c1, c2 sold, c3 internal, c4 free. Reserve 10 %. Price 5.30万 CNY per
// cabinet-year (Huailai's list price). Plan: 2 powered from 2025-01-01, 4 from 2025-03-01.
const char* kReportSite = R"(defaults: {rated_kw: 4.4}
facility: {capacity_reserve: 0.1}
report: {currency: CNY, price_per_cabinet_year: 53000}
sites:
  - id: s1
    name: "Test site"
    planned_cabinets: 10
    build_out_plan:
      - {date: 2025-01-01, powered: 2}
      - {date: 2025-03-01, powered: 4}
    rooms:
      - id: r1
        rows:
          - id: w1
            cabinets:
              - {id: c1, status: sold}
              - {id: c2, status: sold}
              - {id: c3, status: internal}
              - {id: c4}
)";

constexpr std::int64_t kJan1 = 1735689600;  // 2025-01-01T00:00:00Z
constexpr int kHours = 90 * 24;              // to 2025-04-01
constexpr int kGapFrom = 1000, kGapTo = 1024;  // one day without any data

class ReportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cfg_ = std::make_shared<const Config>(load_config(dir_.write("site.yaml", kReportSite)));
    auto db = HistoryDb::open_writer(db_path());
    const auto layout = db->layout_id("s1", layout_of(cfg_->sites[0]));
    db->exec("BEGIN");
    for (int i = 0; i < kHours; ++i) {
      if (i >= kGapFrom && i < kGapTo) continue;
      const int day = i / 24;
      std::vector<CabinetInterval> cabs(4);
      auto set = [&](int k, double avg, double peak) {
        cabs[k].energy_ws = avg * 3600;
        cabs[k].known_s = 3600;
        cabs[k].peak_w = peak;
        cabs[k].powered_s = avg > 0 ? 3600 : 0;
      };
      const double c1 = 1000 + 10 * (i % 100);
      set(0, c1, c1 + 500);
      set(1, 4200, 4400);
      set(2, 2000, 2100);
      set(3, 0, 0);
      if (i == 100 || i == 101) {
        cabs[1].overload_s = 1800;
        cabs[1].failover_min_w = -680;
        cabs[1].failover_neg_s = 1800;
      }
      if (i == 100) cabs[1].overload_starts = 1;
      if (i == 500) {
        cabs[1].overload_s = 600;
        cabs[1].overload_starts = 1;
      }
      SiteInterval s;
      s.samples_s = 3600;
      s.it_j = 8000.0 * 3600;
      s.it_s = 3600;
      s.it_peak_w = 8100;
      s.fac_j = 10400.0 * 3600;
      s.fac_s = 3600;
      s.pue_it_j = s.it_j;
      s.pue_fac_j = s.fac_j;
      s.pue_s = 3600;
      s.cab_j = (c1 + 4200 + 2000) * 3600;
      s.cab_s = 3600;
      s.cab_peak_w = 9000 + 20.0 * day;  // daily peak grows 20 W a day
      s.cab_known_s = 4 * 3600;
      s.cab_expected_s = 4 * 3600;
      s.total = 4;
      s.powered = 3;
      s.powered_max = 3;
      s.powered_known = 4;
      s.sold = 2;
      s.internal = 1;
      s.free = 1;
      s.cool_hr_min_w = 20000 - 10.0 * i;
      s.cool_hr_s = 3600;
      s.pue_category = 1;
      db->write_row(Resolution::kHour, "s1", kJan1 + i * 3600, layout, s, cabs);
    }
    db->exec("COMMIT");
  }
  std::string db_path() const { return (dir_.path() / "history.sqlite").string(); }
  Report report() {
    auto db = HistoryDb::open_reader(db_path());
    ReportRequest req;
    req.site = "s1";
    req.from = kJan1;
    req.to = kJan1 + kHours * 3600;
    req.now = kJan1 + 100 * 86400;
    return compute_report(*db, *cfg_, req);
  }
  TempDir dir_;
  std::shared_ptr<const Config> cfg_;
};

const CabinetFigures& cab(const Report& r, const std::string& id) {
  for (const auto& c : r.cabinets) {
    if (c.id == id) return c;
  }
  throw std::runtime_error("no cabinet " + id);
}

TEST_F(ReportTest, FiguresMatchHandComputedValues) {
  const Report r = report();
  EXPECT_EQ(r.resolution_s, 3600) << "no minutes: hourly rows";
  EXPECT_EQ(r.rows, kHours - 24);
  // Coverage: one day of 90 missing, as one gap.
  EXPECT_NEAR(r.coverage_recorded, 89.0 / 90, 1e-12);
  EXPECT_EQ(r.gap_count, 1);
  ASSERT_EQ(r.gaps.size(), 1u);
  EXPECT_EQ(r.gaps[0].start, kJan1 + kGapFrom * 3600);
  EXPECT_EQ(r.gaps[0].seconds, 86400);
  EXPECT_NEAR(r.coverage_cabinet_power, 89.0 / 90, 1e-12);

  // c1's hourly averages are 1000 + 10 k W, k = hour mod 100, over the 2136 recorded hours:
  // k = 0..23 occur 21 times (the gap removed hours 1000..1023), 24..59 22 times, 60..99 21
  // times. Nearest rank ceil(0.95 x 2136) = 2030: 24 x 21 + 36 x 22 = 1296 values up to k = 59,
  // then 21 per step, 1296 + 35 x 21 = 2031 >= 2030 at k = 94: p95 = 1940 W.
  const auto& c1 = cab(r, "c1");
  EXPECT_DOUBLE_EQ(c1.p95_w, 1940);
  EXPECT_DOUBLE_EQ(c1.peak_w, 1990 + 500);
  EXPECT_NEAR(c1.p95_util, 1940.0 / 4400, 1e-12);
  // Site: the same distribution shifted by 4200 + 2000 W: p95 = 8140 W.
  EXPECT_DOUBLE_EQ(r.p95_w, 8140);
  EXPECT_DOUBLE_EQ(r.peak_w, 9000 + 20 * 89);
  EXPECT_DOUBLE_EQ(r.rated_w, 17600);
  EXPECT_DOUBLE_EQ(r.reserve_w, 1760);
  EXPECT_DOUBLE_EQ(r.headroom_p95_w, 17600 - 8140);
  EXPECT_DOUBLE_EQ(r.headroom_reserve_p95_w, 17600 - 1760 - 8140);

  // Bands at p95: c1 44 % and c3 45 % in 40-80, c2 95.5 % in >= 95; c4 is idle, not in use.
  EXPECT_EQ(r.bands[0], 0);
  EXPECT_EQ(r.bands[1], 2);
  EXPECT_EQ(r.bands[2], 0);
  EXPECT_EQ(r.bands[3], 1);
  ASSERT_GE(r.top.size(), 3u);
  EXPECT_EQ(r.cabinets[r.top[0]].id, "c2");  // peak 4400 / 4400
  EXPECT_EQ(r.cabinets[r.top[1]].id, "c1");  // 2490 / 4400
  ASSERT_EQ(r.failover_negative.size(), 1u);
  EXPECT_EQ(r.cabinets[r.failover_negative[0]].id, "c2");
  EXPECT_DOUBLE_EQ(cab(r, "c2").failover_min_w, -680);
  EXPECT_EQ(r.incidents, 2);
  EXPECT_DOUBLE_EQ(r.incident_s, 1800 + 1800 + 600);

  // Stranded = (4400 - 1940) + (4400 - 4200) + (4400 - 2000) = 5060 W = 1.15 cabinets of
  // 4.4 kW; at 53000 / 12 = 4416.67 CNY per cabinet-month: 5079.17 CNY per month. The period is
  // 90 days = 90 / 30.4375 = 2.95688 months: 15018.5 CNY.
  EXPECT_DOUBLE_EQ(r.stranded_w, 5060);
  EXPECT_NEAR(r.stranded_cost_month, 5079.17, 0.01);
  EXPECT_NEAR(r.months, 2.95688, 1e-5);
  EXPECT_NEAR(r.stranded_cost_period, 15018.5, 0.1);
  // c4: delivered, measured, never powered: idle, 4416.67 per month, 13059.6 over the period.
  EXPECT_EQ(r.idle_cabinets, 1);
  EXPECT_NEAR(r.idle_cost_month, 4416.67, 0.01);
  EXPECT_NEAR(r.idle_cost_period, 13059.6, 0.1);

  // Plan: 4 planned at the end, 3 powered: 75 %. Days before March plan 2.
  ASSERT_TRUE(r.plan_at_end);
  EXPECT_EQ(*r.plan_at_end, 4);
  EXPECT_NEAR(r.attainment, 0.75, 1e-12);
  ASSERT_EQ(r.days.size(), 90u);
  EXPECT_EQ(r.days[0].planned, 2);
  EXPECT_EQ(r.days[58].planned, 2);  // 2025-02-28
  EXPECT_EQ(r.days[59].planned, 4);  // 2025-03-01
  // Daily peak 9000 + 20 d W reaches rated - reserve = 15840 W at d = 342: 2025-12-09.
  ASSERT_EQ(r.forecasts.size(), 2u);
  const auto& power = r.forecasts[1];
  EXPECT_EQ(power.status, "forecast");
  EXPECT_NEAR(power.slope_per_day, 20, 1e-9);
  ASSERT_TRUE(power.date);
  EXPECT_EQ(format_utc(*power.date, false), "2025-12-09");
  EXPECT_EQ(r.forecasts[0].status, "no growth") << "3 cabinets powered throughout";

  // Energy: 8 kW IT and 10.4 kW facility over 2136 hours; PUE 1.3, category 1.
  EXPECT_NEAR(r.it_kwh, 8 * 2136.0, 1e-6);
  EXPECT_DOUBLE_EQ(r.it_p95_w, 8000) << "every hour's IT average is 8 kW";
  EXPECT_NEAR(r.facility_kwh, 10.4 * 2136, 1e-6);
  EXPECT_NEAR(r.pue, 1.3, 1e-12);
  EXPECT_EQ(r.pue_category, 1);
  EXPECT_TRUE(std::isnan(r.cooling_kwh)) << "no cooling meter: unknown, not zero";
  EXPECT_DOUBLE_EQ(r.cooling_headroom_min_w, 20000 - 10.0 * (kHours - 1));
}

TEST_F(ReportTest, JsonAndCsvParseAndAgree) {
  const Report r = report();
  const auto j = nlohmann::json::parse(render_report(r, ReportFormat::kJson));
  EXPECT_DOUBLE_EQ(j["capacity"]["p95_w"].get<double>(), 8140);
  EXPECT_DOUBLE_EQ(j["stranded"]["power_w"].get<double>(), 5060);
  EXPECT_TRUE(j["energy"]["cooling_kwh"].is_null());
  EXPECT_EQ(j["plan"]["forecasts"][1]["date"], "2025-12-09");
  EXPECT_EQ(j["cabinets"]["list"].size(), 4u);

  // CSV: a header and 5 fields per line (no field here needs quoting except labels).
  std::istringstream csv(render_report(r, ReportFormat::kCsv));
  std::string line;
  std::getline(csv, line);
  EXPECT_EQ(line, "section,subject,quantity,value,unit");
  int lines = 0;
  bool found = false;
  while (std::getline(csv, line)) {
    ++lines;
    int fields = 1;
    bool quoted = false;
    for (char c : line) {
      if (c == '"') quoted = !quoted;
      if (c == ',' && !quoted) ++fields;
    }
    EXPECT_EQ(fields, 5) << line;
    if (line == "cabinet,c1,p95,1.94,kW") found = true;
  }
  EXPECT_GT(lines, 50);
  EXPECT_TRUE(found);

  const std::string html = render_report(r, ReportFormat::kHtml);
  for (const char* s : {"id=\"chart-power\"", "id=\"chart-utilisation\"", "id=\"chart-plan\"",
                        "<h2>Capacity</h2>", "<h2>Data coverage</h2>"}) {
    EXPECT_NE(html.find(s), std::string::npos) << s;
  }
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("http://fonts"), std::string::npos);
  const std::string text = render_report(r, ReportFormat::kText);
  EXPECT_NE(text.find("Stranded power"), std::string::npos);
  EXPECT_NE(render_report(r, ReportFormat::kMarkdown).find("## Energy and PUE"), std::string::npos);
}

TEST_F(ReportTest, DefaultPeriodStartsWithTheHistoryAndBadInputIsExplained) {
  auto db = HistoryDb::open_reader(db_path());
  ReportRequest req;
  req.site = "s1";
  req.now = kJan1 + kHours * 3600;  // default: the last 30 days
  Report r = compute_report(*db, *cfg_, req);
  EXPECT_EQ(r.from, kJan1 + (kHours - 30 * 24) * 3600);
  req.now = kJan1 + 10 * 86400;  // 30 days back is before the history: start with it
  r = compute_report(*db, *cfg_, req);
  EXPECT_EQ(r.from, kJan1);
  EXPECT_EQ(r.requested_from, req.now - 30 * 86400);

  req.site = "nope";
  EXPECT_THROW(compute_report(*db, *cfg_, req), ReportError);
  EXPECT_EQ(parse_report_time("2025-03-01", 0), kJan1 + 59 * 86400);
  EXPECT_EQ(parse_report_time("2025-03-01T12:30Z", 0), kJan1 + 59 * 86400 + 45000);
  EXPECT_EQ(parse_report_time("-7d", 1000000), 1000000 - 7 * 86400);
  EXPECT_THROW(parse_report_time("2025-02-30", 0), ReportError);
  EXPECT_THROW(parse_report_time("yesterday", 0), ReportError);
}

// Found by the report_query fuzz target (fuzz/corpus/report_query/wide-period): a period ending
// in 9999 overflowed the nanosecond time points of the build-out plan (signed overflow, UBSan).
// Times outside 1970-01-01..2200-01-01 are a bad request now; the ends of that range are fine.
TEST(ReportTime, TimesATimePointCannotHoldAreRefused) {
  constexpr std::int64_t k2200 = 7258118400;  // 2200-01-01T00:00:00Z
  EXPECT_EQ(parse_report_time("2200-01-01", 0), k2200);
  EXPECT_EQ(parse_report_time("1970-01-01", 0), 0);
  EXPECT_EQ(parse_report_time("-999999m", kJan1), kJan1 - 999999 * 60);
  EXPECT_THROW(parse_report_time("9999-12-31", 0), ReportError);
  EXPECT_THROW(parse_report_time("2200-01-01T00:00:01Z", 0), ReportError);
  EXPECT_THROW(parse_report_time("1969-12-31T23:59", 0), ReportError);
  EXPECT_THROW(parse_report_time("0000-01-01", 0), ReportError);
  EXPECT_THROW(parse_report_time("-999999d", kJan1), ReportError);
  try {
    parse_report_time("9999-12-31", 0);
  } catch (const ReportError& e) {
    EXPECT_NE(std::string(e.what()).find("out of range"), std::string::npos) << e.what();
  }
}

// A three-phase GPU cabinet whose feeds are fine on paper (+824.61 W) but whose L1 would carry
// 4,200 W against 2,808.20 W after a failover (-1,391.80 W): from model snapshots through the
// history recorder and writer into the report's "negative failover headroom" list.
TEST(ReportFailover, APhaseOnlyRiskIsListed) {
  Rig rig(kThreePhaseSite);
  auto cfg = std::make_shared<const Config>(rig.config());
  TempDir dir;
  const std::string path = (dir.path() / "history.sqlite").string();
  {
    auto db = HistoryDb::open_writer(path);
    const std::vector<std::int64_t> layouts{db->layout_id("s", layout_of(cfg->sites[0]))};
    HistoryRecorder rec(cfg);
    std::vector<MinuteRecord> minutes;
    for (int t = 0; t <= 120; ++t) {
      rig.put("ga", phases(std::nullopt, {2200, 1000, 800}), at_s(t));
      rig.put("gb", phases(std::nullopt, {2000, 900, 700}), at_s(t));
      for (auto& m : rec.add(*rig.update(at_s(t)))) minutes.push_back(std::move(m));
    }
    ASSERT_EQ(minutes.size(), 2u);
    db->write_minutes(minutes, layouts);
  }
  auto db = HistoryDb::open_reader(path);
  const auto t0 = std::chrono::duration_cast<std::chrono::seconds>(rig_t0().time_since_epoch()).count();
  ReportRequest req;
  req.site = "s";
  req.from = t0;
  req.to = t0 + 120;
  req.now = t0 + 120;
  const Report r = compute_report(*db, *cfg, req);
  ASSERT_EQ(r.failover_negative.size(), 1u);
  const auto& g = r.cabinets[r.failover_negative[0]];
  EXPECT_EQ(g.id, "g");
  const double derated = std::sqrt(3.0) * 380 * 16 * 0.8;
  EXPECT_NEAR(g.failover_min_w, derated / 3 - 4200, 1e-3);  // stored as float
  // Every cycle but the first stands for 1 s: 119 s negative.
  EXPECT_NEAR(g.failover_neg_s, 119, 1e-9);
}

// Counts that are only lower bounds are not presented as figures (review B8, B12): the powered
// count comes from the last hour in which every cabinet's state was known (and says so), and
// stranded power is n/a without data and ">=" when some cabinets in use had none.
TEST(ReportPartialData, PoweredAndStrandedAreNeverPartialCountsPresentedAsFigures) {
  TempDir dir;
  auto cfg = std::make_shared<const Config>(load_config(dir.write("site.yaml", kReportSite)));
  const std::string path = (dir.path() / "history.sqlite").string();
  const std::int64_t mar1 = kJan1 + 59 * 86400;  // the plan is 4 from here
  auto write = [&](bool with_cabinet_data) {
    auto db = HistoryDb::open_writer(path);
    const auto layout = db->layout_id("s1", layout_of(cfg->sites[0]));
    // Hours 0-1: 3 of 4 powered, all known; hour 2: 4 of 4; hour 3: two PDUs stale, 2 known
    // powered of 4 (a lower bound).
    const int powered[] = {3, 3, 4, 2}, known[] = {4, 4, 4, 2};
    for (int h = 0; h < 4; ++h) {
      SiteInterval s;
      s.samples_s = 3600;
      s.total = 4;
      s.powered = powered[h];
      s.powered_known = known[h];
      s.powered_max = powered[h];
      s.it_j = 1000.0 * (h + 1) * 3600;  // IT term 1, 2, 3, 4 kW
      s.it_s = 3600;
      std::vector<CabinetInterval> cabs(4);
      if (with_cabinet_data) {
        cabs[0].energy_ws = 1000.0 * 3600;  // c1: 1 kW, sold; c2 (sold): no data at all
        cabs[0].known_s = 3600;
        cabs[0].peak_w = 1000;
        cabs[0].powered_s = 3600;
      }
      db->write_row(Resolution::kHour, "s1", mar1 + h * 3600, layout, s, cabs);
    }
  };
  auto report = [&] {
    auto db = HistoryDb::open_reader(path);
    ReportRequest req;
    req.site = "s1";
    req.from = mar1;
    req.to = mar1 + 4 * 3600;
    req.now = *req.to;
    return compute_report(*db, *cfg, req);
  };
  write(true);
  Report r = report();
  ASSERT_TRUE(r.powered);
  EXPECT_EQ(*r.powered, 4) << "hour 3's 2 is a lower bound, not the count";
  EXPECT_EQ(r.powered_at, mar1 + 2 * 3600);
  EXPECT_DOUBLE_EQ(r.attainment, 1.0);  // 4 of the 4 planned
  EXPECT_DOUBLE_EQ(r.it_avg_w, 2500);
  EXPECT_DOUBLE_EQ(r.it_p95_w, 4000) << "nearest rank: ceil(0.95 x 4) = the 4th of 4";
  const std::string text = render_report(r, ReportFormat::kText);
  EXPECT_NE(text.find("the last time every cabinet's powered state was known"), std::string::npos)
      << text;
  auto j = nlohmann::json::parse(render_report(r, ReportFormat::kJson));
  EXPECT_EQ(j["capacity"]["cabinets"]["powered"], 4);
  EXPECT_EQ(j["capacity"]["cabinets"]["powered_at"], format_utc(mar1 + 2 * 3600));
  // Stranded: c1 counts 4400 - 1000 W; c2 is sold (in use) without data: a lower bound.
  EXPECT_DOUBLE_EQ(r.stranded_w, 3400);
  EXPECT_EQ(r.stranded_unknown, 1);
  EXPECT_NE(text.find(">= 3.4 kW"), std::string::npos) << text;

  // Without any cabinet data: nothing stranded is known; and with only the stale hour, no
  // powered count either.
  std::filesystem::remove(path);
  std::filesystem::remove(path + "-wal");
  std::filesystem::remove(path + "-shm");
  write(false);
  r = report();
  EXPECT_TRUE(std::isnan(r.stranded_w)) << r.stranded_w;
  EXPECT_TRUE(std::isnan(r.stranded_cost_month));
  j = nlohmann::json::parse(render_report(r, ReportFormat::kJson));
  EXPECT_TRUE(j["stranded"]["power_w"].is_null());
  auto db = HistoryDb::open_reader(path);
  ReportRequest req;
  req.site = "s1";
  req.from = mar1 + 3 * 3600;
  req.to = mar1 + 4 * 3600;
  req.now = *req.to;
  r = compute_report(*db, *cfg, req);
  EXPECT_FALSE(r.powered);
  EXPECT_TRUE(std::isnan(r.attainment));
  j = nlohmann::json::parse(render_report(r, ReportFormat::kJson));
  EXPECT_TRUE(j["capacity"]["cabinets"]["powered"].is_null());
  EXPECT_NE(render_report(r, ReportFormat::kText).find("Powered cabinets: n/a"), std::string::npos);
}

// One value per cabinet per row is kept for the exact p95: minutes over long periods would take
// hundreds of MB of the monitoring daemon for one request (review B4), so they are refused.
TEST_F(ReportTest, MinuteResolutionBeyondSevenDaysIsRefused) {
  auto db = HistoryDb::open_reader(db_path());
  ReportRequest req;
  req.site = "s1";
  req.from = kJan1;
  req.to = kJan1 + 8 * 86400;
  req.now = *req.to;
  req.resolution = Resolution::kMinute;
  try {
    compute_report(*db, *cfg_, req);
    FAIL() << "expected an error";
  } catch (const ReportError& e) {
    EXPECT_NE(std::string(e.what()).find("at most 7 days"), std::string::npos) << e.what();
  }
  req.to = kJan1 + 7 * 86400;
  EXPECT_NO_THROW(compute_report(*db, *cfg_, req)) << "7 days are allowed";
  req.to = kJan1 + 8 * 86400;
  req.resolution = Resolution::kHour;
  EXPECT_NO_THROW(compute_report(*db, *cfg_, req));
}

// ---- Report fixes found in use (issue 12) ----------------------------------------------------

// Writes rows of `res` for site s1 of kReportSite at t0 + k x res for k in `rows`: every
// cabinet at `avg_w[i]`, recorded for the whole row.
void write_rows(const std::string& path, const Config& cfg, Resolution res, std::int64_t t0,
                const std::vector<int>& rows, const std::vector<double>& avg_w) {
  auto db = HistoryDb::open_writer(path);
  const auto layout = db->layout_id("s1", layout_of(cfg.sites[0]));
  const double len = double(int(res));
  db->exec("BEGIN");
  for (int k : rows) {
    std::vector<CabinetInterval> cabs(avg_w.size());
    SiteInterval s;
    s.samples_s = len;
    s.total = int(avg_w.size());
    s.powered_known = s.total;
    for (std::size_t i = 0; i < avg_w.size(); ++i) {
      cabs[i].energy_ws = avg_w[i] * len;
      cabs[i].known_s = len;
      cabs[i].peak_w = avg_w[i];
      cabs[i].powered_s = avg_w[i] > 0 ? len : 0;
      s.powered += avg_w[i] > 0 ? 1 : 0;
      s.cab_j += avg_w[i] * len;
    }
    s.cab_s = len;
    s.cab_known_s = len * double(avg_w.size());
    s.cab_expected_s = s.cab_known_s;
    db->write_row(res, "s1", t0 + k * std::int64_t(res), layout, s, cabs);
  }
  db->exec("COMMIT");
}

std::vector<int> range(int from, int to) {
  std::vector<int> v;
  for (int k = from; k < to; ++k) v.push_back(k);
  return v;
}

// The histogram and the band table put every cabinet in the same band, by the cabinet's own
// thresholds: 92.6 % is "warning to critical" with the defaults (the 90-100 % bin used to be
// drawn in the >= 95 % colour), and ">= critical" in a class whose critical is 90 %.
TEST(ReportBands, HistogramAndTableUseEachCabinetsThresholds) {
  TempDir dir;
  const auto cfg = load_config(dir.write("site.yaml", R"(defaults: {rated_kw: 10}
cabinet_classes:
  - {id: hot, overload: {warning: 0.70, critical: 0.90}}
sites:
  - id: s1
    rooms:
      - id: r1
        rows:
          - id: w1
            cabinets:
              - {id: c1, status: sold}
              - {id: c2, status: sold, class: hot}
              - {id: c3, status: sold}
              - {id: c4, status: sold, class: hot}
)"));
  const std::string path = (dir.path() / "history.sqlite").string();
  // c1 92.6 % (default: warning to critical), c2 92.6 % (hot: >= critical), c3 97 % (>= 95 %),
  // c4 75 % (hot: warning to critical, in the 70-80 % bin).
  write_rows(path, cfg, Resolution::kHour, kJan1, range(0, 4), {9260, 9260, 9700, 7500});
  auto db = HistoryDb::open_reader(path);
  ReportRequest req;
  req.site = "s1";
  req.from = kJan1;
  req.to = kJan1 + 4 * 3600;
  req.now = *req.to;
  const Report r = compute_report(*db, cfg, req);
  EXPECT_EQ(cab(r, "c1").band, 2);
  EXPECT_EQ(cab(r, "c2").band, 3);
  EXPECT_EQ(cab(r, "c3").band, 3);
  EXPECT_EQ(cab(r, "c4").band, 2);
  EXPECT_EQ(r.bands, (std::array<int, 4>{0, 0, 2, 2}));
  EXPECT_EQ(r.histogram[9], 3);
  EXPECT_EQ(r.histogram_bands[9], (std::array<int, 4>{0, 0, 1, 2}));
  EXPECT_EQ(r.histogram_bands[7], (std::array<int, 4>{0, 0, 1, 0}));
  // Every cabinet is in the same band in the histogram as in the table.
  std::array<int, 4> from_histogram{};
  for (const auto& bin : r.histogram_bands)
    for (std::size_t b = 0; b < 4; ++b) from_histogram[b] += bin[b];
  EXPECT_EQ(from_histogram, r.bands);
  // The 90-100 % bar is drawn as two segments: 1 in the warning colour, 2 in the critical one;
  // the 70-80 % bar in the warning colour, not in the 40-80 % one.
  const std::string html = render_report(r, ReportFormat::kHtml);
  const auto chart = html.substr(html.find("id=\"chart-utilisation\""));
  EXPECT_NE(chart.find("class=\"bar b2\""), std::string::npos);
  EXPECT_NE(chart.find("<title>1 80_to_95</title>"), std::string::npos) << chart;
  EXPECT_NE(chart.find("<title>2 95_and_above</title>"), std::string::npos) << chart;
  EXPECT_EQ(chart.find("40_to_80</title>"), std::string::npos) << chart;
  const auto j = nlohmann::json::parse(render_report(r, ReportFormat::kJson));
  EXPECT_EQ(j["cabinets"]["utilization_histogram_p95_by_band"][9]["80_to_95"], 1);
  EXPECT_EQ(j["cabinets"]["list"][1]["band"], "95_and_above");
  EXPECT_DOUBLE_EQ(j["cabinets"]["list"][1]["overload_critical"].get<double>(), 0.90);
}

// `--from -1h` at 05:26 read in hours covered 04:00-06:00: a period never ends after now, and
// the report says what it covers.
TEST_F(ReportTest, APeriodNeverEndsInTheFuture) {
  auto db = HistoryDb::open_reader(db_path());
  ReportRequest req;
  req.site = "s1";
  req.now = kJan1 + 80 * 86400 + 5 * 3600 + 26 * 60;  // 05:26, inside the hourly history
  req.from = req.now - 3600;
  Report r = compute_report(*db, *cfg_, req);
  EXPECT_EQ(r.resolution_s, 3600) << "hourly rows only";
  EXPECT_EQ(r.from, req.now - 26 * 60 - 3600) << "04:00";
  EXPECT_EQ(r.to, req.now) << format_utc(r.to);
  EXPECT_EQ(r.requested_to, req.now);
  EXPECT_DOUBLE_EQ(r.period_s, 3600 + 26 * 60);
  std::string text = render_report(r, ReportFormat::kText);
  EXPECT_NE(text.find("covered " + format_utc(r.from) + " to " + format_utc(req.now) +
                      " (from the start of the hour)."),
            std::string::npos)
      << text;
  // An end in the future ends now, and says so.
  req.to = req.now + 86400;
  r = compute_report(*db, *cfg_, req);
  EXPECT_EQ(r.to, req.now);
  text = render_report(r, ReportFormat::kText);
  EXPECT_NE(text.find("; ending when the report was generated"), std::string::npos) << text;
  const auto j = nlohmann::json::parse(render_report(r, ReportFormat::kJson));
  EXPECT_EQ(j["period"]["to"], req.now);
  EXPECT_EQ(j["period"]["requested_to"], *req.to);
  // Seconds dropped to start at a whole minute are not worth a note.
  req.from = req.now - 3600 + 17;
  req.to = req.now;
  req.resolution = Resolution::kMinute;
  EXPECT_EQ(render_report(compute_report(*db, *cfg_, req), ReportFormat::kText).find("Requested"),
            std::string::npos);
  req.resolution.reset();
  req.from = req.now + 60;  // all of it in the future
  EXPECT_THROW(compute_report(*db, *cfg_, req), ReportError);
}

// An empty history (or one that does not reach the period) says what to do, in every format.
TEST(ReportEmpty, AnEmptyHistorySaysWhatToDo) {
  TempDir dir;
  const auto cfg = load_config(dir.write("site.yaml", kReportSite));
  const std::string path = (dir.path() / "history.sqlite").string();
  { auto created = HistoryDb::open_writer(path); }  // created, nothing recorded
  auto db = HistoryDb::open_reader(path);
  ReportRequest req;
  req.site = "s1";
  req.now = kJan1;
  Report r = compute_report(*db, cfg, req);
  EXPECT_EQ(r.rows, 0);
  EXPECT_NE(r.hint.find("no records of site s1"), std::string::npos) << r.hint;
  EXPECT_NE(r.hint.find("daemon.state_dir: " + cfg.daemon.state_dir), std::string::npos) << r.hint;
  EXPECT_NE(r.hint.find("history.enabled"), std::string::npos) << r.hint;
  for (auto f : {ReportFormat::kText, ReportFormat::kMarkdown, ReportFormat::kHtml}) {
    EXPECT_NE(render_report(r, f).find("No data: The history has no records"), std::string::npos)
        << render_report(r, f);
  }
  auto j = nlohmann::json::parse(render_report(r, ReportFormat::kJson));
  EXPECT_EQ(j["coverage"]["hint"], r.hint);
  EXPECT_TRUE(j["coverage"]["recorded_since_history_start"].is_null());

  // A history, but not of this period: where it is.
  db.reset();
  write_rows(path, cfg, Resolution::kHour, kJan1, range(0, 2), {1000, 1000, 1000, 0});
  db = HistoryDb::open_reader(path);
  req.now = kJan1 + 10 * 86400;
  req.from = kJan1 + 5 * 86400;
  r = compute_report(*db, cfg, req);
  EXPECT_NE(
      r.hint.find("has records from " + format_utc(kJan1) + " until " + format_utc(kJan1 + 3600)),
      std::string::npos)
      << r.hint;
  // With data in the period, no hint.
  req.from = kJan1;
  EXPECT_EQ(compute_report(*db, cfg, req).hint, "");
}

// A period from before the history starts: minutes where they cover what the history covers,
// gaps counted from the minutes even when the report is read in hours, and the recorded
// fraction both of the period and of the part since the history starts.
TEST(ReportCoverage, APeriodFromBeforeTheHistoryKeepsItsMinuteGaps) {
  TempDir dir;
  const auto cfg = load_config(dir.write("site.yaml", kReportSite));
  const std::string path = (dir.path() / "history.sqlite").string();
  // History from 10:00 to 12:00 with the 4 minutes 10:30-10:34 missing: 116 of 120 minutes.
  const std::int64_t t0 = kJan1 + 10 * 3600;
  std::vector<int> minutes = range(0, 30);
  for (int k = 34; k < 120; ++k) minutes.push_back(k);
  write_rows(path, cfg, Resolution::kMinute, t0, minutes, {1000, 1000, 1000, 0});
  auto db = HistoryDb::open_reader(path);
  ReportRequest req;
  req.site = "s1";
  req.now = t0 + 7200;
  req.from = t0 - 6 * 3600;  // 04:00: 6 hours before the history starts
  Report r = compute_report(*db, cfg, req);
  EXPECT_EQ(r.resolution_s, 60) << "minutes cover all the history covers";
  ASSERT_EQ(r.gap_count, 1);
  EXPECT_EQ(r.gaps[0].start, t0 + 30 * 60);
  EXPECT_EQ(r.gaps[0].seconds, 240);
  EXPECT_DOUBLE_EQ(r.before_history_s, 6 * 3600);
  EXPECT_DOUBLE_EQ(r.history_period_s, 7200);
  EXPECT_NEAR(r.coverage_recorded, 116.0 * 60 / (8 * 3600), 1e-12);
  EXPECT_NEAR(r.coverage_recorded_history, 116.0 / 120, 1e-12);
  const std::string text = render_report(r, ReportFormat::kText);
  const auto line = text.substr(text.find("Recorded since the history starts"));
  EXPECT_EQ(line.substr(0, line.find('\n')).find("96.7 %") != std::string::npos, true) << text;
  // Read in hours (forced here; a period over 7 days is), the gap inside an hour still counts.
  req.resolution = Resolution::kHour;
  r = compute_report(*db, cfg, req);
  EXPECT_EQ(r.resolution_s, 3600);
  ASSERT_EQ(r.gap_count, 1);
  EXPECT_EQ(r.gaps[0].seconds, 240);
  EXPECT_NEAR(r.coverage_recorded_history, 116.0 / 120, 1e-12);
}

TEST(ReportConfig, PricesAndRetentionAreValidated) {
  TempDir dir;
  const auto cfg = load_config(dir.write("a.yaml", R"(history: {minute_retention: 35d, hourly_retention: 730d}
report: {price_per_cabinet_month: 4497, sell_price_per_cabinet_month: 5056}
sites:
  - id: s1
    report: {price_per_cabinet_year: 53000}
    rooms: [{id: r1, rows: [{id: w1, cabinets: [{id: c1, rated_kw: 4.4}]}]}]
  - id: s2
    rooms: [{id: r1, rows: [{id: w1, cabinets: [{id: c1, rated_kw: 4.4}]}]}]
)"));
  EXPECT_EQ(cfg.history.hourly_retention, std::chrono::hours(24 * 730));
  EXPECT_NEAR(*cfg.sites[0].report.price_per_cabinet_month, 53000.0 / 12, 1e-9);
  EXPECT_DOUBLE_EQ(*cfg.sites[1].report.price_per_cabinet_month, 4497);
  EXPECT_DOUBLE_EQ(*cfg.sites[1].report.sell_price_per_cabinet_month, 5056);
  try {
    load_config(dir.write("b.yaml", R"(history: {minute_retention: 1h, hourly_retention: 10d, flush: 1s}
report: {price_per_cabinet_month: 1, price_per_cabinet_year: 12, currency: "C N Y"}
sites:
  - id: s1
    rooms: [{id: r1, rows: [{id: w1, cabinets: [{id: c1, rated_kw: 4.4}]}]}]
)"));
    FAIL() << "expected errors";
  } catch (const ConfigException& e) {
    const std::string all = e.what();
    EXPECT_NE(all.find("b.yaml:1:"), std::string::npos) << all;
    EXPECT_NE(all.find("unknown key \"flush\""), std::string::npos) << all;
    EXPECT_NE(all.find("minute_retention must be at least 2h"), std::string::npos) << all;
    EXPECT_NE(all.find("not both"), std::string::npos) << all;
    EXPECT_NE(all.find("currency"), std::string::npos) << all;
  }
}

}  // namespace
}  // namespace facility::testing
