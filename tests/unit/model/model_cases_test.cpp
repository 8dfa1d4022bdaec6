// The facility model on the cases of the facility-model issue, with hand-computed expected
// values. Every case states its arithmetic; nothing here was copied from the model's output.
#include <gtest/gtest.h>

#include <cmath>

#include "model_rig.h"

namespace facility {
namespace {

using namespace std::chrono_literals;
using testing::alert_of;
using testing::at_s;
using testing::cabinet_of;
using testing::coverage_of;
using testing::device_of;
using testing::energy_of;
using testing::feed_of;
using testing::kThreePhaseSite;
using testing::kw;
using testing::pue_of;
using testing::phases;
using testing::Rig;
using testing::site_of;
using testing::watts;

// ---- Cabinet power, utilisation and A/B failover headroom -----------------------------------

// Two 20 A x 220 V cabinets (4,400 W), one in a class derated to 80 %, one to 100 %.
const char* kFailoverSite = R"(
cabinet_classes:
  - {id: d80, breaker: {amps: 20, volts: 220}, derating: 0.8}
  - {id: d100, breaker: {amps: 20, volts: 220}, derating: 1.0}
sites:
  - id: s
    rooms:
      - id: r
        rows:
          - id: w
            cabinets:
              - {id: c80, class: d80, status: sold}
              - {id: c100, class: d100, status: sold}
              - {id: single, rated_kw: 4.4, feeds: [A]}
    devices:
      - {id: c80a, kind: pdu, profile: pdu, endpoint: "tcp://127.0.0.1:1", unit: 1, cabinet: c80, feed: A}
      - {id: c80b, kind: pdu, profile: pdu, endpoint: "tcp://127.0.0.1:1", unit: 2, cabinet: c80, feed: B}
      - {id: c100a, kind: pdu, profile: pdu, endpoint: "tcp://127.0.0.1:1", unit: 3, cabinet: c100, feed: A}
      - {id: c100b, kind: pdu, profile: pdu, endpoint: "tcp://127.0.0.1:1", unit: 4, cabinet: c100, feed: B}
      - {id: sa, kind: pdu, profile: pdu, endpoint: "tcp://127.0.0.1:1", unit: 5, cabinet: single, feed: A}
)";

struct FailoverCase {
  const char* name;
  const char* cabinet;
  double a_w, b_w;
  double total_w, utilization, headroom_w;
  bool risk;
  OverloadState level;
};

class FailoverTable : public ::testing::TestWithParam<FailoverCase> {};

TEST_P(FailoverTable, CabinetPowerUtilisationAndHeadroom) {
  const FailoverCase& c = GetParam();
  Rig rig(kFailoverSite);
  const char* pdu = std::string(c.cabinet) == "c80" ? "c80" : "c100";
  rig.put(std::string(pdu) + "a", watts(c.a_w), at_s(0));
  rig.put(std::string(pdu) + "b", watts(c.b_w), at_s(0));
  const auto snap = rig.stateless(at_s(1));
  const auto& cs = cabinet_of(site_of(*snap, "s"), c.cabinet);
  ASSERT_TRUE(cs.power_w);
  EXPECT_DOUBLE_EQ(cs.cabinet->rated_w, 4400);  // 20 A x 220 V
  EXPECT_DOUBLE_EQ(*cs.power_w, c.total_w);
  EXPECT_NEAR(*cs.utilization, c.utilization, 1e-9);
  ASSERT_TRUE(cs.failover_headroom_w);
  EXPECT_NEAR(*cs.failover_headroom_w, c.headroom_w, 1e-9);
  EXPECT_NEAR(*feed_of(cs, "A").failover_headroom_w, c.headroom_w, 1e-9);
  EXPECT_NEAR(*feed_of(cs, "B").failover_headroom_w, c.headroom_w, 1e-9);
  EXPECT_EQ(cs.failover_risk, c.risk);
  EXPECT_EQ(cs.overload, c.level);
  EXPECT_FALSE(cs.estimated);
  EXPECT_DOUBLE_EQ(cs.feed_coverage, 1.0);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, FailoverTable,
    ::testing::Values(
        // The issue's case: 1.9 + 1.7 = 3.6 kW on a 4.4 kW cabinet: 3600 / 4400 = 0.818181...
        // (warning from 0.80). If A fails, B carries 3,600 W; B may carry 0.8 x 4,400 =
        // 3,520 W continuously: headroom 3520 - 3600 = -80 W, a failover risk.
        FailoverCase{"issue_case", "c80", 1900, 1700, 3600, 3600.0 / 4400, -80, true,
                     OverloadState::kWarning},
        // Same load without derating: 4400 - 3600 = +800 W.
        FailoverCase{"no_derating", "c100", 1900, 1700, 3600, 3600.0 / 4400, 800, false,
                     OverloadState::kWarning},
        // 1.2 + 1.0 = 2.2 kW: 2200 / 4400 = 0.5; 3520 - 2200 = 1320 W.
        FailoverCase{"light", "c80", 1200, 1000, 2200, 0.5, 1320, false, OverloadState::kOk},
        // 2.3 + 1.9 = 4.2 kW: 4200 / 4400 = 0.954545 (critical from 0.95); 3520 - 4200 = -680.
        FailoverCase{"critical", "c80", 2300, 1900, 4200, 4200.0 / 4400, -680, true,
                     OverloadState::kCritical},
        // Exactly the derated capacity: 3520 / 4400 = 0.8 (warning); headroom 0 is no risk.
        FailoverCase{"at_derated", "c80", 1760, 1760, 3520, 0.8, 0, false,
                     OverloadState::kWarning},
        // Exactly the critical threshold: 4180 / 4400 = 0.95 (in doubles too) is critical, as
        // 0.8 above is warning; 4400 - 4180 = +220 W without derating.
        FailoverCase{"at_critical", "c100", 2090, 2090, 4180, 0.95, 220, false,
                     OverloadState::kCritical}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(Failover, SingleFeedCabinetHasNoFailoverHeadroom) {
  Rig rig(kFailoverSite);
  rig.put("sa", watts(2000), at_s(0));
  const auto snap = rig.stateless(at_s(1));
  const auto& cs = cabinet_of(site_of(*snap, "s"), "single");
  ASSERT_TRUE(cs.power_w);
  EXPECT_DOUBLE_EQ(*cs.power_w, 2000);
  EXPECT_FALSE(cs.failover_headroom_w);
  EXPECT_FALSE(cs.failover_risk);
}

// ---- Power estimated from current -----------------------------------------------------------

const char* kCurrentSite = R"(
facility: {nominal_voltage_v: 220, nominal_power_factor: 0.95}
sites:
  - id: s
    rooms:
      - id: r
        rows:
          - id: w
            cabinets:
              - {id: k1, feeds: [A]}
              - {id: k2, feeds: [A]}
    devices:
      - {id: k1a, kind: pdu, profile: pdu-current, endpoint: "tcp://127.0.0.1:1", unit: 1, cabinet: k1, feed: A}
      - {id: k2a, kind: pdu, profile: pdu-current, endpoint: "tcp://127.0.0.1:1", unit: 2, cabinet: k2, feed: A, nominal_voltage_v: 230, nominal_power_factor: 1.0}
)";

struct CurrentCase {
  const char* name;
  const char* device;
  testing::Points points;
  double expected_w;
};

class CurrentTable : public ::testing::TestWithParam<CurrentCase> {};

TEST_P(CurrentTable, PowerFromCurrentIsEstimated) {
  const CurrentCase& c = GetParam();
  Rig rig(kCurrentSite);
  rig.put(c.device, c.points, at_s(0));
  const auto snap = rig.stateless(at_s(1));
  const auto& s = site_of(*snap, "s");
  const auto& cs = cabinet_of(s, std::string(c.device) == "k1a" ? "k1" : "k2");
  ASSERT_TRUE(cs.power_w);
  EXPECT_NEAR(*cs.power_w, c.expected_w, 1e-9);
  EXPECT_TRUE(cs.estimated);
  EXPECT_TRUE(cs.feeds[0].estimated);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, CurrentTable,
    ::testing::Values(
        // Only current: 10 A x 220 V (nominal) x 0.95 (nominal) = 2,090 W.
        CurrentCase{"nominal_v_and_pf", "k1a", {{"current", {10, "A"}}}, 2090},
        // Current, voltage and a leading power factor: 10 A x 230 V x |-0.98| = 2,254 W.
        CurrentCase{
            "measured_v_and_pf",
            "k1a",
            {{"current", {10, "A"}}, {"voltage", {230, "V"}}, {"power_factor", {-0.98, "ratio"}}},
            2254},
        // A power factor of 0 is not plausible: nominal 0.95 instead: 10 x 230 x 0.95 = 2,185.
        CurrentCase{
            "implausible_pf",
            "k1a",
            {{"current", {10, "A"}}, {"voltage", {230, "V"}}, {"power_factor", {0, "ratio"}}},
            2185},
        // The device's own nominal values: 8 A x 230 V x 1.0 = 1,840 W.
        CurrentCase{"device_nominal", "k2a", {{"current", {8, "A"}}}, 1840}),
    [](const auto& info) { return std::string(info.param.name); });

// ---- Three phases: imbalance and per-phase failover headroom --------------------------------

// kThreePhaseSite and phases() are in model_rig.h (the report test uses them too).

struct ImbalanceCase {
  const char* name;
  std::optional<std::array<double, 3>> amps;
  std::array<double, 3> watts;
  double expected;
};

class ImbalanceTable : public ::testing::TestWithParam<ImbalanceCase> {};

TEST_P(ImbalanceTable, MaxDeviationFromMeanOverMean) {
  const ImbalanceCase& c = GetParam();
  Rig rig(kThreePhaseSite);
  rig.put("ga", phases(c.amps, c.watts), at_s(0));
  rig.put("gb", phases(c.amps, c.watts), at_s(0));
  const auto snap = rig.stateless(at_s(1));
  const auto& cs = cabinet_of(site_of(*snap, "s"), "g");
  ASSERT_TRUE(feed_of(cs, "A").phase_imbalance);
  EXPECT_NEAR(*feed_of(cs, "A").phase_imbalance, c.expected, 1e-12);
  EXPECT_NEAR(*cs.phase_imbalance, c.expected, 1e-12);
  ASSERT_EQ(feed_of(cs, "A").phases.size(), 3u);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ImbalanceTable,
    ::testing::Values(
        // Balanced: every phase at the mean.
        ImbalanceCase{"balanced", std::array<double, 3>{10, 10, 10}, {2200, 2200, 2200}, 0.0},
        // 12, 9, 9 A: mean 10, largest deviation 2 -> 0.2.
        ImbalanceCase{"one_heavy", std::array<double, 3>{12, 9, 9}, {2640, 1980, 1980}, 0.2},
        // 10, 8, 6 A: mean 8, largest deviation 2 -> 0.25.
        ImbalanceCase{"spread", std::array<double, 3>{10, 8, 6}, {2200, 1760, 1320}, 0.25},
        // No currents: the phase powers 2300, 1840, 1380 W: mean 1840, deviation 460 -> 0.25.
        ImbalanceCase{"from_power", std::nullopt, {2300, 1840, 1380}, 0.25}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(ThreePhase, PhaseFailoverHeadroomCatchesAnOverloadedPhase) {
  Rig rig(kThreePhaseSite);
  // A: 2200 + 1000 + 800 = 4000 W; B: 2000 + 900 + 700 = 3600 W; total 7,600 W.
  rig.put("ga", phases(std::nullopt, {2200, 1000, 800}), at_s(0));
  rig.put("gb", phases(std::nullopt, {2000, 900, 700}), at_s(0));
  const auto snap = rig.stateless(at_s(1));
  const auto& cs = cabinet_of(site_of(*snap, "s"), "g");
  const double derated = std::sqrt(3.0) * 380 * 16 * 0.8;  // 8,424.61 W
  ASSERT_TRUE(cs.power_w);
  EXPECT_DOUBLE_EQ(*cs.power_w, 7600);
  // Whole feed: 8,424.61 - 7,600 = +824.61 W: fine on paper.
  EXPECT_NEAR(*cs.failover_headroom_w, derated - 7600, 1e-9);
  // But L1 then carries 2200 + 2000 = 4,200 W against 8,424.61 / 3 = 2,808.20 W: -1,391.80 W.
  const auto& l = feed_of(cs, "B").phases;
  EXPECT_NEAR(*l[0].failover_headroom_w, derated / 3 - 4200, 1e-9);
  EXPECT_NEAR(*l[1].failover_headroom_w, derated / 3 - 1900, 1e-9);  // +908.20
  EXPECT_NEAR(*l[2].failover_headroom_w, derated / 3 - 1500, 1e-9);  // +1,308.20
  EXPECT_TRUE(cs.failover_risk);
  // Imbalance of A's powers: mean 1333.3, deviation 866.7 -> 0.65.
  EXPECT_NEAR(*feed_of(cs, "A").phase_imbalance, 866.66666666 / 1333.33333333, 1e-6);
}

// The same cabinet through FacilityModel: the failover-risk alert says which case is worst and
// carries its headroom (L1: -1,391.80 W), not the feed's +824.61 W; the snapshot has it too, for
// the history.
TEST(ThreePhase, FailoverAlertCarriesTheWorstPhase) {
  Rig rig(kThreePhaseSite);
  std::shared_ptr<const FacilitySnapshot> snap;
  for (int t = 0; t <= 70; t += 10) {  // the default hold is 60 s
    rig.put("ga", phases(std::nullopt, {2200, 1000, 800}), at_s(t));
    rig.put("gb", phases(std::nullopt, {2000, 900, 700}), at_s(t));
    snap = rig.update(at_s(t));
  }
  const double derated = std::sqrt(3.0) * 380 * 16 * 0.8;
  const auto& cs = cabinet_of(site_of(*snap, "s"), "g");
  ASSERT_TRUE(cs.failover_worst_w);
  EXPECT_NEAR(*cs.failover_worst_w, derated / 3 - 4200, 1e-9);
  EXPECT_EQ(cs.failover_worst, "phase L1");
  // Margin = -1,391.80 / 2,808.20 = -0.4956 (the feed's is +824.61 / 8,424.61 = +0.098).
  EXPECT_NEAR(*cs.failover_margin, (derated / 3 - 4200) / (derated / 3), 1e-12);
  const AlertState* a = alert_of(*snap, "cabinet_failover_risk", "g");
  ASSERT_TRUE(a);
  EXPECT_TRUE(a->raised);
  ASSERT_TRUE(a->value);
  EXPECT_NEAR(*a->value, derated / 3 - 4200, 1e-9);
  EXPECT_NE(a->message.find("phase L1"), std::string::npos) << a->message;
  EXPECT_NE(a->message.find("4200 W"), std::string::npos) << a->message;
}

// ---- One of two PDUs stale: coverage, not silence ------------------------------------------

// One cabinet on A+B, a facility meter, no IT meter: IT power is the sum of the PDUs
// (category 2).
const char* kPairSite = R"(
defaults: {interval: 10s}
sites:
  - id: s
    rooms:
      - id: r
        rows:
          - id: w
            cabinets:
              - {id: c, breaker: {amps: 20, volts: 220}, status: sold}
    devices:
      - {id: ca, kind: pdu, profile: pdu, endpoint: "tcp://127.0.0.1:1", unit: 1, cabinet: c, feed: A}
      - {id: cb, kind: pdu, profile: pdu, endpoint: "tcp://127.0.0.1:1", unit: 2, cabinet: c, feed: B}
      - {id: main, kind: meter, role: facility_total, profile: meter, endpoint: "tcp://127.0.0.1:1", unit: 3}
)";

TEST(Coverage, OneOfTwoPdusStaleWithholdsPueAndFlagsTheCabinet) {
  Rig rig(kPairSite);
  rig.put("ca", watts(1900), at_s(100));
  rig.put("cb", watts(1700), at_s(60));  // 41 s old at t=101: older than 3 x 10 s, stale
  rig.put("main", {{"active_power", {4.5, "kW"}}}, at_s(100));
  const auto snap = rig.stateless(at_s(101));
  const auto& s = site_of(*snap, "s");
  const auto& cs = cabinet_of(s, "c");
  // The cabinet is flagged, not halved: no total (never 1,900 W), feed A kept, 1 of 2 feeds.
  EXPECT_FALSE(cs.power_w);
  EXPECT_FALSE(cs.utilization);
  EXPECT_EQ(cs.quality, Quality::kStale);
  EXPECT_DOUBLE_EQ(cs.feed_coverage, 0.5);
  EXPECT_DOUBLE_EQ(*feed_of(cs, "A").power_w, 1900);
  EXPECT_FALSE(feed_of(cs, "B").power_w);
  EXPECT_FALSE(cs.failover_headroom_w);
  // Still known to be powered: feed A alone is above 100 W.
  EXPECT_TRUE(cs.powered_known);
  EXPECT_TRUE(cs.powered);
  // Site IT from 1 of 2 PDUs: coverage 50 %, no IT power, PUE withheld (bound 100 %).
  EXPECT_EQ(s.it_power_source, "pdu_sum");
  EXPECT_DOUBLE_EQ(s.it_coverage, 0.5);
  EXPECT_DOUBLE_EQ(*coverage_of(s, "it_power"), 0.5);
  EXPECT_DOUBLE_EQ(*coverage_of(s, "cabinet_power"), 0.0);
  EXPECT_FALSE(s.it_power_w);
  EXPECT_FALSE(s.pue);
  const auto* instant = pue_of(s, 2, "instant");
  ASSERT_NE(instant, nullptr);
  EXPECT_FALSE(instant->pue);
  EXPECT_DOUBLE_EQ(*instant->it_coverage, 0.5);
  // Occupancy and capacity sums are not computed from a partial sum either.
  EXPECT_FALSE(s.capacity.measured_w);
}

TEST(Coverage, BelowOneTheBoundExtrapolatesInProportion) {
  std::string cfg = kPairSite;
  cfg.insert(0, "facility: {pue_min_coverage: 0.5}\n");
  Rig rig(cfg);
  rig.put("ca", watts(1900), at_s(100));
  rig.put("cb", watts(1700), at_s(60));
  rig.put("main", {{"active_power", {4.5, "kW"}}}, at_s(100));
  const auto snap = rig.stateless(at_s(101));
  const auto& s = site_of(*snap, "s");
  // IT = 1,900 W / 0.5 = 3,800 W (extrapolated); PUE = 4,500 / 3,800 = 1.184210...
  ASSERT_TRUE(s.pue);
  EXPECT_NEAR(*s.pue, 4500.0 / 3800.0, 1e-12);
  EXPECT_FALSE(s.it_power_w);  // the site's IT power itself is still only published whole
}

// ---- Overload hysteresis and hold time ------------------------------------------------------

// 4,400 W cabinet, warning 0.80 / critical 0.95, hysteresis 0.05, hold 60 s.
const char* kHysteresisSite = R"(
defaults: {interval: 10s}
facility:
  overload: {warning: 0.80, critical: 0.95, hysteresis: 0.05, hold: 60s}
  alert_retention: 10m
sites:
  - id: s
    rooms:
      - id: r
        rows:
          - id: w
            cabinets:
              - {id: c, rated_kw: 4.4, feeds: [A], status: sold}
    devices:
      - {id: ca, kind: pdu, profile: pdu, endpoint: "tcp://127.0.0.1:1", unit: 1, cabinet: c, feed: A}
)";

struct Step {
  double t;
  std::optional<double> utilization;  // nullopt: no new reading (the last one goes stale)
  OverloadState expected;
  const char* why;
};

TEST(Hysteresis, CrossingEightyPercentUpAndDownWithHoldTime) {
  const Step steps[] = {
      {0, 0.70, OverloadState::kOk, "below 0.80"},
      {10, 0.81, OverloadState::kOk, ">= 0.80 since t=10, held 0 s of 60"},
      {40, 0.82, OverloadState::kOk, "held 30 s"},
      {50, 0.79, OverloadState::kOk, "dipped below 0.80: the hold restarts"},
      {60, 0.81, OverloadState::kOk, ">= 0.80 again since t=60"},
      {110, 0.81, OverloadState::kOk, "held 50 s"},
      {120, 0.81, OverloadState::kWarning, "held 60 s: raised"},
      {130, 0.77, OverloadState::kWarning, "0.75 <= 0.77 < 0.80: inside the hysteresis band"},
      {140, 0.74, OverloadState::kWarning, "< 0.75 since t=140, held 0 s"},
      {190, 0.74, OverloadState::kWarning, "held 50 s"},
      {200, 0.74, OverloadState::kOk, "held 60 s: cleared"},
      {210, 0.85, OverloadState::kOk, ">= 0.80 since t=210"},
      {230, 0.85, OverloadState::kOk, "held 20 s"},
      {270, std::nullopt, OverloadState::kOk, "reading 40 s old: stale, unknown: hold restarts"},
      {280, 0.85, OverloadState::kOk, ">= 0.80 since t=280"},
      {340, 0.85, OverloadState::kWarning, "held 60 s: raised"},
      {350, 0.97, OverloadState::kWarning, ">= 0.95 since t=350"},
      {410, 0.97, OverloadState::kCritical, "held 60 s: critical"},
  };
  Rig rig(kHysteresisSite);
  for (const Step& st : steps) {
    if (st.utilization) rig.put("ca", watts(*st.utilization * 4400), at_s(st.t));
    const auto snap = rig.update(at_s(st.t));
    const auto& cs = cabinet_of(site_of(*snap, "s"), "c");
    EXPECT_EQ(cs.overload, st.expected) << "t=" << st.t << ": " << st.why;
    const AlertState* a = alert_of(*snap, "cabinet_overload", "c");
    if (st.t == 120) {
      ASSERT_NE(a, nullptr);
      EXPECT_TRUE(a->raised);
      EXPECT_EQ(a->severity, "warning");
      EXPECT_NEAR(*a->value, 0.81, 1e-12);
      EXPECT_DOUBLE_EQ(*a->threshold, 0.80);
      EXPECT_EQ(a->unit, "ratio");
      EXPECT_EQ(a->since, at_s(120));
      EXPECT_EQ(a->site, "s");
    }
    if (st.t == 200) {
      ASSERT_NE(a, nullptr) << "a cleared alert stays until its retention has passed";
      EXPECT_FALSE(a->raised);
      EXPECT_EQ(a->severity, "warning");
      EXPECT_NEAR(*a->value, 0.74, 1e-12);
      EXPECT_EQ(a->since, at_s(200));
    }
    if (st.t == 410) {
      ASSERT_NE(a, nullptr);
      EXPECT_EQ(a->severity, "critical");
      EXPECT_DOUBLE_EQ(*a->threshold, 0.95);
      EXPECT_EQ(a->since, at_s(410));
    }
  }
}

// The hysteresis band below critical, on its own: from critical, 0.91 (inside 0.90..0.95) keeps
// it critical however long it lasts; only below 0.90, held, does it step down -- to warning,
// not to ok, since 0.89 is still above warning's own band.
TEST(Hysteresis, CriticalStepsDownOnlyBelowItsBandAndOnlyToWarning) {
  const Step steps[] = {
      {0, 0.97, OverloadState::kOk, ">= 0.95 (and 0.80) since t=0"},
      {60, 0.97, OverloadState::kCritical, "held 60 s: critical, straight from ok"},
      {70, 0.91, OverloadState::kCritical, "0.90 <= 0.91 < 0.95: inside critical's band"},
      {200, 0.91, OverloadState::kCritical, "still inside after 130 s: no hold runs"},
      {210, 0.89, OverloadState::kCritical, "< 0.90 since t=210, held 0 s"},
      {260, 0.89, OverloadState::kCritical, "held 50 s"},
      {270, 0.89, OverloadState::kWarning, "held 60 s: warning (0.89 >= 0.75)"},
      {280, 0.76, OverloadState::kWarning, "0.75 <= 0.76: inside warning's band"},
      {400, 0.76, OverloadState::kWarning, "still inside"},
  };
  Rig rig(kHysteresisSite);
  for (const Step& st : steps) {
    if (st.utilization) rig.put("ca", watts(*st.utilization * 4400), at_s(st.t));
    const auto snap = rig.update(at_s(st.t));
    EXPECT_EQ(cabinet_of(site_of(*snap, "s"), "c").overload, st.expected)
        << "t=" << st.t << ": " << st.why;
  }
}

// Critical from exactly the threshold after the hold time, as the alert says ("critical from
// 95.0 %"): 4,180 W of 4,400 W is 0.95 (FailoverTable's at_critical case: the instantaneous level).
TEST(Hysteresis, HeldAtExactlyTheCriticalThresholdIsCritical) {
  Rig rig(kHysteresisSite);
  rig.put("ca", watts(4180), at_s(0));
  EXPECT_EQ(cabinet_of(site_of(*rig.update(at_s(0)), "s"), "c").overload, OverloadState::kOk)
      << ">= 0.95 since t=0, held 0 s";
  rig.put("ca", watts(4180), at_s(60));
  const auto snap = rig.update(at_s(60));
  const auto& cs = cabinet_of(site_of(*snap, "s"), "c");
  // Exactly, in doubles too (both are the double nearest 0.95): a hair above would prove nothing.
  ASSERT_EQ(cs.utilization.value_or(0), cs.cabinet->overload.critical);
  EXPECT_EQ(cs.overload, OverloadState::kCritical) << "held 60 s: critical";
  const AlertState* a = alert_of(*snap, "cabinet_overload", "c");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->severity, "critical");
}

TEST(Hysteresis, ClearedAlertIsForgottenAfterItsRetention) {
  Rig rig(kHysteresisSite);
  for (double t = 0; t <= 60; t += 10) {
    rig.put("ca", watts(0.9 * 4400), at_s(t));
    rig.update(at_s(t));
  }
  for (double t = 70; t <= 130; t += 10) {
    rig.put("ca", watts(0.5 * 4400), at_s(t));
    rig.update(at_s(t));
  }
  // Raised at 60, cleared at 130 (0.5 < 0.75 since 70, held 60 s); retention 10 min.
  auto snap = rig.update(at_s(130 + 600));
  rig.put("ca", watts(0.5 * 4400), at_s(730));
  snap = rig.update(at_s(730));
  ASSERT_NE(alert_of(*snap, "cabinet_overload", "c"), nullptr);  // 600 s: not yet past
  rig.put("ca", watts(0.5 * 4400), at_s(740));
  snap = rig.update(at_s(740));
  EXPECT_EQ(alert_of(*snap, "cabinet_overload", "c"), nullptr);
}

// ---- Energy PUE: a 32-bit counter wrapping mid-window ---------------------------------------

// Meters with uint32 counters of 0.1 kWh: they wrap at 2^32 x 0.1 = 429,496,729.6 kWh.
const char* kEnergySite = R"(
defaults: {interval: 10s}
sites:
  - id: s
    rooms:
      - id: r
        rows:
          - id: w
            cabinets:
              - {id: c, feeds: [A]}
    devices:
      - {id: main, kind: meter, role: facility_total, profile: meter, endpoint: "tcp://127.0.0.1:1", unit: 1}
      - {id: ups, kind: meter, role: it_at_ups_output, profile: meter, endpoint: "tcp://127.0.0.1:1", unit: 2}
      - {id: cool, kind: meter, role: cooling, profile: meter, endpoint: "tcp://127.0.0.1:1", unit: 3}
      - {id: ca, kind: pdu, profile: pdu, endpoint: "tcp://127.0.0.1:1", unit: 4, cabinet: c, feed: A}
)";

