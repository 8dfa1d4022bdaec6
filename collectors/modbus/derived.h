// Derived points: values a profile computes from other points of the same device after a poll
// (docs/config.md, "Derived points"), for what real register maps spread over several registers:
//
//   sum           a device's total from its parts (phase energies, phase powers), in the
//                 derived point's unit
//   product       a value times ratios (a UPS's load ratio x its rated power = output watts)
//   words         one 16..64-bit value from 16-bit registers that are not adjacent (most
//                 significant first), decoded with its own type, scale, offset and sentinels,
//                 exactly as a read point of that type
//   scale_factor  value x 10^sf, sf an int16 register (SunSpec's sunssf)
//   in            1 while an enumeration's code is one of some codes (a "running" state), else 0
//   bit           one bit (0..63) of an integer status word, 1 or 0
//
// The loader (daemon/config) resolves names to indices, checks types and units, orders the
// points so that every input comes first, and turns units into factors: this file knows no
// units and no configuration. A derived point is absent when any input is absent (not
// available, unreadable, a string); its read time is its oldest input's.
//
// evaluate() works on the values of one poll cycle of one device, in the device's point order,
// and appends one value per derived point: a separate step after decoding, independent of how
// the reading store keeps them.
//
// Thread-safety: a DerivedEvaluator is immutable after construction; evaluate() is reentrant.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "collectors/modbus/codec.h"

namespace facility::modbus {

enum class DerivedOp : std::uint8_t { kSum, kProduct, kWords, kScaleFactor, kIn, kBit };
const char* to_string(DerivedOp op);

struct DerivedSpec {
  std::string name;
  std::string unit;
  DerivedOp op = DerivedOp::kSum;
  // Indices of the inputs in the value list of a cycle: the device's read points first (in their
  // order), then the derived points (in this list's order, which puts every input first).
  std::vector<std::size_t> inputs;
  // sum, product, scale_factor: an input's value (in its own unit) x to_base[i] is in base units;
  // the result in base units / from_base is in this point's unit. scale_factor: the value only
  // (the exponent is a count).
  std::vector<double> to_base;
  double from_base = 1.0;
  // words: the combined value's encoding (type, scale, offset, not_available, enum); its
  // kind/address are unused. The inputs are 16-bit registers, most significant first.
  PointSpec words;
  std::vector<std::int64_t> codes;  // in
  int bit = 0;                      // bit
  // in, bit: names of 0 and 1 (e.g. {0: stopped, 1: running}); empty: plain 0/1.
  std::vector<std::pair<std::int64_t, std::string>> enum_names;

  bool operator==(const DerivedSpec&) const = default;
};

// One value as evaluate() sees and writes it (a PolledValue's fields, device_poll.h).
struct DerivedValue {
  std::optional<double> value;
  std::string text;
  std::chrono::system_clock::time_point read_at{};
  bool usable = true;  // false: unreadable or not read
};

class DerivedEvaluator {
 public:
  DerivedEvaluator() = default;
  // Throws std::invalid_argument for a spec that cannot be evaluated (an input index at or after
  // its own position, a words type whose width is not the number of inputs, a bit above 63).
  DerivedEvaluator(std::vector<DerivedSpec> specs, std::size_t read_points);
  bool empty() const { return specs_.empty(); }
  const std::vector<DerivedSpec>& specs() const { return specs_; }

  // Appends the derived values to `values` (the cycle's read points, values.size() == the
  // read_points given to the constructor).
  void evaluate(std::vector<DerivedValue>& values) const;

 private:
  DerivedValue evaluate_one(const DerivedSpec& s, const std::vector<DerivedValue>& values,
                            std::size_t k) const;

  std::vector<DerivedSpec> specs_;
  std::vector<std::optional<PointCodec>> words_codecs_;  // per spec, for kWords
  std::size_t read_points_ = 0;
};

}  // namespace facility::modbus
