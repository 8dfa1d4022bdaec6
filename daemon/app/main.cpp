// facilityd: command-line shell over the facility_core library.
#include <signal.h>
#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <memory>

#include "daemon/app/cli_parse.h"
#include "daemon/app/daemon.h"
#include "daemon/app/probe.h"
#include "daemon/app/scan.h"
#include "daemon/config/config.h"
#include "daemon/logging/logging.h"
#include "daemon/reports/cli.h"
#include "facilityd_version.h"

namespace {

constexpr const char* kDescription = R"(facilityd - data-center facility monitoring daemon.

Polls PDUs, UPSs, energy meters, cooling units and rack sensors over Modbus TCP, RTU over TCP
(serial gateways) and RTU serial lines (read-only: `run` and `probe` send function codes 1-4
only; `scan` also sends Read Device Identification, 43/14, a read too), derives cabinet power
against rated power, site IT and facility power, PUE and occupancy, and serves them as
Prometheus metrics and MQTT messages.

Examples:
  facilityd check-config /etc/facilityd/facilityd.yaml
  facilityd run --config /etc/facilityd/facilityd.yaml
  facilityd run --config config/demo/facilityd.yaml --listen 127.0.0.1:10044
  facilityd probe tcp://10.20.1.11:502 --unit 3 --profile generic-pdu-1ph
  facilityd scan tcp://10.20.1.11:502 --units 1-32
  facilityd report --config /etc/facilityd/facilityd.yaml --site hl1 --format html -o hl1.html

Configuration keys: facilityd.yaml(5) and docs/config.md. Metrics: docs/metrics.md. MQTT
topics: docs/mqtt.md. Capacity reports: docs/reports.md (installed: /usr/share/doc/facilityd).)";

constexpr const char* kFooter =
    R"(Exit status: 0 on success, 1 when the command failed (a configuration that does not load,
a poll that failed, a daemon that could not start), 2 for a bad command line. Each command's
--help says what its own statuses mean.)";

int check_config(const std::string& path, bool quiet) {
  try {
    const auto cfg = facility::load_config(path);
    if (!quiet) {
      std::size_t cabinets = 0, devices = 0;
      for (const auto& s : cfg.sites) {
        cabinets += s.cabinets.size();
        devices += s.devices.size();
      }
      std::printf("%s: OK: %zu sites, %zu cabinets, %zu devices, %zu profiles\n", path.c_str(),
                  cfg.sites.size(), cabinets, devices, cfg.profiles.size());
      if (cfg.sites.empty()) {
        std::printf(
            "%s: no sites yet: facilityd will serve only its own health until you add "
            "one under `sites:` (facilityd.yaml(5), or the commented example "
            "/usr/share/doc/facilityd/examples/minimal.yaml)\n",
            path.c_str());
      }
    }
    return 0;
  } catch (const facility::ConfigException& e) {
    std::fprintf(stderr, "%s\n", e.what());
    std::fprintf(stderr, "%s: %zu problem%s found\n", path.c_str(), e.total(),
                 e.total() == 1 ? "" : "s");
    return 1;
  }
}

// Loads a configuration for `run`, with the command line's overrides applied. Prints every
// problem as FILE:LINE:COL: message (to the journal under systemd) and returns null on error.
std::shared_ptr<const facility::Config> load_for_run(const std::string& path,
                                                     const std::string& state_dir,
                                                     const facility::DaemonOptions& opt,
                                                     const char* what) {
  try {
    auto loaded = facility::load_config(path);
    if (!state_dir.empty()) loaded.daemon.state_dir = state_dir;
    if (opt.mqtt_broker) loaded.mqtt.broker = *opt.mqtt_broker;
    if (opt.no_mqtt) loaded.mqtt.enabled = false;
    return std::make_shared<const facility::Config>(std::move(loaded));
  } catch (const facility::ConfigException& e) {
    std::fprintf(stderr, "%s\n", e.what());
    std::fprintf(stderr, "facilityd: %s: the configuration has %zu problem%s\n", what, e.total(),
                 e.total() == 1 ? "" : "s");
    std::fflush(stderr);
    return nullptr;
  }
}

// A burst of SIGHUPs (a deployment tool reloading once per file it wrote, say) makes one reload:
// after the first, wait until none has come for kReloadSettle, at most kReloadSettleMax in all.
// Those that come during the reload itself stay pending and make one more. Returns SIGHUP, or
// the stop signal that came meanwhile.
constexpr auto kReloadSettle = std::chrono::milliseconds(500);
constexpr auto kReloadSettleMax = std::chrono::seconds(3);

