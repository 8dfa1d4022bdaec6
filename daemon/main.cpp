// facilityd: command-line shell over the facility_core library.
#include <CLI/CLI.hpp>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include <chrono>
#include <ctime>
#include <memory>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "daemon/cli_parse.h"
#include "daemon/config.h"
#include "daemon/daemon.h"
#include "daemon/logging.h"
#include "daemon/probe.h"
#include "daemon/report_cli.h"
#include "facilityd_paths.h"
#include "facilityd_version.h"

namespace {

constexpr const char* kDescription = R"(facilityd - data-center facility monitoring daemon.

Polls PDUs, energy meters, cooling units and rack sensors over Modbus TCP, RTU over TCP
(serial gateways) and RTU serial lines (read-only: function codes 1-4 only), derives cabinet power against rated power, site IT and facility
power, PUE and occupancy, and serves them as Prometheus metrics and MQTT messages.

Examples:
  facilityd check-config /etc/facilityd/facilityd.yaml
  facilityd run --config /etc/facilityd/facilityd.yaml
  facilityd run --config config/demo/facilityd.yaml --listen 127.0.0.1:10044
  facilityd probe tcp://10.20.1.11:502 --unit 3 --profile generic-pdu-1ph
  facilityd report --config /etc/facilityd/facilityd.yaml --site hl1 --format html -o hl1.html

Configuration keys: facilityd.yaml(5) and docs/config.md. Metrics: docs/metrics.md. MQTT
topics: docs/mqtt.md. Capacity reports: docs/reports.md (installed: /usr/share/doc/facilityd).)";

constexpr const char* kFooter = R"(Exit status: 0 on success, 1 when the command failed (a configuration that does not load,
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
        std::printf("%s: no sites yet: facilityd will serve only its own health until you add "
                    "one under `sites:` (facilityd.yaml(5), or the commented example "
                    "/usr/share/doc/facilityd/examples/minimal.yaml)\n",
                    path.c_str());
      }
    }
    return 0;
  } catch (const facility::ConfigException& e) {
    for (const auto& err : e.errors()) std::fprintf(stderr, "%s\n", err.format().c_str());
    std::fprintf(stderr, "%s: %zu problem%s found\n", path.c_str(), e.errors().size(),
                 e.errors().size() == 1 ? "" : "s");
    return 1;
  }
}

// Loads a configuration for `run`, with the command line's overrides applied. Prints every
// problem as FILE:LINE:COL: message (to the journal under systemd) and returns null on error.
std::shared_ptr<const facility::Config> load_for_run(const std::string& path,
                                                     const std::string& state_dir,
                                                     const char* what) {
  try {
    auto loaded = facility::load_config(path);
    if (!state_dir.empty()) loaded.daemon.state_dir = state_dir;
    return std::make_shared<const facility::Config>(std::move(loaded));
  } catch (const facility::ConfigException& e) {
    for (const auto& err : e.errors()) std::fprintf(stderr, "%s\n", err.format().c_str());
    std::fprintf(stderr, "facilityd: %s: the configuration has %zu problem%s\n", what,
                 e.errors().size(), e.errors().size() == 1 ? "" : "s");
    std::fflush(stderr);
    return nullptr;
  }
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
  return std::to_string(cfg.sites.size()) + " sites, " + std::to_string(cabinets) +
         " cabinets, " + std::to_string(devices) + " devices" +
         (cfg.daemon.shard.sharded() ? " (shard " + cfg.daemon.shard.text() + ")" : "");
}

