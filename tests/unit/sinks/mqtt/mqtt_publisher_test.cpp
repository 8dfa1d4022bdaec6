// MqttPublisher against a real mosquitto started by the test on a free loopback port: birth,
// retained state, offline on stop, last will on SIGKILL (one per site), change-driven publishing
// with deadbands and refresh, outages (everything queued arrives, in order per topic), the
// outbox bound (oldest state dropped, alert events never), the disk journal across a restart,
// MQTT 5 properties and expiry, and a connection that dies silently.
#include <gtest/gtest.h>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <set>

#include "daemon/sinks/mqtt/publisher.h"
#include "mqtt_test_util.h"

namespace facility {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using namespace facility::testing;

constexpr const char* kChildPortEnv = "FACILITYD_MQTT_TEST_CHILD_PORT";
constexpr const char* kChildPrefixEnv = "FACILITYD_MQTT_TEST_CHILD_PREFIX";

MqttSettings settings_for(int port, const std::string& client_id, const std::string& prefix) {
  MqttSettings s;
  s.broker = "tcp://127.0.0.1:" + std::to_string(port);
  s.client_id = client_id;
  s.topic_prefix = prefix;
  s.qos = 1;
  s.keepalive = 30s;
  s.reconnect_min = 1s;
  s.reconnect_max = 2s;          // keeps reconnect tests short
  s.publish_interval = 0ms;      // every snapshot is checked for changes
  s.refresh_interval = 0ms;      // no periodic refresh unless a test wants one
  return s;
}

MqttPublisherOptions fast_options() {
  MqttPublisherOptions o;
  o.stop_timeout = 2000ms;
  return o;
}

std::uint64_t drops(const MqttPublisher::Stats& s) {
  std::uint64_t n = 0;
  for (const auto& [reason, v] : s.dropped_total) n += v;
  return n;
}

// Every data message handed to the outbox is still queued, published or dropped - once.
void expect_accounted(const MqttPublisher::Stats& s, std::uint64_t status_published) {
  EXPECT_EQ(s.queued_total, s.queue_messages + (s.published_total - status_published) + drops(s));
}

// publish() and wait until the worker has rendered it (the snapshot count is cumulative).
bool publish_and_wait(MqttPublisher& pub, std::shared_ptr<const FacilitySnapshot> snap) {
  const auto before = pub.stats().snapshots_processed;
  pub.publish(std::move(snap));
  return eventually([&] { return pub.stats().snapshots_processed > before; });
}

std::string ts_of(const Subscriber::Msg& m) { return json::parse(m.payload)["ts"]; }

// Per data topic, the timestamps of the messages the broker forwarded live, in arrival order
// (not the retained copies a (re-)subscription brings, not the status).
std::map<std::string, std::vector<std::string>> live_ts(Subscriber& sub) {
  std::map<std::string, std::vector<std::string>> out;
  for (const auto& m : sub.all())
    if (!m.retained && m.topic.size() > 7 && m.topic.substr(m.topic.size() - 7) != "/status")
      out[m.topic].push_back(ts_of(m));
  return out;
}

// Connected, and everything queued has been acknowledged.
bool connected_and_drained(MqttPublisher& pub, std::chrono::milliseconds timeout) {
  return eventually(
      [&] {
        const auto s = pub.stats();
        return s.connected && s.queue_messages == 0;
      },
      timeout);
}

// Waits until `topics` data topics have had a live message stamped `ts`.
bool wait_live(Subscriber& sub, std::size_t topics, const std::string& ts) {
  return sub.wait([&](const auto&) {
    std::size_t done = 0;
    for (const auto& [topic, stamps] : live_ts(sub))
      if (std::find(stamps.begin(), stamps.end(), ts) != stamps.end()) ++done;
    return done == topics;
  });
}

class MqttBrokerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* tool : {kMosquitto, kMosquittoSub})
      if (::access(tool, X_OK) != 0) GTEST_SKIP() << tool << " not installed";
  }
  void start_broker(bool persistent = false) {
    broker_ = std::make_unique<Mosquitto>(free_loopback_port(), persistent);
    ASSERT_TRUE(broker_->start()) << broker_->log();
  }
  void TearDown() override {
    if (HasFailure() && broker_) std::cerr << "---- mosquitto log ----\n" << broker_->log();
  }
  std::unique_ptr<Mosquitto> broker_;
};

