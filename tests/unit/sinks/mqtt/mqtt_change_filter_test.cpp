// Change-driven publishing: which rendered messages differ enough from the last one queued on
// their topic (deadbands per quantity, chosen by unit; everything non-numeric exact).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "daemon/sinks/mqtt/change_filter.h"

namespace facility {
namespace {

using nlohmann::json;
using V = MqttChangeFilter::Verdict;

MqttDeadbands deadbands() {
  MqttDeadbands d;
  d.power_w = 50;
  d.energy_wh = 100;
  d.temperature_c = 0.5;
  d.ratio = 0.01;
  d.current_a = 0.1;
  d.voltage_v = 1;
  d.frequency_hz = 0.05;
  return d;
}

json cabinet(double power, double inlet, const std::string& quality = "good") {
  return json{{"ts", "2026-01-01T00:00:00.000Z"},
              {"power_w", power},
              {"utilization", power / 5000},
              {"inlet_c", inlet},
              {"quality", quality},
              {"feeds", {{"A", {{"power_w", power}, {"phases", json::object()}}}}},
              {"units", {{"power_w", "W"}, {"utilization", "ratio"}, {"inlet_c", "celsius"}}}};
}

TEST(MqttChangeFilter, DeadbandsByUnitAgainstTheLastAcceptedValue) {
  MqttChangeFilter f(deadbands());
  EXPECT_EQ(f.offer("t", cabinet(1000, 24.0), false, false), V::kChanged);  // first on topic
  // +40 W (and +0.008 utilization): within both deadbands.
  EXPECT_EQ(f.offer("t", cabinet(1040, 24.0), false, false), V::kUnchanged);
  // +60 W from the last *accepted* 1000 W, although only +20 W from the last offer.
  EXPECT_EQ(f.offer("t", cabinet(1060, 24.0), false, false), V::kChanged);
  // Exactly the deadband is not "more than" it.
  const auto power = [](double w) { return json{{"power_w", w}, {"units", {{"power_w", "W"}}}}; };
  f.offer("p", power(1000), false, false);
  EXPECT_EQ(f.offer("p", power(1050), false, false), V::kUnchanged);
  EXPECT_EQ(f.offer("p", power(949.5), false, false), V::kChanged);
  // Temperature beyond 0.5 degC alone.
  EXPECT_EQ(f.offer("t", cabinet(1060, 24.6), false, false), V::kChanged);
  EXPECT_EQ(f.offer("t", cabinet(1060, 24.4), false, false), V::kUnchanged);
}

TEST(MqttChangeFilter, NonNumericChangesAndStructureAlwaysCount) {
  MqttChangeFilter f(deadbands());
  f.offer("t", cabinet(1000, 24.0), false, false);
  EXPECT_EQ(f.offer("t", cabinet(1000, 24.0, "stale"), false, false), V::kChanged);
  json j = cabinet(1000, 24.0, "stale");
  j["power_w"] = nullptr;  // a number becoming unknown
  EXPECT_EQ(f.offer("t", j, false, false), V::kChanged);
  EXPECT_EQ(f.offer("t", j, false, false), V::kUnchanged);
  j["feeds"]["A"]["phases"]["L1"] = {{"power_w", 1}};  // a field appearing
  EXPECT_EQ(f.offer("t", j, false, false), V::kChanged);
  j["extra"] = true;
  EXPECT_EQ(f.offer("t", j, false, false), V::kChanged);
  j["extra"] = false;
  EXPECT_EQ(f.offer("t", j, false, false), V::kChanged);
}

TEST(MqttChangeFilter, TimestampsAloneNeverCount) {
  MqttChangeFilter f(deadbands());
  json d = {{"ts", "2026-01-01T00:00:00.000Z"},
            {"last_success", "2026-01-01T00:00:00.000Z"},
            {"points", {{"voltage", {{"value", 230.0}, {"unit", "V"}}}}}};
  f.offer("d", d, false, false);
  d["ts"] = "2026-01-01T00:00:10.000Z";
  d["last_success"] = "2026-01-01T00:00:09.000Z";
  EXPECT_EQ(f.offer("d", d, false, false), V::kUnchanged);
}

TEST(MqttChangeFilter, DevicePointsUseTheirOwnUnitScaled) {
  MqttChangeFilter f(deadbands());
  const auto point = [](double v, const char* unit) {
    return json{{"points", {{"p", {{"value", v}, {"unit", unit}}}}}};
  };
  // kW: the 50 W deadband is 0.05 kW.
  f.offer("kw", point(1.20, "kW"), false, false);
  EXPECT_EQ(f.offer("kw", point(1.24, "kW"), false, false), V::kUnchanged);
  EXPECT_EQ(f.offer("kw", point(1.26, "kW"), false, false), V::kChanged);
  // percent: the 0.01 ratio deadband is 1 %.
  f.offer("pct", point(50, "percent"), false, false);
  EXPECT_EQ(f.offer("pct", point(50.9, "percent"), false, false), V::kUnchanged);
  EXPECT_EQ(f.offer("pct", point(51.1, "percent"), false, false), V::kChanged);
  // kWh: 100 Wh is 0.1 kWh.
  f.offer("e", point(1000.00, "kWh"), false, false);
  EXPECT_EQ(f.offer("e", point(1000.05, "kWh"), false, false), V::kUnchanged);
  EXPECT_EQ(f.offer("e", point(1000.15, "kWh"), false, false), V::kChanged);
  // A unit without a deadband (rpm): any change.
  f.offer("rpm", point(1200, "rpm"), false, false);
  EXPECT_EQ(f.offer("rpm", point(1201, "rpm"), false, false), V::kChanged);
  // An enclosing field's unit applies to the numbers inside it (summary "coverage").
  const auto cov = [](double v) {
    return json{{"coverage", {{"it", v}}}, {"units", {{"coverage", "ratio"}}}};
  };
  f.offer("s", cov(0.5), false, false);
  EXPECT_EQ(f.offer("s", cov(0.505), false, false), V::kUnchanged);
  EXPECT_EQ(f.offer("s", cov(0.52), false, false), V::kChanged);
  // A count without a unit: exact.
  f.offer("n", json{{"cabinets", {{"total", 3}}}}, false, false);
  EXPECT_EQ(f.offer("n", json{{"cabinets", {{"total", 4}}}}, false, false), V::kChanged);
  EXPECT_DOUBLE_EQ(f.deadband_for("MWh"), 100.0 / 1e6);
  EXPECT_DOUBLE_EQ(f.deadband_for("Hz"), 0.05);
  EXPECT_DOUBLE_EQ(f.deadband_for("none"), 0);
}

TEST(MqttChangeFilter, ForceAndExactAndForget) {
  MqttChangeFilter f(deadbands());
  f.offer("t", cabinet(1000, 24.0), false, false);
  EXPECT_EQ(f.offer("t", cabinet(1010, 24.0), true, false), V::kForced);
  // The forced message is now the reference: +45 W from it is within the deadband.
  EXPECT_EQ(f.offer("t", cabinet(1055, 24.0), false, false), V::kUnchanged);
  // exact: alerts compare every number without deadband.
  EXPECT_EQ(f.offer("t", cabinet(1011, 24.0), false, true), V::kChanged);
  f.forget("t");
  EXPECT_EQ(f.offer("t", cabinet(1011, 24.0), false, false), V::kChanged);
  EXPECT_EQ(f.size(), 1u);
  // Integer and floating-point encodings of one value are the same value.
  f.offer("i", json{{"n", 3}}, false, false);
  EXPECT_EQ(f.offer("i", json{{"n", 3.0}}, false, false), V::kUnchanged);
}

TEST(MqttChangeFilter, ZeroDeadbandPublishesEveryDifference) {
  MqttChangeFilter f(MqttDeadbands{0, 0, 0, 0, 0, 0, 0});
  f.offer("t", cabinet(1000, 24.0), false, false);
  EXPECT_EQ(f.offer("t", cabinet(1000, 24.0), false, false), V::kUnchanged);
  EXPECT_EQ(f.offer("t", cabinet(1000.001, 24.0), false, false), V::kChanged);
}

json alert(bool raised, const std::string& severity, const std::string& since,
           const std::string& quality, double value) {
  return json{{"ts", "2026-01-01T00:00:10.000Z"}, {"state", raised ? "raised" : "cleared"},
              {"raised", raised},  {"severity", severity},
              {"value", value},    {"since", since},
              {"quality", quality}};
}

// Only a change of (raised, severity, since) is an alert event; quality and value are not
// (review B5: a flapping PDU made every good<->stale flip a never-dropped "event").
TEST(MqttAlertTransitions, OnlyTheStateTupleMakesAnEvent) {
  MqttAlertTransitions a;
  const std::string t = "p/s1/alert/cabinet_overload/c1";
  const std::string s1 = "2026-01-01T00:00:00.000Z";
  EXPECT_TRUE(a.is_event(t, alert(true, "warning", s1, "good", 0.9))) << "first on its topic";
  EXPECT_FALSE(a.is_event(t, alert(true, "warning", s1, "stale", 0.9)));
  EXPECT_FALSE(a.is_event(t, alert(true, "warning", s1, "good", 0.93)));
  EXPECT_TRUE(a.is_event(t, alert(true, "critical", s1, "good", 0.96))) << "severity";
  EXPECT_FALSE(a.is_event(t, alert(true, "critical", s1, "good", 0.96))) << "a refresh";
  EXPECT_TRUE(a.is_event(t, alert(false, "critical", s1, "good", 0.7))) << "cleared";
  EXPECT_TRUE(a.is_event(t, alert(true, "critical", "2026-01-01T01:00:00.000Z", "good", 0.97)))
      << "raised again, new since";
  EXPECT_TRUE(a.is_event("p/s1/alert/cabinet_overload/c2", alert(true, "critical", s1, "good", 1)))
      << "topics are separate";
  EXPECT_EQ(a.size(), 2u);
}

}  // namespace
}  // namespace facility
