#include "daemon/config/units.h"

#include <algorithm>
#include <iterator>

namespace facility {
namespace {

struct UnitInfo {
  const char* name;
  double factor;  // multiply to get the base unit
};
constexpr UnitInfo kUnits[] = {
    {"W", 1.0},     {"kW", 1e3},  {"Wh", 3600.0}, {"kWh", 3.6e6},   {"MWh", 3.6e9},
    {"A", 1.0},     {"V", 1.0},   {"Hz", 1.0},    {"celsius", 1.0}, {"percent", 0.01},
    {"ratio", 1.0}, {"rpm", 1.0}, {"none", 1.0},
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

}  // namespace facility
