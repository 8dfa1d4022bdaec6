#include "daemon/app/daemon.h"

#include <malloc.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <unordered_map>

#include "daemon/app/http_gate.h"
#include "daemon/app/sinks.h"
#include "daemon/config/shard.h"
#include "daemon/http/server.h"
#include "daemon/polling/polling.h"
#include "daemon/reports/http_routes.h"
#include "daemon/sinks/prometheus/prometheus_sink.h"

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

// The command line's overrides (--mqtt-broker, --no-mqtt) are part of the configuration the
// sinks see. main.cpp applies them while loading; a copy is made only for a configuration that
// does not have them yet (a Daemon built by a test or a benchmark).
std::shared_ptr<const Config> with_overrides(std::shared_ptr<const Config> cfg,
                                             const DaemonOptions& opt) {
  const bool broker = opt.mqtt_broker && *opt.mqtt_broker != cfg->mqtt.broker;
  const bool off = opt.no_mqtt && cfg->mqtt.enabled;
  if (!broker && !off) return cfg;
  auto c = std::make_shared<Config>(*cfg);
  if (opt.mqtt_broker) c->mqtt.broker = *opt.mqtt_broker;
  if (opt.no_mqtt) c->mqtt.enabled = false;
  return c;
}

// What this daemon polls: a shard polls only its devices; the model still sees the whole
// inventory, so what it cannot know whole it leaves out (daemon/config/shard.h).
PollPlan poll_plan_of(const Config& cfg) {
  return cfg.daemon.shard.sharded() ? make_poll_plan(devices_of_shard(cfg)) : make_poll_plan(cfg);
}

}  // namespace

Daemon::Daemon(std::shared_ptr<const Config> config, DaemonOptions opt)
    : opt_(std::move(opt)),
      config_(with_overrides(std::move(config), opt_)),
      transitions_(opt_.transition_log) {
  reload_status_.last_success_unix = unix_now();
}

Daemon::~Daemon() { stop(); }

std::shared_ptr<const FacilitySnapshot> Daemon::snapshot() const {
  return prometheus_ ? prometheus_->latest() : nullptr;
}

ScrapeSources Daemon::live_sources() const {
  ScrapeSources s;
  std::lock_guard lock(src_mu_);
  s.config = config_;
  s.collector = stats_;
  s.sinks.assign(sinks_.begin(), sinks_.end());
  s.reload = reload_status_;
  s.listener = listener_health_;
  return s;
}

ScrapeSources Daemon::scrape_sources() const {
  return prometheus_ ? prometheus_->sources() : live_sources();
}

std::size_t Daemon::endpoint_count() const { return polling_ ? polling_->endpoint_count() : 0; }

int Daemon::metrics_port() const { return server_ ? server_->port() : 0; }

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
  prometheus_ = std::make_shared<PrometheusSink>([this] { return live_sources(); });
  live_view_ = std::make_shared<LiveView>();
  gate_ = std::make_unique<HttpGate>();
  gate_->set_auth(cfg->daemon.auth);
  gate_->set_metrics(prometheus_->exposition(), [this] { return prometheus_->sources(); });
  http::ServerOptions http;
  http.listen = listen_;
  try {
    server_ = std::make_unique<http::Server>(
        http, [gate = gate_.get()](const http::Request& req) { return gate->handle(req); });
    std::lock_guard lock(src_mu_);
    listener_health_ = listener_health(server_->counters());
  } catch (const std::exception& e) {
    gate_.reset();
    throw std::runtime_error(std::string(e.what()) + " (set daemon.listen or --listen)");
  }
  if (cfg->daemon.auth.password) {
    spdlog::info("HTTP basic authentication on every route (user from {}, password from {})",
                 cfg->daemon.auth.username_source, cfg->daemon.auth.password_source);
  }
  try {
    start_pipeline(cfg, poll_plan_of(*cfg));
  } catch (...) {
    // ~Daemon does nothing for a daemon that never started: undo here what did start (the
    // history writer's thread, the listener), so nothing outlives the failure half-running.
    teardown();
    throw;
  }
  gate_->publish();  // only now: the first request already meets the authentication
  started_ = true;
}

