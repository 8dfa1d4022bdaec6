#include "sim/site_model.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <map>
#include <numbers>
#include <optional>
#include <set>

#include "daemon/config/points.h"
#include "daemon/config/units.h"

namespace facility::sim {
namespace {

constexpr double kTwoPi = 2.0 * std::numbers::pi;
constexpr double kDay = 86400.0;
constexpr double kJoulesPerKwh = 3.6e6;

// Diurnal swing of IT load: ±8 %, peak at 14:00 UTC+8 = 06:00 UTC, i.e. sin(2π t / day) with t
// in unix seconds (the (h - 8) of UTC+8 cancels the +8 h offset).
constexpr double kDiurnalAmplitude = 0.08;
// Slow load noise: three sinusoids, periods well above 10 min so a 15 s poll sees ~0.1 %
// change; amplitudes sum to 1.9 % (< 2 %).
constexpr std::array<double, 3> kNoisePeriods{678.0, 1626.0, 4190.0};
constexpr std::array<double, 3> kNoiseAmplitudes{0.006, 0.008, 0.005};
// A cabinet near its rating keeps this distance from it at the extremes of its swing.
constexpr double kRatingMargin = 0.005;
constexpr double kDefaultPue = 1.30;
// Share of the non-IT overhead that goes to cooling (the rest: UPS losses, lighting...).
constexpr double kCoolingShareOfOverhead = 0.75;

// amp · sin(omega·tau + phase), tau in seconds since the model's epoch.
struct Wave {
  double amp = 0, omega = 0, phase = 0;
  double at(double tau) const { return amp * std::sin(omega * tau + phase); }
  // ∫_0^tau at(s) ds
  double integral(double tau) const {
    if (omega == 0) return amp * std::sin(phase) * tau;
    return amp * (std::cos(phase) - std::cos(omega * tau + phase)) / omega;
  }
};

// ∫_0^tau cos(w·s + p) ds
double integral_cos(double w, double p, double tau) {
  if (std::abs(w) < 1e-15) return std::cos(p) * tau;
  return (std::sin(w * tau + p) - std::sin(p)) / w;
}

// ∫_0^tau a(s)·b(s) ds, using sin x · sin y = (cos(x-y) - cos(x+y)) / 2.
double integral_product(const Wave& a, const Wave& b, double tau) {
  return a.amp * b.amp / 2.0 *
         (integral_cos(a.omega - b.omega, a.phase - b.phase, tau) -
          integral_cos(a.omega + b.omega, a.phase + b.phase, tau));
}

// P(tau) = mean · (1 + diurnal) · (1 + Σ noise). Expanding the product gives a constant plus
// sines plus products of two sines, all of which integrate in closed form: that is what makes
// the energy counters exact.
struct PowerCurve {
  double mean_w = 0;
  Wave diurnal;
  std::array<Wave, 3> noise;

