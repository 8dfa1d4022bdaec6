// Derived points of a profile (`derive:`, docs/config.md "Derived points"): parsed point by
// point, then resolved once every point of the profile is known -- unknown inputs, cycles,
// types and units are reported as FILE:LINE:COL -- and put in evaluation order for
// collectors/modbus/derived.h.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <climits>
#include <map>
#include <set>

#include "daemon/config/reader.h"
#include "daemon/config/units.h"

namespace facility::config_detail {
namespace {

using modbus::DataType;
using modbus::DerivedOp;

constexpr std::pair<const char*, DerivedOp> kOps[] = {
    {"sum", DerivedOp::kSum},     {"product", DerivedOp::kProduct},
    {"words", DerivedOp::kWords}, {"scale_factor", DerivedOp::kScaleFactor},
    {"in", DerivedOp::kIn},       {"bit", DerivedOp::kBit},
};

bool is_integer_type(DataType t) {
  return t != DataType::kFloat32 && t != DataType::kFloat64 && t != DataType::kString;
}

// An input name and where it is written.
void add_input(PendingDerived& pd, const YAML::Node& n) {
  pd.point.inputs.push_back(n.IsScalar() ? n.Scalar() : std::string());
  pd.input_nodes.push_back(n);
}

// `derive: {sum: [a, b]}`, `{product: [...]}`, `{words: [hi, lo]}`: a list of point names.
void parse_input_list(Diagnostics& d, MapReader& op, const char* key, const std::string& label,
                      PendingDerived& pd) {
  const YAML::Node list = op.get(key);
  if (!list.IsSequence() || list.size() < 2) {
    d.error(list, label + ": " + key + " needs a list of at least two point names");
    return;
  }
  for (const auto& n : list) add_input(pd, n);
}

// `derive: {scale_factor: {value: P, sf: S}}`, `{in: {point: P, codes: [...]}}`,
// `{bit: {point: P, bit: N}}`.
void parse_input_map(Diagnostics& d, MapReader& op, DerivedOp kind, const std::string& label,
                     PendingDerived& pd) {
  auto& spec = pd.point.spec;
  if (kind == DerivedOp::kScaleFactor) {
    MapReader m(d, op.get("scale_factor"), label + " scale_factor", {"value", "sf"});
    if (!m.ok() || !m.str("value", true) || !m.str("sf", true)) return;
    add_input(pd, m.get("value"));
    add_input(pd, m.get("sf"));
  } else if (kind == DerivedOp::kIn) {
    MapReader m(d, op.get("in"), label + " in", {"point", "codes"});
    if (!m.ok() || !m.str("point", true)) return;
    add_input(pd, m.get("point"));
    const auto codes = m.str_list("codes");
    if (codes.empty())
      d.error(m.has("codes") ? m.get("codes") : m.node(), label + ": in needs codes");
    for (const auto& [v, at] : codes) {
      if (auto c = m.parse_int(at, v, "codes", INT64_MIN, INT64_MAX)) spec.codes.push_back(*c);
    }
  } else {
    MapReader m(d, op.get("bit"), label + " bit", {"point", "bit"});
    if (!m.ok() || !m.str("point", true)) return;
    add_input(pd, m.get("point"));
    if (auto b = m.integer("bit", 0, 63, true)) spec.bit = int(*b);
  }
}

// The operation and its inputs.
void parse_derive(Diagnostics& d, const YAML::Node& node, const std::string& label,
                  PendingDerived& pd) {
  MapReader op(d, node, label + " derive",
               {"sum", "product", "words", "scale_factor", "in", "bit"});
  if (!op.ok()) return;
  int given = 0;
  for (const auto& [key, kind] : kOps) {
    if (!op.has(key)) continue;
    if (++given > 1) {
      d.error(op.key_node(key),
              label + ": derive takes one operation, got a second (" + std::string(key) + ")");
      continue;
    }
    pd.point.spec.op = kind;
    if (kind == DerivedOp::kSum || kind == DerivedOp::kProduct || kind == DerivedOp::kWords) {
      parse_input_list(d, op, key, label, pd);
    } else {
      parse_input_map(d, op, kind, label, pd);
    }
  }
  if (given == 0) {
    d.error(node, label + ": derive needs one of sum, product, words, scale_factor, in, bit");
  }
}

// type, scale, offset, not_available and enum: the encoding of a `words` value; for the other
// operations only `enum` (names of 0 and 1 for in / bit).
void parse_derived_encoding(Diagnostics& d, MapReader& pr, const std::string& label,
                            PendingDerived& pd) {
  auto& spec = pd.point.spec;
  const bool words = spec.op == DerivedOp::kWords;
  for (const char* k : {"type", "scale", "offset", "not_available"}) {
    if (pr.has(k) && !words) {
      d.error(pr.key_node(k), label + ": \"" + k + "\" applies only to derive: words");
    }
  }
  modbus::PointSpec& w = spec.words;
  w.name = spec.name;
  if (words) {
    if (auto t = pr.str("type", true)) {
      const auto dt = modbus::parse_data_type(*t);
      if (!dt || !(modbus::width_of(*dt) == 2 || modbus::width_of(*dt) == 4) ||
          *dt == DataType::kString) {
        d.error(pr.get("type"), label +
                                    ": words makes a 32- or 64-bit value: type must be "
                                    "int32, uint32, float32, int64, uint64 or float64");
      } else {
        w.type = *dt;
      }
    }
  }
  if (pr.has("enum") && !words && spec.op != DerivedOp::kIn && spec.op != DerivedOp::kBit) {
    d.error(pr.key_node("enum"), label + ": \"enum\" applies to derive: words, in and bit");
  }
  if (!words) w.type = DataType::kUInt16;  // in / bit: 0 or 1
  parse_point_enum(d, pr, label, w);
  parse_point_value(d, pr, label, w);  // unit, and for words scale, offset, not_available
  spec.unit = w.unit;
  pd.has_enum = !w.enum_names.empty();
  if (!words) {
    spec.enum_names = w.enum_names;
    for (const auto& [code, name] : w.enum_names) {
      if (code != 0 && code != 1) {
        d.error(pr.get("enum"),
                label + ": " + to_string(spec.op) + " gives 0 or 1: enum codes must be 0 and 1");
        break;
      }
    }
  }
}

}  // namespace

void parse_derived_point(Diagnostics& d, const YAML::Node& pn,
                         std::unordered_set<std::string>& names, std::vector<PendingDerived>& out) {
  MapReader pr(d, pn, "point",
               {"name", "derive", "type", "scale", "offset", "unit", "not_available", "enum",
                "description"});
  if (!pr.ok()) return;
  PendingDerived pd;
  pd.point.loc = d.loc(pn);
  pd.derive = pr.get("derive");
  std::string label = "point";
  if (auto n = pr.str("name", true)) {
    pd.point.spec.name = *n;
    label = "point \"" + *n + "\"";
    if (!lower_snake_case(*n)) d.error(pr.get("name"), label + ": name must be lower_snake_case");
    if (!names.insert(*n).second) d.error(pr.get("name"), label + ": duplicate point name");
  }
  parse_derive(d, pd.derive, label, pd);
  parse_derived_encoding(d, pr, label, pd);
  pd.point.description = pr.str("description").value_or("");
  out.push_back(std::move(pd));
}

namespace {

// What a point offers as an input of a derived point.
struct InputInfo {
  std::string unit;
  bool numeric = false;     // has a numeric value (not a string)
  bool exact_int = false;   // its value is the raw integer (integer type, scale 1, offset 0)
  bool register16 = false;  // a plain 16-bit register: int16/uint16, scale 1, no enum, no bit
  bool is_int16 = false;    // exact_int and int16
  bool is_enum = false;
  int bits = 0;  // width of the integer
};

InputInfo info_of(const modbus::PointSpec& s) {
  InputInfo i;
  i.unit = s.unit;
  i.numeric = s.type != DataType::kString;
  const bool plain = s.scale == 1.0 && s.offset == 0.0;
  i.exact_int = is_integer_type(s.type) && plain;
  i.is_enum = !s.enum_names.empty();
  const bool bit = s.type == DataType::kBool || modbus::is_bit_kind(s.kind);
  i.bits = bit ? 1 : 16 * modbus::width_of(s.type);
  i.register16 = !bit && plain && !i.is_enum && s.not_available.empty() &&
                 (s.type == DataType::kInt16 || s.type == DataType::kUInt16);
  i.is_int16 = i.exact_int && s.type == DataType::kInt16 && !bit;
  return i;
}

InputInfo info_of(const PendingDerived& pd) {
  const auto& s = pd.point.spec;
  InputInfo i;
  i.unit = s.unit;
  i.numeric = true;
  i.is_enum = pd.has_enum;
  if (s.op == DerivedOp::kIn || s.op == DerivedOp::kBit) {
    i.exact_int = true;
    i.bits = 1;
  } else if (s.op == DerivedOp::kWords) {
    i.exact_int = is_integer_type(s.words.type) && s.words.scale == 1.0 && s.words.offset == 0.0;
    i.bits = 16 * modbus::width_of(s.words.type);
  }
  return i;
}

// One derived point's inputs against its operation: types and units.
class Checker {
 public:
  Checker(Diagnostics& d, const Profile& p, const std::vector<PendingDerived>& pending)
      : d_(d), p_(p), pending_(pending) {}

