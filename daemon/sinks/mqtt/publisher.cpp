#include "daemon/sinks/mqtt/publisher.h"

#include <mqtt/async_client.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <random>
#include <atomic>
#include <set>
#include <stdexcept>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "daemon/sinks/mqtt/journal.h"

namespace facility {

namespace {

using Steady = std::chrono::steady_clock;

std::int64_t unix_ms(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

// Errors of a publish call that retrying cannot fix: the message itself is unacceptable.
bool permanent_publish_error(int rc) {
  switch (rc) {
    case -5:  // MQTTASYNC_BAD_UTF8_STRING
    case MQTTASYNC_NULL_PARAMETER:
    case MQTTASYNC_TOPICNAME_TRUNCATED:
    case MQTTASYNC_BAD_STRUCTURE:
    case MQTTASYNC_BAD_QOS:
    case MQTTASYNC_BAD_MQTT_OPTION:
    case MQTTASYNC_WRONG_MQTT_VERSION:
      return true;
    default:
      return false;
  }
}

// MQTT 5 PUBACK reason codes >= 0x80 are refusals; "quota exceeded" and "server busy" pass.
// (Paho C++ reports 255, MQTTPP_V3_CODE, when there is no reason code: MQTT 3.1.1, or a failure
// that is not the broker's answer.)
bool permanent_reason(int reason) {
  return reason >= 0x80 && reason < 0xFF && reason != 0x97 && reason != 0x89;
}

// Paho reports a failed TLS connection only as rc -1 ("TCP/TLS connect failure"). The reason -
// untrusted certificate, host name mismatch, client certificate refused - appears only in its
// trace. While some TLS connection is down, that trace is on and the newest reason is kept for
// the connect-failure log line. Paho's trace is process-wide, so with several sites the reason
// is the newest of any of them (they share one broker and one TLS setup); it is off whenever
// every TLS connection is up, so it costs nothing on the publishing path.
//
// The host name check needs the MINIMUM level: Paho first tries X509_check_host, which fails
// for an IP address even when the certificate names it, and only then X509_check_ip_asc, whose
// result it logs at that level.
class TlsDiagnosis {
 public:
  static TlsDiagnosis& instance() {
    static TlsDiagnosis d;
    return d;
  }
  void set_down(const void* link, bool down) {
    std::lock_guard lock(mu_);
    if (down)
      down_.insert(link);
    else
      down_.erase(link);
    const bool on = !down_.empty();
    if (on == on_) return;
    on_ = on;
    MQTTAsync_setTraceCallback(on ? &TlsDiagnosis::trace : nullptr);
    MQTTAsync_setTraceLevel(on ? MQTTASYNC_TRACE_MINIMUM : MQTTASYNC_TRACE_FATAL);
  }
  std::string take() {
    std::lock_guard lock(mu_);
    return std::exchange(last_, std::string());
  }

 private:
  static void trace(enum MQTTASYNC_TRACE_LEVELS, char* message) {
    const std::string_view m(message);
    const auto after = [&](std::string_view key) -> std::optional<std::string> {
      const auto p = m.find(key);
      if (p == std::string_view::npos) return std::nullopt;
      return std::string(m.substr(p + key.size()));
    };
    TlsDiagnosis& d = instance();
    std::string why;
    if (auto host = after("X509_check_host for hostname ")) {
      std::lock_guard lock(d.mu_);
      d.host_ = host->substr(0, host->find(' '));
      return;
    } else if (auto rc = after("rc from X509_check_ip_asc is "); rc && *rc != "1") {
      std::lock_guard lock(d.mu_);
      d.last_ = "the broker's certificate is not issued for host " + d.host_;
      return;
    } else if (auto ours = after("SSL alert write:fatal:")) {
      why = "facilityd refused the broker's certificate (" + *ours +
            "): is it signed by the CA in mqtt.tls.ca_file?";
    } else if (auto theirs = after("SSL alert read:fatal:")) {
      why = "the broker refused the TLS handshake (" + *theirs +
            "): does it require a client certificate (mqtt.tls.cert_file)?";
    } else if (auto v = after("SSL certificate verification: "); v && *v != "X509_V_OK") {
      why = "certificate verification failed: " + *v;
    } else {
      return;
    }
    std::lock_guard lock(d.mu_);
    d.last_ = std::move(why);
  }

  std::mutex mu_;
  std::set<const void*> down_;
  bool on_ = false;
  std::string host_;  // of the last X509_check_host failure: the IP check decides
  std::string last_;
};

// What the operator needs to read in the log when a connection attempt fails.
std::string describe_connect_failure(int rc, int reason, bool tls) {
  switch (reason) {  // MQTT 5 CONNACK reason codes
    case 0x84: return "refused: unsupported protocol version (try protocol_version 3.1.1)";
    case 0x85: return "refused: client identifier not valid (mqtt.client_id)";
    case 0x86: return "refused: bad user name or password (mqtt.auth)";
    case 0x87: return "refused: not authorized (mqtt.auth, broker ACL)";
    case 0x88: return "refused: server unavailable";
    case 0x89: return "refused: server busy";
    case 0x8A: return "refused: banned";
    case 0x8C: return "refused: bad authentication method";
    default: break;
  }
  switch (rc) {  // MQTT 3.1.1 CONNACK return codes, as Paho reports them
    case 1: return "refused: unacceptable protocol version (try protocol_version 5)";
    case 2: return "refused: client identifier rejected (mqtt.client_id)";
    case 3: return "refused: server unavailable";
    case 4: return "refused: bad user name or password (mqtt.auth)";
    // mosquitto answers a wrong password with 5, not 4.
    case 5: return "refused: not authorized (wrong user name or password, or not allowed; mqtt.auth)";
    default: break;
  }
  if (reason >= 0x80 && reason < 0xFF)
    return "refused with MQTT reason code " + std::to_string(reason);
  if (tls) {
    const std::string why = TlsDiagnosis::instance().take();
    if (!why.empty()) return "TLS handshake failed: " + why;
    return "connection or TLS handshake failed: broker unreachable, or TLS refused (rc " +
           std::to_string(rc) + ")";
  }
  return "connection failed: broker unreachable (rc " + std::to_string(rc) + ")";
}

}  // namespace

// One broker connection. Everything a Paho callback touches is atomic or behind a lock:
// callbacks run on Paho's threads, concurrently with the worker and with stats().
struct MqttPublisher::SiteLink {
  // Completion of data messages: the user context is the outbox send id.
  class DeliveryListener : public mqtt::iaction_listener {
   public:
    explicit DeliveryListener(SiteLink& l) : link_(l) {}
    void on_success(const mqtt::token& tok) override {
      const std::size_t left =
          link_.pub.outbox_.acked(reinterpret_cast<std::uintptr_t>(tok.get_user_context()));
      // Refill the window in batches: wake the worker when half of it is free (and when it is
      // empty, for small windows and the last messages), not on every acknowledgement.
      if (left == link_.window.load() / 2 || left == 0) link_.pub.wake();
    }
    void on_failure(const mqtt::token& tok) override {
      const int rc = tok.get_return_code();
      const int reason = static_cast<int>(tok.get_reason_code());
      const bool permanent = permanent_publish_error(rc) || permanent_reason(reason);
      if (permanent)
        spdlog::warn("mqtt: site {}: the broker refused a message (rc {}, reason {}); dropped",
                     link_.site, rc, reason);
      link_.pub.outbox_.failed(reinterpret_cast<std::uintptr_t>(tok.get_user_context()),
                               permanent);
      link_.pub.wake();
    }

