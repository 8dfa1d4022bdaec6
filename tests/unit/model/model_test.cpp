// The facility model against hand-computed numbers. Each case states its arithmetic.
#include <gtest/gtest.h>

#include "daemon/model/model.h"
#include "test_util.h"

namespace facility {
namespace {

using testing::TempDir;
using namespace std::chrono_literals;

const char* kPdu = R"(name: pdu
points:
  - {name: active_power, function: input, address: 0, type: uint32, unit: W}
)";
const char* kMeter = R"(name: meter
points:
  - {name: active_power, function: holding, address: 0, type: float32, order: CDAB, unit: kW}
)";
const char* kEnv = R"(name: env
points:
  - {name: inlet_temperature, function: input, address: 0, type: int16, scale: 0.1, unit: celsius}
  - {name: humidity, function: input, address: 1, type: uint16, scale: 0.1, unit: percent}
)";

// Site s1: c1 and c2 fed A+B (4.4 kW each), c3 free without PDUs; meters facility + IT.
const char* kSite = R"(defaults: {interval: 10s}
sites:
  - id: s1
    planned_cabinets: 6
    rooms:
      - id: r1
        rows:
          - id: w1
            cabinets:
              - {id: c1, status: sold}
              - {id: c2, status: internal}
              - {id: c3}
    devices:
      - {id: c1a, kind: pdu, profile: pdu, endpoint: "tcp://127.0.0.1:1", unit: 1, cabinet: c1, feed: A}
      - {id: c1b, kind: pdu, profile: pdu, endpoint: "tcp://127.0.0.1:1", unit: 2, cabinet: c1, feed: B}
      - {id: c2a, kind: pdu, profile: pdu, endpoint: "tcp://127.0.0.1:1", unit: 3, cabinet: c2, feed: A}
      - {id: c2b, kind: pdu, profile: pdu, endpoint: "tcp://127.0.0.1:1", unit: 4, cabinet: c2, feed: B}
      - {id: c3a, kind: pdu, profile: pdu, endpoint: "tcp://127.0.0.1:1", unit: 5, cabinet: c3, feed: A}
      - {id: c3b, kind: pdu, profile: pdu, endpoint: "tcp://127.0.0.1:1", unit: 6, cabinet: c3, feed: B}
      - {id: env1, kind: rack_sensor, profile: env, endpoint: "tcp://127.0.0.1:1", unit: 7, cabinet: c1}
      - {id: main, kind: meter, role: facility_total, profile: meter, endpoint: "tcp://127.0.0.1:1", unit: 8}
      - {id: ups, kind: meter, role: it_total, profile: meter, endpoint: "tcp://127.0.0.1:1", unit: 9}
)";

class ModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_.write("profiles/pdu.yaml", kPdu);
    dir_.write("profiles/meter.yaml", kMeter);
    dir_.write("profiles/env.yaml", kEnv);
    cfg_ = std::make_shared<const Config>(load_config(dir_.write("site.yaml", kSite)));
    now_ = Clock::now();
  }
  void put(const std::string& dev, std::map<std::string, std::pair<double, std::string>> pts,
           std::chrono::seconds age = 0s) {
    DeviceReading r;
    r.device_id = dev;
    r.polled_at = now_ - age;
    for (auto& [k, v] : pts) r.points[k] = PointValue{v.first, v.second};
    store_.put_success(std::move(r));
  }
  // Every PDU and meter fresh: c1 = 1.9 + 1.7 kW, c2 = 2.0 + 2.0 kW, c3 = 0 W.
  void all_fresh() {
    put("c1a", {{"active_power", {1900, "W"}}});
    put("c1b", {{"active_power", {1700, "W"}}});
    put("c2a", {{"active_power", {2000, "W"}}});
    put("c2b", {{"active_power", {2000, "W"}}});
    put("c3a", {{"active_power", {0, "W"}}});
    put("c3b", {{"active_power", {0, "W"}}});
    put("env1", {{"inlet_temperature", {24.5, "celsius"}}, {"humidity", {45.0, "percent"}}});
    put("main", {{"active_power", {10.14, "kW"}}});
    put("ups", {{"active_power", {7.8, "kW"}}});
  }
  std::shared_ptr<const FacilitySnapshot> run() {
    return compute_snapshot(cfg_, store_.snapshot(), now_);
  }

  TempDir dir_;
  std::shared_ptr<const Config> cfg_;
  ReadingStore store_;
  TimePoint now_;
};

