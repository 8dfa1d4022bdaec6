// A cooling unit (CRAH, CRAC, in-row) of a room: supply and return air, power, fan speed,
// running state, and its rated capacity for the room's N+1 headroom.
#include "daemon/config/device_kinds.h"

namespace facility::kinds {
namespace {

constexpr KindKey kKeys[] = {
    {"capacity_kw"},
};

}  // namespace

extern const DeviceKindInfo kCooling{
    .kind = DeviceKind::kCooling,
    .name = "cooling",
    .noun = "cooling unit",
    .contributes = Contribution::kRoomCooling,
    .keys = kKeys,
    .room_required = true,
};

}  // namespace facility::kinds
