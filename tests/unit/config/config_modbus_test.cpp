// Modbus parts of the configuration: endpoint forms, the endpoints list, device quirks, and the
// profile keys for strings, enumerations, never_read and max_gap.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "daemon/config/config.h"
#include "daemon/polling/polling.h"
#include "test_util.h"

namespace facility {
namespace {

using testing::TempDir;

const char* kProfile = R"(name: meter
source: synthetic
max_gap: 4
never_read:
  - {function: input, from: 10, to: 19}
points:
  - {name: active_power, function: input, address: 0, type: float32, order: CDAB, unit: W}
  - {name: state, function: holding, address: 0, type: uint16, unit: none, enum: {0: stopped, 1: running, 0x10: alarm}}
  - {name: model, function: holding, address: 1, type: string, length: 4, unit: none}
  - {name: energy, function: input, address: 20, type: uint32, unit: kWh}
)";

std::string config(const std::string& devices, const std::string& extra = "") {
  return R"(daemon: {listen: "127.0.0.1:10044"}
defaults: {interval: 10s, retries: 2}
)" + extra + R"(sites:
  - id: s1
    rooms: [{id: r1, rows: [{id: w1, cabinets: [{id: c1}]}]}]
    devices:
)" + devices;
}

struct Loaded {
  TempDir dir;
  std::string path;
  std::vector<ConfigError> errors;
  std::optional<Config> cfg;
  Loaded(const std::string& cfg_text, const std::string& profile = kProfile) {
    dir.write("profiles/meter.yaml", profile);
    path = dir.write("site.yaml", cfg_text);
    try {
      cfg = load_config(path);
    } catch (const ConfigException& e) {
      errors = e.errors();
    }
  }
  bool has_error(int line, const std::string& part) const {
    for (const auto& e : errors) {
      if ((line == 0 || e.loc.line == line) && e.message.find(part) != std::string::npos) return true;
    }
    return false;
  }
  std::string all() const {
    std::string s;
    for (const auto& e : errors) s += e.format() + "\n";
    return s;
  }
};

TEST(ConfigModbus, EndpointFormsSettingsAndQuirks) {
  Loaded l(config(R"(      - {id: m1, kind: meter, role: other, profile: meter, endpoint: "tcp://127.0.0.1:1502"}
      - {id: m2, kind: meter, role: other, profile: meter, endpoint: "rtu-over-tcp://gw.local:4001", unit: 7, retries: 0, max_registers_per_read: 20, max_gap: 0, busy_retry_delay: 1s, never_read: [{function: holding, from: 3}]}
      - {id: m3, kind: meter, role: other, profile: meter, endpoint: "rtu:///dev/ttyUSB0", unit: 2}
)",
                   R"(endpoints:
  - {endpoint: "rtu:///dev/ttyUSB0", baud: 19200, parity: even, stop_bits: 1, pause_between_requests: 50ms}
  - {endpoint: "rtu-over-tcp://gw.local:4001", pause_after_connect: 200ms, backoff_max: 30s}
)"));
  ASSERT_TRUE(l.cfg) << l.all();
  const auto devs = l.cfg->all_devices();
  EXPECT_EQ(devs[0]->endpoint.transport, Transport::kTcp);
  EXPECT_EQ(devs[1]->endpoint.transport, Transport::kRtuOverTcp);
  EXPECT_EQ(devs[1]->endpoint.key(), "rtu-over-tcp://gw.local:4001");
  EXPECT_EQ(devs[2]->endpoint.transport, Transport::kRtu);
  EXPECT_EQ(devs[2]->endpoint.key(), "rtu:///dev/ttyUSB0");
  const EndpointSettings serial = l.cfg->endpoint_settings(devs[2]->endpoint);
  EXPECT_EQ(serial.baud, 19200);
  EXPECT_EQ(serial.parity, 'E');
  EXPECT_EQ(serial.pause_between_requests.count(), 50);
  EXPECT_EQ(l.cfg->endpoint_settings(devs[1]->endpoint).pause_after_connect.count(), 200);
  EXPECT_EQ(l.cfg->endpoint_settings(devs[0]->endpoint).connect_timeout.count(), 2000);  // default
  EXPECT_EQ(devs[0]->modbus.retries, 2);  // from defaults
  EXPECT_EQ(devs[1]->modbus.retries, 0);

  // The collector's view merges profile and device settings.
  const modbus::DeviceSpec s0 = make_device_spec(*devs[0]);
  EXPECT_EQ(s0.plan.max_gap, 4);
  EXPECT_EQ(s0.plan.max_registers, 125);
  ASSERT_EQ(s0.plan.forbidden.size(), 1u);
  EXPECT_EQ(s0.plan.forbidden[0].first, 10);
  EXPECT_EQ(s0.plan.forbidden[0].last, 19);
  const modbus::DeviceSpec s1 = make_device_spec(*devs[1]);
  EXPECT_EQ(s1.plan.max_gap, 0);
  EXPECT_EQ(s1.plan.max_registers, 20);
  EXPECT_EQ(s1.busy_retry_delay.count(), 1000);
  ASSERT_EQ(s1.plan.forbidden.size(), 2u);
  EXPECT_EQ(s1.plan.forbidden[1].kind, modbus::RegisterKind::kHolding);
  EXPECT_EQ(s1.plan.forbidden[1].first, 3);
  EXPECT_EQ(s1.plan.forbidden[1].last, 3);

  // Profile: enumeration and string points.
  const Profile& p = *devs[0]->profile;
  const ProfilePoint* state = p.find("state");
  ASSERT_TRUE(state);
  ASSERT_EQ(state->spec.enum_names.size(), 3u);
  EXPECT_EQ(state->spec.enum_names[2].first, 16);
  EXPECT_EQ(state->spec.enum_names[2].second, "alarm");
  EXPECT_EQ(p.find("model")->spec.type, modbus::DataType::kString);
  EXPECT_EQ(p.find("model")->spec.width(), 4);
}