TEST_F(ModelTest, CabinetPowerAndUtilization) {
  all_fresh();
  auto snap = run();
  const auto& c1 = snap->sites[0].cabinets[0];
  // 1900 + 1700 = 3600 W of 4400 W rated: 3600 / 4400 = 0.818181...
  ASSERT_TRUE(c1.power_w.has_value());
  EXPECT_DOUBLE_EQ(*c1.power_w, 3600);
  EXPECT_NEAR(*c1.utilization, 0.8181818, 1e-6);
  EXPECT_TRUE(c1.powered);
  EXPECT_EQ(c1.quality, Quality::kGood);
  EXPECT_DOUBLE_EQ(*c1.inlet_c, 24.5);
  EXPECT_DOUBLE_EQ(*c1.humidity_ratio, 0.45);  // 45 % -> 0.45
  // c3 draws 0 W: measured, but not powered (threshold 100 W).
  const auto& c3 = snap->sites[0].cabinets[2];
  EXPECT_DOUBLE_EQ(*c3.power_w, 0);
  EXPECT_FALSE(c3.powered);
}

TEST_F(ModelTest, SiteTotalsPueAndOccupancy) {
  all_fresh();
  auto snap = run();
  const auto& s = snap->sites[0];
  // IT from the UPS meter: 7.8 kW; facility: 10.14 kW; PUE = 10.14 / 7.8 = 1.3.
  EXPECT_EQ(s.it_power_source, "meter");
  EXPECT_DOUBLE_EQ(*s.it_power_w, 7800);
  EXPECT_DOUBLE_EQ(*s.facility_power_w, 10140);
  EXPECT_NEAR(*s.pue, 1.3, 1e-12);
  // 3 cabinets: 2 powered (c1, c2), 1 sold, 1 internal, 1 free; planned 6.
  EXPECT_EQ(s.cabinets_total, 3);
  EXPECT_EQ(s.cabinets_powered, 2);
  EXPECT_EQ(s.cabinets_sold, 1);
  EXPECT_EQ(s.cabinets_internal, 1);
  EXPECT_EQ(s.cabinets_free, 1);
  EXPECT_NEAR(*s.occupancy_powered, 2.0 / 3.0, 1e-12);
  EXPECT_NEAR(*s.occupancy_sold, 1.0 / 3.0, 1e-12);
  EXPECT_DOUBLE_EQ(s.rated_w, 3 * 4400);
}

TEST_F(ModelTest, StalePduIsNeverHalvedAndPueIsWithheld) {
  all_fresh();
  // c1's B feed last answered 31 s ago: older than 3 x 10 s, so stale.
  put("c1b", {{"active_power", {1700, "W"}}}, 31s);
  auto snap = run();
  const auto& c1 = snap->sites[0].cabinets[0];
  EXPECT_FALSE(c1.power_w.has_value()) << "a missing feed must not halve the cabinet";
  EXPECT_EQ(c1.quality, Quality::kStale);
  ASSERT_TRUE(c1.feeds[0].power_w.has_value());
  EXPECT_DOUBLE_EQ(*c1.feeds[0].power_w, 1900);
  EXPECT_FALSE(c1.feeds[1].power_w.has_value());
  // The stale PDU's device entry carries no values.
  for (const auto& d : snap->devices) {
    if (d.device->id == "c1b") {
      EXPECT_FALSE(d.up);
      EXPECT_EQ(d.quality, Quality::kStale);
      EXPECT_EQ(d.reading, nullptr);
    }
  }
  // Exactly at the bound (30 s) the value is still fresh.
  put("c1b", {{"active_power", {1700, "W"}}}, 30s);
  EXPECT_TRUE(run()->sites[0].cabinets[0].power_w.has_value());
}

