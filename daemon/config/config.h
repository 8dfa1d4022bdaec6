// facilityd configuration: daemon settings, register-map profiles and the site inventory
// (sites > rooms > rows > cabinets, and the devices that measure them).
//
// load_config() parses and validates everything before any I/O happens. Every problem is
// reported with file, line and column; unknown keys and duplicates are errors. See
// docs/config.md for every key.
//
// Thread-safety: a Config is immutable after loading and may be shared (const) between threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "collectors/modbus/codec.h"
#include "collectors/modbus/derived.h"
#include "daemon/config/device_kinds.h"
#include "daemon/config/facility.h"
#include "daemon/config/history.h"
#include "daemon/config/identify.h"
#include "daemon/config/modbus.h"
#include "daemon/config/mqtt.h"

namespace facility {

using Millis = std::chrono::milliseconds;

// A location in a config or profile file, for error messages.
struct SourceLoc {
  std::string file;
  int line = 0;    // 1-based; 0 = unknown
  int column = 0;  // 1-based
};

struct ConfigError {
  SourceLoc loc;
  std::string message;
  std::string format() const;  // "FILE:LINE:COL: message"
};

// Thrown by load_config(); carries every problem found, not just the first.
// At most kMaxConfigErrors problems are kept (a file of 250,000 unknown keys must not cost
// gigabytes of messages); the rest are only counted.
class ConfigException : public std::exception {
 public:
  explicit ConfigException(std::vector<ConfigError> errors, std::size_t omitted = 0);
  // Every kept problem, one "FILE:LINE:COL: message" per line, then "... and N more" if any
  // were only counted.
  const char* what() const noexcept override { return summary_.c_str(); }
  const std::vector<ConfigError>& errors() const { return errors_; }
  std::size_t omitted() const { return omitted_; }
  std::size_t total() const { return errors_.size() + omitted_; }