TEST(ConfigModbus, MistakesAreReportedWithTheirLine) {
  Loaded l(config(R"(      - {id: m1, kind: meter, role: other, profile: meter, endpoint: "serial:/dev/ttyS0"}
      - {id: m2, kind: meter, role: other, profile: meter, endpoint: "rtu:///dev/ttyS1", unit: 0}
      - {id: m3, kind: meter, role: other, profile: meter, endpoint: "tcp://h:1", retries: 11}
)",
                   R"(endpoints:
  - {endpoint: "tcp://h:1", baud: 9600}
  - {endpoint: "tcp://nobody:1"}
  - {endpoint: "rtu:///dev/ttyS1", parity: mark}
)"));
  ASSERT_FALSE(l.cfg);
  EXPECT_TRUE(l.has_error(4, "\"baud\" applies only to rtu:// serial lines")) << l.all();
  EXPECT_TRUE(l.has_error(5, "no device uses this endpoint")) << l.all();
  EXPECT_TRUE(l.has_error(6, "unknown parity \"mark\"")) << l.all();
  EXPECT_TRUE(l.has_error(11, "rtu-over-tcp://HOST:PORT")) << l.all();
  EXPECT_TRUE(l.has_error(12, "broadcast address")) << l.all();
  EXPECT_TRUE(l.has_error(13, "\"retries\" = 11 is out of range 0..10")) << l.all();
}

TEST(ConfigModbus, ProfileMistakes) {
  const std::string devices =
      "      - {id: m1, kind: meter, role: other, profile: meter, endpoint: \"tcp://h:1\"}\n";
  struct Case {
    std::string point;
    std::string message;
  };
  const Case cases[] = {
      {"{name: active_power, function: input, address: 0, type: string, unit: none}",
       "a string needs \"length\""},
      {"{name: active_power, function: input, address: 0, type: uint16, length: 2, unit: W}",
       "\"length\" applies only to type string"},
      {"{name: active_power, function: input, address: 0, type: uint16, unit: W, scale: 2, enum: {0: off}}",
       "scale and offset do not apply"},
      {"{name: active_power, function: input, address: 0, type: float32, unit: W, enum: {0: off}}",
       "needs an integer or bool type"},
      {"{name: active_power, function: input, address: 0, type: uint16, unit: W, enum: {0: Off}}",
       "must be lower_snake_case"},
      {"{name: active_power, function: input, address: 0, type: uint16, unit: W, enum: {0: a, 0x0: b}}",
       "listed twice"},
      {"{name: active_power, function: input, address: 9, type: uint32, unit: W}",
       "overlaps a never_read range (10..19)"},
  };
  for (const auto& c : cases) {
    const std::string profile = "name: meter\nnever_read: [{function: input, from: 10, to: 19}]\n"
                                "points:\n  - " + c.point + "\n";
    Loaded l(config(devices), profile);
    ASSERT_FALSE(l.cfg) << c.point;
    EXPECT_TRUE(l.has_error(4, c.message)) << c.point << "\n" << l.all();
    EXPECT_NE(l.errors.at(0).loc.file.find("profiles/meter.yaml"), std::string::npos);
  }
}

}  // namespace
}  // namespace facility