TEST(EnergyPue, ThirtyTwoBitWrapMidWindow) {
  const double modulus_kwh = 4294967296.0 * 0.1;
  // Facility 130 kW, IT 100 kW, cooling 20 kW, all constant. The facility counter starts
  // 10 kWh below its wrap, so it wraps at t = 10 kWh / 130 kW = 276.9 s, inside the window.
  Rig rig(kEnergySite);
  std::shared_ptr<const FacilitySnapshot> snap;
  for (double t = 0; t <= 1000; t += 10) {
    const double h = t / 3600.0;
    rig.put("main", kw(130, std::fmod(modulus_kwh - 10 + 130 * h, modulus_kwh)), at_s(t));
    rig.put("ups", kw(100, 12345 + 100 * h), at_s(t));
    rig.put("cool", kw(20, 500 + 20 * h), at_s(t));
    rig.put("ca", watts(2000), at_s(t));
    snap = rig.update(at_s(t));
  }
  const auto& s = site_of(*snap, "s");
  // 15 min window [100 s, 1000 s]: facility 130 kW x 900 s = 117 MJ (= 32.5 kWh, wrap
  // included), IT 100 kW x 900 s = 90 MJ: PUE = 117 / 90 = 1.3. Cooling 20 kW x 900 s = 18 MJ:
  // partial PUE (90 + 18) / 90 = 1.2.
  const auto* p15 = pue_of(s, 1, "15m");
  ASSERT_NE(p15, nullptr);
  ASSERT_TRUE(p15->pue);
  EXPECT_NEAR(*p15->pue, 1.3, 1e-9);
  ASSERT_TRUE(p15->partial_cooling);
  EXPECT_NEAR(*p15->partial_cooling, 1.2, 1e-9);
  EXPECT_DOUBLE_EQ(*p15->it_coverage, 1.0);
  EXPECT_DOUBLE_EQ(*p15->facility_coverage, 1.0);
  // 1 h needs 3,600 s of history; there are 1,000 s: not published.
  const auto* p1h = pue_of(s, 1, "1h");
  ASSERT_NE(p1h, nullptr);
  EXPECT_FALSE(p1h->pue);
  EXPECT_FALSE(p1h->it_coverage);
  // The wrap was seen and counted; the energy counter never went back: 130 kW x 1000 s.
  EXPECT_EQ(device_of(*snap, "main").counter_wraps, 1u);
  EXPECT_EQ(device_of(*snap, "main").counter_resets, 0u);
  const auto* fac = energy_of(s, "facility_total");
  ASSERT_NE(fac, nullptr);
  ASSERT_TRUE(fac->total_j);
  EXPECT_NEAR(*fac->total_j, 130e3 * 1000, 1e-3);
  EXPECT_DOUBLE_EQ(fac->history_s, 1000);
  // Instant PUE: 130 / 100.
  EXPECT_NEAR(*pue_of(s, 1, "instant")->pue, 1.3, 1e-12);
}