 private:
  std::vector<ConfigError> errors_;
  std::size_t omitted_ = 0;
  std::string summary_;
};

// Problems kept per load (config and its profiles together).
inline constexpr std::size_t kMaxConfigErrors = 100;
// Config and profile files larger than this are refused before they are parsed.
inline constexpr std::uintmax_t kMaxConfigFileBytes = 16u << 20;

// The whole text of a config or profile file, or nullopt with `why` set: refuses directories,
// FIFOs, sockets and devices (which could hang or never end), symlink loops, unreadable files
// and files over kMaxConfigFileBytes, each with a message that says so.
std::optional<std::string> read_config_text(const std::string& path, std::string& why);

// ---- Profiles (register maps, config/profiles/*.yaml) ------------------------------------

struct ProfilePoint {
  modbus::PointSpec spec;
  std::string description;
  // Read this point less often than its device (energy counters, nameplate strings): rounded
  // to a whole number of the device's intervals. nullopt = every poll.
  std::optional<Millis> interval;
};

// A point computed from other points of the profile after each poll (`derive:`, docs/config.md
// "Derived points"; collectors/modbus/derived.h evaluates it).
struct DerivedPoint {
  modbus::DerivedSpec spec;         // inputs resolved to indices: Profile::points, then derived
  std::vector<std::string> inputs;  // the input names as written, in spec.inputs order
  std::string description;
  SourceLoc loc;
};

// Transport settings a device model needs (a profile's `defaults`): they apply to an endpoint
// whose `endpoints` entry does not set them (docs/config.md, "Profiles").
struct ProfileLinkDefaults {
  std::optional<Millis> pause_after_connect;
  std::optional<Millis> pause_between_requests;
  std::optional<int> baud;
  std::optional<char> parity;  // N, E, O
  std::optional<int> stop_bits;
};

struct Profile {
  std::string name;  // file name without .yaml
  std::string description;
  std::string source;  // where the register map comes from (document, version) or "synthetic"
  // The device kinds the map is for (`kinds`); empty = any kind. `facilityd scan` writes the
  // first into the inventory it proposes.
  std::vector<DeviceKind> kinds;
  // What `address` means: 0 = the protocol address; 1 = a 1-based register number as many
  // manuals print it (the address sent is address - 1). Addresses below are already converted.
  int address_base = 0;
  int max_registers_per_read = 125;
  int max_gap = 16;  // largest hole of unmapped registers/bits one read may bridge
  std::vector<modbus::AddressRange> never_read;  // addresses the device must never be asked for
  ProfileLinkDefaults defaults;
  std::vector<ProfilePoint> points;
  std::vector<DerivedPoint> derived;  // evaluation order: every input before the points using it
  IdentifySpec identify;              // how `facilityd scan` recognises the model
  SourceLoc loc;
  // A read point by name (derived points are not read; see has_point, find_derived).
  const ProfilePoint* find(const std::string& point_name) const;
  const DerivedPoint* find_derived(const std::string& point_name) const;
  bool has_point(const std::string& point_name) const;  // read or derived
};

// ---- Inventory ---------------------------------------------------------------------------

// Meter roles. The three it_at_* roles say where IT power is measured, which is the ISO/IEC
// 30134-2 PUE category: UPS output (1), PDU output (2), IT equipment input (3). kItTotal
// ("it_total", kept for compatibility) is IT power at the site's `pue_category`.
enum class MeterRole {
  kNone,
  kFacilityTotal,
  kItTotal,
  kCooling,
  kOther,
  kItUpsOutput,
  kItPduOutput,
  kItEquipmentInput,
};
enum class CabinetStatus { kFree, kSold, kInternal };
enum class Ownership { kSelfBuilt, kLeased };

const char* to_string(DeviceKind k);  // the kind's name (device_kinds.h)
const char* to_string(MeterRole r);
const char* to_string(CabinetStatus s);
const char* to_string(Ownership o);
// The PUE category (1..3) of an IT meter role at `site_category` (for it_total); 0 if the role
// is not an IT role.
int it_category(MeterRole r, int site_category);

// ISO/IEC 30134-2 PUE categories and the meter roles that measure their IT term, in one place
// (config, model, energy series and reports all name them from here).
struct PueCategoryInfo {
  int category;
  MeterRole role;
  const char* role_name;  // as in the configuration and the energy series' `role`
  const char* where;      // where the IT energy is measured, for people
};
inline constexpr PueCategoryInfo kPueCategories[] = {
    {1, MeterRole::kItUpsOutput, "it_at_ups_output", "IT energy at the UPS output"},
    {2, MeterRole::kItPduOutput, "it_at_pdu_output", "IT energy at the PDU output"},
    {3, MeterRole::kItEquipmentInput, "it_at_equipment_input",
     "IT energy at the IT equipment input"},
};
// The entry of `category`, or nullptr outside 1..3.
const PueCategoryInfo* pue_category_info(int category);

// Hints for facility-sim only; the daemon ignores them. Absent keys keep their defaults.
struct SimHints {
  std::optional<double> load;     // cabinet: mean load as a fraction of rated power (0 = unpowered)
  std::optional<double> inlet_c;  // rack sensor: mean inlet temperature, degC
  std::optional<double> pue;      // site: facility power / IT power
  // Device with an energy counter: the counter wraps (passes its integer type's maximum) this
  // many simulated seconds after the simulator's start.
  std::optional<double> energy_wrap_after_s;
  // Device with an energy counter: it restarts from 0 (a reboot) this many simulated seconds
  // after the simulator's start.
  std::optional<double> energy_reset_after_s;
};

struct Breaker {
  double amps = 0;
  double volts = 0;
  int phases = 1;  // 1: V x A; 3: sqrt(3) x V(line-line) x A
};

struct Cabinet {
  std::string id;  // unique within its site
  std::string site, room, row;
  std::string cabinet_class;  // "" = none
  double rated_w = 0;         // from rated_kw, or from the breaker (own, else the class's)
  std::optional<Breaker> breaker;
  std::vector<std::string> feeds;  // e.g. {"A","B"}
  CabinetStatus status = CabinetStatus::kFree;
  // What one feed's circuit can carry: the breaker's V x A (x sqrt(3) for three phases), else
  // rated_w. Failover headroom compares derating x this with the whole cabinet's load.
  double feed_capacity_w = 0;
  double derating = 0.8;      // resolved: cabinet class, else site, else top-level facility
  OverloadSettings overload;  // resolved likewise
  int rack_units = 42;        // U-space, when rack sensors report occupied units only
  SimHints sim;
  SourceLoc loc;
};

struct Row {
  std::string id;
  std::vector<std::string> cabinet_ids;
};

struct Room {
  std::string id;
  std::string name;
  std::vector<Row> rows;
};

struct Device {
  std::string id;  // unique in the whole config
  std::string site;
  DeviceKind kind = DeviceKind::kPdu;
  std::string profile_name;
  std::shared_ptr<const Profile> profile;
  Endpoint endpoint;
  int unit = 1;  // Modbus unit id 0..247
  Millis interval{15000};
  Millis timeout{1000};
  DeviceModbusSettings modbus;        // retries and device quirks (modbus.h)
  std::string cabinet;                // pdu, rack_sensor
  std::string feed;                   // pdu
  std::string room;                   // cooling (required), others optional
  MeterRole role = MeterRole::kNone;  // meter; ups: kNone or kItUpsOutput
  // pdu: for the current x voltage x power-factor estimate (resolved from the site's facility
  // settings unless the device sets its own).
  double nominal_voltage_v = 220;
  double nominal_power_factor = 0.95;
  std::optional<double> capacity_w;  // cooling: rated thermal (cooling) capacity, W
  std::optional<double> rated_w;     // ups: rated output active power, W (load without load_ratio)
  SimHints sim;
  SourceLoc loc;
};

struct Site {
  std::string id;
  std::string name;
  Ownership ownership = Ownership::kSelfBuilt;
  int planned_cabinets = 0;   // build-out plan total; load_config() sets absent/0 to the delivered
  int pue_category = 1;       // ISO/IEC 30134-2 category of the it_total meter (1, 2 or 3)
  FacilitySettings facility;  // resolved: top-level facility + the site's own
  std::vector<PlanStep> build_out_plan;  // date -> planned powered cabinets, ascending dates
  ReportSettings report;                 // resolved: top-level report + the site's own
  std::vector<Room> rooms;
  std::vector<Cabinet> cabinets;  // every cabinet of every room, in file order
  std::vector<Device> devices;
  SimHints sim;
  const Cabinet* find_cabinet(const std::string& id) const;
};

// daemon.shard "INDEX/COUNT": this daemon polls and exports one shard of every site
// (daemon/config/shard.h says which devices; docs/prometheus.md how the shards add up).
struct ShardSettings {
  int index = 0;
  int count = 1;  // 1 = not sharded
  bool sharded() const { return count > 1; }
  std::string text() const { return std::to_string(index) + "/" + std::to_string(count); }
};

struct DaemonSettings {
  std::string listen = "127.0.0.1:10044";
  // HTTP basic authentication on every route of the listener (/metrics, /, /reports). Off
  // unless both a user name and a password are configured (never in clear in the file).
  Credentials auth;
  ShardSettings shard;
  int stale_after_intervals = 3;     // a reading older than N x its device's interval is stale
  double powered_threshold_w = 100;  // a cabinet drawing more than this counts as powered
  // Where facilityd keeps state across restarts (the MQTT outbox). systemd: StateDirectory=.
  std::string state_dir = "/var/lib/facilityd";
};

struct Config {
  std::string path;  // the file it was loaded from
  DaemonSettings daemon;
  MqttSettings mqtt;
  HistorySettings history;
  ReportSettings report;  // top level; each Site holds its resolved copy
  std::map<std::string, std::shared_ptr<const Profile>> profiles;
  FacilitySettings facility;  // top level; each Site holds its resolved copy
  std::vector<CabinetClass> cabinet_classes;
  // Settings of endpoints listed under `endpoints`, by Endpoint::key(); others use defaults.
  std::map<std::string, EndpointSettings> endpoints;
  EndpointSettings endpoint_settings(const Endpoint& e) const;
  std::vector<Site> sites;

  const Site* find_site(const std::string& id) const;
  std::vector<const Device*> all_devices() const;
};

// Loads and validates a config file and the profiles it uses. Throws ConfigException listing
// every problem found.
Config load_config(const std::string& path);

// Loads one profile file (used by load_config and by `facilityd probe --profile`).
std::shared_ptr<const Profile> load_profile(const std::string& path);

// Where profile names are looked up, in order: `first` (the configuration's profiles_dir, or
// probe's --profiles-dir; empty = none), then /etc/facilityd/profiles, then the shipped
// /usr/share/facilityd/profiles (the install prefix's). The first file NAME.yaml found wins, so
// a site's own profile overrides a shipped one of the same name.
std::vector<std::filesystem::path> profile_search_path(const std::filesystem::path& first);
// The file of profile `name` on the search path; empty if there is none.
std::filesystem::path find_profile_file(const std::vector<std::filesystem::path>& search_path,
                                        const std::string& name);
// Every profile name on the search path, sorted, each once.
std::vector<std::string> available_profiles(const std::vector<std::filesystem::path>& search_path);

// Parses "15s", "500ms", "2m", "1h", "30d". nullopt on error.
std::optional<Millis> parse_duration(const std::string& s);

}  // namespace facility
