#include "daemon/daemon.h"

#include <prometheus/exposer.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <sstream>
#include <stdexcept>
#include <unordered_map>

#include "daemon/history.h"
#include "daemon/metrics_http.h"
#include "daemon/mqtt_publisher.h"
#include "daemon/polling.h"
#include "daemon/report_http.h"
#include "daemon/shard.h"

namespace facility {
namespace {

double unix_now() { return std::chrono::duration<double>(Clock::now().time_since_epoch()).count(); }

// Devices this daemon polls (its shard's), and how many of them are up.
struct UpCount {
  std::size_t up = 0, polled = 0;
};
UpCount count_up(const FacilitySnapshot& snap) {
  UpCount n;
  const ShardSettings& shard = snap.config->daemon.shard;
  for (const auto& d : snap.devices) {
    if (!owns_device(shard, *d.device)) continue;
    ++n.polled;
    n.up += d.up ? 1 : 0;
  }
  return n;
}

// Everything that decides what a device's reading means. Two configurations that give a device
// the same fingerprint read and interpret it identically, so its last reading stays valid.
std::string device_fingerprint(const Config& cfg, const Device& d) {
  std::ostringstream os;
  os.precision(17);
  os << d.site << '|' << to_string(d.kind) << '|' << d.endpoint.key() << '|' << d.unit << '|'
     << d.cabinet << '|' << d.feed << '|' << d.room << '|' << to_string(d.role) << '|'
     << d.interval.count() << '|' << cfg.daemon.stale_after_intervals << '|' << d.profile_name;
  if (d.profile) {
    for (const auto& p : d.profile->points) {
      const auto& s = p.spec;
      os << '|' << s.name << ',' << int(s.kind) << ',' << s.address << ',' << int(s.type) << ','
         << int(s.order) << ',' << s.bit << ',' << s.length << ',' << s.scale << ',' << s.offset
         << ',' << s.unit;
      for (auto v : s.not_available) os << ",na" << v;
      for (const auto& [c, n] : s.enum_names) os << ",e" << c << '=' << n;
    }
  }
  return os.str();
}

}  // namespace

Daemon::Daemon(std::shared_ptr<const Config> config, DaemonOptions opt)
    : opt_(std::move(opt)), config_(std::move(config)), transitions_(opt_.transition_log) {
  reload_status_.last_success_unix = unix_now();
}

Daemon::~Daemon() { stop(); }

std::shared_ptr<const FacilitySnapshot> Daemon::snapshot() const {
  std::lock_guard lock(src_mu_);
  return snapshot_;
}

ScrapeSources Daemon::scrape_sources() const {
  ScrapeSources s;
  std::lock_guard lock(src_mu_);
  s.config = config_;
  s.snapshot = snapshot_;
  s.collector = stats_;
  s.history = history_;
  s.reload = reload_status_;
  if (mqtt_) {
    s.mqtt = [m = mqtt_, cfg = config_] {
      MqttStatsView v;
      const auto st = m->stats();
      v.enabled = true;
      v.connected = st.connected;
      v.published = st.published_total;
      v.dropped = st.dropped_total;
      v.queued = st.queue_messages;
      v.queue_bytes = st.queue_bytes;
      v.queue_limit_messages = cfg->mqtt.outbox.max_messages;
      v.queue_limit_bytes = cfg->mqtt.outbox.max_bytes;
      v.queued_total = st.queued_total;
      v.unchanged = st.unchanged_total;
      v.connects = st.connects_total;
      v.persist_errors = st.persist_errors_total;
      v.alert_backlog_dropped = st.alert_backlog_dropped;
      return v;
    };
  }
  return s;
}

std::size_t Daemon::endpoint_count() const { return polling_ ? polling_->endpoint_count() : 0; }

int Daemon::metrics_port() const {
  if (!exposer_) return 0;
  auto ports = exposer_->GetListeningPorts();
  return ports.empty() ? 0 : ports.front();
}

std::string Daemon::metrics_url() const {
  const std::string host = listen_.substr(0, listen_.rfind(':'));
  return "http://" + host + ":" + std::to_string(metrics_port()) + "/metrics";
}

void Daemon::start() {
  std::shared_ptr<const Config> cfg;
  {
    std::lock_guard lock(src_mu_);
    cfg = config_;
  }
  listen_ = opt_.listen.value_or(cfg->daemon.listen);
  try {
    // Four workers: concurrent scrapes (HA Prometheus pairs) and a report being computed never
    // wait for each other.
    exposer_ = std::make_unique<prometheus::Exposer>(listen_, 4, HttpGate::callbacks());
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot listen on " + listen_ + " for /metrics: " + e.what() +
                             " (is another process using the port? set daemon.listen or --listen)");
  }
  exposition_ = std::make_shared<Exposition>(opt_.exposition);
  gate_ = std::make_unique<HttpGate>(metrics_port());
  gate_->set_auth(cfg->daemon.auth);
  gate_->set_metrics(exposition_, [this] { return scrape_sources(); });
  if (cfg->daemon.auth.password) {
    spdlog::info("HTTP basic authentication on every route (user from {}, password from {})",
                 cfg->daemon.auth.username_source, cfg->daemon.auth.password_source);
  }
  try {
    start_pipeline(cfg);
  } catch (...) {
    // ~Daemon does nothing for a daemon that never started: undo here what did start (the
    // history writer's thread, the listener), so nothing outlives the failure half-running.
    teardown();
    throw;
  }
  gate_->publish();  // only now: the first request already meets the authentication
  started_ = true;
}

