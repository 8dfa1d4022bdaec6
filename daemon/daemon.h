// The facilityd service: pollers per endpoint -> reading store -> facility model -> sinks
// (Prometheus /metrics, MQTT).
//
// start() validates the environment (the listen address binds) before anything is announced;
// stop() shuts down sinks first, then pollers. Non-copyable, non-movable: it owns threads.
//
// Thread-safety: start()/stop() from the owning thread; snapshot() from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "daemon/collector_stats.h"
#include "daemon/config.h"
#include "daemon/model.h"
#include "daemon/readings.h"

namespace prometheus {
class Exposer;
}

namespace facility {

class MqttPublisher;
class HistoryRecorder;
class HistoryWriter;
class HistoryCollectable;
class HttpRoutes;
class SnapshotCollectable;
class PollingService;

struct DaemonOptions {
  std::optional<std::string> listen;       // overrides daemon.listen
  std::optional<std::string> mqtt_broker;  // overrides mqtt.broker
  bool no_mqtt = false;
  std::chrono::milliseconds model_interval{1000};
};

class Daemon {
 public:
  Daemon(std::shared_ptr<const Config> config, DaemonOptions opt);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Throws std::runtime_error with a clear message if the metrics listener cannot bind.
  void start();
  void stop();

  std::shared_ptr<const FacilitySnapshot> snapshot() const;
  int metrics_port() const;  // the bound port (useful with listen port 0)
  std::string metrics_url() const;
  std::size_t endpoint_count() const;

 private:
  void model_loop();
  void ensure_state_dir() const;
  void start_history();

  std::shared_ptr<const Config> config_;
  DaemonOptions opt_;
  double config_loaded_at_ = 0;
  ReadingStore store_;
  CollectorStats stats_;
  std::unique_ptr<PollingService> polling_;
  std::unique_ptr<FacilityModel> model_;  // used by the model thread only (after start)

  mutable std::mutex snap_mu_;
  std::shared_ptr<const FacilitySnapshot> snapshot_;

  std::unique_ptr<prometheus::Exposer> exposer_;
  std::shared_ptr<SnapshotCollectable> collectable_;
  std::unique_ptr<MqttPublisher> mqtt_;
  // History (daemon/history.h): the recorder runs on the model thread, the writer on its own.
  std::unique_ptr<HistoryRecorder> history_recorder_;
  std::unique_ptr<HistoryWriter> history_;
  std::shared_ptr<HistoryCollectable> history_collectable_;
  std::unique_ptr<HttpRoutes> routes_;  // "/" and /reports on the metrics listener

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread model_thread_;
  bool started_ = false;
};

}  // namespace facility
