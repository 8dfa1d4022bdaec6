#include "daemon/config/mqtt.h"

#include <arpa/inet.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>

#include "daemon/config/reader.h"

namespace facility {

bool BrokerUri::tls() const { return scheme == "ssl" || scheme == "mqtts" || scheme == "wss"; }

bool BrokerUri::loopback() const {
  if (host == "localhost" || host == "::1") return true;
  in_addr a{};
  // 127.0.0.0/8 only; a name other than "localhost" could resolve anywhere.
  return ::inet_pton(AF_INET, host.c_str(), &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

std::optional<BrokerUri> parse_broker_uri(const std::string& uri) {
  static const std::regex re(R"(^(tcp|mqtt|ssl|mqtts|ws|wss)://([^\s:/\[\]]+|\[[0-9A-Fa-f:.]+\]):([0-9]{1,5})$)");
  std::smatch m;
  if (!std::regex_match(uri, m, re)) return std::nullopt;
  BrokerUri b;
  b.scheme = m[1].str();
  b.host = m[2].str();
  if (b.host.size() > 2 && b.host.front() == '[') b.host = b.host.substr(1, b.host.size() - 2);
  b.port = std::stoi(m[3].str());
  if (b.port < 1 || b.port > 65535) return std::nullopt;
  return b;
}

std::optional<std::string> mqtt_security_problem(const MqttSettings& s) {
  const auto b = parse_broker_uri(s.broker);
  if (!b) return "broker \"" + s.broker + "\" must look like tcp://HOST:PORT or ssl://HOST:PORT";
  const bool tls_files = !s.tls.ca_file.empty() || !s.tls.cert_file.empty();
  if (!b->tls() && tls_files)
    return "broker \"" + s.broker + "\" is plaintext but tls files are set; use ssl://" +
           b->host + ":" + std::to_string(b->port) + " (or mqtts://, wss://)";
  if (!b->tls() && !b->loopback() && !s.allow_plaintext)
    return "broker \"" + s.broker + "\" is not on this machine and the connection would be "
           "plaintext" + std::string(s.auth.password ? " (with the password in clear)" : "") +
           ": use ssl:// with mqtt.tls, or set mqtt.allow_plaintext: true if the network is "
           "trusted";
  return std::nullopt;
}

namespace config_detail {

namespace {

// "0", "0s", "0ms": the documented way to switch a duration off.
bool is_zero_duration(const std::string& s) {
  static const std::regex re(R"(^\s*0+(\.0+)?\s*(ms|s|m|h)?\s*$)");
  return std::regex_match(s, re);
}

std::optional<Millis> duration_or_zero(MapReader& r, const std::string& key) {
  if (!r.has(key)) return std::nullopt;
  const YAML::Node n = r.get(key);
  if (n.IsScalar() && is_zero_duration(n.Scalar())) return Millis(0);
  return r.duration(key);
}

// Sizes: bytes, or an integer with KiB/MiB/GiB (1024) or kB/MB/GB (1000).
std::optional<std::uint64_t> size(Diagnostics& d, MapReader& r, const std::string& key,
                                  std::uint64_t lo, std::uint64_t hi) {
  auto s = r.str(key);
  if (!s) return std::nullopt;
  static const std::regex re(R"(^\s*([0-9]{1,15})\s*(B|KiB|MiB|GiB|kB|MB|GB)?\s*$)");
  std::smatch m;
  if (!std::regex_match(*s, m, re)) {
    d.error(r.get(key), r.what() + ": \"" + key + "\" must be a size like 65536, 512KiB or 64MiB, got \"" +
                            *s + "\"");
    return std::nullopt;
  }
  std::uint64_t v = std::stoull(m[1].str());
  const std::string u = m[2].str();
  if (u == "KiB") v <<= 10;
  if (u == "MiB") v <<= 20;
  if (u == "GiB") v <<= 30;
  if (u == "kB") v *= 1000;
  if (u == "MB") v *= 1000 * 1000;
  if (u == "GB") v *= 1000 * 1000 * 1000;
  if (v < lo || v > hi) {
    d.error(r.get(key), r.what() + ": \"" + key + "\" = " + *s + " is out of range " +
                            std::to_string(lo) + ".." + std::to_string(hi) + " bytes");
    return std::nullopt;
  }
  return v;
}

void nonneg(Diagnostics& d, MapReader& r, const std::string& key, double& out) {
  if (auto v = r.num(key)) {
    if (*v < 0)
      d.error(r.get(key), r.what() + ": \"" + key + "\" must be >= 0 (0 = any change)");
    else
      out = *v;
  }
}

// A readable regular file, or an error at the key.
std::optional<std::string> readable_file(Diagnostics& d, MapReader& r, const std::string& key) {
  auto p = r.str(key);
  if (!p) return std::nullopt;
  std::error_code ec;
  if (p->empty() || !std::filesystem::is_regular_file(*p, ec)) {
    d.error(r.get(key), r.what() + ": " + key + " \"" + *p + "\" does not exist or is not a file");
    return std::nullopt;
  }
  std::ifstream in(*p);
  if (!in) {
    d.error(r.get(key), r.what() + ": " + key + " \"" + *p + "\" cannot be read (permissions?)");
    return std::nullopt;
  }
  return p;
}

// One secret from `<what>_file` (its first line) or `<what>_env`; exactly one of the two.
std::optional<std::string> secret(Diagnostics& d, MapReader& r, const std::string& what,
                                  std::string& source) {
  const std::string fk = what + "_file", ek = what + "_env";
  if (r.has(fk) && r.has(ek)) {
    d.error(r.get(ek), r.what() + ": give either " + fk + " or " + ek + ", not both");
    return std::nullopt;
  }
  if (r.has(fk)) {
    auto path = readable_file(d, r, fk);
    if (!path) return std::nullopt;
    std::ifstream in(*path);
    std::string line;
    std::getline(in, line);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) {
      d.error(r.get(fk), r.what() + ": " + fk + " \"" + *path + "\" is empty (the " + what +
                             " is its first line)");
      return std::nullopt;
    }
    source = "file " + *path;
    return line;
  }
  if (r.has(ek)) {
    auto name = r.str(ek);
    if (!name) return std::nullopt;
    static const std::regex re(R"(^[A-Za-z_][A-Za-z0-9_]*$)");
    if (!std::regex_match(*name, re)) {
      d.error(r.get(ek), r.what() + ": " + ek + " \"" + *name +
                             "\" is not an environment variable name");
      return std::nullopt;
    }
    const char* v = std::getenv(name->c_str());
    if (!v || !*v) {
      d.error(r.get(ek), r.what() + ": environment variable " + *name + " (" + ek +
                             ") is not set or empty");
      return std::nullopt;
    }
    source = "environment variable " + *name;
    return std::string(v);
  }
  return std::nullopt;
}

}  // namespace

void parse_credentials(Diagnostics& d, const YAML::Node& node, const std::string& what,
                       Credentials& out) {
  MapReader r(d, node, what,
              {"username_file", "username_env", "password_file", "password_env", "username",
               "password"});
  for (const char* k : {"username", "password"}) {
    if (r.has(k))
      d.error(r.key_node(k), what + ": \"" + k +
                                 "\" in the config file is not accepted (credentials are never "
                                 "kept in clear here); use " + k + "_file or " + k + "_env");
  }
  out.username = secret(d, r, "username", out.username_source);
  out.password = secret(d, r, "password", out.password_source);
  if (out.password && !out.username && !r.has("username_file") && !r.has("username_env"))
    d.error(node, what + ": a password needs a user name (username_file or username_env)");
}

namespace {

void parse_tls(Diagnostics& d, const YAML::Node& node, MqttTlsSettings& out) {
  MapReader r(d, node, "mqtt.tls", {"ca_file", "cert_file", "key_file"});
  if (auto p = readable_file(d, r, "ca_file")) out.ca_file = *p;
  if (auto p = readable_file(d, r, "cert_file")) out.cert_file = *p;
  if (auto p = readable_file(d, r, "key_file")) out.key_file = *p;
  if (r.has("cert_file") != r.has("key_file"))
    d.error(r.has("cert_file") ? r.key_node("cert_file") : r.key_node("key_file"),
            "mqtt.tls: a client certificate needs both cert_file and key_file");
}

void parse_outbox(Diagnostics& d, const YAML::Node& node, MqttOutboxSettings& out) {
  MapReader r(d, node, "mqtt.outbox", {"max_messages", "max_bytes", "persist"});
  if (auto v = r.integer("max_messages", 1, 100'000'000)) out.max_messages = std::uint64_t(*v);
  if (auto v = size(d, r, "max_bytes", 4096, 64ull << 30)) out.max_bytes = *v;
  if (auto v = r.boolean("persist")) out.persist = *v;
}

void parse_deadband(Diagnostics& d, const YAML::Node& node, MqttDeadbands& out) {
  MapReader r(d, node, "mqtt.deadband",
              {"power_w", "energy_wh", "temperature_c", "ratio", "current_a", "voltage_v",
               "frequency_hz"});
  nonneg(d, r, "power_w", out.power_w);
  nonneg(d, r, "energy_wh", out.energy_wh);
  nonneg(d, r, "temperature_c", out.temperature_c);
  nonneg(d, r, "ratio", out.ratio);
  nonneg(d, r, "current_a", out.current_a);
  nonneg(d, r, "voltage_v", out.voltage_v);
  nonneg(d, r, "frequency_hz", out.frequency_hz);
}

}  // namespace

void parse_mqtt_settings(Diagnostics& d, const YAML::Node& node, MqttSettings& out) {
  MapReader r(d, node, "mqtt",
              {"enabled", "broker", "client_id", "topic_prefix", "protocol_version", "qos",
               "publish_interval", "refresh_interval", "keepalive", "reconnect_min_interval",
               "reconnect_max_interval", "message_expiry", "allow_plaintext", "deadband",
               "outbox", "tls", "auth"});
  if (!r.ok()) return;
  if (auto v = r.boolean("enabled")) out.enabled = *v;
  if (auto v = r.str("broker")) {
    if (!parse_broker_uri(*v))
      d.error(r.get("broker"), "mqtt: broker \"" + *v +
                                   "\" must look like tcp://HOST:PORT or ssl://HOST:PORT "
                                   "(schemes tcp, mqtt, ssl, mqtts, ws, wss; the port is "
                                   "required)");
    out.broker = *v;
  }
  if (auto v = r.str("client_id")) {
    if (v->empty() || v->size() > 200)
      d.error(r.get("client_id"), "mqtt: client_id must be 1..200 characters");
    out.client_id = *v;
  }
  if (auto v = r.str("topic_prefix")) {
    if (v->empty() || v->find_first_of("#+") != std::string::npos || v->back() == '/' ||
        v->front() == '/' || v->front() == '$' || v->find("//") != std::string::npos) {
      d.error(r.get("topic_prefix"),
              "mqtt: topic_prefix must be non-empty, without '#', '+', empty levels, a leading "
              "'$' or '/', or a trailing '/'");
    }
    out.topic_prefix = *v;
  }
  if (auto v = r.str("protocol_version")) {
    if (*v == "3.1.1" || *v == "4") {
      out.protocol_version = 4;
    } else if (*v == "5" || *v == "5.0") {
      out.protocol_version = 5;
    } else {
      d.error(r.get("protocol_version"),
              "mqtt: protocol_version must be \"3.1.1\" or \"5\", got \"" + *v + "\"");
    }
  }
  if (auto v = r.integer("qos", 0, 2)) out.qos = int(*v);
  if (auto v = r.duration("publish_interval")) out.publish_interval = *v;
  if (auto v = duration_or_zero(r, "refresh_interval")) out.refresh_interval = *v;
  if (auto v = r.duration("keepalive")) {
    if (*v < Millis(1000))
      d.error(r.get("keepalive"), "mqtt: keepalive must be at least 1s");
    else
      out.keepalive = *v;
  }
  if (auto v = r.duration("reconnect_min_interval")) out.reconnect_min = *v;
  if (auto v = r.duration("reconnect_max_interval")) out.reconnect_max = *v;
  if (out.reconnect_min < Millis(1000) || out.reconnect_max < out.reconnect_min)
    d.error(r.has("reconnect_min_interval") ? r.get("reconnect_min_interval")
                                            : r.get("reconnect_max_interval"),
            "mqtt: reconnect intervals must satisfy 1s <= reconnect_min_interval <= "
            "reconnect_max_interval");
  if (auto v = duration_or_zero(r, "message_expiry")) {
    if (v->count() > 0 && *v < Millis(1000))
      d.error(r.get("message_expiry"), "mqtt: message_expiry must be 0 (off) or at least 1s");
    out.message_expiry = *v;
  }
  if (auto v = r.boolean("allow_plaintext")) out.allow_plaintext = *v;
  if (r.has("deadband")) parse_deadband(d, r.get("deadband"), out.deadband);
  if (r.has("outbox")) parse_outbox(d, r.get("outbox"), out.outbox);
  if (r.has("tls")) parse_tls(d, r.get("tls"), out.tls);
  if (r.has("auth")) parse_credentials(d, r.get("auth"), "mqtt.auth", out.auth);

  // Rules across keys.
  if (out.message_expiry.count() > 0 && out.protocol_version != 5)
    d.error(r.key_node("message_expiry"),
            "mqtt: message_expiry needs protocol_version \"5\" (MQTT 3.1.1 has no expiry)");
  if (out.refresh_interval.count() > 0 && out.refresh_interval < out.publish_interval)
    d.error(r.key_node("refresh_interval"),
            "mqtt: refresh_interval must be 0 (off) or at least publish_interval");
  if (parse_broker_uri(out.broker)) {
    if (auto p = mqtt_security_problem(out))
      d.error(r.has("broker") ? r.get("broker") : node, "mqtt: " + *p);
  }
}

}  // namespace config_detail
}  // namespace facility