// ---- A counter read every third poll (a slower point group) -------------------------------

TEST(EnergyPue, ACounterReadEveryThirdPollCountsAtItsReadTime) {
  // The facility meter's power is read every 10 s, its energy counter every 30 s and carried
  // in between, with the time it was read. Load: 100 kW until 510 s, 200 kW after. Fed at its
  // read time, the counter gives the energy up to the model's latest grid point exactly;
  // re-stamped with each poll's time, a carried value would claim that the counter stood
  // still for up to 20 s.
  auto true_j = [](double s) { return 100e3 * std::min(s, 510.0) + 200e3 * std::max(0.0, s - 510); };
  Rig rig(kEnergySite);
  std::shared_ptr<const FacilitySnapshot> snap;
  for (double t = 0; t <= 1000; t += 10) {
    const double read = 30 * std::floor(t / 30);  // when the counter was last read
    rig.put("main", kw(t < 510 ? 100 : 200, 1000 + true_j(read) / 3.6e6), at_s(t),
            {{"energy", at_s(read)}});
    rig.put("ups", kw(80, 12345 + 80 * t / 3600), at_s(t));
    rig.put("cool", kw(10, 500 + 10 * t / 3600), at_s(t));
    rig.put("ca", watts(2000), at_s(t));
    snap = rig.update(at_s(t));
  }
  const auto& s = site_of(*snap, "s");
  const auto* fac = energy_of(s, "facility_total");
  ASSERT_NE(fac, nullptr);
  ASSERT_TRUE(fac->total_j);
  // The last counter reading is from 990 s: the history reaches that far and no further.
  EXPECT_DOUBLE_EQ(fac->history_s, 990);
  EXPECT_NEAR(*fac->total_j, true_j(fac->history_s), 1e-3);
  EXPECT_EQ(device_of(*snap, "main").counter_resets, 0u);
}

