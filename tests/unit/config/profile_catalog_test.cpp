// The shipped profile catalog (config/profiles): every file loads, a real map states its source
// and kinds, and golden decodes of the vendor documents' own examples. Derived points: how they
// are validated at load (FILE:LINE:COL) and what they compute.
#include <gtest/gtest.h>

#include <filesystem>
#include <vector>

#include "collectors/modbus/derived.h"
#include "daemon/config/config.h"
#include "daemon/model/energy.h"
#include "test_util.h"

namespace facility {
namespace {

using testing::TempDir;

std::filesystem::path profiles_dir() {
  return std::filesystem::path(FACILITYD_SOURCE_DIR) / "config" / "profiles";
}

std::shared_ptr<const Profile> shipped(const std::string& name) {
  return load_profile((profiles_dir() / (name + ".yaml")).string());
}

// The errors of a profile file, each "FILE:LINE:COL: message".
std::vector<std::string> profile_errors(const std::string& yaml, std::string* path_out = nullptr) {
  static TempDir dir;
  static int n = 0;
  const std::string name = "p" + std::to_string(++n);
  const std::string path = dir.write(name + ".yaml", "name: " + name + "\n" + yaml);
  if (path_out) *path_out = path;
  std::vector<std::string> out;
  try {
    load_profile(path);
  } catch (const ConfigException& e) {
    for (const auto& err : e.errors()) out.push_back(err.format());
  }
  return out;
}

bool has_error(const std::vector<std::string>& errors, const std::string& where,
               const std::string& text) {
  for (const auto& e : errors) {
    if (e.rfind(where, 0) == 0 && e.find(text) != std::string::npos) return true;
  }
  return false;
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& e : v) s += e + "\n";
  return s;
}

TEST(Catalog, EveryShippedProfileLoadsAndRealOnesStateSourceAndKinds) {
  int real = 0;
  std::map<DeviceKind, int> per_kind;
  for (const auto& f : std::filesystem::directory_iterator(profiles_dir())) {
    if (f.path().extension() != ".yaml") continue;
    SCOPED_TRACE(f.path().string());
    std::shared_ptr<const Profile> p;
    ASSERT_NO_THROW(p = load_profile(f.path().string()));
    EXPECT_EQ(p->name, f.path().stem().string());
    ASSERT_FALSE(p->source.empty());
    if (p->source == "synthetic" || p->name.rfind("eastron-", 0) == 0) continue;
    ++real;
    EXPECT_FALSE(p->kinds.empty()) << "a catalog profile says which kinds it serves";
    for (DeviceKind k : p->kinds) ++per_kind[k];
  }
  EXPECT_GE(real, 15);
  for (DeviceKind k : {DeviceKind::kPdu, DeviceKind::kUps, DeviceKind::kCooling, DeviceKind::kMeter,
                       DeviceKind::kRackSensor}) {
    EXPECT_GE(per_kind[k], 2) << to_string(k);
  }
}

double decode(const Profile& p, const std::string& point, std::vector<std::uint16_t> words) {
  const ProfilePoint* pp = p.find(point);
  if (!pp) throw std::runtime_error("no point " + point);
  const auto d = modbus::PointCodec(pp->spec).decode(words);
  if (!d.value) throw std::runtime_error("no value for " + point);
  return *d.value;
}

// Liebert IntelliSlot Modbus reference guide, section 2.4, "Table 5 Response sample": registers
// 40051..40053 = 0x0158, 0x00FA, 0x0054; the guide: "40051 = 344, 40053 = 84". Through the GXT3
// map (Modicon numbers, 40051 = holding 50).
TEST(CatalogGolden, LiebertGuideResponseSampleThroughGxt3) {
  const auto p = shipped("vertiv-liebert-gxt3");
  EXPECT_EQ(p->find("auto_restart_delay")->spec.address, 50);
  EXPECT_EQ(decode(*p, "auto_restart_delay", {0x0158}), 344);
  EXPECT_EQ(p->find("low_battery_warning_time")->spec.address, 52);
  EXPECT_EQ(decode(*p, "low_battery_warning_time", {0x0054}), 84);
}

// Liebert DCDactive manual, Table 8.2 "Example" column: fan speed 1 at address 146 = 840 rpm,
// valve position at 162 = 20 %.
TEST(CatalogGolden, DcdactiveTableExamples) {
  const auto p = shipped("vertiv-liebert-dcdactive");
  EXPECT_EQ(p->find("fan_1_speed")->spec.address, 146);
  EXPECT_EQ(decode(*p, "fan_1_speed", {0x0348}), 840);
  EXPECT_EQ(p->find("valve_position")->spec.address, 162);
  EXPECT_EQ(decode(*p, "valve_position", {20}), 20);
  // "If a value is not present": 0xFFFF.
  const std::vector<std::uint16_t> missing{0xFFFF};
  const auto d = modbus::PointCodec(p->find("fan_1_speed")->spec).decode(missing);
  EXPECT_FALSE(d.value);
}

// ---- Derived points: validation at load --------------------------------------------------

const char* kParts = R"(source: synthetic
points:
  - {name: energy_l1, function: input, address: 0, type: uint32, scale: 0.1, unit: kWh}
  - {name: energy_l2, function: input, address: 2, type: uint32, unit: Wh}
  - {name: current, function: input, address: 4, type: uint16, scale: 0.01, unit: A}
  - {name: hi, function: input, address: 10, type: uint16, unit: none}
  - {name: lo, function: input, address: 20, type: uint16, unit: none}
  - {name: power_raw, function: input, address: 30, type: uint16, unit: W}
  - {name: power_sf, function: input, address: 31, type: int16, unit: none}
  - {name: status, function: input, address: 32, type: uint16, unit: none}
  - {name: mode, function: input, address: 33, type: uint16, unit: none, enum: {0: idle, 3: cooling}}
)";

