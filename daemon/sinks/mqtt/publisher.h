// MQTT sink: publishes FacilitySnapshots as retained JSON state and alert topics, one broker
// connection per site so that every site has its own birth/last-will status topic.
// docs/mqtt.md is the contract (topics, payloads, QoS, buffering); this is the C++ side of it.
//
// Pipeline, all on one worker thread, so that the caller never waits on rendering, disk or
// network:
//   snapshot -> render (daemon/sinks/mqtt/render.h) -> change filter with deadbands + periodic
//   refresh (daemon/sinks/mqtt/change_filter.h) -> bounded outbox (daemon/sinks/mqtt/outbox.h), journaled
//   to disk when configured (daemon/sinks/mqtt/journal.h) -> Paho async client, at most
//   `max_in_flight` messages per site, removed from the outbox when the broker acknowledges.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "daemon/config/config.h"
#include "daemon/model/model.h"
#include "daemon/sinks/mqtt/change_filter.h"
#include "daemon/sinks/mqtt/outbox.h"
#include "daemon/sinks/mqtt/render.h"
#include "daemon/readings/readings.h"

namespace mqtt {
class delivery_token;
}  // namespace mqtt

namespace facility {

class MqttJournal;

// Tuning that is not in the config file. Defaults are what the daemon uses.
struct MqttPublisherOptions {
  // Messages handed to Paho and not yet acknowledged, per site connection. More only queues
  // inside Paho, where nothing can prioritise or count; fewer costs throughput (bench/).
  std::size_t max_in_flight = 256;
  std::chrono::milliseconds connect_timeout{10000};
  // stop(): how long to keep sending what is queued while connected, and again for "offline"
  // to be acknowledged and for the disconnect.
  std::chrono::milliseconds stop_timeout{3000};
  // Directory of the outbox journal (mqtt.outbox.persist); the daemon passes daemon.state_dir.
  std::string state_dir;
};

// Publishes snapshots to an MQTT 3.1.1 or 5 broker.
//
// Thread-safety:
//   * publish() and stats() are thread-safe and may be called from any thread at any time,
//     including before start() and after stop().
//   * start() and stop() are meant for one owning thread; they are serialised internally, stop()
//     is idempotent and is also called by the destructor.
// MqttSettings::enabled is not consulted: whoever constructs a publisher wants one.
class MqttPublisher {
 public:
  struct SiteStats {
    std::string site;
    std::string client_id;
    bool connected = false;
    std::uint64_t connects_total = 0;  // successful connections, first one included
    std::uint64_t queue_messages = 0;  // queued for this site, in flight included
  };

  // Superseded snapshots with alert transitions kept for the worker (see publish()).
  static constexpr std::size_t kMaxAlertBacklog = 256;

  struct Stats {
    bool connected = false;  // every site's connection is up (false with no sites)
    // Acknowledged by the broker (QoS 1/2) or written (QoS 0): data and status messages.
    std::uint64_t published_total = 0;
    // Data messages handed to the outbox. Each is exactly one of: still queued, delivered
    // (counted in published_total), or dropped under one reason.
    std::uint64_t queued_total = 0;
    std::uint64_t unchanged_total = 0;  // rendered, but within the deadbands: not sent
    std::map<std::string, std::uint64_t> dropped_total;  // every MqttDropReason, always present
    std::uint64_t queue_messages = 0;  // in the outbox, in flight included
    std::uint64_t queue_bytes = 0;
    std::uint64_t queue_events = 0;  // alert events among queue_messages
    std::uint64_t in_flight = 0;
    std::uint64_t persist_errors_total = 0;  // journal writes or deletes that failed
    std::uint64_t snapshots_processed = 0;   // snapshots the worker rendered
    std::uint64_t snapshots_superseded = 0;  // replaced by a newer one before the worker ran
    // Superseded snapshots whose alert transitions were never published: the worker lagged
    // more than kMaxAlertBacklog snapshots with transitions behind the model.
    std::uint64_t alert_backlog_dropped = 0;
    std::uint64_t connects_total = 0;
    std::vector<SiteStats> sites;
  };

  // Validates everything (broker URI and security rules, QoS, prefix, site ids), opens and
  // reads the outbox journal when persistence is on, and creates one Paho client per site.
  // Throws std::invalid_argument on a bad setting and std::runtime_error if the journal cannot
  // be used. No network I/O happens here.
  MqttPublisher(MqttSettings settings, std::vector<std::string> site_ids,
                MqttPublisherOptions options = {});
  ~MqttPublisher();

  MqttPublisher(const MqttPublisher&) = delete;
  MqttPublisher& operator=(const MqttPublisher&) = delete;
  MqttPublisher(MqttPublisher&&) = delete;
  MqttPublisher& operator=(MqttPublisher&&) = delete;

