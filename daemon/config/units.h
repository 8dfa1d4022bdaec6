// The units a profile point may be in, and their conversion to base units: one table
// (units.cpp) that the profile loader validates against and the model converts with.
//
// Thread-safety: pure functions.
#pragma once

#include <string>

namespace facility {

// Converts a value in one of the profile units (W, kW, Wh, kWh, MWh, A, V, Hz, celsius,
// percent, ratio, rpm, s, min, h, VA, kVA, var, kvar, none) to base units (W, J, A, V, Hz, degC,
// ratio, rpm, s, VA, var, 1).
double to_base_unit(double v, const std::string& unit);
bool is_known_unit(const std::string& unit);
// What a unit measures: "power", "energy", "current", "voltage", "frequency", "temperature",
// "ratio" (percent and ratio), "speed" (rpm), "time", "apparent_power", "reactive_power",
// "none"; "" for an unknown unit. Two units of one dimension convert into each other (derived
// points add only values of one dimension).
const char* unit_dimension(const std::string& unit);
// Every unit, comma-separated, for messages ("W, kW, Wh, ...").
const char* known_units();

}  // namespace facility
