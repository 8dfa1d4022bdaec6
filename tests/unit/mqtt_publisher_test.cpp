// MqttPublisher against a real mosquitto started by the test on a free loopback port: birth,
// retained state, offline on stop, last will on SIGKILL (one per site), reconnect after a broker
// restart, a broker that is down at start-up, and drop accounting with a full buffer.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "daemon/mqtt_publisher.h"
#include "test_util.h"

extern char** environ;

namespace facility {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using Steady = std::chrono::steady_clock;

constexpr const char* kMosquitto = "/usr/sbin/mosquitto";
constexpr const char* kMosquittoSub = "/usr/bin/mosquitto_sub";
constexpr const char* kChildPortEnv = "FACILITYD_MQTT_TEST_CHILD_PORT";
constexpr const char* kChildPrefixEnv = "FACILITYD_MQTT_TEST_CHILD_PREFIX";

// Polls a condition we can observe (bounded); never a fixed sleep in place of a condition.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = 10s) {
  const auto deadline = Steady::now() + timeout;
  for (;;) {
    if (pred()) return true;
    if (Steady::now() >= deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
}

int free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  int port = -1;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

bool port_accepts(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A child process that is always reaped: SIGKILL + waitpid in the destructor if still running.
class Child {
 public:
  Child() = default;
  Child(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env,
        const std::string& log_path) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    std::vector<std::string> env_store;
    for (char** e = environ; *e; ++e) env_store.emplace_back(*e);
    for (const auto& e : extra_env) env_store.push_back(e);
    std::vector<char*> env;
    for (auto& e : env_store) env.push_back(e.data());
    env.push_back(nullptr);

    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    pid_t pid = -1;
    if (posix_spawn(&pid, args[0], &fa, nullptr, args.data(), env.data()) == 0) pid_ = pid;
    posix_spawn_file_actions_destroy(&fa);
  }
  ~Child() { kill_and_wait(SIGKILL); }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }
  bool running() {
    if (pid_ <= 0) return false;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    return true;
  }
  // Sends `sig`, waits up to 5 s, then SIGKILL. Always reaps.
  void kill_and_wait(int sig) {
    if (pid_ <= 0) return;
    ::kill(pid_, sig);
    const auto deadline = Steady::now() + 5s;
    while (Steady::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(10ms);
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
};

// mosquitto on 127.0.0.1:port with anonymous access and no persistence (a restart forgets
// retained messages, which the reconnect test relies on).
class Mosquitto {
 public:
  explicit Mosquitto(int port) : port_(port) {
    conf_ = dir_.write("mosquitto.conf", "listener " + std::to_string(port) +
                                             " 127.0.0.1\n"
                                             "allow_anonymous true\n"
                                             "persistence false\n"
                                             "log_dest stdout\n"
                                             "log_type all\n");
    log_ = (dir_.path() / "mosquitto.log").string();
  }
  ~Mosquitto() { stop(); }
  Mosquitto(const Mosquitto&) = delete;
  Mosquitto& operator=(const Mosquitto&) = delete;

  bool start() {
    proc_ = std::make_unique<Child>(std::vector<std::string>{kMosquitto, "-c", conf_},
                                    std::vector<std::string>{}, log_);
    return eventually([&] { return proc_->running() && port_accepts(port_); }, 5s);
  }
  void stop() {
    if (proc_) proc_->kill_and_wait(SIGTERM);
    proc_.reset();
  }
  int port() const { return port_; }
  std::string log() const { return read_file(log_); }

 private:
  int port_;
  testing::TempDir dir_;
  std::string conf_, log_;
  std::unique_ptr<Child> proc_;
};

// Records the last message per topic with its retain flag (set only on retained messages
// delivered at subscription, i.e. what a late subscriber sees). It is a mosquitto_sub process, not
// a second Paho client: Paho C serves all clients of a process from one select() loop that
// notices a new socket only after its 1 s timeout, which made every in-process subscriber cost
// seconds. mosquitto_sub flushes each message, and -F prints "<retained> <topic> <payload>".
class Subscriber {
 public:
  struct Msg {
    std::string payload;
    bool retained = false;
  };

  Subscriber(int port, const std::string& filter) : out_((dir_.path() / "sub.out").string()) {
    proc_ = std::make_unique<Child>(
        std::vector<std::string>{kMosquittoSub, "-h", "127.0.0.1", "-p", std::to_string(port),
                                 "-q", "1", "-t", filter, "-F", "%r %t %p"},
        std::vector<std::string>{}, out_);
  }

  bool wait(const std::function<bool(const std::map<std::string, Msg>&)>& pred,
            std::chrono::milliseconds timeout = 10s) {
    return eventually(
        [&] {
          refresh();
          return pred(last_);
        },
        timeout);
  }
  bool wait_payload(const std::string& topic, const std::string& payload,
                    std::chrono::milliseconds timeout = 10s) {
    return wait(
        [&](const auto& m) {
          const auto it = m.find(topic);
          return it != m.end() && it->second.payload == payload;
        },
        timeout);
  }
  std::optional<Msg> get(const std::string& topic) {
    refresh();
    const auto it = last_.find(topic);
    if (it == last_.end()) return std::nullopt;
    return it->second;
  }
  std::string output() const { return read_file(out_); }

 private:
  // Parses complete lines appended since the last call. Our payloads are single-line.
  void refresh() {
    const std::string all = read_file(out_);
    while (consumed_ < all.size()) {
      const auto nl = all.find('\n', consumed_);
      if (nl == std::string::npos) break;
      const std::string line = all.substr(consumed_, nl - consumed_);
      consumed_ = nl + 1;
      const auto sp = line.find(' ', 2);
      if (line.size() < 3 || (line[0] != '0' && line[0] != '1') || line[1] != ' ' ||
          sp == std::string::npos)
        continue;  // not a message line (e.g. an error printed by mosquitto_sub)
      last_[line.substr(2, sp - 2)] = Msg{line.substr(sp + 1), line[0] == '1'};
    }
  }

  testing::TempDir dir_;
  std::string out_;
  std::unique_ptr<Child> proc_;  // after dir_: the process ends before its output file goes
  std::size_t consumed_ = 0;
  std::map<std::string, Msg> last_;
};

// Sites with N sold cabinets each, every cabinet drawing `watts` on feed A.
struct TestFacility {
  std::shared_ptr<Config> cfg = std::make_shared<Config>();
  int cabinets;

  TestFacility(const std::vector<std::string>& sites, int n) : cabinets(n) {
    cfg->sites.reserve(sites.size());
    for (const auto& id : sites) {
      Site s;
      s.id = id;
      s.name = "Site " + id;
      for (int i = 1; i <= n; ++i) {
        Cabinet c;
        char buf[16];
        std::snprintf(buf, sizeof buf, "c%03d", i);
        c.id = buf;
        c.site = id;
        c.room = "hall1";
        c.row = "r1";
        c.rated_w = 5000;
        c.feeds = {"A"};
        c.status = CabinetStatus::kSold;
        s.cabinets.push_back(c);
      }
      cfg->sites.push_back(std::move(s));
    }
  }

  std::shared_ptr<const FacilitySnapshot> snapshot(TimePoint t, double watts) const {
    auto snap = std::make_shared<FacilitySnapshot>();
    snap->computed_at = t;
    snap->config = cfg;
    for (const auto& s : cfg->sites) {
      SiteSnapshot ss;
      ss.site = &s;
      ss.it_power_w = watts * static_cast<double>(s.cabinets.size());
      ss.it_power_source = "pdu_sum";
      ss.it_coverage = 1;
      ss.rated_w = 5000.0 * static_cast<double>(s.cabinets.size());
      ss.cabinets_total = ss.cabinets_powered = ss.cabinets_sold =
          static_cast<int>(s.cabinets.size());
      for (const auto& c : s.cabinets) {
        CabinetSnapshot cs;
        cs.cabinet = &c;
        cs.feeds = {{"A", watts, ""}};
        cs.power_w = watts;
        cs.utilization = watts / c.rated_w;
        cs.powered = true;
        cs.quality = Quality::kGood;
        ss.cabinets.push_back(cs);
      }
      snap->sites.push_back(std::move(ss));
    }
    return snap;
  }
  std::uint64_t messages_per_site() const { return 1 + static_cast<std::uint64_t>(cabinets); }
};

MqttSettings settings_for(int port, const std::string& client_id, const std::string& prefix) {
  MqttSettings s;
  s.broker = "tcp://127.0.0.1:" + std::to_string(port);
  s.client_id = client_id;
  s.topic_prefix = prefix;
  s.qos = 1;
  s.keepalive = Millis(30000);
  return s;
}

MqttPublisherOptions fast_options() {
  MqttPublisherOptions o;
  o.min_retry_interval = 1s;
  o.max_retry_interval = 2s;  // keeps reconnect tests short
  o.stop_timeout = 2000ms;
  return o;
}

std::uint64_t drops(const MqttPublisher::Stats& s) {
  std::uint64_t n = 0;
  for (const auto& [reason, v] : s.dropped_total) n += v;
  return n;
}

class MqttBrokerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* tool : {kMosquitto, kMosquittoSub})
      if (::access(tool, X_OK) != 0) GTEST_SKIP() << tool << " not installed";
    broker_ = std::make_unique<Mosquitto>(free_loopback_port());
    ASSERT_TRUE(broker_->start()) << broker_->log();
  }
  void TearDown() override {
    if (HasFailure() && broker_) std::cerr << "---- mosquitto log ----\n" << broker_->log();
  }
  std::unique_ptr<Mosquitto> broker_;
};