  double power(double tau) const {
    double n = 1.0;
    for (const Wave& w : noise) n += w.at(tau);
    return mean_w * (1.0 + diurnal.at(tau)) * n;
  }
  // Energy drawn over [0, tau], joules.
  double energy(double tau) const {
    if (mean_w == 0) return 0;
    double e = tau + diurnal.integral(tau);
    for (const Wave& w : noise) e += w.integral(tau) + integral_product(diurnal, w, tau);
    return mean_w * e;
  }
};

Wave make_wave(std::uint64_t h, double amp, double period_lo, double period_hi) {
  const double period = hash_range(h, period_lo, period_hi);
  return Wave{amp, kTwoPi / period, hash_range(h >> 7 | h << 57, 0.0, kTwoPi)};
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::vector<std::string> tokens(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == '_' || c == '-' || c == '.') {
      if (!cur.empty()) out.push_back(std::move(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

bool is_energy_unit(const std::string& u) { return u == "Wh" || u == "kWh" || u == "MWh"; }

// Multiplier from the point's unit to its base unit (the daemon's own table, so the simulator
// and the daemon can never disagree about what "kW" means).
double unit_factor(const std::string& unit) {
  if (!is_known_unit(unit)) return 1.0;
  const double f = to_base_unit(1.0, unit) - to_base_unit(0.0, unit);
  return f != 0 ? f : 1.0;
}

enum class Source { kNone, kCabinet, kIt, kFacility, kCooling, kConstant };

struct Electrical {
  bool three_phase = false;
  std::array<double, 3> phase_share{1.0, 0.0, 0.0};
  double v = 230;                       // single-phase voltage
  std::array<double, 3> v_phase{230, 230, 230};  // line to neutral
  double pf = 0.97;
  Wave v_wobble, f_wobble;
};

struct CabinetModel {
  const Site* site = nullptr;
  const Cabinet* cabinet = nullptr;
  PowerCurve curve;
  std::vector<double> feed_share;  // per cabinet->feeds
};

struct DeviceModel {
  const Device* device = nullptr;
  std::size_t site = 0;
  int cabinet = -1;  // index into Impl::cabinets
  Source source = Source::kNone;
  double share = 0;    // fraction of the source quantity this device measures
  double const_w = 0;  // Source::kConstant
  double e0_j = 0;     // energy counter at the epoch
  // simulate.energy_reset_after: the counter restarts from 0 at this tau (a reboot).
  std::optional<double> reset_tau;
  double energy_at_reset_j = 0;  // energy drawn from the epoch to the reset
  Electrical el;
  double inlet_c = 22, humidity = 0.45, setpoint_c = 19, delta_c = 11, fan = 0.65,
         ambient_c = 15, level = 0.85;
  double u_occupied = 0, u_total = 42;  // rack sensors reporting U-space
  double rated_w = 0;                   // UPS rating (rated_kw, else mean load / 0.45)
  double runtime_s = 1800, charge = 1.0;  // UPS battery
  Wave temp_wobble, hum_wobble, fan_wobble;
  std::vector<PointRole> roles;  // per profile point
};

struct SiteData {
  const Site* site = nullptr;
  double pue = kDefaultPue;
  bool has_facility_meter = false;
  bool has_cooling_meter = false;
  std::vector<std::size_t> pdus;  // indexes into Impl::devices
};

// Keeps a cabinet's swing from crossing its rating (see the header): shrinks the diurnal
// amplitude first, then the noise.
void damp_near_rating(double load, double& diurnal, double& noise) {
  if (load <= 0) return;
  if (load < 1.0) {
    const double room = (1.0 - kRatingMargin) / load;  // largest allowed factor
    if ((1 + diurnal) * (1 + noise) > room) {
      diurnal = std::max(0.0, room / (1 + noise) - 1);
      if ((1 + diurnal) * (1 + noise) > room) {
        diurnal = 0;
        noise = std::max(0.0, room - 1);
      }
    }
  } else {
    const double floor = (1.0 + kRatingMargin) / load;  // smallest allowed factor
    if ((1 - diurnal) * (1 - noise) < floor) {
      diurnal = std::max(0.0, 1 - floor / (1 - noise));
      if ((1 - diurnal) * (1 - noise) < floor) {
        diurnal = 0;
        noise = std::max(0.0, 1 - floor);
      }
    }
  }
}

// The range of an integer energy counter in its point's unit (2^bits x scale), nullopt for floats
// and 64-bit counters, which do not wrap in practice.
std::optional<double> counter_range(const modbus::PointSpec& spec) {
  using modbus::DataType;
  switch (spec.type) {
    case DataType::kInt16:
    case DataType::kUInt16: return 65536.0 * std::abs(spec.scale);
    case DataType::kInt32:
    case DataType::kUInt32: return 4294967296.0 * std::abs(spec.scale);
    default: return std::nullopt;
  }
}

// The code of an enumeration's healthy state: the first of these names the profile uses, else
// its first code (a UPS on line with a good battery, a unit running, a test passed).
double healthy_code(const modbus::PointSpec& spec) {
  static const char* const kHealthy[] = {"normal", "ok",      "good",          "online",
                                         "on",     "running", "fully_charged", "floating",
                                         "passed", "neutral", "disabled",      "open"};
  for (const char* name : kHealthy) {
    for (const auto& [code, n] : spec.enum_names) {
      if (n == name) return static_cast<double>(code);
    }
  }
  return spec.enum_names.empty() ? 0.0 : static_cast<double>(spec.enum_names.front().first);
}

// A fixed plausible value for a point nothing else recognises, by its unit.
double constant_value(const std::string& u) {
  if (u == "V") return 230.0;
  if (u == "Hz") return 50.0;
  if (u == "celsius") return 22.0;
  if (u == "percent" || u == "ratio") return 0.5;
  if (u == "rpm") return 1200.0;
  return 0.0;
}

// Magnus formula (Sonntag 1990 constants), degC from degC and relative humidity (0..1).
double dew_point(double temp_c, double rh) {
  const double g = std::log(std::max(rh, 0.01)) + 17.62 * temp_c / (243.12 + temp_c);
  return 243.12 * g / (17.62 - g);
}

}  // namespace

// ---- Hashing -------------------------------------------------------------------------------

std::uint64_t stable_hash(std::uint64_t seed, std::initializer_list<std::string_view> parts) {
  std::uint64_t h = 14695981039346656037ull;  // FNV-1a offset basis
  auto mix = [&h](unsigned char b) {
    h ^= b;
    h *= 1099511628211ull;  // FNV prime
  };
  for (int i = 0; i < 8; ++i) mix(static_cast<unsigned char>(seed >> (8 * i)));
  for (std::string_view p : parts) {
    for (char c : p) mix(static_cast<unsigned char>(c));
    mix(0xFF);  // separator: ("ab","c") and ("a","bc") must differ
  }
  // splitmix64 finaliser: FNV's low bits are weak, and hash_range uses the high ones.
  h += 0x9E3779B97F4A7C15ull;
  h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9ull;
  h = (h ^ (h >> 27)) * 0x94D049BB133111EBull;
  return h ^ (h >> 31);
}

double hash_range(std::uint64_t h, double lo, double hi) {
  return lo + (hi - lo) * (static_cast<double>(h >> 11) * 0x1.0p-53);
}

// ---- Point classification ------------------------------------------------------------------

const char* to_string(Quantity q) {
  switch (q) {
    case Quantity::kActivePower: return points::kActivePower;
    case Quantity::kApparentPower: return "apparent_power";
    case Quantity::kReactivePower: return "reactive_power";
    case Quantity::kEnergy: return points::kEnergy;
    case Quantity::kCurrent: return points::kCurrent;
    case Quantity::kVoltage: return points::kVoltage;
    case Quantity::kPowerFactor: return points::kPowerFactor;
    case Quantity::kFrequency: return "frequency";
    case Quantity::kSupplyTemp: return points::kSupplyTemperature;
    case Quantity::kSetpoint: return "setpoint";
    case Quantity::kReturnTemp: return points::kReturnTemperature;
    case Quantity::kInletTemp: return points::kInletTemperature;
    case Quantity::kOutletTemp: return points::kOutletTemperature;
    case Quantity::kAmbientTemp: return points::kAmbientTemperature;
    case Quantity::kHumidity: return points::kHumidity;
    case Quantity::kFan: return "fan";
    case Quantity::kOn: return "on";
    case Quantity::kAlarm: return "alarm";
    case Quantity::kLevel: return "level";
    case Quantity::kRackUnitsOccupied: return "rack_units_occupied";
    case Quantity::kRackUnitsTotal: return "rack_units_total";
    case Quantity::kDewPoint:
      return "dew_point";
    case Quantity::kLoadRatio:
      return "load_ratio";
    case Quantity::kRuntime:
      return "battery_runtime";
    case Quantity::kCharge:
      return "battery_charge";
    case Quantity::kRated:
      return "rated";
    case Quantity::kState:
      return "state";
    case Quantity::kZero:
      return "zero";
    case Quantity::kConstant: return "constant";
  }
  return "?";
}

namespace {

// A point's name, matched by substring or by '_'-separated token.
struct NameMatch {
  std::string n;
  std::vector<std::string> tok;
  explicit NameMatch(const std::string& name) : n(lower(name)), tok(tokens(n)) {}
  bool has(std::string_view s) const { return n.find(s) != std::string::npos; }
  bool has_tok(std::string_view t) const {
    return std::find(tok.begin(), tok.end(), t) != tok.end();
  }
  bool has_any(std::initializer_list<std::string_view> list) const {
    return std::any_of(list.begin(), list.end(), [this](std::string_view s) { return has(s); });
  }
};

// A temperature: what it measures follows from the device's role and the point's name.
Quantity temperature_quantity(Contribution role, const NameMatch& m) {
  if (role == Contribution::kRoomCooling) {
    if (m.has_any({"setpoint", "set_point"})) return Quantity::kSetpoint;
    if (m.has_any({"return", "intake", "inlet"})) return Quantity::kReturnTemp;
    return Quantity::kSupplyTemp;
  }
  if (role == Contribution::kCabinetSensor) {
    return m.has_any({"outlet", "exhaust", "rear", "hot"}) ? Quantity::kOutletTemp
                                                           : Quantity::kInletTemp;
  }
  return Quantity::kAmbientTemp;
}

// A value in percent or as a ratio.
Quantity ratio_quantity(Contribution role, const NameMatch& m, bool pf) {
  if (pf) return Quantity::kPowerFactor;
  if (role == Contribution::kUpsOutput && m.has("load")) return Quantity::kLoadRatio;
  if (role == Contribution::kUpsOutput && m.has("charge")) return Quantity::kCharge;
  if (m.has("humid") || m.has_tok("rh")) return Quantity::kHumidity;
  if (m.has("fan")) return Quantity::kFan;
  if (m.has_any({"level", "fuel", "tank"})) return Quantity::kLevel;
  return Quantity::kConstant;
}

// By unit alone (and a few names), for the units that say what a value is; nullopt otherwise.
std::optional<Quantity> unit_quantity(const NameMatch& m, const std::string& u) {
  if (m.has("dew") && u == "celsius") return Quantity::kDewPoint;
  if (m.has("rated")) return Quantity::kRated;
  if (m.has("export") || (m.has("battery") && u == "A")) return Quantity::kZero;
  if (is_energy_unit(u)) return Quantity::kEnergy;
  if (u == "s" || u == "min" || u == "h") {
    return m.has("runtime") ? Quantity::kRuntime : Quantity::kZero;
  }
  if (u == "VA" || u == "kVA") return Quantity::kApparentPower;
  if (u == "var" || u == "kvar") return Quantity::kReactivePower;
  if (u == "W" || u == "kW") {
    if (m.has("reactive")) return Quantity::kReactivePower;
    if (m.has("apparent")) return Quantity::kApparentPower;
    return Quantity::kActivePower;
  }
  if (u == "A") return Quantity::kCurrent;
  if (u == "V") return Quantity::kVoltage;
  if (u == "Hz") return Quantity::kFrequency;
  if (u == "rpm") return Quantity::kFan;
  return std::nullopt;
}

}  // namespace

PointRole classify_point(DeviceKind kind, const modbus::PointSpec& spec) {
  const NameMatch m(spec.name);
  PointRole r;
  int phases_named = 0;
  for (int p = 1; p <= 3; ++p) {
    if (m.has_tok("l" + std::to_string(p))) {
      r.phase = r.phase == 0 ? p : r.phase;
      ++phases_named;
    }
  }
  r.line_to_line = phases_named >= 2 || m.has_tok("ll") || m.has_tok("l12") || m.has_tok("l23") ||
                   m.has_tok("l31") || m.has_tok("l1l2") || m.has_tok("l2l3") ||
                   m.has_tok("l3l1") || m.has_any({"line_to_line", "line_line"});

  const bool alarm_word = m.has_any(
      {"alarm", "fault", "fail", "trip", "leak", "smoke", "fire", "error", "warning", "open"});
  const bool on_word = m.has_any({"running", "active", "status", "enabled", "online", "ready"}) ||
                       m.has_tok("run") || m.has_tok("on") || m.has_tok("ok");
  const std::string& u = spec.unit;

  auto set = [&r](Quantity q) {
    r.quantity = q;
    return r;
  };
  if (!spec.enum_names.empty()) return set(Quantity::kState);
  // A UPS's exceptional conditions (on battery, on bypass, low battery, overload) are off.
  const bool ups_alarm =
      m.has_any({"battery", "bypass", "overload", "low", "replace", "lost", "off", "discharg"});
  if (spec.type == modbus::DataType::kBool || modbus::is_bit_kind(spec.kind)) {
    if (alarm_word || ups_alarm) return set(Quantity::kAlarm);
    if (on_word) return set(Quantity::kOn);
    return set(Quantity::kConstant);
  }
  const Contribution role = kind_info(kind).contributes;
  if (role == Contribution::kCabinetSensor && m.has(points::kUOccupied))
    return set(Quantity::kRackUnitsOccupied);
  if (role == Contribution::kCabinetSensor && m.has(points::kUTotal))
    return set(Quantity::kRackUnitsTotal);
  if (auto q = unit_quantity(m, u)) return set(*q);
  if (u == "celsius") return set(temperature_quantity(role, m));
  const bool pf = m.has_any({"power_factor", "cos_phi", "cosphi"}) || m.has_tok("pf");
  if (u == "percent" || u == "ratio") return set(ratio_quantity(role, m, pf));
  if (pf) return set(Quantity::kPowerFactor);
  if (alarm_word) return set(Quantity::kAlarm);
  if (on_word) return set(Quantity::kOn);
  return set(Quantity::kConstant);
}

// ---- The model -----------------------------------------------------------------------------

struct SiteModel::Impl {
  std::uint64_t seed = 0;
  std::vector<CabinetModel> cabinets;
  std::vector<SiteData> sites;
  std::vector<DeviceModel> devices;

  std::uint64_t h(std::initializer_list<std::string_view> parts) const {
    return stable_hash(seed, parts);
  }
  double r(double lo, double hi, std::initializer_list<std::string_view> parts) const {
    return hash_range(h(parts), lo, hi);
  }

  void build(const Config& cfg, double epoch, std::vector<std::string>& warnings);
  // The parts of build().
  struct DeviceCounts {
    std::map<std::pair<std::string, std::string>, int> pdus_on_feed;  // (cabinet, feed)
    std::map<MeterRole, int> meters_by_role;
    std::map<int, int> it_meters_by_category;
    double cooling_weight_sum = 0;
    int ups = 0;
  };
  static MeterRole meter_group(const Site& site, MeterRole role);
  static int count_of(const std::map<MeterRole, int>& m, MeterRole role) {
    auto it = m.find(role);
    return it == m.end() ? 0 : it->second;
  }
  CabinetModel cabinet_model(const Site& site, const Cabinet& cab, const Wave& diurnal_unit) const;
  DeviceCounts count_devices(const Site& site) const;
  void model_pdu(const Device& d, const DeviceCounts& n, bool phase_points, SiteData& sd,
                 DeviceModel& dm, std::vector<std::string>& warnings);
  void model_meter(const Site& site, const Device& d, const DeviceCounts& counts,
                   const SiteData& sd, double site_it_e0, DeviceModel& dm) const;
  void model_cooling(const Device& d, const DeviceCounts& n, DeviceModel& dm) const;
  void model_rack_sensor(const Device& d, DeviceModel& dm) const;
  void model_ups(const Device& d, const DeviceCounts& n, DeviceModel& dm) const;
  // UPS ratings from their mean load, once every device (and so the IT load) is built.
  void rate_ups();
  // Energy-counter hints (wrap, reset), once every device is built.
  void place_counters(std::vector<std::string>& warnings);

  // Power and energy since the epoch of every cabinet and site at tau.
  struct Flows {
    std::vector<double> cab_p, cab_e, it_p, it_e;
  };
  Flows flows(double tau) const;
  // A device's power (W) and the energy it has measured since the epoch (J).
  std::pair<double, double> device_flow(const DeviceModel& dm, double tau, const Flows& f) const;
  // What its energy counter shows (J), before wrapping to the register's range.
  double counter_j(const DeviceModel& dm, double tau, double since_epoch_j) const;
  Electrical electrical(const Device& d, bool three_phase, bool meter) const;
  double point_base_value(const DeviceModel& dm, const PointRole& role,
                          const modbus::PointSpec& spec, double tau, double power_w,
                          double energy_j, double load_ratio) const;
};

Electrical SiteModel::Impl::electrical(const Device& d, bool three_phase, bool meter) const {
  Electrical el;
  el.three_phase = three_phase;
  el.pf = r(0.95, 0.99, {"pf", d.id});
  el.v = r(220.0, 230.0, {"v", d.id});
  for (int i = 0; i < 3; ++i) {
    el.v_phase[static_cast<std::size_t>(i)] =
        r(228.0, 232.0, {"vph", d.id, std::to_string(i)});
  }
  // A PDU's phases are visibly unbalanced (servers aren't spread evenly); a site meter's
  // barely are (thousands of loads average out). Which phase is heaviest comes from the hash.
  const std::array<double, 3> pdu{0.36, 0.33, 0.31};
  const std::array<double, 3> site{0.34, 0.333, 0.327};
  const auto& base = meter ? site : pdu;
  const std::size_t rot = h({"rot", d.id}) % 3;
  for (std::size_t i = 0; i < 3; ++i) el.phase_share[i] = base[(i + rot) % 3];
  if (!three_phase) el.phase_share = {1.0, 0.0, 0.0};
  el.v_wobble = make_wave(h({"vw", d.id}), 0.6, 900, 1500);
  el.f_wobble = make_wave(h({"fw", d.id}), 0.03, 400, 800);
  return el;
}

// The load curve and feed split of one cabinet.
CabinetModel SiteModel::Impl::cabinet_model(const Site& site, const Cabinet& cab,
                                            const Wave& diurnal_unit) const {
  CabinetModel cm;
  cm.site = &site;
  cm.cabinet = &cab;
  double load;
  if (cab.sim.load) {
    load = *cab.sim.load;
  } else if (cab.status == CabinetStatus::kFree) {
    load = 0;  // nobody's equipment in it
  } else {
    load = r(0.45, 0.75, {"load", site.id, cab.id});
  }
  double d = kDiurnalAmplitude;
  double noise = kNoiseAmplitudes[0] + kNoiseAmplitudes[1] + kNoiseAmplitudes[2];
  const double full_noise = noise;
  damp_near_rating(load, d, noise);
  cm.curve.mean_w = cab.rated_w * load;
  cm.curve.diurnal = diurnal_unit;
  cm.curve.diurnal.amp = d;
  for (std::size_t i = 0; i < 3; ++i) {
    const double period = kNoisePeriods[i];
    cm.curve.noise[i] = make_wave(h({"noise", site.id, cab.id, std::to_string(i)}),
                                  kNoiseAmplitudes[i] * noise / full_noise, period * 0.9,
                                  period * 1.1);
  }
  // Feed split: dual-corded servers share almost evenly, with a small tilt to one side.
  const std::size_t nf = cab.feeds.size();
  if (nf == 1) {
    cm.feed_share = {1.0};
  } else if (nf == 2) {
    const double a = r(0.48, 0.54, {"feed", site.id, cab.id});
    cm.feed_share = {a, 1.0 - a};
  } else if (nf > 2) {
    double sum = 0;
    for (std::size_t i = 0; i < nf; ++i) {
      cm.feed_share.push_back(r(0.9, 1.1, {"feed", site.id, cab.id, cab.feeds[i]}));
      sum += cm.feed_share.back();
    }
    for (double& s : cm.feed_share) s /= sum;
  }
  return cm;
}

SiteModel::Impl::DeviceCounts SiteModel::Impl::count_devices(const Site& site) const {
  DeviceCounts n;
  for (const Device& d : site.devices) {
    const Contribution role = kind_info(d.kind).contributes;
    if (role == Contribution::kCabinetFeed) ++n.pdus_on_feed[{d.cabinet, d.feed}];
    if (role == Contribution::kSiteMeter) {
      ++n.meters_by_role[meter_group(site, d.role)];
      if (const int c = it_category(d.role, site.pue_category)) ++n.it_meters_by_category[c];
    }
    if (role == Contribution::kRoomCooling) n.cooling_weight_sum += r(0.9, 1.1, {"cw", d.id});
    if (role == Contribution::kUpsOutput) ++n.ups;
  }
  return n;
}

// IT meters of one PUE category share the IT load; other roles count per role.
MeterRole SiteModel::Impl::meter_group(const Site& site, MeterRole role) {
  const int c = it_category(role, site.pue_category);
  return c > 0 ? MeterRole::kItTotal : role;
}

// A PDU: its share of its cabinet's feed.
void SiteModel::Impl::model_pdu(const Device& d, const DeviceCounts& n, bool phase_points,
                                SiteData& sd, DeviceModel& dm,
                                std::vector<std::string>& warnings) {
  dm.source = Source::kCabinet;
  dm.e0_j = r(1500, 9000, {"e0", d.id}) * kJoulesPerKwh;
  const Cabinet* cab = dm.cabinet >= 0 ? cabinets[static_cast<std::size_t>(dm.cabinet)].cabinet
                                       : nullptr;
  if (!cab) {
    warnings.push_back("pdu " + d.id + ": cabinet \"" + d.cabinet +
                       "\" not found; it serves 0 W");
  } else {
    std::string feed = d.feed;
    if (feed.empty() && cab->feeds.size() == 1) feed = cab->feeds[0];
    auto f = std::find(cab->feeds.begin(), cab->feeds.end(), feed);
    if (f == cab->feeds.end()) {
      warnings.push_back("pdu " + d.id + ": feed \"" + d.feed + "\" is not a feed of " +
                         cab->id + "; it serves 0 W");
    } else {
      const auto& cm = cabinets[static_cast<std::size_t>(dm.cabinet)];
      const auto sharing = n.pdus_on_feed.find({d.cabinet, d.feed});
      dm.share = cm.feed_share[static_cast<std::size_t>(f - cab->feeds.begin())] /
                 std::max(1, sharing == n.pdus_on_feed.end() ? 0 : sharing->second);
    }
  }
  const bool three = phase_points || (cab && cab->breaker && cab->breaker->phases == 3);
  dm.el = electrical(d, three, false);
  sd.pdus.push_back(devices.size());
}

// A site meter: the IT, facility or cooling load of its role, or a small constant one.
void SiteModel::Impl::model_meter(const Site& site, const Device& d, const DeviceCounts& counts,
                                  const SiteData& sd, double site_it_e0, DeviceModel& dm) const {
  const int category = it_category(d.role, site.pue_category);
  const auto in_category = counts.it_meters_by_category.find(category);
  const double n =
      std::max(1, category > 0 ? (in_category == counts.it_meters_by_category.end()
                                      ? 0
                                      : in_category->second)
                               : count_of(counts.meters_by_role, d.role));
  switch (meter_group(site, d.role)) {
    case MeterRole::kItUpsOutput:
    case MeterRole::kItPduOutput:
    case MeterRole::kItEquipmentInput:
    case MeterRole::kItTotal:
      dm.source = Source::kIt;
      dm.e0_j = site_it_e0 / n;
      break;
    case MeterRole::kFacilityTotal:
      dm.source = Source::kFacility;
      dm.e0_j = site_it_e0 * sd.pue / n;
      break;
    case MeterRole::kCooling:
      dm.source = Source::kCooling;
      dm.e0_j = site_it_e0 * (sd.pue - 1) * kCoolingShareOfOverhead / n;
      break;
    case MeterRole::kOther:
    case MeterRole::kNone:
      // Offices, lighting, a pump room: small and steady.
      dm.source = Source::kConstant;
      dm.const_w = r(2000, 8000, {"other", d.id});
      dm.e0_j = r(2e4, 1e5, {"e0", d.id}) * kJoulesPerKwh;
      break;
  }
  dm.share = 1.0 / n;
  dm.el = electrical(d, true, true);  // site meters sit on three-phase boards
  dm.ambient_c = r(10, 20, {"amb", d.id});
}

// A cooling unit: its share of the site's cooling load, setpoint and air.
void SiteModel::Impl::model_cooling(const Device& d, const DeviceCounts& n,
                                    DeviceModel& dm) const {
  dm.source = Source::kCooling;
  dm.share = n.cooling_weight_sum > 0 ? r(0.9, 1.1, {"cw", d.id}) / n.cooling_weight_sum : 0;
  dm.e0_j = r(5e4, 3e5, {"e0", d.id}) * kJoulesPerKwh;
  dm.el = electrical(d, true, false);
  // Setpoints come in half degrees, as operators set them.
  dm.setpoint_c = 18.0 + 0.5 * static_cast<double>(h({"sp", d.id}) % 5);
  dm.delta_c = r(10, 12, {"dt", d.id});
  dm.fan = r(0.55, 0.80, {"fan", d.id});
  dm.humidity = r(0.40, 0.55, {"rh", d.id});
}

// A rack sensor: inlet air, humidity and rack units from its cabinet.
void SiteModel::Impl::model_rack_sensor(const Device& d, DeviceModel& dm) const {
  dm.source = Source::kNone;
  const Cabinet* cab = dm.cabinet >= 0 ? cabinets[static_cast<std::size_t>(dm.cabinet)].cabinet
                                       : nullptr;
  dm.inlet_c = d.sim.inlet_c.value_or(
      cab && cab->sim.inlet_c ? *cab->sim.inlet_c : r(21, 25, {"inlet", d.id}));
  dm.humidity = r(0.40, 0.55, {"rh", d.id});
  dm.el = electrical(d, false, false);
  // U-space: servers fill a cabinet roughly with its load; free cabinets are empty.
  if (cab) {
    const double load = cab->rated_w > 0
                            ? cabinets[static_cast<std::size_t>(dm.cabinet)].curve.mean_w /
                                  cab->rated_w
                            : 0.0;
    dm.u_total = cab->rack_units;
    dm.u_occupied = load <= 0 ? 0.0
                              : std::min<double>(cab->rack_units - 2,
                                                 std::round(cab->rack_units *
                                                            (0.2 + 0.65 * std::min(load, 1.0))));
  }
}

// A UPS: an equal share of its site's IT load at its output, on line, battery full.
void SiteModel::Impl::model_ups(const Device& d, const DeviceCounts& n, DeviceModel& dm) const {
  dm.source = Source::kIt;
  dm.share = 1.0 / std::max(1, n.ups);
  dm.e0_j = r(2e5, 9e5, {"e0", d.id}) * kJoulesPerKwh;
  dm.el = electrical(d, true, true);
  dm.rated_w = d.rated_w.value_or(0.0);
  dm.runtime_s = 60.0 * std::round(r(15, 40, {"rt", d.id}));
  dm.charge = r(0.97, 1.0, {"soc", d.id});
  dm.ambient_c = r(20, 25, {"amb", d.id});
}

void SiteModel::Impl::rate_ups() {
  const Flows f = flows(0);
  for (DeviceModel& dm : devices) {
    if (kind_info(dm.device->kind).contributes != Contribution::kUpsOutput || dm.rated_w > 0) {
      continue;
    }
    const double mean = device_flow(dm, 0, f).first;
    dm.rated_w = mean > 0 ? std::ceil(mean / 0.45 / 1000.0) * 1000.0 : 10000.0;
  }
}

void SiteModel::Impl::build(const Config& cfg, double epoch, std::vector<std::string>& warnings) {
  // The diurnal sine is sin(2π t / day) in absolute time; shift it to the epoch.
  const Wave diurnal_unit{1.0, kTwoPi / kDay, kTwoPi * std::fmod(epoch, kDay) / kDay};
  std::set<std::pair<std::string, std::string>> warned_points;  // (profile, point)

  for (const Site& site : cfg.sites) {
    const std::size_t site_index = sites.size();
    SiteData sd;
    sd.site = &site;
    sd.pue = site.sim.pue.value_or(kDefaultPue);
    std::map<std::string, int> cab_index;
    for (const Cabinet& cab : site.cabinets) {
      cab_index[cab.id] = static_cast<int>(cabinets.size());
      cabinets.push_back(cabinet_model(site, cab, diurnal_unit));
    }
    const DeviceCounts n = count_devices(site);
    sd.has_facility_meter = count_of(n.meters_by_role, MeterRole::kFacilityTotal) > 0;
    sd.has_cooling_meter = count_of(n.meters_by_role, MeterRole::kCooling) > 0;
    // Lifetime energy of the site's IT load at the epoch; the other meters are scaled from it
    // so that cumulative energy ratios look like the PUE too.
    const double site_it_e0 = r(1.5e6, 4.0e6, {"e0", site.id}) * kJoulesPerKwh;

    for (const Device& d : site.devices) {
      DeviceModel dm;
      dm.device = &d;
      dm.site = site_index;
      bool phase_points = false;
      if (d.profile) {
        for (const ProfilePoint& p : d.profile->points) {
          const PointRole role = classify_point(d.kind, p.spec);
          phase_points |= role.phase != 0;
          dm.roles.push_back(role);
          if (role.quantity == Quantity::kConstant &&
              warned_points.emplace(d.profile->name, p.spec.name).second) {
            warnings.push_back("profile " + d.profile->name + " point " + p.spec.name +
                               ": not recognised by the simulator, serves a constant");
          }
        }
      }
      if (!d.cabinet.empty()) {
        auto it = cab_index.find(d.cabinet);
        if (it != cab_index.end()) dm.cabinet = it->second;
      }
      // A kind behaves as the part it plays in the model (daemon/config/device_kinds.h).
      switch (kind_info(d.kind).contributes) {
        case Contribution::kCabinetFeed:
          model_pdu(d, n, phase_points, sd, dm, warnings);
          break;
        case Contribution::kSiteMeter:
          model_meter(site, d, n, sd, site_it_e0, dm);
          break;
        case Contribution::kRoomCooling:
          model_cooling(d, n, dm);
          break;
        case Contribution::kCabinetSensor:
          model_rack_sensor(d, dm);
          break;
        case Contribution::kUpsOutput:
          model_ups(d, n, dm);
          break;
      }
      dm.temp_wobble = make_wave(h({"tw", d.id}), 0.15, 900, 1500);
      dm.hum_wobble = make_wave(h({"hw", d.id}), 0.01, 1800, 3000);
      dm.fan_wobble = make_wave(h({"fw2", d.id}), 0.01, 600, 1200);
      devices.push_back(std::move(dm));
    }
    sites.push_back(std::move(sd));
  }
}

double SiteModel::Impl::point_base_value(const DeviceModel& dm, const PointRole& role,
                                         const modbus::PointSpec& spec, double tau,
                                         double power_w, double energy_j,
                                         double load_ratio) const {
  const Electrical& el = dm.el;
  const double share = role.phase > 0 && el.three_phase
                           ? el.phase_share[static_cast<std::size_t>(role.phase - 1)]
                           : 1.0;
  auto phase_v = [&](int i) { return el.v_phase[static_cast<std::size_t>(i)] + el.v_wobble.at(tau); };
  switch (role.quantity) {
    case Quantity::kActivePower: return power_w * share;
    case Quantity::kApparentPower: return power_w * share / el.pf;
    case Quantity::kReactivePower:
      return power_w * share / el.pf * std::sqrt(1 - el.pf * el.pf);
    case Quantity::kEnergy: return energy_j * share;
    case Quantity::kCurrent: {
      if (!el.three_phase) return power_w / ((el.v + el.v_wobble.at(tau)) * el.pf);
      auto phase_i = [&](int i) {
        return power_w * el.phase_share[static_cast<std::size_t>(i)] / (phase_v(i) * el.pf);
      };
      if (role.phase > 0) return phase_i(role.phase - 1);
      return (phase_i(0) + phase_i(1) + phase_i(2)) / 3.0;  // average phase current
    }
    case Quantity::kVoltage: {
      double v;
      if (!el.three_phase) {
        v = el.v + el.v_wobble.at(tau);
      } else if (role.phase > 0) {
        v = phase_v(role.phase - 1);
      } else {
        v = (phase_v(0) + phase_v(1) + phase_v(2)) / 3.0;
      }
      return role.line_to_line ? v * std::numbers::sqrt3 : v;
    }
    case Quantity::kPowerFactor: return el.pf;
    case Quantity::kFrequency: return 50.0 + el.f_wobble.at(tau);
    case Quantity::kSetpoint: return dm.setpoint_c;
    case Quantity::kSupplyTemp: return dm.setpoint_c + dm.temp_wobble.at(tau);
    case Quantity::kReturnTemp: return dm.setpoint_c + dm.temp_wobble.at(tau) + dm.delta_c;
    case Quantity::kInletTemp: return dm.inlet_c + dm.temp_wobble.at(tau);
    case Quantity::kOutletTemp:
      // Servers heat their air by ~8 K idle and ~14 K flat out.
      return dm.inlet_c + dm.temp_wobble.at(tau) + 8.0 + 6.0 * load_ratio;
    case Quantity::kAmbientTemp: return dm.ambient_c + dm.temp_wobble.at(tau);
    case Quantity::kHumidity: return dm.humidity + dm.hum_wobble.at(tau);
    case Quantity::kFan: {
      const double ratio = dm.fan + dm.fan_wobble.at(tau);
      return spec.unit == "rpm" ? ratio * 1800.0 : ratio;
    }
    case Quantity::kOn: return 1.0;
    case Quantity::kAlarm: return 0.0;
    case Quantity::kLevel: return dm.level;
    case Quantity::kRackUnitsOccupied: return dm.u_occupied;
    case Quantity::kRackUnitsTotal: return dm.u_total;
    case Quantity::kDewPoint: {
      const double t = kind_info(dm.device->kind).contributes == Contribution::kRoomCooling
                           ? dm.setpoint_c + dm.delta_c
                           : dm.inlet_c;
      return dew_point(t + dm.temp_wobble.at(tau), dm.humidity + dm.hum_wobble.at(tau));
    }
    case Quantity::kLoadRatio: {
      const double rated = role.phase > 0 ? dm.rated_w / 3.0 : dm.rated_w;
      return rated > 0 ? power_w * share / rated : 0.0;
    }
    case Quantity::kRuntime:
      return dm.runtime_s;
    case Quantity::kCharge:
      return dm.charge;
    case Quantity::kRated: {
      const double w = dm.rated_w > 0 ? dm.rated_w : power_w / 0.45;
      return spec.unit == "VA" || spec.unit == "kVA" ? w / el.pf : w;
    }
    case Quantity::kState:
      return healthy_code(spec);
    case Quantity::kZero:
      return 0.0;
    case Quantity::kConstant:
      return constant_value(spec.unit);
  }
  return 0.0;
}

SiteModel::Impl::Flows SiteModel::Impl::flows(double tau) const {
  Flows f;
  f.cab_p.resize(cabinets.size());
  f.cab_e.resize(cabinets.size());
  for (std::size_t i = 0; i < cabinets.size(); ++i) {
    f.cab_p[i] = cabinets[i].curve.power(tau);
    f.cab_e[i] = cabinets[i].curve.energy(tau);
  }
  // IT power of a site is what its PDUs measure; every meter derives from it.
  f.it_p.assign(sites.size(), 0.0);
  f.it_e.assign(sites.size(), 0.0);
  for (std::size_t s = 0; s < sites.size(); ++s) {
    for (std::size_t di : sites[s].pdus) {
      const DeviceModel& dm = devices[di];
      if (dm.cabinet < 0) continue;
      f.it_p[s] += dm.share * f.cab_p[static_cast<std::size_t>(dm.cabinet)];
      f.it_e[s] += dm.share * f.cab_e[static_cast<std::size_t>(dm.cabinet)];
    }
  }
  return f;
}

std::pair<double, double> SiteModel::Impl::device_flow(const DeviceModel& dm, double tau,
                                                       const Flows& f) const {
  const SiteData& sd = sites[dm.site];
  double factor = 0;  // multiplier of the site's IT power / energy
  switch (dm.source) {
    case Source::kIt: factor = 1.0; break;
    case Source::kFacility: factor = sd.pue; break;
    case Source::kCooling: factor = (sd.pue - 1) * kCoolingShareOfOverhead; break;
    default: break;
  }
  const std::size_t cab = dm.cabinet >= 0 ? static_cast<std::size_t>(dm.cabinet) : 0;
  switch (dm.source) {
    case Source::kCabinet:
      if (dm.cabinet < 0) return {0.0, 0.0};
      return {dm.share * f.cab_p[cab], dm.share * f.cab_e[cab]};
    case Source::kIt:
    case Source::kFacility:
    case Source::kCooling:
      return {dm.share * factor * f.it_p[dm.site], dm.share * factor * f.it_e[dm.site]};
    case Source::kConstant: return {dm.const_w, dm.const_w * tau};
    case Source::kNone: break;
  }
  return {0.0, 0.0};
}

double SiteModel::Impl::counter_j(const DeviceModel& dm, double tau, double since_epoch_j) const {
  if (dm.reset_tau && tau >= *dm.reset_tau) {
    return since_epoch_j - dm.energy_at_reset_j;  // restarted from 0 at the reset
  }
  return dm.e0_j + since_epoch_j;
}

void SiteModel::Impl::place_counters(std::vector<std::string>& warnings) {
  for (DeviceModel& dm : devices) {
    const SimHints& hint = dm.device->sim;
    if (!hint.energy_wrap_after_s && !hint.energy_reset_after_s) continue;
    const modbus::PointSpec* spec = nullptr;
    for (std::size_t i = 0; i < dm.roles.size() && !spec; ++i) {
      if (dm.roles[i].quantity == Quantity::kEnergy) spec = &dm.device->profile->points[i].spec;
    }
    if (!spec) {
      warnings.push_back("device " + dm.device->id +
                         ": simulate energy_* ignored, its profile has no energy counter");
      continue;
    }
    if (hint.energy_wrap_after_s) {
      const auto range = counter_range(*spec);
      if (!range) {
        warnings.push_back("device " + dm.device->id + ": simulate energy_wrap_after ignored, " +
                           spec->name + " is not a 16- or 32-bit integer counter");
      } else {
        const double t = *hint.energy_wrap_after_s;
        const double used = device_flow(dm, t, flows(t)).second;
        dm.e0_j = std::max(0.0, *range * unit_factor(spec->unit) - used);
      }
    }
    if (hint.energy_reset_after_s) {
      const double t = *hint.energy_reset_after_s;
      dm.reset_tau = t;
      dm.energy_at_reset_j = device_flow(dm, t, flows(t)).second;
    }
  }
}

SiteModel::SiteModel(std::shared_ptr<const Config> config, std::uint64_t seed, double epoch)
    : config_(std::move(config)), epoch_(epoch), impl_(std::make_unique<Impl>()) {
  impl_->seed = seed;
  impl_->build(*config_, epoch_, warnings_);
  impl_->rate_ups();
  impl_->place_counters(warnings_);
}

SiteModel::~SiteModel() = default;

Truth SiteModel::at(double t) const {
  const Impl& m = *impl_;
  const double tau = t - epoch_;
  Truth truth;
  truth.ts = t;

  const Impl::Flows fl = m.flows(tau);
  const auto& cab_p = fl.cab_p;
  const auto& it_p = fl.it_p;
  truth.cabinets.reserve(m.cabinets.size());
  for (std::size_t i = 0; i < m.cabinets.size(); ++i) {
    const CabinetModel& cm = m.cabinets[i];
    CabinetTruth ct;
    ct.site = cm.site;
    ct.cabinet = cm.cabinet;
    ct.power_w = cab_p[i];
    ct.rated_w = cm.cabinet->rated_w;
    for (std::size_t f = 0; f < cm.cabinet->feeds.size(); ++f) {
      ct.feeds_w.emplace_back(cm.cabinet->feeds[f], cab_p[i] * cm.feed_share[f]);
    }
    truth.cabinets.push_back(std::move(ct));
  }

  for (std::size_t s = 0; s < m.sites.size(); ++s) {
    const SiteData& sd = m.sites[s];
    SiteTruth st;
    st.site = sd.site;
    st.it_power_w = it_p[s];
    if (sd.has_facility_meter) {
      st.facility_power_w = it_p[s] * sd.pue;
      if (it_p[s] > 0) st.pue = *st.facility_power_w / it_p[s];
    }
    if (sd.has_cooling_meter) {
      st.cooling_power_w = it_p[s] * (sd.pue - 1) * kCoolingShareOfOverhead;
    }
    truth.sites.push_back(st);
  }

  truth.devices.reserve(m.devices.size());
  for (const DeviceModel& dm : m.devices) {
    const auto [power, since_epoch] = m.device_flow(dm, tau, fl);
    const double energy = m.counter_j(dm, tau, since_epoch);
    double load_ratio = 0;
    const std::size_t cab = dm.cabinet >= 0 ? static_cast<std::size_t>(dm.cabinet) : 0;
    if (dm.cabinet >= 0 && m.cabinets[cab].cabinet->rated_w > 0) {
      load_ratio = cab_p[cab] / m.cabinets[cab].cabinet->rated_w;
    }
    DeviceTruth dt;
    dt.device = dm.device;
    if (dm.device->profile) {
      const auto& points = dm.device->profile->points;
      dt.points.reserve(points.size());
      for (std::size_t i = 0; i < points.size(); ++i) {
        const auto& spec = points[i].spec;
        const double base =
            m.point_base_value(dm, dm.roles[i], spec, tau, power, energy, load_ratio);
        double v = base / unit_factor(spec.unit);
        if (dm.roles[i].quantity == Quantity::kEnergy) {
          // A counter wraps like the register it lives in.
          if (auto range = counter_range(spec)) v = std::fmod(v, *range);
        }
        dt.points.emplace_back(spec.name, v);
      }
    }
    truth.devices.push_back(std::move(dt));
  }
  return truth;
}

}  // namespace facility::sim
