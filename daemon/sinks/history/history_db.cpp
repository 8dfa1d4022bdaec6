#include "daemon/sinks/history/history_db.h"

#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace facility {
namespace {

using history_detail::unix_s;

// A prepared statement (RAII). Binding is 1-based as in SQLite.
class Stmt {
 public:
  Stmt(sqlite3* db, const std::string& sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st_, nullptr) != SQLITE_OK) {
      throw std::runtime_error("SQL error: " + std::string(sqlite3_errmsg(db)) + " in: " + sql);
    }
  }
  ~Stmt() { sqlite3_finalize(st_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& bind(int i, double v) {
    // NaN is stored as NULL (unknown).
    if (std::isnan(v))
      sqlite3_bind_null(st_, i);
    else
      sqlite3_bind_double(st_, i, v);
    return *this;
  }
  Stmt& bind(int i, std::int64_t v) {
    sqlite3_bind_int64(st_, i, v);
    return *this;
  }
  Stmt& bind(int i, int v) { return bind(i, std::int64_t(v)); }
  Stmt& bind(int i, const std::string& v) {
    sqlite3_bind_text(st_, i, v.data(), int(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& bind_blob(int i, const std::string& v) {
    sqlite3_bind_blob(st_, i, v.data(), int(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  // true while there is a row.
  bool step() {
    const int rc = sqlite3_step(st_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    throw std::runtime_error(std::string("SQLite: ") + sqlite3_errmsg(db_));
  }
  void run() {
    step();
    reset();
  }
  void reset() {
    sqlite3_reset(st_);
    sqlite3_clear_bindings(st_);
  }
  double real(int c) const {
    return sqlite3_column_type(st_, c) == SQLITE_NULL ? kNaN : sqlite3_column_double(st_, c);
  }
  std::int64_t int64(int c) const { return sqlite3_column_int64(st_, c); }
  std::string text(int c) const {
    const auto* p = sqlite3_column_text(st_, c);
    return p ? std::string(reinterpret_cast<const char*>(p)) : std::string();
  }
  const void* blob(int c) const { return sqlite3_column_blob(st_, c); }
  std::size_t bytes(int c) const { return std::size_t(sqlite3_column_bytes(st_, c)); }

 private:
  sqlite3* db_;
  sqlite3_stmt* st_ = nullptr;
};

// The site tables' value columns, in one place for schema, insert and select.
struct RealCol {
  const char* name;
  double SiteInterval::*m;
};
struct IntCol {
  const char* name;
  int SiteInterval::*m;
};
const RealCol kRealCols[] = {
    {"samples_s", &SiteInterval::samples_s},   {"it_j", &SiteInterval::it_j},
    {"it_s", &SiteInterval::it_s},             {"fac_j", &SiteInterval::fac_j},
    {"fac_s", &SiteInterval::fac_s},           {"cool_j", &SiteInterval::cool_j},
    {"cool_s", &SiteInterval::cool_s},         {"pue_it_j", &SiteInterval::pue_it_j},
    {"pue_fac_j", &SiteInterval::pue_fac_j},   {"pue_s", &SiteInterval::pue_s},
    {"it_peak_w", &SiteInterval::it_peak_w},   {"cab_j", &SiteInterval::cab_j},
    {"cab_s", &SiteInterval::cab_s},           {"cab_peak_w", &SiteInterval::cab_peak_w},
    {"cab_known_s", &SiteInterval::cab_known_s}, {"cab_expected_s", &SiteInterval::cab_expected_s},
    {"cool_hr_min_w", &SiteInterval::cool_hr_min_w}, {"cool_hr_s", &SiteInterval::cool_hr_s},
};
const IntCol kIntCols[] = {
    {"cabinets_total", &SiteInterval::total},       {"powered", &SiteInterval::powered},
    {"sold", &SiteInterval::sold},                  {"internal", &SiteInterval::internal},
    {"free", &SiteInterval::free},                  {"powered_known", &SiteInterval::powered_known},
    {"powered_max", &SiteInterval::powered_max},    {"pue_category", &SiteInterval::pue_category},
};

std::string site_columns() {
  std::string s;
  for (const auto& c : kRealCols) s += std::string(", ") + c.name;
  for (const auto& c : kIntCols) s += std::string(", ") + c.name;
  return s;
}

const char* suffix(Resolution r) { return r == Resolution::kMinute ? "minute" : "hour"; }

std::string schema() {
  std::string site_cols;
  for (const auto& c : kRealCols) site_cols += std::string(", ") + c.name + " REAL";
  for (const auto& c : kIntCols) site_cols += std::string(", ") + c.name + " INTEGER";
  std::string sql =
      "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
      "CREATE TABLE IF NOT EXISTS layouts(id INTEGER PRIMARY KEY, site TEXT NOT NULL, "
      "digest TEXT NOT NULL UNIQUE, created INTEGER NOT NULL, cabinets TEXT NOT NULL);";
  for (const char* r : {"minute", "hour"}) {
    sql += std::string("CREATE TABLE IF NOT EXISTS site_") + r +
           "(site TEXT NOT NULL, t INTEGER NOT NULL" + site_cols +
           ", PRIMARY KEY(site, t)) WITHOUT ROWID;";
    sql += std::string("CREATE TABLE IF NOT EXISTS cabinet_") + r +
           "(site TEXT NOT NULL, t INTEGER NOT NULL, layout INTEGER NOT NULL, data BLOB NOT NULL, "
           "UNIQUE(site, t, layout));";
  }
  // Pruning (every hour) and rollup select rows by time over all sites: without these they
  // would scan the whole table (the primary keys start with the site).
  sql += "CREATE INDEX IF NOT EXISTS cabinet_minute_t ON cabinet_minute(t);"
         "CREATE INDEX IF NOT EXISTS site_minute_t ON site_minute(t);"
         "CREATE INDEX IF NOT EXISTS cabinet_hour_t ON cabinet_hour(t);";
  // The model's energy grid (daemon/model/energy.h): cumulative covered energy and lost
  // device-seconds (and of those, the ones the daemon did not run) per site, role and 10 s
  // point, to restore the PUE windows at start-up.
  // energy_series says which devices a role's rows count.
  sql += "CREATE TABLE IF NOT EXISTS energy_grid(site TEXT NOT NULL, role TEXT NOT NULL, "
         "t INTEGER NOT NULL, covered_j REAL NOT NULL, lost_s REAL NOT NULL, "
         "down_s REAL NOT NULL, PRIMARY KEY(site, role, t)) WITHOUT ROWID;"
         "CREATE TABLE IF NOT EXISTS energy_series(site TEXT NOT NULL, role TEXT NOT NULL, "
         "members TEXT NOT NULL, PRIMARY KEY(site, role)) WITHOUT ROWID;";
  sql += "INSERT OR IGNORE INTO meta(key, value) VALUES('schema_version', '1');";
  return sql;
}

SiteInterval read_site_row(const Stmt& st, int first) {
  SiteInterval s;
  int c = first;
  for (const auto& col : kRealCols) s.*col.m = st.real(c++);
  for (const auto& col : kIntCols) s.*col.m = int(st.int64(c++));
  // Sums stored as NULL (never NaN) are zero; only peaks and minima keep NaN.
  for (double* v : {&s.samples_s, &s.it_j, &s.it_s, &s.fac_j, &s.fac_s, &s.cool_j, &s.cool_s,
                    &s.pue_it_j, &s.pue_fac_j, &s.pue_s, &s.cab_j, &s.cab_s, &s.cab_known_s,
                    &s.cab_expected_s, &s.cool_hr_s}) {
    if (std::isnan(*v)) *v = 0;
  }
  return s;
}

}  // namespace

void HistoryDb::fail(const std::string& what) const {
  throw std::runtime_error("history " + path_ + ": " + what + ": " + sqlite3_errmsg(db_));
}

std::unique_ptr<HistoryDb> HistoryDb::open_writer(const std::string& path) {
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                                       SQLITE_OPEN_NOMUTEX, nullptr);
  std::unique_ptr<HistoryDb> h(new HistoryDb(db, path));
  if (rc != SQLITE_OK) h->fail("cannot open for writing (does the directory exist and is it writable?)");
  sqlite3_busy_timeout(db, 10000);
  // WAL: readers (reports) never block the writer; synchronous=NORMAL in WAL mode cannot
  // corrupt the database on a crash or power cut, it can only lose the last transactions.
  h->exec("PRAGMA journal_mode=WAL;");
  h->exec("PRAGMA synchronous=NORMAL;");
  h->exec(schema());
  return h;
}

std::unique_ptr<HistoryDb> HistoryDb::open_reader(const std::string& path) {
  if (!std::filesystem::exists(path)) {
    throw std::runtime_error("history " + path +
                             ": no such file (is history enabled, and has facilityd run with "
                             "this daemon.state_dir?)");
  }
  sqlite3* db = nullptr;
  const int rc =
      sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr);
  std::unique_ptr<HistoryDb> h(new HistoryDb(db, path));
  if (rc != SQLITE_OK) h->fail("cannot open for reading");
  sqlite3_busy_timeout(db, 10000);
  return h;
}

HistoryDb::~HistoryDb() { sqlite3_close_v2(db_); }

void HistoryDb::exec(const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    throw std::runtime_error("history " + path_ + ": " + msg);
  }
}

std::int64_t HistoryDb::layout_id(const std::string& site, const std::vector<LayoutCabinet>& cabs) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& c : cabs) {
    j.push_back({{"id", c.id}, {"room", c.room}, {"rated_w", c.rated_w}, {"status", c.status}});
  }
  const std::string text = j.dump();
  const std::string digest = site + ":" + std::to_string(std::hash<std::string>{}(text)) + ":" +
                             std::to_string(text.size());
  {
    Stmt q(db_, "SELECT id, cabinets FROM layouts WHERE digest = ?");
    q.bind(1, digest);
    if (q.step() && q.text(1) == text) return q.int64(0);
  }
  Stmt ins(db_, "INSERT OR REPLACE INTO layouts(site, digest, created, cabinets) VALUES(?,?,?,?)");
  ins.bind(1, site).bind(2, digest).bind(3, std::int64_t(unix_s(Clock::now()))).bind(4, text);
  ins.run();
  return sqlite3_last_insert_rowid(db_);
}

std::map<std::int64_t, Layout> HistoryDb::layouts(const std::string& site) {
  std::map<std::int64_t, Layout> out;
  Stmt q(db_, "SELECT id, cabinets FROM layouts WHERE site = ? ORDER BY id");
  q.bind(1, site);
  while (q.step()) {
    Layout l;
    l.id = q.int64(0);
    l.site = site;
    for (const auto& c : nlohmann::json::parse(q.text(1))) {
      l.cabinets.push_back({c.at("id").get<std::string>(), c.at("room").get<std::string>(),
                            c.at("rated_w").get<double>(), c.at("status").get<std::string>()});
    }
    out.emplace(l.id, std::move(l));
  }
  return out;
}

void HistoryDb::write_row(Resolution r, const std::string& site, std::int64_t t,
                          std::int64_t layout, const SiteInterval& s,
                          const std::vector<CabinetInterval>& cabs) {
  const std::string res = suffix(r);
  const std::string cols = site_columns();
  SiteInterval merged = s;
  {
    Stmt q(db_, "SELECT site, t" + cols + " FROM site_" + res + " WHERE site = ? AND t = ?");
    q.bind(1, site).bind(2, t);
    if (q.step()) {
      merged = read_site_row(q, 2);
      merged.merge(s);
    }
  }
  std::string marks;
  for (std::size_t i = 0; i < std::size(kRealCols) + std::size(kIntCols); ++i) marks += ",?";
  Stmt ins(db_, "INSERT OR REPLACE INTO site_" + res + "(site, t" + cols + ") VALUES(?,?" +
                    marks + ")");
  ins.bind(1, site).bind(2, t);
  int i = 3;
  for (const auto& c : kRealCols) ins.bind(i++, merged.*c.m);
  for (const auto& c : kIntCols) ins.bind(i++, merged.*c.m);
  ins.run();

  std::vector<CabinetInterval> mc = cabs;
  {
    Stmt q(db_, "SELECT data FROM cabinet_" + res + " WHERE site = ? AND t = ? AND layout = ?");
    q.bind(1, site).bind(2, t).bind(3, layout);
    if (q.step()) {
      auto old = decode_cabinets(q.blob(0), q.bytes(0));
      if (old.size() == mc.size()) {
        for (std::size_t k = 0; k < mc.size(); ++k) {
          old[k].merge(mc[k]);
        }
        mc = std::move(old);
      }
    }
  }
  Stmt cins(db_, "INSERT OR REPLACE INTO cabinet_" + res +
                     "(site, t, layout, data) VALUES(?,?,?,?)");
  cins.bind(1, site).bind(2, t).bind(3, layout).bind_blob(4, encode_cabinets(mc));
  cins.run();
  if (r == Resolution::kHour && t + 3600 > rolled_up_to()) {
    // An hour written directly is complete by definition.
    Stmt m(db_, "INSERT OR REPLACE INTO meta(key, value) VALUES('rolled_up_to', ?)");
    m.bind(1, std::to_string(t + 3600));
    m.run();
  }
}

void HistoryDb::write_minutes(const std::vector<MinuteRecord>& minutes,
                              const std::vector<std::int64_t>& layout_by_site_index) {
  exec("BEGIN IMMEDIATE;");
  try {
    const std::int64_t rolled = rolled_up_to();
    for (const auto& m : minutes) {
      const std::int64_t layout = layout_by_site_index.at(m.site_index);
      write_row(Resolution::kMinute, m.site, m.t, layout, m.site_data, m.cabinets);
      // A minute that arrives after its hour was rolled up (the hour's last minute completes
      // only on the first model cycle of the next hour; a write can fail and be retried) is
      // merged into that hour as well: rollup never looks below rolled_up_to again, and
      // hourly reads take hours below it from the hour table only. Merging is additive.
      if (m.t < rolled) {
        write_row(Resolution::kHour, m.site, m.t / 3600 * 3600, layout, m.site_data,
                  m.cabinets);
      }
      for (const auto& e : m.energy) write_energy(m.site, e);
    }
    exec("COMMIT;");
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK;", nullptr, nullptr, nullptr);
    throw;
  }
}

void HistoryDb::write_energy(const std::string& site, const EnergyRows& rows) {
  // Rows of another set of devices sum different meters: they are dropped, never continued.
  if (energy_members(site, rows.role) != rows.members) {
    Stmt del(db_, "DELETE FROM energy_grid WHERE site = ? AND role = ?");
    del.bind(1, site).bind(2, rows.role);
    del.run();
    Stmt set(db_, "INSERT OR REPLACE INTO energy_series(site, role, members) VALUES(?, ?, ?)");
    set.bind(1, site).bind(2, rows.role).bind(3, rows.members);
    set.run();
  }
  Stmt ins(db_, "INSERT OR REPLACE INTO energy_grid(site, role, t, covered_j, lost_s, down_s) "
                "VALUES(?, ?, ?, ?, ?, ?)");
  for (const auto& p : rows.points) {
    ins.bind(1, site)
        .bind(2, rows.role)
        .bind(3, std::int64_t(std::llround(unix_s(p.t))))
        .bind(4, p.covered_j)
        .bind(5, p.lost_s)
        .bind(6, p.down_s);
    ins.run();
  }
}

std::optional<std::string> HistoryDb::energy_members(const std::string& site,
                                                     const std::string& role) {
  Stmt q(db_, "SELECT members FROM energy_series WHERE site = ? AND role = ?");
  q.bind(1, site).bind(2, role);
  if (!q.step()) return std::nullopt;
  return q.text(0);
}

std::vector<EnergyGridPoint> HistoryDb::read_energy(const std::string& site,
                                                    const std::string& role, std::int64_t from) {
  std::vector<EnergyGridPoint> out;
  Stmt q(db_, "SELECT t, covered_j, lost_s, down_s FROM energy_grid WHERE site = ? AND "
              "role = ? AND t >= ? ORDER BY t");
  q.bind(1, site).bind(2, role).bind(3, from);
  while (q.step()) {
    out.push_back({TimePoint(std::chrono::seconds(q.int64(0))), q.real(1), q.real(2), q.real(3)});
  }
  return out;
}

void HistoryDb::prune_energy(std::int64_t now, std::int64_t longest_window_s) {
  // Every 10 s point of the last 25 h (plus a margin), and the 5-minute points of the longest
  // window: what EnergySeries keeps in memory.
  constexpr std::int64_t kMargin = 600;
  const std::int64_t fine_cut = now - 25 * 3600 - kMargin;
  const std::int64_t coarse_cut = now - longest_window_s - kMargin;
  Stmt d(db_, "DELETE FROM energy_grid WHERE t < ? AND (t % 300 != 0 OR t < ?)");
  d.bind(1, fine_cut).bind(2, coarse_cut);
  d.run();
}

std::int64_t HistoryDb::rolled_up_to() {
  Stmt q(db_, "SELECT value FROM meta WHERE key = 'rolled_up_to'");
  return q.step() ? std::stoll(q.text(0)) : 0;
}

int HistoryDb::rollup(std::int64_t now) {
  const std::int64_t end = now / 3600 * 3600;  // the current hour is not complete
  std::int64_t start = rolled_up_to();
  std::vector<std::int64_t> hours;
  {
    Stmt q(db_, "SELECT DISTINCT t / 3600 * 3600 FROM site_minute WHERE t >= ? AND t < ? ORDER BY 1");
    q.bind(1, start).bind(2, end);
    while (q.step()) hours.push_back(q.int64(0));
  }
  if (end <= start) return 0;
  exec("BEGIN IMMEDIATE;");
  try {
    for (const std::int64_t h : hours) {
      std::map<std::string, SiteInterval> sites;
      {
        Stmt q(db_, "SELECT site, t" + site_columns() +
                        " FROM site_minute WHERE t >= ? AND t < ? ORDER BY site, t");
        q.bind(1, h).bind(2, h + 3600);
        while (q.step()) sites[q.text(0)].merge(read_site_row(q, 2));
      }
      std::map<std::pair<std::string, std::int64_t>, std::vector<CabinetInterval>> cabs;
      {
        Stmt q(db_, "SELECT site, layout, data FROM cabinet_minute WHERE t >= ? AND t < ? "
                    "ORDER BY site, layout, t");
        q.bind(1, h).bind(2, h + 3600);
        while (q.step()) {
          auto v = decode_cabinets(q.blob(2), q.bytes(2));
          auto& acc = cabs[{q.text(0), q.int64(1)}];
          if (acc.empty()) acc.resize(v.size());
          for (std::size_t k = 0; k < std::min(acc.size(), v.size()); ++k) acc[k].merge(v[k]);
        }
      }
      for (const auto& [site, s] : sites) {
        Stmt del(db_, "DELETE FROM site_hour WHERE site = ? AND t = ?");
        del.bind(1, site).bind(2, h);
        del.run();
        Stmt delc(db_, "DELETE FROM cabinet_hour WHERE site = ? AND t = ?");
        delc.bind(1, site).bind(2, h);
        delc.run();
      }
      for (const auto& [site, s] : sites) {
        std::vector<CabinetInterval> none;
        bool wrote_site = false;
        for (const auto& [key, v] : cabs) {
          if (key.first != site) continue;
          // The site row once; cabinet rows per layout.
          write_row(Resolution::kHour, site, h, key.second, wrote_site ? SiteInterval{} : s, v);
          wrote_site = true;
        }
        if (!wrote_site) write_row(Resolution::kHour, site, h, 0, s, none);
      }
    }
    Stmt m(db_, "INSERT OR REPLACE INTO meta(key, value) VALUES('rolled_up_to', ?)");
    m.bind(1, std::to_string(std::max(end, start)));
    m.run();
    exec("COMMIT;");
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK;", nullptr, nullptr, nullptr);
    throw;
  }
  return int(hours.size());
}

void HistoryDb::prune(std::int64_t now, const HistorySettings& h) {
  using std::chrono::duration_cast;
  using std::chrono::seconds;
  const std::int64_t minute_cut =
      std::min(now - duration_cast<seconds>(h.minute_retention).count(), rolled_up_to());
  const std::int64_t hour_cut = now - duration_cast<seconds>(h.hourly_retention).count();
  for (const char* t : {"site_minute", "cabinet_minute"}) {
    Stmt d(db_, std::string("DELETE FROM ") + t + " WHERE t < ?");
    d.bind(1, minute_cut);
    d.run();
  }
  for (const char* t : {"site_hour", "cabinet_hour"}) {
    Stmt d(db_, std::string("DELETE FROM ") + t + " WHERE t < ?");
    d.bind(1, hour_cut);
    d.run();
  }
}

std::optional<std::pair<std::int64_t, std::int64_t>> HistoryDb::extent(Resolution r,
                                                                      const std::string& site) {
  Stmt q(db_, std::string("SELECT MIN(t), MAX(t) FROM site_") + suffix(r) + " WHERE site = ?");
  q.bind(1, site);
  if (!q.step() || std::isnan(q.real(0))) return std::nullopt;
  return std::make_pair(q.int64(0), q.int64(1));
}

void HistoryDb::read_sites(Resolution r, const std::string& site, std::int64_t from,
                           std::int64_t to,
                           const std::function<void(std::int64_t, const SiteInterval&)>& fn) {
  const std::string cols = site_columns();
  if (r == Resolution::kMinute) {
    Stmt q(db_, "SELECT site, t" + cols + " FROM site_minute WHERE site = ? AND t >= ? AND t < ? ORDER BY t");
    q.bind(1, site).bind(2, from).bind(3, to);
    while (q.step()) fn(q.int64(1), read_site_row(q, 2));
    return;
  }
  const std::int64_t rolled = rolled_up_to();
  {
    Stmt q(db_, "SELECT site, t" + cols +
                    " FROM site_hour WHERE site = ? AND t >= ? AND t < ? AND t < ? ORDER BY t");
    q.bind(1, site).bind(2, from).bind(3, to).bind(4, rolled);
    while (q.step()) fn(q.int64(1), read_site_row(q, 2));
  }
  Stmt q(db_, "SELECT site, t" + cols + " FROM site_minute WHERE site = ? AND t >= ? AND t < ? ORDER BY t");
  q.bind(1, site).bind(2, std::max(from, rolled)).bind(3, to);
  std::optional<std::int64_t> hour;
  SiteInterval acc;
  while (q.step()) {
    const std::int64_t h = q.int64(1) / 3600 * 3600;
    if (hour && *hour != h) {
      fn(*hour, acc);
      acc = SiteInterval{};
    }
    hour = h;
    acc.merge(read_site_row(q, 2));
  }
  if (hour) fn(*hour, acc);
}

void HistoryDb::read_cabinets(
    Resolution r, const std::string& site, std::int64_t from, std::int64_t to,
    const std::function<void(std::int64_t, std::int64_t, const std::vector<CabinetInterval>&)>&
        fn) {
  const char* order = " ORDER BY t, layout";
  if (r == Resolution::kMinute) {
    Stmt q(db_, std::string("SELECT t, layout, data FROM cabinet_minute WHERE site = ? AND t >= ? "
                            "AND t < ?") + order);
    q.bind(1, site).bind(2, from).bind(3, to);
    while (q.step()) fn(q.int64(0), q.int64(1), decode_cabinets(q.blob(2), q.bytes(2)));
    return;
  }
  const std::int64_t rolled = rolled_up_to();
  {
    Stmt q(db_, std::string("SELECT t, layout, data FROM cabinet_hour WHERE site = ? AND t >= ? "
                            "AND t < ? AND t < ?") + order);
    q.bind(1, site).bind(2, from).bind(3, to).bind(4, rolled);
    while (q.step()) fn(q.int64(0), q.int64(1), decode_cabinets(q.blob(2), q.bytes(2)));
  }
  Stmt q(db_, std::string("SELECT t, layout, data FROM cabinet_minute WHERE site = ? AND t >= ? "
                          "AND t < ?") + order);
  q.bind(1, site).bind(2, std::max(from, rolled)).bind(3, to);
  std::optional<std::int64_t> hour;
  std::map<std::int64_t, std::vector<CabinetInterval>> acc;  // by layout
  auto emit = [&] {
    for (const auto& [layout, v] : acc) fn(*hour, layout, v);
    acc.clear();
  };
  while (q.step()) {
    const std::int64_t h = q.int64(0) / 3600 * 3600;
    if (hour && *hour != h) emit();
    hour = h;
    auto v = decode_cabinets(q.blob(2), q.bytes(2));
    auto& a = acc[q.int64(1)];
    if (a.empty()) a.resize(v.size());
    for (std::size_t k = 0; k < std::min(a.size(), v.size()); ++k) a[k].merge(v[k]);
  }
  if (hour) emit();
}

std::int64_t HistoryDb::count_rows(Resolution r, const std::string& site, std::int64_t from,
                                   std::int64_t to) {
  Stmt q(db_, std::string("SELECT COUNT(*) FROM cabinet_") + suffix(r) +
                  " WHERE site = ? AND t >= ? AND t < ?");
  q.bind(1, site).bind(2, from).bind(3, to);
  q.step();
  std::int64_t n = q.int64(0);
  if (r == Resolution::kHour) n += count_rows(Resolution::kMinute, site, std::max(from, rolled_up_to()), to);
  return n;
}

}  // namespace facility
