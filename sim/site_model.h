// SiteModel: the simulator's ground truth. Given a Config and a simulated time it says what
// every cabinet draws, what every site's meters read, and what value every point of every
// device should hold, in the point's own unit.
//
// The model is a pure function of (config, seed, epoch, t): every quantity is a closed-form
// expression of time, so the energy counters are the exact integral of the power curves
// (Δenergy/Δt equals the mean served power to floating-point precision), any instant can be
// evaluated in any order, and tests need no sleeping. Every "random" choice (a cabinet's
// default load, its feed split, a PDU's voltage...) comes from a hash of the seed and the ids,
// so a run is reproducible.
//
// Cabinet power: P(t) = rated_w × load × (1 + d·sin(2π t/86400)) × (1 + Σ a_i·sin(ω_i t + φ_i))
//   * load: simulate.load, else 0 for free cabinets and 0.45..0.75 (hash) for sold/internal.
//   * the diurnal term peaks at 14:00 UTC+8 (06:00 UTC), d = 8 %.
//   * the noise is three slow sinusoids (periods 11..70 min, per-cabinet phases), |Σa_i| < 2 %,
//     so two values 15 s apart differ by about 0.1 %.
//   * the swing is damped for a cabinet whose mean load is close to 1, so that it never crosses
//     its rating: a cabinet meant to be overloaded (load > 1) stays overloaded all day, and one
//     meant to be just under stays under. Alert tests then don't depend on the time of day.
//
// UPSs: each serves an equal share of its site's IT load at its output, against a rating of
// rated_kw (else its mean load / 0.45); on line, battery full, runtime 15..40 min at that load.
//
// Meters: every IT role (it_at_ups_output, it_at_pdu_output, it_at_equipment_input, it_total)
// reads the site's PDU sum (no distribution losses are simulated), split evenly among the meters
// of one PUE category; facility_total reads IT x simulate.pue; cooling 75 % of the overhead.
//
// Energy counters are the exact integral of their power, start at a hashed value at the epoch,
// and wrap like the register they are served in (2^16 or 2^32 x scale for integer types).
// simulate.energy_wrap_after / energy_reset_after (device hints) place the counter so that it
// wraps, or restart it from 0 like a rebooted PDU, at that simulated time after the epoch.
//
// Thread-safety: immutable after construction; at() is const and reentrant.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "daemon/config/config.h"

namespace facility::sim {

// What a point measures, as far as the simulator can tell from its name, unit and device kind.
// Names follow the conventions of config/profiles (active_power, energy, voltage_l1, ...).
enum class Quantity {
  kActivePower,
  kApparentPower,
  kReactivePower,
  kEnergy,
  kCurrent,
  kVoltage,
  kPowerFactor,
  kFrequency,
  kSupplyTemp,   // cooling unit supply air
  kSetpoint,     // cooling unit supply setpoint
  kReturnTemp,   // cooling unit return air
  kInletTemp,    // rack sensor front
  kOutletTemp,   // rack sensor rear
  kAmbientTemp,  // any other temperature (outdoor sensor on a meter, PDU ambient probe)
  kHumidity,
  kFan,
  kOn,                 // running / active / status flags: 1
  kAlarm,              // alarm / fault flags: 0
  kLevel,              // a tank or fill level
  kRackUnitsOccupied,  // rack sensor: occupied U-space (u_occupied)
  kRackUnitsTotal,     // rack sensor: U-space of the cabinet (u_total)
  kDewPoint,           // dew point of the air the device measures (rack inlet, cooling return)
  kLoadRatio,          // UPS: output power / its rating (load_ratio, load_ratio_lN)
  kRuntime,            // UPS: battery runtime at the present load
  kCharge,             // UPS: battery state of charge
  kRated,              // a nameplate rating (rated_power, rated_apparent_power)
  kState,              // an enumeration: the code of its healthy state (normal, on, online, ...)
  kZero,               // a quantity that is 0 in normal operation (export energy, battery current)
  kConstant,           // nothing recognised: serves a fixed plausible value for its unit
};

struct PointRole {
  Quantity quantity = Quantity::kConstant;
  int phase = 0;              // 1..3 for an _l1/_l2/_l3 point, 0 for a total or average
  bool line_to_line = false;  // voltage between phases rather than to neutral
};

PointRole classify_point(DeviceKind kind, const modbus::PointSpec& spec);
const char* to_string(Quantity q);

struct CabinetTruth {
  const Site* site = nullptr;
  const Cabinet* cabinet = nullptr;
  double power_w = 0;
  double rated_w = 0;
  std::vector<std::pair<std::string, double>> feeds_w;  // in the cabinet's feed order
};

struct SiteTruth {
  const Site* site = nullptr;
  double it_power_w = 0;  // sum of the site's PDUs (= what its it_total meters read)
  std::optional<double> facility_power_w;  // null when the site has no facility_total meter
  std::optional<double> cooling_power_w;   // null when the site has no cooling meter
  std::optional<double> pue;  // facility / IT; null without a facility meter or at zero IT load
};

struct DeviceTruth {
  const Device* device = nullptr;
  // Point name -> value in the point's unit (not yet rounded to the register type), in profile
  // order.
  std::vector<std::pair<std::string, double>> points;
};

struct Truth {
  double ts = 0;  // simulated unix time, seconds
  std::vector<CabinetTruth> cabinets;
  std::vector<SiteTruth> sites;
  std::vector<DeviceTruth> devices;  // in Config::all_devices() order
};

class SiteModel {
 public:
  // epoch: the simulated unix time at which every energy counter holds its start value.
  SiteModel(std::shared_ptr<const Config> config, std::uint64_t seed, double epoch);
  ~SiteModel();
  SiteModel(const SiteModel&) = delete;
  SiteModel& operator=(const SiteModel&) = delete;

  Truth at(double t) const;

  const Config& config() const { return *config_; }
  double epoch() const { return epoch_; }
  // Problems that don't stop the simulation (a PDU on an unknown feed, an unrecognised point),
  // one line each, for the banner.
  const std::vector<std::string>& warnings() const { return warnings_; }

  struct Impl;  // public only so the implementation's helpers can name it

 private:
  std::shared_ptr<const Config> config_;
  double epoch_;
  std::vector<std::string> warnings_;
  std::unique_ptr<Impl> impl_;
};

// Deterministic 64-bit hash of a seed and some strings (FNV-1a, then a splitmix finaliser).
// Exposed for tests; stable across platforms and runs, unlike std::hash.
std::uint64_t stable_hash(std::uint64_t seed, std::initializer_list<std::string_view> parts);
// Maps a hash to [lo, hi).
double hash_range(std::uint64_t h, double lo, double hi);

}  // namespace facility::sim
