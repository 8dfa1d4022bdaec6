#include "daemon/app/scan.h"

#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <iomanip>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>
#include <sstream>
#include <thread>

#include "collectors/modbus/device_id.h"
#include "collectors/modbus/frame.h"
#include "collectors/modbus/scan_link.h"
#include "daemon/app/scan_match.h"
#include "daemon/config/config.h"
#include "facilityd_paths.h"

namespace facility {
namespace {

using Clock = std::chrono::steady_clock;

struct ScanUnit {
  UnitEvidence ev;
  std::vector<Candidate> candidates;
};

struct ScanSummary {
  std::vector<ScanUnit> units;
  int last_scanned = 0;  // the highest unit id asked for presence
  bool complete = false;
  bool wildcard = false;  // the endpoint answers every unit id
  int requests = 0;
  double elapsed_s = 0;
};

// One request at a time, no faster than the rate, within the time budget.
class Scanner {
 public:
  Scanner(const ScanOptions& opt, modbus::LinkSpec spec)
      : opt_(opt), link_(std::move(spec)), start_(Clock::now()), deadline_(start_ + opt.budget) {}

  bool open(std::string& error) { return link_.open(error); }
  bool out_of_time() const { return Clock::now() + opt_.timeout > deadline_; }
  int requests() const { return requests_; }
  double elapsed_s() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }

  // nullopt when the budget is spent.
  std::optional<modbus::LinkReply> ask(int unit, const std::vector<std::uint8_t>& pdu) {
    if (out_of_time()) return std::nullopt;
    const auto gap = std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(1.0 / std::max(opt_.rate, 0.01)));
    if (Clock::now() < next_) std::this_thread::sleep_until(next_);
    next_ = Clock::now() + gap;
    ++requests_;
    return link_.exchange(static_cast<std::uint8_t>(unit), pdu, opt_.timeout);
  }

  // Whether a device answers at `unit` (a reply or an exception other than a gateway's 10/11).
  std::optional<bool> present(int unit) {
    const auto r = ask(unit, read_pdu(modbus::RegisterKind::kHolding, 0, 1));
    if (!r) return std::nullopt;
    if (r->status != modbus::LinkReply::Status::kReply || r->pdu.empty()) return false;
    if ((r->pdu[0] & 0x80) && r->pdu.size() >= 2) {
      return r->pdu[1] != modbus::kGatewayPathUnavailable &&
             r->pdu[1] != modbus::kGatewayTargetNoResponse;
    }
    return true;
  }

  std::optional<std::vector<std::uint16_t>> read(int unit, modbus::RegisterKind kind,
                                                 std::uint16_t address, std::uint16_t count) {
    const auto key = std::make_tuple(unit, static_cast<int>(kind), address, count);
    if (auto it = cache_.find(key); it != cache_.end()) return it->second;
    std::optional<std::vector<std::uint16_t>> out;
    if (const auto r = ask(unit, read_pdu(kind, address, count));
        r && r->status == modbus::LinkReply::Status::kReply) {
      std::vector<std::uint16_t> words(count);
      if (modbus::parse_read_reply(r->pdu, kind, count, words.data()).kind ==
          modbus::ReplyKind::kData) {
        out = std::move(words);
      }
    }
    cache_[key] = out;
    return out;
  }

  static std::vector<std::uint8_t> read_pdu(modbus::RegisterKind kind, std::uint16_t a,
                                            std::uint16_t n) {
    return {static_cast<std::uint8_t>(kind), static_cast<std::uint8_t>(a >> 8),
            static_cast<std::uint8_t>(a), static_cast<std::uint8_t>(n >> 8),
            static_cast<std::uint8_t>(n)};
  }

 private:
  const ScanOptions& opt_;
  modbus::ScanLink link_;
  Clock::time_point start_, deadline_, next_{};
  int requests_ = 0;
  std::map<std::tuple<int, int, std::uint16_t, std::uint16_t>,
           std::optional<std::vector<std::uint16_t>>>
      cache_;
};

