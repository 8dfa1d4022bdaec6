// MQTT settings of the configuration. Parsed by daemon/config/mqtt.cpp; every key is documented
// in docs/config.md (section "mqtt") and the behaviour in docs/mqtt.md.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "daemon/config/credentials.h"

namespace facility {

// Change thresholds per quantity: a state topic is published again only when some value moved by
// more than its deadband since the last message on that topic (or a non-numeric field changed,
// or the periodic refresh is due). 0 = any change. Units are the quantity's base unit; values
// reported in a multiple (kW, kWh, percent) are converted before comparing.
struct MqttDeadbands {
  double power_w = 10;         // W, kW
  double energy_wh = 100;      // Wh, kWh, MWh
  double temperature_c = 0.1;  // celsius
  double ratio = 0.001;        // ratio, percent (as a ratio), PUE
  double current_a = 0.05;     // A
  double voltage_v = 0.5;      // V
  double frequency_hz = 0.01;  // Hz
};

// The bounded outbox in front of the MQTT client (docs/mqtt.md, "Outages and the outbox").
struct MqttOutboxSettings {
  std::uint64_t max_messages = 100000;
  std::uint64_t max_bytes = 64ull * 1024 * 1024;  // topic + payload bytes
  // Keep the outbox in <daemon.state_dir>/mqtt-outbox.sqlite so that a restart loses nothing.
  bool persist = false;
};

struct MqttTlsSettings {
  std::string ca_file;    // PEM; empty = the system trust store
  std::string cert_file;  // PEM client certificate (optional; needs key_file)
  std::string key_file;   // PEM private key of cert_file (unencrypted)
};

// Credentials are never written in the config file: they come from files or environment
// variables, resolved while loading (check-config reports a missing file or variable).
using MqttAuthSettings = Credentials;

struct MqttSettings {
  bool enabled = true;
  std::string broker = "tcp://127.0.0.1:1883";
  std::string client_id = "facilityd";
  std::string topic_prefix = "facility";
  int protocol_version = 4;  // MQTT protocol level: 4 = MQTT 3.1.1, 5 = MQTT 5
  int qos = 1;
  // How often state topics are checked for changes (alerts are checked on every model cycle).
  std::chrono::milliseconds publish_interval{10000};
  // Every state topic is republished at least this often, changed or not; 0 = never.
  std::chrono::milliseconds refresh_interval{300000};
  std::chrono::milliseconds keepalive{30000};
  std::chrono::milliseconds reconnect_min{1000};
  std::chrono::milliseconds reconnect_max{60000};
  // MQTT 5 only: message expiry interval of state messages; 0 = they never expire.
  std::chrono::milliseconds message_expiry{0};
  bool allow_plaintext = false;  // plaintext (tcp://, ws://) to a non-loopback broker
  MqttDeadbands deadband;
  MqttOutboxSettings outbox;
  MqttTlsSettings tls;
  MqttAuthSettings auth;
};

// Parts of a broker URI "scheme://host:port". nullopt if it does not have that form.
struct BrokerUri {
  std::string scheme, host;
  int port = 0;
  bool tls() const;        // ssl, mqtts, wss
  bool loopback() const;   // localhost, 127.0.0.0/8, ::1
};
std::optional<BrokerUri> parse_broker_uri(const std::string& uri);

// Security rules that hold whatever the source of the broker address (config file or
// --mqtt-broker): a message saying what is wrong, or nullopt if the settings are acceptable.
// Refuses plaintext to a non-loopback broker unless allow_plaintext, and TLS files with a
// plaintext scheme.
std::optional<std::string> mqtt_security_problem(const MqttSettings& s);

}  // namespace facility