void Daemon::start_pipeline(std::shared_ptr<const Config> cfg) {
  const ShardSettings& shard = cfg->daemon.shard;
  auto stats = std::make_shared<CollectorStats>();
  // A shard polls only its devices; the model still sees the whole inventory, so what it
  // cannot know whole it leaves out (daemon/shard.h).
  std::shared_ptr<const Config> poll_cfg =
      shard.sharded() ? std::make_shared<const Config>(devices_of_shard(*cfg)) : cfg;
  polling_ = std::make_unique<PollingService>(*poll_cfg, store_, *stats, nullptr, &transitions_);
  if (shard.sharded()) {
    std::size_t mine = 0, all = 0;
    for (const auto& s : poll_cfg->sites) mine += s.devices.size();
    for (const auto& s : cfg->sites) all += s.devices.size();
    spdlog::info("shard {}: polling {} of {} devices", shard.text(), mine, all);
  }

  // First snapshot before anything can scrape, so /metrics is never half-initialised.
  model_ = std::make_unique<FacilityModel>(cfg);
  auto first = model_->update(store_.snapshot(), Clock::now());

  ensure_state_dir(*cfg);
  const std::string history_file = start_history(cfg);

  std::shared_ptr<MqttPublisher> mqtt;
  if (cfg->mqtt.enabled && !opt_.no_mqtt) {
    MqttSettings ms = cfg->mqtt;
    if (opt_.mqtt_broker) ms.broker = *opt_.mqtt_broker;
    std::vector<std::string> site_ids;
    for (const auto& s : cfg->sites) site_ids.push_back(s.id);
    MqttPublisherOptions mo;
    mo.state_dir = cfg->daemon.state_dir;
    mqtt = std::make_shared<MqttPublisher>(ms, site_ids, mo);
    mqtt->start();
  }
  {
    std::lock_guard lock(src_mu_);
    config_ = cfg;
    snapshot_ = std::move(first);
    stats_ = stats;
    mqtt_ = mqtt;
  }
  routes_ = std::make_unique<HttpRoutes>(metrics_port(), cfg, history_file);
  gate_->set_auth(cfg->daemon.auth);

  polling_->start();
  last_status_.clear();  // main() announced "Reloading" or nothing yet: say it again
  {
    std::lock_guard lock(mu_);
    stopping_ = false;
  }
  model_thread_ = std::thread([this] { model_loop(); });
}

