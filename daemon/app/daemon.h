// The facilityd service: pollers per endpoint -> reading store -> facility model -> sinks
// (a list of daemon/sinks/sink.h: the Prometheus exposition, then what daemon/app/sinks.cpp
// registers: the history and MQTT).
//
// start() validates the environment (the listen address binds) before anything is announced;
// stop() shuts down sinks first, then pollers. Non-copyable, non-movable: it owns threads.
//
// reload() (SIGHUP) applies a new, already validated configuration without restarting the
// process. What survives a reload (docs/prometheus.md, "Reload"):
//   * the HTTP listener (its address: a changed daemon.listen needs a restart) and everything
//     it serves; basic-auth credentials and the report routes switch to the new configuration;
//   * the latest reading of every device whose definition (site, kind, endpoint, unit, place,
//     role, register map) is unchanged, so its series do not blink;
// and what restarts: the pollers (new connections), the facility model (alert hold timers,
// in-memory energy windows and peaks start again; facility_site_energy_joules_total restarts
// from 0, which Prometheus' increase() treats as a counter reset), the MQTT publisher and the
// history writer. Devices removed from the configuration disappear from /metrics at once.
//
// Thread-safety: start()/reload()/stop() from the owning thread; snapshot() and
// scrape_sources() from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "daemon/config/config.h"
#include "daemon/logging/logging.h"
#include "daemon/model/model.h"
#include "daemon/polling/collector_stats.h"
#include "daemon/polling/polling.h"
#include "daemon/readings/readings.h"
#include "daemon/sinks/prometheus/exposition.h"
#include "daemon/sinks/sink.h"
#include "daemon/web/live_view.h"

namespace facility {

namespace http {
class Server;
}
class HttpGate;
class PrometheusSink;

// The model's step when DaemonOptions::model_interval is 0: 0.8 x the shortest poll interval of
// the configuration, within [250 ms, 5 s]; 1 s without devices. A value is read at most one poll
// interval before a step and exported until the next step, so at 0.8 x the interval (and a step
// that takes less than 0.2 x) no exported value is older than two poll intervals; and a site
// polled every 10 s pays for a snapshot every 5 s, not every second (docs/metrics.md, "Snapshot").
std::chrono::milliseconds auto_model_step(const Config& config);

struct DaemonOptions {
  std::optional<std::string> listen;       // overrides daemon.listen
  std::optional<std::string> mqtt_broker;  // overrides mqtt.broker
  bool no_mqtt = false;
  // How often the model makes a snapshot; 0 = auto_model_step(config).
  std::chrono::milliseconds model_interval{0};
  // systemd notifications (sd_notify state strings such as "STATUS=..."); empty: none. The
  // model loop sends STATUS= (devices up / polled) when it changes, and WATCHDOG=1 after every
  // snapshot when `watchdog` is set: a stuck model loop stops the pings, so systemd's
  // WatchdogSec= restarts a daemon that no longer produces data (not merely one whose process
  // is alive).
  std::function<void(const std::string&)> notify;
  bool watchdog = false;
  // Called at the start of every model cycle, on the model thread. Tests block in it to stall
  // the loop.
  std::function<void()> model_cycle_hook;
  // Devices and endpoints going down and up: logged once per transition, rate-limited.
  TransitionLog::Options transition_log;
};

class Daemon {
 public:
  Daemon(std::shared_ptr<const Config> config, DaemonOptions opt);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Throws std::runtime_error with a clear message if the metrics listener cannot bind, or
  // what a sink throws (e.g. an MQTT broker URI Paho refuses); after a throw nothing started
  // by this call is left running and the listener is closed.
  void start();
  void stop();

  // Switches to `config` (loaded and validated by the caller). Returns false and keeps the
  // previous configuration running if the new one cannot be started; the reason is logged.
  // Throws only if the previous configuration cannot start again either (then nothing polls
  // and the caller should stop()).
  bool reload(std::shared_ptr<const Config> config);
  // Records a reload that failed before reload() (the new file did not load): the previous
  // configuration stays in effect and facility_config_last_reload_successful becomes 0.
  void reload_failed();

  std::shared_ptr<const FacilitySnapshot> snapshot() const;
  ScrapeSources scrape_sources() const;
  int metrics_port() const;  // the bound port (useful with listen port 0)
  std::string metrics_url() const;
  std::size_t endpoint_count() const;

 private:
  // `plan`: the configuration's poll plan (poll_plan_of). keep_polling: the running
  // PollingService (and its statistics) polls on unchanged -- a reload whose poll plan is the
  // same as the running one. Otherwise a halted PollingService (a reload) hands what is
  // unchanged in the new plan to its successor.
  void start_pipeline(std::shared_ptr<const Config> config, PollPlan plan,
                      bool keep_polling = false);
  void replace_polling(PollPlan plan, const std::shared_ptr<CollectorStats>& stats);
  void stop_pipeline(bool keep_polling = false);
  void teardown();  // stop_pipeline() and close the listener
  void model_loop(std::chrono::milliseconds step);
  // After each snapshot: device transitions to the log, STATUS= and WATCHDOG=1 to systemd.
  void log_device_transitions(const FacilitySnapshot& snap);
  void notify_systemd(const FacilitySnapshot& snap);
  void ensure_state_dir(const Config& config) const;
  ScrapeSources live_sources() const;

  DaemonOptions opt_;
  std::string listen_;  // the address the listener was bound with

  ReadingStore store_;  // survives reloads (devices whose definition changed are dropped)

  // What scrapes read; replaced on reload under src_mu_.
  mutable std::mutex src_mu_;
  std::shared_ptr<const Config> config_;
  std::shared_ptr<CollectorStats> stats_;
  // Every sink of the running pipeline, the Prometheus exposition first.
  std::vector<std::shared_ptr<Sink>> sinks_;
  ReloadStatus reload_status_;

  // The pipeline of one configuration (owning thread and model thread only).
  std::unique_ptr<PollingService> polling_;
  std::shared_ptr<CollectorStats> polling_stats_;  // what polling_ counts into, as long as it
  PollPlan plan_;  // what polling_ runs (a reload compares the new configuration's with it)
  std::unique_ptr<FacilityModel> model_;

  // The listener and the exposition it serves: kept across reloads. The gate (authentication,
  // /metrics, the report routes) outlives the server that calls it.
  std::shared_ptr<PrometheusSink> prometheus_;
  // The NOC view's snapshot and last hour per cabinet: lives as long as the listener, like the
  // exposition (daemon/web/live_view.h).
  std::shared_ptr<LiveView> live_view_;
  std::unique_ptr<HttpGate> gate_;
  std::unique_ptr<http::Server> server_;
  std::function<void(MetricWriter&)> listener_health_;  // under src_mu_

  // Model thread only (the thread is joined across reloads, so states survive them): what the
  // log last said of each device, by id.
  enum class LoggedState { kUnknown, kUp, kDown };
  std::unordered_map<std::string, LoggedState> logged_state_;
  std::string last_status_;
  TransitionLog transitions_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread model_thread_;
  bool started_ = false;
};

}  // namespace facility