// Read Device Identification: the basic objects, then the regular ones where the device says
// it has them (conformity level 2 or 3).
void identify_fc43(Scanner& s, UnitEvidence& ev) {
  using modbus::DeviceIdCode;
  std::uint8_t conformity = 0;
  for (DeviceIdCode code : {DeviceIdCode::kBasic, DeviceIdCode::kRegular}) {
    if (code == DeviceIdCode::kRegular && (conformity & 0x7F) < 2) break;
    std::uint8_t next = code == DeviceIdCode::kBasic ? 0 : 3;
    for (int round = 0; round < 4; ++round) {
      const auto r = s.ask(ev.unit, modbus::device_id_request(code, next));
      if (!r || r->status != modbus::LinkReply::Status::kReply) return;
      const auto reply = modbus::parse_device_id_reply(r->pdu, nullptr);
      if (!reply) return;  // an exception: no (more) identification
      conformity = reply->conformity;
      for (const auto& o : reply->objects) {
        if (std::none_of(ev.objects.begin(), ev.objects.end(),
                         [&o](const auto& x) { return x.first == o.first; })) {
          ev.objects.push_back(o);
        }
      }
      ev.fc43 = !ev.objects.empty();
      if (!reply->more_follows) break;
      next = reply->next_object;
    }
  }
}

// The SunSpec marker "SunS" and, after it, the common model's manufacturer and model.
void find_sunspec(Scanner& s, UnitEvidence& ev) {
  for (const std::uint16_t base : {40000, 0, 50000}) {
    const auto w = s.read(ev.unit, modbus::RegisterKind::kHolding, base, 2);
    if (!w || (*w)[0] != 0x5375 || (*w)[1] != 0x6E53) continue;
    ev.sunspec_base = base;
    // Common model: ID (1), length, Mn (16 registers), Md (16).
    const auto c =
        s.read(ev.unit, modbus::RegisterKind::kHolding, static_cast<std::uint16_t>(base + 2), 34);
    if (c) {
      modbus::PointSpec str;
      str.type = modbus::DataType::kString;
      str.length = 16;
      const modbus::PointCodec codec(str);
      ev.sunspec_manufacturer = codec.decode(std::span(c->data() + 2, 16)).text;
      ev.sunspec_model = codec.decode(std::span(c->data() + 18, 16)).text;
    }
    return;
  }
}

std::string object(const UnitEvidence& ev, std::initializer_list<int> ids) {
  for (int id : ids) {
    for (const auto& [i, text] : ev.objects) {
      if (i == id && !text.empty()) return text;
    }
  }
  return "";
}

std::string vendor_of(const UnitEvidence& ev) {
  const std::string v = object(ev, {0});
  return !v.empty() ? v : ev.sunspec_manufacturer;
}
std::string model_of(const UnitEvidence& ev) {
  const std::string m = object(ev, {5, 1, 4});
  return !m.empty() ? m : ev.sunspec_model;
}

// Every profile with an `identify` block on the search path.
std::vector<std::shared_ptr<const Profile>> catalog(const ScanOptions& opt, std::ostream& err) {
  std::vector<std::shared_ptr<const Profile>> out;
  const auto path = profile_search_path(opt.profiles_dir);
  for (const std::string& name : available_profiles(path)) {
    try {
      auto p = load_profile(find_profile_file(path, name).string());
      if (!p->identify.empty()) out.push_back(std::move(p));
    } catch (const ConfigException& e) {
      err << "facilityd scan: profile " << name << " skipped: " << e.errors().front().format()
          << "\n";
    }
  }
  return out;
}

// The unit ids to ask: the whole range, or the first one only when the endpoint answers every
// unit id (tested with 248, reserved on a serial bus: no real bus device has it).
ScanSummary find_units(Scanner& s, const ScanOptions& opt, Transport transport, std::ostream& err) {
  ScanSummary sum;
  if (transport == Transport::kTcp && opt.first_unit != opt.last_unit) {
    if (auto p = s.present(248); p && *p) sum.wildcard = true;
  }
  const int last = sum.wildcard ? opt.first_unit : opt.last_unit;
  for (int unit = opt.first_unit; unit <= last; ++unit) {
    const auto p = s.present(unit);
    if (!p) {
      err << "facilityd scan: time budget spent after unit " << sum.last_scanned << "\n";
      return sum;
    }
    sum.last_scanned = unit;
    if (*p) {
      ScanUnit u;
      u.ev.unit = unit;
      sum.units.push_back(std::move(u));
    }
  }
  sum.complete = true;
  return sum;
}