  // The input's info; nullopt (and an error) when no point has that name.
  std::optional<InputInfo> input(const PendingDerived& pd, std::size_t i, bool& read) const;
  void check(const PendingDerived& pd) const;

 private:
  void check_units(const PendingDerived& pd, const std::vector<InputInfo>& in) const;
  Diagnostics& d_;
  const Profile& p_;
  const std::vector<PendingDerived>& pending_;
};

std::optional<InputInfo> Checker::input(const PendingDerived& pd, std::size_t i, bool& read) const {
  const std::string& name = pd.point.inputs[i];
  read = false;
  if (const ProfilePoint* rp = p_.find(name)) {
    read = true;
    return info_of(rp->spec);
  }
  for (const auto& other : pending_) {
    if (other.point.spec.name == name) return info_of(other);
  }
  d_.error(pd.input_nodes[i], "point \"" + pd.point.spec.name + "\": derive: no point named \"" +
                                  name + "\" in this profile");
  return std::nullopt;
}

void Checker::check(const PendingDerived& pd) const {
  const auto& s = pd.point.spec;
  const std::string label = "point \"" + s.name + "\": " + to_string(s.op) + ": ";
  std::vector<InputInfo> in;
  for (std::size_t i = 0; i < pd.point.inputs.size(); ++i) {
    bool read = false;
    const auto info = input(pd, i, read);
    if (!info) return;
    const YAML::Node& at = pd.input_nodes[i];
    const std::string& n = pd.point.inputs[i];
    if (!info->numeric) d_.error(at, label + "\"" + n + "\" is a string");
    const bool wants_code = s.op == DerivedOp::kIn || s.op == DerivedOp::kBit;
    if (wants_code && !info->exact_int) {
      d_.error(at, label + "\"" + n + "\" must be an integer register without scale or offset");
    }
    if (!wants_code && info->is_enum) d_.error(at, label + "\"" + n + "\" is an enumeration");
    if (s.op == DerivedOp::kWords && !(read && info->register16)) {
      d_.error(at, label + "\"" + n +
                       "\" must be a read int16 or uint16 register without "
                       "scale, offset, enum, bit or not_available");
    }
    if (s.op == DerivedOp::kScaleFactor && i == 1 && !(read && info->is_int16 && !info->is_enum)) {
      d_.error(at, label + "the scale factor \"" + n +
                       "\" must be a read int16 register "
                       "without scale or offset");
    }
    if (s.op == DerivedOp::kBit && info->exact_int && s.bit >= info->bits) {
      d_.error(at, label + "\"" + n + "\" has " + std::to_string(info->bits) + " bit(s), no bit " +
                       std::to_string(s.bit));
    }
    in.push_back(*info);
  }
  if (s.op == DerivedOp::kWords && !in.empty() &&
      static_cast<std::size_t>(modbus::width_of(s.words.type)) != in.size()) {
    d_.error(pd.derive, label + "type " + std::string(modbus::to_string(s.words.type)) + " needs " +
                            std::to_string(modbus::width_of(s.words.type)) + " registers, got " +
                            std::to_string(in.size()));
  }
  check_units(pd, in);
}

void Checker::check_units(const PendingDerived& pd, const std::vector<InputInfo>& in) const {
  const auto& s = pd.point.spec;
  const std::string result = unit_dimension(s.unit);
  if (result.empty() || in.size() != pd.point.inputs.size()) return;
  const std::string label = "point \"" + s.name + "\": " + to_string(s.op) + ": ";
  auto dim = [](const InputInfo& i) { return std::string(unit_dimension(i.unit)); };
  auto scalar = [](const std::string& x) { return x == "ratio" || x == "none"; };
  if (s.op == DerivedOp::kSum || s.op == DerivedOp::kScaleFactor) {
    const std::size_t n = s.op == DerivedOp::kSum ? in.size() : 1;
    for (std::size_t i = 0; i < n; ++i) {
      if (dim(in[i]) != result) {
        d_.error(pd.input_nodes[i], label + "\"" + pd.point.inputs[i] + "\" is in " + in[i].unit +
                                        " (" + dim(in[i]) + "), not " + result + " like " + s.unit);
      }
    }
  } else if (s.op == DerivedOp::kProduct) {
    std::vector<std::size_t> quantities;
    for (std::size_t i = 0; i < in.size(); ++i) {
      if (!scalar(dim(in[i]))) quantities.push_back(i);
    }
    const std::string want = quantities.empty() ? std::string() : dim(in[quantities[0]]);
    if (quantities.size() > 1) {
      d_.error(pd.derive, label + "multiplies one quantity by ratios; \"" +
                              pd.point.inputs[quantities[0]] + "\" and \"" +
                              pd.point.inputs[quantities[1]] + "\" are both quantities");
    } else if (quantities.empty() ? !scalar(result) : want != result) {
      d_.error(pd.derive, label + "the product is " + (want.empty() ? "a ratio" : want) + ", not " +
                              result + " like " + s.unit);
    }
  }
}

// Depth-first order: every input before the points that use it; a cycle is an error.
class Orderer {
 public:
  Orderer(Diagnostics& d, std::vector<PendingDerived>& pending) : d_(d), pending_(pending) {
    state_.assign(pending.size(), 0);
    for (std::size_t i = 0; i < pending.size(); ++i) by_name_[pending[i].point.spec.name] = i;
  }
  std::vector<std::size_t> order() {
    for (std::size_t i = 0; i < pending_.size(); ++i) visit(i, {});
    return out_;
  }

