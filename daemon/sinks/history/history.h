// The embedded history: per cabinet and per minute average and peak power (and the seconds
// powered, overloaded, at negative failover headroom), per site and per minute IT, facility and
// cooling energy, cabinet counts and coverage, kept in SQLite (WAL) in the daemon's state
// directory, with hourly rollups kept much longer than the minutes. Capacity reports
// (daemon/reports/report.h) read it. docs/reports.md describes the schema and what each figure means.
//
// Three pieces:
//   * HistoryRecorder folds each model snapshot into the minute in progress. It runs on the
//     model thread and is cheap (a few additions per cabinet); it never touches the disk.
//   * HistoryWriter owns a thread and a SQLite connection: completed minutes are handed to it
//     and written in one transaction per flush interval; it rolls complete hours up and prunes
//     old rows. When the disk is slow or failing, completed minutes wait in memory up to
//     `history.max_pending`; beyond that the oldest are dropped and counted.
//   * HistoryDb is one SQLite connection with the schema and the read and write queries. A
//     report opens its own read-only connection: with WAL, readers and the writer do not block
//     each other.
//
// Energy in the history is the model's power integrated over its cycles (power x the time
// since the previous cycle, at most kMaxSampleGap), counted only while the value is known; the
// seconds known are stored next to it, so every figure carries its coverage.
#pragma once

#include <sqlite3.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "daemon/config/config.h"
#include "daemon/model/model.h"

namespace facility {

inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// One cabinet over one interval (a minute or an hour).
struct CabinetInterval {
  double energy_ws = 0;  // power x seconds, over the seconds whose power is known
  double known_s = 0;    // seconds whose power is known
  double peak_w = kNaN;  // highest model value seen
  double powered_s = 0;  // seconds counted as powered
  double overload_s = 0;  // seconds in overload state warning or critical
  int overload_starts = 0;  // transitions from ok to warning/critical (incidents)
  double failover_min_w = kNaN;  // lowest failover headroom seen (worst feed or phase)
  double failover_neg_s = 0;     // seconds with negative failover headroom

  double avg_w() const { return known_s > 0 ? energy_ws / known_s : kNaN; }
  void merge(const CabinetInterval& o);
};

// One site over one interval.
struct SiteInterval {
  double samples_s = 0;  // seconds covered by model cycles (the daemon was running)
  double it_j = 0, it_s = 0;    // IT energy (the site's primary IT term) and seconds known
  double fac_j = 0, fac_s = 0;  // facility energy
  double cool_j = 0, cool_s = 0;  // cooling energy (cooling meters)
  double pue_it_j = 0, pue_fac_j = 0, pue_s = 0;  // both terms known at the same time
  double it_peak_w = kNaN;
  // Sum of the cabinets' power, only while every cabinet's power is known (the capacity term).
  double cab_j = 0, cab_s = 0, cab_peak_w = kNaN;
  double cab_known_s = 0;     // cabinet-seconds whose power is known
  double cab_expected_s = 0;  // cabinets x seconds covered
  // Cabinet counts at the end of the interval (the last cycle).
  int total = 0, powered = 0, sold = 0, internal = 0, free = 0, powered_known = 0;
  int powered_max = 0;  // most cabinets powered at once
  // Worst room's N+1 cooling headroom (capacity without the largest running unit - IT heat).
  double cool_hr_min_w = kNaN, cool_hr_s = 0;
  int pue_category = 0;

