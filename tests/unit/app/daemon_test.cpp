// Daemon lifecycle: a start that fails part-way leaves nothing running.
#include "daemon/app/daemon.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "config_fixture.h"

namespace facility {
namespace {

using testing::ConfigFixture;

int loopback_socket() { return ::socket(AF_INET, SOCK_STREAM, 0); }

sockaddr_in loopback(int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

// A port that was free a moment ago (bound to 0, then released).
int free_port() {
  const int fd = loopback_socket();
  sockaddr_in a = loopback(0);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

bool accepts_connections(int port) {
  const int fd = loopback_socket();
  sockaddr_in a = loopback(port);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

Config with_intervals(std::initializer_list<int> ms_per_site) {
  Config cfg;
  for (int ms : ms_per_site) {
    Site site;
    Device d;
    d.interval = Millis(ms);
    site.devices.push_back(d);
    cfg.sites.push_back(site);
  }
  return cfg;
}

// The model's step follows the data: 0.8 x the shortest poll interval (no value exported older
// than two intervals), within [250 ms, 5 s].
TEST(ModelStep, FollowsTheShortestPollIntervalWithinItsBounds) {
  using std::chrono::milliseconds;
  EXPECT_EQ(auto_model_step(with_intervals({1000})), milliseconds(800));
  EXPECT_EQ(auto_model_step(with_intervals({10000})), milliseconds(5000));
  EXPECT_EQ(auto_model_step(with_intervals({5000})), milliseconds(4000));
  EXPECT_EQ(auto_model_step(with_intervals({10000, 2000, 60000})), milliseconds(1600));
  EXPECT_EQ(auto_model_step(with_intervals({100})), milliseconds(250));
  EXPECT_EQ(auto_model_step(with_intervals({})), milliseconds(1000));  // no devices
}

TEST(DaemonStart, ASinkThatFailsToStartLeavesNoListenerAndNoWriterBehind) {
  ConfigFixture f("daemon:\n  state_dir: @DIR@/state\nmqtt:\n  enabled: true\n");
  auto cfg = std::make_shared<const Config>(load_config(f.path));
  ASSERT_TRUE(cfg->history.enabled);
  const int port = free_port();
  DaemonOptions opt;
  opt.listen = "127.0.0.1:" + std::to_string(port);
  opt.mqtt_broker = "nonsense://127.0.0.1:1";  // Paho's client constructor refuses the scheme

  Daemon failed(cfg, opt);
  // The listener is up and the history writer has started before the MQTT publisher is built.
  EXPECT_THROW(failed.start(), std::exception);
  EXPECT_TRUE(std::filesystem::exists(f.dir.path() / "state"));
  // Closed by the failed start itself, not later by the destructor.
  EXPECT_FALSE(accepts_connections(port));
  EXPECT_EQ(failed.metrics_port(), 0);

  // The same port and state directory serve a daemon that starts.
  DaemonOptions good = opt;
  good.no_mqtt = true;
  Daemon d(cfg, good);
  ASSERT_NO_THROW(d.start());
  EXPECT_EQ(d.metrics_port(), port);
  EXPECT_TRUE(accepts_connections(port));
  d.stop();
  EXPECT_FALSE(accepts_connections(port));
}

// What the daemon told "systemd": every sd_notify state string, in order.
struct Notifications {
  std::mutex mu;
  std::vector<std::string> sent;
  std::function<void(const std::string&)> sink() {
    return [this](const std::string& s) {
      std::lock_guard lock(mu);
      sent.push_back(s);
    };
  }
  std::size_t count(const std::string& needle) {
    std::lock_guard lock(mu);
    std::size_t n = 0;
    for (const auto& s : sent) n += s.find(needle) != std::string::npos ? 1 : 0;
    return n;
  }
  bool wait_for(const std::string& needle, std::size_t n, std::chrono::milliseconds limit) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (count(needle) < n) {
      if (std::chrono::steady_clock::now() > end) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
  }
};

TEST(DaemonWatchdog, PingsComeFromTheModelLoopAndStopWhileItIsStalled) {
  ConfigFixture f("daemon:\n  state_dir: @DIR@/state\nhistory:\n  enabled: false\n");
  auto cfg = std::make_shared<const Config>(load_config(f.path));
  Notifications n;
  std::atomic<bool> stall{false};
  DaemonOptions opt;
  opt.listen = "127.0.0.1:0";
  opt.no_mqtt = true;
  opt.model_interval = std::chrono::milliseconds(20);
  opt.watchdog = true;
  opt.notify = n.sink();
  opt.model_cycle_hook = [&stall] {
    while (stall) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  };
  Daemon d(cfg, opt);
  ASSERT_NO_THROW(d.start());
  ASSERT_TRUE(n.wait_for("WATCHDOG=1", 5, std::chrono::seconds(10)));

  stall = true;  // the model loop hangs (a deadlock, a runaway computation)
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // a cycle in flight ends
  const std::size_t during = n.count("WATCHDOG=1");
  std::this_thread::sleep_for(std::chrono::milliseconds(400));  // 20 model intervals
  EXPECT_EQ(n.count("WATCHDOG=1"), during) << "pings went on while the model loop was stuck";

  stall = false;
  EXPECT_TRUE(n.wait_for("WATCHDOG=1", during + 3, std::chrono::seconds(10)));
  d.stop();
}

TEST(DaemonWatchdog, StatusTellsDevicesUpOnlyWhenItChangesAndNoPingsWithoutAWatchdog) {
  ConfigFixture f("daemon:\n  state_dir: @DIR@/state\nhistory:\n  enabled: false\n");
  auto cfg = std::make_shared<const Config>(load_config(f.path));
  Notifications n;
  std::atomic<int> cycles{0};
  DaemonOptions opt;
  opt.listen = "127.0.0.1:0";
  opt.no_mqtt = true;
  opt.model_interval = std::chrono::milliseconds(10);
  opt.notify = n.sink();
  opt.model_cycle_hook = [&cycles] { ++cycles; };
  Daemon d(cfg, opt);
  ASSERT_NO_THROW(d.start());
  while (cycles < 10) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  d.stop();
  // The fixture's site has no devices: "0 of 0 devices up, 1 site", said once.
  EXPECT_EQ(n.count("STATUS=0 of 0 devices up, 1 site"), 1u);
  EXPECT_EQ(n.count("WATCHDOG=1"), 0u);
}

}  // namespace
}  // namespace facility
