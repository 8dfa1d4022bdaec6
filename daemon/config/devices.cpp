// A site's devices: identity, kind, profile, Modbus address and timing, placement, and the
// checks the device's kind asks for (daemon/config/device_kinds.h).
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <map>
#include <unordered_set>

#include "daemon/config/points.h"
#include "daemon/config/reader.h"

namespace facility::config_detail {
namespace {

// Every key a device may have: the common ones and every kind's own (device_kinds.h).
std::span<const char* const> device_keys() {
  static const std::vector<const char*> keys = [] {
    std::vector<const char*> k{"id",
                               "kind",
                               "profile",
                               "endpoint",
                               "unit",
                               "interval",
                               "timeout",
                               "retries",
                               "busy_retries",
                               "busy_retry_delay",
                               "max_registers_per_read",
                               "max_gap",
                               "never_read",
                               "room",
                               "simulate"};
    for (const char* x : kind_keys()) k.push_back(x);
    return k;
  }();
  return keys;
}

const DeviceKindInfo* parse_kind(Diagnostics& d, MapReader& dr) {
  auto name = dr.str("kind", true);
  if (!name) return nullptr;
  if (const DeviceKindInfo* k = find_kind(*name)) return k;
  std::string list;
  for (const DeviceKindInfo* k : device_kinds()) {
    list += (list.empty() ? "" : ", ") + std::string(k->name);
  }
  d.error(dr.get("kind"), dr.what() + ": unknown kind \"" + *name + "\" (expected " + list + ")");
  return nullptr;
}

// The keys of the device's kind that it lacks, and the keys of other kinds that it has.
void check_kind_keys(Diagnostics& d, MapReader& dr, const YAML::Node& dn, const DeviceKindInfo& k) {
  const std::string needs = dr.what() + ": a " + k.noun + " needs \"";
  for (const KindKey& key : k.keys) {
    if (!key.required || dr.has(key.key)) continue;
    d.error(dn, needs + key.key + "\"" + (key.hint ? std::string(" (") + key.hint + ")" : ""));
  }
  if (k.room_required && !dr.has("room")) d.error(dn, needs + "room\"");
  for (const char* key : kind_keys()) {
    if (dr.has(key) && !kind_has_key(k.kind, key)) {
      d.error(dr.key_node(key),
              dr.what() + ": \"" + key + "\" applies only to " + kinds_with_key(key));
    }
  }
}

// The cabinet, feed and room a device names exist in its site.
void check_placement(Diagnostics& d, MapReader& dr, const Site& site,
                     const std::unordered_set<std::string>& room_ids, const Device& dev) {
  const std::string in_site = " in site \"" + site.id + "\"";
  const Cabinet* cab = dev.cabinet.empty() ? nullptr : site.find_cabinet(dev.cabinet);
  if (kind_has_key(dev.kind, "cabinet") && !dev.cabinet.empty() && !cab) {
    d.error(dr.get("cabinet"), dr.what() + ": unknown cabinet \"" + dev.cabinet + "\"" + in_site);
  }
  if (kind_has_key(dev.kind, "feed") && dr.has("feed") && cab &&
      std::find(cab->feeds.begin(), cab->feeds.end(), dev.feed) == cab->feeds.end()) {
    std::string fl;
    for (const auto& f : cab->feeds) fl += (fl.empty() ? "" : ", ") + f;
    d.error(dr.get("feed"), dr.what() + ": cabinet \"" + dev.cabinet + "\" has no feed \"" +
                                dev.feed + "\" (its feeds: " + fl + ")");
  }
  if (!dev.room.empty() && !room_ids.count(dev.room)) {
    d.error(dr.get("room"), dr.what() + ": unknown room \"" + dev.room + "\"" + in_site);
  }
}

// Endpoint, unit, interval, timeout and the Modbus quirks; an address two devices share.
void parse_device_address(LoadContext& ctx, MapReader& dr, const YAML::Node& dn, Device& dev) {
  Diagnostics& d = ctx.d;
  const std::string& dw = dr.what();
  if (auto e = dr.str("endpoint", true))
    dev.endpoint = parse_endpoint(d, dr.get("endpoint"), dw, *e);
  bool unit_ok = true;
  if (dr.has("unit")) {
    auto u = dr.integer("unit", 0, 255);
    unit_ok = u.has_value();
    if (u) dev.unit = int(*u);
  }
  dev.interval = dr.duration("interval").value_or(ctx.defs.interval);
  dev.timeout = dr.duration("timeout").value_or(ctx.defs.timeout);
  dev.modbus.retries = ctx.defs.retries;
  parse_device_modbus(d, dr, dev.modbus);
  check_device_modbus(d, dr, dev);
  if (unit_ok && !dev.endpoint.scheme.empty()) {
    if (const std::string why = unit_problem(dev.endpoint, dev.unit); !why.empty()) {
      d.error(dr.has("unit") ? dr.get("unit") : dn, dw + ": " + why);
      unit_ok = false;
    }
  }
  if (dev.timeout >= dev.interval) {
    d.error(dr.has("timeout") ? dr.get("timeout") : dn,
            dw + ": timeout (" + std::to_string(dev.timeout.count()) +
                " ms) must be shorter than the poll interval (" +
                std::to_string(dev.interval.count()) + " ms)");
  }
  // Serial lines too: two devices on one unit of a bus would poll the same meter.
  if (!dev.endpoint.scheme.empty() && unit_ok) {
    auto& units = ctx.addresses[dev.endpoint.key()];
    if (auto [it, fresh] = units.emplace(dev.unit, dev.id); !fresh) {
      d.error(dr.has("unit") ? dr.get("unit") : dn,
              dw + ": unit " + std::to_string(dev.unit) + " at " + dev.endpoint.key() +
                  " is already used by device \"" + it->second + "\"");
    }
  }
}

// A profile written for other kinds (its `kinds`), and a UPS's role: only the IT power at its
// output, which then needs the output power.
void check_profile_kind(Diagnostics& d, MapReader& dr, const Device& dev) {
  if (dev.profile && !dev.profile->kinds.empty() &&
      std::find(dev.profile->kinds.begin(), dev.profile->kinds.end(), dev.kind) ==
          dev.profile->kinds.end()) {
    std::string list;
    for (DeviceKind k : dev.profile->kinds) {
      list += (list.empty() ? "" : ", ") + std::string(to_string(k));
    }
    d.error(dr.get("profile"), dr.what() + ": profile \"" + dev.profile_name + "\" is for " + list +
                                   " devices (its kinds), not " + to_string(dev.kind));
  }
  if (kind_info(dev.kind).contributes != Contribution::kUpsOutput || !dr.has("role")) return;
  if (dev.role != MeterRole::kItUpsOutput && dev.role != MeterRole::kNone) {
    d.error(dr.get("role"), dr.what() +
                                ": a ups can only have role it_at_ups_output (the IT "
                                "power at its output, PUE category 1)");
  } else if (dev.profile && !dev.profile->has_point(points::kActivePower)) {
    d.error(dr.get("role"), dr.what() +
                                ": role it_at_ups_output needs the output power: profile "
                                "\"" +
                                dev.profile_name +
                                "\" has no point "
                                "\"active_power\" (derive it, e.g. derive: {sum: "
                                "[active_power_l1, active_power_l2, active_power_l3]})");
  }
}

}  // namespace

void parse_device(LoadContext& ctx, Site& site, const std::unordered_set<std::string>& room_ids,
                  const YAML::Node& dn) {
  Diagnostics& d = ctx.d;
  const std::string sw = "site \"" + site.id + "\"";
  MapReader dr(d, dn, sw + " device", device_keys());
  if (!dr.ok()) return;
  Device dev;
  if (!check_id(d, dr, sw + " device", dev.id)) return;
  const std::string dw = "device \"" + dev.id + "\"";
  dr.set_what(dw);
  dev.site = site.id;
  dev.loc = d.loc(dn);
  if (auto [it, fresh] = ctx.device_ids.emplace(dev.id, dev.loc); !fresh) {
    d.error(dr.get("id"), dw + ": duplicate device id (first defined at line " +
                              std::to_string(it->second.line) + ")");
  }
  const DeviceKindInfo* kind = parse_kind(d, dr);
  if (kind) dev.kind = kind->kind;
  if (auto p = dr.str("profile", true)) {
    dev.profile_name = *p;
    dev.profile = ctx.profiles.get(*p, dr.get("profile"), dw);
  }
  parse_device_address(ctx, dr, dn, dev);
  dev.cabinet = dr.str("cabinet").value_or("");
  dev.feed = dr.str("feed").value_or("");
  dev.room = dr.str("room").value_or("");
  if (auto r =
          dr.choice<MeterRole>("role", {{"facility_total", MeterRole::kFacilityTotal},
                                        {"it_at_ups_output", MeterRole::kItUpsOutput},
                                        {"it_at_pdu_output", MeterRole::kItPduOutput},
                                        {"it_at_equipment_input", MeterRole::kItEquipmentInput},
                                        {"it_total", MeterRole::kItTotal},
                                        {"cooling", MeterRole::kCooling},
                                        {"other", MeterRole::kOther}})) {
    dev.role = *r;
  }
  dev.sim = parse_sim(d, dr, {"inlet_c", "energy_wrap_after", "energy_reset_after"});
  if (kind) {
    parse_device_facility(d, dr, site, dev);
    check_kind_keys(d, dr, dn, *kind);
    check_placement(d, dr, site, room_ids, dev);
    // The model needs these points; a profile without them cannot serve this kind.
    check_profile_points(d, dr, dev);
    check_profile_kind(d, dr, dev);
  }
  site.devices.push_back(std::move(dev));
}

void check_feeds_measured_once(Diagnostics& d, const Site& site) {
  // Two PDUs on one feed of one cabinet would double-count power.
  std::map<std::pair<std::string, std::string>, std::string> feed_owner;
  for (const auto& dev : site.devices) {
    if (!kind_has_key(dev.kind, "feed") || dev.cabinet.empty() || dev.feed.empty()) continue;
    auto [it, fresh] = feed_owner.emplace(std::make_pair(dev.cabinet, dev.feed), dev.id);
    if (!fresh) {
      d.error(dev.loc, "device \"" + dev.id + "\": feed " + dev.feed + " of cabinet \"" +
                           dev.cabinet + "\" is already measured by \"" + it->second + "\"");
    }
  }
}

}  // namespace facility::config_detail
