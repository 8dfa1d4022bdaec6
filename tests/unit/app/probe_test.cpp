// `facilityd probe` option checks (the reads themselves are covered end to end in
// tests/integration/test_modbus_peers.py and test_modbus_faults.py), and --json and --diagnose
// against the simulator's Modbus server on loopback.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "daemon/app/probe.h"
#include "sim/modbus_server.h"
#include "test_util.h"

namespace facility {
namespace {

int probe(const std::string& endpoint, int unit, std::string* err) {
  ProbeOptions o;
  o.endpoint = endpoint;
  o.unit = unit;
  o.profile = "no-such-profile";
  o.profiles_dir = "/nonexistent";
  std::ostringstream out, e;
  const int rc = run_probe(o, out, e);
  *err = e.str();
  return rc;
}

TEST(Probe, UnitIdsFollowTheTransportLikeTheConfiguration) {
  std::string err;
  EXPECT_EQ(probe("rtu-over-tcp://127.0.0.1:1", 0, &err), 2);
  EXPECT_NE(err.find("broadcast"), std::string::npos) << err;
  EXPECT_EQ(probe("rtu:///dev/ttyS0", 250, &err), 2);
  EXPECT_NE(err.find("1..247"), std::string::npos) << err;
  EXPECT_EQ(probe("tcp://127.0.0.1:1", 256, &err), 2);
  EXPECT_NE(err.find("0..255"), std::string::npos) << err;
  // 255 is fine on Modbus TCP: the probe gets as far as looking for the profile.
  EXPECT_EQ(probe("tcp://127.0.0.1:1", 255, &err), 2);
  EXPECT_NE(err.find("no profile \"no-such-profile\""), std::string::npos) << err;
}

// A unit with holding registers 99..105: 230.5 V as float32 written at 100 word-swapped (CDAB),
// as a meter whose manual counts registers from 1 would have it at "101".
class ProbeServer : public ::testing::Test {
 protected:
  void SetUp() override {
    port_ = server_.listen("127.0.0.1", 0);
    sim::UnitImage img;
    auto& t = img.table(modbus::RegisterKind::kHolding);
    t.start = 99;
    // 230.5f = 0x43668000: CDAB puts 0x8000 first.
    // 104: 2277, a voltage in 0.1 V.
    t.values = {0x1111, 0x8000, 0x4366, 0x0007, 0x0000, 2277, 0x0000};
    server_.set_unit(port_, 4, img);
    server_.start();
  }
  void TearDown() override { server_.stop(); }
  std::string endpoint() const { return "tcp://127.0.0.1:" + std::to_string(port_); }
  // Probing unit 4 with profile "v" of `dir`/profiles.
  ProbeOptions with_profile_v(const testing::TempDir& dir) const {
    ProbeOptions o;
    o.endpoint = endpoint();
    o.unit = 4;
    o.profile = "v";
    o.profiles_dir = (dir.path() / "profiles").string();
    return o;
  }

  sim::ModbusServer server_;
  std::uint16_t port_ = 0;
};

TEST_F(ProbeServer, DiagnoseShowsEveryTypeAndOrderAroundTheAddress) {
  ProbeOptions o;
  o.endpoint = endpoint();
  o.unit = 4;
  o.diagnose = 101;  // the manual's number, one too high
  o.json = true;
  std::ostringstream out, err;
  ASSERT_EQ(run_probe(o, out, err), 0) << err.str();
  const auto j = nlohmann::json::parse(out.str());
  // Registers 100..105 (one address before 101, four after).
  EXPECT_EQ(j["registers"]["100"], 0x8000);
  EXPECT_EQ(j["registers"]["101"], 0x4366);
  EXPECT_EQ(j["registers"]["105"], 0);
  // Starting one address lower, float32 in CDAB is the voltage: the off-by-one and the word
  // order are both visible on the one screen.
  EXPECT_EQ(j["values"]["100"]["float32"]["CDAB"], "230.5");
  EXPECT_NE(j["values"]["101"]["float32"]["ABCD"], "230.5");
  EXPECT_EQ(j["values"]["101"]["uint16"]["ABCD"], "17254");   // 0x4366
  EXPECT_EQ(j["values"]["101"]["uint16"].count("CDAB"), 0u);  // a 16-bit value has no word order
  // The table form says what to do about it.
  o.json = false;
  std::ostringstream table;
  ASSERT_EQ(run_probe(o, table, err), 0);
  EXPECT_NE(table.str().find("address_base: 1"), std::string::npos) << table.str();
  EXPECT_NE(table.str().find("230.5"), std::string::npos) << table.str();
}

TEST_F(ProbeServer, JsonReportsValuesAndFailures) {
  testing::TempDir dir;
  dir.write("profiles/v.yaml", R"(name: v
source: synthetic
points:
  - {name: voltage, function: holding, address: 100, type: float32, order: CDAB, unit: V}
  - {name: status, function: holding, address: 102, type: uint16, unit: none, enum: {7: online}}
)");
  ProbeOptions o = with_profile_v(dir);
  o.json = true;
  std::ostringstream out, err;
  ASSERT_EQ(run_probe(o, out, err), 0) << err.str();
  const auto j = nlohmann::json::parse(out.str());
  EXPECT_TRUE(j["ok"]);
  ASSERT_EQ(j["points"].size(), 2u);
  EXPECT_EQ(j["points"][0]["name"], "voltage");
  EXPECT_DOUBLE_EQ(j["points"][0]["value"].get<double>(), 230.5);
  EXPECT_EQ(j["points"][0]["raw"], nlohmann::json::array({0x8000, 0x4366}));
  EXPECT_EQ(j["points"][1]["text"], "online");
  // A unit nobody answers for: ok false, an error, exit status 1, still JSON.
  o.unit = 9;
  std::ostringstream out2;
  EXPECT_EQ(run_probe(o, out2, err), 1);
  const auto j2 = nlohmann::json::parse(out2.str());
  EXPECT_FALSE(j2["ok"]);
  EXPECT_TRUE(j2["error"].is_string());
}

// 2277 x 0.1 is 227.70000000000002 as a double: the probe prints 227.7, in the table and in
// JSON (issue 12).
TEST_F(ProbeServer, ScaledValuesArePrintedWithoutFloatNoise) {
  testing::TempDir dir;
  dir.write("profiles/v.yaml", R"(name: v
source: synthetic
points:
  - {name: voltage, function: holding, address: 104, type: uint16, scale: 0.1, unit: V}
)");
  ProbeOptions o = with_profile_v(dir);
  std::ostringstream table, err;
  ASSERT_EQ(run_probe(o, table, err), 0) << err.str();
  EXPECT_NE(table.str().find(" 227.7 "), std::string::npos) << table.str();
  EXPECT_EQ(table.str().find("227.70000000000002"), std::string::npos) << table.str();
  o.json = true;
  std::ostringstream out;
  ASSERT_EQ(run_probe(o, out, err), 0) << err.str();
  EXPECT_NE(out.str().find("\"value\": 227.7"), std::string::npos) << out.str();
  EXPECT_EQ(out.str().find("227.70000000000002"), std::string::npos) << out.str();
}

}  // namespace
}  // namespace facility
