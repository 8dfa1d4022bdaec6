// The facility-model part of the configuration: the `facility` section (top level and per site),
// cabinet classes, the build-out plan, meter roles and the facility keys of devices.
#include <gtest/gtest.h>

#include <cmath>

#include "daemon/config/config.h"
#include "test_util.h"

namespace facility {
namespace {

using namespace std::chrono_literals;
using testing::TempDir;

const char* kPdu = R"(name: pdu
points:
  - {name: active_power, function: input, address: 0, type: uint32, unit: W}
)";
const char* kCurrentOnly = R"(name: cur
points:
  - {name: current, function: input, address: 0, type: uint16, scale: 0.01, unit: A}
)";
const char* kNoPower = R"(name: nopower
points:
  - {name: voltage, function: input, address: 0, type: uint16, scale: 0.1, unit: V}
)";

const char* kGood = R"(facility:
  derating: 0.8
  nominal_voltage_v: 230
  overload: {warning: 0.85, hold: 2m}
  inlet: {class: A2}
  pue_windows: [15m, 1h, 30d]
cabinet_classes:
  - {id: std, breaker: {amps: 20, volts: 220}}
  - {id: gpu, rated_kw: 8.8, feeds: [A], derating: 1.0, overload: {warning: 0.9, critical: 0.98}}
sites:
  - id: s1
    planned_cabinets: 10
    facility: {pue_min_coverage: 0.95, overload: {critical: 0.97}}
    build_out_plan:
      - {date: 2025-07-01, powered: 2}
      - {date: 2026-07-01, powered: 8}
    rooms:
      - id: r1
        rows:
          - id: w1
            cabinets:
              - {id: c1, class: std, status: sold, rack_units: 47}
              - {id: c2, class: gpu}
              - {id: c3, class: std, rated_kw: 5}
    devices:
      - {id: p1, kind: pdu, profile: pdu, endpoint: "tcp://127.0.0.1:1", unit: 1, cabinet: c1, feed: A}
      - {id: p2, kind: pdu, profile: cur, endpoint: "tcp://127.0.0.1:1", unit: 2, cabinet: c1, feed: B, nominal_power_factor: 0.9}
      - {id: m1, kind: meter, role: it_at_pdu_output, profile: pdu, endpoint: "tcp://127.0.0.1:1", unit: 3}
      - {id: m2, kind: meter, role: it_total, profile: pdu, endpoint: "tcp://127.0.0.1:1", unit: 4}
      - {id: u1, kind: cooling, profile: pdu, endpoint: "tcp://127.0.0.1:1", unit: 5, room: r1, capacity_kw: 50}
  - id: s2
    rooms:
      - id: r1
        rows:
          - id: w1
            cabinets:
              - {id: c1}
)";

struct Fixture {
  TempDir dir;
  std::string path;
  explicit Fixture(const std::string& cfg) {
    dir.write("profiles/pdu.yaml", kPdu);
    dir.write("profiles/cur.yaml", kCurrentOnly);
    dir.write("profiles/nopower.yaml", kNoPower);
    path = dir.write("site.yaml", cfg);
  }
};

std::vector<ConfigError> errors_of(const std::string& cfg) {
  Fixture f(cfg);
  try {
    load_config(f.path);
  } catch (const ConfigException& e) {
    return e.errors();
  }
  return {};
}

std::string mutate(const std::string& from, const std::string& to) {
  std::string s = kGood;
  const auto pos = s.find(from);
  EXPECT_NE(pos, std::string::npos) << from;
  return s.replace(pos, from.size(), to);
}

