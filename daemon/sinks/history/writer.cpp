#include "daemon/sinks/history/writer.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "daemon/sinks/history/restore.h"

namespace facility {

using history_detail::unix_s;

std::string history_path(const Config& cfg) { return cfg.daemon.state_dir + "/history.sqlite"; }

HistoryWriter::HistoryWriter(std::shared_ptr<const Config> config, std::string path)
    : config_(std::move(config)), path_(std::move(path)) {}

HistoryWriter::~HistoryWriter() { stop(); }

void HistoryWriter::start() {
  const std::string lock_path = path_ + ".lock";
  lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0) {
    throw std::runtime_error("history " + lock_path +
                             ": cannot open lock file: " + std::strerror(errno));
  }
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    release_lock();
    throw std::runtime_error(
        "history " + path_ + ": " +
        (err == EWOULDBLOCK ? std::string("in use by another facilityd (") + lock_path +
                                  " is locked); two writers would double every figure"
                            : std::string("cannot lock ") + lock_path + ": " + std::strerror(err)));
  }
  try {
    open_db();
  } catch (...) {
    db_.reset();
    release_lock();
    throw;
  }
  thread_ = std::thread([this] { run(); });
}

void HistoryWriter::release_lock() {
  if (lock_fd_ >= 0) ::close(lock_fd_);  // closing releases the flock
  lock_fd_ = -1;
}

void HistoryWriter::open_db() {
  db_ = HistoryDb::open_writer(path_);
  for (const auto& s : config_->sites) layouts_.push_back(db_->layout_id(s.id, layout_of(s)));
  const auto now = std::int64_t(unix_s(Clock::now()));
  db_->rollup(now);
  db_->prune(now, config_->history);
  db_->prune_energy(now, longest_pue_window_s(*config_));
  last_maintenance_hour_ = now / 3600;
  std::lock_guard lock(mu_);
  stats_.ok = true;
}

void HistoryWriter::submit(std::vector<MinuteRecord> minutes) {
  if (minutes.empty()) return;
  std::lock_guard lock(mu_);
  for (auto& m : minutes) pending_.push_back(std::move(m));
  const std::size_t bound =
      std::max<std::size_t>(1, std::size_t(config_->history.max_pending / std::chrono::minutes(1)) *
                                   std::max<std::size_t>(1, config_->sites.size()));
  while (pending_.size() > bound) {
    pending_.pop_front();
    ++stats_.minutes_dropped;
  }
  stats_.pending = pending_.size() + in_flight_;
}

void HistoryWriter::write_pending(std::deque<MinuteRecord>& batch) {
  if (batch.empty()) return;
  const auto t0 = std::chrono::steady_clock::now();
  try {
    db_->write_minutes(std::vector<MinuteRecord>(batch.begin(), batch.end()), layouts_);
    std::error_code ec;
    std::uint64_t bytes = 0;
    for (const char* sfx : {"", "-wal"}) {
      const auto sz = std::filesystem::file_size(path_ + sfx, ec);
      if (!ec) bytes += sz;
    }
    std::lock_guard lock(mu_);
    stats_.minutes_written += batch.size();
    stats_.last_write_unix = unix_s(Clock::now());
    stats_.last_write_duration_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    stats_.db_bytes = bytes;
    stats_.ok = true;
    in_flight_ = 0;
    stats_.pending = pending_.size();
    batch.clear();
  } catch (const std::exception& e) {
    spdlog::warn("history: write of {} minutes failed, will retry: {}", batch.size(), e.what());
    std::lock_guard lock(mu_);
    ++stats_.write_errors;
    stats_.ok = false;
    in_flight_ = 0;
    // Back to the front of the queue, in order; submit() enforces the bound.
    while (!batch.empty()) {
      pending_.push_front(std::move(batch.back()));
      batch.pop_back();
    }
    stats_.pending = pending_.size();
  }
}

void HistoryWriter::run() {
  while (true) {
    std::deque<MinuteRecord> batch;
    bool stopping;
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, config_->history.flush_interval, [this] { return stopping_; });
      stopping = stopping_;
      batch.swap(pending_);
      in_flight_ = batch.size();  // stats_.pending keeps counting it until it is written
    }
    write_pending(batch);
    const auto now = std::int64_t(unix_s(Clock::now()));
    if (now / 3600 != last_maintenance_hour_) {
      try {
        db_->rollup(now);
        db_->prune(now, config_->history);
        db_->prune_energy(now, longest_pue_window_s(*config_));
        last_maintenance_hour_ = now / 3600;
      } catch (const std::exception& e) {
        spdlog::warn("history: hourly rollup failed, will retry: {}", e.what());
        std::lock_guard lock(mu_);
        ++stats_.write_errors;
      }
    }
    if (stopping) {
      std::lock_guard lock(mu_);
      if (pending_.empty()) break;
      if (!stats_.ok) {
        // A failing disk does not hold up shutdown; what it could not take is counted.
        spdlog::error("history: {} minutes not written at shutdown (the last write failed)",
                      pending_.size());
        stats_.minutes_dropped += pending_.size();
        pending_.clear();
        stats_.pending = 0;
        break;
      }
    }
  }
}

void HistoryWriter::stop() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
  db_.reset();  // closing the last connection checkpoints the WAL into the database
  release_lock();
}

HistoryStats HistoryWriter::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

}  // namespace facility
