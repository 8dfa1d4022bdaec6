// MQTT sink: publishes each FacilitySnapshot as retained JSON state topics, one broker connection
// per site so that every site has its own birth/last-will status topic. docs/mqtt.md is the
// contract (topics, payloads, QoS, buffering); this header is the C++ side of it.
//
// Two layers:
//   * render_messages() is pure: snapshot -> (topic, payload) list. Unit-tested without a broker.
//   * MqttPublisher owns one Paho async_client per site and one worker thread that renders and
//     hands messages to Paho. The caller's thread never waits on the network.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "daemon/config.h"
#include "daemon/model.h"
#include "daemon/readings.h"

namespace facility {

// ---- Pure rendering ---------------------------------------------------------------------

// One message to publish. `site` says which site's connection carries it.
struct MqttMessage {
  std::string site;
  std::string topic;
  std::string payload;
  bool retained = true;
};

// RFC 3339 UTC with exactly three fractional digits, e.g. "2026-11-22T04:03:19.123Z".
// Sub-millisecond parts are truncated (never rounded up into the next second). Thread-safe: no
// gmtime(), no locale.
std::string format_rfc3339_ms(TimePoint t);

// True if `s` can be used as one MQTT topic level: non-empty, valid UTF-8 is assumed (ids come
// from YAML), and no '/', '+', '#' or NUL. A wildcard in a PUBLISH topic makes brokers drop the
// connection, so such ids must never reach Paho.
bool is_valid_topic_level(const std::string& s);

// "<prefix>/<site>/status"
std::string mqtt_status_topic(const std::string& prefix, const std::string& site);

// Every state message for a snapshot, in publish order per site: summary, cabinets, cooling,
// devices. Status (online/offline) is not included: it belongs to the connection, not the
// snapshot. Entities whose id is not a valid topic level are skipped (with a warning log).
// Values that are unknown or not finite are JSON null, never 0 and never NaN.
std::vector<MqttMessage> render_messages(const FacilitySnapshot& snap, const std::string& prefix);

// Same, restricted to one site (what the publisher uses when one connection comes back).
std::vector<MqttMessage> render_site_messages(const FacilitySnapshot& snap,
                                              const std::string& prefix,
                                              const std::string& site);

// ---- Publisher ------------------------------------------------------------------------------

// Tuning that is not (yet) in the config file. Defaults are what the daemon uses.
struct MqttPublisherOptions {
  // Per site connection: messages Paho may hold that have not been written to the socket yet
  // (while connected too). Beyond that, publish fails with -12 and the message is counted as
  // dropped{buffer_full}.
  int max_buffered_messages = 10000;
  std::chrono::seconds min_retry_interval{1};  // Paho automatic reconnect backoff
  std::chrono::seconds max_retry_interval{30};
  std::chrono::seconds connect_timeout{10};
  // stop(): how long to wait for the retained "offline" to be acknowledged, and again for the
  // disconnect to complete.
  std::chrono::milliseconds stop_timeout{3000};
};

// Publishes snapshots to an MQTT 3.1.1 broker.
//
// Thread-safety:
//   * publish() and stats() are thread-safe and may be called from any thread at any time,
//     including before start() and after stop().
//   * start() and stop() are meant for one owning thread; they are serialised internally, stop()
//     is idempotent and is also called by the destructor.
// MqttSettings::enabled is not consulted: whoever constructs a publisher wants one.
class MqttPublisher {
 public:
  static constexpr const char* kDropBufferFull = "buffer_full";
  static constexpr const char* kDropPublishError = "publish_error";
  static constexpr const char* kDropNotConnected = "not_connected";

  struct SiteStats {
    std::string site;
    std::string client_id;
    bool connected = false;
    std::uint64_t connects_total = 0;   // successful connections, first one included
    std::uint64_t published_total = 0;  // confirmed by Paho: QoS 0 written, QoS 1/2 acknowledged
    std::map<std::string, std::uint64_t> dropped_total;  // by reason, every reason present
    std::uint64_t queue_messages = 0;  // handed to Paho, not yet confirmed or failed
  };

  struct Stats {
    bool connected = false;  // every site's connection is up (false with no sites)
    std::uint64_t published_total = 0;
    std::map<std::string, std::uint64_t> dropped_total;  // keys: kDrop*; all always present
    std::uint64_t queue_messages = 0;
    std::uint64_t snapshots_superseded = 0;  // replaced by a newer one before the worker ran
    std::vector<SiteStats> sites;
  };

  // Validates everything (broker URI, QoS, prefix, site ids) and creates one Paho client per
  // site; throws std::invalid_argument on a bad setting. No network I/O happens here.
  MqttPublisher(MqttSettings settings, std::vector<std::string> site_ids,
                MqttPublisherOptions options = {});
  ~MqttPublisher();

  MqttPublisher(const MqttPublisher&) = delete;
  MqttPublisher& operator=(const MqttPublisher&) = delete;
  MqttPublisher(MqttPublisher&&) = delete;
  MqttPublisher& operator=(MqttPublisher&&) = delete;

  // Starts the worker thread and one asynchronous connect per site; returns without waiting for
  // the broker. Paho retries (min..max retry interval) forever, including when the broker is
  // down at start-up. Throws std::runtime_error only if Paho rejects the connect request itself.
  // A second call is a no-op; calling it after stop() throws std::logic_error.
  void start();

  // Hands the snapshot to the worker and returns immediately. Only the newest pending snapshot
  // is kept; an older one not yet picked up is discarded (counted in snapshots_superseded).
  // After stop() it does nothing.
  void publish(std::shared_ptr<const FacilitySnapshot> snap);

  // Stops the worker, publishes retained "offline" on every connected site's status topic, waits
  // (bounded by stop_timeout) for it to be acknowledged, disconnects and destroys the clients.
  // If "offline" could not be confirmed, the connection is dropped without an MQTT DISCONNECT so
  // that the broker publishes the last will instead of leaving "online" behind.
  void stop();

  Stats stats() const;

 private:
  struct SiteLink;

  void run();  // worker thread
  void publish_to_site(SiteLink& link, const std::vector<MqttMessage>& msgs);
  bool publish_one(SiteLink& link, const std::string& topic, const std::string& payload);
  void on_connected(SiteLink& link);

  const MqttSettings settings_;
  const MqttPublisherOptions options_;
  std::vector<std::unique_ptr<SiteLink>> links_;
  std::map<std::string, SiteLink*> by_site_;

  std::mutex lifecycle_mu_;  // serialises start()/stop()
  bool started_ = false;
  bool stopped_ = false;

  // Hand-over between publish()/Paho callbacks and the worker. Never held while calling Paho:
  // Paho may hold its own lock while running our callbacks, which take this one.
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::shared_ptr<const FacilitySnapshot> pending_;
  bool republish_requested_ = false;  // some site came (back) online
  bool stopping_ = false;
  std::uint64_t superseded_ = 0;

  // Owned by the worker thread only: the last snapshot it published, re-sent to a site whose
  // connection comes back so its retained topics are current at once.
  std::shared_ptr<const FacilitySnapshot> latest_;
  std::thread worker_;
};

}  // namespace facility