TEST(ConfigFacility, ResolvesSettingsFromGeneralToSpecific) {
  Fixture f(kGood);
  const Config c = load_config(f.path);
  const Site& s1 = c.sites[0];
  const Site& s2 = c.sites[1];
  // Top level: derating 0.8, 230 V, warning 0.85 (critical stays 0.95), hold 2 min, A2.
  EXPECT_DOUBLE_EQ(c.facility.overload.warning, 0.85);
  EXPECT_DOUBLE_EQ(c.facility.overload.critical, 0.95);
  EXPECT_EQ(c.facility.overload.hold, 120s);
  EXPECT_EQ(c.facility.inlet.ashrae_class, "A2");
  EXPECT_DOUBLE_EQ(c.facility.inlet.allowable_high_c, 35);
  EXPECT_EQ(c.facility.pue_windows, (std::vector<Millis>{15min, 1h, 24h * 30}));
  // s1 overrides coverage and critical; s2 inherits everything.
  EXPECT_DOUBLE_EQ(s1.facility.pue_min_coverage, 0.95);
  EXPECT_DOUBLE_EQ(s1.facility.overload.critical, 0.97);
  EXPECT_DOUBLE_EQ(s1.facility.overload.warning, 0.85);
  EXPECT_DOUBLE_EQ(s2.facility.pue_min_coverage, 1.0);
  EXPECT_DOUBLE_EQ(s2.facility.overload.critical, 0.95);
  // Classes: std takes the 20 A x 220 V breaker: 4,400 W, feed capacity 4,400 W, derating 0.8.
  const Cabinet& c1 = s1.cabinets[0];
  EXPECT_EQ(c1.cabinet_class, "std");
  EXPECT_DOUBLE_EQ(c1.rated_w, 4400);
  EXPECT_DOUBLE_EQ(c1.feed_capacity_w, 4400);
  EXPECT_DOUBLE_EQ(c1.derating, 0.8);
  EXPECT_EQ(c1.rack_units, 47);
  EXPECT_DOUBLE_EQ(c1.overload.critical, 0.97);  // the site's
  // gpu: 8.8 kW, one feed, derating 1.0, its own thresholds over the site's.
  const Cabinet& c2 = s1.cabinets[1];
  EXPECT_DOUBLE_EQ(c2.rated_w, 8800);
  EXPECT_EQ(c2.feeds, std::vector<std::string>{"A"});
  EXPECT_DOUBLE_EQ(c2.derating, 1.0);
  EXPECT_DOUBLE_EQ(c2.overload.warning, 0.9);
  EXPECT_DOUBLE_EQ(c2.overload.critical, 0.98);
  EXPECT_EQ(c2.overload.hold, 120s);
  // The cabinet's own rated_kw wins over its class's breaker; without a breaker the feed
  // capacity is the rated power.
  const Cabinet& c3 = s1.cabinets[2];
  EXPECT_DOUBLE_EQ(c3.rated_w, 5000);
  EXPECT_FALSE(c3.breaker);
  EXPECT_DOUBLE_EQ(c3.feed_capacity_w, 5000);
  // Plan, devices.
  ASSERT_EQ(s1.build_out_plan.size(), 2u);
  EXPECT_EQ(s1.build_out_plan[1].powered, 8);
  EXPECT_EQ(plan_at(s1.build_out_plan, s1.build_out_plan[1].date - 1s), 2);
  EXPECT_EQ(plan_at(s1.build_out_plan, s1.build_out_plan[1].date), 8);
  EXPECT_EQ(plan_at(s1.build_out_plan, s1.build_out_plan[0].date - 1s), 0);
  EXPECT_FALSE(plan_at(s2.build_out_plan, s1.build_out_plan[0].date));
  EXPECT_DOUBLE_EQ(s1.devices[0].nominal_voltage_v, 230);
  EXPECT_DOUBLE_EQ(s1.devices[0].nominal_power_factor, 0.95);
  EXPECT_DOUBLE_EQ(s1.devices[1].nominal_power_factor, 0.9);
  EXPECT_EQ(s1.devices[2].role, MeterRole::kItPduOutput);
  EXPECT_EQ(it_category(s1.devices[2].role, s1.pue_category), 2);
  EXPECT_EQ(it_category(s1.devices[3].role, s1.pue_category), 1);  // it_total at category 1
  EXPECT_EQ(it_category(MeterRole::kFacilityTotal, 1), 0);
  EXPECT_DOUBLE_EQ(*s1.devices[4].capacity_w, 50000);
}

