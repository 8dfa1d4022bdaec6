// The facility model: derives cabinet power (per feed and phase, failover headroom, overload),
// site and room power, capacity, occupancy against the build-out plan, cooling headroom, PUE
// (instant and energy windows, ISO/IEC 30134-2 categories) and alert states from the inventory
// and the latest readings. It knows nothing of Modbus, Prometheus or MQTT.
//
// Two layers:
//   * compute_snapshot(config, readings, now): everything derivable from one set of readings,
//     a pure function. Overload, failover and inlet states are the instantaneous levels there,
//     and alerts are empty.
//   * FacilityModel: the same plus what needs memory across cycles: overload / failover / inlet
//     alerts with hysteresis and hold time, energy counters tracked across wraps and resets,
//     rolling energy windows for PUE, and cabinet peaks for stranded power. Time is injected
//     (`now` and the readings' own timestamps), so tests drive it with a synthetic clock.
//
// All values are in base units: watts, joules, amperes, volts, degrees Celsius, seconds, ratios.
// A quantity that cannot be computed from fresh data is nullopt, never zero. docs/metrics.md
// gives every formula.
//
// Thread-safety: compute_snapshot() is reentrant; a FacilitySnapshot is immutable once built and
// shared between sinks through std::shared_ptr<const FacilitySnapshot>. FacilityModel is not
// thread-safe (one model thread calls update()).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "daemon/config/config.h"
#include "daemon/config/units.h"
#include "daemon/readings/readings.h"

namespace facility {

struct PhasePower {
  std::string phase;                // "L1", "L2", "L3"
  std::optional<double> power_w;    // active power of the phase, W
  std::optional<double> current_a;  // A
  std::optional<double> voltage_v;  // V, line to neutral
  // Headroom of this phase if the other feed fails (derated phase capacity - the load the
  // phase would then carry), W. Filled by the model for A+B cabinets.
  std::optional<double> failover_headroom_w{};
  bool estimated = false;  // power_w is current x voltage x power factor
};

struct FeedPower {
  std::string feed;              // "A", "B"
  std::optional<double> power_w;  // nullopt if the feed's PDU is missing or stale
  std::string device;            // the PDU measuring it ("" if none configured)
  bool estimated = false;        // power_w is current x voltage x power factor
  std::vector<PhasePower> phases{};  // per phase, for PDUs that report phases
  // If the other feed(s) fail, this feed carries the whole cabinet: derated capacity of this
  // feed - cabinet total, W. nullopt for single-feed cabinets or when the total is unknown.
  std::optional<double> failover_headroom_w{};
  std::optional<double> current_a{};  // single-phase PDUs: inlet current, A
  std::optional<double> voltage_v{};  // single-phase PDUs: inlet voltage, V
  std::optional<double> energy_j{};   // the PDU's energy counter as read, J
  // Three-phase PDUs: (max |phase - mean| / mean) of the phase currents (powers if no currents).
  std::optional<double> phase_imbalance{};
  // PDUs that report outlet states: true if any outlet is switched on.
  std::optional<bool> outlets_on{};
  bool fresh = false;  // the PDU's data is fresh (even if it has no usable power value)
};

// Overload state of a cabinet (facility_cabinet_overload_state): 0 ok, 1 warning, 2 critical.
// Also used as the level of the inlet-temperature state.
enum class OverloadState { kOk = 0, kWarning = 1, kCritical = 2 };
const char* to_string(OverloadState s);  // "ok", "warning", "critical"

// The current state of one alert condition the model evaluates (with hysteresis and hold time),
// e.g. kind "cabinet_overload", subject "2FA-A02-06". Published as retained MQTT alert topics
// (<prefix>/<site>/alert/<kind>/<subject>) and usable by any other sink. An alert that cleared
// stays in the list (raised = false) until the model forgets it, so sinks can publish "cleared".
//
// Kinds (docs/metrics.md, "Alerts"): cabinet_overload (subject: cabinet; warning/critical),
// cabinet_failover_risk (cabinet; warning), inlet_temperature (cabinet; warning outside the
// ASHRAE recommended range, critical outside the allowable range), cooling_redundancy (room;
// warning when N+1 headroom < 0, critical when the running units cannot carry the load),
// ups_on_battery (ups device; critical), ups_on_bypass (warning), ups_overload (load ratio;
// warning/critical), ups_runtime_low (battery runtime; warning/critical).
struct AlertState {
  std::string site;
  std::string kind;      // "cabinet_overload", "cabinet_failover_risk", "inlet_temperature", ...
  std::string subject;   // the entity: cabinet id, room id, site id
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
  bool powered = false;               // outlet on, or power above the powered threshold
  Quality quality = Quality::kGood;   // kStale if any feed's PDU is stale or missing
  std::optional<double> inlet_c;      // from the cabinet's rack sensor(s): hottest inlet
  std::optional<double> humidity_ratio;
  bool estimated = false;  // some feed's power is estimated from current (see FeedPower)
  // Minimum over feeds of FeedPower::failover_headroom_w (the feed level only).
  std::optional<double> failover_headroom_w;
  // The worst failover case over feeds and phases, by headroom relative to its capacity: a
  // feed's headroom / (d x cap), a phase's / (d x cap / 3). Negative = failover risk; this is
  // what the cabinet_failover_risk alert and the history use (a three-phase GPU cabinet typically
  // fails on one phase under a healthy total).
  std::optional<double> failover_margin{};
  std::optional<double> failover_worst_w{};  // that feed's or phase's headroom, W
  std::string failover_worst{};              // which: "feed A", "phase L1"
  OverloadState overload = OverloadState::kOk;
  std::optional<double> phase_imbalance;  // (max |phase - mean|) / mean, three-phase PDUs

