// Matching what `facilityd scan` learned about one Modbus unit against the profiles' `identify`
// blocks (daemon/config/identify.h), with a confidence a person can act on:
//
//   high    the device named itself: its Read Device Identification objects (FC43/14) match
//           including a product code or name, or a model string register starts with the
//           profile's prefix
//   medium  the vendor is right (FC43 vendor name only), or an identification code register
//           holds one of the profile's codes (a device class, a series code): right family,
//           model not proven
//   low     only plausibility: registers hold values in the profile's ranges
//
// A profile is a candidate only when everything it declares is consistent: every object and
// register it names matches, and no read of its registers failed. Candidates are ranked by
// evidence (FC43 with a product 4, vendor only 2; prefix 3; code 2; range 1 per match); the
// others are listed as alternatives.
//
// Thread-safety: pure functions (the register reader is called on the caller's thread).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "collectors/modbus/device_id.h"
#include "daemon/config/config.h"

namespace facility {

// What the scan learned about a unit before matching.
struct UnitEvidence {
  int unit = 0;
  bool fc43 = false;  // answered Read Device Identification with objects
  modbus::DeviceIdObjects objects;
  std::optional<int> sunspec_base;  // the "SunS" marker was found at this register address
  std::string sunspec_manufacturer, sunspec_model;
};

// Reads registers of the unit: the words, or nullopt when the device rejected the read or did
// not answer. The scan caches reads, so profiles asking for the same registers cost one request.
using RegisterReader = std::function<std::optional<std::vector<std::uint16_t>>(
    modbus::RegisterKind kind, std::uint16_t address, std::uint16_t count)>;

struct Candidate {
  std::shared_ptr<const Profile> profile;
  int score = 0;
  std::string confidence;  // "high", "medium", "low"
  std::string evidence;    // what matched, for people
};

// Every profile that matches the unit, best first.
std::vector<Candidate> match_profiles(const std::vector<std::shared_ptr<const Profile>>& profiles,
                                      const UnitEvidence& ev, const RegisterReader& read);

// The evidence of one identification register against the words read (nullopt: unreadable).
// Returns the points it scores (0: no match).
int match_register(const IdentifyRegister& reg, const std::optional<std::vector<std::uint16_t>>& w,
                   std::string& what);

}  // namespace facility
