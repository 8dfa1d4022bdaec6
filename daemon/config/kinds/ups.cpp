// A UPS: its output (power per phase, load against its rating), its battery (runtime, charge,
// state) and where its output comes from (inverter, battery, bypass). With role
// it_at_ups_output its output power is the site's IT power of PUE category 1
// (docs/config.md, "devices").
#include "daemon/config/device_kinds.h"
#include "daemon/config/points.h"

namespace facility::kinds {
namespace {

constexpr KindKey kKeys[] = {
    {"role", false, "only it_at_ups_output"},
    {"rated_kw"},
};
// The alerts on battery and on bypass need the source of the output, as a flag or as the
// output_source enumeration.
constexpr const char* kOnBattery[] = {points::kOnBattery};
constexpr const char* kOutputSource[] = {points::kOutputSource};
constexpr std::span<const char* const> kRequired[] = {kOnBattery, kOutputSource};

}  // namespace

extern const DeviceKindInfo kUps{
    .kind = DeviceKind::kUps,
    .name = "ups",
    .noun = "ups",
    .contributes = Contribution::kUpsOutput,
    .keys = kKeys,
    .room_required = false,
    .required_points = kRequired,
    .missing_points = "\"on_battery\" (or \"output_source\")",
};

}  // namespace facility::kinds
