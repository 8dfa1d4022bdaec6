// How `facilityd scan` recognises a device model: a profile's `identify` block (docs/config.md,
// "Identification"). Parsed with the profile (profile_identify.cpp); used by the scan
// (daemon/app/scan_match.cpp) and by facility-sim, which answers what the block expects.
//
// Thread-safety: plain data, immutable once the profile is loaded.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "collectors/modbus/codec.h"

namespace facility {

// Read Device Identification (function 43, MEI type 14) objects: 0 VendorName, 1 ProductCode,
// 2 MajorMinorRevision, 3 VendorUrl, 4 ProductName, 5 ModelName, 6 UserApplicationName.
const char* device_id_object_name(int id);  // "vendor_name", ... ; "" for another id
std::optional<int> device_id_object(const std::string& name);

struct Fc43Match {
  // Object id -> text the device's object must contain (case-insensitive). At least one.
  std::vector<std::pair<int, std::string>> objects;
  // What facility-sim answers for this model (object id -> value); each contains the text above.
  std::vector<std::pair<int, std::string>> simulate;
};

// A register whose content identifies the model. Numbers: `equals` (raw codes, any of them) or
// `range` (decoded value, inclusive); strings: `prefix` (case-insensitive).
struct IdentifyRegister {
  modbus::PointSpec spec;  // kind, wire address, type, order, length, scale, offset
  std::vector<std::int64_t> equals;
  std::optional<std::pair<double, double>> range;
  std::string prefix;
  bool exact() const { return !equals.empty() || !prefix.empty(); }
};

struct IdentifySpec {
  std::optional<Fc43Match> fc43;
  std::vector<IdentifyRegister> registers;  // all must match
  bool empty() const { return !fc43 && registers.empty(); }
};

}  // namespace facility
