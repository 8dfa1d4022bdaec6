// An energy meter measures site power in one role: IT power at a PUE category's point
// (it_at_*), the whole facility, cooling, or other loads (docs/config.md, "role").
#include "daemon/config/device_kinds.h"
#include "daemon/config/points.h"

namespace facility::kinds {
namespace {

constexpr KindKey kKeys[] = {
    {"role", true,
     "facility_total, it_at_ups_output, it_at_pdu_output, it_at_equipment_input, it_total, "
     "cooling, other"},
};
constexpr const char* kPower[] = {points::kActivePower};
constexpr std::span<const char* const> kRequired[] = {kPower};

}  // namespace

extern const DeviceKindInfo kMeter{
    .kind = DeviceKind::kMeter,
    .name = "meter",
    .noun = "meter",
    .contributes = Contribution::kSiteMeter,
    .keys = kKeys,
    .room_required = false,
    .required_points = kRequired,
    .missing_points = "\"active_power\"",
};

}  // namespace facility::kinds
