#include "daemon/daemon.h"

#include <prometheus/exposer.h>
#include <spdlog/spdlog.h>

#include <stdexcept>

#include "daemon/metrics.h"
#include "daemon/mqtt_publisher.h"
#include "daemon/polling.h"

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
    exposer_ = std::make_unique<prometheus::Exposer>(listen, 2);
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
  if (exposer_ && collectable_) exposer_->RemoveCollectable(collectable_);
  exposer_.reset();
}

}  // namespace facility
