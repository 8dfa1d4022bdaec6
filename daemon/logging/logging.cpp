#include "daemon/logging/logging.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <memory>

namespace facility {
namespace {

// "%*" in the pattern: the line's syslog priority as sd-daemon(3) wants it, "<4>".
class PriorityFlag : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    const char prefix[4] = {'<', static_cast<char>('0' + syslog_priority(msg.level)), '>', 0};
    dest.append(prefix, prefix + 3);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<PriorityFlag>();
  }
};

}  // namespace

bool stderr_is_journal() {
  const char* env = std::getenv("JOURNAL_STREAM");
  if (!env) return false;
  unsigned long long dev = 0, ino = 0;
  if (std::sscanf(env, "%llu:%llu", &dev, &ino) != 2) return false;
  struct stat st {};
  if (fstat(STDERR_FILENO, &st) != 0) return false;
  return static_cast<unsigned long long>(st.st_dev) == dev &&
         static_cast<unsigned long long>(st.st_ino) == ino;
}

int syslog_priority(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
    case spdlog::level::debug: return 7;
    case spdlog::level::info: return 6;
    case spdlog::level::warn: return 4;
    case spdlog::level::err: return 3;
    case spdlog::level::critical: return 2;
    default: return 6;
  }
}

void setup_logging(spdlog::level::level_enum level) {
  auto logger = std::make_shared<spdlog::logger>(
      "facilityd", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  if (stderr_is_journal()) {
    formatter->add_flag<PriorityFlag>('*').set_pattern("%*%v");
  } else {
    formatter->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %l %v");
  }
  logger->set_formatter(std::move(formatter));
  logger->set_level(level);
  // Warnings and errors reach the journal or the file at once, not at the next buffer flush.
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(std::move(logger));
}

std::string reason_class(std::string_view e) {
  auto has = [&e](std::string_view s) { return e.find(s) != std::string_view::npos; };
  if (has("stale")) return "stale";
  if (has("refused")) return "connection refused";
  if (has("timeout") || has("timed out")) return "timeout";
  if (has("exception")) {
    // "exception 2 (illegal data address)": keep the code.
    const auto at = e.find("exception");
    std::string out = "exception";
    for (std::size_t i = at + 9; i < e.size() && (e[i] == ' ' || std::isdigit(
                                                      static_cast<unsigned char>(e[i])));
         ++i) {
      out += e[i];
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out;
  }
  if (has("malformed")) return "malformed reply";
  if (has("connect") || has("connection") || has("reset") || has("closed")) return "connection";
  return "other";
}

TransitionLog::TransitionLog(Options opt, Line line) : opt_(opt), line_(std::move(line)) {
  if (!line_) {
    line_ = [](spdlog::level::level_enum level, const std::string& text) {
      spdlog::log(level, "{}", text);
    };
  }
}

void TransitionLog::emit(spdlog::level::level_enum level, const std::string& text) {
  ++lines_;
  line_(level, text);
}

void TransitionLog::roll(Clock::time_point now) {
  if (window_open_ && now - window_start_ < opt_.window) return;
  if (!suppressed_.empty()) {
    // One line per direction: "412 more devices went down in the last 10 s (timeout 400,
    // connection refused 12)".
    std::map<std::string, std::pair<std::uint64_t, std::string>> by_kind;
    for (const auto& [key, n] : suppressed_) {
      auto& [total, detail] = by_kind[key.first];
      total += n;
      if (!key.second.empty()) {
        detail += (detail.empty() ? "" : ", ") + key.second + " " + std::to_string(n);
      }
    }
    const auto secs = std::chrono::duration_cast<std::chrono::seconds>(opt_.window).count();
    for (const auto& [kind, td] : by_kind) {
      const bool down = kind.size() > 5 && kind.compare(kind.size() - 5, 5, " down") == 0;
      const std::string noun = kind.substr(0, kind.find(' '));
      const char* metric =
          noun == "endpoint" ? "facility_modbus_endpoint_up" : "facility_device_up";
      const std::string text = std::to_string(td.first) + " more " + noun + "s " +
                               (down ? "went down" : "came back up") + " in the last " +
                               std::to_string(secs) + " s" +
                               (td.second.empty() ? "" : " (" + td.second + ")") + "; " +
                               metric + " lists them";
      emit(down ? spdlog::level::warn : spdlog::level::info, text);
    }
    suppressed_.clear();
  }
  window_open_ = true;
  window_start_ = now;
  logged_in_window_ = 0;
}

void TransitionLog::down(std::string_view what, std::string_view id, std::string_view reason,
                         Clock::time_point now) {
  std::lock_guard lock(mu_);
  roll(now);
  ++transitions_;
  if (logged_in_window_ < opt_.lines_per_window) {
    ++logged_in_window_;
    emit(spdlog::level::warn, std::string(what) + " " + std::string(id) + " is down: " +
                                  std::string(reason));
  } else {
    ++suppressed_[{std::string(what) + " down", reason_class(reason)}];
  }
}

void TransitionLog::up(std::string_view what, std::string_view id, Clock::time_point now) {
  std::lock_guard lock(mu_);
  roll(now);
  ++transitions_;
  if (logged_in_window_ < opt_.lines_per_window) {
    ++logged_in_window_;
    emit(spdlog::level::info, std::string(what) + " " + std::string(id) + " is up again");
  } else {
    ++suppressed_[{std::string(what) + " up", ""}];
  }
}

void TransitionLog::flush(Clock::time_point now) {
  std::lock_guard lock(mu_);
  if (window_open_) roll(now);
}

std::uint64_t TransitionLog::transitions() const {
  std::lock_guard lock(mu_);
  return transitions_;
}

std::uint64_t TransitionLog::lines() const {
  std::lock_guard lock(mu_);
  return lines_;
}

}  // namespace facility