   private:
    SiteLink& link_;
  };

  // Completion of status messages (online/offline), which bypass the outbox.
  class StatusListener : public mqtt::iaction_listener {
   public:
    explicit StatusListener(SiteLink& l) : link_(l) {}
    void on_success(const mqtt::token&) override { link_.status_published.fetch_add(1); }
    void on_failure(const mqtt::token&) override {}

   private:
    SiteLink& link_;
  };

  // Outcome of each connection attempt. We reconnect ourselves rather than with Paho's
  // automatic reconnect, whose failed attempts reach no callback: a broker that comes back
  // with, say, a changed password would then never be explained in the log. Logged: the first
  // failure of a series and every change of cause (each attempt at debug level).
  class ConnectListener : public mqtt::iaction_listener {
   public:
    explicit ConnectListener(SiteLink& l) : link_(l) {}
    void on_success(const mqtt::token& tok) override {
      // MQTT 5: the broker says how many QoS 1/2 messages it accepts in flight (mosquitto: 20
      // by default). Paho queues the rest internally and wakes up for them only slowly, so
      // the window follows the broker, less two for the status messages.
      std::size_t window = link_.pub.options_.max_in_flight;
      if (link_.pub.settings_.protocol_version == 5) {
        try {
          const mqtt::connect_response rsp = tok.get_connect_response();
          const mqtt::properties& props = rsp.get_properties();
          if (props.contains(mqtt::property::RECEIVE_MAXIMUM)) {
            const int rm = mqtt::get<int>(props, mqtt::property::RECEIVE_MAXIMUM);
            window = std::min<std::size_t>(window, static_cast<std::size_t>(std::max(1, rm - 2)));
          }
        } catch (const std::exception&) {
        }
      }
      if (window != link_.window.exchange(window))
        spdlog::info("mqtt: site {}: at most {} messages in flight (broker receive maximum)",
                     link_.site, window);
      link_.connecting.store(false);
    }
    void on_failure(const mqtt::token& tok) override {
      const std::string why =
          describe_connect_failure(tok.get_return_code(), static_cast<int>(tok.get_reason_code()),
                                   link_.tls);
      {
        std::lock_guard lock(link_.log_mu);
        spdlog::debug("mqtt: site {}: connect attempt failed: {}", link_.site, why);
        if (why != link_.last_failure) {
          link_.last_failure = why;
          spdlog::error("mqtt: site {}: cannot connect to {} as {}: {}; retrying", link_.site,
                        link_.broker, link_.client_id, why);
        }
      }
      link_.retry_later();
      link_.connecting.store(false);
      link_.pub.wake();
    }

