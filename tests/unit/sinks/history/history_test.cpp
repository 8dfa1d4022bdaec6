// The history: cabinet blobs, the recorder's minutes from model snapshots (hand-computed
// energies, peaks, overload incidents, failover), the SQLite store (merge on conflict, hourly
// rollup, hours not rolled up aggregated on the fly, pruning only what is rolled up), and the
// writer thread.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <iostream>
#include <iterator>
#include <thread>

#include "daemon/sinks/history/history.h"
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

// A model step is up to 5 s (a site polled every 10 s or slower), and a loaded machine runs one
// late: such cycles stand for all their time. A stalled model does not stretch old values over
// the gap: a cycle stands for at most kMaxSampleGap (15 s).
TEST(HistoryRecorder, CyclesStandForTheirTimeButAStallForAtMost15s) {
  Rig rig(kHistorySite);
  HistoryRecorder rec(std::make_shared<const Config>(rig.config()));
  std::vector<MinuteRecord> done;
  const auto cycle = [&](int t) {
    for (const char* pdu : {"c1a", "c1b", "c2a", "c2b"}) rig.put(pdu, watts(1000), at_s(t));
    rig.put("main", {{"active_power", {4.0, "kW"}}}, at_s(t));
    rig.put("ups", {{"active_power", {3.2, "kW"}}}, at_s(t));
    for (auto& m : rec.add(*rig.update(at_s(t)))) done.push_back(std::move(m));
  };
  for (int t = 0; t <= 56; t += 7) cycle(t);   // minute 0: 8 gaps of 7 s
  for (int t : {63, 110, 117, 121}) cycle(t);  // minute 1: 7 s, a 47 s stall, 7 s
  ASSERT_EQ(done.size(), 2u);
  EXPECT_NEAR(done[0].site_data.samples_s, 56, 1e-6);
  EXPECT_NEAR(done[0].site_data.it_j, 3200.0 * 56, 1e-3);
  EXPECT_NEAR(done[1].site_data.samples_s, 7 + 15 + 7, 1e-6);
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

// The last minute of an hour completes only on the first model cycle of the next hour, so the
// writer can roll the hour up before that minute is written (review B3). It must still reach
// the hour, in the hourly view and after its minutes are pruned.
TEST_F(HistoryDbTest, MinuteWrittenAfterItsHourWasRolledUpReachesTheHour) {
  auto db = HistoryDb::open_writer(path());
  const auto layout = db->layout_id("s1", {{"c1", "r1", 4400, "sold"}, {"c2", "r1", 4400, "free"}});
  const std::int64_t h = 1'750'000'000 / 3600 * 3600;
  auto minute = [&](int m, double w) {
    MinuteRecord r;
    r.site = "s1";
    r.site_index = 0;
    r.t = h + m * 60;
    r.site_data = site(60, 2 * w);
    r.cabinets = {cab(w, 60), cab(w, 60)};
    return r;
  };
  std::vector<MinuteRecord> first;
  for (int m = 0; m < 59; ++m) first.push_back(minute(m, 1000));
  db->write_minutes(first, {layout});
  ASSERT_EQ(db->rollup(h + 3600 + 5), 1);
  ASSERT_EQ(db->rolled_up_to(), h + 3600);
  db->write_minutes({minute(59, 4000)}, {layout});  // the late minute, at a different power
  EXPECT_EQ(db->rollup(h + 3600 + 65), 0) << "nothing new to roll up";

  auto check = [&](const char* when) {
    std::vector<SiteInterval> rows;
    db->read_sites(Resolution::kHour, "s1", h, h + 3600,
                   [&](std::int64_t, const SiteInterval& s) { rows.push_back(s); });
    ASSERT_EQ(rows.size(), 1u) << when;
    EXPECT_NEAR(rows[0].samples_s, 3600, 1e-9) << when;
    EXPECT_NEAR(rows[0].it_j, (59 * 2000.0 + 8000.0) * 60, 1e-6) << when;
    EXPECT_DOUBLE_EQ(rows[0].it_peak_w, 8000) << when;
    std::vector<std::vector<CabinetInterval>> cabs;
    db->read_cabinets(Resolution::kHour, "s1", h, h + 3600,
                      [&](std::int64_t, std::int64_t, const std::vector<CabinetInterval>& v) {
                        cabs.push_back(v);
                      });
    ASSERT_EQ(cabs.size(), 1u) << when;
    EXPECT_NEAR(cabs[0][0].known_s, 3600, 1e-9) << when;
    EXPECT_NEAR(cabs[0][0].energy_ws, (59 * 1000.0 + 4000.0) * 60, 1e-6) << when;
    EXPECT_DOUBLE_EQ(cabs[0][0].peak_w, 4000) << when;
  };
  check("before pruning");
  HistorySettings hs;
  hs.minute_retention = std::chrono::hours(1);
  db->prune(h + 3 * 3600, hs);
  ASSERT_EQ(db->count_rows(Resolution::kMinute, "s1", h, h + 3600), 0);
  check("after the minutes are pruned");
}

// Rows are merged into existing ones, so a second daemon on the same state directory would
// double every figure (review B15): the second writer must fail at start, clearly, and the
// lock must be free again once the first one stops.
TEST_F(HistoryDbTest, SecondWriterOnTheSameDatabaseFailsAtStart) {
  Rig rig(kHistorySite);
  auto cfg = std::make_shared<const Config>(rig.config());
  auto first = std::make_unique<HistoryWriter>(cfg, path());
  first->start();
  HistoryWriter second(cfg, path());
  try {
    second.start();
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("another facilityd"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(path()), std::string::npos) << e.what();
  }
  first->stop();
  first.reset();
  EXPECT_NO_THROW(second.start());
  second.stop();
}

// A minute the writer cannot write at shutdown is counted as dropped, never lost silently
// (review B13). The write is made to fail with a record whose site has no layout.
TEST_F(HistoryDbTest, MinutesUnwrittenAtShutdownAreCountedAsDropped) {
  Rig rig(kHistorySite);
  auto cfg = std::make_shared<const Config>(rig.config());
  HistoryWriter w(cfg, path());
  w.start();
  MinuteRecord bad;
  bad.site = "s1";
  bad.site_index = 7;  // no such site: write_minutes throws, the batch is retried, then dropped
  bad.t = 60;
  w.submit({bad, bad});
  EXPECT_EQ(w.stats().pending, 2u);
  w.stop();
  const auto st = w.stats();
  EXPECT_EQ(st.minutes_written, 0u);
  EXPECT_EQ(st.minutes_dropped, 2u);
  EXPECT_EQ(st.pending, 0u);
  EXPECT_GE(st.write_errors, 1u);
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

// A facility meter at 4 kW and an IT (UPS output) meter at 3.2 kW;
// energy PUE windows of 1 and 2 minutes. (Polled every 2 s, read every second here.)
const char* kEnergySite = R"(defaults: {interval: 2s, rated_kw: 4.4}
facility: {pue_windows: [1m, 2m]}
sites:
  - id: s1
    rooms:
      - id: r1
        rows:
          - id: w1
            cabinets:
              - {id: c1, status: sold}
    devices:
      - {id: main, kind: meter, role: facility_total, profile: meter, endpoint: "tcp://127.0.0.1:1", unit: 8}
      - {id: ups, kind: meter, role: it_at_ups_output, profile: meter, endpoint: "tcp://127.0.0.1:1", unit: 9}
)";

// One model cycle at t with both meters' readings; the snapshot.
std::shared_ptr<const FacilitySnapshot> meter_cycle(Rig& rig, int t) {
  rig.put("main", kw(4.0, 4.0 * t / 3600), at_s(t));
  rig.put("ups", kw(3.2, 3.2 * t / 3600), at_s(t));
  return rig.update(at_s(t));
}

const PueValue* pue_of(const FacilitySnapshot& snap, const std::string& window) {
  for (const auto& pv : snap.sites.at(0).pue_values) {
    if (pv.category == 1 && pv.window == window) return &pv;
  }
  return nullptr;
}

TEST_F(HistoryDbTest, EnergyPueWindowsSurviveARestart) {
  // The first run: 200 s, its energy grid in the history.
  {
    Rig rig(kEnergySite);
    auto cfg = std::make_shared<const Config>(rig.config());
    HistoryWriter w(cfg, path());
    w.start();
    HistoryRecorder rec(cfg);
    std::shared_ptr<const FacilitySnapshot> snap;
    for (int t = 0; t <= 200; ++t) w.submit(rec.add(*(snap = meter_cycle(rig, t))));
    ASSERT_TRUE(pue_of(*snap, "2m") && pue_of(*snap, "2m")->pue);
    EXPECT_NEAR(*pue_of(*snap, "2m")->pue, 1.25, 1e-9);
    w.submit(rec.flush());
    w.stop();
  }
  // Restarted 30 s later: 10 s after it, the 2-minute window is back, with the downtime in
  // its coverage and the ratio of what was measured.
  Rig rig(kEnergySite);
  const auto restored = restore_energy_windows(rig.model(), path(), at_s(230));
  EXPECT_EQ(restored.series, 2u);
  EXPECT_EQ(restored.restored, 2u);
  std::shared_ptr<const FacilitySnapshot> snap;
  for (int t = 230; t <= 240; ++t) snap = meter_cycle(rig, t);
  const PueValue* pv = pue_of(*snap, "2m");
  ASSERT_TRUE(pv && pv->pue) << "the 2-minute window spans the restart";
  EXPECT_NEAR(*pv->pue, 1.25, 1e-9);
  ASSERT_TRUE(pv->it_coverage && pv->facility_coverage);
  // [120, 240]: about 30-40 s of the 120 s were not measured.
  EXPECT_GT(*pv->it_coverage, 0.6);
  EXPECT_LT(*pv->it_coverage, 0.8);
  EXPECT_DOUBLE_EQ(*pv->it_coverage, *pv->facility_coverage);

  // Without the history the same model has no 2-minute window yet.
  Rig fresh(kEnergySite);
  for (int t = 230; t <= 240; ++t) snap = meter_cycle(fresh, t);
  pv = pue_of(*snap, "2m");
  EXPECT_FALSE(pv && pv->it_coverage) << "no history reaching back 2 minutes";

  // Restarted 100 s later: the daemon ran for less than half of the 2-minute window, so no PUE
  // for it yet, though its coverage is stated.
  Rig late(kEnergySite);
  EXPECT_EQ(restore_energy_windows(late.model(), path(), at_s(300)).restored, 2u);
  for (int t = 300; t <= 310; ++t) snap = meter_cycle(late, t);
  pv = pue_of(*snap, "2m");
  ASSERT_TRUE(pv && pv->it_coverage);
  EXPECT_LT(*pv->it_coverage, 0.5);
  EXPECT_FALSE(pv->pue);
}

TEST(EnergyRestore, FractionalLostTimeBeforeARestartDoesNotWithholdThePue) {
  // Lost and down device-seconds are sums that began long before (these bases are from an
  // older gap). The restart adds 30 s to both; their differences then round apart
  // (1 - 30.000000000000004/120 against 1 - 30/120): the window must still count as fully
  // covered while the daemon ran.
  Rig rig(kEnergySite);
  std::vector<EnergyGridPoint> fac, it;
  for (int t = 0; t <= 200; t += 10) {
    fac.push_back({at_s(t), 4000.0 * t, 123.802, 27.637});
    it.push_back({at_s(t), 3200.0 * t, 123.802, 27.637});
  }
  EXPECT_EQ(rig.model().restore_energy("s1", "facility_total", fac, at_s(230)), fac.size());
  EXPECT_EQ(rig.model().restore_energy("s1", "it_at_ups_output", it, at_s(230)), it.size());
  std::shared_ptr<const FacilitySnapshot> snap;
  for (int t = 230; t <= 240; ++t) snap = meter_cycle(rig, t);
  const PueValue* pv = pue_of(*snap, "2m");
  ASSERT_TRUE(pv && pv->it_coverage);
  EXPECT_DOUBLE_EQ(*pv->it_coverage, 0.75);
  ASSERT_TRUE(pv->pue);
  EXPECT_NEAR(*pv->pue, 1.25, 1e-9);
}

TEST_F(HistoryDbTest, EnergyGridOfOtherDevicesIsNeitherRestoredNorContinued) {
  auto db = HistoryDb::open_writer(path());
  auto p = [](int t, double j) { return EnergyGridPoint{at_s(t), j, 0, 0}; };
  db->write_energy("s1", {"facility_total", "main", {p(0, 0), p(10, 40000)}});
  EXPECT_EQ(db->energy_members("s1", "facility_total"), "main");
  EXPECT_EQ(db->read_energy("s1", "facility_total", 0).size(), 2u);
  // The role now counts other meters: the old rows are gone, the new ones start over.
  db->write_energy("s1", {"facility_total", "main,main2", {p(20, 0)}});
  EXPECT_EQ(db->energy_members("s1", "facility_total"), "main,main2");
  const auto rows = db->read_energy("s1", "facility_total", 0);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].t, at_s(20));
  db.reset();
  // A model whose role counts only "main" restores nothing from them.
  Rig rig(kEnergySite);
  const auto r = restore_energy_windows(rig.model(), path(), at_s(30));
  EXPECT_EQ(r.series, 2u);
  EXPECT_EQ(r.restored, 0u);
}

