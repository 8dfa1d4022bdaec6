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
constexpr std::array<std::pair<std::string_view, DataType>, 9> kTypes{{
    {"bool", DataType::kBool},
    {"int16", DataType::kInt16},
    {"uint16", DataType::kUInt16},
    {"int32", DataType::kInt32},
    {"uint32", DataType::kUInt32},
    {"int64", DataType::kInt64},
    {"uint64", DataType::kUInt64},
    {"float32", DataType::kFloat32},
    {"float64", DataType::kFloat64},
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

std::uint64_t words_to_u64(std::span<const std::uint16_t> w) {
  std::uint64_t v = 0;
  for (std::uint16_t x : w) v = (v << 16) | x;
  return v;
}

bool is_unsigned_type(DataType t) {
  return t == DataType::kUInt16 || t == DataType::kUInt32 || t == DataType::kUInt64 ||
         t == DataType::kBool;
}

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

int PointSpec::width() const { return is_bit_kind(kind) ? 1 : width_of(type); }

std::vector<std::uint16_t> to_canonical(std::span<const std::uint16_t> words, WordOrder order) {
  std::vector<std::uint16_t> out(words.begin(), words.end());
  if (reverses_words(order)) std::reverse(out.begin(), out.end());
  if (swaps_bytes(order)) {
    for (auto& w : out) w = static_cast<std::uint16_t>((w << 8) | (w >> 8));
  }
  return out;
}

// Both transformations are involutions and commute, so the inverse is the same operation.
std::vector<std::uint16_t> from_canonical(std::span<const std::uint16_t> words, WordOrder order) {
  return to_canonical(words, order);
}

PointCodec::PointCodec(PointSpec spec) : spec_(std::move(spec)) {
  if (spec_.bit >= 16) throw std::invalid_argument("bit index must be 0..15");
}

PointCodec::Raw PointCodec::raw_from_words(std::span<const std::uint16_t> words) const {
  const auto canon = to_canonical(words, spec_.order);
  const std::uint64_t bits = words_to_u64(canon);
  Raw r{};
  r.bits = bits;
  r.is_unsigned = is_unsigned_type(spec_.type);
  switch (spec_.type) {
    case DataType::kBool:
      r.u = spec_.bit >= 0 ? (bits >> spec_.bit) & 1u : (bits != 0);
      r.i = static_cast<std::int64_t>(r.u);
      break;
    case DataType::kInt16:
      r.i = static_cast<std::int16_t>(bits);
      break;
    case DataType::kUInt16:
    case DataType::kUInt32:
    case DataType::kUInt64:
      r.u = bits;
      r.i = static_cast<std::int64_t>(bits);
      break;
    case DataType::kInt32:
      r.i = static_cast<std::int32_t>(bits);
      break;
    case DataType::kInt64:
      r.i = static_cast<std::int64_t>(bits);
      break;
    case DataType::kFloat32: {
      r.is_float = true;
      r.f = std::bit_cast<float>(static_cast<std::uint32_t>(bits));
      r.i = static_cast<std::int64_t>(bits);  // sentinels compare against the raw bit pattern
      break;
    }
    case DataType::kFloat64:
      r.is_float = true;
      r.f = std::bit_cast<double>(bits);
      r.i = static_cast<std::int64_t>(bits);
      break;
  }
  return r;
}

std::optional<double> PointCodec::decode_registers(std::span<const std::uint16_t> words) const {
  if (static_cast<int>(words.size()) != width_of(spec_.type)) return std::nullopt;
  const Raw r = raw_from_words(words);
  const int nbits = 16 * width_of(spec_.type);
  const std::uint64_t mask = nbits >= 64 ? ~0ull : ((1ull << nbits) - 1);
  for (std::int64_t na : spec_.not_available) {
    if ((static_cast<std::uint64_t>(na) & mask) == (r.bits & mask)) return std::nullopt;
  }
  double v;
  if (r.is_float) {
    if (!std::isfinite(r.f)) return std::nullopt;  // NaN/Inf: the device's "no value"
    v = r.f;
  } else if (r.is_unsigned) {
    v = static_cast<double>(r.u);
  } else {
    v = static_cast<double>(r.i);
  }
  return v * spec_.scale + spec_.offset;
}

std::optional<double> PointCodec::decode_bit(bool b) const {
  for (std::int64_t na : spec_.not_available) {
    if (static_cast<std::int64_t>(b) == na) return std::nullopt;
  }
  return (b ? 1.0 : 0.0) * spec_.scale + spec_.offset;
}

std::vector<std::uint16_t> PointCodec::encode_registers(double value) const {
  const int n = width_of(spec_.type);
  const double raw = spec_.scale != 0.0 ? (value - spec_.offset) / spec_.scale : 0.0;
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
  }
  std::vector<std::uint16_t> canon(static_cast<std::size_t>(n));
  for (int i = n - 1; i >= 0; --i) {
    canon[static_cast<std::size_t>(i)] = static_cast<std::uint16_t>(bits & 0xFFFFu);
    bits >>= 16;
  }
  return from_canonical(canon, spec_.order);
}

}  // namespace facility::modbus
