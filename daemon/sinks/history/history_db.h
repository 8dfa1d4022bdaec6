// HistoryDb: one SQLite connection to the history with its schema and its read and write
// queries (daemon/sinks/history/history.h has the whole picture).
//
// Thread-safety: none; one thread per HistoryDb (WAL: a reader and the writer do not block
// each other).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "daemon/config/config.h"
#include "daemon/sinks/history/records.h"

struct sqlite3;

namespace facility {

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
  // Energy grid points of one role of a site (in write_minutes' transaction). Rows stored for
  // another set of devices (EnergyRows::members) are deleted first.
  void write_energy(const std::string& site, const EnergyRows& rows);
  // The devices whose energy the stored rows of a role count; nullopt when none are stored.
  std::optional<std::string> energy_members(const std::string& site, const std::string& role);
  // The stored grid points of a role from `from` (unix seconds) on, oldest first.
  std::vector<EnergyGridPoint> read_energy(const std::string& site, const std::string& role,
                                           std::int64_t from);
  // Deletes grid points no window needs: older than 25 h except every 5-minute point within
  // the longest window.
  void prune_energy(std::int64_t now, std::int64_t longest_window_s);
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
  void read_cabinets(Resolution r, const std::string& site, std::int64_t from, std::int64_t to,
                     const std::function<void(std::int64_t t, std::int64_t layout,
                                              const std::vector<CabinetInterval>&)>& fn);
  std::int64_t count_rows(Resolution r, const std::string& site, std::int64_t from,
                          std::int64_t to);

  void exec(const std::string& sql);
  sqlite3* handle() { return db_; }  // for statements of a caller (include <sqlite3.h>)

 private:
  explicit HistoryDb(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  [[noreturn]] void fail(const std::string& what) const;
  sqlite3* db_;
  std::string path_;
};

}  // namespace facility
