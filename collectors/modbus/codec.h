// Register-level encoding and decoding of Modbus points.
//
// A PointSpec describes where a value lives on a device (register kind, address, width) and how
// its raw words become an engineering value (type, word/byte order, scale, offset, sentinels,
// enumeration names). The decoder of a point is resolved once, when its PointCodec is built
// (a function pointer per type and precomputed order flags), never per read.
//
// How values travel: every numeric point decodes to a double (enumerations keep their numeric
// code as the value). Enumerations additionally carry the name of the code, and ASCII string
// points carry only text (their numeric value is absent). See Decoded.
//
// Thread-safety: PointCodec is immutable after construction and safe to share between threads.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
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
  kString,  // ASCII, two characters per register, PointSpec::length registers
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
// Strings have no fixed width: see PointSpec::width().
int width_of(DataType t);
bool is_bit_kind(RegisterKind k);

struct PointSpec {
  std::string name;          // e.g. "active_power"
  RegisterKind kind = RegisterKind::kHolding;
  std::uint16_t address = 0;  // protocol (0-based) address
  DataType type = DataType::kUInt16;
  WordOrder order = WordOrder::kABCD;
  int bit = -1;               // 0..15: value is this bit of a 16-bit register (type kBool)
  int length = 0;             // kString: registers (2 characters each), 1..123
  double scale = 1.0;         // value = raw * scale + offset
  double offset = 0.0;
  std::string unit;           // engineering unit of the decoded value (see units.h)
  // Raw values meaning "no reading", compared with the value's bit pattern at its width, so
  // 0x8000 and -32768 both match an int16 0x8000, and 0xFFFF and -1 both match 0xFFFF.
  std::vector<std::int64_t> not_available;
  // Enumeration: raw code -> name (e.g. 0 -> "stopped"). Compared with the raw value before
  // scale and offset. The decoded value stays the numeric code; the name travels as text.
  std::vector<std::pair<std::int64_t, std::string>> enum_names;

  bool operator==(const PointSpec&) const = default;

  // Registers (or bits) this point spans, starting at address.
  int width() const;
};

// One decoded point.
struct Decoded {
  std::optional<double> value;  // nullopt: "not available" (sentinel, NaN) or a string point
  std::string text;             // enumeration name or string content; empty otherwise
  bool available = true;        // false when the device said "no reading"
};

// Decodes raw register words (exactly width() of them, as they came off the wire) into an
// engineering value.
class PointCodec {
 public:
  // Throws std::invalid_argument for a spec that cannot be decoded (bit >= 16, string length).
  explicit PointCodec(PointSpec spec);
  const PointSpec& spec() const { return spec_; }

  // Registers for register kinds; for coils / discrete inputs one word holding 0 or 1.
  Decoded decode(std::span<const std::uint16_t> words) const;
  // Numeric part only. nullopt means "not available" (or a string point).
  std::optional<double> decode_registers(std::span<const std::uint16_t> words) const;
  std::optional<double> decode_bit(bool b) const;

  // Inverse of decode: the register words a device would hold for this engineering value.
  // Used by the simulator and by tests; values are rounded to the type and clamped to its range.
  // For a string point, the value is ignored and the words hold encode_text("").
  std::vector<std::uint16_t> encode_registers(double value) const;
  // String points: the words holding `text` (truncated or NUL-padded to length registers).
  std::vector<std::uint16_t> encode_text(std::string_view text) const;

 private:
  // Raw bit pattern (canonical big-endian) -> number. Chosen once per type.
  using ToNumber = double (*)(std::uint64_t bits, int bit);
  std::uint64_t canonical_bits(std::span<const std::uint16_t> words) const;

  PointSpec spec_;
  ToNumber to_number_ = nullptr;
  bool reverse_words_ = false;
  bool swap_bytes_ = false;
  bool is_float_ = false;
  int width_ = 1;
  std::uint64_t mask_ = 0xFFFF;
};

// Reorders wire words/bytes of an n-register value into big-endian ABCD order, and back.
std::vector<std::uint16_t> to_canonical(std::span<const std::uint16_t> words, WordOrder order);
std::vector<std::uint16_t> from_canonical(std::span<const std::uint16_t> words, WordOrder order);

}  // namespace facility::modbus
