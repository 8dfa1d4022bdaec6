// Daemon lifecycle: a start that fails part-way leaves nothing running.
#include "daemon/app/daemon.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>

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

}  // namespace
}  // namespace facility
