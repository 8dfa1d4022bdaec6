// The daemon: settings of the Prometheus/HTTP side: basic auth (never in clear in the file),
// shard INDEX/COUNT (and what a shard cannot do), and a site's facility.pue_target. Every
// mistake is reported at its file:line:col.
#include <gtest/gtest.h>

#include <cstdlib>

#include "daemon/config/config.h"
#include "config_fixture.h"
#include "test_util.h"

namespace facility {
namespace {

using testing::TempDir;

using Fixture = testing::ConfigFixture;

void expect_error_at(const std::string& head, const std::string& needle, const std::string& what) {
  testing::expect_config_error_at(head, needle, what);
}

TEST(DaemonSettings, DefaultsAreOpenAndUnsharded) {
  Fixture f("");
  const Config c = load_config(f.path);
  EXPECT_FALSE(c.daemon.auth.username);
  EXPECT_FALSE(c.daemon.auth.password);
  EXPECT_FALSE(c.daemon.shard.sharded());
  EXPECT_EQ(c.daemon.shard.text(), "0/1");
  EXPECT_FALSE(c.sites[0].facility.pue_target);
}

TEST(DaemonSettings, ListenIsAHostAndAPortInRange) {
  for (const char* ok : {"127.0.0.1:1", "localhost:65535", "[::1]:10044", "noc-box.example:80"}) {
    Fixture f(std::string("daemon:\n  listen: \"") + ok + "\"\n");
    EXPECT_EQ(load_config(f.path).daemon.listen, ok);
  }
  expect_error_at("daemon:\n  listen: \"127.0.0.1:0\"\n", "\"127.0.0.1:0\"",
                  "port 0 is out of range 1..65535");
  expect_error_at("daemon:\n  listen: \"127.0.0.1:70000\"\n", "\"127.0.0.1:70000\"",
                  "port 70000 is out of range 1..65535");
  expect_error_at("daemon:\n  listen: \"127.0.0.1\"\n", "\"127.0.0.1\"",
                  "must be HOST:PORT, e.g. 127.0.0.1:10044 or [::1]:10044");
  expect_error_at("daemon:\n  listen: \"::1:10044\"\n", "\"::1:10044\"", "must be HOST:PORT");
}

TEST(DaemonSettings, BasicAuthFromFileAndEnvironment) {
  TempDir secrets;
  const std::string pw = secrets.write("metrics-password", "pa ss:word\r\nsecond line ignored\n");
  ::setenv("FACILITYD_TEST_HTTP_USER", "prometheus", 1);
  Fixture f("daemon:\n  auth: {username_env: FACILITYD_TEST_HTTP_USER, password_file: " + pw +
            "}\n");
  const Config c = load_config(f.path);
  EXPECT_EQ(c.daemon.auth.username, "prometheus");
  EXPECT_EQ(c.daemon.auth.password, "pa ss:word") << "the first line, without CR";
  EXPECT_EQ(c.daemon.auth.password_source, "file " + pw);
  EXPECT_EQ(c.daemon.auth.username_source, "environment variable FACILITYD_TEST_HTTP_USER");
}

TEST(DaemonSettings, BasicAuthMistakes) {
  expect_error_at("daemon:\n  auth: {username_env: HOME, password: hunter2}\n", "password:",
                  "daemon.auth: \"password\" in the config file is not accepted");
  expect_error_at("daemon:\n  auth: {username_env: HOME}\n", "auth:",
                  "needs a user name and a password");
  ::unsetenv("FACILITYD_TEST_UNSET_PW");
  expect_error_at("daemon:\n  auth: {username_env: HOME, password_env: FACILITYD_TEST_UNSET_PW}\n",
                  "FACILITYD_TEST_UNSET_PW",
                  "environment variable FACILITYD_TEST_UNSET_PW (password_env) is not set");
  expect_error_at("daemon:\n  auth: {username_env: HOME, password_file: /nonexistent/fd-pw}\n",
                  "/nonexistent/fd-pw", "does not exist");
  expect_error_at("daemon:\n  auth: {user: x}\n", "user:", "unknown key \"user\"");
}

TEST(DaemonSettings, Shard) {
  Fixture f("daemon: {shard: \"2/3\"}\nmqtt: {enabled: false}\nhistory: {enabled: false}\n");
  const Config c = load_config(f.path);
  EXPECT_TRUE(c.daemon.shard.sharded());
  EXPECT_EQ(c.daemon.shard.index, 2);
  EXPECT_EQ(c.daemon.shard.count, 3);
  EXPECT_EQ(c.daemon.shard.text(), "2/3");
  // 0/1 is a valid, unsharded spelling.
  Fixture one("daemon: {shard: \"0/1\"}\n");
  EXPECT_FALSE(load_config(one.path).daemon.shard.sharded());
}

TEST(DaemonSettings, ShardMistakes) {
  const std::string off = "mqtt: {enabled: false}\nhistory: {enabled: false}\n";
  for (const char* bad : {"2/2", "1/0", "-1/2", "1 of 2", "1/2/3", "0/1001"}) {
    expect_error_at(std::string("daemon: {shard: \"") + bad + "\"}\n" + off,
                    std::string("\"") + bad, "must be INDEX/COUNT with 0 <= INDEX < COUNT <= 1000");
  }
  expect_error_at("daemon: {shard: \"0/2\"}\nhistory: {enabled: false}\n", "\"0/2\"",
                  "a sharded daemon cannot publish MQTT");
  expect_error_at("daemon: {shard: \"0/2\"}\nmqtt: {enabled: false}\n", "\"0/2\"",
                  "a sharded daemon cannot keep the history");
}

TEST(DaemonSettings, PueTargetPerSite) {
  const std::string sites = R"(sites:
  - id: s1
    facility: {pue_target: 1.25}
    rooms: [{id: r1, rows: [{id: w, cabinets: [{id: c1}]}]}]
  - id: s2
    rooms: [{id: r1, rows: [{id: w, cabinets: [{id: c1}]}]}]
)";
  Fixture f("facility: {pue_target: 1.5}\n", sites);
  const Config c = load_config(f.path);
  EXPECT_DOUBLE_EQ(*c.sites[0].facility.pue_target, 1.25) << "the site's own";
  EXPECT_DOUBLE_EQ(*c.sites[1].facility.pue_target, 1.5) << "the top-level one";
  expect_error_at("facility: {pue_target: 0.9}\n", "0.9", "\"pue_target\" must be in [1, 5]");
}

}  // namespace
}  // namespace facility