TEST_F(MqttBrokerTest, BirthRetainedStateAndOfflineOnStop) {
  start_broker();
  TestFacility fac({"s1", "s2"}, 3);
  MqttPublisher pub(settings_for(broker_->port(), "ft-birth", "t1"), {"s1", "s2"},
                    fast_options());
  pub.start();
  ASSERT_TRUE(eventually([&] { return pub.stats().connected; }));

  const TimePoint t = Clock::now();
  pub.publish(fac.snapshot(t, 1000));
  const std::uint64_t expected = 2 /* online */ + 2 * fac.messages_per_site();
  ASSERT_TRUE(eventually([&] {
    const auto s = pub.stats();
    return s.published_total >= expected && s.queue_messages == 0;
  }));
  {
    const auto s = pub.stats();
    EXPECT_EQ(s.published_total, expected);
    EXPECT_EQ(drops(s), 0u);
    ASSERT_EQ(s.sites.size(), 2u);
    EXPECT_EQ(s.sites[0].client_id, "ft-birth-s1");  // one connection per site
    EXPECT_EQ(s.sites[1].client_id, "ft-birth-s2");
    EXPECT_EQ(s.sites[0].connects_total, 1u);
    expect_accounted(s, 2);
  }

  // A subscriber that arrives later gets everything as retained messages.
  Subscriber late(broker_->port(), "t1/#");
  ASSERT_TRUE(late.wait([](const auto& m) {
    return m.count("t1/s1/status") && m.count("t1/s2/status") && m.count("t1/s1/summary") &&
           m.count("t1/s2/summary") && m.count("t1/s1/cabinet/c003") &&
           m.count("t1/s2/cabinet/c001");
  }));
  for (const char* topic : {"t1/s1/status", "t1/s2/status"}) {
    const auto st = late.get(topic);
    EXPECT_EQ(st->payload, "online") << topic;
    EXPECT_TRUE(st->retained) << topic;
  }
  const auto cab = late.get("t1/s2/cabinet/c001");
  EXPECT_TRUE(cab->retained);
  const json c = json::parse(cab->payload);
  EXPECT_EQ(c["ts"], format_rfc3339_ms(t));
  EXPECT_EQ(c["site"], "s2");
  EXPECT_EQ(c["cabinet"], "c001");
  EXPECT_DOUBLE_EQ(c["power_w"].get<double>(), 1000);
  EXPECT_DOUBLE_EQ(c["utilization"].get<double>(), 0.2);
  EXPECT_EQ(c["quality"], "good");
  const auto sum = late.get("t1/s1/summary");
  EXPECT_TRUE(sum->retained);
  const json s = json::parse(sum->payload);
  EXPECT_EQ(s["site"], "s1");
  EXPECT_DOUBLE_EQ(s["it_power_w"].get<double>(), 3000);
  EXPECT_EQ(s["cabinets"]["total"], 3);

  pub.stop();
  Subscriber after(broker_->port(), "t1/+/status");
  ASSERT_TRUE(after.wait([](const auto& m) {
    return m.count("t1/s1/status") && m.at("t1/s1/status").payload == "offline" &&
           m.count("t1/s2/status") && m.at("t1/s2/status").payload == "offline";
  }));
  EXPECT_TRUE(after.get("t1/s1/status")->retained);
  const auto s_after = pub.stats();
  EXPECT_FALSE(s_after.connected);
  EXPECT_EQ(s_after.queue_messages, 0u);
  EXPECT_EQ(s_after.published_total, expected + 2 /* offline */);
}

TEST_F(MqttBrokerTest, QosZeroStillRetainsStateAndStatus) {
  start_broker();
  TestFacility fac({"s1"}, 2);
  MqttSettings st = settings_for(broker_->port(), "ft-q0", "t6");
  st.qos = 0;
  MqttPublisher pub(st, {"s1"}, fast_options());
  pub.start();
  ASSERT_TRUE(eventually([&] { return pub.stats().connected; }));
  pub.publish(fac.snapshot(Clock::now(), 500));
  ASSERT_TRUE(eventually([&] { return pub.stats().published_total >= 1 + 3; }));
  // QoS 0 "published" means written to the socket, not processed by the broker: wait until a
  // first subscriber has seen the last message before asking a second one for retained state.
  Subscriber witness(broker_->port(), "t6/#");
  ASSERT_TRUE(witness.wait([](const auto& m) { return m.count("t6/s1/cabinet/c002"); }));
  Subscriber late(broker_->port(), "t6/#");
  ASSERT_TRUE(late.wait([](const auto& m) {
    return m.count("t6/s1/status") && m.count("t6/s1/cabinet/c002");
  }));
  EXPECT_TRUE(late.get("t6/s1/cabinet/c002")->retained);
  EXPECT_EQ(late.get("t6/s1/status")->payload, "online");
}

