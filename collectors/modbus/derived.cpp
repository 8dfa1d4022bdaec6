#include "collectors/modbus/derived.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace facility::modbus {
namespace {

// A value that must be a whole number (a register, a code, an exponent): nullopt when it is not.
std::optional<std::int64_t> whole(double v) {
  if (!std::isfinite(v) || std::trunc(v) != v || std::abs(v) > 9.2e18) return std::nullopt;
  return static_cast<std::int64_t>(v);
}

std::string name_of(const std::vector<std::pair<std::int64_t, std::string>>& names,
                    std::int64_t code) {
  for (const auto& [c, n] : names) {
    if (c == code) return n;
  }
  return names.empty() ? std::string() : "unknown(" + std::to_string(code) + ")";
}

// 10^e exactly for |e| <= 22 (every such power of ten is a double); value x 10^e rounded once.
std::optional<double> times_pow10(double value, std::int64_t e) {
  if (e < -22 || e > 22) return std::nullopt;
  double p = 1.0;
  for (std::int64_t i = 0; i < std::abs(e); ++i) p *= 10.0;
  return e >= 0 ? value * p : value / p;
}

}  // namespace

const char* to_string(DerivedOp op) {
  switch (op) {
    case DerivedOp::kSum:
      return "sum";
    case DerivedOp::kProduct:
      return "product";
    case DerivedOp::kWords:
      return "words";
    case DerivedOp::kScaleFactor:
      return "scale_factor";
    case DerivedOp::kIn:
      return "in";
    case DerivedOp::kBit:
      return "bit";
  }
  return "?";
}

DerivedEvaluator::DerivedEvaluator(std::vector<DerivedSpec> specs, std::size_t read_points)
    : specs_(std::move(specs)), read_points_(read_points) {
  words_codecs_.resize(specs_.size());
  for (std::size_t k = 0; k < specs_.size(); ++k) {
    const DerivedSpec& s = specs_[k];
    for (std::size_t i : s.inputs) {
      if (i >= read_points_ + k) {
        throw std::invalid_argument("derived point " + s.name + ": input after its own position");
      }
    }
    if (s.op == DerivedOp::kWords) {
      PointSpec w = s.words;
      w.kind = RegisterKind::kHolding;
      w.order = WordOrder::kABCD;  // the input list gives the order
      if (w.type == DataType::kString || w.type == DataType::kBool ||
          static_cast<std::size_t>(width_of(w.type)) != s.inputs.size()) {
        throw std::invalid_argument("derived point " + s.name + ": type does not fit the inputs");
      }
      words_codecs_[k].emplace(std::move(w));
    }
    if (s.op == DerivedOp::kBit && (s.bit < 0 || s.bit > 63)) {
      throw std::invalid_argument("derived point " + s.name + ": bit must be 0..63");
    }
    const bool scaled =
        s.op == DerivedOp::kSum || s.op == DerivedOp::kProduct || s.op == DerivedOp::kScaleFactor;
    if (scaled && s.to_base.size() != s.inputs.size()) {
      throw std::invalid_argument("derived point " + s.name + ": one unit factor per input");
    }
  }
}

void DerivedEvaluator::evaluate(std::vector<DerivedValue>& values) const {
  if (values.size() != read_points_) return;
  values.reserve(values.size() + specs_.size());
  for (std::size_t k = 0; k < specs_.size(); ++k) {
    DerivedValue v = evaluate_one(specs_[k], values, k);
    values.push_back(std::move(v));
  }
}

DerivedValue DerivedEvaluator::evaluate_one(const DerivedSpec& s,
                                            const std::vector<DerivedValue>& values,
                                            std::size_t k) const {
  DerivedValue out;
  std::vector<double> in;
  in.reserve(s.inputs.size());
  for (std::size_t i : s.inputs) {
    const DerivedValue& x = values[i];
    if (!x.usable || !x.value) return out;  // absent when any input is absent
    in.push_back(*x.value);
    if (out.read_at == std::chrono::system_clock::time_point{} || x.read_at < out.read_at) {
      out.read_at = x.read_at;
    }
  }
  switch (s.op) {
    case DerivedOp::kSum: {
      double base = 0;
      for (std::size_t i = 0; i < in.size(); ++i) base += in[i] * s.to_base[i];
      out.value = base / s.from_base;
      break;
    }
    case DerivedOp::kProduct: {
      double base = 1;
      for (std::size_t i = 0; i < in.size(); ++i) base *= in[i] * s.to_base[i];
      out.value = base / s.from_base;
      break;
    }
    case DerivedOp::kScaleFactor: {
      const auto e = whole(in[1]);
      if (!e) break;
      if (auto v = times_pow10(in[0], *e)) out.value = *v * s.to_base[0] / s.from_base;
      break;
    }
    case DerivedOp::kWords: {
      std::vector<std::uint16_t> words;
      for (double x : in) {
        const auto w = whole(x);
        if (!w || *w < -32768 || *w > 65535) return out;
        words.push_back(static_cast<std::uint16_t>(*w & 0xFFFF));
      }
      Decoded d = words_codecs_[k]->decode(words);
      if (d.available) out.value = d.value;
      out.text = std::move(d.text);
      break;
    }
    case DerivedOp::kIn: {
      const auto code = whole(in[0]);
      if (!code) break;
      const bool hit = std::find(s.codes.begin(), s.codes.end(), *code) != s.codes.end();
      out.value = hit ? 1.0 : 0.0;
      out.text = name_of(s.enum_names, hit ? 1 : 0);
      break;
    }
    case DerivedOp::kBit: {
      const auto word = whole(in[0]);
      if (!word) break;
      const std::int64_t b = (static_cast<std::uint64_t>(*word) >> s.bit) & 1u;
      out.value = static_cast<double>(b);
      out.text = name_of(s.enum_names, b);
      break;
    }
  }
  if (out.value && !std::isfinite(*out.value)) out.value.reset();
  return out;
}

}  // namespace facility::modbus