TEST_F(ModelTest, ItFromPduSumWhenNoItMeter) {
  // Same site without the it_total meter: IT power = sum of cabinets = 3600 + 4000 + 0.
  std::string cfg = kSite;
  cfg.erase(cfg.find("      - {id: ups"));
  auto c = std::make_shared<const Config>(load_config(dir_.write("site2.yaml", cfg)));
  all_fresh();
  auto snap = compute_snapshot(c, store_.snapshot(), now_);
  const auto& s = snap->sites[0];
  EXPECT_EQ(s.it_power_source, "pdu_sum");
  EXPECT_DOUBLE_EQ(*s.it_power_w, 7600);
  EXPECT_DOUBLE_EQ(s.it_coverage, 1.0);
  // PUE = 10140 / 7600.
  EXPECT_NEAR(*s.pue, 10140.0 / 7600.0, 1e-12);
  // One stale PDU: coverage 5 of 6 PDUs (feeds), no IT power, no PUE.
  put("c2a", {{"active_power", {2000, "W"}}}, 60s);
  auto snap2 = compute_snapshot(c, store_.snapshot(), now_);
  EXPECT_NEAR(snap2->sites[0].it_coverage, 5.0 / 6.0, 1e-12);
  EXPECT_FALSE(snap2->sites[0].it_power_w.has_value());
  EXPECT_FALSE(snap2->sites[0].pue.has_value());
}

TEST_F(ModelTest, FailedMeterWithholdsPue) {
  all_fresh();
  store_.put_failure("main", now_, "timeout");
  auto s = run()->sites[0];
  // The last reading is still within its bound, so the value is kept; the device is not up.
  EXPECT_TRUE(s.pue.has_value());
  // The snapshot held by name: `run()->devices` in the loop header would free it before the
  // loop reads it (found by AddressSanitizer: heap-use-after-free).
  const auto snap = run();
  for (const auto& d : snap->devices) {
    if (d.device->id == "main") {
      EXPECT_FALSE(d.up);
    }
  }
  put("main", {{"active_power", {10.14, "kW"}}}, 40s);
  auto s2 = run()->sites[0];
  EXPECT_FALSE(s2.facility_power_w.has_value());
  EXPECT_DOUBLE_EQ(s2.facility_coverage, 0.0);
  EXPECT_FALSE(s2.pue.has_value());
}

const DeviceSnapshot& device(const FacilitySnapshot& s, const std::string& id) {
  for (const auto& d : s.devices) {
    if (d.device->id == id) return d;
  }
  throw std::runtime_error("no device " + id);
}