// Runs in a child process started by LastWillPerSiteWhenProcessIsKilled; skipped otherwise.
TEST(MqttPublisherChild, RunUntilKilled) {
  const char* port = std::getenv(kChildPortEnv);
  const char* prefix = std::getenv(kChildPrefixEnv);
  if (!port || !prefix) GTEST_SKIP() << "helper process for the last-will test";
  TestFacility fac({"s1", "s2"}, 2);
  MqttPublisher pub(settings_for(std::atoi(port), "ft-will", prefix), {"s1", "s2"},
                    fast_options());
  pub.start();
  pub.publish(fac.snapshot(Clock::now(), 100));
  // The parent SIGKILLs us; this bound only matters if the parent itself goes away.
  const auto deadline = Steady::now() + 60s;
  while (Steady::now() < deadline) std::this_thread::sleep_for(100ms);
}

TEST_F(MqttBrokerTest, LastWillPerSiteWhenProcessIsKilled) {
  start_broker();
  char exe[4096];
  const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  ASSERT_GT(n, 0);
  exe[n] = '\0';
  TempDir dir;
  const std::string child_log = (dir.path() / "child.log").string();

  Subscriber sub(broker_->port(), "t2/+/status");
  Child child({exe, "--gtest_filter=MqttPublisherChild.RunUntilKilled"},
              {std::string(kChildPortEnv) + "=" + std::to_string(broker_->port()),
               std::string(kChildPrefixEnv) + "=t2"},
              child_log);
  ASSERT_GT(child.pid(), 0);
  ASSERT_TRUE(sub.wait_payload("t2/s1/status", "online")) << read_file(child_log);
  ASSERT_TRUE(sub.wait_payload("t2/s2/status", "online")) << read_file(child_log);

  child.kill_and_wait(SIGKILL);  // no stop(), no DISCONNECT: the broker must send both wills

  EXPECT_TRUE(sub.wait_payload("t2/s1/status", "offline"));
  EXPECT_TRUE(sub.wait_payload("t2/s2/status", "offline"));
  Subscriber late(broker_->port(), "t2/+/status");
  ASSERT_TRUE(late.wait([](const auto& m) { return m.size() == 2; }));
  EXPECT_EQ(late.get("t2/s1/status")->payload, "offline");
  EXPECT_TRUE(late.get("t2/s1/status")->retained);
  EXPECT_EQ(late.get("t2/s2/status")->payload, "offline");
}

TEST_F(MqttBrokerTest, ChangeDrivenWithDeadbands) {
  start_broker();
  TestFacility fac({"s1"}, 2);
  MqttSettings st = settings_for(broker_->port(), "ft-db", "t7");
  st.deadband.power_w = 50;
  st.deadband.ratio = 0.02;
  MqttPublisher pub(st, {"s1"}, fast_options());
  pub.start();
  Subscriber sub(broker_->port(), "t7/#");
  ASSERT_TRUE(eventually([&] { return pub.stats().connected; }));
  // The subscription is active (it got the retained birth message): every publish below is seen
  // live. (mosquitto_sub can start late on a loaded machine, and would then count only the
  // retained copies.)
  ASSERT_TRUE(sub.wait_payload("t7/s1/status", "online"));
  const auto delivered = [&](std::uint64_t n) {
    return eventually([&] {
      const auto s = pub.stats();
      return s.published_total == 1 + n && s.queue_messages == 0;
    });
  };

  const TimePoint t1 = Clock::now();
  ASSERT_TRUE(publish_and_wait(pub, fac.snapshot(t1, 1000)));
  ASSERT_TRUE(delivered(3));  // summary + 2 cabinets

  // Same values, newer timestamp: nothing to send.
  ASSERT_TRUE(publish_and_wait(pub, fac.snapshot(t1 + 1s, 1000)));
  EXPECT_EQ(pub.stats().unchanged_total, 3u);
  EXPECT_EQ(pub.stats().queued_total, 3u);

  // Cabinets +40 W (within 50 W); the summary's site total +80 W (beyond): only the summary.
  const TimePoint t3 = t1 + 2s;
  ASSERT_TRUE(publish_and_wait(pub, fac.snapshot(t3, 1040)));
  ASSERT_TRUE(delivered(4));
  // +60 W against the last *published* cabinet value (1000): the cabinets now; the summary moved
  // only 40 W from its last published 2080 W.
  const TimePoint t4 = t1 + 3s;
  ASSERT_TRUE(publish_and_wait(pub, fac.snapshot(t4, 1060)));
  ASSERT_TRUE(delivered(6));
  const auto s = pub.stats();
  EXPECT_EQ(s.unchanged_total, 3u + 2u + 1u);
  EXPECT_EQ(drops(s), 0u);

  ASSERT_TRUE(sub.wait([&](const auto& m) {
    return m.count("t7/s1/cabinet/c002") && ts_of(m.at("t7/s1/cabinet/c002")) ==
                                                format_rfc3339_ms(t4);
  }));
  EXPECT_EQ(ts_of(*sub.get("t7/s1/summary")), format_rfc3339_ms(t3));
  std::map<std::string, int> per_topic;
  for (const auto& m : sub.all()) ++per_topic[m.topic];
  EXPECT_EQ(per_topic["t7/s1/summary"], 2);
  EXPECT_EQ(per_topic["t7/s1/cabinet/c001"], 2);
}

