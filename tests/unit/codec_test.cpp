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
