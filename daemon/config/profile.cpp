// Profiles (register maps, config/profiles/*.yaml): one file per device model, parsed point by
// point; where profiles are looked up (profiles_dir, /etc/facilityd/profiles, the shipped ones);
// and the library of profiles one configuration uses, loaded lazily, each file once.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <climits>
#include <filesystem>
#include <regex>
#include <set>
#include <unordered_set>

#include "daemon/config/reader.h"
#include "daemon/config/units.h"
#include "facilityd_paths.h"

namespace facility::config_detail {
namespace fs = std::filesystem;

bool lower_snake_case(const std::string& s) {
  static const std::regex re(R"(^[a-z][a-z0-9_]*$)");
  return std::regex_match(s, re);
}

// function, address, type, order, bit and length: where the value is and how it is encoded.
void parse_point_encoding(Diagnostics& d, MapReader& pr, const YAML::Node& pn,
                          const std::string& label, int address_base, modbus::PointSpec& s) {
  if (auto f = pr.str("function", true)) {
    if (auto k = modbus::parse_register_kind(*f)) {
      s.kind = *k;
    } else {
      d.error(pr.get("function"), label + ": unknown function \"" + *f +
                                      "\" (expected coil, discrete_input, holding, input)");
    }
  }
  if (auto a = pr.integer("address", 0, 65535, true)) {
    if (*a < address_base) {
      d.error(pr.get("address"), label + ": address " + std::to_string(*a) +
                                     " is below the profile's address_base (" +
                                     std::to_string(address_base) + ")");
    } else {
      s.address = std::uint16_t(*a - address_base);
    }
  }
  if (auto t = pr.str("type")) {
    if (auto dt = modbus::parse_data_type(*t)) {
      s.type = *dt;
    } else {
      d.error(pr.get("type"), label + ": unknown type \"" + *t +
                                  "\" (expected bool, int16, uint16, int32, uint32, int64, "
                                  "uint64, float32, float64, string)");
    }
  } else if (modbus::is_bit_kind(s.kind)) {
    s.type = modbus::DataType::kBool;
  } else {
    d.error(pn, label + ": missing required key \"type\"");
  }
  if (modbus::is_bit_kind(s.kind) && s.type != modbus::DataType::kBool) {
    d.error(pr.get("type"),
            label + ": coils and discrete inputs hold single bits: type must be bool");
  }
  if (auto o = pr.str("order")) {
    if (auto wo = modbus::parse_word_order(*o)) {
      s.order = *wo;
    } else {
      d.error(pr.get("order"),
              label + ": unknown word order \"" + *o + "\" (expected ABCD, CDAB, BADC, DCBA)");
    }
  }
  if (auto b = pr.integer("bit", 0, 15)) {
    s.bit = int(*b);
    if (s.type != modbus::DataType::kBool || modbus::is_bit_kind(s.kind)) {
      d.error(pr.get("bit"), label + ": \"bit\" applies only to type bool on a register");
    }
  } else if (s.type == modbus::DataType::kBool && !modbus::is_bit_kind(s.kind)) {
    s.bit = -1;  // whole register != 0
  }
  if (auto l = pr.integer("length", 1, 123)) {
    s.length = int(*l);
    if (s.type != modbus::DataType::kString) {
      d.error(pr.get("length"), label + ": \"length\" applies only to type string");
    }
  } else if (s.type == modbus::DataType::kString && !pr.has("length")) {
    d.error(pn, label + ": a string needs \"length\" (registers, two characters each)");
    s.length = 1;
  }
  if (s.type == modbus::DataType::kString && modbus::is_bit_kind(s.kind)) s.length = 1;
}

// `enum`: raw codes to state names.
void parse_point_enum(Diagnostics& d, MapReader& pr, const std::string& label,
                      modbus::PointSpec& s) {
  if (!pr.has("enum")) return;
  const YAML::Node en = pr.get("enum");
  if (!en.IsMap() || en.size() == 0) {
    d.error(en, label + ": \"enum\" must map raw codes to names, e.g. {0: stopped, 1: running}");
  } else if (s.type == modbus::DataType::kString || s.type == modbus::DataType::kFloat32 ||
             s.type == modbus::DataType::kFloat64) {
    d.error(pr.key_node("enum"), label + ": \"enum\" needs an integer or bool type");
  } else {
    std::set<std::int64_t> codes;
    for (auto it = en.begin(); it != en.end(); ++it) {
      auto code = pr.parse_int(it->first, it->first.Scalar(), "enum code", INT64_MIN, INT64_MAX);
      const std::string name = it->second.IsScalar() ? it->second.Scalar() : "";
      if (!lower_snake_case(name)) {
        d.error(it->second, label + ": enum name \"" + name + "\" must be lower_snake_case");
        continue;
      }
      if (!code) continue;
      if (!codes.insert(*code).second) {
        d.error(it->first, label + ": enum code " + it->first.Scalar() + " listed twice");
        continue;
      }
      s.enum_names.emplace_back(*code, name);
    }
  }
  if (pr.has("scale") || pr.has("offset")) {
    d.error(pr.key_node(pr.has("scale") ? "scale" : "offset"),
            label + ": an enumeration keeps its raw code; scale and offset do not apply");
  }
}

// scale, offset, unit and the "not available" sentinels: what the raw value means.
void parse_point_value(Diagnostics& d, MapReader& pr, const std::string& label,
                       modbus::PointSpec& s) {
  s.scale = pr.num("scale").value_or(1.0);
  s.offset = pr.num("offset").value_or(0.0);
  if (pr.has("scale") && s.scale == 0.0) d.error(pr.get("scale"), label + ": scale must not be 0");
  if (auto u = pr.str("unit", true)) {
    s.unit = *u;
    if (!is_known_unit(*u)) {
      d.error(pr.get("unit"),
              label + ": unknown unit \"" + *u + "\" (expected " + known_units() + ")");
    }
  }
  for (const auto& [v, at] : pr.str_list("not_available")) {
    if (auto iv = pr.parse_int(at, v, "not_available", INT64_MIN, INT64_MAX)) {
      s.not_available.push_back(*iv);
    }
  }
}

namespace {

// The point fits in one read of the profile, and it is not in a range the device must never be
// asked for.
void check_point_width(Diagnostics& d, MapReader& pr, const YAML::Node& pn,
                       const std::string& label, const Profile& p, const modbus::PointSpec& s) {
  if (!modbus::is_bit_kind(s.kind) && s.width() > p.max_registers_per_read) {
    d.error(pr.has("type") ? pr.get("type") : YAML::Node(pn),
            label + ": is " + std::to_string(s.width()) +
                " registers wide, more than "
                "max_registers_per_read (" +
                std::to_string(p.max_registers_per_read) + "), so no read could hold it");
  }
}
void check_point_never_read(Diagnostics& d, MapReader& pr, const std::string& label,
                            const Profile& p, const modbus::PointSpec& s) {
  for (const auto& nr : p.never_read) {
    if (nr.kind == s.kind && nr.first < s.address + s.width() && nr.last >= s.address) {
      d.error(pr.get("address"), label + ": overlaps a never_read range (" +
                                     std::to_string(nr.first) + ".." + std::to_string(nr.last) +
                                     ")");
      break;
    }
  }
}

void parse_point(Diagnostics& d, const YAML::Node& pn, Profile& p,
                 std::unordered_set<std::string>& names, std::vector<PendingDerived>& derived) {
  if (pn.IsMap() && pn["derive"]) {
    parse_derived_point(d, pn, names, derived);
    return;
  }
  MapReader pr(d, pn, "point",
               {"name", "function", "address", "type", "order", "bit", "length", "scale", "offset",
                "unit", "not_available", "enum", "interval", "description"});
  if (!pr.ok()) return;
  ProfilePoint pp;
  auto& s = pp.spec;
  std::string label = "point";
  if (auto n = pr.str("name", true)) {
    s.name = *n;
    label = "point \"" + *n + "\"";
    if (!lower_snake_case(*n)) d.error(pr.get("name"), label + ": name must be lower_snake_case");
    if (!names.insert(*n).second) d.error(pr.get("name"), label + ": duplicate point name");
  }
  parse_point_encoding(d, pr, pn, label, p.address_base, s);
  parse_point_enum(d, pr, label, s);
  if (static_cast<int>(s.address) + s.width() > 65536) {
    d.error(pr.get("address"), label + ": value runs past address 65535");
  }
  parse_point_value(d, pr, label, s);
  check_point_width(d, pr, pn, label, p, s);
  pp.description = pr.str("description").value_or("");
  pp.interval = pr.duration("interval");
  check_point_never_read(d, pr, label, p, s);
  p.points.push_back(std::move(pp));
}

// A register holds one value: two points that share only part of their registers (float32s at
// 4-5 and 5-6) are a typo in an address or a type. Reading the same span two ways (a status word
// as a number and as an enumeration) and single bits of a register are fine.
void check_overlaps(Diagnostics& d, const Profile& p, const std::vector<YAML::Node>& at) {
  struct Span {
    int first, last;
    std::size_t index;
  };
  std::map<modbus::RegisterKind, std::vector<Span>> tables;
  for (std::size_t i = 0; i < p.points.size(); ++i) {
    const auto& s = p.points[i].spec;
    if (s.bit >= 0) continue;
    tables[s.kind].push_back({s.address, s.address + s.width() - 1, i});
  }
  for (auto& [kind, spans] : tables) {
    std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
      return std::tie(a.first, a.last) < std::tie(b.first, b.last);
    });
    for (std::size_t i = 1; i < spans.size(); ++i) {
      // Against every earlier span still open at this one's start (the widest reaches furthest).
      for (std::size_t j = i; j-- > 0;) {
        const Span& a = spans[j];
        const Span& b = spans[i];
        if (a.last < b.first) continue;
        if (a.first == b.first && a.last == b.last) continue;
        const auto& pa = p.points[a.index].spec;
        const auto& pb = p.points[b.index].spec;
        const std::size_t later = std::max(a.index, b.index);
        const auto& first = later == a.index ? pb : pa;
        const auto& second = later == a.index ? pa : pb;
        const Span& fs = later == a.index ? b : a;
        const Span& ss = later == a.index ? a : b;
        auto range = [](const Span& x) {
          return x.first == x.last ? std::to_string(x.first)
                                   : std::to_string(x.first) + "-" + std::to_string(x.last);
        };
        d.error(at[later], "point \"" + second.name + "\": " +
                               std::string(modbus::to_string(kind)) + " registers " + range(ss) +
                               " overlap registers " + range(fs) + " of point \"" + first.name +
                               "\" (one register holds one value: check both addresses and "
                               "types; is one of them 1-based?)");
        break;
      }
    }
  }
}

}  // namespace

