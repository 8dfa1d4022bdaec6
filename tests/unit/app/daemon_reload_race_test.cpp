// Reloads while the rest of the daemon runs: the poll engine polling (a device whose endpoint
// refuses connections, so its poller keeps reconnecting), the model loop, the history writer,
// and scrapes of /metrics and / on the HTTP listener from another thread. Its point is the
// ThreadSanitizer leg (docs/testing.md): every pipeline swap happens while scrapes read the
// sources it replaces.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "config_fixture.h"
#include "daemon/app/daemon.h"
#include "http_client.h"

namespace facility {
namespace {

using testing::ConfigFixture;

std::string sites_polling(const std::string& interval) {
  return std::string(testing::kFixtureSites) +
         "    devices:\n"
         "      - {id: p1, kind: pdu, profile: pdu, endpoint: \"tcp://127.0.0.1:1\", unit: 1,\n"
         "         cabinet: c1, feed: A, interval: " +
         interval + ", timeout: 100ms}\n";
}

TEST(DaemonReload, ReloadsWhileScrapesPollsAndTheHistoryWriterRun) {
  const std::string head = "daemon:\n  state_dir: @DIR@/state\n";
  ConfigFixture a(head, sites_polling("200ms"));
  ConfigFixture b(head, sites_polling("300ms"));
  auto cfg_a = std::make_shared<const Config>(load_config(a.path));
  auto cfg_b = std::make_shared<const Config>(load_config(b.path));
  DaemonOptions opt;
  opt.listen = "127.0.0.1:0";
  opt.no_mqtt = true;
  opt.model_interval = std::chrono::milliseconds(10);
  Daemon d(cfg_a, opt);
  ASSERT_NO_THROW(d.start());
  const int port = d.metrics_port();

  std::atomic<bool> done{false};
  std::atomic<int> scrapes{0}, bad{0};
  std::thread scraper([&] {
    while (!done) {
      for (const char* path : {"/metrics", "/"}) {
        const auto r = testing::http(port, path);
        ++scrapes;
        if (r.status != 200) ++bad;
      }
      (void)d.snapshot();
      (void)d.scrape_sources();
    }
  });
  for (int i = 0; i < 12; ++i) {
    EXPECT_TRUE(d.reload(i % 2 ? cfg_a : cfg_b));
    std::this_thread::sleep_for(std::chrono::milliseconds(40));
  }
  done = true;
  scraper.join();
  d.stop();
  EXPECT_GT(scrapes.load(), 0);
  EXPECT_EQ(bad.load(), 0);
}

}  // namespace
}  // namespace facility