// planned_cabinets absent or 0 is resolved once, at load, to the delivered cabinets: every sink
// (metrics, MQTT, the model's occupancy against plan, reports) reads the resolved number.
TEST(ConfigFacility, PlannedCabinetsDefaultToTheDeliveredOnes) {
  Fixture f(kGood);
  EXPECT_EQ(load_config(f.path).sites[1].planned_cabinets, 1) << "absent";
  Fixture zero(mutate("  - id: s2\n", "  - id: s2\n    planned_cabinets: 0\n"));
  EXPECT_EQ(load_config(zero.path).sites[1].planned_cabinets, 1) << "0";
}

struct BadCase {
  const char* name;
  std::string config;
  int line;
  const char* message_part;
};

class ConfigFacilityErrors : public ::testing::TestWithParam<BadCase> {};

TEST_P(ConfigFacilityErrors, ReportsLineAndReason) {
  const auto& c = GetParam();
  const auto errs = errors_of(c.config);
  bool found = false;
  std::string all;
  for (const auto& e : errs) {
    all += e.format() + "\n";
    if (e.loc.line == c.line && e.message.find(c.message_part) != std::string::npos) found = true;
  }
  EXPECT_TRUE(found) << c.name << ": wanted line " << c.line << " with \"" << c.message_part
                     << "\", got:\n"
                     << all;
}

INSTANTIATE_TEST_SUITE_P(
    All, ConfigFacilityErrors,
    ::testing::Values(
        BadCase{"derating_range", mutate("derating: 0.8", "derating: 1.2"), 2, "must be in (0, 1]"},
        BadCase{"warning_over_critical", mutate("warning: 0.85", "warning: 0.96"), 4,
                "must be below critical"},
        BadCase{"ashrae_class", mutate("class: A2", "class: A9"), 5, "unknown ASHRAE class \"A9\""},
        BadCase{"window_step", mutate("[15m, 1h, 30d]", "[15m, 1h, 25s]"), 6,
                "whole multiple of 10s"},
        BadCase{"window_coarse", mutate("[15m, 1h, 30d]", "[15m, 1h, 90030s]"), 6,
                "above 25h must be a multiple of 5m"},
        BadCase{"window_long", mutate("[15m, 1h, 30d]", "[15m, 1h, 32d]"), 6, "to 31 days"},
        BadCase{"unknown_class", mutate("{id: c2, class: gpu}", "{id: c2, class: gpx}"), 23,
                "unknown cabinet class \"gpx\" (defined: std, gpu)"},
        BadCase{"class_dup", mutate("{id: gpu,", "{id: std,"), 9, "duplicate class id"},
        BadCase{"plan_order", mutate("date: 2026-07-01", "date: 2025-01-01"), 16,
                "ascending order"},
        BadCase{"plan_date", mutate("date: 2026-07-01", "date: 2026-02-30"), 16,
                "calendar date YYYY-MM-DD"},
        // Found by the config fuzz target: year 1013 overflowed a nanosecond time point (UBSan).
        BadCase{"plan_date_early", mutate("date: 2025-07-01", "date: 1013-07-01"), 15,
                "out of range (1970-01-01 to 2199-12-31)"},
        BadCase{"plan_date_late", mutate("date: 2026-07-01", "date: 2200-01-01"), 16,
                "out of range (1970-01-01 to 2199-12-31)"},
        BadCase{"plan_over_planned", mutate("powered: 8", "powered: 11"), 15,
                "more than planned_cabinets (10)"},
        BadCase{"capacity_on_pdu", mutate("feed: A}", "feed: A, capacity_kw: 3}"), 26,
                "\"capacity_kw\" applies only to cooling"},
        BadCase{"nominal_on_meter",
                mutate("role: it_total,", "role: it_total, nominal_voltage_v: 230,"), 29,
                "applies only to pdu"},
        BadCase{"bad_role", mutate("role: it_at_pdu_output", "role: it_at_pdu"), 28,
                "unknown role \"it_at_pdu\""},
        BadCase{
            "pdu_without_power", mutate("profile: cur,", "profile: nopower,"), 27,
            "has no point \"active_power\" (or active_power_l1..l3, current, or current_l1..l3)"}),
    [](const ::testing::TestParamInfo<BadCase>& i) { return std::string(i.param.name); });

TEST(ConfigFacility, CurrentOnlyPduIsAccepted) { EXPECT_TRUE(errors_of(kGood).empty()); }

}  // namespace
}  // namespace facility
