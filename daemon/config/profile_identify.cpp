// A profile's `identify` block (identify.h; docs/config.md "Identification"): the Read Device
// Identification objects and the registers by which `facilityd scan` recognises the model.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <climits>

#include "daemon/config/reader.h"

namespace facility {
namespace {

constexpr const char* kObjectNames[] = {
    "vendor_name",  "product_code", "major_minor_revision", "vendor_url",
    "product_name", "model_name",   "user_application_name"};

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

const char* device_id_object_name(int id) { return id >= 0 && id < 7 ? kObjectNames[id] : ""; }

std::optional<int> device_id_object(const std::string& name) {
  for (int i = 0; i < 7; ++i) {
    if (name == kObjectNames[i]) return i;
  }
  return std::nullopt;
}

namespace config_detail {
namespace {

// object name -> text, for `fc43` and its `simulate`.
std::vector<std::pair<int, std::string>> parse_objects(MapReader& r) {
  std::vector<std::pair<int, std::string>> out;
  for (const char* name : kObjectNames) {
    if (auto v = r.str(name)) out.emplace_back(*device_id_object(name), *v);
  }
  return out;
}

std::optional<Fc43Match> parse_fc43(Diagnostics& d, const YAML::Node& node) {
  MapReader r(d, node, "identify fc43",
              {"vendor_name", "product_code", "major_minor_revision", "vendor_url", "product_name",
               "model_name", "user_application_name", "simulate"});
  if (!r.ok()) return std::nullopt;
  Fc43Match m;
  m.objects = parse_objects(r);
  if (m.objects.empty()) {
    d.error(node, "identify fc43: give at least one object to match, e.g. vendor_name");
    return std::nullopt;
  }
  if (r.has("simulate")) {
    MapReader sr(d, r.get("simulate"), "identify fc43 simulate",
                 {"vendor_name", "product_code", "major_minor_revision", "vendor_url",
                  "product_name", "model_name", "user_application_name"});
    if (sr.ok()) m.simulate = parse_objects(sr);
    // What the simulator answers must be recognised as this model.
    for (const auto& [id, text] : m.objects) {
      auto it = std::find_if(m.simulate.begin(), m.simulate.end(),
                             [id = id](const auto& x) { return x.first == id; });
      if (it == m.simulate.end() || lower(it->second).find(lower(text)) == std::string::npos) {
        d.error(r.get("simulate"), std::string("identify fc43 simulate: ") +
                                       device_id_object_name(id) + " must contain \"" + text +
                                       "\"");
      }
    }
  }
  return m;
}

// What an identification register must hold: equals (codes), range, or prefix (strings).
void parse_expectation(Diagnostics& d, MapReader& r, IdentifyRegister& reg) {
  const bool text = reg.spec.type == modbus::DataType::kString;
  const int given = int(r.has("equals")) + int(r.has("range")) + int(r.has("prefix"));
  if (given != 1) {
    d.error(r.node(), r.what() + ": give one of equals, range (numbers) or prefix (strings)");
    return;
  }
  if (r.has("prefix")) {
    if (!text) d.error(r.key_node("prefix"), r.what() + ": prefix applies to type string");
    reg.prefix = r.str("prefix").value_or("");
    if (reg.prefix.empty()) d.error(r.get("prefix"), r.what() + ": prefix must not be empty");
    return;
  }
  if (text) {
    d.error(r.key_node(r.has("equals") ? "equals" : "range"),
            r.what() + ": a string is matched with prefix");
    return;
  }
  if (r.has("equals")) {
    for (const auto& [v, at] : r.str_list("equals")) {
      if (auto c = r.parse_int(at, v, "equals", INT64_MIN, INT64_MAX)) reg.equals.push_back(*c);
    }
    if (reg.equals.empty()) d.error(r.get("equals"), r.what() + ": equals needs codes");
    return;
  }
  const auto range = r.str_list("range");
  std::vector<double> v;
  for (const auto& [x, at] : range) {
    try {
      v.push_back(std::stod(x));
    } catch (...) {
      d.error(at, r.what() + ": range bounds must be numbers");
    }
  }
  if (v.size() != 2 || v[0] > v[1]) {
    d.error(r.get("range"), r.what() + ": range must be [low, high] with low <= high");
    return;
  }
  reg.range = std::make_pair(v[0], v[1]);
}

// The register is readable in one request and never overlaps a never_read range or another
// identification register.
void check_register(Diagnostics& d, MapReader& r, const Profile& p, const IdentifyRegister& reg) {
  const auto& s = reg.spec;
  if (static_cast<int>(s.address) + s.width() > 65536) {
    d.error(r.get("address"), r.what() + ": value runs past address 65535");
  }
  if (!modbus::is_bit_kind(s.kind) && s.width() > p.max_registers_per_read) {
    d.error(r.get("type"), r.what() + ": wider than max_registers_per_read");
  }
  auto overlaps = [&s](modbus::RegisterKind k, std::uint32_t first, std::uint32_t last) {
    return k == s.kind && first < s.address + static_cast<std::uint32_t>(s.width()) &&
           last >= s.address;
  };
  for (const auto& nr : p.never_read) {
    if (overlaps(nr.kind, nr.first, nr.last)) {
      d.error(r.get("address"), r.what() + ": overlaps a never_read range");
    }
  }
  for (std::size_t i = 0; i < p.identify.registers.size(); ++i) {
    const auto& o = p.identify.registers[i].spec;
    if (overlaps(o.kind, o.address, o.address + static_cast<std::uint32_t>(o.width()) - 1)) {
      d.error(r.get("address"), r.what() + ": overlaps identify register " + std::to_string(i + 1));
    }
  }
}

void parse_register(Diagnostics& d, const YAML::Node& node, std::size_t n, Profile& p) {
  MapReader r(d, node, "identify register " + std::to_string(n),
              {"function", "address", "type", "order", "length", "scale", "offset", "equals",
               "range", "prefix"});
  if (!r.ok()) return;
  IdentifyRegister reg;
  reg.spec.name = "identify_" + std::to_string(n);
  reg.spec.unit = "none";
  parse_point_encoding(d, r, node, r.what(), p.address_base, reg.spec);
  reg.spec.scale = r.num("scale").value_or(1.0);
  reg.spec.offset = r.num("offset").value_or(0.0);
  if (reg.spec.scale == 0.0) d.error(r.get("scale"), r.what() + ": scale must not be 0");
  parse_expectation(d, r, reg);
  check_register(d, r, p, reg);
  p.identify.registers.push_back(std::move(reg));
}

}  // namespace

void parse_identify(Diagnostics& d, const YAML::Node& node, Profile& p) {
  MapReader r(d, node, "identify", {"fc43", "registers"});
  if (!r.ok()) return;
  if (r.has("fc43")) p.identify.fc43 = parse_fc43(d, r.get("fc43"));
  std::size_t n = 0;
  for (const auto& rn : r.seq("registers")) parse_register(d, rn, ++n, p);
  if (!r.has("fc43") && !r.has("registers")) {
    d.error(node, "identify: give fc43, registers or both");
  }
}

}  // namespace config_detail
}  // namespace facility