void identify_units(Scanner& s, const std::vector<std::shared_ptr<const Profile>>& profiles,
                    ScanSummary& sum) {
  for (ScanUnit& u : sum.units) {
    identify_fc43(s, u.ev);
    find_sunspec(s, u.ev);
    const int unit = u.ev.unit;
    u.candidates = match_profiles(
        profiles, u.ev, [&s, unit](modbus::RegisterKind k, std::uint16_t a, std::uint16_t n) {
          return s.read(unit, k, a, n);
        });
    if (s.out_of_time()) sum.complete = false;
  }
}

std::string dash(const std::string& s) { return s.empty() ? "-" : s; }

void print_table(const ScanSummary& sum, const ScanOptions& opt, std::ostream& out) {
  std::vector<std::array<std::string, 6>> rows;
  rows.push_back({"UNIT", "VENDOR", "MODEL", "PROFILE", "CONFIDENCE", "EVIDENCE"});
  for (const ScanUnit& u : sum.units) {
    const Candidate* best = u.candidates.empty() ? nullptr : &u.candidates.front();
    std::string evidence = best ? best->evidence : "no profile matched";
    if (u.ev.sunspec_base) evidence += "; SunSpec at " + std::to_string(*u.ev.sunspec_base);
    for (std::size_t i = 1; i < u.candidates.size(); ++i) {
      evidence += (i == 1 ? "; also: " : ", ") + u.candidates[i].profile->name + " (" +
                  u.candidates[i].confidence + ")";
    }
    rows.push_back({std::to_string(u.ev.unit), dash(vendor_of(u.ev)), dash(model_of(u.ev)),
                    best ? best->profile->name : "-", best ? best->confidence : "-", evidence});
  }
  std::array<std::size_t, 6> w{};
  for (const auto& r : rows) {
    for (std::size_t i = 0; i < 5; ++i) w[i] = std::max(w[i], r[i].size());
  }
  for (const auto& r : rows) {
    for (std::size_t i = 0; i < 5; ++i)
      out << std::left << std::setw(static_cast<int>(w[i] + 2)) << r[i];
    out << r[5] << "\n";
  }
  out << "scanned units " << opt.first_unit << ".." << sum.last_scanned << " of " << opt.endpoint
      << " in " << std::fixed << std::setprecision(1) << sum.elapsed_s << " s (" << sum.requests
      << " requests): " << sum.units.size() << " device" << (sum.units.size() == 1 ? "" : "s")
      << " answered" << (sum.complete ? "" : "; INCOMPLETE: the time budget ran out") << "\n";
  out.unsetf(std::ios::fixed);
  if (sum.wildcard) {
    out << "note: the endpoint answers every unit id (it answered unit 248, reserved on a serial "
           "bus): only unit "
        << opt.first_unit << " was scanned\n";
  }
}

// The keys a device of this kind needs that only a person can fill in.
std::string kind_keys(const std::string& kind) {
  if (kind == "pdu") return ", cabinet: TODO, feed: TODO";
  if (kind == "rack_sensor") return ", cabinet: TODO";
  if (kind == "cooling") return ", room: TODO";
  if (kind == "meter") return ", role: other";
  return "";
}

void print_inventory(const ScanSummary& sum, const ScanOptions& opt, std::ostream& out) {
  out << "\n# facilityd scan " << opt.endpoint
      << ": paste under a site's `devices:`, then replace "
         "every TODO (and a meter's role) and check with `facilityd check-config`.\n"
      << "devices:\n";
  for (const ScanUnit& u : sum.units) {
    const std::string id = opt.id_prefix + "-u" + std::to_string(u.ev.unit);
    if (u.candidates.empty()) {
      out << "  # unit " << u.ev.unit << " answers, no profile matched (" << dash(vendor_of(u.ev))
          << " " << dash(model_of(u.ev)) << "): facilityd probe " << opt.endpoint << " --unit "
          << u.ev.unit << " --diagnose ADDRESS\n";
      continue;
    }
    const Candidate& c = u.candidates.front();
    const std::string kind =
        c.profile->kinds.empty() ? std::string("TODO") : to_string(c.profile->kinds.front());
    out << "  - {id: " << id << ", kind: " << kind << ", profile: " << c.profile->name
        << ", endpoint: \"" << opt.endpoint << "\", unit: " << u.ev.unit << kind_keys(kind)
        << "}  # " << c.confidence << ": " << c.evidence << "\n";
  }
}

