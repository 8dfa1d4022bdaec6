// Logging for the journal and the rate-limited transition log (daemon/logging/logging.h).
#include "daemon/logging/logging.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

namespace facility {
namespace {

using namespace std::chrono_literals;

struct Captured {
  std::vector<std::pair<spdlog::level::level_enum, std::string>> lines;
  TransitionLog::Line sink() {
    return [this](spdlog::level::level_enum l, const std::string& t) { lines.emplace_back(l, t); };
  }
  std::size_t count(const std::string& needle) const {
    std::size_t n = 0;
    for (const auto& [l, t] : lines) n += t.find(needle) != std::string::npos ? 1 : 0;
    return n;
  }
};

TEST(TransitionLog, EachTransitionIsLoggedOnceWithItsReasonAndLevel) {
  Captured c;
  TransitionLog log({10s, 20}, c.sink());
  const auto t0 = TransitionLog::Clock::time_point{} + 1h;
  log.down("device", "pdu-1", "read 3x0000+10: timeout after 1000 ms", t0);
  log.up("device", "pdu-1", t0 + 20s);
  ASSERT_EQ(c.lines.size(), 2u);
  EXPECT_EQ(c.lines[0].first, spdlog::level::warn);
  EXPECT_EQ(c.lines[0].second, "device pdu-1 is down: read 3x0000+10: timeout after 1000 ms");
  EXPECT_EQ(c.lines[1].first, spdlog::level::info);
  EXPECT_EQ(c.lines[1].second, "device pdu-1 is up again");
  EXPECT_EQ(log.transitions(), 2u);
}

TEST(TransitionLog, AThousandDeadDevicesGiveABoundedNumberOfLinesPerWindow) {
  Captured c;
  TransitionLog log({10s, 20}, c.sink());
  const auto t0 = TransitionLog::Clock::time_point{} + 1h;
  // 1,000 devices go down over 15 s (a poll interval): 900 time out, 100 are refused.
  for (int i = 0; i < 1000; ++i) {
    const auto at = t0 + std::chrono::milliseconds(i * 15);
    log.down("device", "d" + std::to_string(i),
             i < 900 ? "timeout after 1000 ms" : "connect to tcp://10.0.0.1:502 failed: "
                                                  "connection refused; retry in 1000 ms",
             at);
  }
  log.flush(t0 + 60s);
  // Two windows (0-10 s, 10-15 s): at most 20 lines each, plus one summary line each.
  EXPECT_LE(c.lines.size(), 2u * 20 + 2);
  EXPECT_EQ(log.lines(), c.lines.size());
  EXPECT_EQ(log.transitions(), 1000u);
  // Every transition is accounted for: logged one by one or counted in a summary.
  std::size_t individual = c.count(" is down: ");
  std::size_t summarised = 0;
  for (const auto& [level, text] : c.lines) {
    if (text.find(" more devices went down") == std::string::npos) continue;
    EXPECT_EQ(level, spdlog::level::warn);
    summarised += std::stoul(text);
    EXPECT_NE(text.find("facility_device_up"), std::string::npos) << text;
  }
  EXPECT_EQ(individual + summarised, 1000u);
  // The summary says why, by reason class.
  EXPECT_EQ(c.count("(connection refused 100, timeout "), 1u) << c.lines.back().second;
  EXPECT_GE(c.count("timeout "), 1u);
}

TEST(TransitionLog, ASummaryWaitsForTheEndOfItsWindow) {
  Captured c;
  TransitionLog log({10s, 1}, c.sink());
  const auto t0 = TransitionLog::Clock::time_point{} + 1h;
  log.down("endpoint", "tcp://a:502", "connect failed: connection refused", t0);
  log.down("endpoint", "tcp://b:502", "connect failed: connection refused", t0 + 1s);
  log.flush(t0 + 9s);
  EXPECT_EQ(c.lines.size(), 1u);  // the second one is held for the summary
  log.flush(t0 + 10s);
  ASSERT_EQ(c.lines.size(), 2u);
  EXPECT_EQ(c.lines[1].second,
            "1 more endpoints went down in the last 10 s (connection refused 1); "
            "facility_modbus_endpoint_up lists them");
  log.flush(t0 + 30s);  // nothing more to say
  EXPECT_EQ(c.lines.size(), 2u);
}

TEST(TransitionLog, ReasonClasses) {
  EXPECT_EQ(reason_class("read 3x0000+10: timeout after 1000 ms"), "timeout");
  EXPECT_EQ(reason_class("read 4x0010+2: exception 2 (illegal data address)"), "exception 2");
  EXPECT_EQ(reason_class("connect to tcp://x:502 failed: connection refused; retry in 1 s"),
            "connection refused");
  EXPECT_EQ(reason_class("stale: no successful poll for 50 s"), "stale");
  EXPECT_EQ(reason_class("malformed reply: wrong length"), "malformed reply");
  EXPECT_EQ(reason_class("connection closed by the device"), "connection");
  EXPECT_EQ(reason_class("something else"), "other");
}

TEST(Logging, SyslogPrioritiesFollowSdDaemon) {
  EXPECT_EQ(syslog_priority(spdlog::level::debug), 7);
  EXPECT_EQ(syslog_priority(spdlog::level::info), 6);
  EXPECT_EQ(syslog_priority(spdlog::level::warn), 4);
  EXPECT_EQ(syslog_priority(spdlog::level::err), 3);
  EXPECT_EQ(syslog_priority(spdlog::level::critical), 2);
}

TEST(Logging, TheJournalIsRecognisedByTheDeviceAndInodeOfStandardError) {
  struct stat st {};
  ASSERT_EQ(fstat(STDERR_FILENO, &st), 0);
  const std::string mine =
      std::to_string(st.st_dev) + ":" + std::to_string(static_cast<unsigned long long>(st.st_ino));
  const char* before = std::getenv("JOURNAL_STREAM");
  const std::string saved = before ? before : "";
  ::unsetenv("JOURNAL_STREAM");
  EXPECT_FALSE(stderr_is_journal());
  ::setenv("JOURNAL_STREAM", mine.c_str(), 1);
  EXPECT_TRUE(stderr_is_journal());
  // Inherited by a child whose stderr is somewhere else: not the journal.
  ::setenv("JOURNAL_STREAM", (std::to_string(st.st_dev) + ":1").c_str(), 1);
  EXPECT_FALSE(stderr_is_journal());
  if (before) {
    ::setenv("JOURNAL_STREAM", saved.c_str(), 1);
  } else {
    ::unsetenv("JOURNAL_STREAM");
  }
}

}  // namespace
}  // namespace facility
