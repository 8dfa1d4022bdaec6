// Cost of the history and of reports at full scale. Not part of scripts/test.
//
//   ninja -C build report_bench && build/report_bench [cabinets] [days]   (default 2000 730)
//
// 1. Recorder: HistoryRecorder::add per model cycle (on the model thread) for a site of N
//    cabinets with every value known, against compute_snapshot of the same site in the same
//    run (the model cycle it rides on).
// 2. Writer: one minute of the site written (one transaction, as the writer thread does), and
//    the same per model cycle (/ 60).
// 3. Report: a history of `days` of hourly rows for the site (written directly), then the
//    report computed from it, against only reading the rows (read_cabinets + read_sites).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "daemon/sinks/history/history.h"
#include "daemon/model/model.h"
#include "daemon/reports/report.h"

namespace {

using namespace facility;
using Steady = std::chrono::steady_clock;

double ms_since(Steady::time_point t0) {
  return std::chrono::duration<double, std::milli>(Steady::now() - t0).count();
}

std::string make_config(int cabinets) {
  std::ostringstream y;
  y << "defaults: {rated_kw: 4.4}\nsites:\n  - id: s\n    planned_cabinets: " << cabinets
    << "\n    build_out_plan: [{date: 2024-01-01, powered: " << cabinets / 2
    << "}]\n    rooms:\n";
  const int rooms = std::max(1, cabinets / 200);
  for (int r = 0; r < rooms; ++r) {
    y << "      - id: r" << r << "\n        rows:\n          - id: w\n            cabinets:\n";
    for (int c = r; c < cabinets; c += rooms) {
      y << "              - {id: c" << c << ", status: " << (c % 10 ? "sold" : "free") << "}\n";
    }
  }
  return y.str();
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 2000;
  const int days = argc > 2 ? std::atoi(argv[2]) : 730;
  const auto dir = std::filesystem::temp_directory_path() / "facilityd-report-bench";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const auto cfg_path = (dir / "bench.yaml").string();
  std::ofstream(cfg_path) << make_config(n);
  auto cfg = std::make_shared<const Config>(load_config(cfg_path));
  std::printf("site of %d cabinets, %d days of hourly history\n", n, days);

  // ---- 1. Recorder per cycle vs the stateless model cycle ------------------------------
  const TimePoint t0 = Clock::now();
  const int cycles = 600;
  double model_ms = 0, rec_ms = 0;
  HistoryRecorder rec(cfg);
  std::vector<MinuteRecord> minutes;
  for (int i = 0; i < cycles; ++i) {
    const TimePoint now = t0 + std::chrono::seconds(i);
    auto s0 = Steady::now();
    auto base = compute_snapshot(cfg, {}, now);
    model_ms += ms_since(s0);
    // Every value known (the recorder's most expensive path).
    FacilitySnapshot snap = *base;
    for (auto& ss : snap.sites) {
      double sum = 0;
      for (std::size_t k = 0; k < ss.cabinets.size(); ++k) {
        auto& cs = ss.cabinets[k];
        cs.power_w = 1000.0 + double((k * 37 + std::size_t(i)) % 3000);
        cs.powered = true;
        cs.failover_headroom_w = 3520 - *cs.power_w;
        sum += *cs.power_w;
      }
      ss.capacity.measured_w = sum;
      ss.it_power_w = sum;
      ss.facility_power_w = sum * 1.3;
      ss.occupancy.measured = int(ss.cabinets.size());
    }
    s0 = Steady::now();
    auto done = rec.add(snap);
    rec_ms += ms_since(s0);
    for (auto& m : done) minutes.push_back(std::move(m));
  }
  std::printf("recorder: %.3f ms per cycle; stateless model cycle %.2f ms; ratio %.3f\n",
              rec_ms / cycles, model_ms / cycles, rec_ms / model_ms);

  // ---- 2. Writing a minute --------------------------------------------------------------
  {
    auto db = HistoryDb::open_writer((dir / "write.sqlite").string());
    const std::vector<std::int64_t> layout{db->layout_id("s", layout_of(cfg->sites[0]))};
    double total = 0;
    for (const auto& m : minutes) {
      const auto s0 = Steady::now();
      db->write_minutes({m}, layout);
      total += ms_since(s0);
    }
    const double per = total / double(minutes.size());
    std::printf("writer: %.2f ms per minute written (%zu minutes, %zu bytes per cabinet blob); "
                "%.3f ms per model cycle amortised\n",
                per, minutes.size(), encode_cabinets(minutes[0].cabinets).size(), per / 60);
  }

  // ---- 3. Report over a long hourly history --------------------------------------------
  const auto path = (dir / "report.sqlite").string();
  const std::int64_t start = 1704067200;  // 2024-01-01
  const int hours = days * 24;
  {
    auto db = HistoryDb::open_writer(path);
    const auto layout = db->layout_id("s", layout_of(cfg->sites[0]));
    const auto s0 = Steady::now();
    db->exec("BEGIN");
    std::vector<CabinetInterval> cabs(static_cast<std::size_t>(n));
    for (int h = 0; h < hours; ++h) {
      for (int k = 0; k < n; ++k) {
        const double w = 1000 + (k * 37 + h * 11) % 3000;
        auto& c = cabs[std::size_t(k)];
        c.energy_ws = w * 3600;
        c.known_s = 3600;
        c.peak_w = w * 1.1;
        c.powered_s = 3600;
      }
      SiteInterval s;
      s.samples_s = s.it_s = s.fac_s = s.pue_s = s.cab_s = 3600;
      s.it_j = s.pue_it_j = s.cab_j = 2500.0 * n * 3600;
      s.fac_j = s.pue_fac_j = 1.3 * s.it_j;
      s.cab_peak_w = 2700.0 * n + h;
      s.total = n;
      s.powered = s.powered_max = s.powered_known = n - n / 10 + h * n / 10 / hours;
      db->write_row(Resolution::kHour, "s", start + std::int64_t(h) * 3600, layout, s, cabs);
      if (h % 2000 == 1999) {
        db->exec("COMMIT");
        db->exec("BEGIN");
      }
    }
    db->exec("COMMIT");
    std::printf("history of %d hours written in %.1f s; database %.0f MB\n", hours,
                ms_since(s0) / 1000, double(std::filesystem::file_size(path)) / 1e6);
  }
  auto db = HistoryDb::open_reader(path);
  const std::int64_t end = start + std::int64_t(hours) * 3600;
  auto s0 = Steady::now();
  std::size_t rows = 0;
  db->read_sites(Resolution::kHour, "s", start, end,
                 [&](std::int64_t, const SiteInterval&) { ++rows; });
  db->read_cabinets(Resolution::kHour, "s", start, end,
                    [&](std::int64_t, std::int64_t, const std::vector<CabinetInterval>& v) {
                      rows += v.size();
                    });
  const double read_ms = ms_since(s0);
  ReportRequest req;
  req.site = "s";
  req.from = start;
  req.to = end;
  req.now = end;
  s0 = Steady::now();
  const Report r = compute_report(*db, *cfg, req);
  const double report_ms = ms_since(s0);
  s0 = Steady::now();
  const auto html = render_report(r, ReportFormat::kHtml);
  const double html_ms = ms_since(s0);
  std::printf("report over %d days: read only %.0f ms (%zu values), compute %.0f ms "
              "(%.2f x read), html render %.1f ms (%zu bytes); p95 %.0f kW\n",
              days, read_ms, rows, report_ms, report_ms / read_ms, html_ms, html.size(),
              r.p95_w / 1000);
  std::filesystem::remove_all(dir);
  return 0;
}
