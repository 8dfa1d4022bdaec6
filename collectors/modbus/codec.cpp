#include "collectors/modbus/codec.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <utility>

namespace facility::modbus {
namespace {

constexpr std::array<std::pair<std::string_view, RegisterKind>, 4> kKinds{{
    {"coil", RegisterKind::kCoil},
    {"discrete_input", RegisterKind::kDiscreteInput},
    {"holding", RegisterKind::kHolding},
    {"input", RegisterKind::kInput},
}};
constexpr std::array<std::pair<std::string_view, DataType>, 10> kTypes{{
    {"bool", DataType::kBool},
    {"int16", DataType::kInt16},
    {"uint16", DataType::kUInt16},
    {"int32", DataType::kInt32},
    {"uint32", DataType::kUInt32},
    {"int64", DataType::kInt64},
    {"uint64", DataType::kUInt64},
    {"float32", DataType::kFloat32},
    {"float64", DataType::kFloat64},
    {"string", DataType::kString},
}};
constexpr std::array<std::pair<std::string_view, WordOrder>, 4> kOrders{{
    {"ABCD", WordOrder::kABCD},
    {"CDAB", WordOrder::kCDAB},
    {"BADC", WordOrder::kBADC},
    {"DCBA", WordOrder::kDCBA},
}};

template <typename T, std::size_t N>
std::optional<T> lookup(const std::array<std::pair<std::string_view, T>, N>& table,
                        std::string_view s) {
  for (const auto& [name, value] : table) {
    if (name == s) return value;
  }
  return std::nullopt;
}

template <typename T, std::size_t N>
std::string_view name_of(const std::array<std::pair<std::string_view, T>, N>& table, T v) {
  for (const auto& [name, value] : table) {
    if (value == v) return name;
  }
  return "?";
}

bool swaps_bytes(WordOrder o) { return o == WordOrder::kBADC || o == WordOrder::kDCBA; }
bool reverses_words(WordOrder o) { return o == WordOrder::kCDAB || o == WordOrder::kDCBA; }

std::uint16_t bswap16(std::uint16_t w) { return static_cast<std::uint16_t>((w << 8) | (w >> 8)); }

// One converter per type, selected once in the PointCodec constructor.
double num_bool(std::uint64_t bits, int bit) {
  return bit >= 0 ? static_cast<double>((bits >> bit) & 1u) : (bits != 0 ? 1.0 : 0.0);
}
double num_i16(std::uint64_t b, int) { return static_cast<std::int16_t>(b); }
double num_u16(std::uint64_t b, int) { return static_cast<double>(b & 0xFFFFu); }
double num_i32(std::uint64_t b, int) { return static_cast<std::int32_t>(b); }
double num_u32(std::uint64_t b, int) { return static_cast<double>(b & 0xFFFFFFFFu); }
double num_i64(std::uint64_t b, int) { return static_cast<double>(static_cast<std::int64_t>(b)); }
double num_u64(std::uint64_t b, int) { return static_cast<double>(b); }
double num_f32(std::uint64_t b, int) {
  return std::bit_cast<float>(static_cast<std::uint32_t>(b));
}
double num_f64(std::uint64_t b, int) { return std::bit_cast<double>(b); }
double num_none(std::uint64_t, int) { return std::nan(""); }

}  // namespace

std::optional<RegisterKind> parse_register_kind(std::string_view s) { return lookup(kKinds, s); }
std::optional<DataType> parse_data_type(std::string_view s) { return lookup(kTypes, s); }
std::optional<WordOrder> parse_word_order(std::string_view s) { return lookup(kOrders, s); }
std::string_view to_string(RegisterKind k) { return name_of(kKinds, k); }
std::string_view to_string(DataType t) { return name_of(kTypes, t); }
std::string_view to_string(WordOrder o) { return name_of(kOrders, o); }

int width_of(DataType t) {
  switch (t) {
    case DataType::kBool:
    case DataType::kInt16:
    case DataType::kUInt16:
    case DataType::kString:
      return 1;
    case DataType::kInt32:
    case DataType::kUInt32:
    case DataType::kFloat32:
      return 2;
    case DataType::kInt64:
    case DataType::kUInt64:
    case DataType::kFloat64:
      return 4;
  }
  return 1;
}

bool is_bit_kind(RegisterKind k) {
  return k == RegisterKind::kCoil || k == RegisterKind::kDiscreteInput;
}

int PointSpec::width() const {
  if (is_bit_kind(kind)) return 1;
  if (type == DataType::kString) return std::max(1, length);
  return width_of(type);
}

std::vector<std::uint16_t> to_canonical(std::span<const std::uint16_t> words, WordOrder order) {
  std::vector<std::uint16_t> out(words.begin(), words.end());
  if (reverses_words(order)) std::reverse(out.begin(), out.end());
  if (swaps_bytes(order)) {
    for (auto& w : out) w = bswap16(w);
  }
  return out;
}

// Both transformations are involutions and commute, so the inverse is the same operation.
std::vector<std::uint16_t> from_canonical(std::span<const std::uint16_t> words, WordOrder order) {
  return to_canonical(words, order);
}

PointCodec::PointCodec(PointSpec spec) : spec_(std::move(spec)) {
  if (spec_.bit >= 16) throw std::invalid_argument("bit index must be 0..15");
  if (spec_.type == DataType::kString && (spec_.length < 1 || spec_.length > 123)) {
    throw std::invalid_argument("string length must be 1..123 registers");
  }
  reverse_words_ = reverses_words(spec_.order);
  swap_bytes_ = swaps_bytes(spec_.order);
  width_ = spec_.width();
  is_float_ = spec_.type == DataType::kFloat32 || spec_.type == DataType::kFloat64;
  const int nbits = 16 * (spec_.type == DataType::kString ? 1 : width_of(spec_.type));
  mask_ = nbits >= 64 ? ~0ull : ((1ull << nbits) - 1);
  switch (spec_.type) {
    case DataType::kBool: to_number_ = num_bool; break;
    case DataType::kInt16: to_number_ = num_i16; break;
    case DataType::kUInt16: to_number_ = num_u16; break;
    case DataType::kInt32: to_number_ = num_i32; break;
    case DataType::kUInt32: to_number_ = num_u32; break;
    case DataType::kInt64: to_number_ = num_i64; break;
    case DataType::kUInt64: to_number_ = num_u64; break;
    case DataType::kFloat32: to_number_ = num_f32; break;
    case DataType::kFloat64: to_number_ = num_f64; break;
    case DataType::kString: to_number_ = num_none; break;
  }
  // Bit kinds carry one 0/1 per "word" whatever the declared type.
  if (is_bit_kind(spec_.kind)) {
    to_number_ = num_bool;
    mask_ = 1;
  }
}

std::uint64_t PointCodec::canonical_bits(std::span<const std::uint16_t> words) const {
  std::uint64_t v = 0;
  const std::size_t n = words.size();
  for (std::size_t i = 0; i < n; ++i) {
    std::uint16_t w = words[reverse_words_ ? n - 1 - i : i];
    if (swap_bytes_) w = bswap16(w);
    v = (v << 16) | w;
  }
  return v;
}

Decoded PointCodec::decode(std::span<const std::uint16_t> words) const {
  Decoded d;
  if (static_cast<int>(words.size()) != width_) {
    d.available = false;
    return d;
  }
  if (spec_.type == DataType::kString && !is_bit_kind(spec_.kind)) {
    std::string s;
    s.reserve(words.size() * 2);
    for (std::size_t i = 0; i < words.size(); ++i) {
      std::uint16_t w = words[reverse_words_ ? words.size() - 1 - i : i];
      if (swap_bytes_) w = bswap16(w);
      s.push_back(static_cast<char>(w >> 8));
      s.push_back(static_cast<char>(w & 0xFF));
    }
    // Devices pad with NULs or spaces; 0xFF (erased flash) means nothing was ever written.
    const auto end = s.find('\0');
    if (end != std::string::npos) s.resize(end);
    while (!s.empty() && (s.back() == ' ' || static_cast<unsigned char>(s.back()) == 0xFF)) {
      s.pop_back();
    }
    for (char& c : s) {
      if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7E) c = '?';
    }
    if (s.empty()) d.available = false;
    d.text = std::move(s);
    return d;
  }
  const std::uint64_t bits = is_bit_kind(spec_.kind) ? (words[0] != 0) : canonical_bits(words);
  for (std::int64_t na : spec_.not_available) {
    if ((static_cast<std::uint64_t>(na) & mask_) == (bits & mask_)) {
      d.available = false;
      return d;
    }
  }
  const double raw = to_number_(bits, spec_.bit);
  if (is_float_ && !std::isfinite(raw)) {  // NaN/Inf: the device's "no value"
    d.available = false;
    return d;
  }
  if (!spec_.enum_names.empty()) {
    // The code in the integer domain, not from `raw`: a double of 2^63 or more (uint64) has no
    // int64 value, and converting it would be undefined behaviour.
    std::int64_t code = 0;
    switch (spec_.type) {
      case DataType::kInt16: code = static_cast<std::int16_t>(bits); break;
      case DataType::kInt32: code = static_cast<std::int32_t>(bits); break;
      case DataType::kUInt16:
      case DataType::kUInt32: code = static_cast<std::int64_t>(bits & mask_); break;
      // A uint64 code of 2^63 or more is written as its negative two's-complement twin.
      case DataType::kInt64:
      case DataType::kUInt64: code = std::bit_cast<std::int64_t>(bits); break;
      default: code = raw != 0.0 ? 1 : 0; break;  // bool (floats and strings have no enum)
    }
    auto it = std::find_if(spec_.enum_names.begin(), spec_.enum_names.end(),
                           [code](const auto& e) { return e.first == code; });
    const std::string shown = spec_.type == DataType::kUInt64 ? std::to_string(bits)
                                                              : std::to_string(code);
    d.text = it != spec_.enum_names.end() ? it->second : "unknown(" + shown + ")";
    d.value = raw;  // enumerations keep their raw code: scale/offset make no sense for a state
    return d;
  }
  d.value = raw * spec_.scale + spec_.offset;
  return d;
}