 private:
  void visit(std::size_t i, std::vector<std::size_t> path) {
    if (state_[i] == 2) return;
    path.push_back(i);
    if (state_[i] == 1) {
      std::string chain;
      const auto start = std::find(path.begin(), path.end(), i);
      for (auto it = start; it != path.end(); ++it) {
        chain += (chain.empty() ? "" : " -> ") + pending_[*it].point.spec.name;
      }
      d_.error(pending_[i].derive, "point \"" + pending_[i].point.spec.name +
                                       "\": derived points depend on each other: " + chain);
      return;
    }
    state_[i] = 1;
    for (const std::string& in : pending_[i].point.inputs) {
      auto it = by_name_.find(in);
      if (it != by_name_.end()) visit(it->second, path);
    }
    state_[i] = 2;
    out_.push_back(i);
  }
  Diagnostics& d_;
  std::vector<PendingDerived>& pending_;
  std::vector<int> state_;  // 0 new, 1 on the path, 2 done
  std::map<std::string, std::size_t> by_name_;
  std::vector<std::size_t> out_;
};

}  // namespace

void resolve_derived(Diagnostics& d, Profile& p, std::vector<PendingDerived>& pending) {
  if (pending.empty()) return;
  const std::size_t errors_before = d.errors().size();
  Orderer orderer(d, pending);
  const std::vector<std::size_t> order = orderer.order();
  Checker checker(d, p, pending);
  for (const auto& pd : pending) checker.check(pd);
  if (d.errors().size() != errors_before) return;  // indices of a broken set mean nothing
  std::map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < p.points.size(); ++i) index[p.points[i].spec.name] = i;
  for (std::size_t k = 0; k < order.size(); ++k) {
    index[pending[order[k]].point.spec.name] = p.points.size() + k;
  }
  for (std::size_t k : order) {
    DerivedPoint dp = std::move(pending[k].point);
    for (const std::string& in : dp.inputs) dp.spec.inputs.push_back(index.at(in));
    p.derived.push_back(std::move(dp));
  }
  // Unit factors, now that every point (read or derived) is in place.
  for (DerivedPoint& dp : p.derived) {
    dp.spec.from_base = to_base_unit(1.0, dp.spec.unit);
    for (const std::string& in : dp.inputs) {
      const ProfilePoint* rp = p.find(in);
      const DerivedPoint* dq = p.find_derived(in);
      dp.spec.to_base.push_back(to_base_unit(1.0, rp ? rp->spec.unit : dq->spec.unit));
    }
  }
}

}  // namespace facility::config_detail
