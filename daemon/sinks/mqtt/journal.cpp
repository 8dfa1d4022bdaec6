#include "daemon/sinks/mqtt/journal.h"

#include <sqlite3.h>

#include <stdexcept>

namespace facility {

namespace {

constexpr int kSchemaVersion = 1;

// Rolls a transaction back unless commit() was reached (an exception on the way out).
class Transaction {
 public:
  explicit Transaction(sqlite3* db) : db_(db) {}
  ~Transaction() {
    if (!done_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  void committed() { done_ = true; }

 private:
  sqlite3* db_;
  bool done_ = false;
};

}  // namespace

void MqttJournal::DbCloser::operator()(sqlite3* db) const { sqlite3_close_v2(db); }
void MqttJournal::StmtFinalizer::operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }

void MqttJournal::fail(const std::string& what) {
  throw std::runtime_error("mqtt outbox journal " + path_ + ": " + what + ": " +
                           (db_ ? sqlite3_errmsg(db_.get()) : "cannot open"));
}

void MqttJournal::exec(const char* sql) {
  if (sqlite3_exec(db_.get(), sql, nullptr, nullptr, nullptr) != SQLITE_OK)
    fail(std::string("\"") + sql + "\" failed");
}

MqttJournal::Stmt MqttJournal::prepare(const char* sql) {
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db_.get(), sql, -1, &s, nullptr) != SQLITE_OK) fail("prepare failed");
  return Stmt(s);
}

MqttJournal::MqttJournal(std::string path) : path_(std::move(path)) {
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(path_.c_str(), &db,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                                 nullptr);
  db_.reset(db);  // closed even when open failed
  if (rc != SQLITE_OK) fail("cannot open (does the state directory exist and is it writable?)");
  sqlite3_busy_timeout(db_.get(), 0);
  exec("PRAGMA locking_mode=EXCLUSIVE");
  // Takes the exclusive lock now: a second daemon on this file fails here, at start.
  if (sqlite3_exec(db_.get(), "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr) != SQLITE_OK)
    fail("cannot lock it (is another facilityd using this state directory?)");
  exec("COMMIT");
  exec("PRAGMA journal_mode=WAL");
  exec("PRAGMA synchronous=NORMAL");

  int version = 0;
  {
    Stmt v = prepare("PRAGMA user_version");
    if (sqlite3_step(v.get()) == SQLITE_ROW) version = sqlite3_column_int(v.get(), 0);
  }
  if (version > kSchemaVersion)
    fail("written by a newer facilityd (format " + std::to_string(version) + ")");
  exec(
      "CREATE TABLE IF NOT EXISTS outbox("
      " seq INTEGER PRIMARY KEY,"
      " site TEXT NOT NULL,"
      " topic TEXT NOT NULL,"
      " payload BLOB NOT NULL,"
      " class INTEGER NOT NULL,"
      " queued_ms INTEGER NOT NULL,"
      " expires INTEGER NOT NULL)");
  exec(("PRAGMA user_version=" + std::to_string(kSchemaVersion)).c_str());
  insert_ = prepare(
      "INSERT OR REPLACE INTO outbox(seq, site, topic, payload, class, queued_ms, expires) "
      "VALUES(?,?,?,?,?,?,?)");
  delete_ = prepare("DELETE FROM outbox WHERE seq=?");
}

MqttJournal::~MqttJournal() = default;

std::vector<OutboxMessage> MqttJournal::load() {
  std::vector<OutboxMessage> out;
  Stmt s = prepare(
      "SELECT seq, site, topic, payload, class, queued_ms, expires FROM outbox ORDER BY seq");
  int rc;
  while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
    OutboxMessage m;
    m.seq = static_cast<std::uint64_t>(sqlite3_column_int64(s.get(), 0));
    const auto text = [&](int col) {
      const auto* p = static_cast<const char*>(sqlite3_column_blob(s.get(), col));
      return std::string(p ? p : "", static_cast<std::size_t>(sqlite3_column_bytes(s.get(), col)));
    };
    m.site = text(1);
    m.topic = text(2);
    m.payload = text(3);
    m.cls = sqlite3_column_int(s.get(), 4) == 1 ? MqttClass::kEvent : MqttClass::kState;
    m.queued_ms = sqlite3_column_int64(s.get(), 5);
    m.expires = sqlite3_column_int(s.get(), 6) != 0;
    out.push_back(std::move(m));
  }
  if (rc != SQLITE_DONE) fail("reading failed");
  return out;
}

void MqttJournal::append(const std::vector<OutboxMessage>& msgs) {
  if (msgs.empty()) return;
  exec("BEGIN");
  Transaction tx(db_.get());
  sqlite3_stmt* s = insert_.get();
  for (const auto& m : msgs) {
    sqlite3_reset(s);
    sqlite3_bind_int64(s, 1, static_cast<sqlite3_int64>(m.seq));
    sqlite3_bind_text(s, 2, m.site.data(), static_cast<int>(m.site.size()), SQLITE_STATIC);
    sqlite3_bind_text(s, 3, m.topic.data(), static_cast<int>(m.topic.size()), SQLITE_STATIC);
    sqlite3_bind_blob(s, 4, m.payload.data(), static_cast<int>(m.payload.size()), SQLITE_STATIC);
    sqlite3_bind_int(s, 5, m.cls == MqttClass::kEvent ? 1 : 0);
    sqlite3_bind_int64(s, 6, m.queued_ms);
    sqlite3_bind_int(s, 7, m.expires ? 1 : 0);
    if (sqlite3_step(s) != SQLITE_DONE) {
      sqlite3_reset(s);
      fail("writing failed");
    }
  }
  sqlite3_reset(s);
  exec("COMMIT");
  tx.committed();
}

void MqttJournal::erase(const std::vector<std::uint64_t>& seqs) {
  if (seqs.empty()) return;
  exec("BEGIN");
  Transaction tx(db_.get());
  sqlite3_stmt* s = delete_.get();
  for (auto seq : seqs) {
    sqlite3_reset(s);
    sqlite3_bind_int64(s, 1, static_cast<sqlite3_int64>(seq));
    if (sqlite3_step(s) != SQLITE_DONE) {
      sqlite3_reset(s);
      fail("deleting failed");
    }
  }
  sqlite3_reset(s);
  exec("COMMIT");
  tx.committed();
}

std::uint64_t MqttJournal::count() {
  Stmt s = prepare("SELECT count(*) FROM outbox");
  if (sqlite3_step(s.get()) != SQLITE_ROW) fail("counting failed");
  return static_cast<std::uint64_t>(sqlite3_column_int64(s.get(), 0));
}

}  // namespace facility
