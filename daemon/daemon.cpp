#include "daemon/daemon.h"

#include <prometheus/exposer.h>
#include <spdlog/spdlog.h>

#include <map>
#include <stdexcept>

#include "daemon/metrics.h"
#include "daemon/mqtt_publisher.h"

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
    snapshot_ = compute_snapshot(config_, store_.snapshot(), Clock::now());
  }

  if (config_->mqtt.enabled && !opt_.no_mqtt) {
    MqttSettings ms = config_->mqtt;
    if (opt_.mqtt_broker) ms.broker = *opt_.mqtt_broker;
    std::vector<std::string> site_ids;
    for (const auto& s : config_->sites) site_ids.push_back(s.id);
    mqtt_ = std::make_unique<MqttPublisher>(ms, site_ids);
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
      return v;
    };
  }
  collectable_ = std::make_shared<SnapshotCollectable>(std::move(src));
  exposer_->RegisterCollectable(collectable_);

  // Group devices by endpoint: one poller (one connection, one thread) per endpoint.
  std::map<std::string, std::pair<modbus::EndpointOptions, std::vector<modbus::DeviceSpec>>> eps;
  for (const Device* d : config_->all_devices()) {
    auto& [eo, specs] = eps[d->endpoint.key()];
    eo.host = d->endpoint.host;
    eo.port = d->endpoint.port;
    modbus::DeviceSpec spec;
    spec.id = d->id;
    spec.unit = d->unit;
    spec.interval = d->interval;
    spec.timeout = d->timeout;
    spec.max_registers_per_read = d->profile->max_registers_per_read;
    for (const auto& p : d->profile->points) spec.points.push_back(p.spec);
    specs.push_back(std::move(spec));
  }
  for (auto& [key, v] : eps) {
    auto& [eo, specs] = v;
    pollers_.push_back(std::make_unique<modbus::EndpointPoller>(
        eo, std::move(specs),
        [this](const modbus::PollResult& r) {
          stats_.on_poll(r.device_id, std::chrono::duration<double>(r.duration).count());
          if (r.ok) {
            DeviceReading dr;
            dr.device_id = r.device_id;
            dr.polled_at = r.completed_at;
            for (const auto& v : r.values) dr.points[v.name] = PointValue{v.value, v.unit};
            store_.put_success(std::move(dr));
          } else {
            store_.put_failure(r.device_id, r.completed_at, r.error);
            spdlog::debug("poll {} failed: {}", r.device_id, r.error);
          }
        },
        [this](const modbus::RequestEvent& e) { stats_.on_request(e); }));
  }
  for (auto& p : pollers_) p->start();
  model_thread_ = std::thread([this] { model_loop(); });
  started_ = true;
}

void Daemon::model_loop() {
  auto last_publish = std::chrono::steady_clock::now() - std::chrono::hours(1);
  bool first_cycle_logged = false;
  const auto t0 = std::chrono::steady_clock::now();
  while (true) {
    {
      std::unique_lock lock(mu_);
      if (cv_.wait_for(lock, opt_.model_interval, [this] { return stopping_; })) break;
    }
    auto snap = compute_snapshot(config_, store_.snapshot(), Clock::now());
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
    const auto now = std::chrono::steady_clock::now();
    if (mqtt_ && now - last_publish >= config_->mqtt.publish_interval) {
      mqtt_->publish(snap);
      last_publish = now;
    }
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
  for (auto& p : pollers_) p->stop();
  if (exposer_ && collectable_) exposer_->RemoveCollectable(collectable_);
  exposer_.reset();
}

}  // namespace facility
