#include "daemon/config/units.h"

#include <algorithm>
#include <iterator>

namespace facility {
namespace {

struct UnitInfo {
  const char* name;
  double factor;  // multiply to get the base unit
  const char* dimension;
};
constexpr UnitInfo kUnits[] = {
    {"W", 1.0, "power"},
    {"kW", 1e3, "power"},
    {"Wh", 3600.0, "energy"},
    {"kWh", 3.6e6, "energy"},
    {"MWh", 3.6e9, "energy"},
    {"A", 1.0, "current"},
    {"V", 1.0, "voltage"},
    {"Hz", 1.0, "frequency"},
    {"celsius", 1.0, "temperature"},
    {"percent", 0.01, "ratio"},
    {"ratio", 1.0, "ratio"},
    {"rpm", 1.0, "speed"},
    // UPS runtimes and delays, and the apparent / reactive power of UPSs, PDUs and meters.
    {"s", 1.0, "time"},
    {"min", 60.0, "time"},
    {"h", 3600.0, "time"},
    {"VA", 1.0, "apparent_power"},
    {"kVA", 1e3, "apparent_power"},
    {"var", 1.0, "reactive_power"},
    {"kvar", 1e3, "reactive_power"},
    {"none", 1.0, "none"},
};

}  // namespace

bool is_known_unit(const std::string& unit) {
  return std::any_of(std::begin(kUnits), std::end(kUnits),
                     [&](const UnitInfo& u) { return unit == u.name; });
}

double to_base_unit(double v, const std::string& unit) {
  for (const auto& u : kUnits) {
    if (unit == u.name) return v * u.factor;
  }
  return v;
}

const char* unit_dimension(const std::string& unit) {
  for (const auto& u : kUnits) {
    if (unit == u.name) return u.dimension;
  }
  return "";
}

const char* known_units() {
  return "W, kW, Wh, kWh, MWh, A, V, Hz, celsius, percent, ratio, rpm, s, min, h, VA, kVA, var, "
         "kvar, none";
}

}  // namespace facility
