// Shared building blocks of the configuration loader: position-aware diagnostics, a YAML
// mapping reader that rejects unknown and duplicate keys, and the section parsers. Each config
// section (daemon, profiles, inventory, devices, facility, Modbus, MQTT, history) is parsed in
// its own file with these; config.cpp's load_config() puts them together.
//
// Thread-safety: none needed; used only while loading.
#pragma once

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "daemon/config/config.h"

namespace facility::config_detail {

// Collects errors with positions; every parse step reports here instead of throwing, so one run
// of check-config lists every problem.
class Diagnostics {
 public:
  explicit Diagnostics(std::string file) : file_(std::move(file)) {}
  SourceLoc loc(const YAML::Node& n) const {
    SourceLoc l{file_, 0, 0};
    if (n.IsDefined()) {
      const auto m = n.Mark();
      if (m.line >= 0) {
        l.line = m.line + 1;
        l.column = m.column + 1;
      }
    }
    return l;
  }
  void error(const YAML::Node& at, std::string msg) { error(loc(at), std::move(msg)); }
  void error(SourceLoc l, std::string msg) {
    if (errors_.size() < kMaxConfigErrors) {
      errors_.push_back({std::move(l), std::move(msg)});
    } else {
      ++omitted_;
    }
  }
  // Another file's problems (a profile's), under the same cap.
  void absorb(Diagnostics& other) {
    for (auto& e : other.errors_) error(std::move(e.loc), std::move(e.message));
    omitted_ += other.omitted_;
  }
  const std::string& file() const { return file_; }
  // Kept problems; empty exactly when there are none at all.
  std::vector<ConfigError>& errors() { return errors_; }
  ConfigException exception() { return ConfigException(std::move(errors_), omitted_); }

 private:
  std::string file_;
  std::vector<ConfigError> errors_;
  std::size_t omitted_ = 0;
};

// A YAML mapping with a fixed set of allowed keys. Unknown and duplicate keys are errors.
class MapReader {
 public:
  MapReader(Diagnostics& d, const YAML::Node& node, std::string what,
            std::initializer_list<const char*> allowed)
      : MapReader(d, node, std::move(what), std::span<const char* const>(allowed)) {}
  MapReader(Diagnostics& d, const YAML::Node& node, std::string what,
            std::span<const char* const> allowed)
      : d_(d), node_(node), what_(std::move(what)) {
    if (!node.IsMap()) {
      if (!node.IsNull()) d_.error(node, what_ + ": expected a mapping of keys to values");
      ok_ = false;
      return;
    }
    std::set<std::string> allow(allowed.begin(), allowed.end());
    std::unordered_set<std::string> seen;
    for (auto it = node.begin(); it != node.end(); ++it) {
      const std::string key = it->first.Scalar();
      if (!seen.insert(key).second) {
        d_.error(it->first, what_ + ": duplicate key \"" + key + "\"");
        continue;
      }
      if (!allow.count(key)) {
        std::string list;
        for (const auto& a : allow) list += (list.empty() ? "" : ", ") + a;
        d_.error(it->first,
                 what_ + ": unknown key \"" + key + "\" (expected one of: " + list + ")");
        continue;
      }
      values_.emplace(key, it->second);
      keys_.emplace(key, it->first);
    }
  }

  bool ok() const { return ok_; }
  bool has(const std::string& k) const { return values_.count(k) > 0; }
  YAML::Node get(const std::string& k) const {
    auto it = values_.find(k);
    return it == values_.end() ? YAML::Node() : it->second;
  }
  YAML::Node key_node(const std::string& k) const {
    auto it = keys_.find(k);
    return it == keys_.end() ? node_ : it->second;
  }
  const YAML::Node& node() const { return node_; }
  const std::string& what() const { return what_; }
  // Once an entity's id is known, later messages name it: 'cabinet "A01-03": ...'.
  void set_what(std::string w) { what_ = std::move(w); }

  std::optional<std::string> str(const std::string& k, bool required = false) {
    if (!has(k)) {
      if (required) d_.error(node_, what_ + ": missing required key \"" + k + "\"");
      return std::nullopt;
    }
    auto n = get(k);
    if (!n.IsScalar()) {
      d_.error(n, what_ + ": \"" + k + "\" must be a string");
      return std::nullopt;
    }
    return n.Scalar();
  }

