// The UPS device kind in the facility model: its snapshot from a reading, its role as the IT
// power source of PUE category 1, and its four alerts with their hold times and hysteresis.
// Expected values are computed by hand in the comments.
#include <gtest/gtest.h>

#include "model_rig.h"

namespace facility {
namespace {

using testing::alert_of;
using testing::at_s;
using testing::Points;
using testing::Rig;
using testing::site_of;

// A 30 kW UPS whose output is the site's IT power (PUE category 1), and a facility meter.
// Alert settings: the defaults but for explicit numbers the tests below rely on.
const char* kUpsSite = R"(
facility:
  ups:
    overload: {warning: 0.80, critical: 0.95, hysteresis: 0.05, hold: 60s}
    runtime: {warning: 10m, critical: 5m, hysteresis: 2m, hold: 30s}
    on_battery: {hold: 10s}
    on_bypass: {hold: 30s}
sites:
  - id: s
    rooms: [{id: r, rows: [{id: w, cabinets: [{id: c1}]}]}]
    devices:
      - {id: u1, kind: ups, profile: ups, endpoint: "tcp://127.0.0.1:1", unit: 1, role: it_at_ups_output, rated_kw: 30}
      - {id: main, kind: meter, profile: meter, endpoint: "tcp://127.0.0.1:1", unit: 2, role: facility_total}
)";

// A UPS reading: its points and the output_source enumeration's name.
struct UpsReading {
  Points points;
  std::string source;
};

// Phase powers in W, phase loads in percent, runtime in minutes, source code and name.
UpsReading ups(double l1, double l2, double l3, double load_pct, double runtime_min, int source = 0,
               const char* source_name = "normal") {
  Points p{{"active_power_l1", {l1, "W"}},
           {"active_power_l2", {l2, "W"}},
           {"active_power_l3", {l3, "W"}},
           {"load_ratio_l1", {load_pct, "percent"}},
           {"load_ratio_l2", {load_pct - 10, "percent"}},
           {"load_ratio_l3", {load_pct - 20, "percent"}},
           {"battery_runtime", {runtime_min, "min"}},
           {"battery_charge", {98, "percent"}},
           {"output_source", {source, "none"}}};
  return {p, source_name};
}

void put_ups(Rig& rig, TimePoint t, const UpsReading& r) {
  // The enumeration's name travels as text, as the poller delivers it.
  rig.put("u1", r.points, t, {}, {{"output_source", r.source}});
  rig.put("main", testing::kw(26, 1000), t);
}

const UpsSnapshot& ups_of(const FacilitySnapshot& s) { return site_of(s, "s").ups.at(0); }

TEST(Ups, SnapshotFromReading) {
  Rig rig(kUpsSite);
  put_ups(rig, at_s(0), ups(6000, 7000, 8000, 70, 25));
  const auto snap = rig.stateless(at_s(0));
  const UpsSnapshot& u = ups_of(*snap);
  ASSERT_TRUE(u.fresh);
  // No active_power point in the reading: the sum of the phases, 6 + 7 + 8 = 21 kW.
  EXPECT_DOUBLE_EQ(*u.power_w, 21000);
  ASSERT_EQ(u.phases.size(), 3u);
  EXPECT_DOUBLE_EQ(*u.phases[1].power_w, 7000);
  // Load: the highest phase, 70 % (the others are 60 % and 50 %).
  EXPECT_DOUBLE_EQ(*u.load_ratio, 0.70);
  EXPECT_DOUBLE_EQ(*u.runtime_s, 25 * 60);
  EXPECT_DOUBLE_EQ(*u.charge_ratio, 0.98);
  EXPECT_EQ(u.on_battery, std::optional<bool>(false));
  EXPECT_EQ(u.overload, OverloadState::kOk);
  EXPECT_EQ(u.runtime_state, OverloadState::kOk);
}

TEST(Ups, OutputIsItPowerOfCategoryOne) {
  Rig rig(kUpsSite);
  UpsReading r = ups(6000, 7000, 8000, 70, 25);
  // The profile's derived active_power, as the poller computes it after each poll.
  r.points["active_power"] = {21, "kW"};
  put_ups(rig, at_s(0), r);
  const auto snap = rig.stateless(at_s(0));
  const SiteSnapshot& s = site_of(*snap, "s");
  // IT = the UPS output, 21 kW; facility 26 kW; PUE 26 / 21.
  ASSERT_TRUE(s.it_power_w);
  EXPECT_DOUBLE_EQ(*s.it_power_w, 21000);
  EXPECT_EQ(s.it_power_source, "meter");
  EXPECT_EQ(s.pue_category, 1);
  ASSERT_TRUE(s.pue);
  EXPECT_NEAR(*s.pue, 26000.0 / 21000.0, 1e-12);
}

TEST(Ups, LoadWithoutRatioIsPowerOverRating) {
  Rig rig(kUpsSite);
  UpsReading p = ups(6000, 7000, 8000, 70, 25);
  for (const char* k : {"load_ratio_l1", "load_ratio_l2", "load_ratio_l3"}) p.points.erase(k);
  put_ups(rig, at_s(0), p);
  // 21 kW of rated_kw 30 = 0.70.
  EXPECT_DOUBLE_EQ(*ups_of(*rig.stateless(at_s(0))).load_ratio, 0.70);
}

TEST(Ups, OnBatteryRaisedAfterItsHoldAndClearedAfterIt) {
  Rig rig(kUpsSite);
  UpsReading line = ups(6000, 7000, 8000, 70, 25);
  UpsReading batt = ups(6000, 7000, 8000, 70, 25, 1, "battery");
  put_ups(rig, at_s(0), line);
  rig.update(at_s(0));
  put_ups(rig, at_s(5), batt);
  auto s = rig.update(at_s(5));
  // On battery for 0 s of a 10 s hold: not yet.
  EXPECT_FALSE(ups_of(*s).on_battery_alert);
  EXPECT_TRUE(*ups_of(*s).on_battery);
  put_ups(rig, at_s(14), batt);
  s = rig.update(at_s(14));
  EXPECT_FALSE(ups_of(*s).on_battery_alert) << "9 s < 10 s hold";
  put_ups(rig, at_s(15), batt);
  s = rig.update(at_s(15));
  EXPECT_TRUE(ups_of(*s).on_battery_alert);
  const AlertState* a = alert_of(*s, "ups_on_battery", "u1");
  ASSERT_NE(a, nullptr);
  EXPECT_TRUE(a->raised);
  EXPECT_EQ(a->severity, "critical");
  // Back on line: cleared only after 10 s on line.
  put_ups(rig, at_s(20), line);
  s = rig.update(at_s(20));
  EXPECT_TRUE(ups_of(*s).on_battery_alert);
  put_ups(rig, at_s(30), line);
  s = rig.update(at_s(30));
  EXPECT_FALSE(ups_of(*s).on_battery_alert);
  EXPECT_FALSE(alert_of(*s, "ups_on_battery", "u1")->raised);
}

TEST(Ups, OnBypassIsAWarningAfterItsHold) {
  Rig rig(kUpsSite);
  UpsReading byp = ups(6000, 7000, 8000, 70, 25, 2, "bypass");
  put_ups(rig, at_s(0), byp);
  rig.update(at_s(0));
  put_ups(rig, at_s(29), byp);
  EXPECT_FALSE(ups_of(*rig.update(at_s(29))).on_bypass_alert);
  put_ups(rig, at_s(30), byp);
  const auto s = rig.update(at_s(30));
  EXPECT_TRUE(ups_of(*s).on_bypass_alert);
  EXPECT_EQ(alert_of(*s, "ups_on_bypass", "u1")->severity, "warning");
  EXPECT_FALSE(ups_of(*s).on_battery_alert);
}

TEST(Ups, OverloadWithHysteresisAndHold) {
  Rig rig(kUpsSite);
  // 85 % on L1: above the 80 % warning; raised after 60 s.
  put_ups(rig, at_s(0), ups(6000, 7000, 8000, 85, 25));
  rig.update(at_s(0));
  put_ups(rig, at_s(59), ups(6000, 7000, 8000, 85, 25));
  EXPECT_EQ(ups_of(*rig.update(at_s(59))).overload, OverloadState::kOk);
  put_ups(rig, at_s(60), ups(6000, 7000, 8000, 85, 25));
  EXPECT_EQ(ups_of(*rig.update(at_s(60))).overload, OverloadState::kWarning);
  // 77 %: under the threshold but not under 80 - 5 = 75 %: stays a warning, however long.
  for (int t = 70; t <= 200; t += 10) {
    put_ups(rig, at_s(t), ups(6000, 7000, 8000, 77, 25));
    EXPECT_EQ(ups_of(*rig.update(at_s(t))).overload, OverloadState::kWarning) << t;
  }
  // 74 %: clears once it has held 60 s.
  put_ups(rig, at_s(210), ups(6000, 7000, 8000, 74, 25));
  EXPECT_EQ(ups_of(*rig.update(at_s(210))).overload, OverloadState::kWarning);
  put_ups(rig, at_s(270), ups(6000, 7000, 8000, 74, 25));
  const auto s = rig.update(at_s(270));
  EXPECT_EQ(ups_of(*s).overload, OverloadState::kOk);
  EXPECT_FALSE(alert_of(*s, "ups_overload", "u1")->raised);
}

TEST(Ups, LowRuntimeLevelsWithHysteresis) {
  Rig rig(kUpsSite);
  // 4 min < 5 min critical: raised after the 30 s hold.
  put_ups(rig, at_s(0), ups(6000, 7000, 8000, 70, 4));
  rig.update(at_s(0));
  put_ups(rig, at_s(30), ups(6000, 7000, 8000, 70, 4));
  auto s = rig.update(at_s(30));
  EXPECT_EQ(ups_of(*s).runtime_state, OverloadState::kCritical);
  EXPECT_EQ(alert_of(*s, "ups_runtime_low", "u1")->severity, "critical");
  // 6 min: above 5 min but below 5 + 2 min: stays critical.
  put_ups(rig, at_s(40), ups(6000, 7000, 8000, 70, 6));
  rig.update(at_s(40));
  put_ups(rig, at_s(100), ups(6000, 7000, 8000, 70, 6));
  EXPECT_EQ(ups_of(*rig.update(at_s(100))).runtime_state, OverloadState::kCritical);
  // 8 min (>= 7 min) for 30 s: critical clears; 8 < 10 + 2 min keeps the warning.
  put_ups(rig, at_s(110), ups(6000, 7000, 8000, 70, 8));
  rig.update(at_s(110));
  put_ups(rig, at_s(140), ups(6000, 7000, 8000, 70, 8));
  EXPECT_EQ(ups_of(*rig.update(at_s(140))).runtime_state, OverloadState::kWarning);
}

TEST(Ups, StaleReadingHasNoValuesAndKeepsHeldAlerts) {
  Rig rig(kUpsSite);
  UpsReading batt = ups(6000, 7000, 8000, 70, 25, 1, "battery");
  put_ups(rig, at_s(0), batt);
  rig.update(at_s(0));
  put_ups(rig, at_s(10), batt);
  ASSERT_TRUE(ups_of(*rig.update(at_s(10))).on_battery_alert);
  rig.forget("u1");
  const auto s = rig.update(at_s(11));
  const UpsSnapshot& u = ups_of(*s);
  EXPECT_FALSE(u.fresh);
  EXPECT_FALSE(u.power_w);
  EXPECT_FALSE(u.on_battery);
  // Unknown is neither raise nor clear: the alert stays raised.
  EXPECT_TRUE(u.on_battery_alert);
}

}  // namespace
}  // namespace facility
