// Simulator: config -> served registers. A libmodbus client reads what a daemon would read and
// the decoded values must equal the published ground truth.
#include <gtest/gtest.h>
#include <modbus.h>

#include <cerrno>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include <nlohmann/json.hpp>

#include "daemon/config/config.h"
#include "sim/simulator.h"
#include "test_util.h"

namespace facility::sim {
namespace {

using modbus::DataType;
using modbus::RegisterKind;

constexpr double kT0 = 1717221600.0;  // 14:00 UTC+8

ProfilePoint point(std::string name, RegisterKind kind, std::uint16_t addr, DataType type,
                   std::string unit, double scale = 1.0, int bit = -1,
                   modbus::WordOrder order = modbus::WordOrder::kABCD) {
  ProfilePoint p;
  p.spec.name = std::move(name);
  p.spec.kind = kind;
  p.spec.address = addr;
  p.spec.type = type;
  p.spec.unit = std::move(unit);
  p.spec.scale = scale;
  p.spec.bit = bit;
  p.spec.order = order;
  return p;
}

std::shared_ptr<const Profile> pdu_profile() {
  auto p = std::make_shared<Profile>();
  p->name = "pdu";
  p->points = {point("voltage", RegisterKind::kInput, 0, DataType::kUInt16, "V", 0.1),
               point("current", RegisterKind::kInput, 1, DataType::kUInt16, "A", 0.01),
               point("active_power", RegisterKind::kInput, 2, DataType::kUInt32, "W"),
               point("energy", RegisterKind::kInput, 6, DataType::kUInt32, "kWh", 0.01)};
  return p;
}

std::shared_ptr<const Profile> meter_profile() {
  auto p = std::make_shared<Profile>();
  p->name = "meter";
  p->max_registers_per_read = 50;
  p->points = {point("active_power", RegisterKind::kHolding, 4, DataType::kFloat32, "kW", 1, -1,
                     modbus::WordOrder::kCDAB),
               point("energy", RegisterKind::kHolding, 256, DataType::kUInt32, "kWh", 0.1, -1,
                     modbus::WordOrder::kCDAB)};
  return p;
}

std::shared_ptr<const Profile> crah_profile() {
  auto p = std::make_shared<Profile>();
  p->name = "crah";
  p->points = {point("supply_temperature", RegisterKind::kInput, 0, DataType::kInt16, "celsius", 0.1),
               point("running", RegisterKind::kInput, 6, DataType::kBool, "none", 1, 0),
               point("cooling_active", RegisterKind::kInput, 6, DataType::kBool, "none", 1, 1),
               point("common_alarm", RegisterKind::kDiscreteInput, 0, DataType::kBool, "none"),
               point("supply_setpoint", RegisterKind::kHolding, 100, DataType::kInt16, "celsius", 0.1)};
  return p;
}

// One cabinet with two PDUs on one gateway, and a facility/IT meter pair and a CRAH on another.
std::shared_ptr<Config> make_config(const std::string& host = "127.0.0.1") {
  auto cfg = std::make_shared<Config>();
  Site s;
  s.id = "s1";
  Cabinet c;
  c.id = "c1";
  c.site = "s1";
  c.rated_w = 4400;
  c.status = CabinetStatus::kSold;
  c.sim.load = 0.5;
  c.feeds = {"A", "B"};
  s.cabinets.push_back(c);
  auto add = [&](std::string id, DeviceKind kind, std::shared_ptr<const Profile> p, int port,
                 int unit) -> Device& {
    Device d;
    d.id = std::move(id);
    d.site = "s1";
    d.kind = kind;
    d.profile = std::move(p);
    d.endpoint = Endpoint{"tcp", host, port};
    d.unit = unit;
    s.devices.push_back(d);
    return s.devices.back();
  };
  add("pdu-a", DeviceKind::kPdu, pdu_profile(), 15900, 1).cabinet = "c1";
  s.devices.back().feed = "A";
  add("pdu-b", DeviceKind::kPdu, pdu_profile(), 15900, 2).cabinet = "c1";
  s.devices.back().feed = "B";
  add("meter-main", DeviceKind::kMeter, meter_profile(), 15901, 1).role = MeterRole::kFacilityTotal;
  add("meter-it", DeviceKind::kMeter, meter_profile(), 15901, 2).role = MeterRole::kItTotal;
  add("crah", DeviceKind::kCooling, crah_profile(), 15901, 11).room = "r1";
  cfg->sites.push_back(std::move(s));
  return cfg;
}

using ModbusPtr = std::unique_ptr<modbus_t, void (*)(modbus_t*)>;

ModbusPtr connect(std::uint16_t port, int unit) {
  ModbusPtr ctx(modbus_new_tcp("127.0.0.1", port), modbus_free);
  EXPECT_TRUE(ctx);
  EXPECT_EQ(modbus_connect(ctx.get()), 0);
  modbus_set_slave(ctx.get(), unit);
  modbus_set_response_timeout(ctx.get(), 0, 300'000);
  return ctx;
}

double truth_point(const Truth& t, const std::string& dev, const std::string& name) {
  for (const auto& d : t.devices) {
    if (d.device->id != dev) continue;
    for (const auto& [n, v] : d.points) {
      if (n == name) return v;
    }
  }
  ADD_FAILURE() << "no point " << dev << "/" << name;
  return NAN;
}

SimulatorOptions ephemeral() {
  SimulatorOptions o;
  o.ephemeral_ports = true;
  return o;
}

TEST(Simulator, ServedRegistersDecodeToTheTruth) {
  Simulator sim(make_config(), ephemeral(), kT0);
  const Truth truth = sim.update(kT0 + 10);
  sim.start();
  ASSERT_EQ(sim.endpoints().size(), 2u);
  EXPECT_EQ(sim.devices_served(), 5u);
  const std::uint16_t rows = sim.bound_port("tcp://127.0.0.1:15900");
  const std::uint16_t plant = sim.bound_port("tcp://127.0.0.1:15901");
  ASSERT_NE(rows, 0);
  ASSERT_NE(plant, 0);

  // A PDU: one block of input registers 0..7, decoded with the profile's codecs.
  auto pdu = connect(rows, 2);
  std::uint16_t regs[8];
  ASSERT_EQ(modbus_read_input_registers(pdu.get(), 0, 8, regs), 8);
  const auto prof = pdu_profile();
  for (const auto& p : prof->points) {
    const modbus::PointCodec codec(p.spec);
    const auto v = codec.decode_registers(std::span(regs + p.spec.address, p.spec.width()));
    ASSERT_TRUE(v);
    EXPECT_DOUBLE_EQ(*v, truth_point(truth, "pdu-b", p.spec.name)) << p.spec.name;
  }
  EXPECT_NEAR(*modbus::PointCodec(prof->points[2].spec).decode_registers(std::span(regs + 2, 2)),
              4400 * 0.5 * 1.08 * (1 - 0.51), 4400 * 0.5 * 0.1);
  // Outside the mapped range 0..7.
  EXPECT_EQ(modbus_read_input_registers(pdu.get(), 8, 1, regs), -1);
  EXPECT_EQ(errno, EMBXILADD);
  EXPECT_EQ(modbus_read_registers(pdu.get(), 0, 1, regs), -1);  // no holding registers at all
  EXPECT_EQ(errno, EMBXILADD);

  // A meter: word-swapped float and a counter in a block of its own; a 50-register limit.
  auto meter = connect(plant, 2);
  ASSERT_EQ(modbus_read_registers(meter.get(), 4, 2, regs), 2);
  const auto mprof = meter_profile();
  EXPECT_FLOAT_EQ(static_cast<float>(*modbus::PointCodec(mprof->points[0].spec).decode_registers(
                      std::span(regs, 2))),
                  static_cast<float>(truth_point(truth, "meter-it", "active_power")));
  ASSERT_EQ(modbus_read_registers(meter.get(), 256, 2, regs), 2);
  EXPECT_DOUBLE_EQ(*modbus::PointCodec(mprof->points[1].spec).decode_registers(std::span(regs, 2)),
                   truth_point(truth, "meter-it", "energy"));
  std::vector<std::uint16_t> many(60);
  EXPECT_EQ(modbus_read_registers(meter.get(), 4, 51, many.data()), -1);  // over the quirk limit
  EXPECT_EQ(errno, EMBXILVAL);

  // A CRAH: two flags in one status word, a discrete input, a holding setpoint.
  auto crah = connect(plant, 11);
  ASSERT_EQ(modbus_read_input_registers(crah.get(), 6, 1, regs), 1);
  EXPECT_EQ(regs[0], 0b11);  // running and cooling_active
  std::uint8_t bit = 9;
  ASSERT_EQ(modbus_read_input_bits(crah.get(), 0, 1, &bit), 1);
  EXPECT_EQ(bit, 0);  // no alarm
  ASSERT_EQ(modbus_read_registers(crah.get(), 100, 1, regs), 1);
  EXPECT_NEAR(static_cast<std::int16_t>(regs[0]) * 0.1, truth_point(truth, "crah", "supply_setpoint"),
              1e-9);

  // Unknown unit on a served port: the gateway's "target failed to respond".
  auto ghost = connect(rows, 99);
  EXPECT_EQ(modbus_read_input_registers(ghost.get(), 0, 1, regs), -1);
  EXPECT_EQ(errno, EMBXGTAR);

  // Only read function codes reached the server, and every one was counted.
  const auto counts = sim.server().function_code_counts();
  EXPECT_EQ(counts.at(4), 4u);
  EXPECT_EQ(counts.at(3), 5u);
  EXPECT_EQ(counts.at(2), 1u);
  EXPECT_EQ(sim.server().function_code_counts(plant, 11).at(4), 1u);
}

TEST(Simulator, TruthSitesAndCabinetsAreConsistent) {
  Simulator sim(make_config(), ephemeral(), kT0);
  const Truth t = sim.update(kT0);
  const auto j = truth_to_json(t);
  ASSERT_TRUE(j.contains("ts"));
  EXPECT_DOUBLE_EQ(j["ts"].get<double>(), kT0);
  const auto& cab = j["cabinets"]["s1/c1"];
  EXPECT_DOUBLE_EQ(cab["rated_w"].get<double>(), 4400);
  EXPECT_NEAR(cab["feeds"]["A"].get<double>() + cab["feeds"]["B"].get<double>(),
              cab["power_w"].get<double>(), 1e-9);
  const auto& site = j["sites"]["s1"];
  EXPECT_NEAR(site["it_power_w"].get<double>(), cab["power_w"].get<double>(), 1e-9);
  EXPECT_NEAR(site["pue"].get<double>(), 1.30, 1e-12);
  EXPECT_TRUE(site["cooling_power_w"].is_null());  // no cooling meter in this config
  EXPECT_NEAR(site["facility_power_w"].get<double>(), 1.3 * site["it_power_w"].get<double>(), 1e-6);
  // Device values are in the point's unit, rounded as served: kW to float32 precision.
  EXPECT_NEAR(j["devices"]["meter-it"]["active_power"].get<double>() * 1000,
              site["it_power_w"].get<double>(), 0.01);
  EXPECT_EQ(j.size(), 4u);
  EXPECT_EQ(site.size(), 4u);
}

TEST(Simulator, SpeedScalesSimulatedTime) {
  SimulatorOptions o = ephemeral();
  o.speed = 60;
  Simulator sim(make_config(), o, kT0);
  EXPECT_DOUBLE_EQ(sim.sim_time(kT0 + 10), kT0 + 600);
  const Truth a = sim.update(kT0);
  const Truth b = sim.update(kT0 + 60);  // one simulated hour
  const double kwh = truth_point(b, "pdu-a", "energy") - truth_point(a, "pdu-a", "energy");
  // ~0.5 x 4400 W x ~0.51 share for an hour, around the diurnal peak.
  EXPECT_NEAR(kwh, 4.4 * 0.5 * 0.51 * 1.07, 0.15);
}

TEST(Simulator, FaultsApplyPerDevice) {
  SimulatorOptions o = ephemeral();
  Fault busy;
  busy.busy = true;
  o.faults["pdu-a"] = busy;
  Simulator sim(make_config(), o, kT0);
  sim.update(kT0);
  sim.start();
  const std::uint16_t port = sim.bound_port("tcp://127.0.0.1:15900");
  std::uint16_t regs[8];
  auto a = connect(port, 1);
  EXPECT_EQ(modbus_read_input_registers(a.get(), 0, 8, regs), -1);
  EXPECT_EQ(errno, EMBXSBUSY);
  auto b = connect(port, 2);
  EXPECT_EQ(modbus_read_input_registers(b.get(), 0, 8, regs), 8);

  Fault silent;
  silent.silent = true;
  sim.set_fault("pdu-b", silent);
  EXPECT_EQ(modbus_read_input_registers(b.get(), 0, 8, regs), -1);
  EXPECT_EQ(errno, ETIMEDOUT);
  EXPECT_THROW(sim.set_fault("nope", silent), SimulatorError);
}

std::shared_ptr<const Profile> ups_profile() {
  auto p = std::make_shared<Profile>();
  p->name = "ups";
  p->points = {point("active_power", RegisterKind::kInput, 0, DataType::kUInt16, "W"),
               point("output_source", RegisterKind::kInput, 1, DataType::kUInt16, "none"),
               point("on_battery", RegisterKind::kDiscreteInput, 0, DataType::kBool, "none")};
  p->points[1].spec.enum_names = {{0, "normal"}, {1, "battery"}, {2, "bypass"}};
  return p;
}

// facility-sim --fault UPS=on_battery: the UPS reports its output on battery (a mains failure)
// until the fault is cleared; it answers as before. Only a UPS with such a point takes it.
TEST(Simulator, OnBatteryFaultPutsAUpsOnBattery) {
  auto cfg = make_config();
  Device u;
  u.id = "ups-1";
  u.site = "s1";
  u.kind = DeviceKind::kUps;
  u.profile = ups_profile();
  u.endpoint = Endpoint{"tcp", "127.0.0.1", 15901};
  u.unit = 20;
  u.rated_w = 10000;
  cfg->sites[0].devices.push_back(u);
  Simulator sim(cfg, ephemeral(), kT0);
  Truth t = sim.update(kT0);
  EXPECT_EQ(truth_point(t, "ups-1", "output_source"), 0.0);
  EXPECT_EQ(truth_point(t, "ups-1", "on_battery"), 0.0);
  sim.start();
  auto c = connect(sim.bound_port("tcp://127.0.0.1:15901"), 20);

  Fault on_battery;
  on_battery.on_battery = true;
  sim.set_fault("ups-1", on_battery);
  t = sim.update(kT0 + 1);
  EXPECT_EQ(truth_point(t, "ups-1", "output_source"), 1.0);
  EXPECT_EQ(truth_point(t, "ups-1", "on_battery"), 1.0);
  EXPECT_GT(truth_point(t, "ups-1", "active_power"), 0.0);
  std::uint16_t regs[2];
  std::uint8_t bit = 0;
  ASSERT_EQ(modbus_read_input_registers(c.get(), 0, 2, regs), 2);  // it still answers
  EXPECT_EQ(regs[1], 1);
  ASSERT_EQ(modbus_read_input_bits(c.get(), 0, 1, &bit), 1);
  EXPECT_EQ(bit, 1);

  sim.set_fault("ups-1", Fault{});
  t = sim.update(kT0 + 2);
  EXPECT_EQ(truth_point(t, "ups-1", "output_source"), 0.0);
  ASSERT_EQ(modbus_read_input_registers(c.get(), 0, 2, regs), 2);
  EXPECT_EQ(regs[1], 0);
  EXPECT_THROW(sim.set_fault("pdu-a", on_battery), SimulatorError);
}

TEST(Simulator, RefusesNonLoopbackEndpoints) {
  try {
    Simulator sim(make_config("10.1.2.3"), ephemeral(), kT0);
    FAIL() << "served a non-loopback endpoint";
  } catch (const SimulatorError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("tcp://10.1.2.3:15900"), std::string::npos) << msg;
    EXPECT_NE(msg.find("loopback"), std::string::npos) << msg;
  }
  // Anywhere in 127.0.0.0/8 and "localhost" are fine.
  EXPECT_NO_THROW(Simulator(make_config("localhost"), ephemeral(), kT0));
}

TEST(Simulator, RefusesTwoDevicesOnOneUnit) {
  auto cfg = make_config();
  cfg->sites[0].devices[1].unit = 1;  // pdu-b onto pdu-a's unit
  try {
    Simulator sim(cfg, ephemeral(), kT0);
    FAIL();
  } catch (const SimulatorError& e) {
    EXPECT_NE(std::string(e.what()).find("already used by device pdu-a"), std::string::npos)
        << e.what();
  }
}

TEST(Simulator, RefusesFaultForUnknownDevice) {
  SimulatorOptions o = ephemeral();
  o.faults["pdu-z"] = Fault{};
  EXPECT_THROW(Simulator(make_config(), o, kT0), SimulatorError);
}

TEST(Simulator, ReportsBusyPortClearly) {
  ModbusServer squatter;
  const std::uint16_t port = squatter.listen("127.0.0.1", 0);
  auto cfg = make_config();
  for (auto& d : cfg->sites[0].devices) d.endpoint.port = port;
  for (auto& d : cfg->sites[0].devices) d.unit += d.kind == DeviceKind::kMeter ? 20 : 0;
  try {
    Simulator sim(cfg, SimulatorOptions{}, kT0);
    FAIL();
  } catch (const BindError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot serve tcp://127.0.0.1:" + std::to_string(port)),
              std::string::npos)
        << e.what();
  }
}

TEST(BlankImage, MapsLowestToHighestAddressPlusWidthPerKind) {
  const UnitImage img = blank_image(*crah_profile());
  EXPECT_EQ(img.table(RegisterKind::kInput).start, 0);
  EXPECT_EQ(img.table(RegisterKind::kInput).values.size(), 7u);
  EXPECT_EQ(img.table(RegisterKind::kHolding).start, 100);
  EXPECT_EQ(img.table(RegisterKind::kHolding).values.size(), 1u);
  EXPECT_EQ(img.table(RegisterKind::kDiscreteInput).values.size(), 1u);
  EXPECT_TRUE(img.table(RegisterKind::kCoil).empty());
  const UnitImage m = blank_image(*meter_profile());
  EXPECT_EQ(m.table(RegisterKind::kHolding).start, 4);
  EXPECT_EQ(m.table(RegisterKind::kHolding).values.size(), 256u - 4u + 2u);
  EXPECT_EQ(m.max_registers_per_read, 50);
}

TEST(WriteFileAtomic, ReplacesContentAndLeavesNoTemporaryFile) {
  facility::testing::TempDir dir;
  const std::string path = (dir.path() / "truth.json").string();
  write_file_atomic(path, "one");
  write_file_atomic(path, "two");
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(ss.str(), "two");
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()),
                          std::filesystem::directory_iterator{}),
            1);
  EXPECT_THROW(write_file_atomic((dir.path() / "no" / "such" / "dir").string(), "x"),
               std::system_error);
}

}  // namespace
}  // namespace facility::sim
