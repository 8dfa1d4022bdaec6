// The table of device kinds, from kinds/kinds.def (one line per kind).
#include "daemon/config/device_kinds.h"

#include <algorithm>
#include <cstring>
#include <iterator>

namespace facility {
namespace kinds {
#define FACILITY_DEVICE_KIND(name) extern const DeviceKindInfo name;
#include "daemon/config/kinds/kinds.def"
#undef FACILITY_DEVICE_KIND
}  // namespace kinds

namespace {

const DeviceKindInfo* const kKinds[] = {
#define FACILITY_DEVICE_KIND(name) &kinds::name,
#include "daemon/config/kinds/kinds.def"
#undef FACILITY_DEVICE_KIND
};

}  // namespace

std::span<const DeviceKindInfo* const> device_kinds() { return kKinds; }

const DeviceKindInfo& kind_info(DeviceKind k) { return *kKinds[static_cast<std::size_t>(k)]; }

const DeviceKindInfo* find_kind(std::string_view name) {
  for (const DeviceKindInfo* k : kKinds) {
    if (name == k->name) return k;
  }
  return nullptr;
}

bool kind_has_key(DeviceKind k, std::string_view key) {
  const auto keys = kind_info(k).keys;
  return std::any_of(keys.begin(), keys.end(), [key](const KindKey& x) { return key == x.key; });
}

std::string kinds_with_key(std::string_view key) {
  std::vector<const char*> names;
  for (const DeviceKindInfo* k : kKinds) {
    if (kind_has_key(k->kind, key)) names.push_back(k->name);
  }
  std::string out;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += i + 1 == names.size() ? " and " : ", ";
    out += names[i];
  }
  return out;
}

std::vector<const char*> kind_keys() {
  std::vector<const char*> out;
  for (const DeviceKindInfo* k : kKinds) {
    for (const KindKey& x : k->keys) {
      if (std::none_of(out.begin(), out.end(),
                       [&x](const char* y) { return std::strcmp(x.key, y) == 0; }))
        out.push_back(x.key);
    }
  }
  return out;
}

}  // namespace facility