// ---- A PDU reboot resetting its counter -----------------------------------------------------

// kPairSite again: two PDUs at 2 kW each (IT from the PDU sum, category 2), facility 5 kW.

std::shared_ptr<const FacilitySnapshot> run_reset(Rig& rig) {
  std::shared_ptr<const FacilitySnapshot> snap;
  for (double t = 0; t <= 1000; t += 10) {
    // PDU A reboots at t = 295 s: its counter restarts from 0 and counts 2 kW from there.
    const double a_kwh = t < 295 ? 5000 + 2 * t / 3600 : 2 * (t - 295) / 3600;
    rig.put("ca", {{"active_power", {2000, "W"}}, {"energy", {a_kwh, "kWh"}}}, at_s(t));
    rig.put("cb", {{"active_power", {2000, "W"}}, {"energy", {7000 + 2 * t / 3600, "kWh"}}},
            at_s(t));
    rig.put("main", kw(5, 900 + 5 * t / 3600), at_s(t));
    snap = rig.update(at_s(t));
  }
  return snap;
}

TEST(EnergyPue, PduRebootResetIsDetectedAndWithholdsTheWindow) {
  Rig rig(kPairSite);
  const auto snap = run_reset(rig);
  const auto& s = site_of(*snap, "s");
  EXPECT_EQ(device_of(*snap, "ca").counter_resets, 1u);
  EXPECT_EQ(device_of(*snap, "ca").counter_wraps, 0u);
  EXPECT_EQ(device_of(*snap, "cb").counter_resets, 0u);
  // At t=300 the counter reads 2 kW x 5 s = 10 kJ: counted; the 10 s interval [290, 300]
  // is lost (A's energy from 290 s to the reboot is unknown).
  // A: 2 kW x 290 s + 10 kJ + 2 kW x 700 s = 580 + 10 + 1,400 = 1,990 kJ; B: 2,000 kJ.
  const auto* it = energy_of(s, "pdu_sum");
  ASSERT_NE(it, nullptr);
  ASSERT_TRUE(it->total_j);
  EXPECT_NEAR(*it->total_j, 3'990e3, 1e-3);
  // 15 min window [100, 1000]: 10 lost device-seconds of 2 x 900: coverage 1 - 10/1800.
  ASSERT_EQ(it->window_coverage[0].first, "15m");
  EXPECT_NEAR(*it->window_coverage[0].second, 1.0 - 10.0 / 1800, 1e-12);
  // Below the 100 % bound: the 15 min PUE is withheld, never computed from a short sum.
  const auto* p15 = pue_of(s, 2, "15m");
  ASSERT_NE(p15, nullptr);
  EXPECT_FALSE(p15->pue);
  EXPECT_NEAR(*p15->it_coverage, 1.0 - 10.0 / 1800, 1e-12);
}

TEST(EnergyPue, PduRebootWithLowerBoundExtrapolates) {
  std::string cfg = kPairSite;
  cfg.insert(0, "facility: {pue_min_coverage: 0.99}\n");
  Rig rig(cfg);
  const auto snap = run_reset(rig);
  const auto& s = site_of(*snap, "s");
  // IT over [100, 1000]: 4 kW x 900 s - 10 kJ lost = 3,590 kJ; coverage 179/180;
  // extrapolated 3,590 x 180 / 179 = 3,610.056 kJ. Facility 5 kW x 900 s = 4,500 kJ.
  // PUE = 4,500 / 3,610.056 = 1.246518.
  const auto* p15 = pue_of(s, 2, "15m");
  ASSERT_NE(p15, nullptr);
  ASSERT_TRUE(p15->pue);
  EXPECT_NEAR(*p15->pue, 4500.0 / (3590.0 * 180 / 179), 1e-9);
}

// ---- Occupancy against a ramp plan ----------------------------------------------------------

// 6 delivered of 10 planned; plan 2 powered from 2025, 5 from 2026, 9 from 2027.
const char* kPlanSite = R"(
defaults: {interval: 10s, feeds: [A]}
sites:
  - id: s
    planned_cabinets: 10
    build_out_plan:
      - {date: 2025-01-01, powered: 2}
      - {date: 2026-01-01, powered: 5}
      - {date: 2027-01-01, powered: 9}
    rooms:
      - id: r
        rows:
          - id: w
            cabinets:
              - {id: k1, status: sold}
              - {id: k2, status: sold}
              - {id: k3, status: internal}
              - {id: k4, status: sold}
              - {id: k5}
              - {id: k6}
    devices:
      - {id: p1, kind: pdu, profile: pdu, endpoint: "tcp://127.0.0.1:1", unit: 1, cabinet: k1, feed: A}
      - {id: p2, kind: pdu, profile: pdu, endpoint: "tcp://127.0.0.1:1", unit: 2, cabinet: k2, feed: A}
      - {id: p3, kind: pdu, profile: pdu, endpoint: "tcp://127.0.0.1:1", unit: 3, cabinet: k3, feed: A}
      - {id: p4, kind: pdu, profile: pdu, endpoint: "tcp://127.0.0.1:1", unit: 4, cabinet: k4, feed: A}
      - {id: p5, kind: pdu, profile: pdu, endpoint: "tcp://127.0.0.1:1", unit: 5, cabinet: k5, feed: A}
      - {id: p6, kind: pdu, profile: pdu, endpoint: "tcp://127.0.0.1:1", unit: 6, cabinet: k6, feed: A}
)";

