#include <algorithm>
#include <cmath>
#include <regex>

#include "daemon/config/reader.h"

namespace facility {

std::string Endpoint::key() const {
  if (transport == Transport::kRtu) return "rtu://" + device;
  return scheme + "://" + host + ":" + std::to_string(port);
}

std::optional<Endpoint> parse_endpoint_uri(const std::string& s, std::string* error) {
  Endpoint e;
  static const std::regex net(R"(^(tcp|rtu-over-tcp)://([A-Za-z0-9.\-]+):([0-9]{1,5})$)");
  static const std::regex serial(R"(^rtu://(/[A-Za-z0-9_./\-]+)$)");
  std::smatch m;
  if (std::regex_match(s, m, net)) {
    e.scheme = m[1].str();
    e.transport = e.scheme == "tcp" ? Transport::kTcp : Transport::kRtuOverTcp;
    e.host = m[2].str();
    e.port = std::stoi(m[3].str());
    if (e.port < 1 || e.port > 65535) {
      if (error) *error = "endpoint port must be 1..65535";
      return std::nullopt;
    }
    return e;
  }
  if (std::regex_match(s, m, serial)) {
    e.scheme = "rtu";
    e.transport = Transport::kRtu;
    e.device = m[1].str();
    return e;
  }
  if (error) {
    *error = "endpoint \"" + s +
             "\" must look like tcp://HOST:PORT, rtu-over-tcp://HOST:PORT or rtu:///dev/ttyUSB0";
  }
  return std::nullopt;
}

std::string unit_problem(const Endpoint& e, long long unit) {
  const std::string u = "unit " + std::to_string(unit);
  if (e.transport == Transport::kTcp) {
    return unit < 0 || unit > 255 ? u + " is out of range 0..255" : "";
  }
  if (unit == 0) {
    return u + " is the broadcast address on a serial line (rtu:// and rtu-over-tcp://), "
               "which never answers; use 1..247";
  }
  if (unit < 1 || unit > 247) {
    return u + " is reserved on a serial line (rtu:// and rtu-over-tcp://); use 1..247";
  }
  return "";
}

int every_nth_poll(std::optional<std::chrono::milliseconds> point_interval,
                   std::chrono::milliseconds device_interval) {
  if (!point_interval || device_interval.count() <= 0) return 1;
  const long n = std::lround(static_cast<double>(point_interval->count()) /
                             static_cast<double>(device_interval.count()));
  return static_cast<int>(std::clamp<long>(n, 1, 1'000'000));
}

namespace config_detail {

Endpoint parse_endpoint(Diagnostics& d, const YAML::Node& at, const std::string& what,
                        const std::string& s) {
  std::string error;
  auto e = parse_endpoint_uri(s, &error);
  if (!e) {
    d.error(at, what + ": " + error);
    return Endpoint{};
  }
  return *e;
}

void parse_endpoint_settings(Diagnostics& d, const YAML::Node& node,
                             std::map<std::string, EndpointSettings>& out,
                             std::map<std::string, SourceLoc>& where, EndpointKeysGiven& given) {
  if (!node.IsSequence()) {
    d.error(node, "endpoints: must be a list of mappings with an \"endpoint\" key");
    return;
  }
  for (const auto& en : node) {
    MapReader r(d, en, "endpoints entry",
                {"endpoint", "connect_timeout", "pause_after_connect", "pause_between_requests",
                 "backoff_initial", "backoff_max", "baud", "parity", "data_bits", "stop_bits"});
    if (!r.ok()) continue;
    auto uri = r.str("endpoint", true);
    if (!uri) continue;
    const Endpoint ep = parse_endpoint(d, r.get("endpoint"), "endpoints entry", *uri);
    if (ep.scheme.empty()) continue;
    const std::string key = ep.key();
    r.set_what("endpoint \"" + key + "\"");
    if (out.count(key)) {
      d.error(r.get("endpoint"), "endpoint \"" + key + "\": listed twice in endpoints");
      continue;
    }
    EndpointSettings s;
    if (auto v = r.duration("connect_timeout")) s.connect_timeout = *v;
    if (auto v = r.duration("pause_after_connect")) s.pause_after_connect = *v;
    if (auto v = r.duration("pause_between_requests")) s.pause_between_requests = *v;
    if (auto v = r.duration("backoff_initial")) s.backoff_initial = *v;
    if (auto v = r.duration("backoff_max")) s.backoff_max = *v;
    if (s.backoff_max < s.backoff_initial) {
      d.error(r.has("backoff_max") ? r.get("backoff_max") : YAML::Node(en),
              r.what() + ": backoff_max must not be shorter than backoff_initial");
    }
    const bool serial = ep.transport == Transport::kRtu;
    for (const char* k : {"baud", "parity", "data_bits", "stop_bits"}) {
      if (r.has(k) && !serial) {
        d.error(r.key_node(k), r.what() + ": \"" + k + "\" applies only to rtu:// serial lines");
      }
    }
    if (auto v = r.integer("baud", 50, 4'000'000)) s.baud = int(*v);
    if (auto p = r.choice<char>("parity", {{"none", 'N'}, {"even", 'E'}, {"odd", 'O'}})) {
      s.parity = *p;
    }
    if (auto v = r.integer("data_bits", 5, 8)) {
      // Modbus RTU frames are 11-bit characters of 8 data bits (7 is Modbus ASCII, which
      // facilityd does not speak); a line set to fewer bits garbles every frame.
      if (*v != 8) {
        d.error(r.get("data_bits"),
                r.what() + ": data_bits " + std::to_string(*v) + ": Modbus RTU uses 8 data bits");
      }
      s.data_bits = int(*v);
    }
    if (auto v = r.integer("stop_bits", 1, 2)) s.stop_bits = int(*v);
    out[key] = s;
    where[key] = d.loc(en);
    for (auto it = en.begin(); it != en.end(); ++it) given[key].insert(it->first.Scalar());
  }
}

namespace {

std::string text_of(int v) { return std::to_string(v); }
std::string text_of(char parity) { return parity == 'E' ? "even" : parity == 'O' ? "odd" : "none"; }

// One serial setting of a line from its devices' profiles: they must agree.
template <typename T>
void serial_default(Diagnostics& d, const Device& dev, const char* key, const std::optional<T>& v,
                    std::map<std::string, std::pair<T, const Device*>>& seen, T& target) {
  if (!v) return;
  auto [it, fresh] = seen.emplace(key, std::make_pair(*v, &dev));
  if (!fresh && it->second.first != *v) {
    const Device& other = *it->second.second;
    d.error(dev.loc, "device \"" + dev.id + "\": its profile \"" + dev.profile->name + "\" sets " +
                         key + " " + text_of(*v) + " on " + dev.endpoint.key() +
                         ", the profile \"" + other.profile->name + "\" of device \"" + other.id +
                         "\" " + text_of(it->second.first) +
                         ": set it for the line in an endpoints entry");
    return;
  }
  target = *v;
}

}  // namespace

void apply_profile_link_defaults(Diagnostics& d, Config& cfg, const EndpointKeysGiven& given) {
  // Per endpoint: the serial settings seen so far, and which device's profile set them.
  std::map<std::string, std::map<std::string, std::pair<int, const Device*>>> ints;
  std::map<std::string, std::map<std::string, std::pair<char, const Device*>>> chars;
  for (const Device* dev : cfg.all_devices()) {
    if (!dev->profile) continue;
    const ProfileLinkDefaults& pd = dev->profile->defaults;
    if (!pd.pause_after_connect && !pd.pause_between_requests && !pd.baud && !pd.parity &&
        !pd.stop_bits) {
      continue;
    }
    const std::string key = dev->endpoint.key();
    const auto g = given.find(key);
    auto is_given = [&g, &given](const char* k) { return g != given.end() && g->second.count(k); };
    EndpointSettings& es = cfg.endpoints[key];
    // Pauses: the longest any device on the endpoint needs.
    if (pd.pause_after_connect && !is_given("pause_after_connect")) {
      es.pause_after_connect = std::max(es.pause_after_connect, *pd.pause_after_connect);
    }
    if (pd.pause_between_requests && !is_given("pause_between_requests")) {
      es.pause_between_requests = std::max(es.pause_between_requests, *pd.pause_between_requests);
    }
    // A gateway's serial side is set in the gateway; only a local line takes these.
    if (dev->endpoint.transport != Transport::kRtu) continue;
    if (!is_given("baud")) serial_default(d, *dev, "baud", pd.baud, ints[key], es.baud);
    if (!is_given("stop_bits")) {
      serial_default(d, *dev, "stop_bits", pd.stop_bits, ints[key], es.stop_bits);
    }
    if (!is_given("parity")) serial_default(d, *dev, "parity", pd.parity, chars[key], es.parity);
  }
}

std::vector<modbus::AddressRange> parse_address_ranges(Diagnostics& d, MapReader& parent,
                                                       const std::string& key, int address_base) {
  std::vector<modbus::AddressRange> out;
  for (const auto& n : parent.seq(key)) {
    MapReader r(d, n, parent.what() + " " + key + " entry", {"function", "from", "to"});
    if (!r.ok()) continue;
    modbus::AddressRange ar;
    if (auto f = r.str("function", true)) {
      if (auto k = modbus::parse_register_kind(*f)) {
        ar.kind = *k;
      } else {
        d.error(r.get("function"), r.what() + ": unknown function \"" + *f +
                                       "\" (expected coil, discrete_input, holding, input)");
        continue;
      }
    } else {
      continue;
    }
    auto from = r.integer("from", address_base, 65535, true);
    if (!from) continue;
    auto to = r.integer("to", address_base, 65535);
    ar.first = static_cast<std::uint16_t>(*from - address_base);
    ar.last = static_cast<std::uint16_t>(to.value_or(*from) - address_base);
    if (ar.last < ar.first) {
      d.error(r.get("to"), r.what() + ": \"to\" must not be below \"from\"");
      continue;
    }
    out.push_back(ar);
  }
  return out;
}

void parse_device_modbus(Diagnostics& d, MapReader& r, DeviceModbusSettings& out) {
  if (auto v = r.integer("retries", 0, 10)) out.retries = int(*v);
  if (auto v = r.integer("busy_retries", 0, 10)) out.busy_retries = int(*v);
  if (auto v = r.duration("busy_retry_delay")) out.busy_retry_delay = *v;
  if (auto v = r.integer("max_registers_per_read", 1, 125)) out.max_registers_per_read = int(*v);
  if (auto v = r.integer("max_gap", 0, 125)) out.max_gap = int(*v);
  auto extra = parse_address_ranges(d, r, "never_read");
  out.never_read.insert(out.never_read.end(), extra.begin(), extra.end());
}

void check_device_modbus(Diagnostics& d, MapReader& dr, const Device& dev) {
  if (!dev.profile || dev.profile->points.empty()) return;
  // A point wider than the per-read cap can never be read: say so now, not at the first poll.
  if (dev.modbus.max_registers_per_read) {
    const int cap = *dev.modbus.max_registers_per_read;
    for (const ProfilePoint& p : dev.profile->points) {
      if (modbus::is_bit_kind(p.spec.kind) || p.spec.width() <= cap) continue;
      d.error(dr.get("max_registers_per_read"),
              dr.what() + ": point \"" + p.spec.name + "\" is " +
                  std::to_string(p.spec.width()) + " registers wide, more than "
                  "max_registers_per_read (" + std::to_string(cap) + ")");
    }
  }
  // Polls that read nothing would still count as contact (device up, last success).
  const bool any_every_poll =
      std::any_of(dev.profile->points.begin(), dev.profile->points.end(),
                  [&](const ProfilePoint& p) { return every_nth_poll(p.interval, dev.interval) == 1; });
  if (!any_every_poll) {
    Millis fastest = *dev.profile->points.front().interval;
    for (const ProfilePoint& p : dev.profile->points) fastest = std::min(fastest, *p.interval);
    d.error(dr.has("interval") ? dr.get("interval") : YAML::Node(dr.node()),
            dr.what() + ": every point of profile \"" + dev.profile->name +
                "\" has an interval longer than the device's (" +
                std::to_string(dev.interval.count()) + " ms), so most polls would read nothing; "
                "set the device's interval to its fastest point's (" +
                std::to_string(fastest.count()) + " ms)");
  }
}

}  // namespace config_detail
}  // namespace facility