nlohmann::json to_json(const ScanSummary& sum, const ScanOptions& opt) {
  using nlohmann::json;
  json units = json::array();
  for (const ScanUnit& u : sum.units) {
    json objects = json::object();
    for (const auto& [id, text] : u.ev.objects) {
      const std::string name = device_id_object_name(id);
      objects[name.empty() ? std::to_string(id) : name] = text;
    }
    json cands = json::array();
    for (const Candidate& c : u.candidates) {
      cands.push_back({{"profile", c.profile->name},
                       {"kind", c.profile->kinds.empty() ? json(nullptr)
                                                         : json(to_string(c.profile->kinds[0]))},
                       {"confidence", c.confidence},
                       {"score", c.score},
                       {"evidence", c.evidence}});
    }
    units.push_back({{"unit", u.ev.unit},
                     {"vendor", vendor_of(u.ev)},
                     {"model", model_of(u.ev)},
                     {"fc43", u.ev.fc43 ? json(objects) : json(nullptr)},
                     {"sunspec_base", u.ev.sunspec_base ? json(*u.ev.sunspec_base) : json(nullptr)},
                     {"candidates", std::move(cands)}});
  }
  return {{"endpoint", opt.endpoint},         {"first_unit", opt.first_unit},
          {"last_scanned", sum.last_scanned}, {"complete", sum.complete},
          {"wildcard", sum.wildcard},         {"requests", sum.requests},
          {"elapsed_s", sum.elapsed_s},       {"devices", std::move(units)}};
}

// The link for an endpoint, with the command line's serial settings.
modbus::LinkSpec link_spec(const Endpoint& ep, const ScanOptions& opt) {
  modbus::LinkSpec l;
  l.key = ep.key();
  l.kind = ep.transport == Transport::kTcp          ? modbus::LinkSpec::Kind::kTcp
           : ep.transport == Transport::kRtuOverTcp ? modbus::LinkSpec::Kind::kRtuOverTcp
                                                    : modbus::LinkSpec::Kind::kSerial;
  l.host = ep.host;
  l.port = ep.port;
  l.device = ep.device;
  if (opt.baud) l.baud = *opt.baud;
  if (opt.parity) l.parity = *opt.parity;
  if (opt.stop_bits) l.stop_bits = *opt.stop_bits;
  return l;
}

}  // namespace

int run_scan(const ScanOptions& opt, std::ostream& out, std::ostream& err) {
  std::string error;
  const auto ep = parse_endpoint_uri(opt.endpoint, &error);
  if (!ep) {
    err << "facilityd scan: " << error << "\n";
    return 2;
  }
  for (int u : {opt.first_unit, opt.last_unit}) {
    if (const std::string why = unit_problem(*ep, u); !why.empty()) {
      err << "facilityd scan: --units: " << why << "\n";
      return 2;
    }
  }
  const auto profiles = catalog(opt, err);
  if (profiles.empty()) {
    err << "facilityd scan: no profile with an identify block on the search path (";
    const auto path = profile_search_path(opt.profiles_dir);
    for (std::size_t i = 0; i < path.size(); ++i) err << (i ? ", " : "") << path[i].string();
    err << "): units are found but not identified (see --profiles-dir)\n";
  }
  Scanner s(opt, link_spec(*ep, opt));
  if (!s.open(error)) {
    err << "facilityd scan: " << opt.endpoint << ": " << error << "\n";
    return 1;
  }
  ScanSummary sum = find_units(s, opt, ep->transport, err);
  identify_units(s, profiles, sum);
  sum.requests = s.requests();
  sum.elapsed_s = s.elapsed_s();
  if (opt.json) {
    out << to_json(sum, opt).dump(2) << "\n";
  } else {
    print_table(sum, opt, out);
    print_inventory(sum, opt, out);
  }
  return sum.complete && !sum.units.empty() ? 0 : 1;
}

