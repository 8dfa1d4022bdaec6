// Facility-model settings of the configuration: derating, nominal voltage and power factor for
// current-only PDUs, overload / failover / inlet-temperature alert thresholds with hysteresis and
// hold time, PUE coverage bound and energy windows, capacity reserve, cabinet classes and the
// build-out plan. Parsed by daemon/config/facility.cpp; see docs/config.md ("facility").
//
// Settings resolve from the general to the specific: built-in defaults < top-level `facility` <
// a site's `facility` < a cabinet class (only `derating` and `overload`) < the cabinet or device.
// Resolution happens at load time, so the model reads final values from each Site, Cabinet and
// Device and never merges anything itself.
//
// Thread-safety: plain data, immutable once the Config is loaded.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace facility {

// Cabinet overload: state warning at >= warning x rated power, critical at >= critical x rated.
// A level is raised when the condition has held for `hold`, and cleared when utilisation has
// stayed below (threshold - hysteresis) for `hold`.
struct OverloadSettings {
  double warning = 0.80;
  double critical = 0.95;
  double hysteresis = 0.05;  // ratio of rated power
  std::chrono::milliseconds hold{60000};
};

// A partial OverloadSettings (a cabinet class sets only what it changes).
struct OverloadOverride {
  std::optional<double> warning, critical, hysteresis;
  std::optional<std::chrono::milliseconds> hold;
  OverloadSettings apply(OverloadSettings base) const;
};

// Failover risk: raised when a feed's failover headroom has been negative for `hold`; cleared
// when it has been >= hysteresis x the feed's derated capacity for `hold`.
struct FailoverSettings {
  double hysteresis = 0.02;
  std::chrono::milliseconds hold{60000};
};

// Rack inlet temperature against an ASHRAE thermal class (TC 9.9, 2021): warning outside the
// recommended range, critical outside the class's allowable range.
struct InletSettings {
  std::string ashrae_class = "A1";
  double recommended_low_c = 18, recommended_high_c = 27;
  double allowable_low_c = 15, allowable_high_c = 32;
  double hysteresis_c = 0.5;
  std::chrono::milliseconds hold{60000};
};

// UPS alerts (devices of kind ups): overload of the output by load ratio (the highest phase's),
// low battery runtime, output on battery, output on bypass. Like the cabinet alerts, a state is
// raised once its condition has held for its hold time and cleared once the clear condition
// has held as long; levels clear with hysteresis.
struct UpsAlertSettings {
  OverloadSettings overload;  // load ratio: warning 0.80, critical 0.95, hysteresis 0.05, 60 s
  std::chrono::milliseconds runtime_warning{std::chrono::minutes(10)};
  std::chrono::milliseconds runtime_critical{std::chrono::minutes(5)};
  std::chrono::milliseconds runtime_hysteresis{std::chrono::minutes(2)};
  std::chrono::milliseconds runtime_hold{std::chrono::seconds(30)};
  std::chrono::milliseconds on_battery_hold{std::chrono::seconds(10)};
  std::chrono::milliseconds on_bypass_hold{std::chrono::seconds(30)};
};

struct FacilitySettings {
  // Continuous-load derating of a feed's circuit (breaker) capacity: the load a feed may carry
  // continuously, e.g. 80 % of a 20 A breaker.
  double derating = 0.8;
  // For PDUs that report current but not active power: P = I x V x PF, where V is the PDU's
  // own voltage reading if it has one, else this; PF likewise.
  double nominal_voltage_v = 220;
  double nominal_power_factor = 0.95;
  OverloadSettings overload;
  FailoverSettings failover;
  InletSettings inlet;
  UpsAlertSettings ups;
  // PUE (and partial PUE) is withheld when either term covers less than this fraction.
  double pue_min_coverage = 1.0;
  // Energy-based PUE windows; each a multiple of 10 s, windows above 25 h a multiple of 5 min,
  // at most 31 days.
  std::vector<std::chrono::milliseconds> pue_windows{std::chrono::minutes(15),
                                                     std::chrono::hours(1), std::chrono::hours(24),
                                                     std::chrono::hours(24 * 30)};
  // Capacity kept in reserve, as a fraction of rated power (headroom "to reserve").
  double capacity_reserve = 0.10;
  // Capacity is also reported in cabinets of this size (4.4 kW = one 20 A x 220 V cabinet).
  double cabinet_equivalent_w = 4400;
  // Stranded power uses each cabinet's peak over this window (or since start, if shorter).
  std::chrono::milliseconds peak_window{std::chrono::hours(24)};
  // A cleared alert stays in the snapshot (raised = false) this long, then is forgotten.
  std::chrono::milliseconds alert_retention{std::chrono::hours(1)};
  // The site's PUE target (facility_site_pue_target_ratio; the SitePUEDegraded alert compares
  // the 24-hour energy PUE with it). nullopt = no target.
  std::optional<double> pue_target;
};

// Named cabinet type: rating, feeds, derating and overload thresholds shared by many cabinets.
struct CabinetClass {
  std::string id;
  std::optional<double> rated_w;
  std::optional<double> breaker_amps, breaker_volts;
  std::optional<int> breaker_phases;
  std::optional<std::vector<std::string>> feeds;
  std::optional<double> derating;
  OverloadOverride overload;
};

// One row of a site's build-out plan: from `date` on, `powered` cabinets are planned to be
// powered (a step function; before the first row the plan is 0).
struct PlanStep {
  std::chrono::system_clock::time_point date{};  // 00:00 UTC of the day
  std::string date_text;                         // as written, YYYY-MM-DD
  int powered = 0;
};

// Planned powered cabinets at `t` (0 before the first step). nullopt for an empty plan.
std::optional<int> plan_at(const std::vector<PlanStep>& plan,
                           std::chrono::system_clock::time_point t);

}  // namespace facility