namespace facility {
namespace {

// Words that name a vendor document in a profile's `source`.
constexpr const char* kDocumentWords[] = {"manual",    "guide",   "protocol",
                                          "interface", "ie-snc-", "990-9840a"};

// Every shipped profile loads, plans within its own per-read cap, and says where its map comes
// from; the real ones name a document.
TEST(ShippedProfiles, LoadPlanAndNameTheirSource) {
  int real = 0;
  for (const auto& e : std::filesystem::directory_iterator(
           std::filesystem::path(FACILITYD_SOURCE_DIR) / "config" / "profiles")) {
    if (e.path().extension() != ".yaml") continue;
    SCOPED_TRACE(e.path().string());
    std::shared_ptr<const Profile> p;
    ASSERT_NO_THROW(p = load_profile(e.path().string()));
    ASSERT_FALSE(p->source.empty());
    if (p->source != "synthetic") {
      ++real;
      // Name the document: a manual, guide, protocol or interface description, or the
      // vendor's document number.
      std::string lower = p->source;
      for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      EXPECT_TRUE(
          std::any_of(std::begin(kDocumentWords), std::end(kDocumentWords),
                      [&lower](const char* w) { return lower.find(w) != std::string::npos; }))
          << "name the document: " << p->source;
    }
    Device d;
    d.profile = p;
    const modbus::DeviceSpec spec = make_device_spec(d);
    const modbus::Plan plan = modbus::make_plan(spec.points, spec.plan);
    EXPECT_TRUE(plan.unreadable.empty());
    for (const auto& r : plan.reads) EXPECT_LE(r.count, p->max_registers_per_read);
  }
  EXPECT_GE(real, 4);
}

}  // namespace
}  // namespace facility

namespace facility {
namespace {

TEST(ConfigModbus, PointIntervalBecomesAWholeNumberOfDevicePolls) {
  const std::string profile = R"(name: meter
points:
  - {name: active_power, function: input, address: 0, type: uint16, unit: W}
  - {name: energy, function: input, address: 50, type: uint32, unit: kWh, interval: 60s}
  - {name: serial_number, function: input, address: 90, type: string, length: 4, unit: none, interval: 25s}
)";
  Loaded l(config("      - {id: m1, kind: meter, role: other, profile: meter, endpoint: \"tcp://h:1\"}\n"),
           profile);
  ASSERT_TRUE(l.cfg) << l.all();
  const modbus::DeviceSpec s = make_device_spec(*l.cfg->all_devices()[0]);  // interval 10s
  EXPECT_EQ(s.every, (std::vector<int>{1, 6, 3}));  // 25 s / 10 s rounds to 3
}

}  // namespace
}  // namespace facility

