// A rack sensor of a cabinet: inlet (and outlet) air temperature, humidity, occupied rack units.
#include "daemon/config/device_kinds.h"
#include "daemon/config/points.h"

namespace facility::kinds {
namespace {

constexpr KindKey kKeys[] = {
    {"cabinet", true},
};
constexpr const char* kInlet[] = {points::kInletTemperature};
constexpr std::span<const char* const> kRequired[] = {kInlet};

}  // namespace

extern const DeviceKindInfo kRackSensor{
    .kind = DeviceKind::kRackSensor,
    .name = "rack_sensor",
    .noun = "rack_sensor",
    .contributes = Contribution::kCabinetSensor,
    .keys = kKeys,
    .room_required = false,
    .required_points = kRequired,
    .missing_points = "\"inlet_temperature\"",
};

}  // namespace facility::kinds