int run(const std::string& path, facility::DaemonOptions opt, const std::string& state_dir) {
  auto cfg = load_for_run(path, state_dir, "not starting");
  if (!cfg) return 1;

  // Under systemd (NOTIFY_SOCKET): STATUS= with the devices up, and WATCHDOG=1 from the model
  // loop when the unit sets WatchdogSec=.
  if (std::getenv("NOTIFY_SOCKET")) {
    opt.notify = [](const std::string& state) { sd_notify(0, state.c_str()); };
    std::uint64_t usec = 0;
    opt.watchdog = sd_watchdog_enabled(0, &usec) > 0;
    if (opt.watchdog) {
      spdlog::info("systemd watchdog: {:.0f} s; the model loop pings it every {:.0f} s",
                   usec / 1e6, opt.model_interval.count() / 1e3);
    }
  }

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
    spdlog::info("received SIGHUP, reloading {}", path);
    notify_reloading();
    if (auto next = load_for_run(path, state_dir, "reload refused, the previous configuration "
                                                  "stays in effect")) {
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
  app.set_version_flag("--version", std::string("facilityd ") + FACILITYD_VERSION +
                                        " (git " + FACILITYD_REVISION + ")");
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->capture_default_str();

  std::string config_path;
  facility::DaemonOptions opt;
  std::string listen, broker;
  auto* run_cmd = app.add_subcommand("run", "Poll the devices of a configuration and serve metrics "
                                            "until SIGINT/SIGTERM.");
  run_cmd->add_option("-c,--config", config_path, "Configuration file (YAML)")->required()
      ->check(CLI::ExistingFile);
  run_cmd->add_option("--listen", listen, "Override daemon.listen, HOST:PORT for /metrics "
                                          "(port 0 picks a free port)");
  run_cmd->add_option("--mqtt-broker", broker, "Override mqtt.broker, e.g. tcp://127.0.0.1:1883");
  run_cmd->add_flag("--no-mqtt", opt.no_mqtt, "Do not connect to MQTT");
  std::string state_dir;
  run_cmd->add_option("--state-dir", state_dir,
                      "Override daemon.state_dir (history database, MQTT outbox)");
  std::string exposition = "cached";
  // For bench/run_scrape_bench.py: how /metrics is rendered (cached, direct, prometheus-cpp).
  run_cmd->add_option("--exposition", exposition)->group("");
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
  check_cmd->footer("Exit status: 0 when the configuration is valid, 1 when it has problems, 2 "
                    "for a bad command line.");

  facility::ProbeOptions probe;
  std::string probe_timeout = "1s", probe_parity;
  auto* probe_cmd = app.add_subcommand(
      "probe",
      "Read one device once and print every point decoded: value, unit, raw registers. "
      "Either --device ID --config FILE, or ENDPOINT --unit N --profile NAME.");
  probe_cmd->add_option("endpoint", probe.endpoint,
                        "tcp://HOST:PORT, rtu-over-tcp://HOST:PORT (serial gateway speaking RTU) "
                        "or rtu:///dev/ttyUSB0");
  probe_cmd->add_option("--device", probe.device_id, "Device id in the configuration");
  probe_cmd->add_option("-c,--config", probe.config_path, "Configuration file (with --device)");
  probe_cmd->add_option("--unit", probe.unit, "Modbus unit id")->capture_default_str();
  probe_cmd->add_option("--profile", probe.profile, "Profile name or path to a profile .yaml");
  probe_cmd->add_option("--profiles-dir", probe.profiles_dir,
                        "Where profile names are looked up first; then /etc/facilityd/profiles, "
                        "then the shipped " FACILITYD_DATADIR "/profiles");
  probe_cmd->add_option("--timeout", probe_timeout, "Response timeout")->capture_default_str();
  probe_cmd->add_option("--baud", probe.baud, "Serial: baud rate (default 9600)");
  probe_cmd->add_option("--parity", probe_parity, "Serial: none, even or odd (default none)");
  probe_cmd->add_option("--stop-bits", probe.stop_bits, "Serial: 1 or 2 (default 1)");
  probe_cmd->footer(R"(Examples:
  facilityd probe --device hl1-meter-ups --config /etc/facilityd/facilityd.yaml
  facilityd probe tcp://10.20.1.11:502 --unit 3 --profile generic-pdu-1ph
  facilityd probe rtu:///dev/ttyUSB0 --unit 1 --profile eastron-sdm630 --baud 9600 --parity even

Exit status: 0 when the device answered every read, 1 when the poll failed, 2 for bad options.)");

  if (const auto status = facility::parse_command_line(app, argc, argv)) return *status;
  const auto level = spdlog::level::from_str(log_level);
  if (level == spdlog::level::off && log_level != "off") {
    std::fprintf(stderr, "facilityd: --log-level must be trace, debug, info, warn or error\n");
    return 2;
  }
  facility::setup_logging(level);

  if (*check_cmd) return check_config(config_path, quiet);
  if (*probe_cmd) {
    const bool by_device = !probe.device_id.empty();
    if (by_device == !probe.endpoint.empty() || (by_device && probe.config_path.empty()) ||
        (!by_device && probe.profile.empty())) {
      std::fprintf(stderr, "facilityd probe: give either --device ID --config FILE, or "
                           "ENDPOINT --unit N --profile NAME (see facilityd probe --help)\n");
      return 2;
    }
    const auto t = facility::parse_duration(probe_timeout);
    if (!t) {
      std::fprintf(stderr, "facilityd probe: bad --timeout \"%s\" (e.g. 500ms, 2s)\n",
                   probe_timeout.c_str());
      return 2;
    }
    probe.timeout = *t;
    if (!probe_parity.empty()) {
      if (probe_parity != "none" && probe_parity != "even" && probe_parity != "odd") {
        std::fprintf(stderr, "facilityd probe: --parity must be none, even or odd\n");
        return 2;
      }
      probe.parity = probe_parity == "none" ? 'N' : probe_parity == "even" ? 'E' : 'O';
    }
    spdlog::set_level(spdlog::level::warn);
    return facility::run_probe(probe, std::cout, std::cerr);
  }
  if (*report_cmd) return facility::run_report_cli(report_opt);
  if (const auto m = facility::parse_exposition_mode(exposition)) {
    opt.exposition = *m;
  } else {
    std::fprintf(stderr, "facilityd run: --exposition must be cached, direct or prometheus-cpp\n");
    return 2;
  }
  if (!listen.empty()) opt.listen = listen;
  if (!broker.empty()) opt.mqtt_broker = broker;
  return run(config_path, opt, state_dir);
}
