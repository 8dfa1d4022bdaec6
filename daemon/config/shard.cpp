#include "daemon/config/shard.h"

#include <algorithm>
#include <string>

namespace facility {

std::uint64_t fnv1a64(std::string_view s) {
  std::uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a offset basis
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;  // FNV prime
  }
  return h;
}

int cabinet_shard(std::string_view site, std::string_view cabinet, int count) {
  if (count <= 1) return 0;
  std::string key;
  key.reserve(site.size() + cabinet.size() + 1);
  key.append(site).append("/").append(cabinet);
  return static_cast<int>(fnv1a64(key) % static_cast<std::uint64_t>(count));
}

int site_home_shard(std::string_view site, int count) {
  if (count <= 1) return 0;
  return static_cast<int>(fnv1a64(site) % static_cast<std::uint64_t>(count));
}

int device_shard(const Device& d, int count) {
  return d.cabinet.empty() ? site_home_shard(d.site, count)
                           : cabinet_shard(d.site, d.cabinet, count);
}

bool owns_cabinet(const ShardSettings& s, std::string_view site, std::string_view cabinet) {
  return s.count <= 1 || cabinet_shard(site, cabinet, s.count) == s.index;
}

bool owns_site_home(const ShardSettings& s, std::string_view site) {
  return s.count <= 1 || site_home_shard(site, s.count) == s.index;
}

bool owns_device(const ShardSettings& s, const Device& d) {
  return s.count <= 1 || device_shard(d, s.count) == s.index;
}

Config devices_of_shard(const Config& config) {
  Config c = config;
  const ShardSettings& s = config.daemon.shard;
  for (auto& site : c.sites) {
    site.devices.erase(std::remove_if(site.devices.begin(), site.devices.end(),
                                      [&s](const Device& d) { return !owns_device(s, d); }),
                       site.devices.end());
  }
  return c;
}

}  // namespace facility
