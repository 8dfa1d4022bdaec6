// Device kinds: one descriptor per kind (daemon/config/kinds/<kind>.cpp) and one table of them
// (device_kinds.cpp), read by the configuration loader (the keys a kind allows and needs, the
// points its profile must have), the facility model (how its readings contribute to cabinets,
// rooms and the site), the Prometheus exposition and the MQTT renderer (its name) and the
// simulator (what it generates).
//
// A new kind that contributes as an existing one does (another rack sensor, a meter role): its
// descriptor file under kinds/ and its line in kinds/kinds.def, nothing else. A kind that
// contributes in a way no kind did (a new Contribution) is a new aggregate that every stage
// shows: the UPS (commit fb91694) touched 12 existing production files besides its line, each a
// stage that gained a concept: config (this header's enum, devices.cpp placement, facility.cpp/.h
// its settings section, points.h its point names), the model (model.h its snapshot, internal.h,
// site.cpp, state.cpp its alert states; its logic in the new model/ups.cpp), and the sinks
// (prometheus/facility_metrics.cpp its families, mqtt/render.cpp/.h its topic). The simulator
// gives it values by its Contribution.
//
// Thread-safety: constants.
#pragma once

#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace facility {

// In table order (kinds/kinds.def): the enumerator is the kind's index in the table.
enum class DeviceKind {
#define FACILITY_DEVICE_KIND(name) name,
#include "daemon/config/kinds/kinds.def"
#undef FACILITY_DEVICE_KIND
};

// How a device's readings enter the facility model (daemon/model/site.cpp).
enum class Contribution {
  kCabinetFeed,    // one feed of a cabinet: feed and phase power, the cabinet's total
  kSiteMeter,      // site power by meter role: IT (by PUE category), facility, cooling
  kRoomCooling,    // a cooling unit of a room: temperatures, power, cooling capacity
  kCabinetSensor,  // a rack sensor of a cabinet: inlet and outlet air, humidity, rack units
  kUpsOutput,      // a UPS: output load, battery and source for the site; with role
                   // it_at_ups_output, its output power is IT power of PUE category 1
};

// A device key that belongs to some kinds only (the other device keys, `room` among them,
// apply to every kind). `cabinet` and `feed` place a device in a cabinet and on one of its feeds.
struct KindKey {
  const char* key;
  bool required = false;
  const char* hint = nullptr;  // after "a pdu needs \"feed\"" when it is missing
};

struct DeviceKindInfo {
  DeviceKind kind;
  const char* name;  // `kind:` in the configuration, the `kind` label and the MQTT "kind" field
  const char* noun;  // in messages: "a cooling unit needs ..."
  Contribution contributes;
  std::span<const KindKey> keys;
  bool room_required;  // every device may name its room; these must
  // The model needs every point of at least one of these sets (none: any profile will do), and
  // the loader says so with `missing_points` ("\"active_power\"").
  std::span<const std::span<const char* const>> required_points = {};
  const char* missing_points = "";
};

// Every kind, in enumerator order.
std::span<const DeviceKindInfo* const> device_kinds();
const DeviceKindInfo& kind_info(DeviceKind k);
// The kind named `name` in the configuration; null if there is none.
const DeviceKindInfo* find_kind(std::string_view name);
// Whether devices of kind `k` may have `key` (one of the kind-specific keys), and the names of
// the kinds that may ("pdu and rack_sensor"), for messages.
bool kind_has_key(DeviceKind k, std::string_view key);
std::string kinds_with_key(std::string_view key);
// Every kind-specific key, once each.
std::vector<const char*> kind_keys();

}  // namespace facility
