// The MQTT payload contract (docs/mqtt.md), checked without a broker: topics, keys, values,
// nulls for unknown values, units and the timestamp format. (The JSON Schemas in docs/schemas are
// checked against these payloads by tests/integration/test_mqtt_schemas.py.)
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <regex>
#include <stdexcept>

#include "daemon/sinks/mqtt/publisher.h"
#include "daemon/sinks/mqtt/render.h"

namespace facility {
namespace {

using namespace std::chrono;
using nlohmann::json;

const std::regex kRfc3339Ms(R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$)");
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

TimePoint at(year_month_day d, hours h, minutes m, seconds s, microseconds us) {
  return TimePoint{sys_days{d}} + h + m + s + us;
}

FeedPower feed(const std::string& name, std::optional<double> w, const std::string& device) {
  FeedPower f;
  f.feed = name;
  f.power_w = w;
  f.device = device;
  return f;
}

// A site with one sold cabinet measured by two fresh PDUs, one free cabinet whose PDUs are
// stale, a cooling unit and a main meter that is down.
struct Fixture {
  std::shared_ptr<Config> cfg = std::make_shared<Config>();
  FacilitySnapshot snap;
  const TimePoint now = at(2026y / 11 / 22, 4h, 3min, 19s, 123456us);

  Fixture() {
    Site s;
    s.id = "dc1";
    s.name = "DC One";
    s.pue_category = 2;
    s.planned_cabinets = 10;
    Cabinet c1;
    c1.id = "r1-c01";
    c1.site = "dc1";
    c1.room = "hall1";
    c1.row = "r1";
    c1.rated_w = 5000;
    c1.feeds = {"A", "B"};
    c1.status = CabinetStatus::kSold;
    Cabinet c2 = c1;
    c2.id = "r1-c02";
    c2.status = CabinetStatus::kFree;
    s.cabinets = {c1, c2};
    Device pdu;
    pdu.id = "pdu-1a";
    pdu.site = "dc1";
    pdu.kind = DeviceKind::kPdu;
    pdu.profile_name = "pdu_generic";
    pdu.cabinet = "r1-c01";
    pdu.feed = "A";
    Device crah;
    crah.id = "crah-1";
    crah.site = "dc1";
    crah.kind = DeviceKind::kCooling;
    crah.profile_name = "crah_generic";
    crah.room = "hall1";
    Device meter;
    meter.id = "main";
    meter.site = "dc1";
    meter.kind = DeviceKind::kMeter;
    meter.profile_name = "meter_generic";
    meter.role = MeterRole::kFacilityTotal;
    s.devices = {pdu, crah, meter};
    cfg->sites.reserve(4);  // tests add sites; pointers into the vector must stay valid
    cfg->sites.push_back(s);

    const Site& site = cfg->sites[0];
    snap.computed_at = now;
    snap.config = cfg;

    SiteSnapshot ss;
    ss.site = &site;
    ss.it_power_w = 3000;
    ss.it_power_source = "pdu_sum";
    ss.pue_category = site.pue_category;  // the model copies the primary IT term's category
    ss.facility_power_w = 4500;
    ss.cooling_power_w = std::nullopt;
    ss.pue = 1.5;
    ss.it_coverage = 1.0;
    ss.facility_coverage = 0.5;
    ss.rated_w = 10000;
    ss.cabinets_total = 2;
    ss.cabinets_powered = 1;
    ss.cabinets_sold = 1;
    ss.cabinets_internal = 0;
    ss.cabinets_free = 1;
    ss.cabinets_measured = 1;
    ss.occupancy_powered = 0.5;
    ss.occupancy_sold = std::nullopt;

    CabinetSnapshot cs1;
    cs1.cabinet = &site.cabinets[0];
    cs1.feeds = {feed("A", 1200.0, "pdu-1a"), feed("B", 1800.0, "pdu-1b")};
    cs1.power_w = 3000;
    cs1.utilization = 0.6;
    cs1.powered = true;
    cs1.powered_known = true;
    cs1.quality = Quality::kGood;
    cs1.inlet_c = 24.5;
    ss.cabinets.push_back(cs1);

    // Stale: numbers that must not leak out (a buggy model, NaN from a bad register).
    CabinetSnapshot cs2;
    cs2.cabinet = &site.cabinets[1];
    cs2.feeds = {feed("A", std::nullopt, "pdu-2a"), feed("B", kNaN, "pdu-2b")};
    cs2.power_w = 123;
    cs2.utilization = kNaN;
    cs2.powered = false;
    cs2.quality = Quality::kStale;
    ss.cabinets.push_back(cs2);

    CoolingSnapshot cool;
    cool.device = &site.devices[1];
    cool.supply_c = 18.0;
    cool.return_c = 30.5;
    cool.power_w = 2500;
    cool.fan_ratio = 0.75;
    cool.running = true;
    ss.cooling.push_back(cool);
    snap.sites.push_back(ss);

    auto reading = std::make_shared<DeviceReading>();
    reading->device_id = "pdu-1a";
    reading->polled_at = now - 2s;
    reading->points["active_power"] = PointValue{1.2, "kW"};
    reading->points["voltage"] = PointValue{std::nullopt, "V"};
    DeviceSnapshot d1;
    d1.device = &site.devices[0];
    d1.up = true;
    d1.quality = Quality::kGood;
    d1.last_success = now - 2s;
    d1.reading = reading;

    DeviceSnapshot d2;
    d2.device = &site.devices[1];
    d2.up = true;
    d2.quality = Quality::kGood;
    d2.last_success = now - 1s;

    auto old = std::make_shared<DeviceReading>();
    old->points["energy"] = PointValue{99.0, "kWh"};
    DeviceSnapshot d3;
    d3.device = &site.devices[2];
    d3.up = false;
    d3.quality = Quality::kStale;
    d3.last_success = TimePoint{};  // never
    d3.last_error = "timeout";
    d3.reading = old;  // must not be shown: stale
    snap.devices = {d1, d2, d3};
  }
};

const MqttMessage& find(const std::vector<MqttMessage>& msgs, const std::string& topic) {
  for (const auto& m : msgs)
    if (m.topic == topic) return m;
  throw std::runtime_error("no message on " + topic);
}

void expect_keys(const json& j, std::initializer_list<const char*> keys) {
  for (const char* k : keys) EXPECT_TRUE(j.contains(k)) << "missing key " << k << " in " << j;
}

TEST(MqttFormat, Rfc3339Milliseconds) {
  EXPECT_EQ(format_rfc3339_ms(TimePoint{}), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(format_rfc3339_ms(at(2026y / 11 / 22, 4h, 3min, 19s, 123456us)),
            "2026-11-22T04:03:19.123Z");
  // Truncated, never rounded into the next second/day.
  EXPECT_EQ(format_rfc3339_ms(at(2024y / 2 / 29, 23h, 59min, 59s, 999999us)),
            "2024-02-29T23:59:59.999Z");
  EXPECT_TRUE(std::regex_match(format_rfc3339_ms(Clock::now()), kRfc3339Ms));
}

TEST(MqttFormat, TopicLevels) {
  EXPECT_TRUE(is_valid_topic_level("r1-c01"));
  EXPECT_TRUE(is_valid_topic_level("Hall 1.ü"));
  EXPECT_FALSE(is_valid_topic_level(""));
  EXPECT_FALSE(is_valid_topic_level("a/b"));
  EXPECT_FALSE(is_valid_topic_level("a+"));
  EXPECT_FALSE(is_valid_topic_level("#"));
  EXPECT_FALSE(is_valid_topic_level(std::string("a\0b", 3)));
  EXPECT_EQ(mqtt_status_topic("facility", "dc1"), "facility/dc1/status");
}

TEST(MqttRender, TopicsInOrderAllRetained) {
  Fixture f;
  const auto msgs = render_messages(f.snap, "facility");
  std::vector<std::string> topics;
  for (const auto& m : msgs) {
    topics.push_back(m.topic);
    EXPECT_TRUE(m.retained) << m.topic;
    EXPECT_EQ(m.site, "dc1");
    EXPECT_TRUE(json::accept(m.payload)) << m.payload;
  }
  EXPECT_EQ(topics, (std::vector<std::string>{
                        "facility/dc1/summary",
                        "facility/dc1/cabinet/r1-c01",
                        "facility/dc1/cabinet/r1-c02",
                        "facility/dc1/cooling/crah-1",
                        "facility/dc1/device/pdu-1a",
                        "facility/dc1/device/crah-1",
                        "facility/dc1/device/main",
                    }));
}

TEST(MqttRender, CabinetGood) {
  Fixture f;
  const auto msgs = render_messages(f.snap, "facility");
  const json j = json::parse(find(msgs, "facility/dc1/cabinet/r1-c01").payload);
  expect_keys(j, {"ts", "site", "room", "row", "cabinet", "power_w", "rated_w", "utilization",
                  "failover_headroom_w", "overload", "phase_imbalance", "estimated", "feeds",
                  "powered", "status", "quality", "inlet_c", "humidity_ratio", "units"});
  EXPECT_EQ(j["ts"], "2026-11-22T04:03:19.123Z");
  EXPECT_EQ(j["site"], "dc1");
  EXPECT_EQ(j["room"], "hall1");
  EXPECT_EQ(j["row"], "r1");
  EXPECT_EQ(j["cabinet"], "r1-c01");
  EXPECT_DOUBLE_EQ(j["power_w"].get<double>(), 3000);
  EXPECT_DOUBLE_EQ(j["rated_w"].get<double>(), 5000);
  EXPECT_DOUBLE_EQ(j["utilization"].get<double>(), 0.6);
  EXPECT_DOUBLE_EQ(j["feeds"]["A"]["power_w"].get<double>(), 1200);
  EXPECT_EQ(j["feeds"]["A"]["device"], "pdu-1a");
  EXPECT_EQ(j["feeds"]["A"]["estimated"], false);
  EXPECT_DOUBLE_EQ(j["feeds"]["B"]["power_w"].get<double>(), 1800);
  EXPECT_TRUE(j["feeds"]["B"]["phases"].empty());
  EXPECT_EQ(j["overload"], "ok");
  EXPECT_EQ(j["estimated"], false);
  EXPECT_TRUE(j["failover_headroom_w"].is_null());  // the model did not compute one
  EXPECT_EQ(j["powered"], true);
  EXPECT_EQ(j["status"], "sold");
  EXPECT_EQ(j["quality"], "good");
  EXPECT_DOUBLE_EQ(j["inlet_c"].get<double>(), 24.5);
  EXPECT_EQ(j["units"]["power_w"], "W");
  EXPECT_EQ(j["units"]["rated_w"], "W");
  EXPECT_EQ(j["units"]["utilization"], "ratio");
  EXPECT_EQ(j["units"]["inlet_c"], "celsius");
  EXPECT_EQ(j["units"]["failover_headroom_w"], "W");
}

// Float noise does not reach subscribers (issue 12): 0.602 one bit off is published as 0.602,
// 2277 x 0.1 as 227.7, and the schemas' number types are unchanged.
TEST(MqttRender, NumbersCarryNoFloatNoise) {
  Fixture f;
  auto& cs = f.snap.sites[0].cabinets[0];
  cs.utilization = std::nextafter(0.602, 1.0);  // 0.6020000000000001
  cs.inlet_c = 2277 * 0.1;                      // 227.70000000000002
  const auto msgs = render_messages(f.snap, "facility");
  const std::string& payload = find(msgs, "facility/dc1/cabinet/r1-c01").payload;
  EXPECT_EQ(payload.find("0000000"), std::string::npos) << payload;
  const json j = json::parse(payload);
  EXPECT_EQ(j["utilization"].dump(), "0.602") << payload;
  EXPECT_EQ(j["inlet_c"].dump(), "227.7") << payload;
  EXPECT_TRUE(j["utilization"].is_number_float());
  EXPECT_DOUBLE_EQ(j["power_w"].get<double>(), 3000);
}

TEST(MqttRender, CabinetStaleHasNullsNeverOldNumbers) {
  Fixture f;
  const auto msgs = render_messages(f.snap, "facility");
  const auto& m = find(msgs, "facility/dc1/cabinet/r1-c02");
  EXPECT_EQ(m.payload.find("NaN"), std::string::npos);
  const json j = json::parse(m.payload);
  EXPECT_EQ(j["quality"], "stale");
  EXPECT_EQ(j["status"], "free");
  EXPECT_TRUE(j["power_w"].is_null());
  EXPECT_TRUE(j["utilization"].is_null());
  EXPECT_TRUE(j["feeds"]["A"]["power_w"].is_null());
  EXPECT_TRUE(j["feeds"]["B"]["power_w"].is_null());
  EXPECT_TRUE(j["overload"].is_null());  // unknown, not "ok"
  EXPECT_TRUE(j["inlet_c"].is_null());
  // A silent feed may hide the load: powered is undecided, not a fresh "false".
  EXPECT_TRUE(j["powered"].is_null());
  EXPECT_DOUBLE_EQ(j["rated_w"].get<double>(), 5000);
}

// With one feed stale, the other feed alone above the threshold (or an outlet on) already
// decides it: powered, even though the cabinet's total is unknown.
TEST(MqttRender, CabinetStaleButPoweredIsTrue) {
  Fixture f;
  f.snap.sites[0].cabinets[1].powered = true;
  f.snap.sites[0].cabinets[1].powered_known = true;
  const json j =
      json::parse(find(render_messages(f.snap, "facility"), "facility/dc1/cabinet/r1-c02").payload);
  EXPECT_EQ(j["quality"], "stale");
  EXPECT_EQ(j["powered"], true);
}

TEST(MqttRender, Summary) {
  Fixture f;
  const auto msgs = render_messages(f.snap, "facility");
  const json j = json::parse(find(msgs, "facility/dc1/summary").payload);
  expect_keys(j, {"ts", "site", "quality", "it_power_w", "it_power_source", "facility_power_w",
                  "cooling_power_w", "pue", "pue_category", "coverage", "rated_w", "cabinets",
                  "occupancy", "units"});
  // The facility meter covers only half of its term: not every source is fresh.
  EXPECT_EQ(j["quality"], "stale");
  EXPECT_EQ(j["ts"], "2026-11-22T04:03:19.123Z");
  EXPECT_EQ(j["site"], "dc1");
  EXPECT_DOUBLE_EQ(j["it_power_w"].get<double>(), 3000);
  EXPECT_EQ(j["it_power_source"], "pdu_sum");
  EXPECT_DOUBLE_EQ(j["facility_power_w"].get<double>(), 4500);
  EXPECT_TRUE(j["cooling_power_w"].is_null());
  EXPECT_DOUBLE_EQ(j["pue"].get<double>(), 1.5);
  EXPECT_EQ(j["pue_category"], 2);
  EXPECT_DOUBLE_EQ(j["coverage"]["it"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(j["coverage"]["facility"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(j["rated_w"].get<double>(), 10000);
  EXPECT_EQ(j["cabinets"],
            (json{{"total", 2}, {"powered", 1}, {"sold", 1}, {"internal", 0}, {"free", 1},
                  {"planned", 10}, {"measured", 1}}));
  EXPECT_DOUBLE_EQ(j["occupancy"]["powered"].get<double>(), 0.5);
  EXPECT_TRUE(j["occupancy"]["sold"].is_null());
  EXPECT_EQ(j["units"]["it_power_w"], "W");
  EXPECT_EQ(j["units"]["coverage"], "ratio");
  EXPECT_EQ(j["units"]["pue"], "ratio");
}

TEST(MqttRender, SummaryUnknownSourceAndInfinitePueAreNull) {
  Fixture f;
  f.snap.sites[0].it_power_source.clear();
  f.snap.sites[0].pue = std::numeric_limits<double>::infinity();
  const json j =
      json::parse(find(render_messages(f.snap, "facility"), "facility/dc1/summary").payload);
  EXPECT_TRUE(j["it_power_source"].is_null());
  EXPECT_TRUE(j["pue"].is_null());
}

TEST(MqttRender, Cooling) {
  Fixture f;
  const auto msgs = render_messages(f.snap, "facility");
  const json j = json::parse(find(msgs, "facility/dc1/cooling/crah-1").payload);
  expect_keys(j, {"ts", "device", "supply_c", "return_c", "delta_t_c", "power_w", "fan_ratio",
                  "running", "quality", "units"});
  EXPECT_EQ(j["units"]["supply_c"], "celsius");
  EXPECT_EQ(j["device"], "crah-1");
  EXPECT_EQ(j["room"], "hall1");
  EXPECT_DOUBLE_EQ(j["supply_c"].get<double>(), 18.0);
  EXPECT_DOUBLE_EQ(j["return_c"].get<double>(), 30.5);
  EXPECT_DOUBLE_EQ(j["delta_t_c"].get<double>(), 12.5);
  EXPECT_DOUBLE_EQ(j["power_w"].get<double>(), 2500);
  EXPECT_DOUBLE_EQ(j["fan_ratio"].get<double>(), 0.75);
  EXPECT_EQ(j["running"], true);
  EXPECT_EQ(j["quality"], "good");
}

TEST(MqttRender, CoolingWhenDeviceStaleShowsNoNumbers) {
  Fixture f;
  f.snap.devices[1].quality = Quality::kStale;
  f.snap.devices[1].up = false;
  f.snap.sites[0].cooling[0].supply_c = std::nullopt;
  const json j =
      json::parse(find(render_messages(f.snap, "facility"), "facility/dc1/cooling/crah-1").payload);
  EXPECT_EQ(j["quality"], "stale");
  for (const char* k : {"supply_c", "return_c", "delta_t_c", "power_w", "fan_ratio", "running"})
    EXPECT_TRUE(j[k].is_null()) << k;
}

TEST(MqttRender, DeviceFreshHasPoints) {
  Fixture f;
  const json j =
      json::parse(find(render_messages(f.snap, "facility"), "facility/dc1/device/pdu-1a").payload);
  expect_keys(j, {"ts", "device", "kind", "up", "quality", "last_success", "error", "points"});
  EXPECT_EQ(j["device"], "pdu-1a");
  EXPECT_EQ(j["kind"], "pdu");
  EXPECT_EQ(j["up"], true);
  EXPECT_EQ(j["quality"], "good");
  EXPECT_EQ(j["last_success"], "2026-11-22T04:03:17.123Z");
  EXPECT_TRUE(j["error"].is_null());
  EXPECT_EQ(j["cabinet"], "r1-c01");
  EXPECT_EQ(j["feed"], "A");
  EXPECT_DOUBLE_EQ(j["points"]["active_power"]["value"].get<double>(), 1.2);
  EXPECT_EQ(j["points"]["active_power"]["unit"], "kW");
  EXPECT_TRUE(j["points"]["voltage"]["value"].is_null());
  EXPECT_EQ(j["points"]["voltage"]["unit"], "V");
  EXPECT_FALSE(j["points"]["active_power"].contains("text"));  // numbers carry no text
}

TEST(MqttRender, DeviceEnumAndStringPointsCarryText) {
  Fixture f;
  auto r = std::make_shared<DeviceReading>(*f.snap.devices[0].reading);
  r->points["state"] = PointValue{1.0, "none", "running"};
  r->points["model"] = PointValue{std::nullopt, "none", "PDU-X 20A"};
  f.snap.devices[0].reading = r;
  const json j =
      json::parse(find(render_messages(f.snap, "facility"), "facility/dc1/device/pdu-1a").payload);
  EXPECT_EQ(j["points"]["state"]["value"], 1.0);
  EXPECT_EQ(j["points"]["state"]["text"], "running");
  EXPECT_TRUE(j["points"]["model"]["value"].is_null());
  EXPECT_EQ(j["points"]["model"]["text"], "PDU-X 20A");
}

TEST(MqttRender, DeviceDownHasErrorNoPointsNoLastSuccess) {
  Fixture f;
  const json j =
      json::parse(find(render_messages(f.snap, "facility"), "facility/dc1/device/main").payload);
  EXPECT_EQ(j["kind"], "meter");
  EXPECT_EQ(j["up"], false);
  EXPECT_EQ(j["quality"], "stale");
  EXPECT_TRUE(j["last_success"].is_null());
  EXPECT_EQ(j["error"], "timeout");
  EXPECT_TRUE(j["points"].is_object());
  EXPECT_TRUE(j["points"].empty());
}

TEST(MqttRender, InvalidUtf8InErrorDoesNotThrow) {
  Fixture f;
  f.snap.devices[2].last_error = std::string("bad \xff\xfe byte");
  std::vector<MqttMessage> msgs;
  ASSERT_NO_THROW(msgs = render_messages(f.snap, "facility"));
  EXPECT_TRUE(json::accept(find(msgs, "facility/dc1/device/main").payload));
}

TEST(MqttRender, TimestampsMatchRfc3339) {
  Fixture f;
  f.snap.computed_at = Clock::now();
  for (const auto& m : render_messages(f.snap, "facility")) {
    const json j = json::parse(m.payload);
    EXPECT_TRUE(std::regex_match(j["ts"].get<std::string>(), kRfc3339Ms)) << m.topic;
    if (j.contains("last_success") && !j["last_success"].is_null()) {
      EXPECT_TRUE(std::regex_match(j["last_success"].get<std::string>(), kRfc3339Ms));
    }
  }
}

TEST(MqttRender, MultiLevelPrefixAndPerSiteFilter) {
  Fixture f;
  Site s2;
  s2.id = "dc2";
  Cabinet c;
  c.id = "x1";
  c.site = "dc2";
  s2.cabinets = {c};
  f.cfg->sites.push_back(s2);  // capacity reserved: the first site does not move
  SiteSnapshot ss2;
  ss2.site = &f.cfg->sites[1];
  CabinetSnapshot cs;
  cs.cabinet = &f.cfg->sites[1].cabinets[0];
  cs.quality = Quality::kStale;
  ss2.cabinets.push_back(cs);
  f.snap.sites.push_back(ss2);

  const auto all = render_messages(f.snap, "acme/dc");
  EXPECT_EQ(all.size(), 9u);  // 7 of dc1, 2 of dc2
  EXPECT_EQ(find(all, "acme/dc/dc2/cabinet/x1").site, "dc2");
  const auto only2 = render_site_messages(f.snap, "acme/dc", "dc2");
  ASSERT_EQ(only2.size(), 2u);
  EXPECT_EQ(only2[0].topic, "acme/dc/dc2/summary");
  EXPECT_EQ(only2[1].topic, "acme/dc/dc2/cabinet/x1");
}

TEST(MqttRender, IdsThatAreNotTopicLevelsAreSkipped) {
  Fixture f;
  f.cfg->sites[0].cabinets[1].id = "r1/c02";   // would create an extra topic level
  f.cfg->sites[0].devices[2].id = "main+";     // a wildcard makes the broker drop us
  const auto msgs = render_messages(f.snap, "facility");
  EXPECT_EQ(msgs.size(), 5u);
  for (const auto& m : msgs) {
    EXPECT_EQ(m.topic.find('+'), std::string::npos);
    EXPECT_NE(m.topic, "facility/dc1/cabinet/r1/c02");
  }
}

// A cabinet with three-phase PDUs on both feeds, as the model fills it for A+B cabinets.
TEST(MqttRender, CabinetPhasesFailoverOverloadEstimated) {
  Fixture f;
  CabinetSnapshot& cs = f.snap.sites[0].cabinets[0];
  cs.overload = OverloadState::kWarning;
  cs.estimated = true;
  cs.failover_headroom_w = -250;
  cs.phase_imbalance = 0.08;
  for (auto& fp : cs.feeds) {
    fp.failover_headroom_w = fp.feed == "A" ? 1750.0 : -250.0;
    for (int i = 1; i <= 3; ++i) {
      PhasePower p;
      p.phase = "L" + std::to_string(i);
      p.power_w = 400.0 + i;
      p.current_a = 1.8 + i / 10.0;
      p.voltage_v = 230;
      p.failover_headroom_w = 100.0 * i;
      fp.phases.push_back(p);
    }
  }
  cs.feeds[1].estimated = true;
  const json j =
      json::parse(find(render_messages(f.snap, "facility"), "facility/dc1/cabinet/r1-c01").payload);
  EXPECT_EQ(j["overload"], "warning");
  EXPECT_EQ(j["estimated"], true);
  EXPECT_DOUBLE_EQ(j["failover_headroom_w"].get<double>(), -250);
  EXPECT_DOUBLE_EQ(j["phase_imbalance"].get<double>(), 0.08);
  EXPECT_EQ(j["feeds"]["A"]["estimated"], false);
  EXPECT_EQ(j["feeds"]["B"]["estimated"], true);
  EXPECT_DOUBLE_EQ(j["feeds"]["B"]["failover_headroom_w"].get<double>(), -250);
  const json& l2 = j["feeds"]["A"]["phases"]["L2"];
  EXPECT_DOUBLE_EQ(l2["power_w"].get<double>(), 402);
  EXPECT_DOUBLE_EQ(l2["current_a"].get<double>(), 2.0);
  EXPECT_DOUBLE_EQ(l2["voltage_v"].get<double>(), 230);
  EXPECT_DOUBLE_EQ(l2["failover_headroom_w"].get<double>(), 200);
  EXPECT_EQ(j["feeds"]["B"]["phases"].size(), 3u);
  EXPECT_EQ(j["units"]["current_a"], "A");
  EXPECT_EQ(j["units"]["voltage_v"], "V");
  EXPECT_EQ(j["units"]["phase_imbalance"], "ratio");

  // Stale: per-PDU phase readings stay (each PDU vouches for its own), everything that needs the
  // cabinet total goes.
  cs.quality = Quality::kStale;
  const json s =
      json::parse(find(render_messages(f.snap, "facility"), "facility/dc1/cabinet/r1-c01").payload);
  EXPECT_TRUE(s["failover_headroom_w"].is_null());
  EXPECT_TRUE(s["phase_imbalance"].is_null());
  EXPECT_TRUE(s["overload"].is_null());
  EXPECT_TRUE(s["feeds"]["B"]["failover_headroom_w"].is_null());
  EXPECT_TRUE(s["feeds"]["A"]["phases"]["L2"]["failover_headroom_w"].is_null());
  EXPECT_DOUBLE_EQ(s["feeds"]["A"]["phases"]["L2"]["current_a"].get<double>(), 2.0);
}

AlertState alert(const std::string& kind, const std::string& subject, bool raised) {
  AlertState a;
  a.site = "dc1";
  a.kind = kind;
  a.subject = subject;
  a.severity = "critical";
  a.raised = raised;
  a.value = 1.07;
  a.threshold = 1.0;
  a.unit = "ratio";
  a.since = TimePoint{} + std::chrono::hours(24 * 365 * 57) + 1500ms;
  a.message = "cabinet r1-c01 draws 107 % of its rating";
  return a;
}

TEST(MqttRender, AlertsRaisedAndCleared) {
  Fixture f;
  f.snap.alerts = {alert("cabinet_overload", "r1-c01", true),
                   alert("inlet_temperature", "crah-1", false),
                   alert("pue_high", "dc1", true)};
  f.snap.alerts[2].value = std::nullopt;
  const auto msgs = render_messages(f.snap, "facility");
  // State first, alerts after (in model order).
  ASSERT_EQ(msgs.size(), 7u + 3u);
  EXPECT_EQ(msgs[7].topic, "facility/dc1/alert/cabinet_overload/r1-c01");
  EXPECT_EQ(msgs[8].topic, "facility/dc1/alert/inlet_temperature/crah-1");
  EXPECT_EQ(msgs[9].topic, "facility/dc1/alert/pue_high/dc1");
  for (std::size_t i = 7; i < msgs.size(); ++i) {
    EXPECT_EQ(msgs[i].kind, MqttTopicKind::kAlert);
    EXPECT_TRUE(msgs[i].retained);
  }

  const json r = json::parse(msgs[7].payload);
  expect_keys(r, {"ts", "site", "kind", "subject", "state", "raised", "severity", "value",
                  "threshold", "unit", "since", "message", "quality"});
  EXPECT_EQ(r["state"], "raised");
  EXPECT_EQ(r["raised"], true);
  EXPECT_EQ(r["severity"], "critical");
  EXPECT_DOUBLE_EQ(r["value"].get<double>(), 1.07);
  EXPECT_DOUBLE_EQ(r["threshold"].get<double>(), 1.0);
  EXPECT_EQ(r["unit"], "ratio");
  EXPECT_TRUE(std::regex_match(r["since"].get<std::string>(), kRfc3339Ms));
  EXPECT_EQ(r["since"].get<std::string>().substr(19), ".500Z");
  EXPECT_EQ(r["quality"], "good");  // the cabinet's own quality

  const json c = json::parse(msgs[8].payload);
  EXPECT_EQ(c["state"], "cleared");
  EXPECT_EQ(c["raised"], false);
  EXPECT_EQ(c["severity"], "critical");  // the last raised severity
  EXPECT_EQ(c["quality"], "good");       // the cooling unit's device is fresh

  const json p = json::parse(msgs[9].payload);
  EXPECT_TRUE(p["value"].is_null());
  EXPECT_EQ(p["quality"], "stale");  // the site summary is not fully covered
}

TEST(MqttRender, AlertsWithInvalidIdsOrOtherSitesAreSkipped) {
  Fixture f;
  f.snap.alerts = {alert("cabinet_overload", "r1/c01", true), alert("a+b", "r1-c01", true),
                   alert("cabinet_overload", "r1-c01", true)};
  f.snap.alerts[2].site = "elsewhere";
  const auto dc1 = render_site_messages(f.snap, "facility", "dc1");
  for (const auto& m : dc1) EXPECT_NE(m.kind, MqttTopicKind::kAlert) << m.topic;
  // An alert of a site that has no other data still gets its own topic under that site.
  const auto all = render_messages(f.snap, "facility");
  EXPECT_EQ(find(all, "facility/elsewhere/alert/cabinet_overload/r1-c01").site, "elsewhere");
}

// Every number in every payload has a unit: through "units" (for its own field name or an
// enclosing one) or a sibling "unit" (device points) - except counts, which are plain numbers.
void expect_units(const json& j, const json& units, bool has_unit, const std::string& path,
                  const std::string& topic) {
  if (j.is_object()) {
    const bool own = j.contains("unit");
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.key() == "units" || it.key() == "cabinets" || it.key() == "pue_category") continue;
      expect_units(*it, units, has_unit || own || units.contains(it.key()),
                   path + "/" + it.key(), topic);
    }
  } else if (j.is_number()) {
    EXPECT_TRUE(has_unit) << topic << ": " << path << " has no unit";
  }
}

TEST(MqttRender, EveryNumberHasAUnit) {
  Fixture f;
  f.snap.alerts = {alert("cabinet_overload", "r1-c01", true)};
  for (auto& fp : f.snap.sites[0].cabinets[0].feeds) {
    PhasePower p;
    p.phase = "L1";
    p.power_w = 1;
    p.current_a = 2;
    p.voltage_v = 3;
    p.failover_headroom_w = 4;
    fp.phases = {p};
  }
  for (const auto& m : render_messages(f.snap, "facility")) {
    const json j = json::parse(m.payload);
    const json units = j.value("units", json::object());
    // An alert's value and threshold share its "unit".
    expect_units(j, units, m.kind == MqttTopicKind::kAlert, "", m.topic);
  }
}

}  // namespace
}  // namespace facility
