// The history: cabinet blobs, the recorder's minutes from model snapshots (hand-computed
// energies, peaks, overload incidents, failover), the SQLite store (merge on conflict, hourly
// rollup, hours not rolled up aggregated on the fly, pruning only what is rolled up), and the
// writer thread.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <thread>

#include "daemon/history.h"
#include "model_rig.h"

namespace facility::testing {
namespace {

// s1: c1 (sold) and c2 (internal), 4.4 kW, feeds A+B; a facility and an IT meter. Overload hold
// 1 s so that an 11-second excursion is an incident.
const char* kHistorySite = R"(defaults: {interval: 10s, rated_kw: 4.4}
facility: {overload: {hold: 1s}, failover: {hold: 1s}}
history: {flush_interval: 1s}
sites:
  - id: s1
    rooms:
      - id: r1
        rows:
          - id: w1
            cabinets:
              - {id: c1, status: sold}
              - {id: c2, status: internal}
    devices:
      - {id: c1a, kind: pdu, profile: pdu, endpoint: "tcp://127.0.0.1:1", unit: 1, cabinet: c1, feed: A}
      - {id: c1b, kind: pdu, profile: pdu, endpoint: "tcp://127.0.0.1:1", unit: 2, cabinet: c1, feed: B}
      - {id: c2a, kind: pdu, profile: pdu, endpoint: "tcp://127.0.0.1:1", unit: 3, cabinet: c2, feed: A}
      - {id: c2b, kind: pdu, profile: pdu, endpoint: "tcp://127.0.0.1:1", unit: 4, cabinet: c2, feed: B}
      - {id: main, kind: meter, role: facility_total, profile: meter, endpoint: "tcp://127.0.0.1:1", unit: 8}
      - {id: ups, kind: meter, role: it_at_ups_output, profile: meter, endpoint: "tcp://127.0.0.1:1", unit: 9}
)";

TEST(HistoryBlob, RoundTripKeepsAveragesPeaksAndUnknowns) {
  CabinetInterval a;
  a.energy_ws = 2500.0 * 60;
  a.known_s = 60;
  a.peak_w = 3100;
  a.powered_s = 60;
  a.overload_s = 12;
  a.overload_starts = 2;
  a.failover_min_w = -250;
  a.failover_neg_s = 7;
  CabinetInterval unknown;  // nothing measured
  const auto blob = encode_cabinets({a, unknown});
  EXPECT_EQ(blob.size(), 5u + 2 * 22);
  const auto back = decode_cabinets(blob.data(), blob.size());
  ASSERT_EQ(back.size(), 2u);
  EXPECT_DOUBLE_EQ(back[0].avg_w(), 2500);
  EXPECT_DOUBLE_EQ(back[0].known_s, 60);
  EXPECT_DOUBLE_EQ(back[0].peak_w, 3100);
  EXPECT_EQ(back[0].overload_starts, 2);
  EXPECT_DOUBLE_EQ(back[0].overload_s, 12);
  EXPECT_DOUBLE_EQ(back[0].failover_min_w, -250);
  EXPECT_DOUBLE_EQ(back[0].failover_neg_s, 7);
  EXPECT_TRUE(std::isnan(back[1].avg_w()));
  EXPECT_TRUE(std::isnan(back[1].peak_w));
  EXPECT_TRUE(std::isnan(back[1].failover_min_w));
  EXPECT_THROW(decode_cabinets(blob.data(), blob.size() - 1), std::runtime_error);
}

TEST(HistoryRecorder, MinutesFromModelSnapshots) {
  Rig rig(kHistorySite);
  HistoryRecorder rec(std::make_shared<const Config>(rig.config()));
  std::vector<MinuteRecord> done;
  // One model cycle per second from 0 to 125 s; fresh readings every cycle. c1 = 2200 W, but
  // 4200 W (95.5 % of 4.4 kW: critical; one feed would carry 4200 > 0.8 x 4400) for t = 30..40.
  for (int t = 0; t <= 125; ++t) {
    const bool high = t >= 30 && t <= 40;
    rig.put("c1a", watts(high ? 3000 : 1000), at_s(t));
    rig.put("c1b", watts(1200), at_s(t));
    rig.put("c2a", watts(500), at_s(t));
    rig.put("c2b", watts(500), at_s(t));
    rig.put("main", {{"active_power", {4.0, "kW"}}}, at_s(t));
    rig.put("ups", {{"active_power", {3.2, "kW"}}}, at_s(t));
    auto snap = rig.update(at_s(t));
    for (auto& m : rec.add(*snap)) done.push_back(std::move(m));
  }
  ASSERT_EQ(done.size(), 2u) << "minutes [0, 60) and [60, 120) are complete";
  const auto t0 = std::chrono::duration_cast<std::chrono::seconds>(rig_t0().time_since_epoch()).count();
  const MinuteRecord& m0 = done[0];
  EXPECT_EQ(m0.t, t0);
  // The first cycle stands for no time (nothing before it); cycles 1..59 for 1 s each.
  const SiteInterval& s = m0.site_data;
  EXPECT_NEAR(s.samples_s, 59, 1e-6);
  EXPECT_NEAR(s.it_j, 3200.0 * 59, 1e-3);
  EXPECT_NEAR(s.fac_j, 4000.0 * 59, 1e-3);
  EXPECT_NEAR(s.pue_fac_j / s.pue_it_j, 1.25, 1e-12);
  // 11 cycles at 4200 + 1000 W, 48 at 2200 + 1000 W.
  EXPECT_NEAR(s.cab_j, 11 * 5200.0 + 48 * 3200.0, 1e-3);
  EXPECT_NEAR(s.cab_peak_w, 5200, 1e-9);
  EXPECT_NEAR(s.cab_known_s, 2 * 59, 1e-6);
  EXPECT_EQ(s.total, 2);
  EXPECT_EQ(s.powered, 2);
  EXPECT_EQ(s.sold, 1);
  EXPECT_EQ(s.internal, 1);
  EXPECT_EQ(s.pue_category, 1);

  const CabinetInterval& c1 = m0.cabinets[0];
  EXPECT_NEAR(c1.energy_ws, 11 * 4200.0 + 48 * 2200.0, 1e-3);
  EXPECT_NEAR(c1.avg_w(), (11 * 4200.0 + 48 * 2200.0) / 59, 1e-6);
  EXPECT_DOUBLE_EQ(c1.peak_w, 4200);
  EXPECT_NEAR(c1.powered_s, 59, 1e-6);
  EXPECT_EQ(c1.overload_starts, 1);
  // Raised after the 1 s hold, cleared 1 s after the drop: about the 11 s of the excursion.
  EXPECT_GE(c1.overload_s, 9);
  EXPECT_LE(c1.overload_s, 12);
  EXPECT_NEAR(c1.failover_min_w, 0.8 * 4400 - 4200, 1e-6);
  EXPECT_NEAR(c1.failover_neg_s, 11, 1e-6);
  const CabinetInterval& c2 = m0.cabinets[1];
  EXPECT_DOUBLE_EQ(c2.avg_w(), 1000);
  EXPECT_EQ(c2.overload_starts, 0);
  EXPECT_TRUE(c2.failover_min_w > 0);

  const MinuteRecord& m1 = done[1];
  EXPECT_EQ(m1.t, t0 + 60);
  EXPECT_NEAR(m1.site_data.samples_s, 60, 1e-6);
  EXPECT_DOUBLE_EQ(m1.cabinets[0].avg_w(), 2200);
  EXPECT_EQ(m1.cabinets[0].overload_starts, 0);

  // The minute in progress comes out on flush (shutdown), partial.
  auto rest = rec.flush();
  ASSERT_EQ(rest.size(), 1u);
  EXPECT_EQ(rest[0].t, t0 + 120);
  EXPECT_NEAR(rest[0].site_data.samples_s, 6, 1e-6);
}

TEST(HistoryRecorder, StaleCabinetIsNotCountedAsKnown) {
  Rig rig(kHistorySite);
  HistoryRecorder rec(std::make_shared<const Config>(rig.config()));
  // c2's PDUs answer once at t = 0 and then never: stale after 3 x 10 s.
  rig.put("c2a", watts(500), at_s(0));
  rig.put("c2b", watts(500), at_s(0));
  std::vector<MinuteRecord> done;
  for (int t = 0; t <= 60; ++t) {
    rig.put("c1a", watts(1000), at_s(t));
    rig.put("c1b", watts(1000), at_s(t));
    for (auto& m : rec.add(*rig.update(at_s(t)))) done.push_back(std::move(m));
  }
  ASSERT_EQ(done.size(), 1u);
  const auto& c2 = done[0].cabinets[1];
  // Known while fresh (t = 1..30 at most), never frozen at 1000 W for the whole minute.
  EXPECT_LE(c2.known_s, 31);
  EXPECT_GE(c2.known_s, 29);
  EXPECT_DOUBLE_EQ(c2.avg_w(), 1000);
  EXPECT_NEAR(done[0].site_data.cab_s, c2.known_s, 1e-9) << "the site sum needs every cabinet";
}

class HistoryDbTest : public ::testing::Test {
 protected:
  TempDir dir_;
  std::string path() const { return (dir_.path() / "history.sqlite").string(); }
  static SiteInterval site(double samples, double it_w) {
    SiteInterval s;
    s.samples_s = samples;
    s.it_j = it_w * samples;
    s.it_s = samples;
    s.it_peak_w = it_w;
    s.total = 2;
    s.powered = 2;
    s.powered_max = 2;
    return s;
  }
  static CabinetInterval cab(double w, double s) {
    CabinetInterval c;
    c.energy_ws = w * s;
    c.known_s = s;
    c.peak_w = w;
    c.powered_s = s;
    return c;
  }
};

TEST_F(HistoryDbTest, MergeRollupReadAndPrune) {
  auto db = HistoryDb::open_writer(path());
  const auto layout = db->layout_id("s1", {{"c1", "r1", 4400, "sold"}, {"c2", "r1", 4400, "free"}});
  EXPECT_EQ(db->layout_id("s1", {{"c1", "r1", 4400, "sold"}, {"c2", "r1", 4400, "free"}}), layout);
  const auto other = db->layout_id("s1", {{"c1", "r1", 8800, "sold"}});
  EXPECT_NE(other, layout);

  const std::int64_t h = 1'750'000'000 / 3600 * 3600;
  // Hour h: 60 minutes, c1 at 1000 W then 3000 W in the second half. Hour h+1: 10 minutes.
  for (int m = 0; m < 60; ++m) {
    const double w = m < 30 ? 1000 : 3000;
    db->write_row(Resolution::kMinute, "s1", h + m * 60, layout, site(60, 2 * w),
                  {cab(w, 60), cab(w, 60)});
  }
  for (int m = 0; m < 10; ++m) {
    db->write_row(Resolution::kMinute, "s1", h + 3600 + m * 60, layout, site(60, 500),
                  {cab(250, 60), cab(250, 60)});
  }
  // A restart within the same minute: the second write adds to the first.
  db->write_row(Resolution::kMinute, "s1", h + 3600, layout, site(30, 500),
                {cab(250, 30), cab(250, 30)});

  EXPECT_EQ(db->rollup(h + 3600 + 1800), 1) << "only hour h is complete";
  EXPECT_EQ(db->rolled_up_to(), h + 3600);

  std::vector<std::pair<std::int64_t, SiteInterval>> rows;
  db->read_sites(Resolution::kHour, "s1", h, h + 7200,
                 [&](std::int64_t t, const SiteInterval& s) { rows.emplace_back(t, s); });
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].first, h);
  EXPECT_NEAR(rows[0].second.samples_s, 3600, 1e-9);
  EXPECT_NEAR(rows[0].second.it_j / rows[0].second.it_s, 4000, 1e-9);  // (2000 + 6000) / 2
  EXPECT_DOUBLE_EQ(rows[0].second.it_peak_w, 6000);
  EXPECT_EQ(rows[1].first, h + 3600) << "not rolled up yet: aggregated from its minutes";
  EXPECT_NEAR(rows[1].second.samples_s, 630, 1e-9);

  std::vector<std::vector<CabinetInterval>> cabs;
  db->read_cabinets(Resolution::kHour, "s1", h, h + 7200,
                    [&](std::int64_t, std::int64_t l, const std::vector<CabinetInterval>& v) {
                      EXPECT_EQ(l, layout);
                      cabs.push_back(v);
                    });
  ASSERT_EQ(cabs.size(), 2u);
  EXPECT_NEAR(cabs[0][0].avg_w(), 2000, 1e-3);
  EXPECT_DOUBLE_EQ(cabs[0][0].peak_w, 3000);
  EXPECT_NEAR(cabs[1][0].known_s, 630, 1e-9);

  // Minutes are pruned only where hours exist: with 2 h of minutes kept, at h + 5 h, hour h's
  // minutes go, hour h+1's stay (not rolled up).
  HistorySettings hs;
  hs.minute_retention = std::chrono::hours(2);
  db->prune(h + 5 * 3600, hs);
  EXPECT_EQ(db->count_rows(Resolution::kMinute, "s1", h, h + 3600), 0);
  EXPECT_EQ(db->count_rows(Resolution::kMinute, "s1", h + 3600, h + 7200), 10);
  rows.clear();
  db->read_sites(Resolution::kHour, "s1", h, h + 7200,
                 [&](std::int64_t t, const SiteInterval& s) { rows.emplace_back(t, s); });
  EXPECT_EQ(rows.size(), 2u) << "the hourly view is unchanged by pruning";

  // A reader sees what the writer committed, and cannot write.
  auto reader = HistoryDb::open_reader(path());
  EXPECT_EQ(reader->layouts("s1").size(), 2u);
  EXPECT_THROW(reader->exec("DELETE FROM site_hour"), std::runtime_error);
  EXPECT_THROW(HistoryDb::open_reader((dir_.path() / "missing.sqlite").string()),
               std::runtime_error);
}

