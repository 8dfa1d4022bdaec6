// facility-sim: command-line shell over the facility_sim library (see sim/simulator.h).
#include <CLI/CLI.hpp>
#include <signal.h>
#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "daemon/app/cli_parse.h"
#include "daemon/config/config.h"
#include "facilityd_version.h"
#include "sim/simulator.h"

namespace {

using facility::sim::Fault;

constexpr const char* kDescription = R"(facility-sim - a Modbus simulator of a whole facilityd site.

Reads a facilityd config and serves every Modbus device in it (PDUs, energy meters,
cooling units, rack sensors) on 127.0.0.1, each at its configured endpoint and unit id
(Modbus TCP, RTU over TCP, or RTU on a serial device given with --serial),
with the register map of its profile. Values are believable and consistent: cabinet load
follows simulate.load (or a hash), a daily cycle peaking at 14:00 UTC+8 and slow noise;
feeds A/B split it; site meters follow PUE (simulate.pue, default 1.30); energy counters
integrate power exactly. Function codes 1-4 are served; anything else gets exception 1.
Only loopback endpoints are accepted.)";

constexpr const char* kFooter = R"(Faults (--fault DEVICE_ID=SPEC, repeatable; SPEC is a comma-separated list):
  silent         never answer; the client times out
  busy           answer every request with exception 6 (server device busy)
  close          close the connection when a request arrives
  delay:DUR      answer late, e.g. delay:500ms, delay:2s (other units are not held up)
  illegal:ADDR   exception 2 for any read covering register ADDR (0-based; 12 or 0x0c)
  trailing:N     N junk bytes after every reply (a gateway quirk)
  duplicate      every reply sent twice (a gateway quirk)
  on_battery     a UPS reports its output on battery (a mains failure): its on_battery point
                 is 1 and its output_source is battery (the profile needs one of them)
  none           clear (useful in a --fault-file)
A --fault-file holds one DEVICE_ID=SPEC per line ('#' comments); it is re-read whenever it
changes, so a test can make a device fail and recover while the simulator runs.

