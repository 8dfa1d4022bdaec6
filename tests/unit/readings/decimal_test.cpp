// Numbers as people read them (daemon/readings/decimal.h): the noise of scaling and summing is
// dropped, a value a device sent with more digits is kept exactly.
#include "daemon/readings/decimal.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <random>

namespace facility {
namespace {

TEST(Decimal, ArithmeticNoiseIsDropped) {
  EXPECT_EQ(decimal_text(2277 * 0.1), "227.7");                     // 227.70000000000002
  EXPECT_EQ(decimal_text(std::nextafter(0.602, 1.0)), "0.602");       // 0.6020000000000001
  EXPECT_EQ(decimal_text(0.1 + 0.2), "0.3");                          // 0.30000000000000004
  EXPECT_EQ(decimal_text(-(0.1 + 0.2)), "-0.3");
  EXPECT_EQ(decimal_text(4400), "4400");
  EXPECT_EQ(decimal_text(0), "0");
}

TEST(Decimal, ValuesWithMoreDigitsThanNoiseAreKeptExactly) {
  // 64-bit registers (as doubles) and float64 registers: what the device sent, bit for bit
  // (rounded to 15 digits they would read -1.23456789012346e+18 and 1.23456789012346).
  const double i64 = -1234567890123456789.0;
  EXPECT_EQ(decimal_text(i64), "-1234567890123456768");  // the double nearest the register's
  EXPECT_EQ(denoised(i64), i64);
  EXPECT_EQ(denoised(12345678901234567890.0), 12345678901234567890.0);
  EXPECT_EQ(denoised(1.2345678901234567), 1.2345678901234567);
  EXPECT_EQ(decimal_text(std::numeric_limits<double>::max()), "1.7976931348623157e+308");
  EXPECT_EQ(decimal_text(std::nan("")), "nan");
  EXPECT_EQ(decimal_text(INFINITY), "inf");
}

// round_significant is correctly rounded both ways: the same double as printf("%.*e") and strtod
// give (the C library's reference), for values of every magnitude and sign.
TEST(Decimal, RoundingMatchesPrintfAndStrtod) {
  std::mt19937_64 rng(20261207);
  std::uniform_real_distribution<double> mantissa(1.0, 10.0);
  std::uniform_int_distribution<int> exponent(-300, 300);
  std::uniform_int_distribution<int> digits(1, 17);
  for (int i = 0; i < 200000; ++i) {
    double v = mantissa(rng) * std::pow(10.0, exponent(rng));
    if (i % 2) v = -v;
    if (i % 7 == 0) v = std::round(v * 1e3) / 1e3;  // decimals as registers give them
    const int d = digits(rng);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*e", d - 1, v);
    const double reference = std::strtod(buf, nullptr);
    ASSERT_EQ(round_significant(v, d), reference) << buf << " from " << v << " at " << d;
  }
}

}  // namespace
}  // namespace facility
