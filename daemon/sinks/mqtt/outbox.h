// The bounded outbox in front of the MQTT client (docs/mqtt.md, "Outages and the outbox").
//
// Every message facilityd publishes (except the status birth/will) waits here until the broker
// has acknowledged it; Paho only ever holds the few messages currently in flight. That gives us
// what Paho's own offline buffer cannot (pitfalls.md): a bound in messages *and* bytes, a drop
// policy that knows alerts from state, a count of every drop by reason, per-topic order across
// reconnects, and no loss when the connection dies silently (paho.mqtt.cpp#384): a message stays
// here until acknowledged and is sent again after a reconnect.
//
// Policy, when a new message would exceed max_messages or max_bytes:
//   1. the oldest *state* message that is not in flight is dropped (reason queue_full), again
//      until the new one fits;
//   2. if no state message is left to drop, a new state message is itself dropped (queue_full);
//      a new alert *event* is kept anyway, over the bound: alert events are never dropped.
// Per topic, messages leave in the order they were queued, one at a time: the next message on a
// topic is handed to the client only after the previous one was acknowledged, so a resend after
// a reconnect can never overtake a newer message on the same topic.
//
// Thread-safety: every member is thread-safe (one internal mutex); Paho callbacks call acked(),
// failed() and requeue_site() concurrently with the publisher's worker.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

namespace facility {

enum class MqttClass : std::uint8_t {
  kState = 0,  // the current state of an entity; superseded by the next message on its topic
  kEvent = 1,  // an alert transition (raised, cleared, severity): never dropped
};

// Why a message was dropped; the label of facility_mqtt_messages_dropped_total{reason}.
enum class MqttDropReason : std::uint8_t {
  kQueueFull = 0,  // the outbox bound was reached (state messages only)
  kExpired,        // MQTT 5 message expiry passed while queued (state messages only)
  kRejected,       // the broker refused it (MQTT 5 reason code), or its site is gone
  kShutdown,       // still queued when facilityd stopped, with persistence off
};
constexpr std::size_t kMqttDropReasons = 4;
const char* to_string(MqttDropReason r);  // "queue_full", "expired", "rejected", "shutdown"

struct OutboxMessage {
  std::uint64_t seq = 0;  // order of queuing, unique; assigned by the caller (reserve_seqs)
  std::string site;
  std::string topic;
  std::string payload;
  MqttClass cls = MqttClass::kState;
  std::int64_t queued_ms = 0;  // unix time in ms when queued (survives restarts)
  bool expires = false;        // subject to the message expiry (state topics with MQTT 5)
  std::size_t bytes() const { return topic.size() + payload.size(); }
};

class MqttOutbox {
 public:
  struct Limits {
    std::uint64_t max_messages = 100000;
    std::uint64_t max_bytes = 64ull << 20;
    std::int64_t expiry_ms = 0;  // 0 = messages never expire
  };

  // A message handed to the client: send_id identifies this attempt in acked()/failed().
  struct Send {
    std::uint64_t send_id = 0;
    std::uint64_t seq = 0;
    std::string topic;
    std::string payload;
    MqttClass cls = MqttClass::kState;
    std::int64_t remaining_expiry_ms = 0;  // > 0 if the message expires
  };

  struct Stats {
    std::uint64_t messages = 0;  // queued, in flight included
    std::uint64_t bytes = 0;
    std::uint64_t in_flight = 0;
    std::uint64_t events = 0;           // alert events among `messages`
    // Every message ever push()ed. Each is, at any time, exactly one of: still queued
    // (`messages`), delivered, or dropped (once, under one reason).
    std::uint64_t queued_total = 0;
    std::uint64_t delivered_total = 0;  // acknowledged
    std::array<std::uint64_t, kMqttDropReasons> dropped_total{};
  };

  MqttOutbox(Limits limits, const std::vector<std::string>& sites);

  // Sequence numbers for `n` new messages (so that they can be journaled before they are
  // queued). Numbers only grow, also across restarts once restore_seq() has seen the journal.
  std::uint64_t reserve_seqs(std::size_t n);
  void restore_seq(std::uint64_t last_used);

  // Queues messages (already numbered, in increasing seq order), applying the bound.
  void push(std::vector<OutboxMessage> msgs);

  // Marks up to `max_in_flight - in flight` messages of the site as in flight and returns them:
  // per topic the oldest, overall in queuing order. Expired state messages met on the way are
  // dropped. `now_ms` is unix time in ms.
  std::vector<Send> take(const std::string& site, std::size_t max_in_flight, std::int64_t now_ms);

  // Outcome of one attempt. An unknown or superseded send_id (a late callback after a
  // reconnect already re-queued the message) is ignored: the message will be sent again, which
  // QoS 1 allows, and counted once.
  // acked() returns how many messages of the message's site are still in flight (or
  // SIZE_MAX for an unknown send_id), so that the caller can refill the window in batches.
  std::size_t acked(std::uint64_t send_id);
  void failed(std::uint64_t send_id, bool permanent);

  // The site's connection is gone: everything in flight on it goes back to the queue, at its
  // place (its topic's head), to be sent again after the reconnect.
  std::size_t requeue_site(const std::string& site);

  // Drops every message still queued, counted under `reason`.
  std::size_t drop_all(MqttDropReason reason);

  // What left the outbox since the last call: sequence numbers (to delete from the journal)
  // and the topics of dropped messages (their last state never reached the broker).
  void drain_removed(std::vector<std::uint64_t>& seqs, std::vector<std::string>& dropped_topics);

  Stats stats() const;
  std::size_t pending(const std::string& site) const;  // queued and not in flight
  bool over_bound() const;  // holds more than the bound (alert events only; see policy)

 private:
  struct Entry;
  struct TopicQueue {
    std::deque<std::uint64_t> seqs;  // queued on this topic, oldest first
    bool in_flight = false;          // the head is in flight
    std::size_t site = 0;
  };
  struct SiteQueue {
    std::set<std::pair<std::uint64_t, TopicQueue*>> ready;  // heads that may be sent, by seq
    std::size_t in_flight = 0;
    std::size_t pending = 0;
  };
  struct Entry {
    OutboxMessage msg;
    TopicQueue* topic = nullptr;
    std::uint64_t send_id = 0;  // 0 = not in flight
  };

  // All with mu_ held.
  void remove(std::map<std::uint64_t, Entry>::iterator it, bool dropped, MqttDropReason reason);
  void make_ready(TopicQueue& tq);
  bool fits(std::size_t bytes) const;
  void back_to_queue(std::uint64_t send_id);
  // Takes mu_: delivered, or rejected. Returns the site's in-flight count after it.
  std::size_t finish(std::uint64_t send_id, bool dropped);

  const Limits limits_;
  mutable std::mutex mu_;
  std::uint64_t next_seq_ = 1;
  std::uint64_t next_send_id_ = 1;
  std::map<std::uint64_t, Entry> entries_;                 // by seq
  std::set<std::uint64_t> evictable_;                      // state, not in flight, by seq
  std::unordered_map<std::string, TopicQueue> topics_;     // topic -> its queue
  std::unordered_map<std::uint64_t, std::uint64_t> in_flight_;  // send_id -> seq
  std::vector<SiteQueue> sites_;
  std::unordered_map<std::string, std::size_t> site_index_;
  std::uint64_t bytes_ = 0;
  std::uint64_t events_ = 0;
  std::uint64_t queued_ = 0, delivered_ = 0;
  std::array<std::uint64_t, kMqttDropReasons> dropped_{};
  std::vector<std::uint64_t> removed_;
  std::vector<std::string> dropped_topics_;
};

}  // namespace facility