TEST(DerivedLoad, ValidDerivedPointsLoadInEvaluationOrder) {
  std::string path;
  const auto errors = profile_errors(std::string(kParts) + R"(
  - {name: double_energy, derive: {sum: [energy, energy]}, unit: kWh}
  - {name: energy, derive: {sum: [energy_l1, energy_l2]}, unit: kWh}
  - {name: counter, derive: {words: [hi, lo]}, type: uint32, unit: none}
  - {name: active_power, derive: {scale_factor: {value: power_raw, sf: power_sf}}, unit: W}
  - {name: running, derive: {bit: {point: status, bit: 3}}, unit: none, enum: {0: stopped, 1: running}}
  - {name: cooling_on, derive: {in: {point: mode, codes: [3]}}, unit: none}
)",
                                     &path);
  ASSERT_TRUE(errors.empty()) << joined(errors);
  const auto p = load_profile(path);
  ASSERT_EQ(p->derived.size(), 6u);
  // energy is an input of double_energy: it comes first.
  EXPECT_EQ(p->derived[0].spec.name, "energy");
  EXPECT_EQ(p->derived[1].spec.name, "double_energy");
  EXPECT_TRUE(p->has_point("running"));
}

TEST(DerivedLoad, MistakesNameFileLineAndColumn) {
  std::string path;
  // Line numbers: "name:" is line 1, kParts lines 2..12, the derived points from line 13.
  auto e = profile_errors(
      std::string(kParts) + R"(  - {name: a, derive: {sum: [energy_l1, nope]}, unit: kWh}
  - {name: b, derive: {sum: [energy_l1, current]}, unit: kWh}
  - {name: c, derive: {words: [hi, lo, hi]}, type: uint32, unit: none}
  - {name: d, derive: {bit: {point: status, bit: 16}}, unit: none}
  - {name: e, derive: {sum: [f, energy_l1]}, unit: kWh}
  - {name: f, derive: {sum: [e, energy_l1]}, unit: kWh}
  - {name: g, derive: {scale_factor: {value: power_raw, sf: current}}, unit: W}
  - {name: h, derive: {sum: [mode, power_raw]}, unit: W}
)",
      &path);
  EXPECT_TRUE(has_error(e, path + ":13:41:", "no point named \"nope\"")) << joined(e);
  EXPECT_TRUE(has_error(e, path + ":14:41:", "\"current\" is in A (current), not energy"))
      << joined(e);
  EXPECT_TRUE(has_error(e, path + ":15:", "type uint32 needs 2 registers, got 3")) << joined(e);
  EXPECT_TRUE(has_error(e, path + ":16:", "no bit 16")) << joined(e);
  EXPECT_TRUE(has_error(e, path + ":17:", "derived points depend on each other")) << joined(e);
  EXPECT_TRUE(has_error(e, path + ":19:", "scale factor \"current\" must be a read int16"))
      << joined(e);
  EXPECT_TRUE(has_error(e, path + ":20:", "\"mode\" is an enumeration")) << joined(e);
}

