// Sharding a site's devices between several facilityd daemons (daemon.shard: "INDEX/COUNT").
//
// Placement (docs/prometheus.md, "Sharding"): what the model needs together stays together.
//   * A cabinet, and every device placed in it (its A/B/... PDUs, its rack sensors), belongs to
//     shard fnv1a64(site + "/" + cabinet) mod COUNT. Hashing the device id instead would put a
//     cabinet's A and B PDUs in different daemons, and no daemon could ever compute its total.
//   * Devices not placed in a cabinet (meters, cooling units) belong to the site's home shard,
//     fnv1a64(site) mod COUNT: the site's IT, facility and cooling power, PUE and energy windows,
//     and the rooms' cooling capacity are then whole in one daemon.
// The hash is FNV-1a (64 bit) of the UTF-8 bytes: stable across versions, machines and restarts,
// so a device keeps its shard as long as its site and cabinet ids stay.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string_view>

#include "daemon/config/config.h"

namespace facility {

std::uint64_t fnv1a64(std::string_view s);

// Shard of a cabinet, and of a site's home (devices without a cabinet, site aggregates).
int cabinet_shard(std::string_view site, std::string_view cabinet, int count);
int site_home_shard(std::string_view site, int count);
int device_shard(const Device& d, int count);

// Whether this daemon (settings.index of settings.count) serves the entity. Always true when the
// daemon is not sharded (count 1).
bool owns_cabinet(const ShardSettings& s, std::string_view site, std::string_view cabinet);
bool owns_site_home(const ShardSettings& s, std::string_view site);
bool owns_device(const ShardSettings& s, const Device& d);

// A copy of `config` whose sites list only the devices this shard polls (inventory unchanged).
Config devices_of_shard(const Config& config);

}  // namespace facility
