// HistoryWriter: the history's thread, writing completed minutes to the database
// (daemon/sinks/history/history.h has the whole picture).
//
// Thread-safety: submit() and stats() from any thread; start()/stop() from the owner.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "daemon/config/config.h"
#include "daemon/sinks/history/history_db.h"
#include "daemon/sinks/history/records.h"

namespace facility {

struct HistoryStats {
  std::uint64_t minutes_written = 0;
  std::uint64_t minutes_dropped = 0;  // pending too long (disk slow or failing)
  std::uint64_t write_errors = 0;
  std::uint64_t pending = 0;
  double last_write_unix = 0;
  double last_write_duration_s = 0;
  std::uint64_t db_bytes = 0;
  bool ok = false;  // the last write succeeded
};

// The writer thread. start() opens the database (throws std::runtime_error if it cannot, or
// if another process already writes it: rows are merged, so two writers would double every
// figure; the guard is an flock on <path>.lock, released when the writer stops or the process
// dies); submit() never blocks on disk. Thread-safety: submit() and stats() from any thread;
// start()/stop() from the owner.
class HistoryWriter {
 public:
  HistoryWriter(std::shared_ptr<const Config> config, std::string path);
  ~HistoryWriter();
  HistoryWriter(const HistoryWriter&) = delete;
  HistoryWriter& operator=(const HistoryWriter&) = delete;

  void start();
  void submit(std::vector<MinuteRecord> minutes);
  // Writes everything pending, then stops the thread.
  void stop();
  HistoryStats stats() const;
  const std::string& path() const { return path_; }

 private:
  void run();
  void open_db();
  void release_lock();
  void write_pending(std::deque<MinuteRecord>& batch);

  std::shared_ptr<const Config> config_;
  std::string path_;
  std::unique_ptr<HistoryDb> db_;  // used by the writer thread only, after start()
  std::vector<std::int64_t> layouts_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<MinuteRecord> pending_;
  std::size_t in_flight_ = 0;  // the batch being written; still counted as pending
  bool stopping_ = false;
  int lock_fd_ = -1;  // flock held from start() to stop()
  HistoryStats stats_;
  std::thread thread_;
  std::int64_t last_maintenance_hour_ = 0;
};

// <state_dir>/history.sqlite
std::string history_path(const Config& cfg);

}  // namespace facility
