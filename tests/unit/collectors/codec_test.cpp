// Register decoding: every type x word order x sentinel, checked against hand-built wire words.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "collectors/modbus/codec.h"

namespace facility::modbus {
namespace {

PointSpec spec(DataType t, WordOrder o = WordOrder::kABCD, double scale = 1, double offset = 0) {
  PointSpec s;
  s.name = "p";
  s.kind = RegisterKind::kHolding;
  s.type = t;
  s.order = o;
  s.scale = scale;
  s.offset = offset;
  return s;
}

double dec(const PointSpec& s, std::vector<std::uint16_t> w) {
  auto v = PointCodec(s).decode_registers(w);
  EXPECT_TRUE(v.has_value());
  return v.value_or(std::nan(""));
}

TEST(Codec, Int16AndUInt16) {
  EXPECT_EQ(dec(spec(DataType::kInt16), {0xFFFE}), -2);
  EXPECT_EQ(dec(spec(DataType::kUInt16), {0xFFFE}), 65534);
  // BADC/DCBA swap the two bytes of a single register.
  EXPECT_EQ(dec(spec(DataType::kUInt16, WordOrder::kBADC), {0x3412}), 0x1234);
  EXPECT_EQ(dec(spec(DataType::kUInt16, WordOrder::kDCBA), {0x3412}), 0x1234);
  EXPECT_EQ(dec(spec(DataType::kUInt16, WordOrder::kCDAB), {0x1234}), 0x1234);
}

// 0x12345678 on the wire in each order: ABCD = 1234 5678, CDAB = 5678 1234,
// BADC = 3412 7856, DCBA = 7856 3412.
TEST(Codec, UInt32AllOrders) {
  EXPECT_EQ(dec(spec(DataType::kUInt32, WordOrder::kABCD), {0x1234, 0x5678}), 0x12345678);
  EXPECT_EQ(dec(spec(DataType::kUInt32, WordOrder::kCDAB), {0x5678, 0x1234}), 0x12345678);
  EXPECT_EQ(dec(spec(DataType::kUInt32, WordOrder::kBADC), {0x3412, 0x7856}), 0x12345678);
  EXPECT_EQ(dec(spec(DataType::kUInt32, WordOrder::kDCBA), {0x7856, 0x3412}), 0x12345678);
}

TEST(Codec, Int32Negative) {
  // -100000 = 0xFFFE7960
  EXPECT_EQ(dec(spec(DataType::kInt32), {0xFFFE, 0x7960}), -100000);
  EXPECT_EQ(dec(spec(DataType::kInt32, WordOrder::kCDAB), {0x7960, 0xFFFE}), -100000);
}

// 0x0102030405060708 as ABCDEFGH; CDAB reverses the words, BADC swaps bytes in each word.
TEST(Codec, SixtyFourBitOrders) {
  const double v = static_cast<double>(0x0102030405060708ull);
  EXPECT_EQ(dec(spec(DataType::kUInt64), {0x0102, 0x0304, 0x0506, 0x0708}), v);
  EXPECT_EQ(dec(spec(DataType::kUInt64, WordOrder::kCDAB), {0x0708, 0x0506, 0x0304, 0x0102}), v);
  EXPECT_EQ(dec(spec(DataType::kUInt64, WordOrder::kBADC), {0x0201, 0x0403, 0x0605, 0x0807}), v);
  EXPECT_EQ(dec(spec(DataType::kUInt64, WordOrder::kDCBA), {0x0807, 0x0605, 0x0403, 0x0201}), v);
  EXPECT_EQ(dec(spec(DataType::kInt64), {0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF}), -1);
}

TEST(Codec, Floats) {
  // 230.5f = 0x43668000; 1.5 (double) = 0x3FF8000000000000.
  EXPECT_FLOAT_EQ(dec(spec(DataType::kFloat32), {0x4366, 0x8000}), 230.5);
  EXPECT_FLOAT_EQ(dec(spec(DataType::kFloat32, WordOrder::kCDAB), {0x8000, 0x4366}), 230.5);
  EXPECT_FLOAT_EQ(dec(spec(DataType::kFloat32, WordOrder::kDCBA), {0x0080, 0x6643}), 230.5);
  EXPECT_DOUBLE_EQ(dec(spec(DataType::kFloat64), {0x3FF8, 0, 0, 0}), 1.5);
}

TEST(Codec, ScaleAndOffset) {
  // raw 2305 x 0.1 = 230.5 V; raw 100 x 0.5 - 40 = 10 degC.
  EXPECT_DOUBLE_EQ(dec(spec(DataType::kUInt16, WordOrder::kABCD, 0.1), {2305}), 230.5);
  EXPECT_DOUBLE_EQ(dec(spec(DataType::kUInt16, WordOrder::kABCD, 0.5, -40), {100}), 10.0);
}

TEST(Codec, SentinelsMeanNotAvailable) {
  auto s = spec(DataType::kInt16);
  s.not_available = {0x8000};  // written as unsigned, matches the int16 bit pattern
  EXPECT_FALSE(PointCodec(s).decode_registers(std::vector<std::uint16_t>{0x8000}).has_value());
  EXPECT_TRUE(PointCodec(s).decode_registers(std::vector<std::uint16_t>{0x8001}).has_value());
  auto u = spec(DataType::kUInt16);
  u.not_available = {-1};  // matches 0xFFFF
  EXPECT_FALSE(PointCodec(u).decode_registers(std::vector<std::uint16_t>{0xFFFF}).has_value());
  auto u32 = spec(DataType::kUInt32, WordOrder::kCDAB);
  u32.not_available = {0xFFFFFFFF};
  EXPECT_FALSE(
      PointCodec(u32).decode_registers(std::vector<std::uint16_t>{0xFFFF, 0xFFFF}).has_value());
  // NaN from a float register is "not available", not a number.
  EXPECT_FALSE(PointCodec(spec(DataType::kFloat32))
                   .decode_registers(std::vector<std::uint16_t>{0x7FC0, 0x0000})
                   .has_value());
}

TEST(Codec, WrongWordCountIsRejected) {
  EXPECT_FALSE(PointCodec(spec(DataType::kUInt32))
                   .decode_registers(std::vector<std::uint16_t>{1})
                   .has_value());
}

TEST(Codec, BitOfRegister) {
  auto s = spec(DataType::kBool);
  s.bit = 3;
  EXPECT_EQ(dec(s, {0x0008}), 1.0);
  EXPECT_EQ(dec(s, {0xFFF7}), 0.0);
}

// encode_registers is the inverse of decode for every type and order (the simulator relies on it).
TEST(Codec, EncodeRoundTripsEveryTypeAndOrder) {
  const DataType types[] = {DataType::kInt16,   DataType::kUInt16, DataType::kInt32,
                            DataType::kUInt32,  DataType::kInt64,  DataType::kUInt64,
                            DataType::kFloat32, DataType::kFloat64};
  const WordOrder orders[] = {WordOrder::kABCD, WordOrder::kCDAB, WordOrder::kBADC,
                              WordOrder::kDCBA};
  for (auto t : types) {
    for (auto o : orders) {
      auto s = spec(t, o, 0.01);
      PointCodec c(s);
      const double v = 123.45;
      auto w = c.encode_registers(v);
      ASSERT_EQ(static_cast<int>(w.size()), width_of(t));
      auto back = c.decode_registers(w);
      ASSERT_TRUE(back.has_value()) << to_string(t) << " " << to_string(o);
      EXPECT_NEAR(*back, v, 1e-4) << to_string(t) << " " << to_string(o);
    }
  }
}

TEST(Codec, ParseNames) {
  EXPECT_EQ(parse_word_order("CDAB"), WordOrder::kCDAB);
  EXPECT_FALSE(parse_word_order("ABDC").has_value());
  EXPECT_EQ(parse_data_type("float64"), DataType::kFloat64);
  EXPECT_EQ(parse_register_kind("discrete_input"), RegisterKind::kDiscreteInput);
}

}  // namespace
}  // namespace facility::modbus

