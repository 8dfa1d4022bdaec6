// Logging a NOC can follow.
//
// setup_logging(): facilityd logs to standard error. Under systemd, when the journal is that
// stream (JOURNAL_STREAM names it), every line starts with its syslog priority ("<4>...", which
// journald turns into PRIORITY=) and carries no time stamp of its own (the journal records one);
// otherwise lines are time-stamped for a terminal or a log file.
//
// TransitionLog: devices and endpoints going down and coming back, logged once per transition
// with the reason (timeout, exception code, connection refused...), at warning (down) and info
// (up) -- and rate-limited, so that a thousand devices failing together (a gateway, a switch, a
// power cut) give a few lines and a summary per window instead of a thousand lines.
//
// Thread-safety: setup_logging() once, from main, before other threads start. TransitionLog is
// thread-safe (the model thread reports devices, the poller threads report endpoints).
#pragma once

#include <spdlog/common.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

namespace facility {

// True when standard error is the systemd journal stream (JOURNAL_STREAM is "DEV:INODE" of it).
bool stderr_is_journal();
// The syslog priority of a level (sd-daemon(3) prefixes): trace/debug 7, info 6, warn 4,
// error 3, critical 2.
int syslog_priority(spdlog::level::level_enum level);
void setup_logging(spdlog::level::level_enum level);

// A coarse reason class for summaries: "timeout", "exception 2", "connection refused",
// "malformed reply", "stale", or "other".
std::string reason_class(std::string_view error);

class TransitionLog {
 public:
  using Clock = std::chrono::steady_clock;
  using Line = std::function<void(spdlog::level::level_enum, const std::string&)>;

  struct Options {
    // Within each window the first `lines_per_window` transitions are logged one by one; the
    // rest are counted and summarised in one line when the window ends.
    std::chrono::seconds window{10};
    int lines_per_window = 20;
  };

  // `line` receives every line (default: spdlog).
  explicit TransitionLog(Options opt, Line line = nullptr);

  // `what` is "device" or "endpoint"; `reason` the error that took it down.
  void down(std::string_view what, std::string_view id, std::string_view reason,
            Clock::time_point now = Clock::now());
  void up(std::string_view what, std::string_view id, Clock::time_point now = Clock::now());
  // Ends the window when it is over: logs the summary of what was not logged one by one. Call
  // it regularly (the model loop does, every cycle); down() and up() call it too.
  void flush(Clock::time_point now = Clock::now());

  std::uint64_t transitions() const;  // every transition reported so far
  std::uint64_t lines() const;        // lines written (transitions logged one by one + summaries)

 private:
  void emit(spdlog::level::level_enum level, const std::string& text);
  void roll(Clock::time_point now);  // with mu_ held

  Options opt_;
  Line line_;
  mutable std::mutex mu_;
  Clock::time_point window_start_{};
  bool window_open_ = false;
  int logged_in_window_ = 0;
  // Suppressed in this window: ("device down", reason class) -> count.
  std::map<std::pair<std::string, std::string>, std::uint64_t> suppressed_;
  std::uint64_t transitions_ = 0;
  std::uint64_t lines_ = 0;
};

}  // namespace facility