// New pollers for `plan`, counting into `stats`. After a reload the halted ones hand over what
// did not change (their stats stay alive in polling_stats_ until the new service is built).
void Daemon::replace_polling(PollPlan plan, const std::shared_ptr<CollectorStats>& stats) {
  plan_ = plan;
  const std::size_t devices = plan.device_ids.size();
  const std::size_t endpoints = plan.endpoint_keys.size();
  if (polling_) {
    polling_ = std::make_unique<PollingService>(std::move(plan), store_, *stats,
                                                std::move(polling_), nullptr, &transitions_);
    spdlog::info(
        "reload: {} of {} devices keep their poller and schedule, {} of {} endpoints their "
        "open connection; the others start afresh",
        polling_->devices_taken_over(), devices, polling_->connections_taken_over(), endpoints);
  } else {
    polling_ =
        std::make_unique<PollingService>(std::move(plan), store_, *stats, nullptr, &transitions_);
  }
  polling_stats_ = stats;
}

void Daemon::start_pipeline(std::shared_ptr<const Config> cfg, PollPlan plan,
                            bool keep_polling) {
  const ShardSettings& shard = cfg->daemon.shard;
  if (shard.sharded()) {
    std::size_t all = 0;
    for (const auto& s : cfg->sites) all += s.devices.size();
    spdlog::info("shard {}: polling {} of {} devices", shard.text(), plan.device_ids.size(), all);
  }
  std::shared_ptr<CollectorStats> stats;
  if (keep_polling && polling_) {
    std::lock_guard lock(src_mu_);
    stats = stats_;
  } else {
    keep_polling = false;
    stats = std::make_shared<CollectorStats>();
    replace_polling(std::move(plan), stats);
  }

  ensure_state_dir(*cfg);
  std::vector<std::shared_ptr<Sink>> created;
  for (const SinkFactory make : sink_factories()) {
    if (auto sink = make(cfg)) created.push_back(std::move(sink));
  }
  // The sinks give back what the model kept across restarts (the history: the energy PUE
  // windows), then the first snapshot, before anything can scrape, so /metrics is never
  // half-initialised.
  model_ = std::make_unique<FacilityModel>(cfg);
  const TimePoint first = Clock::now();
  for (const auto& sink : created) sink->seed(*model_, first);
  const auto first_snap = model_->update(store_.snapshot(), first);
  prometheus_->take(first_snap);
  live_view_->take(first_snap);

  std::vector<std::shared_ptr<Sink>> sinks{prometheus_, live_view_};
  std::string history_file;
  try {
    for (const auto& sink : created) {
      sink->start();
      sinks.push_back(sink);
      if (auto source = sink->report_source(); !source.empty()) history_file = source;
    }
  } catch (...) {
    // Nothing half-started stays behind (the history writer's thread and its lock).
    for (auto it = sinks.rbegin(); it != sinks.rend(); ++it) (*it)->stop();
    throw;
  }
  // The first snapshot to the others too (the model thread does not run yet): the history
  // stores the energy grid points it finalised, e.g. the steps a reload did not see.
  for (const auto& sink : created) sink->take(first_snap);
  {
    std::lock_guard lock(src_mu_);
    config_ = cfg;
    stats_ = stats;
    sinks_ = std::move(sinks);
  }
  gate_->set_routes(std::make_shared<const ReportRoutes>(cfg, history_file));
  web::PageOptions pages;
  pages.reports = !history_file.empty();
  gate_->set_web(std::make_shared<const web::Routes>(live_view_, pages));
  gate_->set_auth(cfg->daemon.auth);

  if (!keep_polling) polling_->start();
  last_status_.clear();  // main() announced "Reloading" or nothing yet: say it again
  {
    std::lock_guard lock(mu_);
    stopping_ = false;
  }
  const auto step = opt_.model_interval.count() > 0 ? opt_.model_interval : auto_model_step(*cfg);
  spdlog::info("model: a snapshot every {:.2f} s{}", step.count() / 1e3,
               opt_.model_interval.count() > 0 ? "" : " (0.8 x the shortest poll interval)");
  model_thread_ = std::thread([this, step] { model_loop(step); });
}