  double feed_coverage = 0;    // feeds whose power is known / feeds
  bool powered_known = false;  // `powered` is decided (else a stale feed may hide the load)
  bool failover_risk = false;  // the cabinet_failover_risk state (FacilityModel: with hold time)
  std::optional<double> inlet_min_c{};             // coldest inlet of its rack sensors
  OverloadState inlet_state = OverloadState::kOk;  // vs the ASHRAE ranges (see AlertState)
  std::optional<double> u_occupied{}, u_total{};   // rack units, where rack sensors report them
  std::optional<double> peak_w{};  // highest power over the peak window (FacilityModel), else now
};

struct RackSensorSnapshot {
  const Device* device = nullptr;
  std::string cabinet;
  std::optional<double> inlet_c, outlet_c, humidity_ratio;
  std::optional<double> dew_point_c{};  // from inlet temperature and humidity (Magnus formula)
};

struct CoolingSnapshot {
  const Device* device = nullptr;
  std::optional<double> supply_c, return_c, power_w, fan_ratio;
  std::optional<bool> running;
  std::optional<double> delta_t_c{};  // return - supply
};

// One phase of a UPS output.
struct UpsPhase {
  std::string phase;  // "L1", "L2", "L3"
  std::optional<double> power_w;
  std::optional<double> load_ratio;
};

// A UPS (kind ups): output, battery and source, from its fresh reading (all unset when stale).
// State names come from the profile's enumerations (docs/config.md, "Point names"); the alert
// states are the instantaneous levels in compute_snapshot and held ones in FacilityModel.
struct UpsSnapshot {
  const Device* device = nullptr;
  bool fresh = false;
  std::optional<double> power_w;  // output active power: active_power, else the phases' sum
  std::vector<UpsPhase> phases{};
  // Output load against the rating: the highest phase's load_ratio_lN, else load_ratio, else
  // power / the device's rated_kw (or the profile's rated_power).
  std::optional<double> load_ratio;
  std::optional<double> runtime_s, charge_ratio;
  std::string output_source;  // the output_source state name ("normal", "battery", ...); "" unknown
  std::string battery_state;  // the battery_state name ("normal", "low", ...); "" unknown
  // On battery / on bypass: the flag points, else from output_source; nullopt when unknown.
  std::optional<bool> on_battery, on_bypass;
  std::optional<bool> overload_flag;  // the UPS's own output_overload flag
  OverloadState overload = OverloadState::kOk;
  OverloadState runtime_state = OverloadState::kOk;
  bool on_battery_alert = false, on_bypass_alert = false;  // held (FacilityModel)
};

// Cabinet counts of a site or a room. Rack units are summed over the cabinets that report them.
struct Occupancy {
  int total = 0;  // cabinets in the inventory (delivered)
  int powered = 0, sold = 0, internal = 0, free = 0;
  int measured = 0;       // cabinets whose power is known
  int powered_known = 0;  // cabinets whose powered state is known
  double u_occupied = 0, u_total = 0;
  int u_reporting = 0;                             // cabinets whose U-space is reported
  std::optional<double> ratio_powered() const;     // powered / total, when every state is known
  std::optional<double> ratio_sold() const;        // sold / total
  // u_occupied / u_total over the cabinets that report U-space, as soon as any does (the
  // coverage "rack_units" says how many).
  std::optional<double> ratio_rack_units() const;
};

// Power capacity of a site or room, W. Measured values are sums over cabinets, present only when
// every cabinet's power is known.
struct CapacitySnapshot {
  double rated_w = 0;
  double reserve_w = 0;  // rated x capacity_reserve
  std::optional<double> measured_w, headroom_w, headroom_to_reserve_w;
  // Sum over powered or sold cabinets of (rated - peak); present when every such cabinet has a
  // peak.
  std::optional<double> stranded_w;
};

// Cooling capacity of a room (or, summed, a site) against its IT heat load. Capacities come
// from the cooling units' `capacity_kw`; units without one are not counted.
struct CoolingCapacity {
  int units = 0, units_running = 0, units_known = 0;
  double installed_w = 0;
  std::optional<double> running_w;            // capacity of the running units (all states known)
  std::optional<double> n_plus_1_w;           // running - the largest running unit
  std::optional<double> heat_load_w;          // IT power of the room's cabinets (all measured)
  std::optional<double> headroom_w;           // running - heat load
  std::optional<double> headroom_n_plus_1_w;  // N+1 capacity - heat load
};

struct RoomSnapshot {
  const Room* room = nullptr;
  Occupancy occupancy;
  CapacitySnapshot capacity;
  CoolingCapacity cooling;
  OverloadState cooling_state = OverloadState::kOk;  // cooling_redundancy alert level
};

// PUE of one category over one window ("instant" = from power).
struct PueValue {
  int category = 1;           // ISO/IEC 30134-2: 1 UPS output, 2 PDU output, 3 IT equipment input
  std::string window;         // "instant", "15m", "1h", "24h", "30d" (as configured)
  std::optional<double> pue;  // facility / IT; nullopt when withheld
  std::optional<double> partial_cooling;  // (IT + cooling) / IT, where a cooling meter exists
  std::optional<double> it_coverage, facility_coverage, cooling_coverage;  // nullopt: no history
};

// One point of an energy role's 10 s grid: the energy counted in windows and the device-seconds
// lost, both cumulative. The history stores them so the windows survive a restart.
struct EnergyGridPoint {
  TimePoint t{};
  double covered_j = 0;
  double lost_s = 0;
  double down_s = 0;  // of lost_s: while the daemon was not running
};

// Energy of one meter role (or "pdu_sum": the site's PDUs when it has no IT meter), tracked by
// FacilityModel across counter wraps and resets.
struct EnergySnapshot {
  std::string role;  // facility_total, it_at_ups_output, it_at_pdu_output, ..., pdu_sum
  int devices = 0;
  // Energy since the model started, J: monotonic. nullopt when a device of the role is missing
  // at the latest grid point (so a stale meter never freezes or lowers it silently).
  std::optional<double> total_j;
  double history_s = 0;  // how far back the in-memory history reaches
  // Per configured window: coverage (fraction of device-time whose energy is known); nullopt
  // when the history does not reach back that far.
  std::vector<std::pair<std::string, std::optional<double>>> window_coverage;
  // Per configured window, in the same order: the measured energy of the window, J (only the
  // device-time counted as covered above); nullopt likewise.
  std::vector<std::pair<std::string, std::optional<double>>> window_energy_j{};
  // The role's devices (ids sorted, joined with ','): stored points are restored only into a
  // series of the same devices.
  std::string members;
  // Grid points finalised in this cycle (usually none or one), for the history.
  std::vector<EnergyGridPoint> new_points{};
};

struct DeviceSnapshot {
  const Device* device = nullptr;
  // Up or partial: the last poll succeeded, the data is fresh and gave at least one value.
  bool up = false;
  DeviceState state = DeviceState::kDown;
  Quality quality = Quality::kError;
  TimePoint last_success{};
  std::string last_error;
  std::shared_ptr<const DeviceReading> reading;  // null when stale: stale values are not shown
  // Energy-counter events seen by FacilityModel (devices whose counter it tracks).
  bool counter_tracked = false;
  std::uint64_t counter_wraps = 0, counter_resets = 0, counter_rejected = 0;
};

struct SiteSnapshot {
  const Site* site = nullptr;
  std::optional<double> it_power_w;        // primary IT term: lowest-category meter(s), else PDUs
  std::string it_power_source;             // "meter" | "pdu_sum"
  std::optional<double> facility_power_w;  // facility_total meter(s)
  std::optional<double> cooling_power_w;   // cooling meter(s)
  std::optional<double> pue;               // instant PUE of the primary IT term
  double it_coverage = 0;                  // fraction of the IT term's sources that are fresh
  double facility_coverage = 0;
  double rated_w = 0;  // sum of rated power of all cabinets
  int cabinets_total = 0, cabinets_powered = 0, cabinets_sold = 0, cabinets_internal = 0,
      cabinets_free = 0;
  int cabinets_measured = 0;                // cabinets whose power is known (fresh)
  std::optional<double> occupancy_powered;  // powered / total
  std::optional<double> occupancy_sold;     // sold / total
  std::vector<CabinetSnapshot> cabinets;
  std::vector<RackSensorSnapshot> rack_sensors;
  std::vector<CoolingSnapshot> cooling;
  std::vector<UpsSnapshot> ups;