void Daemon::stop_pipeline() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (model_thread_.joinable()) model_thread_.join();
  std::shared_ptr<MqttPublisher> mqtt;
  std::shared_ptr<HistoryWriter> history;
  {
    std::lock_guard lock(src_mu_);
    mqtt = mqtt_;
    history = history_;
  }
  if (mqtt) mqtt->stop();
  if (polling_) polling_->stop();
  if (history) {
    // The minute in progress too, so a clean restart or reload loses nothing.
    if (history_recorder_) history->submit(history_recorder_->flush());
    history->stop();
  }
  history_recorder_.reset();
}

// The state directory holds the history database and the MQTT outbox journal. Under systemd it
// exists (StateDirectory=); when run by hand it is created like `mkdir -p`, owner-only. If that
// fails, the history and the journal report their own clear errors and the daemon monitors on.
void Daemon::ensure_state_dir(const Config& config) const {
  namespace fs = std::filesystem;
  const fs::path dir = config.daemon.state_dir;
  std::error_code ec;
  if (dir.empty() || fs::is_directory(dir, ec)) return;
  if (fs::create_directories(dir, ec)) {
    fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace, ec);
    spdlog::info("created state directory {}", dir.string());
  } else if (ec) {
    spdlog::warn("cannot create state directory {}: {}", dir.string(), ec.message());
  }
}

// Returns the database path, or "" when the history is off.
std::string Daemon::start_history(const std::shared_ptr<const Config>& cfg) {
  std::shared_ptr<HistoryWriter> writer;
  std::string path;
  if (cfg->history.enabled) {
    path = history_path(*cfg);
    writer = std::make_shared<HistoryWriter>(cfg, path);
    try {
      writer->start();
      history_recorder_ = std::make_unique<HistoryRecorder>(cfg);
      spdlog::info("history in {}", path);
    } catch (const std::exception& e) {
      // Monitoring matters more than the history: run without it, and say so (and
      // facility_history_up says 0).
      spdlog::error("history disabled: {} (set daemon.state_dir, or history.enabled: false)",
                    e.what());
      writer.reset();
      path.clear();
    }
  }
  std::lock_guard lock(src_mu_);
  history_ = std::move(writer);
  return path;
}

bool Daemon::reload(std::shared_ptr<const Config> cfg) {
  if (!started_) return false;
  std::shared_ptr<const Config> old;
  {
    std::lock_guard lock(src_mu_);
    old = config_;
  }
  if (!opt_.listen && cfg->daemon.listen != listen_) {
    spdlog::warn("daemon.listen changed to {}: the listener stays on {} until facilityd "
                 "restarts", cfg->daemon.listen, listen_);
  }
  stop_pipeline();

  // Keep the readings of devices whose meaning did not change; forget the others (removed,
  // moved, re-mapped), so nothing of theirs is presented under the new configuration.
  std::unordered_map<std::string, std::string> before;
  for (const Device* d : old->all_devices()) before[d->id] = device_fingerprint(*old, *d);
  std::unordered_map<std::string, bool> keep;
  for (const Device* d : cfg->all_devices()) {
    auto it = before.find(d->id);
    keep[d->id] = it != before.end() && it->second == device_fingerprint(*cfg, *d) &&
                  owns_device(cfg->daemon.shard, *d);
  }
  store_.retain([&keep](const std::string& id) {
    auto it = keep.find(id);
    return it != keep.end() && it->second;
  });

  try {
    start_pipeline(cfg);
  } catch (const std::exception& e) {
    spdlog::error("reload: cannot start with the new configuration: {}; going back to the "
                  "previous one", e.what());
    stop_pipeline();
    try {
      start_pipeline(old);
    } catch (const std::exception& again) {
      // Nothing is polling now; the caller stops the daemon and exits (the service manager
      // restarts it) rather than run a listener over a dead pipeline.
      throw std::runtime_error(std::string("reload: the previous configuration cannot start "
                                           "again either: ") + again.what());
    }
    reload_failed();
    return false;
  }
  {
    std::lock_guard lock(src_mu_);
    reload_status_.last_successful = true;
    reload_status_.last_success_unix = unix_now();
  }
  return true;
}

