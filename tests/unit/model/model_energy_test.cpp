// Energy counters across wraps and resets, and the grid that turns them into windows, with
// small hand-computed numbers: a counter of range 100 J and a step of 1 J.
#include "daemon/model/energy.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "model_rig.h"

namespace facility::model_detail {
namespace {

using namespace std::chrono_literals;
using testing::at_s;

struct Reading {
  double t, raw;
  std::optional<double> power_w;
};

struct TrackerCase {
  const char* name;
  std::optional<double> modulus_j;
  std::vector<Reading> readings;
  double energy_j, lost_s;
  int wraps, resets, rejected;
};

class TrackerTable : public ::testing::TestWithParam<TrackerCase> {};

TEST_P(TrackerTable, EnergyLostAndEvents) {
  const TrackerCase& c = GetParam();
  CounterTracker tr(CounterFormat{c.modulus_j, 1.0});
  for (const auto& r : c.readings) tr.add(at_s(r.t), r.raw, r.power_w);
  const auto v = tr.at(tr.last_time());
  ASSERT_TRUE(v);
  EXPECT_DOUBLE_EQ(v->energy_j, c.energy_j);
  EXPECT_DOUBLE_EQ(v->lost_s, c.lost_s);
  EXPECT_EQ(tr.wraps, std::uint64_t(c.wraps));
  EXPECT_EQ(tr.resets, std::uint64_t(c.resets));
  EXPECT_EQ(tr.rejected, std::uint64_t(c.rejected));
}

// With 1 W over 10 s an increase is plausible up to 2 x 1 W x 10 s + 2 x 1 J + 1 J = 23 J
// (the time is measured from the last change of the counter).
INSTANTIATE_TEST_SUITE_P(
    Cases, TrackerTable,
    ::testing::Values(
        // 10 -> 20 -> 30: 20 J.
        TrackerCase{"steady", 100.0, {{0, 10, 1}, {10, 20, 1}, {20, 30, 1}}, 20, 0, 0, 0, 0},
        // 90 -> 5 on a 100 J counter: 100 - 90 + 5 = 15 J <= 23: a wrap.
        TrackerCase{"wrap", 100.0, {{0, 90, 1}, {10, 5, 1}}, 15, 0, 1, 0, 0},
        // No power reading: a wrap if 100 - 95 + 3 = 8 J <= 10 % of the range.
        TrackerCase{"wrap_without_power", 100.0, {{0, 95, {}}, {10, 3, {}}}, 8, 0, 1, 0, 0},
        // 80 -> 4: as a wrap 100 - 80 + 4 = 24 J > 23: not plausible, so a reset. The 4 J
        // since the reset count; the 10 s interval is lost.
        TrackerCase{"reset", 100.0, {{0, 80, 1}, {10, 4, 1}}, 4, 10, 0, 1, 0},
        // A counter that does not wrap (a float): any decrease is a reset.
        TrackerCase{"reset_no_range", std::nullopt, {{0, 500, 1}, {10, 2, 1}}, 2, 10, 0, 1, 0},
        // 80 -> 60: 60 J since a reset is more than 23 J, and it is no increase either: an
        // outlier, rejected and not held (the last held reading is still the one at 0 s).
        TrackerCase{"reset_implausible", std::nullopt, {{0, 80, 1}, {10, 60, 1}}, 0, 0, 0, 0, 1},
        // ... but 70 at 20 s agrees with it (+10 J in 10 s): the level really moved. A reset
        // (it went down); 0..10 s unknown; 60 -> 70 counted.
        TrackerCase{"reset_to_a_new_level",
                    std::nullopt,
                    {{0, 80, 1}, {10, 60, 1}, {20, 70, 1}},
                    10,
                    10,
                    0,
                    1,
                    1},
        // 10 -> 1000 in 10 s at 1 W: a glitch, rejected, not held.
        TrackerCase{"jump", 100.0, {{0, 10, 1}, {10, 1000, 1}}, 0, 0, 0, 0, 1},
        // ... and 30 at 20 s continues from 10: 20 J over 20 s (<= 2 x 1 W x 20 s + 3 J), as if
        // the glitch had not happened; nothing lost.
        TrackerCase{"jump_then_back", 100.0, {{0, 10, 1}, {10, 1000, 1}, {20, 30, 1}}, 20, 0, 0,
                    0, 1},
        // ... or 1010 at 20 s agrees with 1000: a new level; 0..10 s unknown, 1000 -> 1010
        // counted.
        TrackerCase{"jump_confirmed", std::nullopt, {{0, 10, 1}, {10, 1000, 1}, {20, 1010, 1}},
                    10, 10, 0, 0, 1},
        // A reading older than the last one is ignored.
        TrackerCase{"out_of_order", 100.0, {{0, 10, 1}, {10, 20, 1}, {5, 15, 1}}, 10, 0, 0, 0, 0}),
    [](const auto& info) { return std::string(info.param.name); });

// A point of one of the shipped profiles (config/profiles), as production builds its tracker.
ProfilePoint profile_point(const std::string& profile, const std::string& point) {
  const auto p = load_profile(std::string(FACILITYD_SOURCE_DIR) + "/config/profiles/" + profile +
                              ".yaml");
  const ProfilePoint* pt = p->find(point);
  if (!pt) throw std::runtime_error(profile + " has no point " + point);
  return *pt;
}

TEST(CounterFormat, FromProfilePoints) {
  const auto f32 = counter_format(profile_point("eastron-sdm230", "energy"));
  EXPECT_FALSE(f32.modulus_j) << "a float does not wrap";
  // One ulp of float32 at 20,000 kWh (2^14 <= 20,000 < 2^15) is 2^(14 - 23) kWh = 7,031.25 J;
  // the resolution is the bound |v| x 2^-23 = 8,583 J.
  EXPECT_NEAR(f32.resolution(20000 * 3.6e6), 20000 * 3.6e6 / 8388608, 1e-6);
  const auto u32 = counter_format(profile_point("generic-pdu-1ph", "energy"));
  EXPECT_DOUBLE_EQ(u32.step_j, 36000) << "0.01 kWh";
  EXPECT_DOUBLE_EQ(*u32.modulus_j, 4294967296.0 * 36000);
  EXPECT_DOUBLE_EQ(u32.resolution(1e12), 36000);
}

// A float32 kWh register (the Eastron SDM230/SDM630 profiles) moves in steps of one ulp:
// 2^-9 kWh = 7,031 J at 20,000 kWh, 2^-8 kWh at 60,000 kWh. At 300 W a step takes 23 or 47 s,
// longer than the 10 s poll. One hour at 300 W is 1,080,000 J; what is counted is the
// difference of the two quantised end readings, within one ulp of that, with nothing rejected.
TEST(CounterTracker, Float32CounterAtLowPowerCountsEverything) {
  for (const double start_kwh : {20000.0, 60000.0}) {
    SCOPED_TRACE(start_kwh);
    CounterTracker tr(counter_format(profile_point("eastron-sdm230", "energy")));
    auto raw_j = [&](double t) { return double(float(start_kwh + 300.0 * t / 3.6e6)) * 3.6e6; };
    for (int t = 0; t <= 3600; t += 10) tr.add(at_s(t), raw_j(t), 300.0);
    const auto v = tr.at(at_s(3600));
    ASSERT_TRUE(v);
    EXPECT_EQ(tr.rejected, 0u);
    EXPECT_DOUBLE_EQ(v->lost_s, 0);
    EXPECT_DOUBLE_EQ(v->energy_j, raw_j(3600) - raw_j(0));
    const double ulp_j = start_kwh < 32768 ? 3.6e6 / 512 : 3.6e6 / 256;
    EXPECT_NEAR(v->energy_j, 1'080'000, ulp_j);
  }
}

// A point read every 6th poll (its own `interval`, docs/config.md) is carried unchanged in
// between, each copy stamped with the new poll's time, so its whole increase lands in one poll
// interval. A uint32 0.01 kWh counter (36,000 J a count) at 5 kW, polled every 10 s, read every
// 60 s: 1000 kWh (100,000 counts) to 1005 kWh after one hour, 18,000,000 J, all of it counted.
TEST(CounterTracker, CounterReadEveryNthPollCountsEverything) {
  CounterTracker tr(counter_format(profile_point("generic-pdu-1ph", "energy")));
  double last_read = 0;
  for (int t = 0; t <= 3600; t += 10) {
    if (t % 60 == 0) last_read = std::floor((3.6e9 + 5000.0 * t) / 36000) * 36000;
    tr.add(at_s(t), last_read, 5000.0);
  }
  const auto v = tr.at(at_s(3600));
  ASSERT_TRUE(v);
  EXPECT_EQ(tr.rejected, 0u);
  EXPECT_DOUBLE_EQ(v->lost_s, 0);
  EXPECT_DOUBLE_EQ(v->energy_j, 18'000'000);
}

// One torn read of a uint32 Wh counter at 5,000,000 Wh and 2 kW (the high word of the next
// value with the low word of the previous: +65,536 Wh) is an outlier: the readings around it
// agree, so nothing is lost, nothing is taken for a reset, and the 80 s of 2 kW count in full.
TEST(CounterTracker, OneGlitchedReadingIsAnOutlierNotAReset) {
  CounterTracker tr(CounterFormat{4294967296.0 * 3600, 3600});
  for (int t = 0; t <= 80; t += 10) {
    double wh = 5'000'000 + std::floor(2000.0 * t / 3600);
    if (t == 40) wh += 65536;
    tr.add(at_s(t), wh * 3600, 2000.0);
  }
  const auto v = tr.at(at_s(80));
  ASSERT_TRUE(v);
  EXPECT_EQ(tr.resets, 0u);
  EXPECT_EQ(tr.rejected, 1u);
  EXPECT_DOUBLE_EQ(v->lost_s, 0);
  EXPECT_DOUBLE_EQ(v->energy_j, std::floor(2000.0 * 80 / 3600) * 3600);
}

TEST(CounterTracker, InterpolatesBetweenReadings) {
  CounterTracker tr(CounterFormat{std::nullopt, 1.0});
  tr.add(at_s(0), 100, 1);
  tr.add(at_s(10), 110, 1);
  // Halfway: 5 J of the 10.
  EXPECT_DOUBLE_EQ(tr.at(at_s(5))->energy_j, 5);
  EXPECT_FALSE(tr.at(at_s(11)));
  EXPECT_FALSE(tr.at(at_s(-1)));
}

EnergySeries::Member member(const char* id, bool counter = true) {
  EnergySeries::Member m;
  m.device = id;
  m.stale_after = 30s;
  if (counter) m.tracker.emplace(CounterFormat{});
  return m;
}

TEST(EnergySeries, WaitsForEveryDeviceThenInterpolatesOnTheGrid) {
  // a is polled at 0, 10, 20...; b at 5, 15, 25... Both draw 100 W.
  EnergySeries s("x", {member("a"), member("b")}, 15min);
  for (int t = 0; t <= 65; t += 5) {
    auto& m = s.members()[t % 10 == 0 ? 0 : 1];
    m.tracker->add(at_s(t), 100.0 * t, 100);
    s.advance(at_s(t));
  }
  // At t = 65 the grid has 0 (b had no reading yet: missing, but the first point), 10 .. 60.
  ASSERT_EQ(s.latest(), at_s(60));
  // 60 s window [0, 60]: b was missing at 0, so only 50 s of it are known: b's energy from 10
  // to 60 (b's 5..65 readings interpolate exactly at 10 and 60) = 5,000 J; a 6,000 J.
  // Lost: b at its first point after the start: 10 s of 2 x 60 device-seconds.
  const auto w = s.window(60s);
  ASSERT_TRUE(w);
  EXPECT_DOUBLE_EQ(w->energy_j, 6000 + 5000);
  EXPECT_DOUBLE_EQ(w->coverage, 1.0 - 10.0 / 120);
  // 50 s window [10, 60]: both known throughout: 2 x 100 W x 50 s.
  const auto w50 = s.window(50s);
  ASSERT_TRUE(w50);
  EXPECT_DOUBLE_EQ(w50->energy_j, 10000);
  EXPECT_DOUBLE_EQ(w50->coverage, 1.0);
  EXPECT_FALSE(s.window(70s)) << "history reaches back 60 s only";
  EXPECT_DOUBLE_EQ(*s.total_j(), 11000);
}

TEST(EnergySeries, HistoryStartsWithTheFirstData) {
  // The model starts at t = 0, the device first answers at t = 3 (100 W), then every 10 s.
  EnergySeries s("x", {member("a")}, 15min);
  s.advance(at_s(0));
  for (int t = 3; t <= 63; t += 10) {
    s.members()[0].tracker->add(at_s(t), 100.0 * t, 100);
    s.advance(at_s(t));
  }
  // Grid point 0 has no data at all: not part of the history, and nothing counted lost for
  // it. The history runs from 10 to 60: 50 s, 100 W x 50 s = 5,000 J, fully covered.
  EXPECT_EQ(s.latest(), at_s(60));
  EXPECT_DOUBLE_EQ(s.history_s(), 50);
  EXPECT_DOUBLE_EQ(*s.total_j(), 5000);
  ASSERT_TRUE(s.window(50s));
  EXPECT_DOUBLE_EQ(s.window(50s)->coverage, 1.0);
  EXPECT_FALSE(s.window(60s));
}

TEST(EnergySeries, AStaleDeviceIsMissingNotZero) {
  // b stops at t = 20; from t = 51 (last reading + 30 s) grid points go on without it.
  EnergySeries s("x", {member("a"), member("b"), member("c", false)}, 15min);
  for (int t = 0; t <= 120; t += 10) {
    s.members()[0].tracker->add(at_s(t), 10.0 * t, 10);
    if (t <= 20) s.members()[1].tracker->add(at_s(t), 10.0 * t, 10);
    s.advance(at_s(t));
  }
  ASSERT_EQ(s.latest(), at_s(120));
  EXPECT_FALSE(s.total_j()) << "b and c are missing at the latest point";
  // 100 s window [20, 120]: a 1,000 J; b known only at 20 (missing at 30..120: 10 x 10 s lost);
  // c (no counter) missing at all 10 points: 100 s. Coverage 1 - 200 / 300.
  const auto w = s.window(100s);
  ASSERT_TRUE(w);
  EXPECT_DOUBLE_EQ(w->energy_j, 1000);
  EXPECT_NEAR(w->coverage, 1.0 - 200.0 / 300, 1e-12);
}

TEST(EnergySeries, ADeviceThatNeverAnswersDelaysOnlyTheStart) {
  // b never answers. The grid waits for it for its staleness bound (30 s) after the start,
  // then goes on without it, keeping up with a.
  EnergySeries s("x", {member("a"), member("b")}, 15min);
  for (int t = 0; t <= 120; t += 10) {
    s.members()[0].tracker->add(at_s(t), 10.0 * t, 10);
    s.advance(at_s(t));
    if (t == 30) {
      EXPECT_FALSE(s.latest()) << "still waiting for b at 30 s";
    }
  }
  EXPECT_EQ(s.latest(), at_s(120));
  // 100 s window [20, 120]: a's 1,000 J; b missing at 10 points: coverage 1 - 100 / 200.
  EXPECT_DOUBLE_EQ(s.window(100s)->energy_j, 1000);
  EXPECT_DOUBLE_EQ(s.window(100s)->coverage, 0.5);
}

TEST(EnergySeries, AGapCountsNeitherItsEnergyNorItsTimeInAnyWindow) {
  // One meter at a steady 100 W, read every 10 s, silent from 60 s to 150 s (stale after 30 s:
  // the grid goes on without it from 90 s). Its counter runs on through the gap, so its first
  // reading after it (150 s) carries the gap's 9,000 J. Every window, at every grid point
  // after the gap, must count energy and time over the same span: energy / covered time is
  // exactly 100 W. Counted into the step after the gap, that energy would make a window that
  // starts inside the gap read several times its power (a PUE term several times too large).
  EnergySeries s("x", {member("a")}, 15min);
  int checked = 0;
  for (int t = 0; t <= 400; t += 10) {
    if (t <= 60 || t >= 150) s.members()[0].tracker->add(at_s(t), 100.0 * t, 100);
    s.advance(at_s(t));
    if (t < 150) continue;
    for (const auto w : {20s, 30s, 60s, 120s, 200s}) {
      const auto win = s.window(w);
      if (!win || win->coverage <= 0) continue;
      const double covered_s = win->coverage * std::chrono::duration<double>(w).count();
      EXPECT_NEAR(win->energy_j / covered_s, 100.0, 1e-9)
          << "window " << w.count() << " s at " << t << " s: " << win->energy_j << " J over "
          << covered_s << " s";
      ++checked;
    }
  }
  EXPECT_GT(checked, 50);
  // A window that starts after the gap is whole again.
  ASSERT_TRUE(s.window(200s));
  EXPECT_DOUBLE_EQ(s.window(200s)->coverage, 1.0);
  // The counter keeps the gap's energy: the meter's counter measured it.
  EXPECT_DOUBLE_EQ(*s.total_j(), 100.0 * 400);
}

TEST(EnergySeries, LongWindowsComeFromTheCoarseHistory) {
  // One device at 1 kW for 26 h, readings every 60 s: the 25 h fine history no longer reaches
  // back 26 h, but a 26 h window (5 min points) does once 26 h have passed.
  EnergySeries s("x", {member("a")}, 26h);
  for (int t = 0; t <= 26 * 3600; t += 60) {
    s.members()[0].tracker->add(at_s(t), 1000.0 * t, 1000);
    s.advance(at_s(t));
  }
  const auto w = s.window(26h);
  ASSERT_TRUE(w);
  EXPECT_NEAR(w->energy_j, 1000.0 * 26 * 3600, 1e-6);
  EXPECT_DOUBLE_EQ(w->coverage, 1.0);
  EXPECT_DOUBLE_EQ(s.history_s(), 26 * 3600);
}


// ---- Restoring the grid after a restart -------------------------------------------------------

// Two meters at 100 W each, read every 10 s from `from` to `to` (inclusive), advancing the grid.
void run_two_meters(EnergySeries& s, int from, int to) {
  for (int t = from; t <= to; t += 10) {
    for (auto& m : s.members()) m.tracker->add(at_s(t), 100.0 * t, 100);
    s.advance(at_s(t));
  }
}

TEST(EnergySeries, RestoredWindowsSpanARestartAndCountTheDowntimeAsLost) {
  EnergySeries before("x", {member("a"), member("b")}, 15min);
  run_two_meters(before, 0, 300);
  const auto stored = before.take_finalized();
  ASSERT_EQ(stored.size(), 31u) << "every point 0..300 once";
  EXPECT_EQ(stored.back().t, at_s(300));
  EXPECT_TRUE(before.take_finalized().empty()) << "taken points are not handed out again";

  // The daemon is down from 300 s to 360 s; the meters' counters run on.
  EnergySeries after("x", {member("a"), member("b")}, 15min);
  EXPECT_EQ(after.restore(stored, at_s(360)), 31u);
  EXPECT_FALSE(after.window(60s)) << "the previous run's window, until the grid catches up";
  run_two_meters(after, 360, 420);
  ASSERT_EQ(after.latest(), at_s(420));
  // Points 310..350 (no reading yet) and 360 (each meter's first point: the step before it is
  // unknown) are lost: 6 steps x 2 meters x 10 s = 120 device-seconds, no energy.
  // [300, 420]: 2 x 100 W x 60 s measured, half the device-time.
  const auto w120 = after.window(120s);
  ASSERT_TRUE(w120);
  EXPECT_DOUBLE_EQ(w120->energy_j, 12000);
  EXPECT_DOUBLE_EQ(w120->coverage, 0.5);
  EXPECT_DOUBLE_EQ(w120->running, 0.5) << "all of it lost because the daemon was down";
  // [180, 420] reaches into the earlier run: 120 s before the restart and 60 s after.
  const auto w240 = after.window(240s);
  ASSERT_TRUE(w240) << "the window reaches back before the restart";
  EXPECT_DOUBLE_EQ(w240->energy_j, 24000 + 12000);
  EXPECT_DOUBLE_EQ(w240->coverage, 1.0 - 120.0 / 480);
  EXPECT_DOUBLE_EQ(w240->running, 1.0 - 120.0 / 480);
  // The new points (310..420) are handed out for the history; the restored ones are not.
  const auto fresh = after.take_finalized();
  ASSERT_EQ(fresh.size(), 12u);
  EXPECT_EQ(fresh.front().t, at_s(310));
  EXPECT_DOUBLE_EQ(fresh.front().energy_j, stored.back().energy_j);
  EXPECT_DOUBLE_EQ(fresh.front().lost_s, stored.back().lost_s + 20);
  EXPECT_EQ(after.restore(stored, at_s(500)), 0u) << "a series that has started is not reseeded";
}

TEST(EnergySeries, TheStepIntoTheFirstPointAfterARestartIsDownTime) {
  // Polled every second (stale after 3 s), restarted at 361 s and answering at once: the step
  // into its first grid point after the restart (370 s) ends 9 s after its first reading, past
  // its staleness bound, and is still the restart's, not a missing device's.
  auto quick = [](const char* id) {
    EnergySeries::Member m = member(id);
    m.stale_after = 3s;
    return m;
  };
  EnergySeries before("x", {quick("a"), quick("b")}, 15min);
  run_two_meters(before, 0, 300);
  EnergySeries after("x", {quick("a"), quick("b")}, 15min);
  ASSERT_EQ(after.restore(before.take_finalized(), at_s(361)), 31u);
  for (int t = 361; t <= 400; ++t) {
    for (auto& m : after.members()) m.tracker->add(at_s(t), 100.0 * t, 100);
    after.advance(at_s(t));
  }
  ASSERT_EQ(after.latest(), at_s(400));
  const auto w = after.window(100s);  // [300, 400]: 310..370 lost, all of it down time
  ASSERT_TRUE(w);
  EXPECT_DOUBLE_EQ(w->coverage, 1.0 - 7 * 2 * 10.0 / 200);
  EXPECT_DOUBLE_EQ(w->running, w->coverage);
}

TEST(EnergySeries, ADeviceSilentAfterARestartIsMissingNotDown) {
  // b does not answer after the restart at 360 s: its steps count as lost, and as the daemon's
  // downtime only within its staleness bound (30 s) of the restart.
  EnergySeries before("x", {member("a"), member("b")}, 15min);
  run_two_meters(before, 0, 300);
  EnergySeries after("x", {member("a"), member("b")}, 15min);
  ASSERT_EQ(after.restore(before.take_finalized(), at_s(360)), 31u);
  for (int t = 360; t <= 480; t += 10) {
    after.members()[0].tracker->add(at_s(t), 100.0 * t, 100);
    after.advance(at_s(t));
  }
  ASSERT_EQ(after.latest(), at_s(480));
  const auto w = after.window(180s);  // [300, 480]
  ASSERT_TRUE(w);
  // a: 310..360 down and lost (6 steps); b: 310..480 lost (18 steps), of which 310..390 down
  // (9 steps). 360 device-seconds in all.
  EXPECT_DOUBLE_EQ(w->coverage, 1.0 - (6 + 18) * 10.0 / 360);
  EXPECT_DOUBLE_EQ(w->running, 1.0 - (6 + 9) * 10.0 / 360);
}

TEST(EnergySeries, DaysOfDowntimeAreLostAndDownInTheLongWindows) {
  // Down for 5 days, then back: the 43,169 steps in between are lost and down for both meters
  // (pushed in bulk, not member by member), the 5-minute points of the long window among them.
  EnergySeries before("x", {member("a"), member("b")}, std::chrono::days(15));
  run_two_meters(before, 0, 300);
  const int back = 300 + 5 * 86400;
  EnergySeries after("x", {member("a"), member("b")}, std::chrono::days(15));
  ASSERT_EQ(after.restore(before.take_finalized(), at_s(back)), 31u);
  run_two_meters(after, back, back + 20);
  ASSERT_EQ(after.latest(), at_s(back + 20));
  // [300, back]: nothing measured, all of it down (the step into back too: each meter's first
  // point); the two steps after it measured.
  const auto w = after.window(std::chrono::seconds(back + 20 - 300));
  ASSERT_TRUE(w);
  EXPECT_DOUBLE_EQ(w->energy_j, 2 * 100.0 * 20) << "only the steps into back + 10 and back + 20";
  const double steps = (back + 20 - 300) / 10.0;
  EXPECT_NEAR(w->coverage, 2.0 / steps, 1e-12);
  EXPECT_NEAR(w->running, 2.0 / steps, 1e-12);
  // A window reaching back before the restart: the first run's 300 s, then the downtime.
  const auto all = after.window(std::chrono::seconds(back + 20));
  ASSERT_TRUE(all) << "the 5-minute point at 0 s was restored";
  EXPECT_DOUBLE_EQ(all->energy_j, 2 * 100.0 * 300 + 2 * 100.0 * 20);
  const auto fresh = after.take_finalized();
  EXPECT_EQ(fresh.size(), std::size_t(25 * 360 + 2)) << "the fine span of points, for the history";
  EXPECT_EQ(fresh.back().t, at_s(back + 20));
}

TEST(EnergySeries, AReloadKeepsTheWindowsWithoutAPause) {
  // A reload restores points as recent as the grid ever is (a step plus the staleness bound,
  // 40 s here): the windows are there at once, the same as before the reload.
  EnergySeries before("x", {member("a"), member("b")}, 15min);
  run_two_meters(before, 0, 300);
  const auto w_before = before.window(120s);
  ASSERT_TRUE(w_before);
  const auto stored = before.take_finalized();
  EnergySeries after("x", {member("a"), member("b")}, 15min);
  ASSERT_EQ(after.restore(stored, at_s(340)), 31u);
  const auto w = after.window(120s);
  ASSERT_TRUE(w);
  EXPECT_DOUBLE_EQ(w->energy_j, w_before->energy_j);
  EXPECT_DOUBLE_EQ(w->coverage, 1.0);
  // Restored 41 s after its last point: the previous run's window, withheld until new points.
  EnergySeries late("x", {member("a"), member("b")}, 15min);
  ASSERT_EQ(late.restore(stored, at_s(341)), 31u);
  EXPECT_FALSE(late.window(120s));
}

TEST(EnergySeries, RestoreIgnoresPointsOlderThanTheLongestWindow) {
  EnergySeries before("x", {member("a"), member("b")}, 15min);
  run_two_meters(before, 0, 300);
  const auto stored = before.take_finalized();
  // 15 min + one coarse step after the last point, nothing of it can be in a window.
  EnergySeries after("x", {member("a"), member("b")}, 15min);
  EXPECT_EQ(after.restore(stored, at_s(300 + 900 + 301)), 0u);
  run_two_meters(after, 1510, 1600);
  EXPECT_FALSE(after.window(120s)) << "it starts afresh, as without a history";
  // Just within: the points from 1200 - 900 - 300 = 0 on are restored.
  EnergySeries near("x", {member("a"), member("b")}, 15min);
  EXPECT_EQ(near.restore(stored, at_s(1200)), 31u);
}

TEST(EnergySeries, RestoreKeepsOnlyTheNewestChainOfRuns) {
  // A run that did not restore starts its sums at zero again: a window across it would be
  // negative. Only the points after the fall are restored.
  EnergySeries one("x", {member("a"), member("b")}, 15min);
  run_two_meters(one, 0, 100);
  auto stored = one.take_finalized();
  EnergySeries two("x", {member("a"), member("b")}, 15min);
  run_two_meters(two, 200, 300);
  for (const auto& p : two.take_finalized()) stored.push_back(p);
  ASSERT_LT(stored[11].energy_j, stored[10].energy_j);
  EnergySeries three("x", {member("a"), member("b")}, 15min);
  EXPECT_EQ(three.restore(stored, at_s(310)), 11u);
  run_two_meters(three, 310, 400);
  const auto w = three.window(200s);
  ASSERT_TRUE(w);
  EXPECT_GE(w->energy_j, 0);
  EXPECT_FALSE(three.window(250s)) << "nothing of the older chain";
}

TEST(EnergySeries, PointsMissingFromTheHistoryAreInterpolated) {
  // A history write was dropped: points 110..190 are not stored. The run that wrote them
  // counted energy and time across them; the restored grid interpolates.
  EnergySeries before("x", {member("a"), member("b")}, 15min);
  run_two_meters(before, 0, 300);
  auto stored = before.take_finalized();
  std::vector<EnergySeries::Point> kept;
  for (const auto& p : stored) {
    if (p.t <= at_s(100) || p.t >= at_s(200)) kept.push_back(p);
  }
  EnergySeries after("x", {member("a"), member("b")}, 15min);
  EXPECT_EQ(after.restore(kept, at_s(300)), kept.size());
  run_two_meters(after, 310, 310);
  // [160, 310]: 160..300 at 2 x 100 W, all measured (exact: the power was steady), and the step
  // into 310, each meter's first point after the restart, not measured.
  const auto w = after.window(150s);
  ASSERT_TRUE(w);
  EXPECT_NEAR(w->energy_j, 140 * 200.0, 1e-9);
  EXPECT_DOUBLE_EQ(w->coverage, 1.0 - 20.0 / 300);
}

}  // namespace
}  // namespace facility::model_detail
