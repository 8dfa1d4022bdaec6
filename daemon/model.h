// The facility model: a pure function of (inventory, latest readings, now) that derives cabinet
// power, site power, PUE and occupancy. It knows nothing of Modbus, Prometheus or MQTT.
//
// All values are in base units: watts, joules, degrees Celsius, ratios 0..1.
// A quantity that cannot be computed from fresh data is nullopt, never zero.
//
// Thread-safety: compute_snapshot() is reentrant; a FacilitySnapshot is immutable once built and
// shared between sinks through std::shared_ptr<const FacilitySnapshot>.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemon/config.h"
#include "daemon/readings.h"

namespace facility {

struct PhasePower {
  std::string phase;                // "L1", "L2", "L3"
  std::optional<double> power_w;    // active power of the phase, W
  std::optional<double> current_a;  // A
  std::optional<double> voltage_v;  // V
  // Headroom of this phase if the other feed fails (derated phase capacity - the load the
  // phase would then carry), W. Filled by the model for A+B cabinets.
  std::optional<double> failover_headroom_w;
};

struct FeedPower {
  std::string feed;              // "A", "B"
  std::optional<double> power_w;  // nullopt if the feed's PDU is missing or stale
  std::string device;            // the PDU measuring it ("" if none configured)
  bool estimated = false;        // power_w is current x nominal voltage x power factor
  std::vector<PhasePower> phases = {};  // per phase, for PDUs that report phases
  // If the other feed(s) fail, this feed carries the whole cabinet: derated capacity of this
  // feed - cabinet total, W. nullopt for single-feed cabinets or when the total is unknown.
  std::optional<double> failover_headroom_w = {};
};

// Overload state of a cabinet (facility_cabinet_overload_state): 0 ok, 1 warning, 2 critical.
enum class OverloadState { kOk = 0, kWarning = 1, kCritical = 2 };
const char* to_string(OverloadState s);  // "ok", "warning", "critical"

// The current state of one alert condition the model evaluates (with hysteresis and hold time),
// e.g. kind "cabinet_overload", subject "2FA-A02-06". Published as retained MQTT alert topics
// (<prefix>/<site>/alert/<kind>/<subject>) and usable by any other sink. An alert that cleared
// stays in the list (raised = false) until the model forgets it, so sinks can publish "cleared".
struct AlertState {
  std::string site;
  std::string kind;      // "cabinet_overload", "cabinet_failover_risk", "inlet_temperature", ...
  std::string subject;   // the entity: cabinet id, device id, site id
  std::string severity;  // "warning" | "critical" (the last raised severity when cleared)
  bool raised = false;
  std::optional<double> value;      // the value that raised / cleared it, in `unit`
  std::optional<double> threshold;  // the threshold crossed, in `unit`
  std::string unit;                 // "ratio", "W", "celsius", ...
  TimePoint since{};                // when it entered its current state (raised or cleared)
  std::string message;              // one human-readable line
};

struct CabinetSnapshot {
  const Cabinet* cabinet = nullptr;  // points into the Config, which outlives the snapshot
  std::vector<FeedPower> feeds;
  std::optional<double> power_w;      // sum of feeds; nullopt unless every feed is measured fresh
  std::optional<double> utilization;  // power / rated
  bool powered = false;               // power above the powered threshold
  Quality quality = Quality::kGood;   // kStale if any feed's PDU is stale or missing
  std::optional<double> inlet_c;      // from the cabinet's rack sensor(s): hottest inlet
  std::optional<double> humidity_ratio;
  bool estimated = false;  // some feed's power is estimated from current (see FeedPower)
  // Minimum over feeds of FeedPower::failover_headroom_w; negative = failover risk.
  std::optional<double> failover_headroom_w;
  OverloadState overload = OverloadState::kOk;
  std::optional<double> phase_imbalance;  // (max |phase - mean|) / mean, three-phase PDUs
};

struct RackSensorSnapshot {
  const Device* device = nullptr;
  std::string cabinet;
  std::optional<double> inlet_c, outlet_c, humidity_ratio;
};

struct CoolingSnapshot {
  const Device* device = nullptr;
  std::optional<double> supply_c, return_c, power_w, fan_ratio;
  std::optional<bool> running;
};

struct DeviceSnapshot {
  const Device* device = nullptr;
  bool up = false;  // last poll succeeded and data is fresh
  Quality quality = Quality::kError;
  TimePoint last_success{};
  std::string last_error;
  std::shared_ptr<const DeviceReading> reading;  // null when stale: stale values are not shown
};

struct SiteSnapshot {
  const Site* site = nullptr;
  std::optional<double> it_power_w;        // it_total meter, else sum of cabinets (if all fresh)
  std::string it_power_source;             // "meter" | "pdu_sum"
  std::optional<double> facility_power_w;  // facility_total meter(s)
  std::optional<double> cooling_power_w;   // cooling meter(s)
  std::optional<double> pue;               // facility / IT, only when both are fully covered
  double it_coverage = 0;                  // fraction of the IT term's sources that are fresh
  double facility_coverage = 0;
  double rated_w = 0;  // sum of rated power of all cabinets
  int cabinets_total = 0, cabinets_powered = 0, cabinets_sold = 0, cabinets_internal = 0,
      cabinets_free = 0;
  int cabinets_measured = 0;  // cabinets whose power is known (fresh)
  std::optional<double> occupancy_powered;  // powered / total
  std::optional<double> occupancy_sold;     // sold / total
  std::vector<CabinetSnapshot> cabinets;
  std::vector<RackSensorSnapshot> rack_sensors;
  std::vector<CoolingSnapshot> cooling;
};

struct FacilitySnapshot {
  TimePoint computed_at{};
  std::shared_ptr<const Config> config;  // keeps the pointers above alive
  std::vector<SiteSnapshot> sites;
  std::vector<DeviceSnapshot> devices;
  std::vector<AlertState> alerts;  // every alert currently raised, and recently cleared ones
};

// Converts a value in one of the profile units (W, kW, Wh, kWh, MWh, A, V, Hz, celsius,
// percent, ratio, rpm, none) to base units (W, J, A, V, Hz, degC, ratio, rpm, 1).
double to_base_unit(double v, const std::string& unit);
bool is_known_unit(const std::string& unit);

// The model with its memory across cycles (hysteresis, energy windows). update() is called by
// one thread (the daemon's model loop) once per model interval.
// Thread-safety: not thread-safe; the snapshots it returns are immutable and shareable.
class FacilityModel {
 public:
  explicit FacilityModel(std::shared_ptr<const Config> config) : config_(std::move(config)) {}
  std::shared_ptr<const FacilitySnapshot> update(
      const std::unordered_map<std::string, ReadingStore::Entry>& readings, TimePoint now);

 private:
  std::shared_ptr<const Config> config_;
};

// Stateless part of the model: everything derivable from one set of readings.
std::shared_ptr<const FacilitySnapshot> compute_snapshot(
    std::shared_ptr<const Config> config,
    const std::unordered_map<std::string, ReadingStore::Entry>& readings, TimePoint now);

}  // namespace facility
