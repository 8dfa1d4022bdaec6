#include "sim/simulator.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <system_error>

#include <nlohmann/json.hpp>

#include "daemon/config/points.h"

namespace facility::sim {
namespace {

// The value a point of a UPS on battery reports instead of its own: on_battery 1, the
// output_source code named "battery"; nullopt for every other point.
std::optional<double> on_battery_value(const modbus::PointSpec& spec) {
  if (spec.name == points::kOnBattery) return 1.0;
  if (spec.name != points::kOutputSource) return std::nullopt;
  for (const auto& [code, name] : spec.enum_names) {
    if (name == "battery") return static_cast<double>(code);
  }
  return std::nullopt;
}

bool is_loopback(const std::string& host) {
  if (host == "localhost") return true;
  in_addr a{};
  if (::inet_pton(AF_INET, host.c_str(), &a) != 1) return false;
  return (ntohl(a.s_addr) >> 24) == 127;
}

std::string join_lines(const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += (s.empty() ? "" : "\n") + l;
  return s;
}

}  // namespace

UnitImage blank_image(const Profile& profile) {
  UnitImage img;
  img.max_registers_per_read = profile.max_registers_per_read;
  std::array<std::uint32_t, 4> lo, hi;
  lo.fill(UINT32_MAX);
  hi.fill(0);
  auto span_of = [&lo, &hi](const modbus::PointSpec& spec) {
    const auto k = static_cast<std::size_t>(spec.kind) - 1;
    lo[k] = std::min<std::uint32_t>(lo[k], spec.address);
    hi[k] = std::max<std::uint32_t>(hi[k], spec.address + static_cast<std::uint32_t>(spec.width()));
  };
  for (const ProfilePoint& p : profile.points) span_of(p.spec);
  // Identification registers that no point maps are served too (what `facilityd scan` reads).
  for (const IdentifyRegister& r : profile.identify.registers) span_of(r.spec);
  for (std::size_t k = 0; k < 4; ++k) {
    if (hi[k] == 0) continue;
    hi[k] = std::min<std::uint32_t>(hi[k], 65536);  // a register map ends at the address space
    img.tables[k].start = static_cast<std::uint16_t>(lo[k]);
    img.tables[k].values.assign(hi[k] - lo[k], 0);
  }
  write_identity(profile, img);
  return img;
}

void write_identity(const Profile& profile, UnitImage& img) {
  const IdentifySpec& id = profile.identify;
  if (id.fc43) img.device_id = id.fc43->simulate.empty() ? id.fc43->objects : id.fc43->simulate;
  for (const IdentifyRegister& r : id.registers) {
    modbus::PointSpec spec = r.spec;
    std::vector<std::uint16_t> words;
    if (!r.prefix.empty()) {
      words = modbus::PointCodec(spec).encode_text(r.prefix);
    } else if (!r.equals.empty()) {
      spec.scale = 1.0;  // equals are raw codes
      spec.offset = 0.0;
      words = modbus::PointCodec(spec).encode_registers(static_cast<double>(r.equals.front()));
    } else if (r.range) {
      // A point at the address already serves a plausible value (a range checks plausibility).
      const bool mapped =
          std::any_of(profile.points.begin(), profile.points.end(), [&spec](const ProfilePoint& p) {
            return p.spec.kind == spec.kind && p.spec.address <= spec.address &&
                   spec.address < p.spec.address + p.spec.width();
          });
      if (mapped) continue;
      words = modbus::PointCodec(spec).encode_registers((r.range->first + r.range->second) / 2);
    }
    RegisterTable& t = img.table(spec.kind);
    for (std::size_t w = 0; w < words.size(); ++w) {
      const std::size_t at = spec.address - t.start + w;
      if (at < t.values.size()) {
        t.values[at] = modbus::is_bit_kind(spec.kind) ? (words[w] != 0 ? 1 : 0) : words[w];
      }
    }
  }
}

// Puts device `i` on its endpoint (a loopback TCP port or a mapped serial line), or says why
// it cannot be served: a warning for an unmapped serial line, an error for the rest.
void Simulator::assign_endpoint(std::size_t i, const Device& d, const SimulatorOptions& options,
                                EndpointPlan& plan, std::vector<std::string>& errors) {
  const std::string key = d.endpoint.key();
  if (d.endpoint.transport == Transport::kRtu) {
    if (!options.serial.count(key)) {
      warnings_.push_back("device " + d.id + ": serial line " + key +
                          " is not served (map it with --serial " + key + "=PATH)");
      return;
    }
    if (!d.profile) {
      errors.push_back("device " + d.id + ": no profile loaded");
      return;
    }
    if (auto [it, fresh] = plan.unit_owner.emplace(std::pair{key, d.unit}, d.id); !fresh) {
      errors.push_back("device " + d.id + ": " + key + " unit " + std::to_string(d.unit) +
                       " is already used by device " + it->second);
      return;
    }
    auto [it, fresh] = plan.endpoint_index.emplace(key, endpoints_.size());
    if (fresh) endpoints_.push_back(EndpointInfo{key, options.serial.at(key), 0, 0, {}});
    endpoints_[it->second].devices.push_back(&d);
    plan.device_endpoint[i] = it->second;
    return;
  }
  if (!is_loopback(d.endpoint.host)) {
    errors.push_back("device " + d.id + ": endpoint " + key +
                     " is not on loopback. facility-sim only serves 127.0.0.0/8 or localhost, "
                     "so that it can never answer in place of a real device; point the "
                     "config's endpoints at 127.0.0.1");
    return;
  }
  if (d.endpoint.port < 0 || d.endpoint.port > 65535) {
    errors.push_back("device " + d.id + ": endpoint " + key + ": port out of range");
    return;
  }
  if (d.unit < 0 || d.unit > 255) {
    errors.push_back("device " + d.id + ": unit id " + std::to_string(d.unit) +
                     " out of range 0..255");
    return;
  }
  const auto port = static_cast<std::uint16_t>(d.endpoint.port);
  const std::string host = d.endpoint.host == "localhost" ? "127.0.0.1" : d.endpoint.host;
  if (auto [it, fresh] = plan.port_owner.emplace(port, host); !fresh && it->second != host) {
    // Units are dispatched by port, so one port number can't mean two gateways.
    errors.push_back("device " + d.id + ": port " + std::to_string(port) +
                     " is used on two hosts (" + it->second + " and " + host +
                     "); facility-sim needs a distinct port per endpoint");
    return;
  }
  if (auto [it, fresh] = plan.unit_owner.emplace(std::pair{key, d.unit}, d.id); !fresh) {
    errors.push_back("device " + d.id + ": " + key + " unit " + std::to_string(d.unit) +
                     " is already used by device " + it->second);
    return;
  }
  if (!d.profile) {
    errors.push_back("device " + d.id + ": no profile loaded");
    return;
  }
  auto [it, fresh] = plan.endpoint_index.emplace(key, endpoints_.size());
  if (fresh) endpoints_.push_back(EndpointInfo{key, host, port, 0, {}});
  endpoints_[it->second].devices.push_back(&d);
  plan.device_endpoint[i] = it->second;
}

Simulator::Simulator(std::shared_ptr<const Config> config, SimulatorOptions options,
                     double wall_start)
    : config_(std::move(config)),
      wall_start_(wall_start),
      speed_(options.speed),
      model_(config_, options.seed, wall_start) {
  if (!(speed_ > 0)) throw SimulatorError("speed must be > 0");
  warnings_ = model_.warnings();
  std::vector<std::string> errors;

  // Group devices by endpoint and check everything before binding anything.
  const std::vector<const Device*> all = config_->all_devices();
  EndpointPlan plan;
  plan.device_endpoint.assign(all.size(), SIZE_MAX);
  for (std::size_t i = 0; i < all.size(); ++i) assign_endpoint(i, *all[i], options, plan, errors);
  std::vector<std::size_t>& device_endpoint = plan.device_endpoint;
  for (const auto& fault : options.faults) {
    const std::string& id = fault.first;
    const bool known = std::any_of(all.begin(), all.end(),
                                   [&id](const Device* d) { return d->id == id; });
    if (!known) errors.push_back("--fault: no device \"" + id + "\" in the config");
  }
  if (!errors.empty()) throw SimulatorError(join_lines(errors));

  for (EndpointInfo& ep : endpoints_) {
    try {
      if (ep.key.rfind("rtu://", 0) == 0) {
        ep.unit_key = server_.serve_serial(ep.host);
        continue;
      }
      const bool rtu = ep.key.rfind("rtu-over-tcp://", 0) == 0;
      ep.bound_port = server_.listen(ep.host, options.ephemeral_ports ? 0 : ep.bound_port, rtu);
      ep.unit_key = ep.bound_port;
    } catch (const std::system_error& e) {
      throw BindError(std::string("cannot serve ") + ep.key + ": " + e.what() +
                           (e.code() == std::errc::address_in_use
                                ? " (is another facility-sim or a real server on that port?)"
                                : ""));
    }
  }

  for (std::size_t i = 0; i < all.size(); ++i) {
    if (device_endpoint[i] == SIZE_MAX) continue;
    const Device& d = *all[i];
    Served s;
    s.device_index = i;
    s.port = endpoints_[device_endpoint[i]].unit_key;
    s.unit = static_cast<std::uint8_t>(d.unit);
    for (const ProfilePoint& p : d.profile->points) s.codecs.emplace_back(p.spec);
    s.blank = blank_image(*d.profile);
    served_by_id_[d.id] = served_.size();
    served_.push_back(std::move(s));
  }
  for (const auto& [id, fault] : options.faults) set_fault(id, fault);
}

Simulator::~Simulator() { stop(); }

void Simulator::start() { server_.start(); }
void Simulator::stop() { server_.stop(); }

std::uint16_t Simulator::bound_port(const std::string& endpoint_key) const {
  for (const EndpointInfo& ep : endpoints_) {
    if (ep.key == endpoint_key) return ep.bound_port;
  }
  return 0;
}

void Simulator::set_fault(const std::string& device_id, const Fault& fault) {
  auto it = served_by_id_.find(device_id);
  if (it == served_by_id_.end()) {
    throw SimulatorError("no served device \"" + device_id + "\"");
  }
  const Served& s = served_[it->second];
  if (fault.on_battery) {
    const Device& d = *config_->all_devices()[s.device_index];
    const auto& pts = d.profile->points;
    if (d.kind != DeviceKind::kUps ||
        std::none_of(pts.begin(), pts.end(),
                     [](const ProfilePoint& p) { return on_battery_value(p.spec).has_value(); })) {
      throw SimulatorError("on_battery: device \"" + device_id +
                           "\" is not a UPS whose profile has an on_battery or output_source "
                           "point with a battery state");
    }
  }
  {
    const std::lock_guard lock(fault_mu_);
    if (fault.on_battery) {
      on_battery_.insert(it->second);
    } else {
      on_battery_.erase(it->second);
    }
  }
  Fault transport = fault;
  transport.on_battery = false;
  server_.set_fault(s.port, s.unit, transport);
}

Truth Simulator::update(double wall_now) {
  Truth truth = model_.at(sim_time(wall_now));
  std::set<std::size_t> on_battery;
  {
    const std::lock_guard lock(fault_mu_);
    on_battery = on_battery_;
  }
  for (std::size_t si = 0; si < served_.size(); ++si) {
    const Served& s = served_[si];
    DeviceTruth& dt = truth.devices[s.device_index];
    if (on_battery.count(si)) {
      for (std::size_t j = 0; j < s.codecs.size(); ++j) {
        if (auto v = on_battery_value(s.codecs[j].spec())) dt.points[j].second = *v;
      }
    }
    UnitImage img = s.blank;
    for (std::size_t j = 0; j < s.codecs.size(); ++j) {
      const modbus::PointCodec& codec = s.codecs[j];
      const modbus::PointSpec& spec = codec.spec();
      double& value = dt.points[j].second;
      const std::vector<std::uint16_t> words =
          spec.type == modbus::DataType::kString ? codec.encode_text(dt.device->id)
                                                 : codec.encode_registers(value);
      RegisterTable& table = img.table(spec.kind);
      const std::size_t off = spec.address - table.start;
      std::optional<double> decoded;
      if (modbus::is_bit_kind(spec.kind)) {
        const bool bit = std::any_of(words.begin(), words.end(), [](auto w) { return w != 0; });
        table.values[off] = bit ? 1 : 0;
        decoded = codec.decode_bit(bit);
      } else if (spec.type == modbus::DataType::kBool && spec.bit >= 0) {
        // Several flags share one status word: change only this point's bit.
        const auto mask = static_cast<std::uint16_t>(1u << spec.bit);
        table.values[off] = static_cast<std::uint16_t>((table.values[off] & ~mask) |
                                                       (words[0] & mask));
        decoded = codec.decode_registers(words);
      } else {
        for (std::size_t w = 0; w < words.size() && off + w < table.values.size(); ++w) {
          table.values[off + w] = words[w];
        }
        decoded = codec.decode_registers(words);
      }
      // Report what a client will decode (rounded to the register type), so a test can
      // compare a poll with the truth exactly.
      if (decoded) value = *decoded;
    }
    // What identifies the model wins over a point's value at the same address (a model string).
    write_identity(*dt.device->profile, img);
    server_.set_unit(s.port, s.unit, std::move(img));
  }
  return truth;
}

nlohmann::json truth_to_json(const Truth& truth) {
  using nlohmann::json;
  json cabinets = json::object();
  for (const CabinetTruth& c : truth.cabinets) {
    json feeds = json::object();
    for (const auto& [feed, w] : c.feeds_w) feeds[feed] = w;
    cabinets[c.site->id + "/" + c.cabinet->id] = {
        {"power_w", c.power_w}, {"rated_w", c.rated_w}, {"feeds", std::move(feeds)}};
  }
  auto opt = [](const std::optional<double>& v) { return v ? json(*v) : json(nullptr); };
  json sites = json::object();
  for (const SiteTruth& s : truth.sites) {
    sites[s.site->id] = {{"it_power_w", s.it_power_w},
                         {"facility_power_w", opt(s.facility_power_w)},
                         {"cooling_power_w", opt(s.cooling_power_w)},
                         {"pue", opt(s.pue)}};
  }
  json devices = json::object();
  for (const DeviceTruth& d : truth.devices) {
    json points = json::object();
    for (const auto& [name, v] : d.points) points[name] = v;
    devices[d.device->id] = std::move(points);
  }
  return {{"ts", truth.ts},
          {"cabinets", std::move(cabinets)},
          {"sites", std::move(sites)},
          {"devices", std::move(devices)}};
}

nlohmann::json stats_to_json(const ServerStats& stats) {
  using nlohmann::json;
  json fcs = json::object(), exc = json::object();
  for (const auto& [fc, n] : stats.function_codes) fcs[std::to_string(fc)] = n;
  for (const auto& [code, n] : stats.exceptions) exc[std::to_string(code)] = n;
  return {{"function_codes", std::move(fcs)},
          {"exceptions", std::move(exc)},
          {"replies", stats.replies},
          {"dropped", stats.dropped},
          {"connections", stats.connections},
          {"protocol_errors", stats.protocol_errors}};
}

void write_file_atomic(const std::string& path, const std::string& content) {
  // Same directory as the target: rename() is only atomic within one file system.
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << content;
    out.close();
    if (!out) {
      std::remove(tmp.c_str());
      throw std::system_error(errno, std::generic_category(), "write " + tmp);
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    throw std::system_error(err, std::generic_category(), "rename " + tmp + " -> " + path);
  }
}

}  // namespace facility::sim