namespace facility {
namespace {

TEST(ConfigModbus, OneUnitOfASerialLineBelongsToOneDevice) {
  // Both would poll the same meter, e.g. once as facility_total and once as it_total.
  Loaded l(config(R"(      - {id: m1, kind: meter, role: other, profile: meter, endpoint: "rtu:///dev/ttyUSB0", unit: 1}
      - {id: m2, kind: meter, role: other, profile: meter, endpoint: "rtu:///dev/ttyUSB0", unit: 1}
      - {id: m3, kind: meter, role: other, profile: meter, endpoint: "rtu:///dev/ttyUSB1", unit: 1}
)"));
  ASSERT_FALSE(l.cfg);
  EXPECT_TRUE(l.has_error(8, "unit 1 at rtu:///dev/ttyUSB0 is already used by device \"m1\""))
      << l.all();
  EXPECT_EQ(l.errors.size(), 1u) << l.all();  // another line may reuse the unit id
}

TEST(ConfigModbus, UnitIdsFollowTheTransport) {
  // Modbus TCP: 0..255 (the TCP implementation guide recommends 255 for a device addressed
  // directly); behind a serial bus 1..247 (0 is broadcast, 248..255 are reserved).
  Loaded ok(config(R"(      - {id: m1, kind: meter, role: other, profile: meter, endpoint: "tcp://h:1", unit: 255}
      - {id: m2, kind: meter, role: other, profile: meter, endpoint: "tcp://h:1", unit: 0}
      - {id: m3, kind: meter, role: other, profile: meter, endpoint: "rtu-over-tcp://h:2", unit: 247}
)"));
  EXPECT_TRUE(ok.cfg) << ok.all();
  Loaded bad(config(R"(      - {id: m1, kind: meter, role: other, profile: meter, endpoint: "tcp://h:1", unit: 256}
      - {id: m2, kind: meter, role: other, profile: meter, endpoint: "rtu-over-tcp://h:2", unit: 248}
      - {id: m3, kind: meter, role: other, profile: meter, endpoint: "rtu:///dev/ttyS0", unit: 255}
)"));
  ASSERT_FALSE(bad.cfg);
  EXPECT_TRUE(bad.has_error(7, "out of range 0..255")) << bad.all();
  EXPECT_TRUE(bad.has_error(8, "unit 248")) << bad.all();
  EXPECT_TRUE(bad.has_error(8, "1..247")) << bad.all();
  EXPECT_TRUE(bad.has_error(9, "unit 255")) << bad.all();
}

TEST(ConfigModbus, SerialLinesUseEightDataBits) {
  const std::string devices =
      "      - {id: m1, kind: meter, role: other, profile: meter, endpoint: \"rtu:///dev/ttyS0\"}\n";
  Loaded ok(config(devices, "endpoints:\n  - {endpoint: \"rtu:///dev/ttyS0\", data_bits: 8}\n"));
  EXPECT_TRUE(ok.cfg) << ok.all();
  Loaded bad(config(devices, "endpoints:\n  - {endpoint: \"rtu:///dev/ttyS0\", data_bits: 7}\n"));
  ASSERT_FALSE(bad.cfg);
  EXPECT_TRUE(bad.has_error(4, "Modbus RTU uses 8 data bits")) << bad.all();
}

TEST(ConfigModbus, APointWiderThanTheRegistersPerReadCapIsAnError) {
  const std::string profile = R"(name: meter
max_registers_per_read: 3
points:
  - {name: active_power, function: input, address: 0, type: float64, unit: W}
)";
  Loaded l(config("      - {id: m1, kind: meter, role: other, profile: meter, endpoint: \"tcp://h:1\"}\n"),
           profile);
  ASSERT_FALSE(l.cfg);
  EXPECT_TRUE(l.has_error(4, "4 registers wide")) << l.all();
  EXPECT_TRUE(l.has_error(4, "max_registers_per_read (3)")) << l.all();
  // The device's override is checked against the points too.
  const std::string wide = R"(name: meter
points:
  - {name: model, function: holding, address: 0, type: string, length: 10, unit: none}
)";
  Loaded d(config("      - {id: m1, kind: meter, role: other, profile: meter, endpoint: \"tcp://h:1\", "
                  "max_registers_per_read: 8}\n"),
           wide);
  ASSERT_FALSE(d.cfg);
  EXPECT_TRUE(d.has_error(7, "point \"model\" is 10 registers wide")) << d.all();
}

TEST(ConfigModbus, ADeviceReadsAtLeastOnePointEveryPoll) {
  // Otherwise the polls in between send nothing and still count as successful contact.
  const std::string profile = R"(name: meter
points:
  - {name: active_power, function: input, address: 0, type: uint16, unit: W, interval: 30s}
  - {name: energy, function: input, address: 50, type: uint32, unit: kWh, interval: 60s}
)";
  Loaded l(config("      - {id: m1, kind: meter, role: other, profile: meter, endpoint: \"tcp://h:1\"}\n"),
           profile);
  ASSERT_FALSE(l.cfg);
  EXPECT_TRUE(l.has_error(7, "fastest point's (30000 ms)")) << l.all();
  EXPECT_TRUE(l.has_error(7, "every point of profile \"meter\" has an interval longer than")) << l.all();
  Loaded ok(config("      - {id: m1, kind: meter, role: other, profile: meter, endpoint: \"tcp://h:1\", "
                   "interval: 30s}\n"),
            profile);
  EXPECT_TRUE(ok.cfg) << ok.all();
}

}  // namespace
}  // namespace facility