TEST_F(MqttBrokerTest, PeriodicRefreshRepublishesUnchangedState) {
  start_broker();
  TestFacility fac({"s1"}, 1);
  MqttSettings st = settings_for(broker_->port(), "ft-refresh", "t8");
  st.refresh_interval = 300ms;
  MqttPublisher pub(st, {"s1"}, fast_options());
  pub.start();
  ASSERT_TRUE(eventually([&] { return pub.stats().connected; }));
  const TimePoint t0 = Clock::now();
  ASSERT_TRUE(publish_and_wait(pub, fac.snapshot(t0, 800)));
  // Unchanged values, new timestamps, every 20 ms: between refreshes nothing is queued, and at
  // least one refresh republishes both topics with the newer timestamp.
  TimePoint t = t0;
  ASSERT_TRUE(eventually(
      [&] {
        t += 20ms;
        publish_and_wait(pub, fac.snapshot(t, 800));
        return pub.stats().queued_total >= 4;
      },
      10s));
  // Queued is not yet delivered: the retained message a late subscriber gets is the refresh
  // only once the broker has it (it failed when subscribing in between).
  ASSERT_TRUE(eventually([&] { return pub.stats().published_total >= 4; }));
  const auto s = pub.stats();
  EXPECT_GT(s.unchanged_total, 0u);
  EXPECT_EQ(s.queued_total % 2, 0u);  // always the whole site: summary + cabinet
  Subscriber late(broker_->port(), "t8/s1/cabinet/c001");
  ASSERT_TRUE(late.wait([](const auto& m) { return !m.empty(); }));
  EXPECT_GT(ts_of(*late.get("t8/s1/cabinet/c001")), format_rfc3339_ms(t0));
}

TEST_F(MqttBrokerTest, OutageQueuesEverythingAndDeliversItInOrderPerTopic) {
  start_broker(/*persistent=*/true);
  ASSERT_TRUE(register_session(broker_->port(), "ft-out-sub", "t3/#"));
  TestFacility fac({"s1"}, 2);
  MqttPublisher pub(settings_for(broker_->port(), "ft-out", "t3"), {"s1"}, fast_options());
  pub.start();
  ASSERT_TRUE(eventually([&] { return pub.stats().connected; }));
  const TimePoint t0 = Clock::now();
  std::vector<std::string> sent_ts;
  ASSERT_TRUE(publish_and_wait(pub, fac.snapshot(t0, 1000)));
  sent_ts.push_back(format_rfc3339_ms(t0));
  ASSERT_TRUE(eventually([&] { return pub.stats().queue_messages == 0; }));

  broker_->stop();
  ASSERT_TRUE(eventually([&] { return !pub.stats().connected; }));
  for (int k = 1; k <= 5; ++k) {
    const TimePoint t = t0 + std::chrono::seconds(k);
    ASSERT_TRUE(publish_and_wait(pub, fac.snapshot(t, 1000 + 100 * k)));
    sent_ts.push_back(format_rfc3339_ms(t));
  }
  {
    const auto s = pub.stats();
    EXPECT_EQ(s.queue_messages, 5 * fac.messages_per_site());
    EXPECT_EQ(drops(s), 0u);
  }

  ASSERT_TRUE(broker_->start());  // same port; it kept the subscriber's session
  ASSERT_TRUE(eventually(
      [&] {
        const auto s = pub.stats();
        return s.connected && s.sites[0].connects_total == 2 && s.queue_messages == 0;
      },
      15s));
  {
    const auto s = pub.stats();
    EXPECT_EQ(drops(s), 0u);
    expect_accounted(s, 2 /* online twice */);
  }

  Subscriber sub(broker_->port(), "t3/#", Subscriber::persistent("ft-out-sub"));
  ASSERT_TRUE(wait_live(sub, 3, sent_ts.back()));
  // Per topic every snapshot, oldest first. A duplicate (QoS 1 resend) may appear next to its
  // original.
  const auto seen = live_ts(sub);
  ASSERT_EQ(seen.size(), 3u);
  for (const auto& [topic, ts] : seen) {
    EXPECT_TRUE(std::is_sorted(ts.begin(), ts.end())) << topic;
    for (const auto& want : sent_ts)
      EXPECT_NE(std::find(ts.begin(), ts.end(), want), ts.end()) << topic << " misses " << want;
  }
}

