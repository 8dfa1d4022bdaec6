#include "daemon/daemon.h"

#include <prometheus/exposer.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <stdexcept>

#include "daemon/history.h"
#include "daemon/history_metrics.h"
#include "daemon/metrics.h"
#include "daemon/mqtt_publisher.h"
#include "daemon/polling.h"
#include "daemon/report_http.h"

namespace facility {

Daemon::Daemon(std::shared_ptr<const Config> config, DaemonOptions opt)
    : config_(std::move(config)), opt_(std::move(opt)) {
  config_loaded_at_ =
      std::chrono::duration<double>(Clock::now().time_since_epoch()).count();
}

Daemon::~Daemon() { stop(); }

std::shared_ptr<const FacilitySnapshot> Daemon::snapshot() const {
  std::lock_guard lock(snap_mu_);
  return snapshot_;
}

std::size_t Daemon::endpoint_count() const { return polling_ ? polling_->endpoint_count() : 0; }

int Daemon::metrics_port() const {
  if (!exposer_) return 0;
  auto ports = exposer_->GetListeningPorts();
  return ports.empty() ? 0 : ports.front();
}

std::string Daemon::metrics_url() const {
  const std::string listen = opt_.listen.value_or(config_->daemon.listen);
  const std::string host = listen.substr(0, listen.rfind(':'));
  return "http://" + host + ":" + std::to_string(metrics_port()) + "/metrics";
}

void Daemon::start() {
  const std::string listen = opt_.listen.value_or(config_->daemon.listen);
  try {
    exposer_ = std::make_unique<prometheus::Exposer>(listen, 2, HttpRoutes::callbacks());
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot listen on " + listen + " for /metrics: " + e.what() +
                             " (is another process using the port? set daemon.listen or --listen)");
  }

  // First snapshot before anything can scrape, so /metrics is never half-initialised.
  {
    std::lock_guard lock(snap_mu_);
    model_ = std::make_unique<FacilityModel>(config_);
    snapshot_ = model_->update(store_.snapshot(), Clock::now());
  }

  ensure_state_dir();
  start_history();

  if (config_->mqtt.enabled && !opt_.no_mqtt) {
    MqttSettings ms = config_->mqtt;
    if (opt_.mqtt_broker) ms.broker = *opt_.mqtt_broker;
    std::vector<std::string> site_ids;
    for (const auto& s : config_->sites) site_ids.push_back(s.id);
    MqttPublisherOptions mo;
    mo.state_dir = config_->daemon.state_dir;
    mqtt_ = std::make_unique<MqttPublisher>(ms, site_ids, mo);
    mqtt_->start();
  }

  ExpositionSources src;
  src.snapshot = [this] { return snapshot(); };
  src.collector = &stats_;
  src.config_loaded_at = config_loaded_at_;
  if (mqtt_) {
    src.mqtt = [this] {
      MqttStatsView v;
      const auto s = mqtt_->stats();
      v.enabled = true;
      v.connected = s.connected;
      v.published = s.published_total;
      v.dropped = s.dropped_total;
      v.queued = s.queue_messages;
      v.queue_bytes = s.queue_bytes;
      v.queue_limit_messages = config_->mqtt.outbox.max_messages;
      v.queue_limit_bytes = config_->mqtt.outbox.max_bytes;
      v.queued_total = s.queued_total;
      v.unchanged = s.unchanged_total;
      v.connects = s.connects_total;
      v.persist_errors = s.persist_errors_total;
      return v;
    };
  }
  collectable_ = std::make_shared<SnapshotCollectable>(std::move(src));
  exposer_->RegisterCollectable(collectable_);

  polling_ = std::make_unique<PollingService>(*config_, store_, stats_);
  polling_->start();
  model_thread_ = std::thread([this] { model_loop(); });
  started_ = true;
}

// The state directory holds the history database and the MQTT outbox journal. Under systemd it
// exists (StateDirectory=); when run by hand it is created like `mkdir -p`, owner-only. If that
// fails, the history and the journal report their own clear errors and the daemon monitors on.
void Daemon::ensure_state_dir() const {
  namespace fs = std::filesystem;
  const fs::path dir = config_->daemon.state_dir;
  std::error_code ec;
  if (dir.empty() || fs::is_directory(dir, ec)) return;
  if (fs::create_directories(dir, ec)) {
    fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace, ec);
    spdlog::info("created state directory {}", dir.string());
  } else if (ec) {
    spdlog::warn("cannot create state directory {}: {}", dir.string(), ec.message());
  }
}

void Daemon::start_history() {
  std::string path;
  if (config_->history.enabled) {
    path = history_path(*config_);
    history_ = std::make_unique<HistoryWriter>(config_, path);
    try {
      history_->start();
      history_recorder_ = std::make_unique<HistoryRecorder>(config_);
      spdlog::info("history in {}", path);
    } catch (const std::exception& e) {
      // Monitoring matters more than the history: run without it, and say so (and
      // facility_history_up says 0).
      spdlog::error("history disabled: {} (set daemon.state_dir, or history.enabled: false)",
                    e.what());
      history_.reset();
      path.clear();
    }
  }
  history_collectable_ = std::make_shared<HistoryCollectable>(history_.get());
  exposer_->RegisterCollectable(history_collectable_);
  routes_ = std::make_unique<HttpRoutes>(metrics_port(), config_, path);
}

void Daemon::model_loop() {
  bool first_cycle_logged = false;
  const auto t0 = std::chrono::steady_clock::now();
  while (true) {
    {
      std::unique_lock lock(mu_);
      if (cv_.wait_for(lock, opt_.model_interval, [this] { return stopping_; })) break;
    }
    auto snap = model_->update(store_.snapshot(), Clock::now());
    {
      std::lock_guard lock(snap_mu_);
      snapshot_ = snap;
    }
    if (!first_cycle_logged) {
      std::size_t up = 0;
      for (const auto& d : snap->devices) up += d.up ? 1 : 0;
      if (up == snap->devices.size() ||
          std::chrono::steady_clock::now() - t0 > std::chrono::minutes(2)) {
        spdlog::info("first poll cycle complete after {:.1f} s: {} of {} devices up",
                     std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
                     up, snap->devices.size());
        first_cycle_logged = true;
      }
    }
    if (history_recorder_) {
      auto minutes = history_recorder_->add(*snap);
      if (!minutes.empty()) history_->submit(std::move(minutes));
    }
    // Every cycle: the publisher checks alerts on each snapshot and state topics every
    // mqtt.publish_interval; handing over never waits.
    if (mqtt_) mqtt_->publish(snap);
  }
}

void Daemon::stop() {
  if (!started_) return;
  started_ = false;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (model_thread_.joinable()) model_thread_.join();
  if (mqtt_) mqtt_->stop();
  if (polling_) polling_->stop();
  routes_.reset();
  if (history_) {
    // The minute in progress too, so a clean restart loses nothing.
    history_->submit(history_recorder_->flush());
    history_->stop();
  }
  if (exposer_ && collectable_) exposer_->RemoveCollectable(collectable_);
  if (exposer_ && history_collectable_) exposer_->RemoveCollectable(history_collectable_);
  exposer_.reset();
}

}  // namespace facility