CLI::App* add_scan_subcommand(CLI::App& app, ScanCliOptions& opt) {
  auto* cmd = app.add_subcommand(
      "scan",
      "Find the Modbus devices behind a gateway or on a serial line, identify them (Read Device "
      "Identification, SunSpec, the profiles' identification registers) and propose a profile "
      "and a devices: block for each. Read-only; the only command that sends function 43.");
  cmd->add_option("endpoint", opt.scan.endpoint,
                  "tcp://HOST:PORT, rtu-over-tcp://HOST:PORT or rtu:///dev/ttyUSB0")
      ->required();
  cmd->add_option("--units", opt.units, "Unit ids to try: N or FIRST-LAST")->capture_default_str();
  cmd->add_option("--rate", opt.scan.rate, "Requests per second, at most (one at a time)")
      ->capture_default_str();
  cmd->add_option("--timeout", opt.timeout, "Response timeout of each request")
      ->capture_default_str();
  cmd->add_option("--budget", opt.budget, "Time budget of the whole scan")->capture_default_str();
  cmd->add_option("--profiles-dir", opt.scan.profiles_dir,
                  "Where profiles are looked up first; then /etc/facilityd/profiles, then the "
                  "shipped " FACILITYD_DATADIR "/profiles");
  cmd->add_option("--id-prefix", opt.scan.id_prefix, "Device ids proposed: PREFIX-uUNIT")
      ->capture_default_str();
  cmd->add_flag("--json", opt.scan.json, "Print the result as JSON instead of a table");
  cmd->add_option("--baud", opt.scan.baud, "Serial: baud rate (default 9600)");
  cmd->add_option("--parity", opt.parity, "Serial: none, even or odd (default none)");
  cmd->add_option("--stop-bits", opt.scan.stop_bits, "Serial: 1 or 2 (default 1)");
  cmd->footer(R"(Every request is a read: function codes 1-4 and 43/14 (Read Device Identification).
scan is the only facilityd command that sends 43; `run` and `probe` send only 1-4. Requests
go one at a time per line, at most --rate per second; the scan stops when --budget is spent. A unit answers in about --timeout at worst, so the whole range
of 247 unit ids takes up to 247 x max(timeout, 1/rate): narrow it with --units.

Examples:
  facilityd scan tcp://10.20.1.11:502
  facilityd scan rtu:///dev/ttyUSB0 --units 1-32 --baud 9600 --parity even --timeout 300ms

Exit status: 0 when the whole range was scanned and a device answered, 1 when no device
answered, the endpoint could not be opened or the budget ran out, 2 for bad options.)");
  return cmd;
}

int run_scan_cli(ScanCliOptions& opt) {
  auto fail = [](const std::string& msg) {
    std::fprintf(stderr, "facilityd scan: %s\n", msg.c_str());
    return 2;
  };
  try {
    const auto dash = opt.units.find('-');
    std::size_t pos = 0;
    opt.scan.first_unit = std::stoi(opt.units.substr(0, dash), &pos);
    opt.scan.last_unit =
        dash == std::string::npos ? opt.scan.first_unit : std::stoi(opt.units.substr(dash + 1));
  } catch (...) {
    return fail("--units must be N or FIRST-LAST, got \"" + opt.units + "\"");
  }
  if (opt.scan.first_unit > opt.scan.last_unit) return fail("--units: FIRST must not exceed LAST");
  const auto t = parse_duration(opt.timeout);
  const auto b = parse_duration(opt.budget);
  if (!t || !b) return fail("bad --timeout or --budget (e.g. 300ms, 2m)");
  if (!(opt.scan.rate > 0 && opt.scan.rate <= 1000)) return fail("--rate must be in (0, 1000]");
  opt.scan.timeout = *t;
  opt.scan.budget = *b;
  if (!opt.parity.empty()) {
    if (opt.parity != "none" && opt.parity != "even" && opt.parity != "odd") {
      return fail("--parity must be none, even or odd");
    }
    opt.scan.parity = opt.parity == "none" ? 'N' : opt.parity == "even" ? 'E' : 'O';
  }
  spdlog::set_level(spdlog::level::warn);
  return run_scan(opt.scan, std::cout, std::cerr);
}

}  // namespace facility