  std::optional<double> num(const std::string& k, bool required = false) {
    auto s = str(k, required);
    if (!s) return std::nullopt;
    try {
      std::size_t pos = 0;
      double v = std::stod(*s, &pos);
      // Hex raw values (0xFFFF) are accepted where integers are; stod handles them too.
      if (pos != s->size() || !std::isfinite(v)) throw std::invalid_argument("x");
      return v;
    } catch (...) {
      d_.error(get(k), what_ + ": \"" + k + "\" must be a number, got \"" + *s + "\"");
      return std::nullopt;
    }
  }

  std::optional<std::int64_t> integer(const std::string& k, std::int64_t lo, std::int64_t hi,
                                      bool required = false) {
    auto s = str(k, required);
    if (!s) return std::nullopt;
    return parse_int(get(k), *s, k, lo, hi);
  }

  std::optional<std::int64_t> parse_int(const YAML::Node& at, const std::string& s,
                                        const std::string& k, std::int64_t lo, std::int64_t hi) {
    try {
      std::size_t pos = 0;
      // Decimal, or hexadecimal with 0x (not C's octal for a leading 0: "010" is ten).
      const bool hex = s.size() > 2 && (s.rfind("0x", 0) == 0 || s.rfind("0X", 0) == 0);
      const bool neg_hex = s.size() > 3 && (s.rfind("-0x", 0) == 0 || s.rfind("-0X", 0) == 0);
      long long v = std::stoll(neg_hex ? "-" + s.substr(3)
                               : hex   ? s.substr(2)
                                       : s,
                               &pos, hex || neg_hex ? 16 : 10);
      if (pos != s.size() - (hex ? 2 : neg_hex ? 2 : 0)) throw std::invalid_argument("x");
      if (v < lo || v > hi) {
        d_.error(at, what_ + ": \"" + k + "\" = " + s + " is out of range " + std::to_string(lo) +
                         ".." + std::to_string(hi));
        return std::nullopt;
      }
      return v;
    } catch (...) {
      d_.error(at, what_ + ": \"" + k + "\" must be an integer, got \"" + s + "\"");
      return std::nullopt;
    }
  }

  std::optional<bool> boolean(const std::string& k) {
    auto s = str(k);
    if (!s) return std::nullopt;
    if (*s == "true" || *s == "yes" || *s == "on") return true;
    if (*s == "false" || *s == "no" || *s == "off") return false;
    d_.error(get(k), what_ + ": \"" + k + "\" must be true or false, got \"" + *s + "\"");
    return std::nullopt;
  }

  std::optional<Millis> duration(const std::string& k) {
    auto s = str(k);
    if (!s) return std::nullopt;
    auto d = parse_duration(*s);
    if (!d) {
      d_.error(get(k), what_ + ": \"" + k +
                           "\" must be a duration like 500ms, 15s, 2m or 1h, got \"" + *s + "\"");
    }
    return d;
  }

  template <typename E>
  std::optional<E> choice(const std::string& k,
                          std::initializer_list<std::pair<const char*, E>> opts,
                          bool required = false) {
    auto s = str(k, required);
    if (!s) return std::nullopt;
    std::string list;
    for (const auto& [name, v] : opts) {
      if (*s == name) return v;
      list += (list.empty() ? "" : ", ") + std::string(name);
    }
    d_.error(get(k), what_ + ": unknown " + k + " \"" + *s + "\" (expected " + list + ")");
    return std::nullopt;
  }

  std::vector<std::pair<std::string, YAML::Node>> str_list(const std::string& k) {
    std::vector<std::pair<std::string, YAML::Node>> out;
    if (!has(k)) return out;
    auto n = get(k);
    if (!n.IsSequence()) {
      d_.error(n, what_ + ": \"" + k + "\" must be a list");
      return out;
    }
    for (const auto& e : n) {
      if (!e.IsScalar()) {
        d_.error(e, what_ + ": \"" + k + "\" entries must be strings");
        continue;
      }
      out.emplace_back(e.Scalar(), e);
    }
    return out;
  }

