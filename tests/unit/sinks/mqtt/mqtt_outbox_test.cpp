// The bounded outbox and its disk journal, without a broker: the drop policy (oldest state
// first, alert events never), per-topic order with one message in flight per topic, re-queuing
// on a lost connection, late callbacks, expiry, accounting, and the SQLite journal.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <filesystem>
#include <numeric>

#include "daemon/sinks/mqtt/journal.h"
#include "daemon/sinks/mqtt/outbox.h"
#include "test_util.h"

namespace facility {
namespace {

using testing::TempDir;

struct Maker {
  MqttOutbox& box;
  std::int64_t now = 1'000'000;
  OutboxMessage make(const std::string& topic, const std::string& payload,
                     MqttClass cls = MqttClass::kState, const std::string& site = "s1") {
    OutboxMessage m;
    m.seq = box.reserve_seqs(1);
    m.site = site;
    m.topic = topic;
    m.payload = payload;
    m.cls = cls;
    m.queued_ms = now;
    m.expires = cls == MqttClass::kState;
    return m;
  }
  void push(const std::string& topic, const std::string& payload,
            MqttClass cls = MqttClass::kState, const std::string& site = "s1") {
    std::vector<OutboxMessage> v;
    v.push_back(make(topic, payload, cls, site));
    box.push(std::move(v));
  }
};

std::uint64_t dropped(const MqttOutbox::Stats& s, MqttDropReason r) {
  return s.dropped_total[static_cast<std::size_t>(r)];
}

void expect_accounted(const MqttOutbox::Stats& s) {
  const auto drops = std::accumulate(s.dropped_total.begin(), s.dropped_total.end(),
                                     std::uint64_t{0});
  EXPECT_EQ(s.queued_total, s.messages + s.delivered_total + drops);
}

std::vector<std::string> payloads(const std::vector<MqttOutbox::Send>& sends) {
  std::vector<std::string> out;
  for (const auto& s : sends) out.push_back(s.payload);
  return out;
}

TEST(MqttOutbox, SendsOldestFirstOnePerTopicInFlight) {
  MqttOutbox box({100, 1 << 20, 0}, {"s1"});
  Maker m{box};
  m.push("a", "a1");
  m.push("b", "b1");
  m.push("a", "a2");
  m.push("c", "c1");
  m.push("a", "a3");
  // a2 and a3 wait for a1: a topic never has two messages in flight.
  auto first = box.take("s1", 10, m.now);
  EXPECT_EQ(payloads(first), (std::vector<std::string>{"a1", "b1", "c1"}));
  EXPECT_TRUE(box.take("s1", 10, m.now).empty());
  box.acked(first[0].send_id);
  auto second = box.take("s1", 10, m.now);
  EXPECT_EQ(payloads(second), (std::vector<std::string>{"a2"}));
  box.acked(second[0].send_id);
  box.acked(first[1].send_id);
  box.acked(first[2].send_id);
  EXPECT_EQ(payloads(box.take("s1", 10, m.now)), (std::vector<std::string>{"a3"}));
  const auto s = box.stats();
  EXPECT_EQ(s.delivered_total, 4u);
  EXPECT_EQ(s.messages, 1u);
  EXPECT_EQ(s.in_flight, 1u);
  expect_accounted(s);
}

TEST(MqttOutbox, InFlightWindowPerSite) {
  MqttOutbox box({100, 1 << 20, 0}, {"s1", "s2"});
  Maker m{box};
  for (int i = 0; i < 5; ++i) m.push("s1/t" + std::to_string(i), "x");
  m.push("s2/t", "y", MqttClass::kState, "s2");
  EXPECT_EQ(box.take("s1", 3, m.now).size(), 3u);
  EXPECT_EQ(box.take("s1", 3, m.now).size(), 0u);  // window full
  EXPECT_EQ(box.take("s2", 3, m.now).size(), 1u);  // other site, own window
  EXPECT_EQ(box.pending("s1"), 2u);
  EXPECT_TRUE(box.take("nosuchsite", 3, m.now).empty());
}

TEST(MqttOutbox, BoundDropsOldestStateNeverEvents) {
  MqttOutbox box({5, 1 << 20, 0}, {"s1"});
  Maker m{box};
  m.push("alert/x", "raised", MqttClass::kEvent);
  for (int i = 1; i <= 6; ++i) m.push("cab/" + std::to_string(i), "v" + std::to_string(i));
  // 7 offered, bound 5: the two oldest *state* messages went, the older alert event stayed.
  auto s = box.stats();
  EXPECT_EQ(s.messages, 5u);
  EXPECT_EQ(dropped(s, MqttDropReason::kQueueFull), 2u);
  EXPECT_EQ(s.events, 1u);
  auto sent = box.take("s1", 100, m.now);
  EXPECT_EQ(payloads(sent), (std::vector<std::string>{"raised", "v3", "v4", "v5", "v6"}));
  std::vector<std::uint64_t> seqs;
  std::vector<std::string> topics;
  box.drain_removed(seqs, topics);
  EXPECT_EQ(topics, (std::vector<std::string>{"cab/1", "cab/2"}));
  EXPECT_EQ(seqs.size(), 2u);

  // In-flight messages are not dropped to make room; with nothing else to drop, a new state
  // message is itself dropped and a new event is kept over the bound.
  m.push("cab/7", "v7");
  s = box.stats();
  EXPECT_EQ(dropped(s, MqttDropReason::kQueueFull), 3u);
  m.push("alert/x", "cleared", MqttClass::kEvent);
  EXPECT_EQ(box.stats().messages, 6u);
  EXPECT_TRUE(box.over_bound());
  expect_accounted(box.stats());
}

TEST(MqttOutbox, ByteBoundCountsTopicAndPayload) {
  MqttOutbox box({1000, 30, 0}, {"s1"});
  Maker m{box};
  m.push("t1", std::string(8, 'x'));  // 10 bytes
  m.push("t2", std::string(8, 'x'));
  m.push("t3", std::string(8, 'x'));
  EXPECT_EQ(box.stats().bytes, 30u);
  m.push("t4", std::string(1, 'x'));  // 3 bytes: t1 must go
  const auto s = box.stats();
  EXPECT_EQ(s.bytes, 23u);
  EXPECT_EQ(dropped(s, MqttDropReason::kQueueFull), 1u);
  EXPECT_EQ(box.take("s1", 10, m.now).front().topic, "t2");
}

TEST(MqttOutbox, ConnectionLossRequeuesInFlightAtTheirPlace) {
  MqttOutbox box({100, 1 << 20, 0}, {"s1"});
  Maker m{box};
  m.push("a", "a1");
  m.push("a", "a2");
  m.push("b", "b1");
  auto sent = box.take("s1", 10, m.now);
  ASSERT_EQ(payloads(sent), (std::vector<std::string>{"a1", "b1"}));
  EXPECT_EQ(box.requeue_site("s1"), 2u);
  // A late callback for the old attempt changes nothing: the message will be sent again.
  box.acked(sent[0].send_id);
  box.failed(sent[1].send_id, true);
  auto again = box.take("s1", 10, m.now);
  EXPECT_EQ(payloads(again), (std::vector<std::string>{"a1", "b1"}));  // a2 still behind a1
  EXPECT_NE(again[0].send_id, sent[0].send_id);
  box.acked(again[0].send_id);
  box.acked(again[0].send_id);  // twice: counted once
  const auto s = box.stats();
  EXPECT_EQ(s.delivered_total, 1u);
  EXPECT_EQ(std::accumulate(s.dropped_total.begin(), s.dropped_total.end(), std::uint64_t{0}), 0u);
  expect_accounted(s);
}

TEST(MqttOutbox, TransientFailureRetriesPermanentDrops) {
  MqttOutbox box({100, 1 << 20, 0}, {"s1"});
  Maker m{box};
  m.push("a", "a1");
  m.push("b", "b1");
  auto sent = box.take("s1", 10, m.now);
  box.failed(sent[0].send_id, false);
  box.failed(sent[1].send_id, true);
  const auto s = box.stats();
  EXPECT_EQ(dropped(s, MqttDropReason::kRejected), 1u);
  EXPECT_EQ(payloads(box.take("s1", 10, m.now)), (std::vector<std::string>{"a1"}));
  expect_accounted(box.stats());
}

TEST(MqttOutbox, ExpiredStateIsDroppedNotSentEventsNeverExpire) {
  MqttOutbox box({100, 1 << 20, 10'000}, {"s1"});
  Maker m{box};
  m.push("a", "old");
  m.push("alert", "e", MqttClass::kEvent);
  m.now += 4'000;
  m.push("b", "young");
  auto sent = box.take("s1", 10, m.now + 7'000);  // "old" is 11 s old, "young" 7 s
  EXPECT_EQ(payloads(sent), (std::vector<std::string>{"e", "young"}));
  EXPECT_EQ(sent[0].remaining_expiry_ms, 0);      // events carry no expiry
  EXPECT_EQ(sent[1].remaining_expiry_ms, 3'000);  // what is left of its 10 s
  EXPECT_EQ(dropped(box.stats(), MqttDropReason::kExpired), 1u);
}

TEST(MqttOutbox, UnknownSiteIsRejectedAndDropAllCountsEverything) {
  MqttOutbox box({100, 1 << 20, 0}, {"s1"});
  Maker m{box};
  m.push("x", "gone", MqttClass::kState, "removed-site");
  EXPECT_EQ(dropped(box.stats(), MqttDropReason::kRejected), 1u);
  m.push("a", "a1");
  m.push("b", "b1");
  box.take("s1", 1, m.now);  // one in flight
  EXPECT_EQ(box.drop_all(MqttDropReason::kShutdown), 2u);
  const auto s = box.stats();
  EXPECT_EQ(dropped(s, MqttDropReason::kShutdown), 2u);
  EXPECT_EQ(s.messages, 0u);
  EXPECT_EQ(s.in_flight, 0u);
  expect_accounted(s);
}

TEST(MqttJournal, RoundTripEraseAndExclusiveLock) {
  TempDir dir;
  const std::string path = (dir.path() / "outbox.sqlite").string();
  MqttOutbox box({100, 1 << 20, 0}, {"s1"});
  Maker m{box};
  std::vector<OutboxMessage> batch;
  batch.push_back(m.make("facility/s1/summary", "{\"a\":1}"));
  batch.push_back(m.make("facility/s1/alert/k/x", std::string("bin\0ary", 7), MqttClass::kEvent));
  batch.push_back(m.make("facility/s1/cabinet/c1", "{}"));
  {
    MqttJournal j(path);
    j.append(batch);
    j.erase({batch[0].seq});
    EXPECT_EQ(j.count(), 2u);
    EXPECT_THROW(MqttJournal second(path), std::runtime_error);  // one daemon per state dir
  }
  MqttJournal j(path);
  const auto back = j.load();
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[0].seq, batch[1].seq);
  EXPECT_EQ(back[0].topic, "facility/s1/alert/k/x");
  EXPECT_EQ(back[0].payload, std::string("bin\0ary", 7));
  EXPECT_EQ(back[0].cls, MqttClass::kEvent);
  EXPECT_FALSE(back[0].expires);
  EXPECT_EQ(back[1].site, "s1");
  EXPECT_EQ(back[1].queued_ms, m.now);
  EXPECT_TRUE(back[1].expires);
}

TEST(MqttJournal, ClearErrors) {
  TempDir dir;
  try {
    MqttJournal j((dir.path() / "missing" / "outbox.sqlite").string());
    ADD_FAILURE() << "opened a journal in a directory that does not exist";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("missing/outbox.sqlite"), std::string::npos) << e.what();
  }
  // A file written by a newer format is refused rather than misread.
  const std::string newer = (dir.path() / "newer.sqlite").string();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(newer.c_str(), &db), SQLITE_OK);
  sqlite3_exec(db, "PRAGMA user_version=99", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  EXPECT_THROW(MqttJournal j(newer), std::runtime_error);
}

// A bounded outbox restored from a journal holding more than the bound keeps the newest state.
TEST(MqttJournal, RestoreAppliesTheBound) {
  TempDir dir;
  const std::string path = (dir.path() / "outbox.sqlite").string();
  {
    MqttOutbox big({100, 1 << 20, 0}, {"s1"});
    Maker m{big};
    std::vector<OutboxMessage> batch;
    for (int i = 0; i < 10; ++i) batch.push_back(m.make("t" + std::to_string(i), "p"));
    MqttJournal(path).append(batch);
  }
  MqttJournal j(path);
  auto msgs = j.load();
  MqttOutbox small({4, 1 << 20, 0}, {"s1"});
  small.restore_seq(msgs.back().seq);
  const auto last_seq = msgs.back().seq;
  small.push(std::move(msgs));
  EXPECT_EQ(small.stats().messages, 4u);
  EXPECT_EQ(dropped(small.stats(), MqttDropReason::kQueueFull), 6u);
  EXPECT_EQ(small.take("s1", 10, 0).front().topic, "t6");
  EXPECT_GT(small.reserve_seqs(1), last_seq);  // numbering continues after the journal's
}

}  // namespace
}  // namespace facility