namespace facility::modbus {
namespace {

// Wire words of a big-endian byte string in the given order, built independently of the
// library: byte i of the value goes to wire position perm(i).
std::vector<std::uint16_t> wire(const std::vector<std::uint8_t>& be, WordOrder o) {
  const std::size_t n = be.size();
  std::vector<std::uint8_t> out(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t word = i / 2, byte = i % 2, words = n / 2;
    std::size_t w = word, b = byte;
    if (o == WordOrder::kCDAB || o == WordOrder::kDCBA) w = words - 1 - word;
    if (o == WordOrder::kBADC || o == WordOrder::kDCBA) b = 1 - byte;
    out[w * 2 + b] = be[i];
  }
  std::vector<std::uint16_t> words(n / 2);
  for (std::size_t i = 0; i < n / 2; ++i) words[i] = static_cast<std::uint16_t>(out[2 * i] << 8 | out[2 * i + 1]);
  return words;
}

std::vector<std::uint8_t> be_bytes(std::uint64_t bits, int nbytes) {
  std::vector<std::uint8_t> b(static_cast<std::size_t>(nbytes));
  for (int i = nbytes - 1; i >= 0; --i) {
    b[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(bits & 0xFF);
    bits >>= 8;
  }
  return b;
}

struct TypeCase {
  DataType type;
  std::uint64_t bits;      // raw bit pattern of a sample value
  double value;            // what it decodes to
  std::int64_t sentinel;   // a "not available" pattern as a profile writes it
  std::uint64_t sentinel_bits;
};

// Every type x every word order x a sentinel: decode exactly, and the sentinel is missing.
TEST(CodecMatrix, EveryTypeOrderAndSentinel) {
  const TypeCase cases[] = {
      {DataType::kInt16, 0xFF85, -123, -32768, 0x8000},
      {DataType::kUInt16, 0xBEEF, 48879, 0xFFFF, 0xFFFF},
      {DataType::kInt32, 0xFFFE7960, -100000, INT32_MIN, 0x80000000},
      {DataType::kUInt32, 0x89ABCDEF, 2309737967.0, 0xFFFFFFFF, 0xFFFFFFFF},
      {DataType::kInt64, 0xFFFFFFFFFFFFFFFEull, -2, INT64_MIN, 0x8000000000000000ull},
      {DataType::kUInt64, 0x0000123456789ABCull, 20015998343868.0, -1, ~0ull},
      {DataType::kFloat32, 0x43668000, 230.5, 0xFF7FFFFF, 0xFF7FFFFF},
      {DataType::kFloat64, 0x405ED00000000000ull, 123.25, 0x7FEFFFFFFFFFFFFF, 0x7FEFFFFFFFFFFFFFull},
  };
  const WordOrder orders[] = {WordOrder::kABCD, WordOrder::kCDAB, WordOrder::kBADC,
                              WordOrder::kDCBA};
  for (const auto& c : cases) {
    for (WordOrder o : orders) {
      SCOPED_TRACE(std::string(to_string(c.type)) + " " + std::string(to_string(o)));
      PointSpec s;
      s.kind = RegisterKind::kInput;
      s.type = c.type;
      s.order = o;
      s.scale = 2;
      s.offset = 1;
      s.not_available = {c.sentinel};
      const PointCodec codec(s);
      const int nbytes = 2 * width_of(c.type);
      const Decoded d = codec.decode(wire(be_bytes(c.bits, nbytes), o));
      ASSERT_TRUE(d.available);
      ASSERT_TRUE(d.value.has_value());
      EXPECT_DOUBLE_EQ(*d.value, c.value * 2 + 1);
      const Decoded na = codec.decode(wire(be_bytes(c.sentinel_bits, nbytes), o));
      EXPECT_FALSE(na.available);
      EXPECT_FALSE(na.value.has_value());
      // The encoder is the decoder's inverse in every order.
      EXPECT_EQ(codec.encode_registers(c.value * 2 + 1), wire(be_bytes(c.bits, nbytes), o));
    }
  }
}

TEST(CodecMatrix, FloatNaNAndInfinityAreNotAvailableInEveryOrder) {
  for (WordOrder o : {WordOrder::kABCD, WordOrder::kCDAB, WordOrder::kBADC, WordOrder::kDCBA}) {
    PointSpec s;
    s.type = DataType::kFloat32;
    s.order = o;
    EXPECT_FALSE(PointCodec(s).decode(wire(be_bytes(0x7FC00000, 4), o)).available);
    EXPECT_FALSE(PointCodec(s).decode(wire(be_bytes(0x7F800000, 4), o)).available);
    s.type = DataType::kFloat64;
    EXPECT_FALSE(PointCodec(s).decode(wire(be_bytes(0x7FF8000000000000ull, 8), o)).available);
  }
}

TEST(Codec, AsciiStringsInEveryOrder) {
  PointSpec s;
  s.type = DataType::kString;
  s.length = 4;  // 8 characters
  const std::string text("SDM630\0\0", 8);
  std::vector<std::uint8_t> be(text.begin(), text.end());
  for (WordOrder o : {WordOrder::kABCD, WordOrder::kCDAB, WordOrder::kBADC, WordOrder::kDCBA}) {
    s.order = o;
    const PointCodec c(s);
    const Decoded d = c.decode(wire(be, o));
    EXPECT_EQ(d.text, "SDM630") << to_string(o);
    EXPECT_FALSE(d.value.has_value());
    EXPECT_EQ(c.encode_text("SDM630"), wire(be, o));
  }
  s.order = WordOrder::kABCD;
  // Space padding is trimmed; all-NUL / erased flash means no reading; control bytes are masked.
  EXPECT_EQ(PointCodec(s).decode(std::vector<std::uint16_t>{0x4142, 0x2020, 0x2020, 0x2020}).text,
            "AB");
  EXPECT_FALSE(PointCodec(s).decode(std::vector<std::uint16_t>{0, 0, 0, 0}).available);
  EXPECT_FALSE(
      PointCodec(s).decode(std::vector<std::uint16_t>{0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF}).available);
  EXPECT_EQ(PointCodec(s).decode(std::vector<std::uint16_t>{0x4107, 0x4200, 0, 0}).text, "A?B");
}

TEST(Codec, EnumerationsKeepTheCodeAndCarryTheName) {
  PointSpec s;
  s.type = DataType::kUInt16;
  s.enum_names = {{0, "stopped"}, {1, "running"}, {3, "alarm"}};
  s.not_available = {0xFFFF};
  const PointCodec c(s);
  Decoded d = c.decode(std::vector<std::uint16_t>{1});
  EXPECT_EQ(d.value, 1.0);
  EXPECT_EQ(d.text, "running");
  d = c.decode(std::vector<std::uint16_t>{7});
  EXPECT_EQ(d.value, 7.0);
  EXPECT_EQ(d.text, "unknown(7)");
  EXPECT_FALSE(c.decode(std::vector<std::uint16_t>{0xFFFF}).available);
  // An enumeration on one bit of a register.
  PointSpec b;
  b.type = DataType::kBool;
  b.bit = 15;
  b.enum_names = {{0, "closed"}, {1, "open"}};
  EXPECT_EQ(PointCodec(b).decode(std::vector<std::uint16_t>{0x8000}).text, "open");
  EXPECT_EQ(PointCodec(b).decode(std::vector<std::uint16_t>{0x7FFF}).text, "closed");
}

TEST(Codec, SignedEnumerationCodesAreComparedAsSignedIntegers) {
  PointSpec s;
  s.type = DataType::kInt16;
  s.enum_names = {{-1, "fault"}, {0, "off"}, {1, "on"}};
  const PointCodec c16(s);
  Decoded d = c16.decode(std::vector<std::uint16_t>{0xFFFF});
  EXPECT_EQ(d.value, -1.0);
  EXPECT_EQ(d.text, "fault");
  EXPECT_EQ(c16.decode(std::vector<std::uint16_t>{0xFFFE}).text, "unknown(-2)");
  s.type = DataType::kInt32;
  s.enum_names = {{-70000, "deep"}};
  const PointCodec c32(s);
  // -70000 = 0xFFFEEE90
  EXPECT_EQ(c32.decode(std::vector<std::uint16_t>{0xFFFE, 0xEE90}).text, "deep");
}

TEST(Codec, EnumerationCodesAboveTheInt64RangeAreCodesNotUndefinedBehaviour) {
  // A uint64 state word with the top bit set: converting its double to int64 would be UB.
  PointSpec s;
  s.type = DataType::kUInt64;
  s.enum_names = {{1, "one"}, {-1, "all_ones"}};  // -1 written for the bit pattern 0xFFFF...
  const PointCodec c(s);
  Decoded d = c.decode(std::vector<std::uint16_t>{0x8000, 0, 0, 5});
  EXPECT_EQ(d.text, "unknown(9223372036854775813)");
  EXPECT_EQ(d.value, 9223372036854775813.0);
  EXPECT_EQ(c.decode(std::vector<std::uint16_t>{0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF}).text, "all_ones");
  EXPECT_EQ(c.decode(std::vector<std::uint16_t>{0, 0, 0, 1}).text, "one");
}

TEST(Codec, CoilsDecodeOneBitPerWord) {
  PointSpec s;
  s.kind = RegisterKind::kCoil;
  s.type = DataType::kBool;
  s.not_available = {};
  const PointCodec c(s);
  EXPECT_EQ(c.decode(std::vector<std::uint16_t>{1}).value, 1.0);
  EXPECT_EQ(c.decode(std::vector<std::uint16_t>{0}).value, 0.0);
}

}  // namespace
}  // namespace facility::modbus