void put_plan_readings(Rig& rig, TimePoint t) {
  rig.put("p1", watts(2000), t);  // powered
  rig.put("p2", watts(1500), t);  // powered
  rig.put("p3", watts(800), t);   // powered
  rig.put("p4", watts(50), t);    // sold, but 50 W <= 100 W: not powered
  // Free, 0 W, but an outlet is switched on: energised, so powered.
  rig.put("p5", {{"active_power", {0, "W"}}, {"outlets_on", {1, "none"}}}, t);
  // Free, 0 W, every outlet off.
  rig.put("p6", {{"active_power", {0, "W"}}, {"outlets_on", {0, "none"}}}, t);
}

struct PlanCase {
  const char* name;
  std::chrono::sys_days day;
  std::optional<int> plan;
  std::optional<double> attainment;
};

class PlanTable : public ::testing::TestWithParam<PlanCase> {};

TEST_P(PlanTable, ActualVersusPlan) {
  const PlanCase& c = GetParam();
  Rig rig(kPlanSite);
  const TimePoint now{c.day};
  put_plan_readings(rig, now);
  const auto snap = rig.stateless(now);
  const auto& s = site_of(*snap, "s");
  // Powered: k1, k2, k3 by load, k5 by outlet = 4 of 6; sold 3 (k1, k2, k4), internal 1.
  EXPECT_EQ(s.cabinets_powered, 4);
  EXPECT_EQ(s.cabinets_total, 6);
  EXPECT_EQ(s.cabinets_sold, 3);
  EXPECT_EQ(s.cabinets_internal, 1);
  EXPECT_EQ(s.cabinets_free, 2);
  EXPECT_NEAR(*s.occupancy_powered, 4.0 / 6, 1e-12);
  EXPECT_NEAR(*s.occupancy_sold, 3.0 / 6, 1e-12);
  EXPECT_NEAR(*s.occupancy_planned, 4.0 / 10, 1e-12);  // 机柜利用率: powered / planned
  EXPECT_EQ(s.plan_powered, c.plan);
  ASSERT_EQ(s.plan_attainment.has_value(), c.attainment.has_value());
  if (c.attainment) {
    EXPECT_NEAR(*s.plan_attainment, *c.attainment, 1e-12);
  }
}