TEST_F(MqttBrokerTest, BoundExceededDropsOldestStateNeverAlertEvents) {
  start_broker(/*persistent=*/true);
  ASSERT_TRUE(register_session(broker_->port(), "ft-bound-sub", "t9/#"));
  broker_->stop();

  TestFacility fac({"s1"}, 3);  // 4 state messages per snapshot
  MqttSettings st = settings_for(broker_->port(), "ft-bound", "t9");
  st.outbox.max_messages = 10;
  MqttPublisher pub(st, {"s1"}, fast_options());
  pub.start();

  // 8 snapshots while the broker is down, the alert flipping each time: 32 state messages and
  // 8 alert events for a bound of 10.
  const TimePoint t0 = Clock::now();
  std::vector<std::string> states;
  for (int k = 1; k <= 8; ++k) {
    AlertState a;
    a.site = "s1";
    a.kind = "cabinet_overload";
    a.subject = "c001";
    a.severity = "warning";
    a.raised = k % 2 == 1;
    a.value = 0.9 + 0.01 * k;
    a.threshold = 0.9;
    a.unit = "ratio";
    a.since = t0 + std::chrono::seconds(k);
    fac.alerts = {a};
    states.push_back(a.raised ? "raised" : "cleared");
    ASSERT_TRUE(publish_and_wait(pub, fac.snapshot(t0 + std::chrono::seconds(k), 1000 + 100 * k)));
  }
  const std::string newest = format_rfc3339_ms(t0 + 8s);
  {
    const auto s = pub.stats();
    EXPECT_EQ(s.queued_total, 40u);
    EXPECT_EQ(s.queue_events, 8u);
    EXPECT_EQ(s.queue_messages, 10u);
    EXPECT_EQ(s.dropped_total.at("queue_full"), 30u);
    EXPECT_EQ(drops(s), 30u);
    expect_accounted(s, 0);
  }

  ASSERT_TRUE(broker_->start());
  ASSERT_TRUE(connected_and_drained(pub, 15s));
  Subscriber sub(broker_->port(), "t9/#", Subscriber::persistent("ft-bound-sub"));
  ASSERT_TRUE(sub.wait([&](const auto&) {
    int alerts = 0;
    for (const auto& m : sub.all())
      if (!m.retained && m.topic == "t9/s1/alert/cabinet_overload/c001") ++alerts;
    return alerts >= 9;  // 8 events + the refresh on reconnect
  }));
  std::vector<std::string> alert_states;
  for (const auto& m : sub.all()) {
    if (m.retained || m.topic == "t9/s1/status") continue;
    const json j = json::parse(m.payload);
    if (m.topic == "t9/s1/alert/cabinet_overload/c001") {
      alert_states.push_back(j["state"]);
    } else {
      // Only the newest state survived the bound (the oldest went first).
      EXPECT_EQ(j["ts"], newest) << m.topic;
    }
  }
  ASSERT_GE(alert_states.size(), 8u);
  EXPECT_EQ(std::vector<std::string>(alert_states.begin(), alert_states.begin() + 8), states);
}

TEST_F(MqttBrokerTest, PersistedOutboxSurvivesARestart) {
  start_broker(/*persistent=*/true);
  ASSERT_TRUE(register_session(broker_->port(), "ft-persist-sub", "t10/#"));
  broker_->stop();
  TempDir state;
  MqttSettings st = settings_for(broker_->port(), "ft-persist", "t10");
  st.outbox.persist = true;
  MqttPublisherOptions o = fast_options();
  o.state_dir = state.path().string();
  TestFacility fac({"s1"}, 2);
  const TimePoint t0 = Clock::now();
  {
    MqttPublisher first(st, {"s1"}, o);
    first.start();
    for (int k = 0; k < 3; ++k)
      ASSERT_TRUE(publish_and_wait(first, fac.snapshot(t0 + std::chrono::seconds(k), 100 + 100 * k)));
    first.stop();
    const auto s = first.stats();
    EXPECT_EQ(s.queue_messages, 9u);
    EXPECT_EQ(drops(s), 0u);  // kept on disk, not dropped{shutdown}
  }

  MqttPublisher second(st, {"s1"}, o);
  EXPECT_EQ(second.stats().queue_messages, 9u);  // restored at construction
  // The journal is locked: a second daemon on the same state directory fails at start.
  EXPECT_THROW({ MqttPublisher third(st, {"s1"}, o); }, std::runtime_error);

  ASSERT_TRUE(broker_->start());
  second.start();
  ASSERT_TRUE(eventually([&] { return second.stats().connected && second.stats().queue_messages == 0; },
                         15s));
  Subscriber sub(broker_->port(), "t10/#", Subscriber::persistent("ft-persist-sub"));
  ASSERT_TRUE(wait_live(sub, 3, format_rfc3339_ms(t0 + 2s)));
  for (const auto& [topic, ts] : live_ts(sub)) {
    EXPECT_TRUE(std::is_sorted(ts.begin(), ts.end())) << topic;
    EXPECT_EQ(std::set<std::string>(ts.begin(), ts.end()).size(), 3u) << topic;
  }
}