   private:
    SiteLink& link_;
  };

  explicit SiteLink(MqttPublisher& p) : pub(p) {}

  // Next attempt after a failure or a lost connection: the backoff doubles from
  // reconnect_min_interval up to reconnect_max_interval, with +-20 % jitter so that many
  // daemons do not come back to one broker in lockstep. Reset by a successful connection.
  void retry_later() {
    std::lock_guard lock(retry_mu);
    const auto& s = pub.settings_;
    backoff = backoff.count() == 0 ? s.reconnect_min : std::min(backoff * 2, s.reconnect_max);
    const double jitter = std::uniform_real_distribution<double>(0.8, 1.2)(rng);
    next_attempt = Steady::now() + std::chrono::milliseconds(static_cast<std::int64_t>(
                                       static_cast<double>(backoff.count()) * jitter));
  }
  bool attempt_due() {
    std::lock_guard lock(retry_mu);
    return Steady::now() >= next_attempt;
  }
  void reset_backoff() {
    std::lock_guard lock(retry_mu);
    backoff = std::chrono::milliseconds(0);
  }

  // "online" / "offline": retained, QoS 1 like the will, whatever the data QoS; not through the
  // outbox (it belongs to this connection, not to the data).
  mqtt::delivery_token_ptr publish_status(const char* payload, int version) {
    auto msg = mqtt::make_message(status_topic, std::string(payload), 1, true);
    if (version == 5) {
      mqtt::properties props;
      props.add(mqtt::property(mqtt::property::CONTENT_TYPE, std::string("text/plain")));
      props.add(mqtt::property(mqtt::property::PAYLOAD_FORMAT_INDICATOR, 1));
      msg->set_properties(props);
    }
    return client->publish(msg, nullptr, status_listener);
  }

  MqttPublisher& pub;
  std::string site, client_id, status_topic, broker;
  bool tls = false;

  std::atomic<bool> connected{false};  // between connected and connection-lost callbacks
  // Set by stop() under birth_mu; on_connected() checks it and sends "online" under the same
  // lock, so a reconnect racing with stop() cannot put "online" after "offline". The lock is
  // never held by a thread waiting for Paho, so taking it inside a Paho callback is safe.
  std::mutex birth_mu;
  bool stopping = false;
  std::mutex log_mu;
  std::string last_failure;  // the last connect failure logged ("" after a success)
  std::atomic<std::uint64_t> connects{0}, status_published{0};
  Steady::time_point backoff_until{};  // worker only: after a transient publish error

  mqtt::connect_options connect_opts;   // built once by start()
  std::atomic<bool> connecting{false};  // an attempt is under way
  std::atomic<std::size_t> window{0};   // messages in flight at most (set in the constructor)
  std::mutex retry_mu;
  Steady::time_point next_attempt{};
  std::chrono::milliseconds backoff{0};
  std::minstd_rand rng;