TEST_F(MqttBrokerTest, BirthRetainedStateAndOfflineOnStop) {
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
  char exe[4096];
  const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  ASSERT_GT(n, 0);
  exe[n] = '\0';
  testing::TempDir dir;
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

TEST_F(MqttBrokerTest, ReconnectsAndRepublishesLatestAfterBrokerRestart) {
  TestFacility fac({"s1"}, 2);
  MqttPublisher pub(settings_for(broker_->port(), "ft-re", "t3"), {"s1"}, fast_options());
  pub.start();
  ASSERT_TRUE(eventually([&] { return pub.stats().connected; }));
  const TimePoint t1 = Clock::now();
  pub.publish(fac.snapshot(t1, 1000));
  ASSERT_TRUE(eventually([&] { return pub.stats().published_total >= 1 + 3; }));

  broker_->stop();
  ASSERT_TRUE(eventually([&] { return !pub.stats().connected; }));

  // While the site is offline, snapshots are counted as not_connected, not queued.
  const TimePoint t2 = t1 + 1s;
  pub.publish(fac.snapshot(t2, 2000));
  ASSERT_TRUE(eventually([&] { return pub.stats().dropped_total.at("not_connected") >= 3; }));
  EXPECT_EQ(pub.stats().queue_messages, 0u);

  ASSERT_TRUE(broker_->start());  // same port; it has forgotten every retained message
  ASSERT_TRUE(eventually(
      [&] {
        const auto s = pub.stats();
        return s.connected && s.sites[0].connects_total == 2;
      },
      15s));

  Subscriber late(broker_->port(), "t3/#");
  ASSERT_TRUE(late.wait([&](const auto& m) {
    return m.count("t3/s1/status") && m.count("t3/s1/cabinet/c002") && m.count("t3/s1/summary");
  }));
  EXPECT_EQ(late.get("t3/s1/status")->payload, "online");
  const json c = json::parse(late.get("t3/s1/cabinet/c002")->payload);
  EXPECT_EQ(c["ts"], format_rfc3339_ms(t2));  // the latest snapshot, re-sent on reconnect
  EXPECT_DOUBLE_EQ(c["power_w"].get<double>(), 2000);
}

TEST_F(MqttBrokerTest, BrokerDownAtStartPublishDoesNotBlockThenConnects) {
  const int port = free_loopback_port();  // nothing listens here yet
  TestFacility fac({"s1"}, 2);
  MqttPublisher pub(settings_for(port, "ft-down", "t4"), {"s1"}, fast_options());

  auto t0 = Steady::now();
  pub.start();
  EXPECT_LT(Steady::now() - t0, 1s);
  t0 = Steady::now();
  for (int i = 0; i < 100; ++i) pub.publish(fac.snapshot(Clock::now(), 700));
  EXPECT_LT(Steady::now() - t0, 500ms);  // includes building 100 snapshots

  ASSERT_TRUE(eventually([&] { return pub.stats().dropped_total.at("not_connected") >= 3; }));
  EXPECT_FALSE(pub.stats().connected);

  Mosquitto late_broker(port);
  ASSERT_TRUE(late_broker.start()) << late_broker.log();
  ASSERT_TRUE(eventually([&] { return pub.stats().connected; }, 15s)) << late_broker.log();
  Subscriber sub(port, "t4/#");
  ASSERT_TRUE(sub.wait([](const auto& m) {
    return m.count("t4/s1/status") && m.count("t4/s1/cabinet/c001");
  }));
  EXPECT_EQ(sub.get("t4/s1/status")->payload, "online");
  pub.stop();
  EXPECT_TRUE(sub.wait_payload("t4/s1/status", "offline"));
}

TEST_F(MqttBrokerTest, FullBufferDropsAreCountedAndEveryMessageIsAccountedFor) {
  TestFacility fac({"s1"}, 2000);
  MqttPublisherOptions o = fast_options();
  o.max_buffered_messages = 1;  // Paho may hold one unsent message: a burst must overflow
  MqttPublisher pub(settings_for(broker_->port(), "ft-buf", "t5"), {"s1"}, o);
  pub.start();
  ASSERT_TRUE(eventually([&] {
    const auto s = pub.stats();
    return s.connected && s.published_total == 1 && s.queue_messages == 0;
  }));
  pub.publish(fac.snapshot(Clock::now(), 100));
  const std::uint64_t offered = 1 /* online */ + fac.messages_per_site();
  ASSERT_TRUE(eventually(
      [&] {
        const auto s = pub.stats();
        return s.queue_messages == 0 && s.published_total + drops(s) == offered;
      },
      20s));
  const auto s = pub.stats();
  EXPECT_GT(s.dropped_total.at("buffer_full"), 0u);
  EXPECT_EQ(s.dropped_total.at("publish_error"), 0u);
  EXPECT_EQ(s.dropped_total.at("not_connected"), 0u);
  EXPECT_EQ(s.published_total + s.dropped_total.at("buffer_full"), offered);
  EXPECT_TRUE(s.connected);  // a full buffer is not a reason to drop the connection
}

}  // namespace
}  // namespace facility
