#include "daemon/config/config.h"

#include <yaml-cpp/yaml.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <cmath>

#include <cerrno>
#include <cstring>
#include <regex>
#include <sstream>

#include "daemon/config/reader.h"

namespace facility {

std::string ConfigError::format() const {
  std::ostringstream os;
  os << loc.file;
  if (loc.line > 0) os << ":" << loc.line << ":" << loc.column;
  os << ": " << message;
  return os.str();
}

ConfigException::ConfigException(std::vector<ConfigError> errors, std::size_t omitted)
    : errors_(std::move(errors)), omitted_(omitted) {
  std::ostringstream os;
  for (std::size_t i = 0; i < errors_.size(); ++i) {
    if (i) os << "\n";
    os << errors_[i].format();
  }
  if (omitted_ > 0) {
    os << "\n... and " << omitted_ << " more problem" << (omitted_ == 1 ? "" : "s")
       << " not shown (the first " << errors_.size() << " are)";
  }
  summary_ = os.str();
}

std::optional<std::string> read_config_text(const std::string& path, std::string& why) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    const int e = errno;
    why = e == ELOOP    ? "cannot open file: too many levels of symbolic links (a symlink loop?)"
          : e == ENOENT ? "cannot open file: no such file"
                        : std::string("cannot open file: ") + std::strerror(e);
    return std::nullopt;
  }
  if (!S_ISREG(st.st_mode)) {
    const char* what = S_ISDIR(st.st_mode)    ? "a directory"
                       : S_ISFIFO(st.st_mode) ? "a FIFO (named pipe)"
                       : S_ISSOCK(st.st_mode) ? "a socket"
                       : S_ISCHR(st.st_mode)  ? "a character device"
                       : S_ISBLK(st.st_mode)  ? "a block device"
                                              : "not a regular file";
    why = std::string("is ") + what + ", not a file: give the path of a .yaml file";
    return std::nullopt;
  }
  auto too_big = [&why](std::uintmax_t bytes) {
    why = "is " + std::to_string(bytes) + " bytes; config and profile files are limited to " +
          std::to_string(kMaxConfigFileBytes >> 20) + " MiB";
  };
  if (static_cast<std::uintmax_t>(st.st_size) > kMaxConfigFileBytes) {
    too_big(static_cast<std::uintmax_t>(st.st_size));
    return std::nullopt;
  }
  // O_NONBLOCK: should the file have been swapped for a FIFO since stat(), open() does not wait
  // for a writer; fstat() below then refuses it.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    why = std::string("cannot open file: ") + std::strerror(errno);
    return std::nullopt;
  }
  std::string text;
  struct stat fst {};
  if (::fstat(fd, &fst) != 0 || !S_ISREG(fst.st_mode)) {
    ::close(fd);
    why = "is not a regular file";
    return std::nullopt;
  }
  char buf[65536];
  while (true) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      why = std::string("cannot read file: ") + std::strerror(errno);
      ::close(fd);
      return std::nullopt;
    }
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
    if (text.size() > kMaxConfigFileBytes) {  // it grew while we read it
      ::close(fd);
      too_big(text.size());
      return std::nullopt;
    }
  }
  ::close(fd);
  return text;
}

const ProfilePoint* Profile::find(const std::string& point_name) const {
  for (const auto& p : points) {
    if (p.spec.name == point_name) return &p;
  }
  return nullptr;
}

const DerivedPoint* Profile::find_derived(const std::string& point_name) const {
  for (const auto& p : derived) {
    if (p.spec.name == point_name) return &p;
  }
  return nullptr;
}

bool Profile::has_point(const std::string& point_name) const {
  return find(point_name) != nullptr || find_derived(point_name) != nullptr;
}

const char* to_string(DeviceKind k) { return kind_info(k).name; }
const char* to_string(MeterRole r) {
  switch (r) {
    case MeterRole::kNone:
      return "";
    case MeterRole::kFacilityTotal:
      return "facility_total";
    case MeterRole::kItTotal:
      return "it_total";
    case MeterRole::kCooling:
      return "cooling";
    case MeterRole::kOther:
      return "other";
    case MeterRole::kItUpsOutput:
      return "it_at_ups_output";
    case MeterRole::kItPduOutput:
      return "it_at_pdu_output";
    case MeterRole::kItEquipmentInput:
      return "it_at_equipment_input";
  }
  return "?";
}
const char* to_string(CabinetStatus s) {
  switch (s) {
    case CabinetStatus::kFree:
      return "free";
    case CabinetStatus::kSold:
      return "sold";
    case CabinetStatus::kInternal:
      return "internal";
  }
  return "?";
}
const char* to_string(Ownership o) { return o == Ownership::kLeased ? "leased" : "self_built"; }

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