TEST_F(HistoryDbTest, WriterThreadWritesEveryMinuteAndTheLastOnStop) {
  Rig rig(kHistorySite);
  auto cfg = std::make_shared<const Config>(rig.config());
  HistoryWriter w(cfg, path());
  w.start();
  HistoryRecorder rec(cfg);
  for (int t = 0; t <= 150; ++t) {
    rig.put("c1a", watts(700), at_s(t));
    rig.put("c1b", watts(700), at_s(t));
    rig.put("c2a", watts(100), at_s(t));
    rig.put("c2b", watts(100), at_s(t));
    w.submit(rec.add(*rig.update(at_s(t))));
  }
  w.submit(rec.flush());
  w.stop();
  const auto st = w.stats();
  EXPECT_EQ(st.minutes_written, 3u);
  EXPECT_EQ(st.minutes_dropped, 0u);
  EXPECT_EQ(st.write_errors, 0u);
  auto db = HistoryDb::open_reader(path());
  const auto t0 = std::chrono::duration_cast<std::chrono::seconds>(rig_t0().time_since_epoch()).count();
  double samples = 0;
  db->read_sites(Resolution::kMinute, "s1", t0, t0 + 3600,
                 [&](std::int64_t, const SiteInterval& s) { samples += s.samples_s; });
  EXPECT_NEAR(samples, 150, 1e-6);
}

