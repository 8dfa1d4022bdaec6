// The mqtt: section of the config file and the publisher's own checks: every key parses, every
// mistake is reported at its file:line:col, credentials never come from the file itself, and
// plaintext to a remote broker is refused unless explicitly allowed.
#include <gtest/gtest.h>

#include <cstdlib>

#include "daemon/config/config.h"
#include "daemon/sinks/mqtt/publisher.h"
#include "config_fixture.h"
#include "test_util.h"

namespace facility {
namespace {

using testing::TempDir;

using Fixture = testing::ConfigFixture;

std::vector<ConfigError> errors_of(const Fixture& f) { return f.errors(); }

void expect_error_at(const std::string& mqtt, const std::string& needle, const std::string& what) {
  testing::expect_config_error_at(mqtt, needle, what);
}

TEST(MqttConfig, DefaultsWithoutSection) {
  Fixture f("");
  const Config c = load_config(f.path);
  EXPECT_EQ(c.mqtt.protocol_version, 4);
  EXPECT_EQ(c.mqtt.qos, 1);
  EXPECT_EQ(c.mqtt.refresh_interval, Millis(300000));
  EXPECT_EQ(c.mqtt.outbox.max_messages, 100000u);
  EXPECT_FALSE(c.mqtt.outbox.persist);
  EXPECT_FALSE(c.mqtt.auth.password);
  EXPECT_EQ(c.daemon.state_dir, "/var/lib/facilityd");
}

TEST(MqttConfig, EveryKey) {
  TempDir secrets;
  const std::string ca = secrets.write("ca.pem", "-----BEGIN CERTIFICATE-----\n");
  const std::string crt = secrets.write("client.pem", "x");
  const std::string key = secrets.write("client.key", "x");
  const std::string pw = secrets.write("password", "s3cret\n");
  ::setenv("FACILITYD_TEST_MQTT_USER", "facilityd-user", 1);
  Fixture f("daemon:\n  state_dir: /var/lib/fd-test\n"
            "mqtt:\n"
            "  broker: \"ssl://broker.example.net:8883\"\n"
            "  client_id: fd-1\n"
            "  topic_prefix: dc/eu\n"
            "  protocol_version: \"5\"\n"
            "  qos: 2\n"
            "  publish_interval: 5s\n"
            "  refresh_interval: 0\n"
            "  keepalive: 20s\n"
            "  reconnect_min_interval: 2s\n"
            "  reconnect_max_interval: 2m\n"
            "  message_expiry: 1h\n"
            "  deadband: {power_w: 25, energy_wh: 5, temperature_c: 0.5, ratio: 0.01, "
            "current_a: 0.2, voltage_v: 2, frequency_hz: 0}\n"
            "  outbox: {max_messages: 5000, max_bytes: 8MiB, persist: true}\n"
            "  tls: {ca_file: " + ca + ", cert_file: " + crt + ", key_file: " + key + "}\n"
            "  auth: {username_env: FACILITYD_TEST_MQTT_USER, password_file: " + pw + "}\n");
  const Config c = load_config(f.path);
  const MqttSettings& m = c.mqtt;
  EXPECT_EQ(c.daemon.state_dir, "/var/lib/fd-test");
  EXPECT_EQ(m.broker, "ssl://broker.example.net:8883");
  EXPECT_EQ(m.topic_prefix, "dc/eu");
  EXPECT_EQ(m.protocol_version, 5);
  EXPECT_EQ(m.qos, 2);
  EXPECT_EQ(m.publish_interval, Millis(5000));
  EXPECT_EQ(m.refresh_interval, Millis(0));
  EXPECT_EQ(m.keepalive, Millis(20000));
  EXPECT_EQ(m.reconnect_min, Millis(2000));
  EXPECT_EQ(m.reconnect_max, Millis(120000));
  EXPECT_EQ(m.message_expiry, Millis(3600000));
  EXPECT_DOUBLE_EQ(m.deadband.power_w, 25);
  EXPECT_DOUBLE_EQ(m.deadband.energy_wh, 5);
  EXPECT_DOUBLE_EQ(m.deadband.temperature_c, 0.5);
  EXPECT_DOUBLE_EQ(m.deadband.ratio, 0.01);
  EXPECT_DOUBLE_EQ(m.deadband.current_a, 0.2);
  EXPECT_DOUBLE_EQ(m.deadband.voltage_v, 2);
  EXPECT_DOUBLE_EQ(m.deadband.frequency_hz, 0);
  EXPECT_EQ(m.outbox.max_messages, 5000u);
  EXPECT_EQ(m.outbox.max_bytes, 8u << 20);
  EXPECT_TRUE(m.outbox.persist);
  EXPECT_EQ(m.tls.ca_file, ca);
  EXPECT_EQ(m.tls.cert_file, crt);
  EXPECT_EQ(m.tls.key_file, key);
  EXPECT_EQ(m.auth.username, "facilityd-user");
  EXPECT_EQ(m.auth.password, "s3cret");  // first line, without the newline
  EXPECT_EQ(m.auth.username_source, "environment variable FACILITYD_TEST_MQTT_USER");
  EXPECT_EQ(m.auth.password_source, "file " + pw);
  ::unsetenv("FACILITYD_TEST_MQTT_USER");
}

TEST(MqttConfig, PlaintextOnlyToLoopbackUnlessAllowed) {
  for (const char* ok : {"tcp://127.0.0.1:1883", "tcp://127.1.2.3:1883", "mqtt://localhost:1883",
                         "ws://[::1]:8080", "ssl://10.0.0.5:8883", "wss://broker.example:443"}) {
    Fixture f(std::string("mqtt:\n  broker: \"") + ok + "\"\n");
    EXPECT_TRUE(errors_of(f).empty()) << ok;
  }
  expect_error_at("mqtt:\n  broker: \"tcp://10.0.0.5:1883\"\n", "\"tcp://10.0.0.5",
                  "plaintext");
  expect_error_at("mqtt:\n  broker: \"ws://broker.example:80\"\n", "\"ws://", "plaintext");
  // "localhost.example.com" is not loopback, whatever it resolves to.
  expect_error_at("mqtt:\n  broker: \"tcp://localhost.example.com:1883\"\n", "\"tcp://",
                  "mqtt.allow_plaintext");
  Fixture allowed("mqtt:\n  broker: \"tcp://10.0.0.5:1883\"\n  allow_plaintext: true\n");
  EXPECT_TRUE(errors_of(allowed).empty());
}

TEST(MqttConfig, CredentialsNeverFromTheFile) {
  ::setenv("FACILITYD_TEST_MQTT_USER", "u", 1);
  expect_error_at("mqtt:\n  auth: {username_env: FACILITYD_TEST_MQTT_USER, password: hunter2}\n",
                  "password:", "not accepted");
  ::unsetenv("FACILITYD_TEST_MQTT_USER");
  expect_error_at("mqtt:\n  auth:\n    username: bob\n", "username:", "username_file or username_env");
}

TEST(MqttConfig, Mistakes) {
  ::setenv("FACILITYD_TEST_MQTT_USER", "u", 1);
  ::unsetenv("FACILITYD_TEST_MQTT_UNSET");
  TempDir secrets;
  const std::string ca = secrets.write("ca.pem", "x");
  const std::string empty = secrets.write("empty", "");
  struct Case {
    std::string mqtt, at, what;
  };
  const std::vector<Case> cases = {
      {"mqtt:\n  auth: {username_env: FACILITYD_TEST_MQTT_USER, password_file: /nonexistent/pw}\n",
       "/nonexistent/pw", "does not exist"},
      {"mqtt:\n  auth: {username_env: FACILITYD_TEST_MQTT_USER, password_env: "
       "FACILITYD_TEST_MQTT_UNSET}\n",
       "FACILITYD_TEST_MQTT_UNSET", "is not set"},
      {"mqtt:\n  auth: {username_env: FACILITYD_TEST_MQTT_USER, password_file: " + empty + "}\n",
       empty, "is empty"},
      {"mqtt:\n  auth: {username_env: FACILITYD_TEST_MQTT_USER, password_env: X, "
       "password_file: /x}\n",
       "X,", "not both"},
      {"mqtt:\n  auth: {username_env: \"1BAD\"}\n", "\"1BAD\"", "not an environment variable"},
      {"mqtt:\n  auth:\n    password_env: FACILITYD_TEST_MQTT_USER\n", "password_env:",
       "needs a user name"},
      {"mqtt:\n  tls: {ca_file: " + ca + "}\n", "tls:", "is plaintext but tls files are set"},
      {"mqtt:\n  broker: \"ssl://127.0.0.1:8883\"\n  tls: {ca_file: /nonexistent/ca.pem}\n",
       "/nonexistent", "does not exist"},
      {"mqtt:\n  broker: \"ssl://127.0.0.1:8883\"\n  tls: {cert_file: " + ca + "}\n", "cert_file",
       "needs both cert_file and key_file"},
      {"mqtt:\n  tls: {cafile: x}\n", "cafile", "unknown key \"cafile\""},
      {"mqtt:\n  protocol_version: \"4.0\"\n", "\"4.0\"", "must be \"3.1.1\" or \"5\""},
      {"mqtt:\n  message_expiry: 10m\n", "message_expiry", "needs protocol_version \"5\""},
      {"mqtt:\n  protocol_version: 5\n  message_expiry: 500ms\n", "500ms", "at least 1s"},
      {"mqtt:\n  publish_interval: 30s\n  refresh_interval: 10s\n", "refresh_interval",
       "at least publish_interval"},
      {"mqtt:\n  deadband: {power_w: -1}\n", "-1", "must be >= 0"},
      {"mqtt:\n  deadband: {watts: 1}\n", "watts", "unknown key \"watts\""},
      {"mqtt:\n  outbox: {max_bytes: 10 parsecs}\n", "10 parsecs", "must be a size"},
      {"mqtt:\n  outbox: {max_bytes: 100}\n", "100", "out of range"},
      {"mqtt:\n  outbox: {max_messages: 0}\n", "0}", "out of range"},
      {"mqtt:\n  outbox: {persist: maybe}\n", "maybe", "true or false"},
      {"mqtt:\n  reconnect_min_interval: 1m\n  reconnect_max_interval: 10s\n", "1m",
       "reconnect_min_interval <= reconnect_max_interval"},
      {"mqtt:\n  keepalive: 500ms\n", "500ms", "at least 1s"},
      {"mqtt:\n  broker: \"tcp://127.0.0.1\"\n", "\"tcp://127.0.0.1\"", "must look like"},
      {"mqtt:\n  topic_prefix: \"$SYS/x\"\n", "\"$SYS", "topic_prefix"},
      {"daemon:\n  state_dir: var/lib/x\nmqtt: {}\n", "var/lib/x", "absolute path"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.mqtt);
    expect_error_at(c.mqtt, c.at, c.what);
  }
  ::unsetenv("FACILITYD_TEST_MQTT_USER");
}

TEST(MqttConfig, BrokerUri) {
  const auto b = parse_broker_uri("ssl://[::1]:8883");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->host, "::1");
  EXPECT_TRUE(b->tls());
  EXPECT_TRUE(b->loopback());
  EXPECT_FALSE(parse_broker_uri("tcp://h:0"));
  EXPECT_FALSE(parse_broker_uri("tcp://h:70000"));
  EXPECT_FALSE(parse_broker_uri("tcp://h"));
  EXPECT_FALSE(parse_broker_uri("http://h:80"));
}

TEST(MqttPublisherConfig, RejectsBadSettings) {
  MqttSettings ok;
  EXPECT_NO_THROW(MqttPublisher(ok, {"dc1", "dc2"}));
  MqttSettings bad_qos = ok;
  bad_qos.qos = 3;
  EXPECT_THROW(MqttPublisher(bad_qos, {"dc1"}), std::invalid_argument);
  for (const char* prefix : {"", "a/+/b", "#", "/facility", "facility/", "a//b", "$SYS"}) {
    MqttSettings p = ok;
    p.topic_prefix = prefix;
    EXPECT_THROW(MqttPublisher(p, {"dc1"}), std::invalid_argument) << prefix;
  }
  EXPECT_THROW(MqttPublisher(ok, {"dc1", "dc1"}), std::invalid_argument);
  EXPECT_THROW(MqttPublisher(ok, {"dc/1"}), std::invalid_argument);
  MqttSettings bad_uri = ok;
  bad_uri.broker = "gopher://127.0.0.1:1883";
  EXPECT_THROW(MqttPublisher(bad_uri, {"dc1"}), std::invalid_argument);
  MqttSettings no_id = ok;
  no_id.client_id.clear();
  EXPECT_THROW(MqttPublisher(no_id, {"dc1"}), std::invalid_argument);
  // The config loader's security rules hold for --mqtt-broker too, which bypasses the file.
  MqttSettings remote = ok;
  remote.broker = "tcp://192.0.2.10:1883";
  EXPECT_THROW(MqttPublisher(remote, {"dc1"}), std::invalid_argument);
  remote.allow_plaintext = true;
  EXPECT_NO_THROW(MqttPublisher(remote, {"dc1"}));
  MqttSettings tls = ok;
  tls.broker = "ssl://192.0.2.10:8883";
  EXPECT_NO_THROW(MqttPublisher(tls, {"dc1"}));
  MqttSettings v4_expiry = ok;
  v4_expiry.message_expiry = Millis(60000);
  EXPECT_THROW(MqttPublisher(v4_expiry, {"dc1"}), std::invalid_argument);
  MqttSettings persist = ok;
  persist.outbox.persist = true;  // and no state directory
  EXPECT_THROW(MqttPublisher(persist, {"dc1"}), std::invalid_argument);
  MqttPublisherOptions missing_dir;
  missing_dir.state_dir = "/nonexistent/facilityd-state";
  try {
    MqttPublisher p(persist, {"dc1"}, missing_dir);
    ADD_FAILURE() << "a journal in a missing directory must not open";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/facilityd-state/mqtt-outbox.sqlite"),
              std::string::npos)
        << e.what();
  }
}

TEST(MqttPublisherConfig, LifecycleWithoutBroker) {
  MqttPublisher never_started(MqttSettings{}, {"dc1"});
  never_started.stop();  // without start(): fine, and idempotent
  never_started.stop();
  EXPECT_THROW(never_started.start(), std::logic_error);

  // Before start() nothing is rendered, so a newer snapshot replaces an older one
  // deterministically.
  MqttPublisher p(MqttSettings{}, {"dc1"});
  auto snap = std::make_shared<const FacilitySnapshot>();
  p.publish(snap);
  p.publish(snap);
  p.publish(snap);
  const auto st = p.stats();
  EXPECT_EQ(st.snapshots_superseded, 2u);
  EXPECT_EQ(st.snapshots_processed, 0u);
  EXPECT_FALSE(st.connected);
  ASSERT_EQ(st.sites.size(), 1u);
  EXPECT_EQ(st.sites[0].client_id, "facilityd-dc1");
  // Every reason present from the start, at 0.
  EXPECT_EQ(st.dropped_total, (std::map<std::string, std::uint64_t>{
                                  {"queue_full", 0}, {"expired", 0}, {"rejected", 0},
                                  {"shutdown", 0}}));
}

}  // namespace
}  // namespace facility