namespace config_detail {

bool check_id(Diagnostics& d, MapReader& r, const std::string& what, std::string& out) {
  static const std::regex id_regex(R"(^[A-Za-z0-9_.\-]+$)");
  auto id = r.str("id", true);
  if (!id) return false;
  if (!std::regex_match(*id, id_regex)) {
    d.error(r.get("id"),
            what + ": id \"" + *id + "\" may contain only letters, digits, '_', '.' and '-'");
    return false;
  }
  out = *id;
  return true;
}

YAML::Node load_yaml(Diagnostics& d, const std::string& path) {
  std::string why;
  const auto text = read_config_text(path, why);
  if (!text) {
    d.error(SourceLoc{path, 0, 0}, why);
    return YAML::Node();
  }
  try {
    return YAML::Load(*text);
  } catch (const YAML::Exception& e) {
    d.error(SourceLoc{path, e.mark.line + 1, e.mark.column + 1}, "YAML syntax error: " + e.msg);
    return YAML::Node();
  }
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

}  // namespace config_detail

std::shared_ptr<const Profile> load_profile(const std::string& path) {
  config_detail::Diagnostics d(path);
  auto p = config_detail::parse_profile(d, path);
  if (!d.errors().empty() || !p) throw d.exception();
  return p;
}

namespace {

using config_detail::Diagnostics;
using config_detail::MapReader;

// Every problem, in file order, or nothing.
void throw_if_errors(Diagnostics& d) {
  if (d.errors().empty()) return;
  auto& errs = d.errors();
  std::stable_sort(errs.begin(), errs.end(), [](const ConfigError& a, const ConfigError& b) {
    if (a.loc.file != b.loc.file) return a.loc.file < b.loc.file;
    return std::tie(a.loc.line, a.loc.column) < std::tie(b.loc.line, b.loc.column);
  });
  throw d.exception();
}

// An endpoints entry that no device uses is most likely a typo in one of the two.
void check_endpoints_used(Diagnostics& d, const Config& cfg,
                          const std::map<std::string, SourceLoc>& endpoint_locs) {
  for (const auto& [key, loc] : endpoint_locs) {
    bool used = false;
    for (const auto& site : cfg.sites) {
      for (const auto& dev : site.devices) used = used || dev.endpoint.key() == key;
    }
    if (!used) d.error(loc, "endpoint \"" + key + "\": no device uses this endpoint");
  }
}

}  // namespace

Config load_config(const std::string& path) {
  Diagnostics d(path);
  Config cfg;
  cfg.path = path;
  YAML::Node root = config_detail::load_yaml(d, path);
  if (!d.errors().empty()) throw d.exception();
  if (!root.IsDefined() || root.IsNull()) {
    d.error(SourceLoc{path, 0, 0}, "config file is empty");
    throw d.exception();
  }
  MapReader top(d, root, "config",
                {"daemon", "mqtt", "defaults", "profiles_dir", "facility", "cabinet_classes",
                 "endpoints", "sites", "history", "report"});
  if (!top.ok()) throw d.exception();

  YAML::Node shard_node;
  if (top.has("daemon")) {
    shard_node = config_detail::parse_daemon_section(d, top.get("daemon"), cfg.daemon);
  }
  if (top.has("mqtt")) config_detail::parse_mqtt_settings(d, top.get("mqtt"), cfg.mqtt);
  config_detail::parse_history_section(d, top, cfg);
  config_detail::check_sharded(d, shard_node, cfg);
  if (top.has("facility")) {
    cfg.facility =
        config_detail::parse_facility_settings(d, top.get("facility"), "facility", cfg.facility);
  }
  if (top.has("cabinet_classes")) {
    cfg.cabinet_classes = config_detail::parse_cabinet_classes(d, top.get("cabinet_classes"));
  }
  std::map<std::string, SourceLoc> endpoint_locs;
  config_detail::EndpointKeysGiven endpoint_keys;
  if (top.has("endpoints")) {
    config_detail::parse_endpoint_settings(d, top.get("endpoints"), cfg.endpoints, endpoint_locs,
                                           endpoint_keys);
  }

  config_detail::Defaults defs;
  if (top.has("defaults")) defs = config_detail::parse_defaults(d, top.get("defaults"));
  config_detail::ProfileLibrary profiles(d, cfg, top);
  config_detail::LoadContext ctx{d, cfg, std::move(defs), profiles, {}, {}, {}};
  // No sites is a valid start (the installed /etc/facilityd/facilityd.yaml): the daemon then
  // serves only its own health until sites are added.
  for (const auto& sn : top.seq("sites")) config_detail::parse_site(ctx, sn);

  check_endpoints_used(d, cfg, endpoint_locs);
  config_detail::apply_profile_link_defaults(d, cfg, endpoint_keys);
  throw_if_errors(d);
  return cfg;
}

}  // namespace facility