// A device that answers every poll but gives no value (every address refused, or every point
// "not available") is not up: it is "no data", and DeviceDown-style alerting on
// facility_device_up sees it. Some points refused is "partial", still up.
TEST_F(ModelTest, DeviceStatesTellAnswersWithoutDataFromUp) {
  all_fresh();
  // env1: both points refused by the device (exception 2): the cycle succeeds with nothing.
  DeviceReading none;
  none.device_id = "env1";
  none.polled_at = now_;
  none.complete = false;
  none.unreadable = 2;
  store_.put_success(none);
  // main: its only point "not available" (a sentinel): no value either.
  DeviceReading na;
  na.device_id = "main";
  na.polled_at = now_;
  na.points["active_power"] = PointValue{std::nullopt, "kW"};
  store_.put_success(na);
  // c1a: one point of two refused -- the one that was read still counts.
  DeviceReading part;
  part.device_id = "c1a";
  part.polled_at = now_;
  part.complete = false;
  part.unreadable = 1;
  part.points["active_power"] = PointValue{1900.0, "W"};
  store_.put_success(part);
  store_.put_failure("c2a", now_, "timeout");
  put("c2a", {{"active_power", {2000, "W"}}}, 40s);  // and its last success is stale

  auto snap = run();
  EXPECT_EQ(device(*snap, "env1").state, DeviceState::kNoData);
  EXPECT_FALSE(device(*snap, "env1").up);
  EXPECT_NE(device(*snap, "env1").last_error.find("no point gave a value (2 unreadable"),
            std::string::npos);
  EXPECT_EQ(device(*snap, "main").state, DeviceState::kNoData);
  EXPECT_FALSE(device(*snap, "main").up);
  EXPECT_EQ(device(*snap, "c1a").state, DeviceState::kPartial);
  EXPECT_TRUE(device(*snap, "c1a").up);
  EXPECT_EQ(device(*snap, "c2a").state, DeviceState::kDown);
  EXPECT_FALSE(device(*snap, "c2a").up);
  EXPECT_EQ(device(*snap, "ups").state, DeviceState::kUp);
  EXPECT_TRUE(device(*snap, "ups").up);
  // A string or enumeration name is data too (a nameplate-only device is not "no data").
  DeviceReading text;
  text.device_id = "env1";
  text.polled_at = now_;
  text.points["inlet_temperature"] = PointValue{std::nullopt, "", "sensor_missing"};
  store_.put_success(text);
  EXPECT_EQ(device(*run(), "env1").state, DeviceState::kUp);
}

// "Powered" is power *greater* than powered_threshold_w (100 W here), all feeds together:
// exactly 100 W is an empty cabinet's standby draw, not a powered one (docs/config.md). The
// same for one fresh feed when the other is missing.
TEST_F(ModelTest, ACabinetExactlyAtThePoweredThresholdIsNotPowered) {
  all_fresh();
  put("c3a", {{"active_power", {60, "W"}}});
  put("c3b", {{"active_power", {40, "W"}}});
  auto at = run();
  EXPECT_DOUBLE_EQ(*at->sites[0].cabinets[2].power_w, 100);
  EXPECT_FALSE(at->sites[0].cabinets[2].powered);
  EXPECT_EQ(at->sites[0].cabinets_powered, 2);
  put("c3b", {{"active_power", {40.5, "W"}}});
  auto above = run();
  EXPECT_TRUE(above->sites[0].cabinets[2].powered);
  EXPECT_EQ(above->sites[0].cabinets_powered, 3);
  // B feed stale: A alone decides, with the same strict comparison.
  put("c3b", {{"active_power", {0, "W"}}}, 60s);
  put("c3a", {{"active_power", {100, "W"}}});
  auto one_feed_at = run();
  EXPECT_FALSE(one_feed_at->sites[0].cabinets[2].power_w.has_value());
  EXPECT_FALSE(one_feed_at->sites[0].cabinets[2].powered);
  put("c3a", {{"active_power", {100.5, "W"}}});
  EXPECT_TRUE(run()->sites[0].cabinets[2].powered);
}

TEST_F(ModelTest, NothingPolledYet) {
  auto snap = run();
  const auto& s = snap->sites[0];
  EXPECT_FALSE(s.it_power_w.has_value());
  EXPECT_FALSE(s.pue.has_value());
  EXPECT_EQ(s.cabinets_measured, 0);
  for (const auto& d : snap->devices) EXPECT_EQ(d.quality, Quality::kError);
}

TEST(Units, BaseConversions) {
  EXPECT_DOUBLE_EQ(to_base_unit(4.4, "kW"), 4400);
  EXPECT_DOUBLE_EQ(to_base_unit(1, "kWh"), 3.6e6);
  EXPECT_DOUBLE_EQ(to_base_unit(1, "Wh"), 3600);
  EXPECT_DOUBLE_EQ(to_base_unit(55, "percent"), 0.55);
  EXPECT_TRUE(is_known_unit("celsius"));
  EXPECT_FALSE(is_known_unit("degF"));
}

}  // namespace
}  // namespace facility