Ground truth (--truth FILE, rewritten atomically at every update):
  {"ts", "cabinets": {"SITE/CABINET": {"power_w", "rated_w", "feeds": {"A", "B"}}},
   "sites": {"SITE": {"it_power_w", "facility_power_w", "cooling_power_w", "pue"}},
   "devices": {"DEVICE": {"POINT": value in the point's unit, as served}}}

Examples:
  facility-sim --config config/demo/facilityd.yaml --truth /tmp/truth.json
  facility-sim --config config/demo/facilityd.yaml --speed 60 \
      --fault hl1-meter-ups=silent --fault hl1-2FA-A01-01-pdu-a=delay:800ms,busy

Exit status: 0 after SIGINT/SIGTERM or --run-for, 2 for a bad config or option, 1 when an
endpoint cannot be bound.)";

double wall_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// DEVICE_ID=SPEC -> faults[DEVICE_ID], merged with what is already there.
std::optional<std::string> add_fault(const std::string& arg, std::map<std::string, Fault>& out) {
  const auto eq = arg.find('=');
  if (eq == std::string::npos || eq == 0) {
    return "bad fault \"" + arg + "\": expected DEVICE_ID=SPEC, e.g. pdu-1=silent";
  }
  Fault& f = out[arg.substr(0, eq)];
  if (auto err = facility::sim::parse_fault(arg.substr(eq + 1), f)) {
    return "bad fault \"" + arg + "\": " + *err;
  }
  return std::nullopt;
}

Fault merge(Fault a, const Fault& b) {
  a.busy |= b.busy;
  a.silent |= b.silent;
  a.close |= b.close;
  a.delay = std::max(a.delay, b.delay);
  a.trailing = std::max(a.trailing, b.trailing);
  a.duplicate |= b.duplicate;
  a.on_battery |= b.on_battery;
  a.illegal_addresses.insert(b.illegal_addresses.begin(), b.illegal_addresses.end());
  return a;
}

// Watches a fault file and applies CLI faults ∪ file faults to the simulator.
class FaultFile {
 public:
  FaultFile(std::string path, std::map<std::string, Fault> cli)
      : path_(std::move(path)), cli_(std::move(cli)) {}

  // Re-reads the file if it changed (a missing file means no file faults). On a parse error
  // the previous faults stay and the error is returned.
  std::optional<std::string> poll(facility::sim::Simulator& sim, bool force = false) {
    struct stat st {};
    const bool exists = !path_.empty() && ::stat(path_.c_str(), &st) == 0;
    const std::string stamp =
        exists ? std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) +
                     "/" + std::to_string(st.st_size)
               : "";
    if (!force && stamp == stamp_) return std::nullopt;
    stamp_ = stamp;
    std::map<std::string, Fault> from_file;
    if (exists) {
      std::ifstream in(path_);
      std::string line;
      int lineno = 0;
      while (std::getline(in, line)) {
        ++lineno;
        if (auto hash = line.find('#'); hash != std::string::npos) line.erase(hash);
        line.erase(0, line.find_first_not_of(" \t\r"));
        line.erase(line.find_last_not_of(" \t\r") + 1);
        if (line.empty()) continue;
        if (auto err = add_fault(line, from_file)) {
          return path_ + ":" + std::to_string(lineno) + ": " + *err;
        }
      }
    }
    std::map<std::string, Fault> desired = cli_;
    for (const auto& [id, f] : from_file) desired[id] = merge(desired[id], f);
    std::set<std::string> ids;
    for (const auto& [id, f] : applied_) ids.insert(id);
    for (const auto& [id, f] : desired) ids.insert(id);
    for (const std::string& id : ids) {
      const std::string before = applied_.count(id) ? applied_[id].describe() : "none";
      const Fault want = desired.count(id) ? desired[id] : Fault{};
      if (before == want.describe() && !force) continue;
      try {
        sim.set_fault(id, want);
      } catch (const facility::sim::SimulatorError& e) {
        return path_ + ": " + e.what();
      }
      std::printf("facility-sim: fault %s: %s\n", id.c_str(), want.describe().c_str());
      applied_[id] = want;
    }
    std::fflush(stdout);
    return std::nullopt;
  }

 private:
  std::string path_;
  std::map<std::string, Fault> cli_;
  std::map<std::string, Fault> applied_;
  std::string stamp_;
};

// "1-3,11-17" from a set of unit ids.
std::string unit_ranges(const std::set<int>& units) {
  std::string s;
  for (auto it = units.begin(); it != units.end();) {
    const int lo = *it;
    int hi = lo;
    while (++it != units.end() && *it == hi + 1) hi = *it;
    s += (s.empty() ? "" : ",") + std::to_string(lo) + (hi > lo ? "-" + std::to_string(hi) : "");
  }
  return s;
}

void print_banner(const facility::Config& cfg, const facility::sim::Simulator& sim,
                  double speed, std::uint64_t seed) {
  std::size_t cabinets = 0;
  for (const auto& s : cfg.sites) cabinets += s.cabinets.size();
  std::printf("facility-sim: serving %zu devices (%zu cabinets in %zu sites) on %zu endpoints, "
              "speed %gx, seed %llu\n",
              sim.devices_served(), cabinets, cfg.sites.size(), sim.endpoints().size(), speed,
              static_cast<unsigned long long>(seed));
  for (const auto& ep : sim.endpoints()) {
    std::set<int> units;
    for (const auto* d : ep.devices) units.insert(d->unit);
    const std::string where =
        ep.bound_port == 0 ? ep.key + " on " + ep.host
                           : ep.key.substr(0, ep.key.find("://") + 3) + ep.host + ":" +
                                 std::to_string(ep.bound_port);
    std::printf("  %-24s %3zu devices, units %s\n", where.c_str(),
                ep.devices.size(), unit_ranges(units).c_str());
  }
  for (const auto& w : sim.warnings()) std::printf("  warning: %s\n", w.c_str());
}

void print_summary(const facility::sim::ServerStats& st, double seconds) {
  std::uint64_t total = 0;
  std::string fcs;
  for (const auto& [fc, n] : st.function_codes) {
    total += n;
    fcs += (fcs.empty() ? "" : ", ") + ("FC" + std::to_string(fc) + ": " + std::to_string(n));
  }
  std::string exc;
  for (const auto& [code, n] : st.exceptions) {
    exc += (exc.empty() ? "" : ", ") + ("code " + std::to_string(code) + ": " + std::to_string(n));
  }
  std::printf("facility-sim: stopped after %.0f s\n", seconds);
  std::printf("  requests: %llu%s%s%s\n", static_cast<unsigned long long>(total),
              fcs.empty() ? "" : " (", fcs.c_str(), fcs.empty() ? "" : ")");
  std::printf("  replies: %llu, exceptions sent: %s, left unanswered by faults: %llu\n",
              static_cast<unsigned long long>(st.replies), exc.empty() ? "none" : exc.c_str(),
              static_cast<unsigned long long>(st.dropped));
  std::printf("  connections: %llu, closed for bad framing: %llu\n",
              static_cast<unsigned long long>(st.connections),
              static_cast<unsigned long long>(st.protocol_errors));
  std::fflush(stdout);
}

}  // namespace