  // Starts the worker thread and one asynchronous connect per site; returns without waiting for
  // the broker. Failed or lost connections are retried with backoff (reconnect_min_interval
  // doubling up to reconnect_max_interval, +-20 % jitter) forever, including when the broker is
  // down at start-up. Throws std::runtime_error only if Paho rejects the connect request itself.
  // A second call is a no-op; calling it after stop() throws std::logic_error.
  void start();

  // Hands the snapshot to the worker and returns immediately. Only the newest pending snapshot
  // is kept; an older one not yet picked up is discarded (counted in snapshots_superseded),
  // except for its alert transitions that the newer one no longer shows (a raise and its clear
  // in between): those are still published, before the newer snapshot.
  // Call it on every model cycle: alerts are evaluated on every snapshot, state topics every
  // mqtt.publish_interval. After stop() it does nothing.
  void publish(std::shared_ptr<const FacilitySnapshot> snap);

  // Stops the worker; while connected, keeps sending what is queued (bounded by stop_timeout);
  // publishes retained "offline" on every connected site's status topic and waits for it;
  // disconnects. What is still queued stays in the journal for the next start (persistence
  // on) or is counted as dropped{shutdown}. If "offline" could not be confirmed, the connection
  // is dropped without an MQTT DISCONNECT so that the broker publishes the last will instead.
  void stop();

  Stats stats() const;

 private:
  struct SiteLink;

  void run();  // worker thread
  void evaluate(const FacilitySnapshot& snap, bool state, bool force_all,
                const std::set<std::string>& force_sites);
  void evaluate_hidden_alerts(const FacilitySnapshot& snap);
  // The change filter's verdict on one rendered message: serialised into `out` if it is to be
  // sent. commit() gives `out` sequence numbers, journals it and queues it.
  void offer(RenderedMessage& r, bool force, bool exact, std::vector<OutboxMessage>& out);
  void commit(std::vector<OutboxMessage>& out);
  void enqueue(std::vector<RenderedMessage>& rendered, bool force, bool exact);
  void pump(SiteLink& link);
  void maybe_connect(SiteLink& link);  // worker: a new attempt when one is due
  void sync_journal();
  void on_connected(SiteLink& link);
  void on_connection_lost(SiteLink& link, const std::string& cause);
  void wake();
  // The steps of stop(), in order.
  void drain_queued(std::chrono::steady_clock::time_point deadline);
  std::vector<std::shared_ptr<mqtt::delivery_token>> publish_offline(
      std::chrono::steady_clock::time_point deadline);
  void wait_offline(const std::vector<std::shared_ptr<mqtt::delivery_token>>& offline,
                    std::chrono::steady_clock::time_point deadline);
  void disconnect_all();
  void release_clients();

  const MqttSettings settings_;
  const MqttPublisherOptions options_;
  std::vector<std::unique_ptr<SiteLink>> links_;
  std::map<std::string, SiteLink*> by_site_;
  MqttOutbox outbox_;
  std::unique_ptr<MqttJournal> journal_;  // null unless mqtt.outbox.persist

  std::mutex lifecycle_mu_;  // serialises start()/stop()
  bool started_ = false;
  bool stopped_ = false;

  // Hand-over between publish()/Paho callbacks and the worker. Never held while calling Paho:
  // Paho may hold its own lock while running our callbacks, which take this one.
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::shared_ptr<const FacilitySnapshot> pending_;
  std::set<std::string> refresh_sites_;  // came (back) online: send their whole state again
  bool work_ = false;                    // acknowledgements or connection changes to act on
  bool stopping_ = false;
  std::uint64_t superseded_ = 0;
  std::uint64_t processed_ = 0;
  // Alert transitions of superseded snapshots that the newer one no longer shows (raised and
  // cleared in between), as alert-only snapshots, oldest first; at most kMaxAlertBacklog (a
  // worker that lags further behind is logged and counted in alert_backlog_dropped).
  std::deque<std::shared_ptr<const FacilitySnapshot>> alert_backlog_;
  std::uint64_t alert_backlog_dropped_ = 0;

  // Owned by the worker thread (and by stop() once the worker has ended).
  MqttChangeFilter filter_;
  MqttAlertTransitions alert_transitions_;
  std::shared_ptr<const FacilitySnapshot> latest_;
  std::chrono::steady_clock::time_point last_persist_error_log_{};
  // Written by the worker, read by stats().
  std::atomic<std::uint64_t> unchanged_total_{0}, persist_errors_{0};
  std::thread worker_;
};

}  // namespace facility