  int pue_category = 1;  // category of the primary IT term
  Occupancy occupancy;   // same counts as the flat fields above, plus rack units
  std::optional<double> occupancy_planned{};  // powered / planned_cabinets (机柜利用率)
  std::optional<int> plan_powered{};          // build-out plan in effect at `now`
  std::optional<double> plan_attainment{};    // powered / plan_powered
  CapacitySnapshot capacity;
  // Sum of the rooms' units and capacities. The headrooms (headroom_w, n_plus_1_w,
  // headroom_n_plus_1_w) are per room only and stay unset here: capacity in one room does not
  // cool another.
  CoolingCapacity cooling_capacity;
  std::vector<RoomSnapshot> rooms;
  std::vector<PueValue> pue_values;  // every category with an IT source x (instant + windows)
  std::vector<EnergySnapshot> energy;
  // Coverage of each aggregate (facility_site_coverage_ratio{quantity}).
  std::vector<std::pair<std::string, double>> coverage;
};

struct FacilitySnapshot {
  TimePoint computed_at{};
  std::shared_ptr<const Config> config;  // keeps the pointers above alive
  std::vector<SiteSnapshot> sites;
  std::vector<DeviceSnapshot> devices;
  std::vector<AlertState> alerts;  // every alert currently raised, and recently cleared ones
  double model_uptime_s = 0;       // how long FacilityModel has been accumulating history
};

// Window label: 15m, 1h, 24h, 30d (days from 2 days up, hours from 1 hour, then m, s).
std::string window_label(std::chrono::milliseconds w);

// Stateless part of the model: everything derivable from one set of readings.
std::shared_ptr<const FacilitySnapshot> compute_snapshot(
    std::shared_ptr<const Config> config,
    const std::unordered_map<std::string, ReadingStore::Entry>& readings, TimePoint now);

// The model with its memory across cycles (hysteresis, hold times, energy windows, counter
// wrap/reset tracking, peaks). update() is called by one thread (the daemon's model loop) once
// per model interval, with non-decreasing `now`.
// Thread-safety: not thread-safe; the snapshots it returns are immutable and shareable.
class FacilityModel {
 public:
  explicit FacilityModel(std::shared_ptr<const Config> config);
  ~FacilityModel();
  FacilityModel(const FacilityModel&) = delete;
  FacilityModel& operator=(const FacilityModel&) = delete;

  std::shared_ptr<const FacilitySnapshot> update(
      const std::unordered_map<std::string, ReadingStore::Entry>& readings, TimePoint now);

  // The energy series, for restoring them from the history before the first update.
  struct EnergySeriesKey {
    std::string site, role;
    std::string members;               // as EnergySnapshot::members
    std::chrono::milliseconds longest;  // the site's longest PUE window
  };
  std::vector<EnergySeriesKey> energy_series() const;
  // Seeds one series with the stored grid points of an earlier run (oldest first), before the
  // first update: the energy windows go on across a restart or reload, and the steps in
  // between count as lost, so each window's coverage says how much of it was measured.
  // Returns the number of points restored (0: no such series, already started, or nothing
  // within its longest window).
  std::size_t restore_energy(const std::string& site, const std::string& role,
                             const std::vector<EnergyGridPoint>& points, TimePoint now);

  struct State;  // state.cpp

 private:
  std::shared_ptr<const Config> config_;
  std::unique_ptr<State> state_;
};

}  // namespace facility
