// The vocabulary of point names: the names a profile gives the points that facilityd
// understands (config/profiles/*.yaml, docs/config.md "Profiles"). The loader checks a device
// kind's required points with them, the model reads readings with them and the simulator
// generates values for them; a profile may have other points too (they are published on MQTT
// as read, and the model ignores them).
//
// Thread-safety: constants.
#pragma once

#include <string>

namespace facility::points {

// Electrical (PDUs, meters, cooling units).
inline constexpr const char* kActivePower = "active_power";  // W; per phase: active_power_l1..l3
inline constexpr const char* kCurrent = "current";           // A; per phase: current_l1..l3
inline constexpr const char* kVoltage = "voltage";           // V; per phase: voltage_l1..l3
inline constexpr const char* kPowerFactor = "power_factor";
inline constexpr const char* kEnergy = "energy";  // an energy counter (Wh, kWh, MWh)
// PDUs with switched outlets: a count of outlets on, or outlet_<N>_on per outlet.
inline constexpr const char* kOutletsOn = "outlets_on";

// Rack sensors.
inline constexpr const char* kInletTemperature = "inlet_temperature";
inline constexpr const char* kOutletTemperature = "outlet_temperature";
inline constexpr const char* kHumidity = "humidity";
inline constexpr const char* kUOccupied = "u_occupied";  // rack units occupied
inline constexpr const char* kUTotal = "u_total";

// Cooling units.
inline constexpr const char* kSupplyTemperature = "supply_temperature";
inline constexpr const char* kReturnTemperature = "return_temperature";
inline constexpr const char* kFanSpeed = "fan_speed";
inline constexpr const char* kRunning = "running";

// UPSs (kind ups). Output power is kActivePower (per phase active_power_l1..l3).
inline constexpr const char* kLoadRatio = "load_ratio";  // per phase: load_ratio_l1..l3
inline constexpr const char* kRatedPower = "rated_power";
inline constexpr const char* kBatteryRuntime = "battery_runtime";  // a time (s, min, h)
inline constexpr const char* kBatteryCharge = "battery_charge";    // percent or ratio
// Enumerations: the model reads the state names (docs/config.md, "Point names"), not the codes.
inline constexpr const char* kBatteryState = "battery_state";      // normal, low, depleted, ...
inline constexpr const char* kOutputSource = "output_source";      // normal, battery, bypass, ...
inline constexpr const char* kOnBattery = "on_battery";            // 1 while on battery
inline constexpr const char* kOnBypass = "on_bypass";              // 1 while on (any) bypass
inline constexpr const char* kOutputOverload = "output_overload";  // the UPS's own flag

// Other names the simulator gives a value (generic profiles).
inline constexpr const char* kAmbientTemperature = "ambient_temperature";

// The per-phase name of a point: phase_point(kCurrent, 2) is "current_l2" (phase 1..3).
inline std::string phase_point(const char* point, int phase) {
  return std::string(point) + "_l" + char('0' + phase);
}

}  // namespace facility::points