namespace {

// `kinds`: the device kinds a profile is for.
std::vector<DeviceKind> parse_profile_kinds(Diagnostics& d, MapReader& r) {
  std::vector<DeviceKind> out;
  for (const auto& [name, at] : r.str_list("kinds")) {
    if (const DeviceKindInfo* k = find_kind(name)) {
      if (std::find(out.begin(), out.end(), k->kind) == out.end()) out.push_back(k->kind);
    } else {
      std::string list;
      for (const DeviceKindInfo* x : device_kinds()) {
        list += (list.empty() ? "" : ", ") + std::string(x->name);
      }
      d.error(at, "profile: unknown kind \"" + name + "\" in kinds (expected " + list + ")");
    }
  }
  return out;
}

// `defaults`: transport settings the model needs unless its endpoint's entry sets them.
ProfileLinkDefaults parse_link_defaults(Diagnostics& d, MapReader& r) {
  ProfileLinkDefaults out;
  if (!r.has("defaults")) return out;
  MapReader dr(d, r.get("defaults"), "profile defaults",
               {"pause_after_connect", "pause_between_requests", "baud", "parity", "stop_bits"});
  if (!dr.ok()) return out;
  out.pause_after_connect = dr.duration("pause_after_connect");
  out.pause_between_requests = dr.duration("pause_between_requests");
  if (auto v = dr.integer("baud", 50, 4'000'000)) out.baud = int(*v);
  out.parity = dr.choice<char>("parity", {{"none", 'N'}, {"even", 'E'}, {"odd", 'O'}});
  if (auto v = dr.integer("stop_bits", 1, 2)) out.stop_bits = int(*v);
  return out;
}

// Profile-level keys other than the points.
void parse_profile_header(Diagnostics& d, MapReader& r, const std::string& path, Profile& p) {
  const std::string stem = fs::path(path).stem().string();
  if (auto n = r.str("name", true)) {
    p.name = *n;
    if (*n != stem) {
      d.error(r.get("name"),
              "profile: name \"" + *n + "\" must match the file name \"" + stem + ".yaml\"");
    }
  }
  p.description = r.str("description").value_or("");
  p.source = r.str("source").value_or("");
  p.kinds = parse_profile_kinds(d, r);
  if (auto b = r.integer("address_base", 0, 1)) p.address_base = int(*b);
  if (auto m = r.integer("max_registers_per_read", 1, 125)) p.max_registers_per_read = int(*m);
  if (auto m = r.integer("max_gap", 0, 125)) p.max_gap = int(*m);
  p.never_read = parse_address_ranges(d, r, "never_read", p.address_base);
  p.defaults = parse_link_defaults(d, r);
}

}  // namespace