TEST_F(MqttBrokerTest, WithoutPersistenceStopCountsWhatIsLeftAsShutdownDrops) {
  const int port = free_loopback_port();  // nothing listens: everything stays queued
  TestFacility fac({"s1"}, 2);
  MqttPublisher pub(settings_for(port, "ft-shut", "t11"), {"s1"}, fast_options());
  pub.start();
  ASSERT_TRUE(publish_and_wait(pub, fac.snapshot(Clock::now(), 100)));
  EXPECT_EQ(pub.stats().queue_messages, 3u);
  pub.stop();
  const auto s = pub.stats();
  EXPECT_EQ(s.queue_messages, 0u);
  EXPECT_EQ(s.dropped_total.at("shutdown"), 3u);
  expect_accounted(s, 0);
}

TEST_F(MqttBrokerTest, Mqtt5ContentTypeAndMessageExpiry) {
  start_broker();
  TestFacility fac({"s1"}, 1);
  MqttSettings st = settings_for(broker_->port(), "ft-v5", "t12");
  st.protocol_version = 5;
  st.message_expiry = 2s;
  MqttPublisher pub(st, {"s1"}, fast_options());
  pub.start();
  // Content type, expiry interval and payload format indicator as the v5 subscriber sees them.
  Subscriber sub(broker_->port(), "t12/#", {"-V", "5"}, "%r %t %C|%E|%F|%p");
  ASSERT_TRUE(eventually([&] { return pub.stats().connected; }));
  ASSERT_TRUE(publish_and_wait(pub, fac.snapshot(Clock::now(), 100)));
  ASSERT_TRUE(sub.wait([](const auto& m) {
    return m.count("t12/s1/status") && m.count("t12/s1/cabinet/c001");
  }));
  const auto split = [](const std::string& s) {
    std::vector<std::string> parts;
    std::size_t start = 0;
    for (int i = 0; i < 3; ++i) {
      const auto bar = s.find('|', start);
      parts.push_back(s.substr(start, bar - start));
      start = bar + 1;
    }
    parts.push_back(s.substr(start));
    return parts;
  };
  const auto cab = split(sub.get("t12/s1/cabinet/c001")->payload);
  EXPECT_EQ(cab[0], "application/json");
  EXPECT_GE(std::atoi(cab[1].c_str()), 1);
  EXPECT_LE(std::atoi(cab[1].c_str()), 2);
  EXPECT_EQ(cab[2], "1");
  EXPECT_TRUE(json::accept(cab[3]));
  const auto status = split(sub.get("t12/s1/status")->payload);
  EXPECT_EQ(status[0], "text/plain");
  EXPECT_EQ(status[1], "");  // status never expires
  EXPECT_EQ(status[3], "online");

  // Queued while the broker is down for longer than the expiry: dropped as expired, counted.
  broker_->stop();
  ASSERT_TRUE(eventually([&] { return !pub.stats().connected; }));
  ASSERT_TRUE(publish_and_wait(pub, fac.snapshot(Clock::now(), 200)));
  EXPECT_EQ(pub.stats().queue_messages, 2u);
  std::this_thread::sleep_for(2500ms);  // the property under test is the passing of time
  ASSERT_TRUE(broker_->start());
  ASSERT_TRUE(connected_and_drained(pub, 15s));
  const auto s = pub.stats();
  EXPECT_EQ(s.dropped_total.at("expired"), 2u);
  expect_accounted(s, 2);
  // The broker lets retained state expire too; the status has no expiry and stays.
  std::this_thread::sleep_for(2500ms);
  Subscriber late(broker_->port(), "t12/#", {"-W", "2"});
  ASSERT_TRUE(late.wait([](const auto& m) { return m.count("t12/s1/status"); }));
  std::this_thread::sleep_for(300ms);  // anything retained is delivered right after the status
  EXPECT_FALSE(late.get("t12/s1/cabinet/c001").has_value());
}

