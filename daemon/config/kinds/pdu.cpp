// A PDU measures one feed of a cabinet: its active power (total or per phase), or the current
// to estimate it from (current x voltage x power factor; docs/metrics.md).
#include "daemon/config/device_kinds.h"
#include "daemon/config/points.h"

namespace facility::kinds {
namespace {

constexpr KindKey kKeys[] = {
    {"cabinet", true},
    {"feed", true, "which of the cabinet's feeds it measures"},
    {"nominal_voltage_v"},
    {"nominal_power_factor"},
};
constexpr const char* kPower[] = {points::kActivePower};
constexpr const char* kPhasePower[] = {"active_power_l1", "active_power_l2", "active_power_l3"};
constexpr const char* kCurrent[] = {points::kCurrent};
constexpr const char* kPhaseCurrent[] = {"current_l1", "current_l2", "current_l3"};
constexpr std::span<const char* const> kRequired[] = {kPower, kPhasePower, kCurrent, kPhaseCurrent};

}  // namespace

extern const DeviceKindInfo kPdu{
    .kind = DeviceKind::kPdu,
    .name = "pdu",
    .noun = "pdu",
    .contributes = Contribution::kCabinetFeed,
    .keys = kKeys,
    .room_required = false,
    .required_points = kRequired,
    .missing_points = "\"active_power\" (or active_power_l1..l3, current, or current_l1..l3)",
};

}  // namespace facility::kinds