void Daemon::reload_failed() {
  std::lock_guard lock(src_mu_);
  reload_status_.last_successful = false;
}

void Daemon::model_loop() {
  bool first_cycle_logged = false;
  const auto t0 = std::chrono::steady_clock::now();
  std::shared_ptr<MqttPublisher> mqtt;
  std::shared_ptr<HistoryWriter> history;
  {
    std::lock_guard lock(src_mu_);
    mqtt = mqtt_;
    history = history_;
  }
  while (true) {
    {
      std::unique_lock lock(mu_);
      if (cv_.wait_for(lock, opt_.model_interval, [this] { return stopping_; })) break;
    }
    if (opt_.model_cycle_hook) opt_.model_cycle_hook();
    auto snap = model_->update(store_.snapshot(), Clock::now());
    {
      std::lock_guard lock(src_mu_);
      snapshot_ = snap;
    }
    log_device_transitions(*snap);
    notify_systemd(*snap);
    if (!first_cycle_logged) {
      const auto [up, polled] = count_up(*snap);
      if (up == polled || std::chrono::steady_clock::now() - t0 > std::chrono::minutes(2)) {
        spdlog::info("first poll cycle complete after {:.1f} s: {} of {} devices up",
                     std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
                     up, polled);
        first_cycle_logged = true;
      }
    }
    if (history_recorder_ && history) {
      auto minutes = history_recorder_->add(*snap);
      if (!minutes.empty()) history->submit(std::move(minutes));
    }
    // Every cycle: the publisher checks alerts on each snapshot and state topics every
    // mqtt.publish_interval; handing over never waits.
    if (mqtt) mqtt->publish(snap);
  }
}

void Daemon::log_device_transitions(const FacilitySnapshot& snap) {
  const ShardSettings& shard = snap.config->daemon.shard;
  for (const auto& d : snap.devices) {
    if (!owns_device(shard, *d.device)) continue;
    auto& logged = logged_state_[d.device->id];
    // Not polled yet (start, reload): nothing to say; the first-cycle summary covers start-up.
    const bool attempted = d.up || !d.last_error.empty() || d.last_success != TimePoint{};
    if (!attempted) continue;
    if (d.up && logged == LoggedState::kDown) {
      transitions_.up("device", d.device->id);
    } else if (!d.up && logged != LoggedState::kDown) {
      std::string reason = d.last_error;
      if (reason.empty()) {
        const auto age = std::chrono::duration_cast<std::chrono::seconds>(snap.computed_at -
                                                                           d.last_success);
        reason = "stale: no successful poll for " + std::to_string(age.count()) + " s";
      }
      transitions_.down("device", d.device->id, reason);
    }
    logged = d.up ? LoggedState::kUp : LoggedState::kDown;
  }
  transitions_.flush();
}

void Daemon::notify_systemd(const FacilitySnapshot& snap) {
  if (!opt_.notify) return;
  const auto [up, polled] = count_up(snap);
  std::string status = "STATUS=" + std::to_string(up) + " of " + std::to_string(polled) +
                       " devices up, " + std::to_string(snap.sites.size()) + " site" +
                       (snap.sites.size() == 1 ? "" : "s");
  std::string msg;
  if (status != last_status_) {
    last_status_ = status;
    msg = status;
  }
  if (opt_.watchdog) msg += (msg.empty() ? "" : "\n") + std::string("WATCHDOG=1");
  if (!msg.empty()) opt_.notify(msg);
}

void Daemon::stop() {
  if (!started_) return;
  started_ = false;
  teardown();
}

// Safe on a partly started pipeline. The listener closes before the sources it reads from are
// released, so no request can reach a stopped writer.
void Daemon::teardown() {
  stop_pipeline();
  routes_.reset();
  gate_.reset();
  exposer_.reset();
  std::lock_guard lock(src_mu_);
  mqtt_.reset();
  history_.reset();
}

}  // namespace facility
