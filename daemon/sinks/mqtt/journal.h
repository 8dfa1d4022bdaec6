// Disk copy of the MQTT outbox (mqtt.outbox.persist): <daemon.state_dir>/mqtt-outbox.sqlite.
//
// Why SQLite rather than an append-only file of our own: a batch of messages is written in one
// transaction, so a crash leaves either all of it or none (no torn records, no checksums or
// recovery code of ours); acknowledged messages are deleted in place (no compaction pass); WAL
// mode makes a batch one sequential append plus an fsync at checkpoints; and the SQLite history
// (daemon/sinks/history/history.h) lives in the same state directory with the same library. The cost is one
// row per message, measured in bench/RESULTS.md.
//
// Durability: synchronous=NORMAL in WAL mode - a crash or SIGKILL of facilityd loses nothing
// committed; a power cut may lose the last transactions. The file is opened in exclusive locking
// mode, so a second facilityd on the same state directory fails at start instead of sending the
// same messages twice.
//
// Thread-safety: not thread-safe; used by one thread at a time (the publisher's worker, then
// stop() after the worker has ended).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "daemon/sinks/mqtt/outbox.h"

struct sqlite3;
struct sqlite3_stmt;

namespace facility {

class MqttJournal {
 public:
  // Opens or creates the file. Throws std::runtime_error naming the path and the cause (the
  // directory is missing or not writable, another process holds it, it is not our format).
  explicit MqttJournal(std::string path);
  ~MqttJournal();
  MqttJournal(const MqttJournal&) = delete;
  MqttJournal& operator=(const MqttJournal&) = delete;

  // Every stored message, in seq order.
  std::vector<OutboxMessage> load();
  // One transaction each. Throw std::runtime_error on failure (disk full, I/O error).
  void append(const std::vector<OutboxMessage>& msgs);
  void erase(const std::vector<std::uint64_t>& seqs);
  std::uint64_t count();

  const std::string& path() const { return path_; }

 private:
  struct DbCloser {
    void operator()(sqlite3* db) const;
  };
  struct StmtFinalizer {
    void operator()(sqlite3_stmt* s) const;
  };
  using Stmt = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

  void exec(const char* sql);
  Stmt prepare(const char* sql);
  [[noreturn]] void fail(const std::string& what);

  std::string path_;
  std::unique_ptr<sqlite3, DbCloser> db_;
  Stmt insert_, delete_;
};

}  // namespace facility
