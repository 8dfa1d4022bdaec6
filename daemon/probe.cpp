#include "daemon/probe.h"

#include <array>
#include <charconv>
#include <condition_variable>
#include <filesystem>
#include <iomanip>
#include <map>
#include <mutex>
#include <ostream>
#include <sstream>

#include "collectors/modbus/engine.h"
#include "collectors/modbus/serial_poller.h"
#include "daemon/config.h"
#include "daemon/polling.h"

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

std::string format_value(const modbus::PolledValue& v, const modbus::PointSpec& p) {
  if (v.unreadable) return "UNREADABLE";
  if (p.type == modbus::DataType::kString) return v.text.empty() ? "(n/a)" : "\"" + v.text + "\"";
  if (!v.value) return "(n/a)";
  // Shortest text that reads back as the same double: exact, and short for round numbers.
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof buf, *v.value);
  std::string s(buf, res.ptr);
  if (!v.text.empty()) s += " (" + v.text + ")";
  return s;
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
    for (const auto& x : e.errors()) err << x.format() << "\n";
    return nullptr;
  }
}

}  // namespace

int run_probe(const ProbeOptions& opt, std::ostream& out, std::ostream& err) {
  Device dev;
  EndpointSettings es;
  std::optional<Config> cfg;
  if (!opt.device_id.empty()) {
    try {
      cfg = load_config(opt.config_path);
    } catch (const ConfigException& e) {
      for (const auto& x : e.errors()) err << x.format() << "\n";
      return 2;
    }
    const Device* found = nullptr;
    for (const Device* d : cfg->all_devices()) {
      if (d->id == opt.device_id) found = d;
    }
    if (!found) {
      err << "facilityd probe: no device \"" << opt.device_id << "\" in " << opt.config_path
          << "\n";
      return 2;
    }
    dev = *found;
    es = cfg->endpoint_settings(dev.endpoint);
  } else {
    std::string error;
    auto ep = parse_endpoint_uri(opt.endpoint, &error);
    if (!ep) {
      err << "facilityd probe: " << error << "\n";
      return 2;
    }
    if (const std::string why = unit_problem(*ep, opt.unit); !why.empty()) {
      err << "facilityd probe: --unit: " << why << "\n";
      return 2;
    }
    dev.id = "probe";
    dev.endpoint = *ep;
    dev.unit = opt.unit;
    dev.profile_name = opt.profile;
    dev.profile = find_profile(opt, err);
    if (!dev.profile) return 2;
    dev.timeout = opt.timeout;
    if (opt.baud) es.baud = *opt.baud;
    if (opt.parity) es.parity = *opt.parity;
    if (opt.stop_bits) es.stop_bits = *opt.stop_bits;
  }
  // One attempt only: a probe reports what it sees, it does not back off.
  es.backoff_initial = es.backoff_max = std::chrono::hours(1);
  modbus::DeviceSpec spec = make_device_spec(dev);
  spec.backoff_max = es.backoff_max;
  spec.interval = std::chrono::hours(1);
  spec.capture_raw = true;
  spec.first_poll_offset = std::chrono::milliseconds(0);
  const std::vector<modbus::PointSpec> points = spec.points;
  const auto plan = modbus::make_plan(points, spec.plan);

  OneShot shot;
  const auto limit = es.connect_timeout + es.pause_after_connect +
                     (spec.timeout * (spec.retries + 1) + es.pause_between_requests +
                      spec.busy_retry_delay * spec.busy_retries) *
                         static_cast<long>(plan.reads.size() + points.size()) +
                     std::chrono::seconds(2);
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

  out << "device " << (opt.device_id.empty() ? "" : dev.id + " ") << "unit " << dev.unit << " at "
      << dev.endpoint.key() << ", profile " << dev.profile_name << ": " << plan.reads.size()
      << " planned read" << (plan.reads.size() == 1 ? "" : "s") << ", " << r.requests
      << " sent, " << std::fixed << std::setprecision(1)
      << std::chrono::duration<double, std::milli>(r.duration).count() << " ms\n";
  out.unsetf(std::ios::fixed);
  if (!r.ok) {
    err << "facilityd probe: poll failed: " << r.error << "\n";
    for (const auto& p : shot.problems()) err << "  " << p << "\n";
    return 1;
  }
  std::size_t wn = 5, wv = 5, wu = 4, wr = 3;
  std::vector<std::array<std::string, 5>> rows;
  for (std::size_t i = 0; i < r.values.size() && i < points.size(); ++i) {
    const auto& v = r.values[i];
    const auto& p = points[i];
    std::ostringstream where;
    where << modbus::to_string(p.kind) << " " << p.address;
    rows.push_back({v.name, format_value(v, p), v.unit,
                    hex_words(v.raw, modbus::is_bit_kind(p.kind)), where.str()});
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
  std::map<std::string, int> notes;
  for (const auto& p : shot.problems()) ++notes[p];
  for (const auto& [p, n] : notes) out << "note: " << p << (n > 1 ? " (x" + std::to_string(n) + ")" : "") << "\n";
  std::size_t unreadable = 0;
  for (const auto& v : r.values) unreadable += v.unreadable ? 1 : 0;
  if (unreadable > 0) {
    err << "facilityd probe: " << unreadable << " point(s) UNREADABLE: the device rejects their "
        << "function or address (wrong profile, unit id or register map?)\n";
    return 1;
  }
  return 0;
}

}  // namespace facility
