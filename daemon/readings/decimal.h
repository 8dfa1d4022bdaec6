// Numbers as people read them: a measured value is printed without the noise of binary
// floating point (2277 x 0.1 is 227.70000000000002 as a double, 0.602 is not 0.6020000000000001).
//
// A double holds 15 significant decimal digits faithfully (DBL_DIG): any decimal of up to 15
// digits survives text -> double -> text. Rounding to 15 significant digits therefore keeps every
// value a device or the model means (no register or sum of readings carries more) and drops only
// the last-bit error of the arithmetic; the shortest text that reads back as the rounded double
// is then the decimal the value stands for.
#pragma once

#include <cfloat>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace facility {

// `v` rounded to `digits` significant decimal digits (NaN, infinities and 0 unchanged).
inline double round_significant(double v, int digits = DBL_DIG) {
  if (!std::isfinite(v) || v == 0) return v;
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.*e", digits - 1, v);
  return std::strtod(buf, nullptr);
}

// The shortest text of round_significant(v): "227.7", "0.602", "4400", "1e+20", "nan", "inf".
inline std::string decimal_text(double v) {
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof buf, round_significant(v));
  return std::string(buf, res.ptr);
}

}  // namespace facility