  DeliveryListener delivery{*this};
  StatusListener status_listener{*this};
  ConnectListener connect_listener{*this};
  // Declared last so it is destroyed first, while the listeners it references still exist.
  std::unique_ptr<mqtt::async_client> client;
};

MqttPublisher::MqttPublisher(MqttSettings settings, std::vector<std::string> site_ids,
                             MqttPublisherOptions options)
    : settings_(std::move(settings)),
      options_(std::move(options)),
      outbox_(MqttOutbox::Limits{settings_.outbox.max_messages, settings_.outbox.max_bytes,
                                 settings_.protocol_version == 5
                                     ? static_cast<std::int64_t>(settings_.message_expiry.count())
                                     : 0},
              site_ids),
      filter_(settings_.deadband) {
  if (settings_.qos < 0 || settings_.qos > 2)
    throw std::invalid_argument("mqtt.qos must be 0, 1 or 2, got " + std::to_string(settings_.qos));
  if (settings_.protocol_version != 4 && settings_.protocol_version != 5)
    throw std::invalid_argument("mqtt.protocol_version must be 3.1.1 or 5");
  if (!is_valid_topic_prefix(settings_.topic_prefix))
    throw std::invalid_argument("mqtt.topic_prefix \"" + settings_.topic_prefix +
                                "\" is not a valid topic prefix (no '+', '#', empty levels, "
                                "leading '$' or '/')");
  if (settings_.client_id.empty()) throw std::invalid_argument("mqtt.client_id is empty");
  if (options_.max_in_flight < 1) throw std::invalid_argument("max_in_flight must be at least 1");
  if (settings_.message_expiry.count() > 0 && settings_.protocol_version != 5)
    throw std::invalid_argument("mqtt.message_expiry needs protocol_version 5");
  // The same rules as the config loader: --mqtt-broker must not get around them.
  if (auto problem = mqtt_security_problem(settings_))
    throw std::invalid_argument("mqtt: " + *problem);
  const bool tls = parse_broker_uri(settings_.broker)->tls();

  const int version = settings_.protocol_version == 5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1;
  // MQTT 5 must be chosen here and again in the connect options (pitfalls.md).
  mqtt::create_options co(version);
  // Paho only holds what is in flight; everything else waits in our outbox, which knows what
  // may be dropped and counts it. Paho's own buffer (max_buffered_messages also applies while
  // connected) gets room for the in-flight window plus the status messages.
  co.set_send_while_disconnected(false);
  co.set_max_buffered_messages(static_cast<int>(options_.max_in_flight) + 16);
  co.set_delete_oldest_messages(false);

  for (const auto& site : site_ids) {
    if (!is_valid_topic_level(site))
      throw std::invalid_argument("site id \"" + site + "\" cannot be an MQTT topic level");
    if (by_site_.count(site)) throw std::invalid_argument("duplicate site id \"" + site + "\"");
    auto link = std::make_unique<SiteLink>(*this);
    link->site = site;
    link->client_id = settings_.client_id + "-" + site;
    link->status_topic = mqtt_status_topic(settings_.topic_prefix, site);
    link->broker = settings_.broker;
    link->tls = tls;
    link->window.store(options_.max_in_flight);
    try {
      // nullptr persistence = MQTTCLIENT_PERSISTENCE_NONE (a string, even "", would select
      // Paho's file persistence in that directory; our outbox journal replaces it).
      link->client = std::make_unique<mqtt::async_client>(settings_.broker, link->client_id, co,
                                                          nullptr);
    } catch (const mqtt::exception& e) {
      throw std::invalid_argument("mqtt.broker \"" + settings_.broker + "\": " + e.what());
    }
    SiteLink* l = link.get();
    l->client->set_connected_handler([this, l](const std::string&) { on_connected(*l); });
    l->client->set_connection_lost_handler(
        [this, l](const std::string& cause) { on_connection_lost(*l, cause); });
    by_site_.emplace(site, l);
    links_.push_back(std::move(link));
  }

  if (settings_.outbox.persist) {
    if (options_.state_dir.empty())
      throw std::invalid_argument("mqtt.outbox.persist needs daemon.state_dir");
    journal_ = std::make_unique<MqttJournal>(options_.state_dir + "/mqtt-outbox.sqlite");
    auto restored = journal_->load();
    if (!restored.empty()) {
      outbox_.restore_seq(restored.back().seq);
      const std::size_t n = restored.size();
      outbox_.push(std::move(restored));
      const auto st = outbox_.stats();
      spdlog::info("mqtt: {} queued messages restored from {} ({} kept within the outbox bound)",
                   n, journal_->path(), st.messages);
      sync_journal();
    }
  }
}

MqttPublisher::~MqttPublisher() { stop(); }

void MqttPublisher::start() {
  std::lock_guard lifecycle(lifecycle_mu_);
  if (stopped_) throw std::logic_error("MqttPublisher::start() after stop()");
  if (started_) return;
  started_ = true;

  const auto secs = [](std::chrono::milliseconds d) {
    return static_cast<int>(std::max<std::int64_t>(1, (d.count() + 999) / 1000));
  };
  for (auto& link : links_) {
    // Built field by field on the object Paho gets: the builder loses properties on copy
    // (paho.mqtt.cpp#444).
    mqtt::connect_options opts;
    if (settings_.protocol_version == 5) {
      opts.set_mqtt_version(MQTTVERSION_5);
      opts.set_clean_session(false);  // Paho C refuses cleansession with MQTT 5
      opts.set_clean_start(true);
    } else {
      opts.set_mqtt_version(MQTTVERSION_3_1_1);
      opts.set_clean_session(true);
    }
    // Clean sessions: what was in flight on a lost connection is re-sent from our outbox.
    opts.set_keep_alive_interval(secs(settings_.keepalive));
    opts.set_connect_timeout(secs(options_.connect_timeout));
    // No Paho automatic reconnect: see ConnectListener.
    opts.set_max_inflight(static_cast<int>(options_.max_in_flight) + 16);
    // One will per connection, which is why there is one connection per site.
    opts.set_will(mqtt::will_options(link->status_topic, std::string("offline"), 1, true));
    if (link->tls) {
      mqtt::ssl_options ssl;
      // set_trust_store, not a CA path: copying ssl_options drops ca_path (paho.mqtt.cpp#337).
      if (!settings_.tls.ca_file.empty()) ssl.set_trust_store(settings_.tls.ca_file);
      if (!settings_.tls.cert_file.empty()) {
        ssl.set_key_store(settings_.tls.cert_file);
        ssl.set_private_key(settings_.tls.key_file);
      }
      ssl.set_enable_server_cert_auth(true);
      ssl.set_verify(true);  // host name check; Paho's default is off (pitfalls.md)
      // No error_handler: setting it crashes or leaks in this Paho (#325, #439).
      opts.set_ssl(ssl);
    }
    if (link->tls) TlsDiagnosis::instance().set_down(link.get(), true);
    if (settings_.auth.username) opts.set_user_name(*settings_.auth.username);
    if (settings_.auth.password) opts.set_password(*settings_.auth.password);
    link->connect_opts = opts;
    link->rng.seed(static_cast<std::uint32_t>(std::hash<std::string>{}(link->client_id) ^
                                              static_cast<std::size_t>(
                                                  Steady::now().time_since_epoch().count())));
    try {
      link->connecting.store(true);
      link->client->connect(link->connect_opts, nullptr, link->connect_listener);
    } catch (const mqtt::exception& e) {
      // Network problems never land here (they are reported asynchronously and retried); this is
      // Paho refusing the request itself, which retrying will not fix.
      throw std::runtime_error("mqtt: site " + link->site + ": connect request rejected: " +
                               e.what());
    }
  }
  // Only now: the worker's maybe_connect() must not race the first connect (and its options)
  // above -- Paho ignores a second connect while one is in progress (MQTT error -18).
  worker_ = std::thread(&MqttPublisher::run, this);
}

void MqttPublisher::maybe_connect(SiteLink& link) {
  if (link.connected.load() || link.connecting.load() || !link.attempt_due()) return;
  link.connecting.store(true);
  try {
    link.client->connect(link.connect_opts, nullptr, link.connect_listener);
  } catch (const mqtt::exception& e) {
    link.connecting.store(false);
    spdlog::warn("mqtt: site {}: connect request failed: {}", link.site, e.what());
    link.retry_later();
  }
}

namespace {

// The alerts of `older` whose state (raised, severity, since) `newer` no longer shows: a raise
// and its clear inside one superseded snapshot would otherwise never be published.
std::vector<AlertState> hidden_transitions(const FacilitySnapshot& older,
                                           const FacilitySnapshot& newer) {
  std::vector<AlertState> out;
  if (older.alerts.empty()) return out;
  auto key = [](const AlertState& a) { return a.site + '\x1f' + a.kind + '\x1f' + a.subject; };
  std::unordered_map<std::string, const AlertState*> now;
  for (const auto& a : newer.alerts) now.emplace(key(a), &a);
  for (const auto& a : older.alerts) {
    const auto it = now.find(key(a));
    if (it == now.end() || it->second->raised != a.raised ||
        it->second->severity != a.severity || it->second->since != a.since) {
      out.push_back(a);
    }
  }
  return out;
}

}  // namespace

void MqttPublisher::publish(std::shared_ptr<const FacilitySnapshot> snap) {
  if (!snap) return;
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    if (pending_) {
      ++superseded_;
      auto hidden = hidden_transitions(*pending_, *snap);
      if (!hidden.empty()) {
        // Only the alerts travel on (no copy of the model state): published before the newer
        // snapshot, with the quality their own value implies (see render_alerts).
        auto mini = std::make_shared<FacilitySnapshot>();
        mini->computed_at = pending_->computed_at;
        mini->config = pending_->config;
        mini->alerts = std::move(hidden);
        alert_backlog_.push_back(std::move(mini));
        if (alert_backlog_.size() > kMaxAlertBacklog) {
          alert_backlog_.pop_front();
          ++alert_backlog_dropped_;
          spdlog::error("mqtt: the worker lags {} snapshots with alert transitions behind the "
                        "model; the oldest transitions are not published ({} so far)",
                        kMaxAlertBacklog, alert_backlog_dropped_);
        }
      }
    }
    pending_ = std::move(snap);
  }
  cv_.notify_one();
}

void MqttPublisher::wake() {
  {
    std::lock_guard lock(mu_);
    work_ = true;
  }
  cv_.notify_one();
}

void MqttPublisher::on_connected(SiteLink& link) {
  // Paho can report one connection twice (paho.mqtt.cpp#322): only the first report of a
  // connection counts, sends the birth message and asks for a republish.
  {
    std::lock_guard birth(link.birth_mu);
    if (link.stopping || link.connected.load()) return;
    // Anything still marked in flight belongs to the previous connection (nothing is sent while
    // disconnected): queue it again before the worker may send on this one.
    outbox_.requeue_site(link.site);
    {
      // The republish is asked for before the connection counts: whoever sees it connected
      // (stats, the worker) finds the refresh already pending, never a snapshot published
      // without it and the refresh coming later, into a broker outage (a TSan-slowed test saw
      // that). Nothing is sent to the link before it counts as connected.
      std::lock_guard lock(mu_);
      refresh_sites_.insert(link.site);
    }
    link.connected.store(true);
    link.connecting.store(false);
    link.reset_backoff();
    link.connects.fetch_add(1);
    if (link.tls) TlsDiagnosis::instance().set_down(&link, false);
    {
      std::lock_guard lock(link.log_mu);
      link.last_failure.clear();
    }
    spdlog::info("mqtt: site {}: connected to {} as {}", link.site, link.broker, link.client_id);
    // The broker may have published our will while we were away: say "online" again, every
    // time, before any data.
    try {
      link.publish_status("online", settings_.protocol_version);
    } catch (const mqtt::exception& e) {
      spdlog::warn("mqtt: site {}: cannot publish \"online\": {}", link.site, e.what());
    }
  }
  cv_.notify_one();
}

void MqttPublisher::on_connection_lost(SiteLink& link, const std::string& cause) {
  if (!link.connected.exchange(false)) return;
  if (link.tls) TlsDiagnosis::instance().set_down(&link, true);
  // Not acknowledged = not delivered, as far as we can know: send it again after the reconnect.
  // (Paho C 1.3.12 loses QoS 1 messages sent into a silently dead connection, #384.)
  const std::size_t n = outbox_.requeue_site(link.site);
  link.retry_later();
  spdlog::warn("mqtt: site {}: connection to {} lost{}{}; reconnecting ({} unacknowledged "
               "messages will be sent again)",
               link.site, link.broker, cause.empty() ? "" : ": ", cause, n);
  wake();
}

void MqttPublisher::offer(RenderedMessage& r, bool force, bool exact,
                          std::vector<OutboxMessage>& out) {
  const auto verdict = filter_.offer(r.topic, r.body, force, exact);
  if (verdict == MqttChangeFilter::Verdict::kUnchanged) {
    unchanged_total_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  OutboxMessage m;
  m.site = std::move(r.site);
  m.topic = std::move(r.topic);
  m.payload = dump_payload(r.body);
  // An alert whose state (raised, severity, since) changed is an event; any other change
  // (its subject's quality, say) and a refresh of an unchanged alert are state messages.
  m.cls = r.kind == MqttTopicKind::kAlert && alert_transitions_.is_event(m.topic, r.body)
              ? MqttClass::kEvent
              : MqttClass::kState;
  m.queued_ms = unix_ms(Clock::now());
  m.expires = settings_.protocol_version == 5 && settings_.message_expiry.count() > 0 &&
              r.kind != MqttTopicKind::kAlert;
  out.push_back(std::move(m));
}

void MqttPublisher::commit(std::vector<OutboxMessage>& out) {
  if (out.empty()) return;
  std::uint64_t seq = outbox_.reserve_seqs(out.size());
  for (auto& m : out) m.seq = seq++;
  if (journal_) {
    try {
      journal_->append(out);  // write-ahead: on disk before it can be sent
    } catch (const std::exception& e) {
      persist_errors_.fetch_add(1);
      const auto now_s = Steady::now();
      if (now_s - last_persist_error_log_ > std::chrono::minutes(1)) {
        last_persist_error_log_ = now_s;
        spdlog::error("{} (messages stay queued in memory; a restart would lose them)", e.what());
      }
    }
  }
  outbox_.push(std::move(out));
  out.clear();
}

void MqttPublisher::enqueue(std::vector<RenderedMessage>& rendered, bool force, bool exact) {
  std::vector<OutboxMessage> out;
  for (auto& r : rendered) offer(r, force, exact, out);
  rendered.clear();
  commit(out);
}

void MqttPublisher::evaluate(const FacilitySnapshot& snap, bool state, bool force_all,
                             const std::set<std::string>& force_sites) {
  std::vector<RenderedMessage> rendered;
  std::vector<OutboxMessage> out;
  for (auto& link : links_) {
    const bool forced = force_all || force_sites.count(link->site) > 0;
    if (state || forced) {
      // One message at a time: rendered, compared, serialised, and its JSON tree freed.
      render_state(snap, settings_.topic_prefix, link->site,
                   [&](RenderedMessage&& r) { offer(r, forced, false, out); });
      commit(out);
    }
    render_alerts(snap, settings_.topic_prefix, link->site, rendered);
    enqueue(rendered, forced, true);
  }
}

void MqttPublisher::evaluate_hidden_alerts(const FacilitySnapshot& snap) {
  std::vector<RenderedMessage> rendered;
  for (auto& link : links_) {
    render_alerts(snap, settings_.topic_prefix, link->site, rendered);
    // Only what was never published: a state already sent from an earlier snapshot stays.
    std::erase_if(rendered, [this](const RenderedMessage& r) {
      return !alert_transitions_.differs(r.topic, r.body);
    });
    enqueue(rendered, false, true);
  }
}

void MqttPublisher::pump(SiteLink& link) {
  if (!link.connected.load() || Steady::now() < link.backoff_until) return;
  auto sends = outbox_.take(link.site, link.window.load(), unix_ms(Clock::now()));
  for (std::size_t i = 0; i < sends.size(); ++i) {
    auto& s = sends[i];
    auto msg = mqtt::make_message(s.topic, std::move(s.payload), settings_.qos, true);
    if (settings_.protocol_version == 5) {
      mqtt::properties props;
      props.add(mqtt::property(mqtt::property::CONTENT_TYPE, std::string("application/json")));
      props.add(mqtt::property(mqtt::property::PAYLOAD_FORMAT_INDICATOR, 1));
      if (s.remaining_expiry_ms > 0)  // what is left of it, rounded up to whole seconds
        props.add(mqtt::property(mqtt::property::MESSAGE_EXPIRY_INTERVAL,
                                 static_cast<int>((s.remaining_expiry_ms + 999) / 1000)));
      msg->set_properties(props);
    }
    try {
      link.client->publish(msg, reinterpret_cast<void*>(static_cast<std::uintptr_t>(s.send_id)),
                           link.delivery);
    } catch (const mqtt::exception& e) {
      const bool permanent = permanent_publish_error(e.get_return_code());
      if (permanent)
        spdlog::warn("mqtt: site {}: Paho refused a message on {}: {}; dropped", link.site,
                     s.topic, e.what());
      outbox_.failed(s.send_id, permanent);
      if (!permanent) {
        // Disconnected in the meantime, or Paho's buffer full: try again a little later; the
        // rest of the batch goes back to the queue untouched.
        link.backoff_until = Steady::now() + std::chrono::milliseconds(100);
        for (std::size_t j = i + 1; j < sends.size(); ++j) outbox_.failed(sends[j].send_id, false);
        return;
      }
    } catch (const std::exception& e) {
      outbox_.failed(s.send_id, false);
      link.backoff_until = Steady::now() + std::chrono::milliseconds(100);
      for (std::size_t j = i + 1; j < sends.size(); ++j) outbox_.failed(sends[j].send_id, false);
      spdlog::warn("mqtt: site {}: publish failed: {}", link.site, e.what());
      return;
    }
  }
}

void MqttPublisher::sync_journal() {
  std::vector<std::uint64_t> seqs;
  std::vector<std::string> dropped_topics;
  outbox_.drain_removed(seqs, dropped_topics);
  // The broker never got these: the next state on their topics must go out, deadband or not.
  for (const auto& t : dropped_topics) filter_.forget(t);
  if (!journal_ || seqs.empty()) return;
  try {
    journal_->erase(seqs);
  } catch (const std::exception& e) {
    persist_errors_.fetch_add(1);
    // Rows left behind are sent again after a restart: duplicates, not losses.
    spdlog::error("{}", e.what());
  }
}

void MqttPublisher::run() {
  Steady::time_point next_state{}, next_refresh{};
  bool over_bound_logged = false;
  for (;;) {
    std::shared_ptr<const FacilitySnapshot> snap;
    std::deque<std::shared_ptr<const FacilitySnapshot>> backlog;
    std::set<std::string> refresh;
    {
      std::unique_lock lock(mu_);
      // The timeout retries sends after a transient error (backoff_until).
      cv_.wait_for(lock, std::chrono::milliseconds(200), [this] {
        return stopping_ || pending_ || !refresh_sites_.empty() || work_;
      });
      if (stopping_) return;
      snap = std::exchange(pending_, nullptr);
      backlog.swap(alert_backlog_);
      refresh.swap(refresh_sites_);
      work_ = false;
    }
    try {
      const auto now = Steady::now();
      for (const auto& old : backlog) evaluate_hidden_alerts(*old);
      if (snap) latest_ = snap;
      if (latest_ && (snap || !refresh.empty())) {
        const bool state_due = snap && now >= next_state;
        const bool refresh_due =
            state_due && settings_.refresh_interval.count() > 0 && now >= next_refresh;
        evaluate(*latest_, state_due, refresh_due, refresh);
        // Keep the phase (every 10 s, not every 10 s plus the wait for the next snapshot), but
        // never try to catch up on missed passes.
        const auto advance = [now](Steady::time_point& next, std::chrono::milliseconds every) {
          next = next + every > now ? next + every : now + every;
        };
        if (state_due) advance(next_state, settings_.publish_interval);
        if (refresh_due) advance(next_refresh, settings_.refresh_interval);
      }
      for (auto& link : links_) {
        maybe_connect(*link);
        pump(*link);
      }
      sync_journal();
      const bool over = outbox_.over_bound();
      if (over && !over_bound_logged)
        spdlog::error("mqtt: the outbox holds only alert events and is over its bound "
                      "(mqtt.outbox); alert events are kept anyway");
      over_bound_logged = over;
    } catch (const std::exception& e) {
      // Rendering bugs must not kill the thread (and with it all future publishing).
      spdlog::error("mqtt: publishing snapshot failed: {}", e.what());
    }
    if (snap) {
      std::lock_guard lock(mu_);
      ++processed_;
    }
  }
}

void MqttPublisher::stop() {
  std::lock_guard lifecycle(lifecycle_mu_);
  if (stopped_) return;
  stopped_ = true;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    pending_.reset();
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();

  if (started_) {
    drain_queued(Steady::now() + options_.stop_timeout);
    const auto deadline = Steady::now() + options_.stop_timeout;
    for (auto& link : links_) {
      std::lock_guard birth(link->birth_mu);
      link->stopping = true;
    }
    wait_offline(publish_offline(deadline), deadline);
    disconnect_all();
  }
  release_clients();
}

// stop(), step 1: keep sending what is queued while connected, until `deadline`.
void MqttPublisher::drain_queued(Steady::time_point deadline) {
  for (;;) {
    bool busy = false;
    for (auto& link : links_) {
      if (!link->connected.load()) continue;
      pump(*link);
      if (outbox_.pending(link->site) > 0) busy = true;
    }
    sync_journal();
    if (outbox_.stats().in_flight > 0) busy = true;
    if (!busy || Steady::now() >= deadline) break;
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, std::chrono::milliseconds(20), [this] { return work_; });
    work_ = false;
  }
}

// stop(), step 2: retained "offline" on every connected site. A full buffer (-12) may drain:
// retry until the deadline rather than disconnecting without it.
std::vector<mqtt::delivery_token_ptr> MqttPublisher::publish_offline(
    Steady::time_point deadline) {
  std::vector<mqtt::delivery_token_ptr> offline(links_.size());
  for (std::size_t i = 0; i < links_.size(); ++i) {
    SiteLink& link = *links_[i];
    if (!link.client->is_connected()) continue;
    for (;;) {
      try {
        offline[i] = link.publish_status("offline", settings_.protocol_version);
        break;
      } catch (const mqtt::exception& e) {
        if (e.get_return_code() != MQTTASYNC_MAX_BUFFERED_MESSAGES || Steady::now() >= deadline) {
          spdlog::error("mqtt: site {}: cannot queue \"offline\" ({}); {} may stay \"online\"",
                        link.site, e.what(), link.status_topic);
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));  // let Paho drain
      }
    }
  }
  return offline;
}

