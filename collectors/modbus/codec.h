// Register-level encoding and decoding of Modbus points.
//
// A PointSpec describes where a value lives on a device (register kind, address, width) and how
// its raw words become an engineering value (type, word/byte order, scale, offset, sentinels).
// The decoder for a point is resolved once when the spec is built (make_codec), never per read.
//
// Thread-safety: PointCodec is immutable after construction and safe to share between threads.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace facility::modbus {

// The four Modbus data tables. Only their read function codes (1-4) are ever used.
enum class RegisterKind : std::uint8_t {
  kCoil = 1,           // function 1, read coils
  kDiscreteInput = 2,  // function 2, read discrete inputs
  kHolding = 3,        // function 3, read holding registers
  kInput = 4,          // function 4, read input registers
};

enum class DataType : std::uint8_t {
  kBool,  // a coil / discrete input, or one bit of a register (see PointSpec::bit)
  kInt16,
  kUInt16,
  kInt32,
  kUInt32,
  kInt64,
  kUInt64,
  kFloat32,
  kFloat64,
};

// Order of the bytes on the wire for multi-register values, named after the big-endian
// value "ABCD" (A = most significant byte). ABCD is Modbus' native big-endian order;
// CDAB swaps 16-bit words (common on meters); BADC swaps bytes within words; DCBA is both.
enum class WordOrder : std::uint8_t { kABCD, kCDAB, kBADC, kDCBA };

std::optional<RegisterKind> parse_register_kind(std::string_view s);
std::optional<DataType> parse_data_type(std::string_view s);
std::optional<WordOrder> parse_word_order(std::string_view s);
std::string_view to_string(RegisterKind k);
std::string_view to_string(DataType t);
std::string_view to_string(WordOrder o);

// Number of 16-bit registers (or bits, for coils/discrete inputs) a value of this type occupies.
int width_of(DataType t);
bool is_bit_kind(RegisterKind k);

struct PointSpec {
  std::string name;          // e.g. "active_power"
  RegisterKind kind = RegisterKind::kHolding;
  std::uint16_t address = 0;  // protocol (0-based) address
  DataType type = DataType::kUInt16;
  WordOrder order = WordOrder::kABCD;
  int bit = -1;               // 0..15: value is this bit of a 16-bit register (type kBool)
  double scale = 1.0;         // value = raw * scale + offset
  double offset = 0.0;
  std::string unit;           // engineering unit of the decoded value (see units.h)
  // Raw values meaning "no reading", compared with the value's bit pattern at its width, so
  // 0x8000 and -32768 both match an int16 0x8000, and 0xFFFF and -1 both match 0xFFFF.
  std::vector<std::int64_t> not_available;

  // Registers (or bits) this point spans, starting at address.
  int width() const;
};

// Decodes raw register words (exactly width() of them, as they came off the wire) into an
// engineering value. nullopt means the device reported "not available" (a sentinel or a NaN).
class PointCodec {
 public:
  explicit PointCodec(PointSpec spec);
  const PointSpec& spec() const { return spec_; }

  std::optional<double> decode_registers(std::span<const std::uint16_t> words) const;
  std::optional<double> decode_bit(bool b) const;

  // Inverse of decode: the register words a device would hold for this engineering value.
  // Used by the simulator and by tests; values are rounded to the type and clamped to its range.
  std::vector<std::uint16_t> encode_registers(double value) const;

 private:
  // Raw value as the device's integer/float, after word-order normalisation.
  struct Raw {
    bool is_float;
    double f;
    std::int64_t i;
    std::uint64_t u;
    bool is_unsigned;
    std::uint64_t bits;  // the value's bit pattern, width_of(type) * 16 bits
  };
  Raw raw_from_words(std::span<const std::uint16_t> words) const;

  PointSpec spec_;
};

// Reorders wire words/bytes of an n-register value into big-endian ABCD order, and back.
std::vector<std::uint16_t> to_canonical(std::span<const std::uint16_t> words, WordOrder order);
std::vector<std::uint16_t> from_canonical(std::span<const std::uint16_t> words, WordOrder order);

}  // namespace facility::modbus
