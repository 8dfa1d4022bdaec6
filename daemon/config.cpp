#include "daemon/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "daemon/config_mqtt.h"
#include "daemon/config_modbus.h"
#include "daemon/config_reader.h"
#include "daemon/model.h"
#include "facilityd_paths.h"

namespace facility {
namespace fs = std::filesystem;

std::string ConfigError::format() const {
  std::ostringstream os;
  os << loc.file;
  if (loc.line > 0) os << ":" << loc.line << ":" << loc.column;
  os << ": " << message;
  return os.str();
}

ConfigException::ConfigException(std::vector<ConfigError> errors) : errors_(std::move(errors)) {
  std::ostringstream os;
  for (std::size_t i = 0; i < errors_.size(); ++i) {
    if (i) os << "\n";
    os << errors_[i].format();
  }
  summary_ = os.str();
}

const ProfilePoint* Profile::find(const std::string& point_name) const {
  for (const auto& p : points) {
    if (p.spec.name == point_name) return &p;
  }
  return nullptr;
}

const char* to_string(DeviceKind k) {
  switch (k) {
    case DeviceKind::kPdu: return "pdu";
    case DeviceKind::kMeter: return "meter";
    case DeviceKind::kCooling: return "cooling";
    case DeviceKind::kRackSensor: return "rack_sensor";
  }
  return "?";
}
const char* to_string(MeterRole r) {
  switch (r) {
    case MeterRole::kNone: return "";
    case MeterRole::kFacilityTotal: return "facility_total";
    case MeterRole::kItTotal: return "it_total";
    case MeterRole::kCooling: return "cooling";
    case MeterRole::kOther: return "other";
    case MeterRole::kItUpsOutput: return "it_at_ups_output";
    case MeterRole::kItPduOutput: return "it_at_pdu_output";
    case MeterRole::kItEquipmentInput: return "it_at_equipment_input";
  }
  return "?";
}
const char* to_string(CabinetStatus s) {
  switch (s) {
    case CabinetStatus::kFree: return "free";
    case CabinetStatus::kSold: return "sold";
    case CabinetStatus::kInternal: return "internal";
  }
  return "?";
}
const char* to_string(Ownership o) {
  return o == Ownership::kLeased ? "leased" : "self_built";
}


const Cabinet* Site::find_cabinet(const std::string& cid) const {
  for (const auto& c : cabinets) {
    if (c.id == cid) return &c;
  }
  return nullptr;
}

const Site* Config::find_site(const std::string& sid) const {
  for (const auto& s : sites) {
    if (s.id == sid) return &s;
  }
  return nullptr;
}

EndpointSettings Config::endpoint_settings(const Endpoint& e) const {
  auto it = endpoints.find(e.key());
  return it == endpoints.end() ? EndpointSettings{} : it->second;
}

std::vector<const Device*> Config::all_devices() const {
  std::vector<const Device*> out;
  for (const auto& s : sites) {
    for (const auto& d : s.devices) out.push_back(&d);
  }
  return out;
}

std::optional<Millis> parse_duration(const std::string& s) {
  static const std::regex re(R"(^\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h|d)\s*$)");
  std::smatch m;
  if (!std::regex_match(s, m, re)) return std::nullopt;
  const double n = std::stod(m[1].str());
  const std::string u = m[2].str();
  double ms = n;
  if (u == "s") ms = n * 1000;
  if (u == "m") ms = n * 60'000;
  if (u == "h") ms = n * 3'600'000;
  if (u == "d") ms = n * 86'400'000;
  if (ms < 1 || ms > 86'400'000.0 * 366) return std::nullopt;
  return Millis(static_cast<std::int64_t>(std::llround(ms)));
}

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

namespace {

using config_detail::Diagnostics;
using config_detail::MapReader;
using config_detail::parse_address_ranges;
using config_detail::parse_device_modbus;
using config_detail::parse_endpoint;
using config_detail::parse_endpoint_settings;
using config_detail::parse_mqtt_settings;

const std::regex& id_regex() {
  static const std::regex re(R"(^[A-Za-z0-9_.\-]+$)");
  return re;
}

bool check_id(Diagnostics& d, MapReader& r, const std::string& what, std::string& out) {
  auto id = r.str("id", true);
  if (!id) return false;
  if (!std::regex_match(*id, id_regex())) {
    d.error(r.get("id"), what + ": id \"" + *id +
                             "\" may contain only letters, digits, '_', '.' and '-'");
    return false;
  }
  out = *id;
  return true;
}

YAML::Node load_yaml(Diagnostics& d, const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    d.error(SourceLoc{path, 0, 0}, "cannot open file");
    return YAML::Node();
  }
  try {
    return YAML::Load(in);
  } catch (const YAML::Exception& e) {
    d.error(SourceLoc{path, e.mark.line + 1, e.mark.column + 1}, "YAML syntax error: " + e.msg);
    return YAML::Node();
  }
}

std::shared_ptr<Profile> parse_profile(Diagnostics& d, const std::string& path) {
  YAML::Node root = load_yaml(d, path);
  if (!root.IsDefined() || root.IsNull()) {
    if (d.errors().empty()) d.error(SourceLoc{path, 0, 0}, "profile file is empty");
    return nullptr;
  }
  auto p = std::make_shared<Profile>();
  p->loc = SourceLoc{path, 1, 1};
  MapReader r(d, root, "profile",
              {"name", "description", "source", "max_registers_per_read", "max_gap", "never_read",
               "points"});
  if (!r.ok()) return nullptr;
  const std::string stem = fs::path(path).stem().string();
  if (auto n = r.str("name", true)) {
    p->name = *n;
    if (*n != stem) {
      d.error(r.get("name"),
              "profile: name \"" + *n + "\" must match the file name \"" + stem + ".yaml\"");
    }
  }
  p->description = r.str("description").value_or("");
  p->source = r.str("source").value_or("");
  if (auto m = r.integer("max_registers_per_read", 1, 125)) p->max_registers_per_read = int(*m);
  if (auto m = r.integer("max_gap", 0, 125)) p->max_gap = int(*m);
  p->never_read = parse_address_ranges(d, r, "never_read");
  std::unordered_set<std::string> names;
  auto points = r.seq("points", true);
  if (points.empty() && r.has("points")) d.error(r.get("points"), "profile: no points defined");
  for (const auto& pn : points) {
    MapReader pr(d, pn, "point",
                 {"name", "function", "address", "type", "order", "bit", "length", "scale",
                  "offset", "unit", "not_available", "enum", "interval", "description"});
    if (!pr.ok()) continue;
    ProfilePoint pp;
    auto& s = pp.spec;
    std::string label = "point";
    if (auto n = pr.str("name", true)) {
      s.name = *n;
      label = "point \"" + *n + "\"";
      if (!std::regex_match(*n, std::regex(R"(^[a-z][a-z0-9_]*$)"))) {
        d.error(pr.get("name"), label + ": name must be lower_snake_case");
      }
      if (!names.insert(*n).second) d.error(pr.get("name"), label + ": duplicate point name");
    }
    if (auto f = pr.str("function", true)) {
      if (auto k = modbus::parse_register_kind(*f)) {
        s.kind = *k;
      } else {
        d.error(pr.get("function"), label + ": unknown function \"" + *f +
                                        "\" (expected coil, discrete_input, holding, input)");
      }
    }
    if (auto a = pr.integer("address", 0, 65535, true)) s.address = std::uint16_t(*a);
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
      d.error(pr.get("type"), label + ": coils and discrete inputs hold single bits: type must be bool");
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
    if (pr.has("enum")) {
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
          if (!std::regex_match(name, std::regex(R"(^[a-z][a-z0-9_]*$)"))) {
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
    if (static_cast<int>(s.address) + s.width() > 65536) {
      d.error(pr.get("address"), label + ": value runs past address 65535");
    }
    s.scale = pr.num("scale").value_or(1.0);
    s.offset = pr.num("offset").value_or(0.0);
    if (pr.has("scale") && s.scale == 0.0) d.error(pr.get("scale"), label + ": scale must not be 0");
    if (auto u = pr.str("unit", true)) {
      s.unit = *u;
      if (!is_known_unit(*u)) {
        d.error(pr.get("unit"), label + ": unknown unit \"" + *u +
                                    "\" (expected W, kW, Wh, kWh, MWh, A, V, Hz, celsius, percent, "
                                    "ratio, rpm, none)");
      }
    }
    for (const auto& [v, at] : pr.str_list("not_available")) {
      if (auto iv = pr.parse_int(at, v, "not_available", INT64_MIN, INT64_MAX)) {
        s.not_available.push_back(*iv);
      }
    }
    if (!modbus::is_bit_kind(s.kind) && s.width() > p->max_registers_per_read) {
      d.error(pr.has("type") ? pr.get("type") : YAML::Node(pn),
              label + ": is " + std::to_string(s.width()) + " registers wide, more than "
                  "max_registers_per_read (" + std::to_string(p->max_registers_per_read) +
                  "), so no read could hold it");
    }
    pp.description = pr.str("description").value_or("");
    pp.interval = pr.duration("interval");
    for (const auto& nr : p->never_read) {
      if (nr.kind == s.kind && nr.first < s.address + s.width() && nr.last >= s.address) {
        d.error(pr.get("address"), label + ": overlaps a never_read range (" +
                                       std::to_string(nr.first) + ".." + std::to_string(nr.last) +
                                       ")");
        break;
      }
    }
    p->points.push_back(std::move(pp));
  }
  return p;
}


SimHints parse_sim(Diagnostics& d, MapReader& parent, std::initializer_list<const char*> keys) {
  SimHints h;
  if (!parent.has("simulate")) return h;
  MapReader r(d, parent.get("simulate"), parent.what() + " simulate", keys);
  h.load = r.num("load");
  h.inlet_c = r.num("inlet_c");
  h.pue = r.num("pue");
  auto seconds = [&r](const char* k) -> std::optional<double> {
    if (auto v = r.duration(k)) return static_cast<double>(v->count()) / 1000.0;
    return std::nullopt;
  };
  h.energy_wrap_after_s = seconds("energy_wrap_after");
  h.energy_reset_after_s = seconds("energy_reset_after");
  if (h.load && (*h.load < 0 || *h.load > 2)) d.error(r.get("load"), "simulate: load must be 0..2");
  if (h.pue && (*h.pue < 1 || *h.pue > 5)) d.error(r.get("pue"), "simulate: pue must be 1..5");
  return h;
}

struct Defaults {
  Millis interval{15000};
  Millis timeout{1000};
  int retries = 1;
  double rated_w = 4400;
  std::vector<std::string> feeds{"A", "B"};
};

}  // namespace

std::shared_ptr<const Profile> load_profile(const std::string& path) {
  Diagnostics d(path);
  auto p = parse_profile(d, path);
  if (!d.errors().empty() || !p) throw ConfigException(std::move(d.errors()));
  return p;
}

Config load_config(const std::string& path) {
  Diagnostics d(path);
  Config cfg;
  cfg.path = path;
  YAML::Node root = load_yaml(d, path);
  if (!d.errors().empty()) throw ConfigException(std::move(d.errors()));
  if (!root.IsDefined() || root.IsNull()) {
    d.error(SourceLoc{path, 0, 0}, "config file is empty");
    throw ConfigException(std::move(d.errors()));
  }
  MapReader top(d, root, "config",
                {"daemon", "mqtt", "defaults", "profiles_dir", "facility", "cabinet_classes",
                 "endpoints", "sites", "history", "report"});
  if (!top.ok()) throw ConfigException(std::move(d.errors()));

  YAML::Node shard_node;  // set when the daemon is sharded
  if (top.has("daemon")) {
    MapReader r(d, top.get("daemon"), "daemon",
                {"listen", "stale_after_intervals", "powered_threshold_w", "state_dir", "auth",
                 "shard"});
    if (auto l = r.str("listen")) {
      static const std::regex re(R"(^[A-Za-z0-9.\-]+:[0-9]{1,5}$)");
      if (!std::regex_match(*l, re)) {
        d.error(r.get("listen"), "daemon: listen \"" + *l + "\" must be HOST:PORT, e.g. 127.0.0.1:10044");
      } else {
        cfg.daemon.listen = *l;
      }
    }
    if (auto n = r.integer("stale_after_intervals", 1, 100)) cfg.daemon.stale_after_intervals = int(*n);
    if (auto n = r.num("powered_threshold_w")) {
      if (*n < 0) d.error(r.get("powered_threshold_w"), "daemon: powered_threshold_w must be >= 0");
      cfg.daemon.powered_threshold_w = *n;
    }
    if (auto v = r.str("state_dir")) {
      if (v->empty() || v->front() != '/')
        d.error(r.get("state_dir"), "daemon: state_dir must be an absolute path");
      else
        cfg.daemon.state_dir = *v;
    }
    if (r.has("auth")) {
      const std::size_t before = d.errors().size();
      config_detail::parse_credentials(d, r.get("auth"), "daemon.auth", cfg.daemon.auth);
      if (d.errors().size() == before && (!cfg.daemon.auth.username || !cfg.daemon.auth.password))
        d.error(r.key_node("auth"), "daemon.auth: basic authentication needs a user name and a "
                                    "password (username_file or username_env, password_file or "
                                    "password_env)");
    }
    if (auto v = r.str("shard")) {
      static const std::regex re(R"(^([0-9]{1,4})/([0-9]{1,4})$)");
      std::smatch m;
      const int index = std::regex_match(*v, m, re) ? std::stoi(m[1].str()) : -1;
      const int count = index >= 0 ? std::stoi(m[2].str()) : 0;
      if (index < 0 || count < 1 || count > 1000 || index >= count) {
        d.error(r.get("shard"), "daemon: shard \"" + *v +
                                    "\" must be INDEX/COUNT with 0 <= INDEX < COUNT <= 1000, "
                                    "e.g. \"0/2\" and \"1/2\" for two daemons");
      } else {
        cfg.daemon.shard.index = index;
        cfg.daemon.shard.count = count;
        shard_node = r.get("shard");
      }
    }
  }

  if (top.has("mqtt")) parse_mqtt_settings(d, top.get("mqtt"), cfg.mqtt);
  config_detail::parse_history_section(d, top, cfg);
  if (cfg.daemon.shard.sharded()) {
    // A shard sees part of each site: MQTT summaries and the history's site minutes would be
    // partial and would overwrite each other (docs/prometheus.md, "Sharding").
    if (cfg.mqtt.enabled)
      d.error(shard_node, "daemon: a sharded daemon cannot publish MQTT (every shard would "
                          "publish partial site summaries): set mqtt.enabled: false here and run "
                          "one unsharded daemon for MQTT");
    if (cfg.history.enabled)
      d.error(shard_node, "daemon: a sharded daemon cannot keep the history (site minutes would "
                          "be partial): set history.enabled: false here");
  }
  if (top.has("facility")) {
    cfg.facility = config_detail::parse_facility_settings(d, top.get("facility"), "facility",
                                                          cfg.facility);
  }
  if (top.has("cabinet_classes")) {
    cfg.cabinet_classes = config_detail::parse_cabinet_classes(d, top.get("cabinet_classes"));
  }
  std::map<std::string, SourceLoc> endpoint_locs;
  if (top.has("endpoints")) parse_endpoint_settings(d, top.get("endpoints"), cfg.endpoints, endpoint_locs);

  Defaults defs;
  if (top.has("defaults")) {
    MapReader r(d, top.get("defaults"), "defaults",
                {"interval", "timeout", "retries", "rated_kw", "feeds"});
    if (auto v = r.duration("interval")) defs.interval = *v;
    if (auto v = r.integer("retries", 0, 10)) defs.retries = int(*v);
    if (auto v = r.duration("timeout")) defs.timeout = *v;
    if (auto v = r.num("rated_kw")) {
      if (*v <= 0) d.error(r.get("rated_kw"), "defaults: rated_kw must be > 0");
      defs.rated_w = *v * 1000;
    }
    if (r.has("feeds")) {
      defs.feeds.clear();
      for (auto& [f, at] : r.str_list("feeds")) defs.feeds.push_back(f);
    }
  }

  // Profiles: loaded lazily, only those referenced by devices, each file once.
  const fs::path base = fs::path(path).parent_path();
  fs::path profiles_dir = base / "profiles";
  if (auto pd = top.str("profiles_dir")) profiles_dir = fs::path(*pd).is_absolute() ? fs::path(*pd) : base / *pd;
  const std::vector<fs::path> profile_path = profile_search_path(profiles_dir);
  auto get_profile = [&](const std::string& name, const YAML::Node& at,
                         const std::string& what) -> std::shared_ptr<const Profile> {
    auto it = cfg.profiles.find(name);
    if (it != cfg.profiles.end()) return it->second;
    const fs::path file = find_profile_file(profile_path, name);
    if (file.empty()) {
      std::string dirs, avail;
      for (const auto& dir : profile_path) dirs += (dirs.empty() ? "" : ", ") + dir.string();
      for (const auto& n : available_profiles(profile_path)) avail += (avail.empty() ? "" : ", ") + n;
      d.error(at, what + ": unknown profile \"" + name + "\" (no " + name + ".yaml in " + dirs +
                      ")" + (avail.empty() ? "" : "; available: " + avail));
      cfg.profiles[name] = nullptr;
      return nullptr;
    }
    Diagnostics pd(file.string());
    auto p = parse_profile(pd, file.string());
    for (auto& e : pd.errors()) d.errors().push_back(std::move(e));
    cfg.profiles[name] = pd.errors().empty() ? p : nullptr;
    return cfg.profiles[name];
  };

  std::unordered_map<std::string, SourceLoc> device_ids;
  std::unordered_set<std::string> site_ids;
  // endpoint key -> unit -> device id: two devices cannot share an address.
  std::unordered_map<std::string, std::unordered_map<int, std::string>> addresses;

  // No sites is a valid start (the installed /etc/facilityd/facilityd.yaml): the daemon then
  // serves only its own health until sites are added.
  auto sites = top.seq("sites");
  for (const auto& sn : sites) {
    MapReader sr(d, sn, "site",
                 {"id", "name", "ownership", "planned_cabinets", "pue_category", "simulate", "rooms",
                  "devices", "facility", "build_out_plan", "report"});
    if (!sr.ok()) continue;
    Site site;
    if (!check_id(d, sr, "site", site.id)) continue;
    const std::string sw = "site \"" + site.id + "\"";
    sr.set_what(sw);
    if (!site_ids.insert(site.id).second) d.error(sr.get("id"), sw + ": duplicate site id");
    site.name = sr.str("name").value_or(site.id);
    if (auto o = sr.choice<Ownership>("ownership", {{"self_built", Ownership::kSelfBuilt},
                                                    {"leased", Ownership::kLeased}})) {
      site.ownership = *o;
    }
    if (auto n = sr.integer("planned_cabinets", 0, 1'000'000)) site.planned_cabinets = int(*n);
    if (auto n = sr.integer("pue_category", 1, 3)) site.pue_category = int(*n);
    site.sim = parse_sim(d, sr, {"pue"});
    site.facility = cfg.facility;
    if (sr.has("facility")) {
      site.facility = config_detail::parse_facility_settings(d, sr.get("facility"),
                                                             sw + " facility", cfg.facility);
    }
    site.report = sr.has("report") ? config_detail::parse_report_settings(
                                         d, sr.get("report"), sw + " report", cfg.report)
                                   : cfg.report;
    if (sr.has("build_out_plan")) {
      site.build_out_plan = config_detail::parse_build_out_plan(d, sr.get("build_out_plan"), sw);
    }

    std::unordered_set<std::string> room_ids;
    for (const auto& rn : sr.seq("rooms", true)) {
      MapReader rr(d, rn, sw + " room", {"id", "name", "rows"});
      if (!rr.ok()) continue;
      Room room;
      if (!check_id(d, rr, sw + " room", room.id)) continue;
      if (!room_ids.insert(room.id).second) d.error(rr.get("id"), sw + ": duplicate room id \"" + room.id + "\"");
      room.name = rr.str("name").value_or(room.id);
      std::unordered_set<std::string> row_ids;
      for (const auto& wn : rr.seq("rows", true)) {
        MapReader wr(d, wn, sw + " row", {"id", "cabinets"});
        if (!wr.ok()) continue;
        Row row;
        if (!check_id(d, wr, sw + " row", row.id)) continue;
        if (!row_ids.insert(row.id).second) {
          d.error(wr.get("id"), sw + " room \"" + room.id + "\": duplicate row id \"" + row.id + "\"");
        }
        for (const auto& cn : wr.seq("cabinets", true)) {
          MapReader cr(d, cn, sw + " cabinet",
                       {"id", "rated_kw", "breaker", "feeds", "status", "class", "rack_units",
                        "simulate"});
          if (!cr.ok()) continue;
          Cabinet cab;
          if (!check_id(d, cr, sw + " cabinet", cab.id)) continue;
          const std::string cw = sw + " cabinet \"" + cab.id + "\"";
          cr.set_what(cw);
          cab.site = site.id;
          cab.room = room.id;
          cab.row = row.id;
          cab.loc = d.loc(cn);
          if (site.find_cabinet(cab.id)) {
            d.error(cr.get("id"), cw + ": duplicate cabinet id in this site");
          }
          cab.rated_w = defs.rated_w;
          if (cr.has("rated_kw") && cr.has("breaker")) {
            d.error(cr.key_node("breaker"), cw + ": give either rated_kw or breaker, not both");
          }
          if (auto v = cr.num("rated_kw")) {
            if (*v <= 0 || *v > 1000) d.error(cr.get("rated_kw"), cw + ": rated_kw must be in (0, 1000]");
            cab.rated_w = *v * 1000;
          }
          if (cr.has("breaker")) {
            MapReader br(d, cr.get("breaker"), cw + " breaker", {"amps", "volts", "phases"});
            Breaker b;
            auto a = br.num("amps", true);
            auto v = br.num("volts", true);
            if (auto p = br.integer("phases", 1, 3)) {
              if (*p == 2) d.error(br.get("phases"), cw + ": breaker phases must be 1 or 3");
              b.phases = int(*p);
            }
            if (a && v) {
              if (*a <= 0 || *v <= 0) {
                d.error(cr.get("breaker"), cw + ": breaker amps and volts must be > 0");
              }
              b.amps = *a;
              b.volts = *v;
              cab.breaker = b;
              cab.rated_w = b.phases == 3 ? std::sqrt(3.0) * b.volts * b.amps : b.volts * b.amps;
            }
          }
          cab.feeds = defs.feeds;
          if (cr.has("feeds")) {
            cab.feeds.clear();
            std::unordered_set<std::string> fs_seen;
            for (auto& [f, at] : cr.str_list("feeds")) {
              if (!fs_seen.insert(f).second) d.error(at, cw + ": duplicate feed \"" + f + "\"");
              cab.feeds.push_back(f);
            }
            if (cab.feeds.empty()) d.error(cr.get("feeds"), cw + ": at least one feed is needed");
          }
          if (auto s = cr.choice<CabinetStatus>("status", {{"sold", CabinetStatus::kSold},
                                                           {"internal", CabinetStatus::kInternal},
                                                           {"free", CabinetStatus::kFree}})) {
            cab.status = *s;
          }
          cab.sim = parse_sim(d, cr, {"load"});
          config_detail::resolve_cabinet(d, cr, cfg, site, cab);
          row.cabinet_ids.push_back(cab.id);
          site.cabinets.push_back(std::move(cab));
        }
        room.rows.push_back(std::move(row));
      }
      site.rooms.push_back(std::move(room));
    }

    for (const auto& dn : sr.seq("devices")) {
      MapReader dr(d, dn, sw + " device",
                   {"id", "kind", "profile", "endpoint", "unit", "interval", "timeout", "retries",
                    "busy_retries", "busy_retry_delay", "max_registers_per_read", "max_gap",
                    "never_read", "cabinet", "feed", "role", "room", "nominal_voltage_v",
                    "nominal_power_factor", "capacity_kw", "simulate"});
      if (!dr.ok()) continue;
      Device dev;
      if (!check_id(d, dr, sw + " device", dev.id)) continue;
      const std::string dw = "device \"" + dev.id + "\"";
      dr.set_what(dw);
      dev.site = site.id;
      dev.loc = d.loc(dn);
      if (auto [it, fresh] = device_ids.emplace(dev.id, dev.loc); !fresh) {
        d.error(dr.get("id"), dw + ": duplicate device id (first defined at line " +
                                  std::to_string(it->second.line) + ")");
      }
      auto kind = dr.choice<DeviceKind>("kind", {{"pdu", DeviceKind::kPdu},
                                                 {"meter", DeviceKind::kMeter},
                                                 {"cooling", DeviceKind::kCooling},
                                                 {"rack_sensor", DeviceKind::kRackSensor}},
                                        true);
      if (kind) dev.kind = *kind;
      if (auto p = dr.str("profile", true)) {
        dev.profile_name = *p;
        dev.profile = get_profile(*p, dr.get("profile"), dw);
      }
      if (auto e = dr.str("endpoint", true)) dev.endpoint = parse_endpoint(d, dr.get("endpoint"), dw, *e);
      bool unit_ok = true;
      if (dr.has("unit")) {
        auto u = dr.integer("unit", 0, 255);
        unit_ok = u.has_value();
        if (u) dev.unit = int(*u);
      }
      dev.interval = dr.duration("interval").value_or(defs.interval);
      dev.timeout = dr.duration("timeout").value_or(defs.timeout);
      dev.modbus.retries = defs.retries;
      parse_device_modbus(d, dr, dev.modbus);
      config_detail::check_device_modbus(d, dr, dev);
      if (unit_ok && !dev.endpoint.scheme.empty()) {
        if (const std::string why = unit_problem(dev.endpoint, dev.unit); !why.empty()) {
          d.error(dr.has("unit") ? dr.get("unit") : dn, dw + ": " + why);
          unit_ok = false;
        }
      }
      if (dev.timeout >= dev.interval) {
        d.error(dr.has("timeout") ? dr.get("timeout") : dn,
                dw + ": timeout (" + std::to_string(dev.timeout.count()) +
                    " ms) must be shorter than the poll interval (" +
                    std::to_string(dev.interval.count()) + " ms)");
      }
      // Serial lines too: two devices on one unit of a bus would poll the same meter.
      if (!dev.endpoint.scheme.empty() && unit_ok) {
        auto& units = addresses[dev.endpoint.key()];
        if (auto [it, fresh] = units.emplace(dev.unit, dev.id); !fresh) {
          d.error(dr.has("unit") ? dr.get("unit") : dn,
                  dw + ": unit " + std::to_string(dev.unit) + " at " + dev.endpoint.key() +
                      " is already used by device \"" + it->second + "\"");
        }
      }
      dev.cabinet = dr.str("cabinet").value_or("");
      dev.feed = dr.str("feed").value_or("");
      dev.room = dr.str("room").value_or("");
      if (auto r = dr.choice<MeterRole>("role", {{"facility_total", MeterRole::kFacilityTotal},
                                                 {"it_at_ups_output", MeterRole::kItUpsOutput},
                                                 {"it_at_pdu_output", MeterRole::kItPduOutput},
                                                 {"it_at_equipment_input",
                                                  MeterRole::kItEquipmentInput},
                                                 {"it_total", MeterRole::kItTotal},
                                                 {"cooling", MeterRole::kCooling},
                                                 {"other", MeterRole::kOther}})) {
        dev.role = *r;
      }
      dev.sim = parse_sim(d, dr, {"inlet_c", "energy_wrap_after", "energy_reset_after"});
      if (kind) config_detail::parse_device_facility(d, dr, site, dev);

      // Placement rules per kind.
      if (kind) {
        const bool needs_cabinet = dev.kind == DeviceKind::kPdu || dev.kind == DeviceKind::kRackSensor;
        if (needs_cabinet && !dr.has("cabinet")) {
          d.error(dn, dw + ": a " + std::string(to_string(dev.kind)) + " needs \"cabinet\"");
        }
        if (!needs_cabinet && dr.has("cabinet")) {
          d.error(dr.key_node("cabinet"), dw + ": \"cabinet\" applies only to pdu and rack_sensor");
        }
        const Cabinet* cab = dev.cabinet.empty() ? nullptr : site.find_cabinet(dev.cabinet);
        if (needs_cabinet && !dev.cabinet.empty() && !cab) {
          d.error(dr.get("cabinet"), dw + ": unknown cabinet \"" + dev.cabinet + "\" in " + sw);
        }
        if (dev.kind == DeviceKind::kPdu) {
          if (!dr.has("feed")) {
            d.error(dn, dw + ": a pdu needs \"feed\" (which of the cabinet's feeds it measures)");
          } else if (cab && std::find(cab->feeds.begin(), cab->feeds.end(), dev.feed) == cab->feeds.end()) {
            std::string fl;
            for (const auto& f : cab->feeds) fl += (fl.empty() ? "" : ", ") + f;
            d.error(dr.get("feed"), dw + ": cabinet \"" + dev.cabinet + "\" has no feed \"" + dev.feed +
                                        "\" (its feeds: " + fl + ")");
          }
        } else if (dr.has("feed")) {
          d.error(dr.key_node("feed"), dw + ": \"feed\" applies only to pdu");
        }
        if (dev.kind == DeviceKind::kMeter && !dr.has("role")) {
          d.error(dn, dw + ": a meter needs \"role\" (facility_total, it_at_ups_output, "
                           "it_at_pdu_output, it_at_equipment_input, it_total, cooling, other)");
        }
        if (dev.kind != DeviceKind::kMeter && dr.has("role")) {
          d.error(dr.key_node("role"), dw + ": \"role\" applies only to meter");
        }
        if (dev.kind == DeviceKind::kCooling && !dr.has("room")) {
          d.error(dn, dw + ": a cooling unit needs \"room\"");
        }
        if (!dev.room.empty() && !room_ids.count(dev.room)) {
          d.error(dr.get("room"), dw + ": unknown room \"" + dev.room + "\" in " + sw);
        }
        // The model needs these points; a profile without them cannot serve this kind.
        config_detail::check_profile_points(d, dr, dev);
      }
      site.devices.push_back(std::move(dev));
    }
    // Two PDUs on one feed of one cabinet would double-count power.
    std::map<std::pair<std::string, std::string>, std::string> feed_owner;
    for (const auto& dev : site.devices) {
      if (dev.kind != DeviceKind::kPdu || dev.cabinet.empty() || dev.feed.empty()) continue;
      auto [it, fresh] = feed_owner.emplace(std::make_pair(dev.cabinet, dev.feed), dev.id);
      if (!fresh) {
        d.error(dev.loc, "device \"" + dev.id + "\": feed " + dev.feed + " of cabinet \"" + dev.cabinet +
                             "\" is already measured by \"" + it->second + "\"");
      }
    }
    if (site.planned_cabinets == 0) site.planned_cabinets = static_cast<int>(site.cabinets.size());
    if (site.planned_cabinets < static_cast<int>(site.cabinets.size())) {
      d.error(sr.get("planned_cabinets"),
              sw + ": planned_cabinets (" + std::to_string(site.planned_cabinets) +
                  ") is less than the cabinets in the inventory (" +
                  std::to_string(site.cabinets.size()) + ")");
    }
    config_detail::check_site_facility(d, sr, site);
    cfg.sites.push_back(std::move(site));
  }

  // An endpoints entry that no device uses is most likely a typo in one of the two.
  for (const auto& [key, loc] : endpoint_locs) {
    bool used = false;
    for (const auto& site : cfg.sites) {
      for (const auto& dev : site.devices) used = used || dev.endpoint.key() == key;
    }
    if (!used) d.error(loc, "endpoint \"" + key + "\": no device uses this endpoint");
  }

  if (!d.errors().empty()) {
    auto& errs = d.errors();
    std::stable_sort(errs.begin(), errs.end(), [](const ConfigError& a, const ConfigError& b) {
      if (a.loc.file != b.loc.file) return a.loc.file < b.loc.file;
      return std::tie(a.loc.line, a.loc.column) < std::tie(b.loc.line, b.loc.column);
    });
    throw ConfigException(std::move(errs));
  }
  return cfg;
}

}  // namespace facility