int coalesce_reloads(const sigset_t& set) {
  const auto until = std::chrono::steady_clock::now() + kReloadSettleMax;
  int more = 0;
  while (true) {
    const auto left = std::min<std::chrono::nanoseconds>(
        kReloadSettle, until - std::chrono::steady_clock::now());
    if (left <= std::chrono::nanoseconds::zero()) break;
    timespec ts{static_cast<time_t>(left.count() / 1'000'000'000),
                static_cast<long>(left.count() % 1'000'000'000)};
    const int s = sigtimedwait(&set, nullptr, &ts);
    if (s < 0 && errno == EINTR) continue;
    if (s < 0) break;  // EAGAIN: quiet for kReloadSettle
    if (s != SIGHUP) return s;
    ++more;
  }
  if (more > 0) spdlog::info("{} more SIGHUPs within the burst: one reload for all", more);
  return SIGHUP;
}

void notify_reloading() {
  // RELOADING=1 ... READY=1 brackets a reload for systemd (Type=notify, ExecReload=kill -HUP).
  // MONOTONIC_USEC is what Type=notify-reload (systemd 253+) also wants; older ones ignore it.
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  const auto usec = static_cast<unsigned long long>(ts.tv_sec) * 1000000ull +
                    static_cast<unsigned long long>(ts.tv_nsec) / 1000;
  sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=Reloading the configuration", usec);
}

std::string summary(const facility::Config& cfg) {
  std::size_t cabinets = 0, devices = 0;
  for (const auto& s : cfg.sites) {
    cabinets += s.cabinets.size();
    devices += s.devices.size();
  }
  return std::to_string(cfg.sites.size()) + " sites, " + std::to_string(cabinets) + " cabinets, " +
         std::to_string(devices) + " devices" +
         (cfg.daemon.shard.sharded() ? " (shard " + cfg.daemon.shard.text() + ")" : "");
}

// Under systemd (NOTIFY_SOCKET): STATUS= with the devices up, and WATCHDOG=1 from the model loop
// when the unit sets WatchdogSec=.
void notify_systemd(facility::DaemonOptions& opt, const facility::Config& cfg) {
  if (!std::getenv("NOTIFY_SOCKET")) return;
  opt.notify = [](const std::string& state) { sd_notify(0, state.c_str()); };
  std::uint64_t usec = 0;
  opt.watchdog = sd_watchdog_enabled(0, &usec) > 0;
  if (opt.watchdog) {
    const auto step =
        opt.model_interval.count() > 0 ? opt.model_interval : facility::auto_model_step(cfg);
    spdlog::info("systemd watchdog: {:.0f} s; the model loop pings it every {:.1f} s", usec / 1e6,
                 step.count() / 1e3);
  }
}

int run(const std::string& path, facility::DaemonOptions opt, const std::string& state_dir) {
  auto cfg = load_for_run(path, state_dir, opt, "not starting");
  if (!cfg) return 1;

  notify_systemd(opt, *cfg);

  // Block the stop and reload signals in every thread; the main thread waits for them with
  // sigwait.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  facility::Daemon daemon(cfg, opt);
  try {
    daemon.start();
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    return 1;
  }
  spdlog::info("facilityd {} started: {} on {} endpoints", FACILITYD_VERSION, summary(*cfg),
               daemon.endpoint_count());
  spdlog::info("metrics at {}", daemon.metrics_url());
  {
    std::string view = daemon.metrics_url();
    view.resize(view.size() - std::string("metrics").size());
    spdlog::info("NOC view at {} (JSON API at {}api/v1/sites)", view, view);
  }
  if (cfg->mqtt.enabled && !opt.no_mqtt) {
    spdlog::info("MQTT to {} under {}/<site>/...", opt.mqtt_broker.value_or(cfg->mqtt.broker),
                 cfg->mqtt.topic_prefix);
  }
  // STATUS= (devices up) follows from the model loop.
  sd_notify(0, "READY=1");

  int sig = 0;
  while (true) {
    sigwait(&set, &sig);
    if (sig != SIGHUP) break;
    sig = coalesce_reloads(set);
    if (sig != SIGHUP) break;
    spdlog::info("received SIGHUP, reloading {}", path);
    notify_reloading();
    if (auto next = load_for_run(path, state_dir, opt,
                                 "reload refused, the previous configuration stays in effect")) {
      bool reloaded = false;
      try {
        reloaded = daemon.reload(next);
      } catch (const std::exception& e) {
        spdlog::critical("{}; stopping (exit 1, so that systemd restarts facilityd)", e.what());
        sd_notify(0, "STOPPING=1");
        daemon.stop();
        return 1;
      }
      if (reloaded) {
        spdlog::info("configuration reloaded: {} on {} endpoints", summary(*next),
                     daemon.endpoint_count());
      }
    } else {
      daemon.reload_failed();
    }
    sd_notify(0, "READY=1");
  }
  spdlog::info("received {}, stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
  sd_notify(0, "STOPPING=1");
  daemon.stop();
  spdlog::info("stopped cleanly");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{kDescription, "facilityd"};
  app.require_subcommand(1);
  app.footer(kFooter);
  app.set_version_flag("--version", std::string("facilityd ") + FACILITYD_VERSION + " (git " +
                                        FACILITYD_REVISION + ")");
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->capture_default_str();

  std::string config_path;
  facility::DaemonOptions opt;
  std::string listen, broker;
  auto* run_cmd = app.add_subcommand("run",
                                     "Poll the devices of a configuration and serve metrics "
                                     "until SIGINT/SIGTERM.");
  run_cmd->add_option("-c,--config", config_path, "Configuration file (YAML)")
      ->required()
      ->check(CLI::ExistingFile);
  run_cmd->add_option("--listen", listen,
                      "Override daemon.listen, HOST:PORT for /metrics "
                      "(port 0 picks a free port)");
  run_cmd->add_option("--mqtt-broker", broker, "Override mqtt.broker, e.g. tcp://127.0.0.1:1883");
  run_cmd->add_flag("--no-mqtt", opt.no_mqtt, "Do not connect to MQTT");
  std::string state_dir;
  run_cmd->add_option("--state-dir", state_dir,
                      "Override daemon.state_dir (history database, MQTT outbox)");
  run_cmd->footer(R"(Signals: SIGHUP reloads the configuration (systemctl reload facilityd). A file
that does not load is refused: its problems are logged as FILE:LINE:COL: message, the
previous configuration stays in effect and facility_config_last_reload_successful becomes 0.
What a reload keeps and restarts: docs/prometheus.md. SIGINT/SIGTERM stop cleanly.

Exit status: 0 after SIGINT/SIGTERM, 1 when the configuration does not load or the daemon
cannot start (e.g. the listen port is taken), 2 for a bad command line.)");

  facility::ReportCliOptions report_opt;
  auto* report_cmd = facility::add_report_subcommand(app, report_opt);

  bool quiet = false;
  auto* check_cmd = app.add_subcommand(
      "check-config",
      "Validate a configuration and the profiles it uses; print every problem as "
      "FILE:LINE:COL: message and exit 1 if there is any.");
  check_cmd->add_option("config", config_path, "Configuration file (YAML)")->required();
  check_cmd->add_flag("-q,--quiet", quiet, "Print nothing when the configuration is valid");
  check_cmd->footer(
      "Exit status: 0 when the configuration is valid, 1 when it has problems, 2 "
      "for a bad command line.");

  facility::ProbeCliOptions probe_opt;
  auto* probe_cmd = facility::add_probe_subcommand(app, probe_opt);
  facility::ScanCliOptions scan_opt;
  auto* scan_cmd = facility::add_scan_subcommand(app, scan_opt);

  if (const auto status = facility::parse_command_line(app, argc, argv)) return *status;
  const auto level = spdlog::level::from_str(log_level);
  if (level == spdlog::level::off && log_level != "off") {
    std::fprintf(stderr, "facilityd: --log-level must be trace, debug, info, warn or error\n");
    return 2;
  }
  facility::setup_logging(level);

  if (*check_cmd) return check_config(config_path, quiet);
  if (*probe_cmd) return facility::run_probe_cli(probe_opt);
  if (*scan_cmd) return facility::run_scan_cli(scan_opt);
  if (*report_cmd) return facility::run_report_cli(report_opt);
  if (!listen.empty()) opt.listen = listen;
  if (!broker.empty()) opt.mqtt_broker = broker;
  return run(config_path, opt, state_dir);
}
