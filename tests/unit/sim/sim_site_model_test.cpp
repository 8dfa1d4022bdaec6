// SiteModel: ground truth of the simulator. The config is built in code (profiles shaped like
// config/profiles/generic-*.yaml) so these tests don't depend on the YAML loader.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <string>

#include "daemon/config/config.h"
#include "sim/site_model.h"

namespace facility::sim {
namespace {

using modbus::DataType;
using modbus::RegisterKind;

constexpr double kKwh = 3.6e6;
// 2024-06-01 06:00:00 UTC = 14:00 UTC+8, the diurnal peak.
constexpr double kPeak = 1717221600.0;
constexpr double kTrough = kPeak + 12 * 3600.0;  // 02:00 UTC+8

ProfilePoint point(std::string name, RegisterKind kind, std::uint16_t addr, DataType type,
                   std::string unit, double scale = 1.0, int bit = -1) {
  ProfilePoint p;
  p.spec.name = std::move(name);
  p.spec.kind = kind;
  p.spec.address = addr;
  p.spec.type = type;
  p.spec.unit = std::move(unit);
  p.spec.scale = scale;
  p.spec.bit = bit;
  return p;
}

std::shared_ptr<const Profile> profile(std::string name, std::vector<ProfilePoint> points) {
  auto p = std::make_shared<Profile>();
  p->name = std::move(name);
  p->points = std::move(points);
  return p;
}

struct Profiles {
  const RegisterKind in = RegisterKind::kInput;
  const RegisterKind hr = RegisterKind::kHolding;
  std::shared_ptr<const Profile> pdu1 = profile(
      "pdu-1ph", {point("voltage", in, 0, DataType::kUInt16, "V", 0.1),
                  point("current", in, 1, DataType::kUInt16, "A", 0.01),
                  point("active_power", in, 2, DataType::kUInt32, "W"),
                  point("power_factor", in, 4, DataType::kInt16, "ratio", 0.001),
                  point("frequency", in, 5, DataType::kUInt16, "Hz", 0.01),
                  point("energy", in, 6, DataType::kUInt32, "kWh", 0.01)});
  std::shared_ptr<const Profile> pdu3 = profile(
      "pdu-3ph", {point("voltage_l1", in, 0, DataType::kUInt16, "V", 0.1),
                  point("voltage_l2", in, 1, DataType::kUInt16, "V", 0.1),
                  point("voltage_l3", in, 2, DataType::kUInt16, "V", 0.1),
                  point("current_l1", in, 3, DataType::kUInt16, "A", 0.01),
                  point("current_l2", in, 4, DataType::kUInt16, "A", 0.01),
                  point("current_l3", in, 5, DataType::kUInt16, "A", 0.01),
                  point("active_power_l1", in, 6, DataType::kUInt32, "W"),
                  point("active_power_l2", in, 8, DataType::kUInt32, "W"),
                  point("active_power_l3", in, 10, DataType::kUInt32, "W"),
                  point("active_power", in, 12, DataType::kUInt32, "W"),
                  point("power_factor", in, 14, DataType::kInt16, "ratio", 0.001),
                  point("frequency", in, 15, DataType::kUInt16, "Hz", 0.01),
                  point("energy", in, 16, DataType::kUInt32, "kWh", 0.01)});
  std::shared_ptr<const Profile> meter = profile(
      "meter", {point("voltage", hr, 0, DataType::kFloat32, "V"),
                point("frequency", hr, 2, DataType::kFloat32, "Hz"),
                point("active_power", hr, 4, DataType::kFloat32, "kW"),
                point("power_factor", hr, 6, DataType::kFloat32, "ratio"),
                point("energy", hr, 256, DataType::kUInt32, "kWh", 0.1)});
  std::shared_ptr<const Profile> crah = profile(
      "crah", {point("supply_temperature", in, 0, DataType::kInt16, "celsius", 0.1),
               point("return_temperature", in, 1, DataType::kInt16, "celsius", 0.1),
               point("return_humidity", in, 2, DataType::kUInt16, "percent", 0.1),
               point("fan_speed", in, 3, DataType::kUInt16, "percent", 0.1),
               point("active_power", in, 4, DataType::kUInt16, "kW", 0.01),
               point("running", in, 6, DataType::kBool, "none", 1.0, 0),
               point("cooling_active", in, 6, DataType::kBool, "none", 1.0, 1),
               point("supply_setpoint", hr, 100, DataType::kInt16, "celsius", 0.1),
               point("common_alarm", RegisterKind::kDiscreteInput, 0, DataType::kBool, "none")});
  std::shared_ptr<const Profile> sensor = profile(
      "sensor", {point("inlet_temperature", in, 0, DataType::kInt16, "celsius", 0.1),
                 point("outlet_temperature", in, 1, DataType::kInt16, "celsius", 0.1),
                 point("humidity", in, 2, DataType::kUInt16, "percent", 0.1)});
};

Device device(const Site& site, std::string id, DeviceKind kind,
              std::shared_ptr<const Profile> p, int unit) {
  Device d;
  d.id = std::move(id);
  d.site = site.id;
  d.kind = kind;
  d.profile = p;
  d.profile_name = p->name;
  d.endpoint = Endpoint{"tcp", "127.0.0.1", 15020};
  d.unit = unit;
  return d;
}

Cabinet cabinet(std::string id, double rated_w, CabinetStatus status, std::optional<double> load,
                std::vector<std::string> feeds = {"A", "B"}) {
  Cabinet c;
  c.id = std::move(id);
  c.site = "s1";
  c.room = "r1";
  c.row = "A";
  c.rated_w = rated_w;
  c.status = status;
  c.sim.load = load;
  c.feeds = std::move(feeds);
  return c;
}

// One site, PUE 1.4: a normal cabinet, a free one, an overloaded one, one just under its
// rating, one sold without a hint, and a single-feed three-phase GPU cabinet. Every feed has a
// PDU; three site meters plus an "other" meter; two cooling units; two rack sensors.
std::shared_ptr<const Config> make_config(double pue = 1.4) {
  static const Profiles prof;
  auto cfg = std::make_shared<Config>();
  Site s;
  s.id = "s1";
  s.sim.pue = pue;
  s.cabinets = {cabinet("c-normal", 4400, CabinetStatus::kSold, 0.6),
                cabinet("c-free", 4400, CabinetStatus::kFree, std::nullopt),
                cabinet("c-over", 4400, CabinetStatus::kSold, 1.04),
                cabinet("c-near", 4400, CabinetStatus::kSold, 0.98),
                cabinet("c-nohint", 4400, CabinetStatus::kInternal, std::nullopt),
                cabinet("c-gpu", 8800, CabinetStatus::kSold, 0.9, {"A"})};
  int unit = 1;
  for (const Cabinet& c : s.cabinets) {
    for (const std::string& f : c.feeds) {
      Device d = device(s, c.id + "-pdu-" + f, DeviceKind::kPdu,
                        c.id == "c-gpu" ? prof.pdu3 : prof.pdu1, unit++);
      d.cabinet = c.id;
      d.feed = f;
      s.devices.push_back(d);
    }
  }
  const std::pair<const char*, MeterRole> meters[] = {{"m-main", MeterRole::kFacilityTotal},
                                                      {"m-ups", MeterRole::kItTotal},
                                                      {"m-cool", MeterRole::kCooling},
                                                      {"m-office", MeterRole::kOther}};
  for (const auto& [id, role] : meters) {
    Device d = device(s, id, DeviceKind::kMeter, prof.meter, unit++);
    d.role = role;
    s.devices.push_back(d);
  }
  for (const char* id : {"crah-1", "crah-2"}) {
    Device d = device(s, id, DeviceKind::kCooling, prof.crah, unit++);
    d.room = "r1";
    s.devices.push_back(d);
  }
  Device hot = device(s, "env-normal", DeviceKind::kRackSensor, prof.sensor, unit++);
  hot.cabinet = "c-normal";
  hot.sim.inlet_c = 29.5;
  s.devices.push_back(hot);
  Device env = device(s, "env-over", DeviceKind::kRackSensor, prof.sensor, unit++);
  env.cabinet = "c-over";
  s.devices.push_back(env);
  cfg->sites.push_back(std::move(s));
  return cfg;
}

// Lookups into a Truth by id.
struct View {
  Truth t;
  double point(const std::string& dev, const std::string& name) const {
    for (const auto& d : t.devices) {
      if (d.device->id != dev) continue;
      for (const auto& [n, v] : d.points) {
        if (n == name) return v;
      }
    }
    ADD_FAILURE() << "no point " << dev << "/" << name;
    return NAN;
  }
  const CabinetTruth& cab(const std::string& id) const {
    for (const auto& c : t.cabinets) {
      if (c.cabinet->id == id) return c;
    }
    throw std::runtime_error("no cabinet " + id);
  }
  double pdu_power(const std::string& dev) const { return point(dev, "active_power"); }
};

class SiteModelTest : public ::testing::Test {
 protected:
  std::shared_ptr<const Config> cfg_ = make_config();
  SiteModel model_{cfg_, 7, kPeak};
  View at(double t) const { return View{model_.at(t)}; }
};

TEST_F(SiteModelTest, CabinetLoadFollowsHintDiurnalAndStatus) {
  const View peak = at(kPeak), trough = at(kTrough);
  // 0.6 x 4400 = 2640 W mean; ±8 % diurnal, ±2 % noise.
  EXPECT_NEAR(peak.cab("c-normal").power_w, 2640 * 1.08, 2640 * 0.025);
  EXPECT_NEAR(trough.cab("c-normal").power_w, 2640 * 0.92, 2640 * 0.025);
  EXPECT_GT(peak.cab("c-normal").power_w, trough.cab("c-normal").power_w);
  EXPECT_EQ(peak.cab("c-free").power_w, 0.0);
  EXPECT_EQ(peak.cab("c-normal").rated_w, 4400);
  // No hint on a sold/internal cabinet: a hashed 0.45..0.75.
  const double nohint = peak.cab("c-nohint").power_w / 4400 / 1.08;
  EXPECT_GT(nohint, 0.45 * 0.97);
  EXPECT_LT(nohint, 0.75 * 1.03);
}

TEST_F(SiteModelTest, OverloadedCabinetIsAboveRatedAllDayAndNearOneStaysBelow) {
  for (double t = kPeak; t < kPeak + 86400; t += 600) {
    const View v = at(t);
    EXPECT_GT(v.cab("c-over").power_w, 4400) << "t=" << t;
    EXPECT_LT(v.cab("c-near").power_w, 4400) << "t=" << t;
    EXPECT_LT(v.cab("c-gpu").power_w, 8800) << "t=" << t;
  }
  // The overload is visible in the PDUs too: their sum is the cabinet's power.
  const View v = at(kTrough);
  EXPECT_NEAR(v.pdu_power("c-over-pdu-A") + v.pdu_power("c-over-pdu-B"), v.cab("c-over").power_w, 1.0);
}

TEST_F(SiteModelTest, ValuesAreSmoothBetweenPolls) {
  for (double t = kPeak; t < kPeak + 86400; t += 977) {
    const View a = at(t), b = at(t + 15);
    for (const auto& c : a.t.cabinets) {
      if (c.power_w == 0) continue;
      const double after = b.cab(c.cabinet->id).power_w;
      EXPECT_LT(std::abs(after - c.power_w) / c.power_w, 0.003) << c.cabinet->id << " t=" << t;
    }
  }
}

TEST_F(SiteModelTest, FeedSplitAndUnpoweredPdus) {
  const View v = at(kPeak);
  const auto& c = v.cab("c-normal");
  ASSERT_EQ(c.feeds_w.size(), 2u);
  EXPECT_EQ(c.feeds_w[0].first, "A");
  const double a_share = c.feeds_w[0].second / c.power_w;
  EXPECT_GE(a_share, 0.48);
  EXPECT_LE(a_share, 0.54);
  EXPECT_NEAR(c.feeds_w[0].second + c.feeds_w[1].second, c.power_w, 1e-9);
  EXPECT_NEAR(v.pdu_power("c-normal-pdu-A"), c.feeds_w[0].second, 1e-9);
  // Single feed takes all.
  EXPECT_NEAR(v.pdu_power("c-gpu-pdu-A"), v.cab("c-gpu").power_w, 1e-9);
  // Unpowered: 0 W and 0 A, but the PDU still sees mains voltage.
  for (const char* pdu : {"c-free-pdu-A", "c-free-pdu-B"}) {
    EXPECT_EQ(v.pdu_power(pdu), 0.0);
    EXPECT_EQ(v.point(pdu, "current"), 0.0);
    EXPECT_GT(v.point(pdu, "voltage"), 219.0);
    EXPECT_LT(v.point(pdu, "voltage"), 231.0);
  }
}

TEST_F(SiteModelTest, PduElectricalValuesAreConsistent) {
  const View v = at(kPeak + 1234);
  const std::string pdu = "c-normal-pdu-B";
  const double p = v.pdu_power(pdu), volts = v.point(pdu, "voltage"),
               pf = v.point(pdu, "power_factor");
  EXPECT_GE(pf, 0.95);
  EXPECT_LE(pf, 0.99);
  EXPECT_NEAR(v.point(pdu, "frequency"), 50.0, 0.05);
  EXPECT_NEAR(v.point(pdu, "current"), p / (volts * pf), 1e-9);
  EXPECT_GT(v.point(pdu, "energy"), 1000);  // kWh: a PDU that has been in service a while
  EXPECT_LT(v.point(pdu, "energy"), 10000);
}

TEST_F(SiteModelTest, ThreePhasePduSplitsAcrossPhasesWithImbalance) {
  const View v = at(kPeak);
  const std::string pdu = "c-gpu-pdu-A";
  const double total = v.pdu_power(pdu);
  double sum = 0, lo = 1, hi = 0;
  for (const char* ph : {"l1", "l2", "l3"}) {
    const double p = v.point(pdu, std::string("active_power_") + ph);
    const double volts = v.point(pdu, std::string("voltage_") + ph);
    sum += p;
    lo = std::min(lo, p / total);
    hi = std::max(hi, p / total);
    EXPECT_NEAR(volts, 230, 3);
    EXPECT_NEAR(v.point(pdu, std::string("current_") + ph),
                p / (volts * v.point(pdu, "power_factor")), 1e-9);
  }
  EXPECT_NEAR(sum, total, 1e-6);
  EXPECT_NEAR(hi, 0.36, 1e-9);
  EXPECT_NEAR(lo, 0.31, 1e-9);
}

TEST_F(SiteModelTest, SiteMetersFollowThePueHint) {
  for (double t : {kPeak, kTrough, kPeak + 5555}) {
    const View v = at(t);
    double pdu_sum = 0;
    for (const auto& d : v.t.devices) {
      if (d.device->kind == DeviceKind::kPdu) pdu_sum += v.pdu_power(d.device->id);
    }
    const double it_kw = v.point("m-ups", "active_power");
    const double fac_kw = v.point("m-main", "active_power");
    const double cool_kw = v.point("m-cool", "active_power");
    EXPECT_NEAR(it_kw * 1000, pdu_sum, 1e-6);
    EXPECT_NEAR(fac_kw / it_kw, 1.4, 1e-12);
    EXPECT_NEAR(cool_kw, it_kw * 0.4 * 0.75, 1e-9);
    // Other loads: small and constant.
    EXPECT_GT(v.point("m-office", "active_power"), 1.0);
    EXPECT_LT(v.point("m-office", "active_power"), 10.0);
    ASSERT_EQ(v.t.sites.size(), 1u);
    const SiteTruth& s = v.t.sites[0];
    EXPECT_NEAR(s.it_power_w, pdu_sum, 1e-6);
    ASSERT_TRUE(s.pue && s.facility_power_w && s.cooling_power_w);
    EXPECT_NEAR(*s.pue, 1.4, 1e-12);
    EXPECT_NEAR(*s.facility_power_w, fac_kw * 1000, 1e-6);
    EXPECT_NEAR(*s.cooling_power_w, cool_kw * 1000, 1e-6);
  }
  // Meter counters start in the millions of kWh.
  const View v = at(kPeak);
  EXPECT_GT(v.point("m-ups", "energy"), 1e6);
  EXPECT_GT(v.point("m-main", "energy"), v.point("m-ups", "energy"));
}

TEST(SiteModel, DefaultPueIs130AndNoFacilityMeterMeansNullPue) {
  auto base = make_config();
  auto cfg = std::make_shared<Config>(*base);
  cfg->sites[0].sim.pue.reset();
  const View v{SiteModel(cfg, 7, kPeak).at(kPeak)};
  EXPECT_NEAR(*v.t.sites[0].pue, 1.30, 1e-12);

  auto no_meters = std::make_shared<Config>(*base);
  auto& devs = no_meters->sites[0].devices;
  devs.erase(std::remove_if(devs.begin(), devs.end(),
                            [](const Device& d) { return d.kind == DeviceKind::kMeter; }),
             devs.end());
  const View w{SiteModel(no_meters, 7, kPeak).at(kPeak)};
  EXPECT_FALSE(w.t.sites[0].pue);
  EXPECT_FALSE(w.t.sites[0].facility_power_w);
  EXPECT_FALSE(w.t.sites[0].cooling_power_w);
  EXPECT_GT(w.t.sites[0].it_power_w, 0);
}

// The energy counters are the integral of the served power: integrate the power numerically
// over a simulated hour and compare with the counters' increase.
TEST_F(SiteModelTest, EnergyIntegratesPowerOverAnHour) {
  const double t0 = kPeak + 100;
  const char* devices[] = {"c-normal-pdu-A", "c-over-pdu-B", "c-gpu-pdu-A", "m-ups",
                           "m-main",         "m-cool",       "m-office"};
  std::map<std::string, double> integral;  // kWh
  const double dt = 5.0;
  View prev = at(t0);
  for (double t = t0 + dt; t <= t0 + 3600 + 1e-9; t += dt) {
    View cur = at(t);
    for (const char* d : devices) {
      // Power in W for PDUs, kW for meters; trapezoid rule.
      const bool kw = std::string(d).rfind("m-", 0) == 0;
      const double scale = kw ? 1000.0 : 1.0;
      integral[d] += (prev.point(d, "active_power") + cur.point(d, "active_power")) / 2 * scale *
                     dt / kKwh;
    }
    prev = std::move(cur);
  }
  const View start = at(t0), end = at(t0 + 3600);
  for (const char* d : devices) {
    const double delta = end.point(d, "energy") - start.point(d, "energy");
    EXPECT_GT(delta, 0) << d;
    EXPECT_NEAR(delta, integral[d], integral[d] * 1e-6) << d;
  }
  // The site's IT meter equals the sum of its PDUs' energy increase.
  double pdu_delta = 0;
  for (const auto& d : end.t.devices) {
    if (d.device->kind == DeviceKind::kPdu) {
      pdu_delta += end.point(d.device->id, "energy") - start.point(d.device->id, "energy");
    }
  }
  const double it_delta = end.point("m-ups", "energy") - start.point("m-ups", "energy");
  EXPECT_NEAR(it_delta, pdu_delta, pdu_delta * 1e-9);
  EXPECT_NEAR(end.point("m-main", "energy") - start.point("m-main", "energy"), it_delta * 1.4,
              it_delta * 1e-9);
}

TEST_F(SiteModelTest, EnergyIsMonotonicOverAYear) {
  double last = 0;
  for (double t = kPeak; t < kPeak + 365 * 86400.0; t += 86400 * 7.3) {
    const double e = at(t).point("c-normal-pdu-A", "energy");
    EXPECT_GT(e, last);
    last = e;
  }
}

TEST_F(SiteModelTest, CoolingUnitsShareTheCoolingPower) {
  const View v = at(kPeak);
  const double total = v.point("crah-1", "active_power") + v.point("crah-2", "active_power");
  EXPECT_NEAR(total, v.point("m-cool", "active_power"), 1e-9);
  for (const char* c : {"crah-1", "crah-2"}) {
    const double supply = v.point(c, "supply_temperature");
    EXPECT_GE(supply, 17.8);
    EXPECT_LE(supply, 20.2);
    const double delta = v.point(c, "return_temperature") - supply;
    EXPECT_GE(delta, 10.0);
    EXPECT_LE(delta, 12.0);
    EXPECT_GE(v.point(c, "fan_speed"), 54.0);  // percent
    EXPECT_LE(v.point(c, "fan_speed"), 81.0);
    EXPECT_EQ(v.point(c, "running"), 1.0);
    EXPECT_EQ(v.point(c, "cooling_active"), 1.0);
    EXPECT_EQ(v.point(c, "common_alarm"), 0.0);
    EXPECT_NEAR(v.point(c, "supply_setpoint"), supply, 0.2);
    EXPECT_GE(v.point(c, "return_humidity"), 39.0);
    EXPECT_LE(v.point(c, "return_humidity"), 56.0);
  }
}

TEST_F(SiteModelTest, RackSensorsFollowInletHintAndLoad) {
  const View v = at(kPeak);
  EXPECT_NEAR(v.point("env-normal", "inlet_temperature"), 29.5, 0.2);
  const double load = v.cab("c-normal").power_w / 4400;
  EXPECT_NEAR(v.point("env-normal", "outlet_temperature") - v.point("env-normal", "inlet_temperature"),
              8 + 6 * load, 1e-9);
  const double inlet = v.point("env-over", "inlet_temperature");
  EXPECT_GE(inlet, 20.8);
  EXPECT_LE(inlet, 25.2);
  for (const char* s : {"env-normal", "env-over"}) {
    EXPECT_GE(v.point(s, "humidity"), 39.0);
    EXPECT_LE(v.point(s, "humidity"), 56.0);
  }
}

// Energy-counter hints: the UPS meter (uint32, 0.1 kWh: range 429,496,729.6 kWh) wraps 300 s
// after the epoch; c-normal's A-feed PDU (uint32, 0.01 kWh) reboots at 100 s.
TEST(SiteModel, EnergyCountersWrapAndResetWhereHinted) {
  auto cfg = std::make_shared<Config>(*make_config());
  for (auto& d : cfg->sites[0].devices) {
    if (d.id == "m-ups") d.sim.energy_wrap_after_s = 300;
    if (d.id == "c-normal-pdu-A") d.sim.energy_reset_after_s = 100;
  }
  const SiteModel model(cfg, 7, kPeak);
  EXPECT_TRUE(model.warnings().empty());
  const View before{model.at(kPeak + 299)}, after{model.at(kPeak + 301)};
  const double range = 4294967296.0 * 0.1;
  const double it_kw = before.point("m-ups", "active_power");
  // One second before the wrap: about 1 s of IT energy below the range.
  EXPECT_NEAR(range - before.point("m-ups", "energy"), it_kw / 3600, it_kw / 3600 * 0.05);
  // One second after: about 1 s of IT energy above zero, and never above the range.
  EXPECT_NEAR(after.point("m-ups", "energy"), it_kw / 3600, it_kw / 3600 * 0.05);
  // Across the wrap: range - before + after = 2 s of IT energy.
  EXPECT_NEAR(range - before.point("m-ups", "energy") + after.point("m-ups", "energy"),
              2 * it_kw / 3600, 2 * it_kw / 3600 * 0.05);
  // The reboot: before it the counter holds its thousands of kWh, 10 s after it the 10 s drawn
  // since.
  const View pre{model.at(kPeak + 99)}, post{model.at(kPeak + 110)};
  const double pdu_w = post.pdu_power("c-normal-pdu-A");
  EXPECT_GT(pre.point("c-normal-pdu-A", "energy"), 1000);
  EXPECT_NEAR(post.point("c-normal-pdu-A", "energy"), pdu_w * 10 / 3.6e6, pdu_w * 10 / 3.6e6 * 0.02);
  // Without hints, nothing wraps or resets: the B feed keeps counting up.
  EXPECT_GT(post.point("c-normal-pdu-B", "energy"), pre.point("c-normal-pdu-B", "energy"));
}

TEST(SiteModel, ItMetersOfEachCategoryReadTheWholeItLoad) {
  auto cfg = std::make_shared<Config>(*make_config());
  Device pdu_out = cfg->sites[0].devices.back();
  for (const auto& d : cfg->sites[0].devices) {
    if (d.id == "m-ups") pdu_out = d;
  }
  pdu_out.id = "m-pdu-out";
  pdu_out.unit = 200;
  pdu_out.role = MeterRole::kItPduOutput;
  cfg->sites[0].devices.push_back(pdu_out);
  for (auto& d : cfg->sites[0].devices) {
    if (d.id == "m-ups") d.role = MeterRole::kItUpsOutput;
  }
  const View v{SiteModel(cfg, 7, kPeak).at(kPeak)};
  // Category 1 and category 2 meters each read the full IT load (no losses simulated); the
  // facility meter stays at PUE x IT.
  EXPECT_NEAR(v.point("m-ups", "active_power") * 1000, v.t.sites[0].it_power_w, 1e-6);
  EXPECT_NEAR(v.point("m-pdu-out", "active_power") * 1000, v.t.sites[0].it_power_w, 1e-6);
  EXPECT_NEAR(v.point("m-main", "active_power") / v.point("m-ups", "active_power"), 1.4, 1e-12);
}

TEST(SiteModel, RackSensorsReportUSpaceFromTheLoad) {
  auto cfg = std::make_shared<Config>(*make_config());
  auto sensor = std::make_shared<Profile>(*Profiles().sensor);
  sensor->points.push_back(point("u_occupied", RegisterKind::kInput, 3, DataType::kUInt16, "none"));
  sensor->points.push_back(point("u_total", RegisterKind::kInput, 4, DataType::kUInt16, "none"));
  for (auto& d : cfg->sites[0].devices) {
    if (d.kind == DeviceKind::kRackSensor) d.profile = sensor;
  }
  const View v{SiteModel(cfg, 7, kPeak).at(kPeak)};
  // c-normal, load 0.6 of a 42 U cabinet: round(42 x (0.2 + 0.65 x 0.6)) = round(24.78) = 25.
  EXPECT_DOUBLE_EQ(v.point("env-normal", "u_occupied"), 25);
  EXPECT_DOUBLE_EQ(v.point("env-normal", "u_total"), 42);
  // c-over, load 1.04 (capped at 1): round(42 x 0.85) = round(35.7) = 36.
  EXPECT_DOUBLE_EQ(v.point("env-over", "u_occupied"), 36);
}

TEST(SiteModel, DeterministicPerSeed) {
  auto cfg = make_config();
  const Truth a = SiteModel(cfg, 7, kPeak).at(kPeak + 60);
  const Truth b = SiteModel(cfg, 7, kPeak).at(kPeak + 60);
  const Truth c = SiteModel(cfg, 8, kPeak).at(kPeak + 60);
  ASSERT_EQ(a.devices.size(), b.devices.size());
  bool any_diff = false;
  for (std::size_t i = 0; i < a.devices.size(); ++i) {
    EXPECT_EQ(a.devices[i].points, b.devices[i].points);
    any_diff |= a.devices[i].points != c.devices[i].points;
  }
  EXPECT_TRUE(any_diff);
  EXPECT_EQ(stable_hash(1, {"a", "bc"}), stable_hash(1, {"a", "bc"}));
  EXPECT_NE(stable_hash(1, {"a", "bc"}), stable_hash(1, {"ab", "c"}));
}

TEST(ClassifyPoint, KnowsTheGenericProfileNames) {
  auto role = [](DeviceKind k, const char* name, const char* unit,
                 DataType type = DataType::kUInt16) {
    modbus::PointSpec s;
    s.name = name;
    s.unit = unit;
    s.type = type;
    return classify_point(k, s);
  };
  EXPECT_EQ(role(DeviceKind::kPdu, "active_power", "W").quantity, Quantity::kActivePower);
  EXPECT_EQ(role(DeviceKind::kPdu, "active_power_l2", "W").phase, 2);
  EXPECT_EQ(role(DeviceKind::kPdu, "energy", "kWh").quantity, Quantity::kEnergy);
  EXPECT_EQ(role(DeviceKind::kPdu, "power_factor", "ratio").quantity, Quantity::kPowerFactor);
  EXPECT_EQ(role(DeviceKind::kMeter, "voltage", "V").quantity, Quantity::kVoltage);
  EXPECT_TRUE(role(DeviceKind::kMeter, "voltage_l1_l2", "V").line_to_line);
  EXPECT_EQ(role(DeviceKind::kCooling, "return_temperature", "celsius").quantity,
            Quantity::kReturnTemp);
  EXPECT_EQ(role(DeviceKind::kCooling, "supply_setpoint", "celsius").quantity, Quantity::kSetpoint);
  EXPECT_EQ(role(DeviceKind::kCooling, "fan_speed", "percent").quantity, Quantity::kFan);
  EXPECT_EQ(role(DeviceKind::kCooling, "running", "none", DataType::kBool).quantity, Quantity::kOn);
  EXPECT_EQ(role(DeviceKind::kCooling, "common_alarm", "none", DataType::kBool).quantity,
            Quantity::kAlarm);
  EXPECT_EQ(role(DeviceKind::kRackSensor, "outlet_temperature", "celsius").quantity,
            Quantity::kOutletTemp);
  EXPECT_EQ(role(DeviceKind::kRackSensor, "humidity", "percent").quantity, Quantity::kHumidity);
  EXPECT_EQ(role(DeviceKind::kMeter, "mystery", "none").quantity, Quantity::kConstant);
}

}  // namespace
}  // namespace facility::sim