void Daemon::stop_pipeline(bool keep_polling) {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (model_thread_.joinable()) model_thread_.join();
  std::vector<std::shared_ptr<Sink>> sinks;
  {
    std::lock_guard lock(src_mu_);
    sinks = sinks_;
  }
  // In reverse start order; each flushes what it holds (the history its minute in progress).
  for (auto it = sinks.rbegin(); it != sinks.rend(); ++it) (*it)->stop();
  if (polling_ && !keep_polling) polling_->stop();
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

bool Daemon::reload(std::shared_ptr<const Config> next) {
  if (!started_) return false;
  const std::shared_ptr<const Config> cfg = with_overrides(std::move(next), opt_);
  std::shared_ptr<const Config> old;
  {
    std::lock_guard lock(src_mu_);
    old = config_;
  }
  if (!opt_.listen && cfg->daemon.listen != listen_) {
    spdlog::warn("daemon.listen changed to {}: the listener stays on {} until facilityd "
                 "restarts", cfg->daemon.listen, listen_);
  }
  // Same poll plan (a reload of thresholds, classes, MQTT or history settings, or of nothing):
  // every poller goes on with its connection and schedule; only the model and sinks restart.
  PollPlan plan = poll_plan_of(*cfg);
  const bool keep_polling = polling_ && plan == plan_;
  spdlog::info(keep_polling ? "reload: the poll plan is unchanged: every device keeps its poller, "
                              "connection and schedule"
                            : "reload: devices, endpoints or their settings changed: the "
                              "pollers of what changed restart");
  // The pollers are halted, not stopped: the new ones take over what did not change.
  stop_pipeline(true);
  if (!keep_polling && polling_) polling_->halt();

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
    start_pipeline(cfg, std::move(plan), keep_polling);
  } catch (const std::exception& e) {
    spdlog::error("reload: cannot start with the new configuration: {}; going back to the "
                  "previous one", e.what());
    stop_pipeline(true);
    if (!keep_polling && polling_) polling_->halt();
    try {
      start_pipeline(old, poll_plan_of(*old), keep_polling);
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

// Loading a configuration (the YAML trees of thousands of devices) and building the pollers
// leaves tens of MB free inside the heap that glibc keeps (44 MB at 6,000 devices): handed back
// to the system once the first cycle is in.
static void release_free_memory() { ::malloc_trim(0); }

std::chrono::milliseconds auto_model_step(const Config& config) {
  using std::chrono::milliseconds;
  std::optional<milliseconds> shortest;
  for (const Device* d : config.all_devices()) {
    if (!shortest || d->interval < *shortest) shortest = d->interval;
  }
  if (!shortest) return milliseconds(1000);
  return std::clamp(*shortest * 4 / 5, milliseconds(250), milliseconds(5000));
}

void Daemon::model_loop(std::chrono::milliseconds step) {
  bool first_cycle_logged = false;
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::shared_ptr<Sink>> sinks;
  {
    std::lock_guard lock(src_mu_);
    sinks = sinks_;
  }
  // At a fixed rate: the time a step takes does not stretch the period (which bounds how old an
  // exported value can be); a step that overruns the next one's slot moves the grid instead of
  // running the missed steps back to back.
  auto next = t0 + step;
  while (true) {
    {
      std::unique_lock lock(mu_);
      if (cv_.wait_until(lock, next, [this] { return stopping_; })) break;
    }
    next += step;
    if (const auto now = std::chrono::steady_clock::now(); next <= now) next = now + step;
    if (opt_.model_cycle_hook) opt_.model_cycle_hook();
    auto snap = model_->update(store_.snapshot(), Clock::now());
    log_device_transitions(*snap);
    notify_systemd(*snap);
    if (!first_cycle_logged) {
      const auto [up, polled] = count_up(*snap);
      if (up == polled || std::chrono::steady_clock::now() - t0 > std::chrono::minutes(2)) {
        spdlog::info("first poll cycle complete after {:.1f} s: {} of {} devices up",
                     std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
                     up, polled);
        first_cycle_logged = true;
        release_free_memory();
      }
    }
    for (const auto& sink : sinks) sink->take(snap);
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
  server_.reset();  // joins its workers: no request reaches the gate after this
  gate_.reset();
  std::lock_guard lock(src_mu_);
  sinks_.clear();
}

}  // namespace facility