TEST(DerivedLoad, UpsRoleNeedsOutputPower) {
  TempDir dir;
  dir.write("profiles/u.yaml", R"(name: u
source: synthetic
kinds: [ups]
points:
  - {name: on_battery, function: input, address: 0, type: bool, bit: 0, unit: none}
)");
  const std::string path = dir.write("c.yaml", R"(profiles_dir: profiles
sites:
  - id: s
    devices:
      - {id: u1, kind: ups, profile: u, endpoint: "tcp://127.0.0.1:1", unit: 1, role: it_at_ups_output}
      - {id: u2, kind: pdu, profile: u, endpoint: "tcp://127.0.0.1:1", unit: 2}
)");
  std::vector<std::string> e;
  try {
    load_config(path);
  } catch (const ConfigException& ex) {
    for (const auto& err : ex.errors()) e.push_back(err.format());
  }
  EXPECT_TRUE(has_error(e, path + ":5:", "role it_at_ups_output needs the output power"))
      << joined(e);
  EXPECT_TRUE(has_error(e, path + ":6:", "is for ups devices (its kinds), not pdu")) << joined(e);
}

// ---- Derived points: what they compute ----------------------------------------------------

std::vector<modbus::DerivedValue> evaluate(const Profile& p,
                                           std::vector<std::optional<double>> read) {
  std::vector<modbus::DerivedSpec> specs;
  for (const auto& d : p.derived) specs.push_back(d.spec);
  const modbus::DerivedEvaluator ev(specs, p.points.size());
  std::vector<modbus::DerivedValue> values;
  for (auto v : read) values.push_back({v, {}, {}, true});
  ev.evaluate(values);
  return values;
}

TEST(DerivedEval, SumScaleFactorWordsBitAndIn) {
  std::string path;
  ASSERT_TRUE(profile_errors(std::string(kParts) + R"(
  - {name: energy, derive: {sum: [energy_l1, energy_l2]}, unit: kWh}
  - {name: counter, derive: {words: [hi, lo]}, type: uint32, scale: 0.1, unit: none}
  - {name: active_power, derive: {scale_factor: {value: power_raw, sf: power_sf}}, unit: kW}
  - {name: running, derive: {bit: {point: status, bit: 3}}, unit: none, enum: {0: stopped, 1: running}}
  - {name: cooling_on, derive: {in: {point: mode, codes: [3]}}, unit: none}
)",
                             &path)
                  .empty());
  const auto p = load_profile(path);
  // energy_l1 12.5 kWh + energy_l2 2500 Wh = 15 kWh; hi 0x0001, lo 0x0002 -> 65538 x 0.1;
  // power 1234 W x 10^-1 = 123.4 W = 0.1234 kW; status 0b1000: bit 3 set; mode 3 = cooling.
  const auto v = evaluate(*p, {12.5, 2500, 1.0, 1, 2, 1234, -1, 8, 3});
  const std::size_t n = p->points.size();
  EXPECT_DOUBLE_EQ(*v[n + 0].value, 15.0);
  EXPECT_DOUBLE_EQ(*v[n + 1].value, 6553.8);
  EXPECT_NEAR(*v[n + 2].value, 0.1234, 1e-12);
  EXPECT_EQ(*v[n + 3].value, 1);
  EXPECT_EQ(v[n + 3].text, "running");
  EXPECT_EQ(*v[n + 4].value, 1);
  // An absent input makes the derived point absent, never a partial sum.
  const auto w = evaluate(*p, {12.5, std::nullopt, 1.0, 1, 2, 1234, -1, 0, 0});
  EXPECT_FALSE(w[n + 0].value);
  EXPECT_EQ(*w[n + 3].value, 0);
  EXPECT_EQ(w[n + 3].text, "stopped");
  EXPECT_EQ(*w[n + 4].value, 0);
}

// A derived energy counts like a read one for the model's wrap and reset detection: a words
// counter wraps at its type's range x scale; a sum of counters has no single wrap point (a wrap
// of one part reads as a reset).
TEST(DerivedEnergy, CounterFormatOfDerivedEnergy) {
  std::string words_path, sum_path;
  ASSERT_TRUE(profile_errors(std::string(kParts) + R"(
  - {name: energy, derive: {words: [hi, lo]}, type: uint32, scale: 0.1, unit: kWh}
)",
                             &words_path)
                  .empty());
  ASSERT_TRUE(profile_errors(std::string(kParts) + R"(
  - {name: energy, derive: {sum: [energy_l1, energy_l2]}, unit: kWh}
)",
                             &sum_path)
                  .empty());
  const auto w = model_detail::energy_counter_format(*load_profile(words_path));
  ASSERT_TRUE(w && w->modulus_j);
  // 2^32 counts x 0.1 kWh x 3.6e6 J/kWh.
  EXPECT_DOUBLE_EQ(*w->modulus_j, 4294967296.0 * 0.1 * 3.6e6);
  EXPECT_DOUBLE_EQ(w->step_j, 0.1 * 3.6e6);
  const auto s = model_detail::energy_counter_format(*load_profile(sum_path));
  ASSERT_TRUE(s);
  EXPECT_FALSE(s->modulus_j);
}

}  // namespace
}  // namespace facility