  void merge(const SiteInterval& later);
};

// A site's cabinets in the order of the rows that refer to it; stored once per distinct list.
struct LayoutCabinet {
  std::string id, room;
  double rated_w = 0;
  std::string status;  // free | sold | internal
};
struct Layout {
  std::int64_t id = 0;
  std::string site;
  std::vector<LayoutCabinet> cabinets;
};
std::vector<LayoutCabinet> layout_of(const Site& site);

// One completed (or, at shutdown, partial) minute of one site.
struct MinuteRecord {
  std::string site;
  std::int64_t t = 0;         // unix seconds of the minute's start
  std::size_t site_index = 0;  // index in Config::sites (the writer maps it to a layout)
  SiteInterval site_data;
  std::vector<CabinetInterval> cabinets;  // in Site::cabinets order
};

enum class Resolution { kMinute = 60, kHour = 3600 };

// Cabinet blob: version byte 1, u32 count, then per cabinet 22 bytes little-endian:
// f32 avg_w, f32 peak_w, u16 known_s, u16 powered_s, u16 overload_s, u16 overload_starts,
// f32 failover_min_w, u16 failover_neg_s (NaN = unknown).
std::string encode_cabinets(const std::vector<CabinetInterval>& cabs);
std::vector<CabinetInterval> decode_cabinets(const void* data, std::size_t size);

// Owns one sqlite3 connection (RAII). Not thread-safe: one thread per HistoryDb.
class HistoryDb {
 public:
  // Opens (creating the file and schema) for writing, in WAL mode. Throws std::runtime_error
  // with the path and SQLite's message.
  static std::unique_ptr<HistoryDb> open_writer(const std::string& path);
  // Opens an existing history read-only. Throws if it does not exist.
  static std::unique_ptr<HistoryDb> open_reader(const std::string& path);
  ~HistoryDb();
  HistoryDb(const HistoryDb&) = delete;
  HistoryDb& operator=(const HistoryDb&) = delete;

  // The id of this exact cabinet list for the site, inserting it if new.
  std::int64_t layout_id(const std::string& site, const std::vector<LayoutCabinet>& cabs);
  std::map<std::int64_t, Layout> layouts(const std::string& site);

  // Writes minutes in one transaction. A row that exists already (a restart within the same
  // minute) is merged with the new data, not replaced.
  void write_minutes(const std::vector<MinuteRecord>& minutes,
                     const std::vector<std::int64_t>& layout_by_site_index);
  // Writes one row at a resolution directly (rollup, tests, benchmarks); merges like above.
  void write_row(Resolution r, const std::string& site, std::int64_t t, std::int64_t layout,
                 const SiteInterval& s, const std::vector<CabinetInterval>& cabs);
  // Rolls every complete hour before `now` that is not rolled up yet; returns how many hours.
  int rollup(std::int64_t now);
  // Deletes minutes older than now - minute_retention (only hours already rolled up) and hours
  // older than now - hourly_retention.
  void prune(std::int64_t now, const HistorySettings& h);
  // Hours before this are in the hourly tables (unix seconds, a multiple of 3600).
  std::int64_t rolled_up_to();

  // Oldest and newest row of a site at a resolution.
  std::optional<std::pair<std::int64_t, std::int64_t>> extent(Resolution r,
                                                              const std::string& site);
  // Rows of [from, to), oldest first. At kHour, hours not rolled up yet are aggregated from
  // their minutes on the fly, so the hourly view always reaches the present.
  void read_sites(Resolution r, const std::string& site, std::int64_t from, std::int64_t to,
                  const std::function<void(std::int64_t t, const SiteInterval&)>& fn);
  void read_cabinets(
      Resolution r, const std::string& site, std::int64_t from, std::int64_t to,
      const std::function<void(std::int64_t t, std::int64_t layout,
                                const std::vector<CabinetInterval>&)>& fn);
  std::int64_t count_rows(Resolution r, const std::string& site, std::int64_t from,
                          std::int64_t to);

  void exec(const std::string& sql);
  sqlite3* handle() { return db_; }

 private:
  explicit HistoryDb(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  [[noreturn]] void fail(const std::string& what) const;
  sqlite3* db_;
  std::string path_;
};

// Folds snapshots into minutes. Runs on the model thread; not thread-safe.
class HistoryRecorder {
 public:
  static constexpr double kMaxSampleGap = 5.0;  // seconds one cycle may stand for at most

  explicit HistoryRecorder(std::shared_ptr<const Config> config);
  // Adds one snapshot; returns the minutes it completed (those before the snapshot's minute).
  std::vector<MinuteRecord> add(const FacilitySnapshot& snap);
  // The minutes in progress (partial), e.g. at shutdown.
  std::vector<MinuteRecord> flush();

 private:
  struct SiteState {
    std::optional<MinuteRecord> current;
    std::vector<int> last_overload;  // previous overload state per cabinet
  };
  std::shared_ptr<const Config> config_;
  std::vector<SiteState> sites_;
  std::optional<TimePoint> last_;
};

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