// MQTT 5 brokers announce how many QoS 1 messages they take in flight (mosquitto's
// max_inflight_messages, "receive maximum"); beyond it Paho queues internally and throughput
// collapses (bench/RESULTS.md). The window follows the broker.
TEST_F(MqttBrokerTest, Mqtt5WindowFollowsBrokerReceiveMaximum) {
  broker_ = std::make_unique<Mosquitto>(free_loopback_port(), false, "max_inflight_messages 5\n");
  ASSERT_TRUE(broker_->start()) << broker_->log();
  TestFacility fac({"s1"}, 300);
  MqttSettings st = settings_for(broker_->port(), "ft-rm", "t14");
  st.protocol_version = 5;
  MqttPublisher pub(st, {"s1"}, fast_options());
  pub.start();
  ASSERT_TRUE(eventually([&] { return pub.stats().connected; }));
  ASSERT_TRUE(publish_and_wait(pub, fac.snapshot(Clock::now(), 100)));
  std::uint64_t most = 0;
  ASSERT_TRUE(eventually(
      [&] {
        const auto s = pub.stats();
        most = std::max(most, s.in_flight);
        return s.queue_messages == 0;
      },
      30s));
  EXPECT_LE(most, 3u);  // 5 - 2 kept for the status messages
  EXPECT_GT(most, 0u);
  EXPECT_EQ(pub.stats().published_total, 1 + fac.messages_per_site());
}

TEST_F(MqttBrokerTest, SilentlyDeadConnectionLosesNothing) {
  // paho.mqtt.cpp#384: QoS 1 messages sent between a silent network drop and the keepalive
  // noticing it are lost by Paho. A stopped broker process keeps the TCP connection up and
  // answers nothing, like a dead path.
  start_broker();
  TestFacility fac({"s1"}, 2);
  MqttSettings st = settings_for(broker_->port(), "ft-silent", "t13");
  st.keepalive = 1s;
  MqttPublisherOptions o = fast_options();
  o.connect_timeout = 2s;
  MqttPublisher pub(st, {"s1"}, o);
  pub.start();
  ASSERT_TRUE(eventually([&] { return pub.stats().connected; }));
  const TimePoint t0 = Clock::now();
  ASSERT_TRUE(publish_and_wait(pub, fac.snapshot(t0, 100)));
  ASSERT_TRUE(eventually([&] { return pub.stats().queue_messages == 0; }));
  const auto published_before = pub.stats().published_total;  // online + 3

  ASSERT_EQ(::kill(broker_->pid(), SIGSTOP), 0);
  ASSERT_TRUE(publish_and_wait(pub, fac.snapshot(t0 + 1s, 200)));  // into the dead connection
  ASSERT_TRUE(eventually([&] { return !pub.stats().connected; }, 15s));
  EXPECT_EQ(pub.stats().queue_messages, 3u);  // not acknowledged, so still ours

  broker_->kill();  // what it had buffered is gone, like packets on a dead path
  ASSERT_TRUE(broker_->start());
  ASSERT_TRUE(connected_and_drained(pub, 20s));
  const auto s = pub.stats();
  // Online again, the 3 re-sent messages, and the 3 of the refresh on reconnect.
  EXPECT_EQ(s.published_total, published_before + 1 + 3 + 3);
  EXPECT_EQ(drops(s), 0u);
  Subscriber late(broker_->port(), "t13/s1/cabinet/c001");
  ASSERT_TRUE(late.wait([](const auto& m) { return !m.empty(); }));
  EXPECT_DOUBLE_EQ(json::parse(late.get("t13/s1/cabinet/c001")->payload)["power_w"].get<double>(),
                   200);
}

TEST_F(MqttBrokerTest, BrokerDownAtStartPublishDoesNotBlockThenConnects) {
  const int port = free_loopback_port();  // nothing listens here yet
  TestFacility fac({"s1"}, 2);
  MqttPublisher pub(settings_for(port, "ft-down", "t4"), {"s1"}, fast_options());

  // Neither start() nor publish() waits for the broker (publish() only hands the snapshot
  // over: MqttPublisherConfig.LifecycleWithoutBroker shows it works without any worker).
  pub.start();
  for (int i = 0; i < 100; ++i) pub.publish(fac.snapshot(Clock::now(), 700 + i * 100));

  ASSERT_TRUE(eventually([&] { return pub.stats().queue_messages >= 3; }));
  EXPECT_FALSE(pub.stats().connected);

  Mosquitto late_broker(port);
  ASSERT_TRUE(late_broker.start()) << late_broker.log();
  ASSERT_TRUE(eventually([&] { return pub.stats().connected; }, 15s)) << late_broker.log();
  Subscriber sub(port, "t4/#");
  ASSERT_TRUE(sub.wait([](const auto& m) {
    return m.count("t4/s1/status") && m.count("t4/s1/cabinet/c001");
  }));
  EXPECT_EQ(sub.get("t4/s1/status")->payload, "online");
  ASSERT_TRUE(eventually([&] { return pub.stats().queue_messages == 0; }));
  const auto s = pub.stats();
  EXPECT_EQ(drops(s), 0u);
  expect_accounted(s, 1);
  pub.stop();
  EXPECT_TRUE(sub.wait_payload("t4/s1/status", "offline"));
}

