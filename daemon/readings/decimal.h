// Numbers as people read them: a measured value is printed without the noise of binary
// floating point (2277 x 0.1 is 227.70000000000002 as a double, 0.602 is not 0.6020000000000001).
//
// A double holds 15 significant decimal digits faithfully (DBL_DIG): any decimal of up to 15
// digits survives text -> double -> text. A scaled register or a sum of readings whose shortest
// text needs 16-17 digits is almost always such a decimal plus the last-bit error of the
// arithmetic: rounding to 15 digits drops it when the two are a few ulps apart. Values that are
// far apart (a 64-bit or float64 register with more digits) are printed exactly, so `probe` still
// decodes bit-exactly against an independent peer (test_modbus_peers).
#pragma once

#include <cfloat>
#include <charconv>
#include <cmath>
#include <string>

namespace facility {

// `v` rounded to `digits` significant decimal digits (NaN, infinities and 0 unchanged).
// Correctly rounded both ways, like printf("%.*e") and strtod, without their locale and
// multi-precision paths (several times faster: every number of every MQTT payload passes here).
inline double round_significant(double v, int digits = DBL_DIG) {
  if (!std::isfinite(v) || v == 0) return v;
  char buf[40];
  const auto res =
      std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific, digits - 1);
  double r = v;
  std::from_chars(buf, res.ptr, r);
  return r;
}

// v without the noise of the arithmetic that made it: round_significant(v) when that is within
// 4 ulps of v (2277 x 0.1 -> 227.7, 0.6020000000000001 -> 0.602), else v itself, exactly (a 64-bit
// register's -1.2345678901234568e+18, a float64 register's 1.2345678901234567: values a device
// sent, which 15 digits would change). NaN, infinities and 0 unchanged.
inline double denoised(double v) {
  if (!std::isfinite(v) || v == 0) return v;
  const double r = round_significant(v);
  if (!std::isfinite(r)) return v;  // near the largest double, rounding up overflows
  const double ulp = std::nextafter(std::abs(v), INFINITY) - std::abs(v);
  return std::abs(r - v) <= 4 * ulp ? r : v;
}

// The shortest text of denoised(v): "227.7", "0.602", "4400", "1e+20", "nan", "inf".
inline std::string decimal_text(double v) {
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof buf, denoised(v));
  return std::string(buf, res.ptr);
}

}  // namespace facility