  // A list of mappings; returns the nodes (empty on error or absent).
  std::vector<YAML::Node> seq(const std::string& k, bool required = false) {
    std::vector<YAML::Node> out;
    auto n = get(k);
    if (!has(k) || n.IsNull()) {
      if (required) d_.error(node_, what_ + ": missing required key \"" + k + "\"");
      return out;
    }
    if (!n.IsSequence()) {
      d_.error(n, what_ + ": \"" + k + "\" must be a list");
      return out;
    }
    for (const auto& e : n) out.push_back(e);
    return out;
  }

 private:
  Diagnostics& d_;
  YAML::Node node_;
  std::string what_;
  bool ok_ = true;
  std::unordered_map<std::string, YAML::Node> values_;
  std::unordered_map<std::string, YAML::Node> keys_;
};

// ---- One load_config() run (config.cpp puts the sections together) ----------------------

// Checks and stores an entity's `id` (letters, digits, '_', '.', '-').
bool check_id(Diagnostics& d, MapReader& r, const std::string& what, std::string& out);
YAML::Node load_yaml(Diagnostics& d, const std::string& path);
// A `simulate` mapping with the given keys (facility-sim's hints; the daemon ignores them).
SimHints parse_sim(Diagnostics& d, MapReader& parent, std::initializer_list<const char*> keys);

// Top-level `defaults`: what devices and cabinets get when they do not say.
struct Defaults {
  Millis interval{15000};
  Millis timeout{1000};
  int retries = 1;
  double rated_w = 4400;
  std::vector<std::string> feeds{"A", "B"};
};

// Profiles (profile.cpp): one file parsed; and the profiles of one configuration, loaded
// lazily, only those referenced by devices, each file once, into Config::profiles.
std::shared_ptr<Profile> parse_profile(Diagnostics& d, const std::string& path);
// Pieces of a profile shared by its parsers (profile.cpp, profile_derived.cpp,
// profile_identify.cpp).
bool lower_snake_case(const std::string& s);
// function, address (less the profile's address_base), type, order, bit, length.
void parse_point_encoding(Diagnostics& d, MapReader& pr, const YAML::Node& pn,
                          const std::string& label, int address_base, modbus::PointSpec& s);
void parse_point_enum(Diagnostics& d, MapReader& pr, const std::string& label,
                      modbus::PointSpec& s);
void parse_point_value(Diagnostics& d, MapReader& pr, const std::string& label,
                       modbus::PointSpec& s);
// A derived point as written; resolve_derived() checks its inputs once every point is known.
struct PendingDerived {
  DerivedPoint point;
  std::vector<YAML::Node> input_nodes;  // where each input name is written
  YAML::Node derive;                    // the `derive` mapping
  bool has_enum = false;
};
void parse_derived_point(Diagnostics& d, const YAML::Node& pn,
                         std::unordered_set<std::string>& names, std::vector<PendingDerived>& out);
// Resolves the inputs (unknown names, cycles, types, units), orders the derived points so that
// every input comes first, and stores them in p.derived.
void resolve_derived(Diagnostics& d, Profile& p, std::vector<PendingDerived>& pending);
// The `identify` mapping (identify.h), after the points and never_read are known.
void parse_identify(Diagnostics& d, const YAML::Node& node, Profile& p);
class ProfileLibrary {
 public:
  // Looks names up on profile_search_path() from `profiles_dir` of `top` (relative to the
  // config file, default "profiles").
  ProfileLibrary(Diagnostics& d, Config& cfg, MapReader& top);
  // Null (and an error at `at`, naming `what`) when the profile is missing or has errors.
  std::shared_ptr<const Profile> get(const std::string& name, const YAML::Node& at,
                                     const std::string& what);