std::shared_ptr<Profile> parse_profile(Diagnostics& d, const std::string& path) {
  YAML::Node root = load_yaml(d, path);
  if (!root.IsDefined() || root.IsNull()) {
    if (d.errors().empty()) d.error(SourceLoc{path, 0, 0}, "profile file is empty");
    return nullptr;
  }
  auto p = std::make_shared<Profile>();
  p->loc = SourceLoc{path, 1, 1};
  MapReader r(d, root, "profile",
              {"name", "description", "source", "kinds", "address_base", "max_registers_per_read",
               "max_gap", "never_read", "defaults", "points", "identify"});
  if (!r.ok()) return nullptr;
  parse_profile_header(d, r, path, *p);
  std::unordered_set<std::string> names;
  std::vector<PendingDerived> derived;
  auto points = r.seq("points", true);
  if (points.empty() && r.has("points")) d.error(r.get("points"), "profile: no points defined");
  std::vector<YAML::Node> address_nodes;  // of each point in p->points, for overlap errors
  for (const auto& pn : points) {
    const std::size_t before = p->points.size();
    parse_point(d, pn, *p, names, derived);
    if (p->points.size() > before) address_nodes.push_back(pn.IsMap() ? pn["address"] : pn);
  }
  check_overlaps(d, *p, address_nodes);  // read points only: derived ones have no registers
  if (p->points.empty() && !derived.empty()) {
    d.error(r.get("points"), "profile: only derived points: at least one point must be read");
  }
  resolve_derived(d, *p, derived);
  if (r.has("identify")) parse_identify(d, r.get("identify"), *p);
  return p;
}