// stop(), step 3: wait for the broker to acknowledge "offline" before disconnecting: Paho
// re-checks a DISCONNECT that waits for in-flight QoS 1 messages only every 3 s, so
// disconnecting first would make every stop take seconds.
void MqttPublisher::wait_offline(const std::vector<mqtt::delivery_token_ptr>& offline,
                                 Steady::time_point deadline) {
  for (std::size_t i = 0; i < links_.size(); ++i) {
    if (!offline[i]) continue;
    bool ok = false;
    try {
      ok = offline[i]->wait_until(deadline);
    } catch (const std::exception&) {  // delivery failed: the token rethrows its error
    }
    if (!ok)
      spdlog::error("mqtt: site {}: \"offline\" not acknowledged before the stop timeout",
                    links_[i]->site);
  }
}

// stop(), step 4: disconnect. Even if "offline" was not acknowledged in time, Paho sends
// DISCONNECT after it on the same connection, so the broker sees "offline" before the clean
// disconnect that discards the will. For a site that is not connected this just stops the
// automatic reconnect (and may throw -3).
void MqttPublisher::disconnect_all() {
  std::vector<mqtt::token_ptr> disc(links_.size());
  for (std::size_t i = 0; i < links_.size(); ++i) {
    try {
      disc[i] = links_[i]->client->disconnect(static_cast<int>(options_.stop_timeout.count()));
    } catch (const mqtt::exception&) {
    }
  }
  const auto disc_deadline = Steady::now() + options_.stop_timeout;
  for (std::size_t i = 0; i < links_.size(); ++i) {
    try {
      if (disc[i]) disc[i]->wait_until(disc_deadline);
    } catch (const std::exception&) {
    }
    links_[i]->connected.store(false);
  }
}