TEST_F(HistoryDbTest, EnergyGridKeepsWhatTheWindowsNeed) {
  auto db = HistoryDb::open_writer(path());
  const std::int64_t now = 1'750'000'000 / 300 * 300;
  std::vector<EnergyGridPoint> pts;
  for (std::int64_t t = now - 3 * 86400; t <= now; t += 10) {
    pts.push_back({TimePoint(std::chrono::seconds(t)), double(t - now), 0, 0});
  }
  db->write_energy("s1", {"facility_total", "main", pts});
  db->prune_energy(now, 2 * 86400);  // the longest window: 2 days
  const auto rows = db->read_energy("s1", "facility_total", 0);
  std::size_t fine = 0, coarse = 0;
  for (const auto& r : rows) {
    const auto t = std::chrono::duration_cast<std::chrono::seconds>(r.t.time_since_epoch()).count();
    EXPECT_GE(t, now - 2 * 86400 - 600) << "nothing older than the longest window";
    if (t < now - 25 * 3600 - 600) {
      EXPECT_EQ(t % 300, 0) << "only 5-minute points beyond 25 h";
      ++coarse;
    } else {
      ++fine;
    }
  }
  EXPECT_EQ(fine, std::size_t((25 * 3600 + 600) / 10 + 1));
  EXPECT_GT(coarse, 250u);
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

// Frames of the current WAL generation written after its last commit frame: a transaction
// that was being written when the process died. (WAL format, sqlite.org/fileformat.html: a
// 32-byte header with the page size at 8 and the salts at 16; per frame a 24-byte header whose
// bytes 4-7 are non-zero on a commit frame and whose salts at 8-15 match the header's.)
std::size_t uncommitted_wal_frames(const std::string& wal) {
  std::ifstream in(wal, std::ios::binary);
  std::vector<unsigned char> b((std::istreambuf_iterator<char>(in)), {});
  auto be32 = [&](std::size_t o) {
    return std::uint32_t(b[o]) << 24 | std::uint32_t(b[o + 1]) << 16 |
           std::uint32_t(b[o + 2]) << 8 | std::uint32_t(b[o + 3]);
  };
  if (b.size() < 32) return 0;
  std::size_t page = be32(8);
  if (page == 1) page = 65536;
  if (page < 512) return 0;
  std::size_t after_commit = 0;
  for (std::size_t o = 32; o + 24 + page <= b.size(); o += 24 + page) {
    if (be32(o + 8) != be32(16) || be32(o + 12) != be32(20)) break;  // an older generation
    after_commit = be32(o + 4) != 0 ? 0 : after_commit + 1;
  }
  return after_commit;
}

// A process killed in the middle of writing leaves a database that passes integrity_check and
// holds exactly the transactions that committed. The child writes big transactions back to
// back (100 minutes x 2,000 cabinets, ~4.4 MB: more than SQLite's page cache, so pages reach
// the WAL before the commit) and reports each commit through a pipe. The test proves that a
// kill interrupted a transaction by finding frames after the last commit frame in the WAL
// before anything reopens it; it tries up to 5 kills for that.
TEST_F(HistoryDbTest, KilledMidWriteLeavesAConsistentDatabase) {
  constexpr std::size_t kBatch = 100;
  HistoryDb::open_writer(path());  // schema first, so the reader below never races it
  bool interrupted = false;
  std::int64_t committed_before = 0;  // rows from earlier attempts
  for (int attempt = 0; attempt < 5 && !interrupted; ++attempt) {
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      // The child writes until killed; it never returns into the test runner.
      close(fds[0]);
      try {
        auto db = HistoryDb::open_writer(path());
        db->exec("PRAGMA cache_size=-512;");  // 512 KiB: pages spill early in a transaction
        // No checkpoint after each commit: the child spends its time inside transactions.
        db->exec("PRAGMA wal_autocheckpoint=0;");
        std::vector<LayoutCabinet> layout;
        for (int i = 0; i < 2000; ++i) layout.push_back({"c" + std::to_string(i), "r1", 4400, "sold"});
        const auto id = db->layout_id("s1", layout);
        std::vector<MinuteRecord> batch(kBatch);
        for (std::int64_t n = 0;; ++n) {
          for (std::size_t k = 0; k < batch.size(); ++k) {
            auto& m = batch[k];
            m.site = "s1";
            m.t = (std::int64_t(attempt) << 32) + (n * std::int64_t(kBatch) + std::int64_t(k)) * 60;
            m.site_data = site(60, 1000);
            m.cabinets.assign(2000, cab(1000, 60));
          }
          db->write_minutes(batch, {id});
          const char c = 'c';
          if (write(fds[1], &c, 1) != 1) break;
        }
      } catch (...) {
      }
      _exit(1);
    }
    close(fds[1]);
    char c;
    int commits = 0;
    ASSERT_EQ(read(fds[0], &c, 1), 1) << "the child died before its first commit";
    const auto first = std::chrono::steady_clock::now();
    ASSERT_EQ(read(fds[0], &c, 1), 1) << "the child died before its second commit";
    commits = 2;
    // Into the middle of the next transaction, by the length of the last one (a loaded machine
    // stretches both alike).
    const auto one = std::chrono::steady_clock::now() - first;
    std::this_thread::sleep_for(one * (0.4 + 0.1 * attempt));
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status));
    while (read(fds[0], &c, 1) == 1) ++commits;  // commits reported before the kill
    close(fds[0]);
    const std::size_t frames = uncommitted_wal_frames(path() + "-wal");
    interrupted = frames > 0;
    std::cerr << "attempt " << attempt << ": killed after " << commits << " commits, "
              << std::chrono::duration<double, std::milli>(one).count()
              << " ms per transaction; " << frames << " uncommitted WAL frames\n";

    auto db = HistoryDb::open_reader(path());
    sqlite3_stmt* st = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db->handle(), "PRAGMA integrity_check", -1, &st, nullptr), SQLITE_OK);
    ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
    EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), "ok");
    sqlite3_finalize(st);
    const auto n = db->count_rows(Resolution::kMinute, "s1", 0, 1LL << 40) - committed_before;
    // Every reported commit is there; at most one more (committed, killed before reporting).
    EXPECT_GE(n, std::int64_t(commits) * std::int64_t(kBatch)) << "attempt " << attempt;
    EXPECT_LE(n, std::int64_t(commits + 1) * std::int64_t(kBatch)) << "attempt " << attempt;
    EXPECT_EQ(n % std::int64_t(kBatch), 0) << "whole transactions only";
    if (interrupted) {
      EXPECT_EQ(n, std::int64_t(commits) * std::int64_t(kBatch))
          << "the interrupted transaction is not visible";
    }
    std::int64_t sites = 0;
    db->read_sites(Resolution::kMinute, "s1", 0, 1LL << 40,
                   [&](std::int64_t, const SiteInterval&) { ++sites; });
    EXPECT_EQ(sites, n + committed_before) << "site and cabinet rows of a minute commit together";
    committed_before += n;
  }
  EXPECT_TRUE(interrupted) << "no kill landed inside a transaction in 5 attempts";
}

}  // namespace
}  // namespace facility::testing