ProfileLibrary::ProfileLibrary(Diagnostics& d, Config& cfg, MapReader& top) : d_(d), cfg_(cfg) {
  const fs::path base = fs::path(cfg.path).parent_path();
  fs::path profiles_dir = base / "profiles";
  if (auto pd = top.str("profiles_dir")) {
    profiles_dir = fs::path(*pd).is_absolute() ? fs::path(*pd) : base / *pd;
  }
  search_path_ = profile_search_path(profiles_dir);
}

std::shared_ptr<const Profile> ProfileLibrary::get(const std::string& name, const YAML::Node& at,
                                                   const std::string& what) {
  auto it = cfg_.profiles.find(name);
  if (it != cfg_.profiles.end()) return it->second;
  const fs::path file = find_profile_file(search_path_, name);
  if (file.empty()) {
    std::string dirs, avail;
    for (const auto& dir : search_path_) dirs += (dirs.empty() ? "" : ", ") + dir.string();
    for (const auto& n : available_profiles(search_path_)) avail += (avail.empty() ? "" : ", ") + n;
    d_.error(at, what + ": unknown profile \"" + name + "\" (no " + name + ".yaml in " + dirs +
                     ")" + (avail.empty() ? "" : "; available: " + avail));
    cfg_.profiles[name] = nullptr;
    return nullptr;
  }
  Diagnostics pd(file.string());
  auto p = parse_profile(pd, file.string());
  const bool ok = pd.errors().empty();
  d_.absorb(pd);
  cfg_.profiles[name] = ok ? p : nullptr;
  return cfg_.profiles[name];
}

}  // namespace facility::config_detail

namespace facility {
namespace fs = std::filesystem;

std::vector<fs::path> profile_search_path(const fs::path& first) {
  std::vector<fs::path> out;
  for (fs::path dir : {first, fs::path(FACILITYD_SYSCONFDIR) / "profiles",
                       fs::path(FACILITYD_DATADIR) / "profiles"}) {
    if (dir.empty()) continue;
    dir = dir.lexically_normal();
    if (std::find(out.begin(), out.end(), dir) == out.end()) out.push_back(dir);
  }
  return out;
}

fs::path find_profile_file(const std::vector<fs::path>& search_path, const std::string& name) {
  for (const auto& dir : search_path) {
    std::error_code ec;
    fs::path file = dir / (name + ".yaml");
    if (fs::is_regular_file(file, ec)) return file;
  }
  return {};
}

std::vector<std::string> available_profiles(const std::vector<fs::path>& search_path) {
  std::set<std::string> names;
  for (const auto& dir : search_path) {
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      if (it->path().extension() == ".yaml") names.insert(it->path().stem().string());
    }
  }
  return {names.begin(), names.end()};
}

}  // namespace facility