std::optional<double> PointCodec::decode_registers(std::span<const std::uint16_t> words) const {
  return decode(words).value;
}

std::optional<double> PointCodec::decode_bit(bool b) const {
  const std::uint16_t w = b ? 1 : 0;
  if (is_bit_kind(spec_.kind)) return decode(std::span<const std::uint16_t>(&w, 1)).value;
  for (std::int64_t na : spec_.not_available) {
    if (static_cast<std::int64_t>(b) == na) return std::nullopt;
  }
  return (b ? 1.0 : 0.0) * spec_.scale + spec_.offset;
}

std::vector<std::uint16_t> PointCodec::encode_text(std::string_view text) const {
  const auto n = static_cast<std::size_t>(std::max(1, spec_.length));
  std::vector<std::uint16_t> canon(n, 0);
  for (std::size_t i = 0; i < n * 2 && i < text.size(); ++i) {
    const auto c = static_cast<std::uint8_t>(text[i]);
    canon[i / 2] |= static_cast<std::uint16_t>(i % 2 == 0 ? c << 8 : c);
  }
  return from_canonical(canon, spec_.order);
}

std::vector<std::uint16_t> PointCodec::encode_registers(double value) const {
  if (spec_.type == DataType::kString) return encode_text("");
  const int n = width_of(spec_.type);
  const bool is_enum = !spec_.enum_names.empty();
  const double raw =
      is_enum ? value : (spec_.scale != 0.0 ? (value - spec_.offset) / spec_.scale : 0.0);
  std::uint64_t bits = 0;
  auto clamp_round = [](double x, double lo, double hi) {
    if (std::isnan(x)) return 0.0;
    return std::clamp(std::round(x), lo, hi);
  };
  switch (spec_.type) {
    case DataType::kBool:
      bits = raw != 0.0 ? (spec_.bit >= 0 ? (1u << spec_.bit) : 1u) : 0u;
      break;
    case DataType::kInt16:
      bits = static_cast<std::uint16_t>(static_cast<std::int16_t>(clamp_round(raw, -32768, 32767)));
      break;
    case DataType::kUInt16:
      bits = static_cast<std::uint16_t>(clamp_round(raw, 0, 65535));
      break;
    case DataType::kInt32:
      bits = static_cast<std::uint32_t>(
          static_cast<std::int32_t>(clamp_round(raw, -2147483648.0, 2147483647.0)));
      break;
    case DataType::kUInt32:
      bits = static_cast<std::uint32_t>(clamp_round(raw, 0, 4294967295.0));
      break;
    case DataType::kInt64: {
      // 2^63 is not representable in int64; stay one ulp below it.
      const double hi = std::nextafter(9223372036854775808.0, 0.0);
      bits = static_cast<std::uint64_t>(static_cast<std::int64_t>(clamp_round(raw, -hi, hi)));
      break;
    }
    case DataType::kUInt64: {
      const double hi = std::nextafter(18446744073709551616.0, 0.0);
      bits = static_cast<std::uint64_t>(clamp_round(raw, 0, hi));
      break;
    }
    case DataType::kFloat32:
      bits = std::bit_cast<std::uint32_t>(static_cast<float>(raw));
      break;
    case DataType::kFloat64:
      bits = std::bit_cast<std::uint64_t>(raw);
      break;
    case DataType::kString:
      break;
  }
  std::vector<std::uint16_t> canon(static_cast<std::size_t>(n));
  for (int i = n - 1; i >= 0; --i) {
    canon[static_cast<std::size_t>(i)] = static_cast<std::uint16_t>(bits & 0xFFFFu);
    bits >>= 16;
  }
  return from_canonical(canon, spec_.order);
}

}  // namespace facility::modbus