TEST_F(HistoryDbTest, WriterFailsClearlyWithoutItsDirectory) {
  Rig rig(kHistorySite);
  HistoryWriter w(std::make_shared<const Config>(rig.config()),
                  (dir_.path() / "no-such-dir" / "history.sqlite").string());
  try {
    w.start();
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("no-such-dir"), std::string::npos) << e.what();
  }
}

// A process killed in the middle of writing (big transactions, back to back) leaves a database
// that passes integrity_check and holds exactly the transactions that committed.
TEST_F(HistoryDbTest, KilledMidWriteLeavesAConsistentDatabase) {
  HistoryDb::open_writer(path());  // schema first, so the reader below never races it
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // The child writes until killed; it never returns into the test runner.
    try {
    auto db = HistoryDb::open_writer(path());
    std::vector<LayoutCabinet> layout;
    for (int i = 0; i < 2000; ++i) layout.push_back({"c" + std::to_string(i), "r1", 4400, "sold"});
    const auto id = db->layout_id("s1", layout);
    std::vector<MinuteRecord> batch(30);
    for (std::int64_t n = 0;; ++n) {
      for (std::size_t k = 0; k < batch.size(); ++k) {
        auto& m = batch[k];
        m.site = "s1";
        m.t = (n * std::int64_t(batch.size()) + std::int64_t(k)) * 60;
        m.site_data = site(60, 1000);
        m.cabinets.assign(2000, cab(1000, 60));
      }
      db->write_minutes(batch, {id});
    }
    } catch (...) {
    }
    _exit(1);
  }
  auto rows = [&] {
    try {
      return HistoryDb::open_reader(path())->count_rows(Resolution::kMinute, "s1", 0, 1LL << 40);
    } catch (const std::exception&) {
      return std::int64_t(0);
    }
  };
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (rows() < 90 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  // A transaction of 30 minutes x 44 kB takes tens of ms: a kill now lands inside one.
  std::this_thread::sleep_for(std::chrono::milliseconds(7));
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));

  auto db = HistoryDb::open_reader(path());
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db->handle(), "PRAGMA integrity_check", -1, &st, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), "ok");
  sqlite3_finalize(st);
  const auto n = db->count_rows(Resolution::kMinute, "s1", 0, 1LL << 40);
  EXPECT_GE(n, 90);
  EXPECT_EQ(n % 30, 0) << "whole transactions only";
  std::int64_t sites = 0;
  db->read_sites(Resolution::kMinute, "s1", 0, 1LL << 40,
                 [&](std::int64_t, const SiteInterval&) { ++sites; });
  EXPECT_EQ(sites, n) << "site and cabinet rows of a minute commit together";
}

}  // namespace
}  // namespace facility::testing