using std::chrono::day;
using std::chrono::month;
using std::chrono::year;
INSTANTIATE_TEST_SUITE_P(
    Cases, PlanTable,
    ::testing::Values(
        // Before the first row the plan is 0 powered: no attainment ratio.
        PlanCase{"before_plan", year(2024) / 12 / 31, 0, std::nullopt},
        // From 2025-01-01 (inclusive) 2 are planned: 4 / 2 = 2.0, ahead of plan.
        PlanCase{"first_day", year(2025) / 1 / 1, 2, 2.0},
        PlanCase{"end_of_2025", year(2025) / 12 / 31, 2, 2.0},
        // 2026: 5 planned: 4 / 5 = 0.8.
        PlanCase{"mid_2026", year(2026) / 6 / 1, 5, 0.8},
        // 2027: 9 planned: 4 / 9 = 0.444...
        PlanCase{"2027", year(2027) / 1 / 1, 9, 4.0 / 9}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(Occupancy, UnknownPoweredStateWithholdsTheRatios) {
  Rig rig(kPlanSite);
  const TimePoint now{std::chrono::sys_days(year(2026) / 6 / 1)};
  put_plan_readings(rig, now);
  rig.put("p4", watts(50), now - 60s);  // k4's only PDU is stale: powered or not is unknown
  const auto snap = rig.stateless(now);
  const auto& s = site_of(*snap, "s");
  EXPECT_FALSE(s.occupancy_powered);
  EXPECT_FALSE(s.plan_attainment);
  EXPECT_NEAR(*coverage_of(s, "powered_state"), 5.0 / 6, 1e-12);
  EXPECT_NEAR(*s.occupancy_sold, 0.5, 1e-12);  // commercial status does not need readings
}

// ---- Inlet temperature against ASHRAE classes -----------------------------------------------

const char* kInletSite = R"(
facility: {inlet: {class: A1}}
sites:
  - id: s
    rooms:
      - id: r
        rows:
          - id: w
            cabinets:
              - {id: c, feeds: [A]}
    devices:
      - {id: env, kind: rack_sensor, profile: env, endpoint: "tcp://127.0.0.1:1", unit: 1, cabinet: c}
  - id: s2
    facility: {inlet: {class: A2}}
    rooms:
      - id: r
        rows:
          - id: w
            cabinets:
              - {id: c, feeds: [A]}
    devices:
      - {id: env2, kind: rack_sensor, profile: env, endpoint: "tcp://127.0.0.1:1", unit: 2, cabinet: c}
)";

struct InletCase {
  const char* name;
  const char* site;
  double celsius;
  OverloadState expected;
};

class InletTable : public ::testing::TestWithParam<InletCase> {};

TEST_P(InletTable, AshraeRanges) {
  const InletCase& c = GetParam();
  Rig rig(kInletSite);
  rig.put(std::string(c.site) == "s" ? "env" : "env2",
          {{"inlet_temperature", {c.celsius, "celsius"}}, {"humidity", {50, "percent"}}}, at_s(0));
  const auto snap = rig.stateless(at_s(1));
  const auto& cs = cabinet_of(site_of(*snap, c.site), "c");
  EXPECT_EQ(cs.inlet_state, c.expected);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, InletTable,
    ::testing::Values(
        // A1: recommended 18-27 degC (warning outside), allowable 15-32 degC (critical outside).
        InletCase{"a1_27_is_in", "s", 27.0, OverloadState::kOk},
        InletCase{"a1_27_5", "s", 27.5, OverloadState::kWarning},
        InletCase{"a1_32_5", "s", 32.5, OverloadState::kCritical},
        InletCase{"a1_17_5", "s", 17.5, OverloadState::kWarning},
        InletCase{"a1_14", "s", 14.0, OverloadState::kCritical},
        // A2 allows up to 35 degC: 33 degC is only outside the recommended range.
        InletCase{"a2_33", "s2", 33.0, OverloadState::kWarning},
        InletCase{"a2_36", "s2", 36.0, OverloadState::kCritical}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(Inlet, DewPointFromInletAndHumidity) {
  Rig rig(kInletSite);
  rig.put("env", {{"inlet_temperature", {25, "celsius"}}, {"humidity", {50, "percent"}}}, at_s(0));
  const auto snap = rig.stateless(at_s(1));
  const auto& rs = site_of(*snap, "s").rack_sensors[0];
  // Magnus: g = ln(0.5) + 17.62 x 25 / (243.12 + 25) = -0.693147 + 1.642906 = 0.949759;
  // Td = 243.12 x 0.949759 / (17.62 - 0.949759) = 13.851 degC.
  ASSERT_TRUE(rs.dew_point_c);
  EXPECT_NEAR(*rs.dew_point_c, 13.851, 0.001);
}

// ---- Cooling headroom with N+1 --------------------------------------------------------------

// One room, IT heat from one 100 kW cabinet; three cooling units of 50, 50 and 40 kW.
const char* kCoolingSite = R"(
sites:
  - id: s
    rooms:
      - id: r
        rows:
          - id: w
            cabinets:
              - {id: c, rated_kw: 100, feeds: [A]}
    devices:
      - {id: ca, kind: pdu, profile: pdu, endpoint: "tcp://127.0.0.1:1", unit: 1, cabinet: c, feed: A}
      - {id: u1, kind: cooling, profile: crah, endpoint: "tcp://127.0.0.1:1", unit: 2, room: r, capacity_kw: 50}
      - {id: u2, kind: cooling, profile: crah, endpoint: "tcp://127.0.0.1:1", unit: 3, room: r, capacity_kw: 50}
      - {id: u3, kind: cooling, profile: crah, endpoint: "tcp://127.0.0.1:1", unit: 4, room: r, capacity_kw: 40}
)";

struct CoolingCase {
  const char* name;
  double heat_w;
  bool u1_running;
  std::optional<double> running_w, headroom_w, headroom_n1_w;
  OverloadState state;
};

class CoolingTable : public ::testing::TestWithParam<CoolingCase> {};

TEST_P(CoolingTable, RunningCapacityMinusTheLargestUnit) {
  const CoolingCase& c = GetParam();
  Rig rig(kCoolingSite);
  rig.put("ca", watts(c.heat_w), at_s(0));
  const auto unit = [](bool on) {
    return testing::Points{{"supply_temperature", {19, "celsius"}},
                           {"return_temperature", {30.5, "celsius"}},
                           {"running", {on ? 1.0 : 0.0, "none"}}};
  };
  rig.put("u1", unit(c.u1_running), at_s(0));
  rig.put("u2", unit(true), at_s(0));
  rig.put("u3", unit(true), at_s(0));
  const auto snap = rig.stateless(at_s(1));
  const auto& s = site_of(*snap, "s");
  const auto& cc = s.rooms[0].cooling;
  EXPECT_DOUBLE_EQ(cc.installed_w, 140e3);  // 50 + 50 + 40 kW
  EXPECT_EQ(cc.running_w, c.running_w);
  EXPECT_EQ(cc.headroom_w, c.headroom_w);
  EXPECT_EQ(cc.headroom_n_plus_1_w, c.headroom_n1_w);
  EXPECT_EQ(s.rooms[0].cooling_state, c.state);
  EXPECT_DOUBLE_EQ(*s.cooling[0].delta_t_c, 11.5);  // 30.5 - 19
}

INSTANTIATE_TEST_SUITE_P(
    Cases, CoolingTable,
    ::testing::Values(
        // All running: 140 kW; N+1 = 140 - 50 = 90 kW. Heat 90 kW: headroom 50, N+1 0 (ok).
        CoolingCase{"n_plus_1_exact", 90e3, true, 140e3, 50e3, 0.0, OverloadState::kOk},
        // Heat 95 kW: N+1 headroom 90 - 95 = -5 kW: redundancy lost (warning).
        CoolingCase{"redundancy_lost", 95e3, true, 140e3, 45e3, -5e3, OverloadState::kWarning},
        // u1 stopped: running 50 + 40 = 90 kW, N+1 = 90 - 50 = 40 kW. Heat 95 kW:
        // headroom 90 - 95 = -5 kW (critical), N+1 headroom 40 - 95 = -55 kW.
        CoolingCase{"unit_stopped", 95e3, false, 90e3, -5e3, -55e3, OverloadState::kCritical}),
    [](const auto& info) { return std::string(info.param.name); });

// ---- Capacity and stranded power ------------------------------------------------------------

const char* kCapacitySite = R"(
defaults: {interval: 10s, feeds: [A]}
facility: {capacity_reserve: 0.1, cabinet_equivalent_kw: 4.4}
sites:
  - id: s
    rooms:
      - id: r
        rows:
          - id: w
            cabinets:
              - {id: k1, status: sold}
              - {id: k2, status: sold}
              - {id: k3}
    devices:
      - {id: p1, kind: pdu, profile: pdu, endpoint: "tcp://127.0.0.1:1", unit: 1, cabinet: k1, feed: A}
      - {id: p2, kind: pdu, profile: pdu, endpoint: "tcp://127.0.0.1:1", unit: 2, cabinet: k2, feed: A}
      - {id: p3, kind: pdu, profile: pdu, endpoint: "tcp://127.0.0.1:1", unit: 3, cabinet: k3, feed: A}
)";

TEST(Capacity, HeadroomReserveAndStrandedFromPeaks) {
  Rig rig(kCapacitySite);
  // k1 peaks at 2,500 W at t=0, then draws 2,000 W; k2 is sold but draws nothing; k3 is free
  // and unpowered (not counted as stranded).
  rig.put("p1", watts(2500), at_s(0));
  rig.put("p2", watts(0), at_s(0));
  rig.put("p3", watts(0), at_s(0));
  rig.update(at_s(0));
  rig.put("p1", watts(2000), at_s(60));
  rig.put("p2", watts(0), at_s(60));
  rig.put("p3", watts(0), at_s(60));
  const auto snap = rig.update(at_s(60));
  const auto& c = site_of(*snap, "s").capacity;
  // Rated 3 x 4,400 = 13,200 W; measured 2,000 W; headroom 11,200 W; reserve 10 % = 1,320 W;
  // headroom to reserve 13,200 - 1,320 - 2,000 = 9,880 W.
  EXPECT_DOUBLE_EQ(c.rated_w, 13200);
  EXPECT_DOUBLE_EQ(*c.measured_w, 2000);
  EXPECT_DOUBLE_EQ(*c.headroom_w, 11200);
  EXPECT_DOUBLE_EQ(c.reserve_w, 1320);
  EXPECT_DOUBLE_EQ(*c.headroom_to_reserve_w, 9880);
  // Stranded = sum over powered or sold cabinets of rated - peak:
  // k1 4,400 - 2,500 = 1,900; k2 4,400 - 0 = 4,400; total 6,300 W (1.432 cabinets of 4.4 kW).
  EXPECT_DOUBLE_EQ(*c.stranded_w, 6300);
  // Without memory (one snapshot) the peak is the present power: 2,400 + 4,400 = 6,800 W.
  EXPECT_DOUBLE_EQ(*site_of(*rig.stateless(at_s(60)), "s").capacity.stranded_w, 6800);
}

// A peak is a peak over the window: when the power stays unknown (the PDU is silent), the
// remembered one ages out like any other, rather than standing for "the last 24 h" forever.
TEST(Capacity, PeakAgesOutWhileThePowerIsUnknown) {
  std::string yaml = kCapacitySite;
  const std::string facility = "facility: {capacity_reserve: 0.1,";
  yaml.replace(yaml.find(facility), facility.size(), facility + " peak_window: 1h,");
  Rig rig(yaml);
  rig.put("p1", watts(2500), at_s(0));
  rig.put("p2", watts(0), at_s(0));
  rig.put("p3", watts(0), at_s(0));
  rig.update(at_s(0));
  // p1 never answers again; p2 and p3 do. 30 min later the 2,500 W are still within the hour.
  for (int t = 60; t <= 7200; t += 60) {
    rig.put("p2", watts(0), at_s(t));
    rig.put("p3", watts(0), at_s(t));
    const auto snap = rig.update(at_s(t));
    const auto& k1 = cabinet_of(site_of(*snap, "s"), "k1");
    ASSERT_FALSE(k1.power_w) << "stale after 30 s";
    if (t == 1800) {
      EXPECT_EQ(k1.peak_w, 2500.0);
    }
  }
  const auto snap = rig.update(at_s(7200));
  const auto& s = site_of(*snap, "s");
  EXPECT_FALSE(cabinet_of(s, "k1").peak_w) << "the 2,500 W of t = 0 are 2 h old";
  EXPECT_FALSE(s.capacity.stranded_w) << "k1 is sold and its peak unknown";
}

}  // namespace
}  // namespace facility