 private:
  Diagnostics& d_;
  Config& cfg_;
  std::vector<std::filesystem::path> search_path_;
};

// What the site and device parsers share during one load: the result, the defaults, the
// profiles, and the identities that must be unique across the whole file.
struct LoadContext {
  Diagnostics& d;
  Config& cfg;
  Defaults defs;
  ProfileLibrary& profiles;
  std::unordered_map<std::string, SourceLoc> device_ids;
  std::unordered_set<std::string> site_ids;
  // endpoint key -> unit -> device id: two devices cannot share an address.
  std::unordered_map<std::string, std::unordered_map<int, std::string>> addresses;
};

// Top-level `daemon` and `defaults` (daemon_section.cpp). parse_daemon_section returns the
// `shard` node when the daemon is sharded, for check_sharded's messages.
YAML::Node parse_daemon_section(Diagnostics& d, const YAML::Node& node, DaemonSettings& out);
// What a sharded daemon cannot do (publish MQTT, keep the history).
void check_sharded(Diagnostics& d, const YAML::Node& shard_node, const Config& cfg);
Defaults parse_defaults(Diagnostics& d, const YAML::Node& node);

// One entry of `sites`, its rooms, rows and cabinets (inventory.cpp) and its devices
// (devices.cpp); appended to ctx.cfg.sites.
void parse_site(LoadContext& ctx, const YAML::Node& node);
void parse_device(LoadContext& ctx, Site& site, const std::unordered_set<std::string>& room_ids,
                  const YAML::Node& node);
// Two devices measuring one feed of one cabinet would double-count its power.
void check_feeds_measured_once(Diagnostics& d, const Site& site);

// Section parsers, one file each (modbus.cpp, mqtt.cpp).
Endpoint parse_endpoint(Diagnostics& d, const YAML::Node& at, const std::string& what,
                        const std::string& s);
void parse_mqtt_settings(Diagnostics& d, const YAML::Node& node, MqttSettings& out);
// A credentials mapping (`what` is its key path for messages: "mqtt.auth", "daemon.auth"):
// username_file/_env and password_file/_env, never the values themselves.
void parse_credentials(Diagnostics& d, const YAML::Node& node, const std::string& what,
                       Credentials& out);
// Top-level `endpoints` list; `where` gets each entry's position, `given` its keys.
using EndpointKeysGiven = std::map<std::string, std::set<std::string>>;
void parse_endpoint_settings(Diagnostics& d, const YAML::Node& node,
                             std::map<std::string, EndpointSettings>& out,
                             std::map<std::string, SourceLoc>& where, EndpointKeysGiven& given);
// The profiles' `defaults` (pauses, serial settings) on every endpoint whose entry does not set
// them: the longest pause of its devices' profiles; serial settings must agree on one line.
void apply_profile_link_defaults(Diagnostics& d, Config& cfg, const EndpointKeysGiven& given);
// A list of {function, from, to} mappings under `key` of `parent` (profile or device never_read).
// `address_base` as the profile's (1: the numbers are 1-based register numbers).
std::vector<modbus::AddressRange> parse_address_ranges(Diagnostics& d, MapReader& parent,
                                                       const std::string& key,
                                                       int address_base = 0);
// Device keys retries, busy_retries, busy_retry_delay, max_registers_per_read, max_gap,
// never_read.
void parse_device_modbus(Diagnostics& d, MapReader& r, DeviceModbusSettings& out);
// Device checks that need the profile too: no point wider than the device's
// max_registers_per_read; at least one point read on every poll.
void check_device_modbus(Diagnostics& d, MapReader& dr, const Device& dev);

// Facility-model sections (facility.cpp).
std::string format_number(double v);
FacilitySettings parse_facility_settings(Diagnostics& d, const YAML::Node& node,
                                         const std::string& what, const FacilitySettings& base);
std::vector<CabinetClass> parse_cabinet_classes(Diagnostics& d, const YAML::Node& node);
std::vector<PlanStep> parse_build_out_plan(Diagnostics& d, const YAML::Node& node,
                                           const std::string& what);
// After a cabinet's own keys: its class (key "class"), rack_units, and the resolved feed
// capacity, derating and overload thresholds.
void resolve_cabinet(Diagnostics& d, MapReader& cr, const Config& cfg, const Site& site,
                     Cabinet& cab);
// A device's facility keys (nominal_voltage_v, nominal_power_factor, capacity_kw).
void parse_device_facility(Diagnostics& d, MapReader& dr, const Site& site, Device& dev);
// The points the model needs from a device of this kind.
void check_profile_points(Diagnostics& d, MapReader& dr, const Device& dev);
void check_site_facility(Diagnostics& d, MapReader& sr, const Site& site);

// History and report sections (history.cpp): top-level `history` and `report`.
void parse_history_section(Diagnostics& d, MapReader& top, Config& cfg);
ReportSettings parse_report_settings(Diagnostics& d, const YAML::Node& node,
                                     const std::string& what, const ReportSettings& base);

}  // namespace facility::config_detail
