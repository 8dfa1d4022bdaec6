#include "daemon/app/probe.h"

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <array>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <map>
#include <mutex>
#include <ostream>
#include <sstream>

#include "collectors/modbus/engine.h"
#include "collectors/modbus/serial_poller.h"
#include "daemon/config/config.h"
#include "daemon/polling/polling.h"
#include "daemon/readings/decimal.h"
#include "facilityd_paths.h"

#include <nlohmann/json.hpp>

namespace facility {
namespace {

namespace fs = std::filesystem;

// Collects the one result the probe waits for.
class OneShot : public modbus::PollObserver {
 public:
  void on_result(modbus::PollResult&& r) override {
    std::lock_guard l(mu_);
    if (!result_) result_ = std::move(r);
    cv_.notify_all();
  }
  void on_request(const modbus::RequestEvent& e) override {
    std::lock_guard l(mu_);
    ++requests_;
    if (e.result != modbus::RequestResult::kOk) {
      std::string s = to_string(e.result);
      if (e.result == modbus::RequestResult::kException) s += " " + std::to_string(e.exception_code);
      problems_.push_back("FC" + std::to_string(e.function) + ": " + s);
    }
  }
  void on_overrun(std::size_t) override {}
  void on_connection(std::size_t, bool) override {}
  modbus::PollResult wait(std::chrono::milliseconds limit) {
    std::unique_lock l(mu_);
    cv_.wait_for(l, limit, [this] { return result_.has_value(); });
    if (!result_) {
      modbus::PollResult r;
      r.error = "no result within " + std::to_string(limit.count()) + " ms";
      return r;
    }
    return *result_;
  }
  std::vector<std::string> problems() {
    std::lock_guard l(mu_);
    return problems_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<modbus::PollResult> result_;
  int requests_ = 0;
  std::vector<std::string> problems_;
};

std::string hex_words(const std::vector<std::uint16_t>& w, bool bits) {
  std::ostringstream os;
  for (std::size_t i = 0; i < w.size(); ++i) {
    if (i) os << ' ';
    if (bits) {
      os << w[i];
    } else {
      os << "0x" << std::hex << std::uppercase << std::setw(4) << std::setfill('0') << w[i];
    }
  }
  return os.str();
}

// A value and its enum name: the decimal it stands for, without binary floating-point noise
// (2277 x 0.1 is "227.7", not "227.70000000000002"; daemon/readings/decimal.h).
std::string number_text(const modbus::PolledValue& v) {
  std::string s = decimal_text(*v.value);
  if (!v.text.empty()) s += " (" + v.text + ")";
  return s;
}

std::string format_value(const modbus::PolledValue& v, const modbus::PointSpec& p) {
  if (v.unreadable) return "UNREADABLE";
  if (p.type == modbus::DataType::kString) return v.text.empty() ? "(n/a)" : "\"" + v.text + "\"";
  if (!v.value) return "(n/a)";
  return number_text(v);
}

std::shared_ptr<const Profile> find_profile(const ProbeOptions& opt, std::ostream& err) {
  fs::path file = opt.profile;
  if (file.extension() != ".yaml") {
    const auto search_path = profile_search_path(opt.profiles_dir);
    file = find_profile_file(search_path, opt.profile);
    if (file.empty()) {
      err << "facilityd probe: no profile \"" << opt.profile << "\" in ";
      for (std::size_t i = 0; i < search_path.size(); ++i) {
        err << (i ? ", " : "") << search_path[i].string();
      }
      const auto names = available_profiles(search_path);
      if (!names.empty()) {
        err << "; available:";
        for (const auto& n : names) err << " " << n;
      }
      err << " (use --profiles-dir DIR or a path to a .yaml file)\n";
      return nullptr;
    }
  }
  try {
    return load_profile(file.string());
  } catch (const ConfigException& e) {
    err << e.what() << "\n";
    return nullptr;
  }
}

}  // namespace

namespace {

// The device to probe and its endpoint's settings: from the configuration (--device), or built
// from the command line. Prints the problem and returns nullopt on bad options (exit 2).
std::optional<std::pair<Device, EndpointSettings>> probe_target(const ProbeOptions& opt,
                                                                std::ostream& err) {
  Device dev;
  EndpointSettings es;
  if (!opt.device_id.empty()) {
    std::optional<Config> cfg;
    try {
      cfg = load_config(opt.config_path);
    } catch (const ConfigException& e) {
      err << e.what() << "\n";
      return std::nullopt;
    }
    const Device* found = nullptr;
    for (const Device* d : cfg->all_devices()) {
      if (d->id == opt.device_id) found = d;
    }
    if (!found) {
      err << "facilityd probe: no device \"" << opt.device_id << "\" in " << opt.config_path
          << "\n";
      return std::nullopt;
    }
    return std::make_pair(*found, cfg->endpoint_settings(found->endpoint));
  }
  std::string error;
  auto ep = parse_endpoint_uri(opt.endpoint, &error);
  if (!ep) {
    err << "facilityd probe: " << error << "\n";
    return std::nullopt;
  }
  if (const std::string why = unit_problem(*ep, opt.unit); !why.empty()) {
    err << "facilityd probe: --unit: " << why << "\n";
    return std::nullopt;
  }
  dev.id = "probe";
  dev.endpoint = *ep;
  dev.unit = opt.unit;
  dev.profile_name = opt.profile;
  if (!opt.diagnose) {  // --diagnose reads raw registers: no profile needed
    dev.profile = find_profile(opt, err);
    if (!dev.profile) return std::nullopt;
  }
  dev.timeout = opt.timeout;
  if (opt.baud) es.baud = *opt.baud;
  if (opt.parity) es.parity = *opt.parity;
  if (opt.stop_bits) es.stop_bits = *opt.stop_bits;
  return std::make_pair(dev, es);
}

}  // namespace

namespace probe_detail {

modbus::PollResult poll_once(const Device& dev, const EndpointSettings& es,
                             const modbus::DeviceSpec& spec, std::vector<std::string>& problems) {
  const std::size_t reads = modbus::make_plan(spec.points, spec.plan).reads.size();
  const auto limit = es.connect_timeout + es.pause_after_connect +
                     (spec.timeout * (spec.retries + 1) + es.pause_between_requests +
                      spec.busy_retry_delay * spec.busy_retries) *
                         static_cast<long>(reads + spec.points.size()) +
                     std::chrono::seconds(2);
  OneShot shot;
  modbus::PollResult r;
  if (dev.endpoint.transport == Transport::kRtu) {
    const modbus::SerialSpec s = make_serial_spec(dev.endpoint, es);
    modbus::SerialLinePoller poller(0, s, {{0, spec}}, shot);
    poller.start();
    r = shot.wait(limit);
    poller.stop();
  } else {
    modbus::EngineEndpoint e;
    e.spec = make_endpoint_spec(dev.endpoint, es);
    e.devices.emplace_back(0, spec);
    modbus::PollEngine engine({e}, shot);
    engine.start();
    r = shot.wait(limit);
    engine.stop();
  }
  problems = shot.problems();
  return r;
}

}  // namespace probe_detail

namespace {

// Where a value comes from: "holding 48" (and the document's number when the profile counts
// from 1), or the derived point's operation and inputs.
std::string source_of(const Profile* profile, std::size_t i, const modbus::DeviceSpec& spec) {
  std::ostringstream where;
  if (i < spec.points.size()) {
    const auto& p = spec.points[i];
    where << modbus::to_string(p.kind) << " " << p.address;
    if (profile && profile->address_base != 0) {
      where << " (register " << p.address + profile->address_base << ")";
    }
    return where.str();
  }
  const std::size_t k = i - spec.points.size();
  if (!profile || k >= profile->derived.size()) return "derived";
  const DerivedPoint& d = profile->derived[k];
  where << "derived: " << modbus::to_string(d.spec.op) << "(";
  for (std::size_t j = 0; j < d.inputs.size(); ++j) where << (j ? ", " : "") << d.inputs[j];
  where << ")";
  return where.str();
}

std::string format_number(const modbus::PolledValue& v) {
  if (v.unreadable) return "UNREADABLE";
  if (!v.value) return v.text.empty() ? "(n/a)" : "\"" + v.text + "\"";
  return number_text(v);
}

// The table of points: name, value, unit, raw registers, address (read points, then derived).
void print_points(const modbus::PollResult& r, const Profile* profile,
                  const modbus::DeviceSpec& spec, std::ostream& out) {
  std::size_t wn = 5, wv = 5, wu = 4, wr = 3;
  std::vector<std::array<std::string, 5>> rows;
  for (std::size_t i = 0; i < r.values.size(); ++i) {
    const auto& v = r.values[i];
    const bool read = i < spec.points.size();
    const bool bits = read && modbus::is_bit_kind(spec.points[i].kind);
    const bool text = read && spec.points[i].type == modbus::DataType::kString;
    rows.push_back({std::string(v.name), text ? format_value(v, spec.points[i]) : format_number(v),
                    v.unit, hex_words(v.raw, bits), source_of(profile, i, spec)});
    wn = std::max(wn, rows.back()[0].size());
    wv = std::max(wv, rows.back()[1].size());
    wu = std::max(wu, rows.back()[2].size());
    wr = std::max(wr, rows.back()[3].size());
  }
  out << std::left << std::setw(static_cast<int>(wn)) << "POINT" << "  "
      << std::setw(static_cast<int>(wv)) << "VALUE" << "  " << std::setw(static_cast<int>(wu))
      << "UNIT" << "  " << std::setw(static_cast<int>(wr)) << "RAW" << "  ADDRESS\n";
  for (const auto& row : rows) {
    out << std::setw(static_cast<int>(wn)) << row[0] << "  " << std::setw(static_cast<int>(wv))
        << row[1] << "  " << std::setw(static_cast<int>(wu)) << row[2] << "  "
        << std::setw(static_cast<int>(wr)) << row[3] << "  " << row[4] << "\n";
  }
}

nlohmann::json points_json(const modbus::PollResult& r, const Profile* profile,
                           const modbus::DeviceSpec& spec) {
  using nlohmann::json;
  json points = json::array();
  for (std::size_t i = 0; i < r.values.size(); ++i) {
    const auto& v = r.values[i];
    json p{{"name", v.name},
           {"value",
            v.value && std::isfinite(*v.value) ? json(denoised(*v.value)) : json(nullptr)},
           {"unit", v.unit},
           {"unreadable", v.unreadable},
           {"source", source_of(profile, i, spec)}};
    if (!v.text.empty()) p["text"] = v.text;
    if (v.unreadable) p["why"] = v.unreadable_why;
    if (i < spec.points.size()) {
      p["function"] = modbus::to_string(spec.points[i].kind);
      p["address"] = spec.points[i].address;
      p["raw"] = v.raw;
    }
    points.push_back(std::move(p));
  }
  return points;
}

// One poll of the device, as a JSON object (ok, error, timing, points, notes).
int print_json(const Device& dev, const modbus::DeviceSpec& spec, const modbus::PollResult& r,
               const std::vector<std::string>& problems, std::ostream& out) {
  std::size_t unreadable = 0;
  for (const auto& v : r.values) unreadable += v.unreadable ? 1 : 0;
  nlohmann::json j{
      {"device", dev.id},
      {"endpoint", dev.endpoint.key()},
      {"unit", dev.unit},
      {"profile", dev.profile_name},
      {"ok", r.ok && unreadable == 0},
      {"error", r.ok ? nlohmann::json(nullptr) : nlohmann::json(r.error)},
      {"requests", r.requests},
      {"duration_ms", std::chrono::duration<double, std::milli>(r.duration).count()},
      {"points", r.ok ? points_json(r, dev.profile.get(), spec) : nlohmann::json::array()},
      {"notes", problems}};
  out << j.dump(2) << "\n";
  return r.ok && unreadable == 0 ? 0 : 1;
}

}  // namespace

int run_probe(const ProbeOptions& opt, std::ostream& out, std::ostream& err) {
  auto target = probe_target(opt, err);
  if (!target) return 2;
  auto& [dev, es] = *target;
  // One attempt only: a probe reports what it sees, it does not back off.
  es.backoff_initial = es.backoff_max = std::chrono::hours(1);
  if (opt.diagnose) return probe_detail::run_diagnose(opt, dev, es, out, err);
  modbus::DeviceSpec spec = make_device_spec(dev);
  spec.backoff_max = es.backoff_max;
  spec.interval = std::chrono::hours(1);
  spec.capture_raw = true;
  spec.first_poll_offset = std::chrono::milliseconds(0);
  const auto plan = modbus::make_plan(spec.points, spec.plan);
  std::vector<std::string> problems;
  const modbus::PollResult r = probe_detail::poll_once(dev, es, spec, problems);
  if (opt.json) return print_json(dev, spec, r, problems, out);

  out << "device " << (opt.device_id.empty() ? "" : dev.id + " ") << "unit " << dev.unit << " at "
      << dev.endpoint.key() << ", profile " << dev.profile_name << ": " << plan.reads.size()
      << " planned read" << (plan.reads.size() == 1 ? "" : "s") << ", " << r.requests
      << " sent, " << std::fixed << std::setprecision(1)
      << std::chrono::duration<double, std::milli>(r.duration).count() << " ms\n";
  out.unsetf(std::ios::fixed);
  if (!r.ok) {
    err << "facilityd probe: poll failed: " << r.error << "\n";
    for (const auto& p : problems) err << "  " << p << "\n";
    return 1;
  }
  print_points(r, dev.profile.get(), spec, out);
  std::map<std::string, int> notes;
  for (const auto& p : problems) ++notes[p];
  for (const auto& [p, n] : notes) {
    out << "note: " << p << (n > 1 ? " (x" + std::to_string(n) + ")" : "") << "\n";
  }
  std::size_t unreadable = 0;
  for (const auto& v : r.values) unreadable += v.unreadable ? 1 : 0;
  if (unreadable > 0) {
    err << "facilityd probe: " << unreadable << " point(s) UNREADABLE: the device rejects their "
        << "function or address (wrong profile, unit id or register map?)\n";
    return 1;
  }
  return 0;
}

CLI::App* add_probe_subcommand(CLI::App& app, ProbeCliOptions& opt) {
  auto* cmd = app.add_subcommand(
      "probe",
      "Read one device once and print every point decoded: value, unit, raw registers. "
      "Either --device ID --config FILE, or ENDPOINT --unit N --profile NAME.");
  cmd->add_option("endpoint", opt.probe.endpoint,
                  "tcp://HOST:PORT, rtu-over-tcp://HOST:PORT (serial gateway speaking RTU) "
                  "or rtu:///dev/ttyUSB0");
  cmd->add_option("--device", opt.probe.device_id, "Device id in the configuration");
  cmd->add_option("-c,--config", opt.probe.config_path, "Configuration file (with --device)");
  cmd->add_option("--unit", opt.probe.unit, "Modbus unit id")->capture_default_str();
  cmd->add_option("--profile", opt.probe.profile, "Profile name or path to a profile .yaml");
  cmd->add_option("--profiles-dir", opt.probe.profiles_dir,
                  "Where profile names are looked up first; then /etc/facilityd/profiles, "
                  "then the shipped " FACILITYD_DATADIR "/profiles");
  cmd->add_option("--timeout", opt.timeout, "Response timeout")->capture_default_str();
  cmd->add_option("--baud", opt.probe.baud, "Serial: baud rate (default 9600)");
  cmd->add_option("--parity", opt.parity, "Serial: none, even or odd (default none)");
  cmd->add_option("--stop-bits", opt.probe.stop_bits, "Serial: 1 or 2 (default 1)");
  cmd->add_flag("--json", opt.probe.json, "Print one JSON object instead of the table");
  cmd->add_option("--diagnose", opt.probe.diagnose,
                  "Read the registers around this protocol address and show them raw and in "
                  "every type and word order, from the address and one address either side "
                  "(no --profile needed)");
  cmd->add_option("--function", opt.probe.function, "With --diagnose: holding or input registers")
      ->capture_default_str();
  cmd->footer(R"(Examples:
  facilityd probe --device hl1-meter-ups --config /etc/facilityd/facilityd.yaml
  facilityd probe tcp://10.20.1.11:502 --unit 3 --profile generic-pdu-1ph
  facilityd probe rtu:///dev/ttyUSB0 --unit 1 --profile eastron-sdm630 --baud 9600 --parity even
  facilityd probe tcp://10.20.1.11:502 --unit 3 --diagnose 3027 --function holding
  facilityd probe --device hl1-meter-ups --config /etc/facilityd/facilityd.yaml --json

Exit status: 0 when the device answered every read, 1 when the poll failed, 2 for bad options.)");
  return cmd;
}

int run_probe_cli(ProbeCliOptions& opt) {
  const bool by_device = !opt.probe.device_id.empty();
  if (by_device == !opt.probe.endpoint.empty() || (by_device && opt.probe.config_path.empty()) ||
      (!by_device && opt.probe.profile.empty() && !opt.probe.diagnose)) {
    std::fprintf(stderr,
                 "facilityd probe: give either --device ID --config FILE, or "
                 "ENDPOINT --unit N --profile NAME (or --diagnose ADDRESS) (see "
                 "facilityd probe --help)\n");
    return 2;
  }
  if (opt.probe.diagnose && (*opt.probe.diagnose < 0 || *opt.probe.diagnose > 65535 ||
                             (opt.probe.function != "holding" && opt.probe.function != "input"))) {
    std::fprintf(stderr,
                 "facilityd probe: --diagnose takes an address 0..65535 and --function "
                 "holding or input\n");
    return 2;
  }
  const auto t = parse_duration(opt.timeout);
  if (!t) {
    std::fprintf(stderr, "facilityd probe: bad --timeout \"%s\" (e.g. 500ms, 2s)\n",
                 opt.timeout.c_str());
    return 2;
  }
  opt.probe.timeout = *t;
  if (!opt.parity.empty()) {
    if (opt.parity != "none" && opt.parity != "even" && opt.parity != "odd") {
      std::fprintf(stderr, "facilityd probe: --parity must be none, even or odd\n");
      return 2;
    }
    opt.probe.parity = opt.parity == "none" ? 'N' : opt.parity == "even" ? 'E' : 'O';
  }
  spdlog::set_level(spdlog::level::warn);
  return run_probe(opt.probe, std::cout, std::cerr);
}

}  // namespace facility