AlertState raised_overload(const std::string& cabinet, const std::string& severity,
                           double value, double threshold, TimePoint since) {
  AlertState a;
  a.site = "s1";
  a.kind = "cabinet_overload";
  a.subject = cabinet;
  a.severity = severity;
  a.raised = true;
  a.value = value;
  a.threshold = threshold;
  a.unit = "ratio";
  a.since = since;
  return a;
}

// While the broker is away, an alert whose subject flaps between good and stale data stays one
// event; the flips are state messages (droppable, superseded), not never-dropped events (B5).
TEST(MqttPublisherAlerts, QualityFlipsOfARaisedAlertAreNotEvents) {
  const int port = free_loopback_port();  // nothing listens: everything stays queued
  TestFacility fac({"s1"}, 2);
  MqttPublisher pub(settings_for(port, "ft-flap", "t10"), {"s1"}, fast_options());
  pub.start();
  const TimePoint t0 = Clock::now();
  fac.alerts = {raised_overload("c001", "warning", 0.91, 0.9, t0)};
  for (int k = 0; k < 6; ++k) {
    auto snap = std::make_shared<FacilitySnapshot>(*fac.snapshot(t0 + std::chrono::seconds(k), 4550));
    // The subject cabinet's data every other cycle stale: the alert payload's quality flips.
    if (k % 2 == 1) snap->sites[0].cabinets[0].quality = Quality::kStale;
    ASSERT_TRUE(publish_and_wait(pub, snap));
  }
  auto s = pub.stats();
  EXPECT_EQ(s.queue_events, 1u) << "one raise";
  EXPECT_GE(s.queue_messages, 6u) << "the flips were queued, as state";

  // A real transition is still an event, and kept.
  fac.alerts[0].raised = false;
  ASSERT_TRUE(publish_and_wait(pub, fac.snapshot(t0 + 10s, 3000)));
  s = pub.stats();
  EXPECT_EQ(s.queue_events, 2u);
  EXPECT_FALSE(s.connected);
  pub.stop();
}

// A raise and its clear inside snapshots the worker never took (it lagged, here: it had not
// started) are both published, in order, as events (review B11).
TEST(MqttPublisherAlerts, TransitionsInSupersededSnapshotsAreStillPublished) {
  const int port = free_loopback_port();  // nothing listens: everything stays queued
  TestFacility fac({"s1"}, 2);
  MqttPublisher pub(settings_for(port, "ft-lag", "t11"), {"s1"}, fast_options());
  const TimePoint t0 = Clock::now();
  AlertState a = raised_overload("c002", "critical", 0.97, 0.95, t0 + 1s);
  pub.publish(fac.snapshot(t0, 1000));
  fac.alerts = {a};
  pub.publish(fac.snapshot(t0 + 1s, 4850));  // raised
  a.raised = false;
  a.value = 0.7;
  a.since = t0 + 2s;
  fac.alerts = {a};
  pub.publish(fac.snapshot(t0 + 2s, 3500));  // cleared
  pub.publish(fac.snapshot(t0 + 3s, 3500));  // unchanged: hides both transitions
  pub.start();
  ASSERT_TRUE(eventually([&] { return pub.stats().snapshots_processed >= 1; }));
  const auto s = pub.stats();
  EXPECT_EQ(s.snapshots_superseded, 3u);
  EXPECT_EQ(s.queue_events, 2u) << "the raise and the clear";
  pub.stop();
}

// A worker that lags further than the backlog bound loses the oldest transitions: counted, not
// silent.
TEST(MqttPublisherAlerts, TransitionsBeyondTheBacklogBoundAreCounted) {
  const int port = free_loopback_port();  // nothing listens: everything stays queued
  TestFacility fac({"s1"}, 2);
  MqttPublisher pub(settings_for(port, "ft-lag2", "t12"), {"s1"}, fast_options());
  const TimePoint t0 = Clock::now();
  AlertState a = raised_overload("c002", "critical", 0.97, 0.95, t0);
  // Each snapshot flips the alert, so each one superseded hides a transition: n - 1 of them.
  const std::size_t n = MqttPublisher::kMaxAlertBacklog + 6;
  for (std::size_t i = 0; i < n; ++i) {
    a.raised = i % 2 == 0;
    a.since = t0 + std::chrono::seconds(i);
    fac.alerts = {a};
    pub.publish(fac.snapshot(a.since, a.raised ? 4850 : 3500));
  }
  const auto s = pub.stats();
  EXPECT_EQ(s.snapshots_superseded, n - 1);
  EXPECT_EQ(s.alert_backlog_dropped, 5u);
  pub.start();
  pub.stop();
}

}  // namespace
}  // namespace facility