// stop(), steps 5 and 6: destroy the clients and keep or count what is still queued.
void MqttPublisher::release_clients() {
  // 5. Destroy the clients (this ends Paho's retries and threads for them). Their late
  //    callbacks can no longer reach the outbox.
  for (auto& link : links_) {
    link->client.reset();
    if (link->tls) TlsDiagnosis::instance().set_down(link.get(), false);
  }

  // 6. What is still queued: kept on disk for the next start, or counted as dropped.
  sync_journal();
  const auto left = outbox_.stats().messages;
  if (left > 0) {
    if (journal_) {
      spdlog::info("mqtt: {} undelivered messages kept in {} for the next start", left,
                   journal_->path());
    } else {
      outbox_.drop_all(MqttDropReason::kShutdown);
      spdlog::warn("mqtt: {} messages undelivered at stop, dropped (mqtt.outbox.persist keeps "
                   "them across restarts)",
                   left);
      sync_journal();
    }
  }
  journal_.reset();  // releases the file lock
}

MqttPublisher::Stats MqttPublisher::stats() const {
  Stats st;
  const auto o = outbox_.stats();
  st.connected = !links_.empty();
  st.published_total = o.delivered_total;
  st.queued_total = o.queued_total;
  st.unchanged_total = unchanged_total_.load(std::memory_order_relaxed);
  for (std::size_t r = 0; r < kMqttDropReasons; ++r)
    st.dropped_total[to_string(static_cast<MqttDropReason>(r))] = o.dropped_total[r];
  st.queue_messages = o.messages;
  st.queue_bytes = o.bytes;
  st.queue_events = o.events;
  st.in_flight = o.in_flight;
  st.persist_errors_total = persist_errors_.load(std::memory_order_relaxed);
  for (const auto& link : links_) {
    SiteStats s;
    s.site = link->site;
    s.client_id = link->client_id;
    s.connected = link->connected.load();
    s.connects_total = link->connects.load();
    s.queue_messages = outbox_.pending(link->site);
    st.connected = st.connected && s.connected;
    st.published_total += link->status_published.load();
    st.connects_total += s.connects_total;
    st.sites.push_back(std::move(s));
  }
  {
    std::lock_guard lock(mu_);
    st.snapshots_superseded = superseded_;
    st.alert_backlog_dropped = alert_backlog_dropped_;
    st.snapshots_processed = processed_;
  }
  return st;
}

}  // namespace facility