// Long by design: the program's life in order (options, configuration, simulator, serving loop,
// summary), each step a short block used once; facility::sim::Simulator does the work.
// NOLINTNEXTLINE(readability-function-size)
int main(int argc, char** argv) {
  CLI::App app{kDescription, "facility-sim"};
  app.footer(kFooter);
  app.set_version_flag("--version", std::string("facility-sim ") + FACILITYD_VERSION + " (git " +
                                        FACILITYD_REVISION + ")");
  std::string config_path, truth_path, stats_path, fault_file;
  std::uint64_t seed = 1;
  double speed = 1.0;
  std::vector<std::string> fault_args;
  std::vector<std::string> serial_args;
  std::string interval_arg = "1s", run_for_arg;
  app.add_option("--config", config_path, "facilityd config whose devices to serve")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--truth", truth_path,
                 "write the ground truth as JSON to FILE at every update (atomic rename)");
  app.add_option("--stats", stats_path,
                 "write request counts per function code and exceptions sent as JSON to FILE "
                 "at every update and on exit");
  app.add_option("--seed", seed, "seed of every hashed choice (loads, splits, voltages)")
      ->capture_default_str();
  app.add_option("--speed", speed, "simulated seconds per real second (e.g. 60 for energy tests)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--fault", fault_args, "inject a fault: DEVICE_ID=SPEC (see below)")
      ->type_name("DEVICE_ID=SPEC");
  app.add_option("--serial", serial_args,
                 "serve the RTU serial endpoint KEY of the config on the device PATH, e.g. "
                 "--serial rtu:///tmp/ttyA=/tmp/ttyB with `socat pty,link=/tmp/ttyA "
                 "pty,link=/tmp/ttyB` (repeatable)")
      ->type_name("KEY=PATH");
  app.add_option("--fault-file", fault_file,
                 "re-read faults from FILE whenever it changes (one DEVICE_ID=SPEC per line)");
  app.add_option("--update-interval", interval_arg, "how often registers are recomputed")
      ->capture_default_str();
  app.add_option("--run-for", run_for_arg, "exit by itself after this long (e.g. 30s)");
  if (const auto status = facility::parse_command_line(app, argc, argv)) return *status;

  const auto interval = facility::parse_duration(interval_arg);
  if (!interval || interval->count() <= 0) {
    std::fprintf(stderr, "facility-sim: bad --update-interval \"%s\" (e.g. 1s, 500ms)\n",
                 interval_arg.c_str());
    return 2;
  }
  std::optional<facility::Millis> run_for;
  if (!run_for_arg.empty()) {
    run_for = facility::parse_duration(run_for_arg);
    if (!run_for) {
      std::fprintf(stderr, "facility-sim: bad --run-for \"%s\" (e.g. 30s)\n", run_for_arg.c_str());
      return 2;
    }
  }
  std::map<std::string, Fault> faults;
  for (const auto& f : fault_args) {
    if (auto err = add_fault(f, faults)) {
      std::fprintf(stderr, "facility-sim: %s\n", err->c_str());
      return 2;
    }
  }

  std::shared_ptr<const facility::Config> cfg;
  try {
    cfg = std::make_shared<const facility::Config>(facility::load_config(config_path));
  } catch (const facility::ConfigException& e) {
    for (const auto& err : e.errors()) std::fprintf(stderr, "%s\n", err.format().c_str());
    std::fprintf(stderr, "facility-sim: not starting: %s has %zu problem%s\n",
                 config_path.c_str(), e.errors().size(), e.errors().size() == 1 ? "" : "s");
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "facility-sim: cannot load %s: %s\n", config_path.c_str(), e.what());
    return 2;
  }

  // Block the stop signals before any thread exists, so every thread inherits the mask and the
  // main thread alone takes them with sigtimedwait: no async signal handler, no global flag.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  const double start = wall_seconds();
  std::unique_ptr<facility::sim::Simulator> sim;
  try {
    facility::sim::SimulatorOptions opt;
    opt.seed = seed;
    opt.speed = speed;
    opt.faults = {};  // applied through FaultFile below, so the file can add to them
    for (const auto& [id, f] : faults) opt.faults[id] = Fault{};  // validates the ids
    for (const auto& a : serial_args) {
      const auto eq = a.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == a.size()) {
        std::fprintf(stderr, "facility-sim: bad --serial \"%s\" (expected KEY=PATH)\n", a.c_str());
        return 2;
      }
      opt.serial[a.substr(0, eq)] = a.substr(eq + 1);
    }
    sim = std::make_unique<facility::sim::Simulator>(cfg, opt, start);
  } catch (const facility::sim::BindError& e) {
    std::fprintf(stderr, "facility-sim: %s\n", e.what());
    return 1;
  } catch (const facility::sim::SimulatorError& e) {
    std::fprintf(stderr, "facility-sim: %s\n", e.what());
    return 2;
  }

  FaultFile fault_watch(fault_file, faults);
  if (auto err = fault_watch.poll(*sim, true)) {
    std::fprintf(stderr, "facility-sim: %s\n", err->c_str());
    return 2;
  }

  auto publish = [&](double now) {
    const auto truth = sim->update(now);
    try {
      if (!truth_path.empty()) {
        facility::sim::write_file_atomic(truth_path, facility::sim::truth_to_json(truth).dump());
      }
      if (!stats_path.empty()) {
        facility::sim::write_file_atomic(stats_path,
                          facility::sim::stats_to_json(sim->server().stats()).dump(2));
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "facility-sim: %s\n", e.what());
    }
  };

  publish(start);  // before serving, so no client ever reads all-zero registers
  sim->start();
  print_banner(*cfg, *sim, speed, seed);
  if (!truth_path.empty()) {
    std::printf("  truth: %s (every %lld ms)\n", truth_path.c_str(),
                static_cast<long long>(interval->count()));
  }
  std::printf("facility-sim: ready\n");
  std::fflush(stdout);

  const double step = static_cast<double>(interval->count()) / 1000.0;
  const double stop_at =
      run_for ? start + static_cast<double>(run_for->count()) / 1000.0 : INFINITY;
  double next = start + step;
  while (true) {
    const double now = wall_seconds();
    if (now >= stop_at) break;
    const double wait = std::max(0.0, std::min(next, stop_at) - now);
    timespec ts{};
    ts.tv_sec = static_cast<time_t>(wait);
    ts.tv_nsec = static_cast<long>((wait - std::floor(wait)) * 1e9);
    const int sig = sigtimedwait(&stop_signals, nullptr, &ts);
    if (sig > 0) {
      std::printf("facility-sim: %s received\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
      break;
    }
    if (sig < 0 && errno == EINTR) continue;
    const double t = wall_seconds();
    if (t < next) continue;
    if (auto err = fault_watch.poll(*sim)) std::fprintf(stderr, "facility-sim: %s\n", err->c_str());
    publish(t);
    next += step;
    if (next <= t) next = t + step;  // we fell behind (suspended?): don't try to catch up
  }

  sim->stop();
  const auto stats = sim->server().stats();
  if (!stats_path.empty()) {
    try {
      facility::sim::write_file_atomic(stats_path, facility::sim::stats_to_json(stats).dump(2));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "facility-sim: %s\n", e.what());
    }
  }
  print_summary(stats, wall_seconds() - start);
  return 0;
}
