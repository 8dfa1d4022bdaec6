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

struct FeedPower {
  std::string feed;              // "A", "B"
  std::optional<double> power_w;  // nullopt if the feed's PDU is missing or stale
  std::string device;            // the PDU measuring it ("" if none configured)
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
