// The units a profile point may be in, and their conversion to base units: one table
// (units.cpp) that the profile loader validates against and the model converts with.
//
// Thread-safety: pure functions.
#pragma once

#include <string>

namespace facility {

// Converts a value in one of the profile units (W, kW, Wh, kWh, MWh, A, V, Hz, celsius,
// percent, ratio, rpm, none) to base units (W, J, A, V, Hz, degC, ratio, rpm, 1).
double to_base_unit(double v, const std::string& unit);
bool is_known_unit(const std::string& unit);

}  // namespace facility
