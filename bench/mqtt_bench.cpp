// MQTT publishing benchmark: a 2,000-cabinet site published to a local mosquitto.
//
//   build/mqtt_bench [--cabinets 2000] [--rounds 5] [--window 256] [--modes LIST]
//
// For each mode, each round: synthetic readings of every device are stamped "polled now", the
// real facility model computes the snapshot, the snapshot is published, and a mosquitto_sub
// process (receive time stamped by mosquitto_sub itself) collects every message of the round.
// Every value changes every round, so a round is a full refresh of the site. Reported per mode:
// messages per second (first publish call to last message received), CPU of this process per
// 1,000 messages (model excluded; Paho's threads included), and poll -> delivery delay p50/p99.
//
// Modes, measured in the same run against the same broker:
//   facilityd          MqttPublisher: change filter, bounded outbox, at most --window in flight
//   facilityd+journal  the same with mqtt.outbox.persist (SQLite journal in a temp directory)
//   paho-buffer        the same rendered messages handed straight to one Paho async_client
//                      with its own offline buffer (what facilityd did before the outbox)
//   mosquitto_pub      the same payloads piped into `mosquitto_pub -l` (libmosquitto): what
//                      the broker and one plain client do here, a ceiling for reference
//   facilityd-v5       facilityd over MQTT 5 (content type and format indicator per message)
//   facilityd-steady   facilityd when 1 device in 20 changes per round (deadbands filter the
//                      rest): the delay a NOC sees in normal operation
#include <mqtt/async_client.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "daemon/config/config.h"
#include "daemon/model/model.h"
#include "daemon/sinks/mqtt/publisher.h"
#include "daemon/sinks/mqtt/render.h"
#include "tests/unit/support/mqtt_test_util.h"

namespace {

using namespace facility;
using namespace facility::testing;
using namespace std::chrono_literals;

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

double unix_now() {
  return std::chrono::duration<double>(Clock::now().time_since_epoch()).count();
}

// One site: `n` cabinets in rows of 20 with two single-phase PDUs (feeds A/B) and a rack sensor
// each, one CRAH per 100 cabinets, three meters. Endpoints hold up to 240 units each.
std::string site_yaml(int n, const std::string& profiles) {
  std::ostringstream y;
  y << "profiles_dir: " << profiles << "\n"
    << "defaults: {interval: 15s, timeout: 1s, rated_kw: 4.4, feeds: [A, B]}\nsites:\n"
    << "  - id: big\n    planned_cabinets: " << n << "\n    rooms:\n      - id: hall\n"
    << "        rows:\n";
  for (int r = 0; r * 20 < n; ++r) {
    y << "          - id: r" << r << "\n            cabinets:\n";
    for (int i = r * 20; i < std::min(n, r * 20 + 20); ++i)
      y << "              - {id: c" << i << ", status: sold}\n";
  }
  y << "    devices:\n";
  int unit = 0, endpoint = 20000;
  const auto ep = [&] {
    if (++unit > 240) {
      unit = 1;
      ++endpoint;
    }
    return "endpoint: \"tcp://127.0.0.1:" + std::to_string(endpoint) +
           "\", unit: " + std::to_string(unit);
  };
  for (const char* role : {"facility_total", "it_total", "cooling"})
    y << "      - {id: m-" << role << ", kind: meter, role: " << role
      << ", profile: generic-energy-meter, " << ep() << "}\n";
  for (int i = 0; i < n; ++i) {
    for (const char* f : {"a", "b"})
      y << "      - {id: c" << i << "-pdu-" << f << ", kind: pdu, profile: generic-pdu-1ph, "
        << ep() << ", cabinet: c" << i << ", feed: " << static_cast<char>(std::toupper(*f))
        << "}\n";
    y << "      - {id: c" << i << "-env, kind: rack_sensor, profile: generic-rack-sensor, "
      << ep() << ", cabinet: c" << i << "}\n";
  }
  for (int i = 0; i * 100 < n; ++i)
    y << "      - {id: crah-" << i << ", kind: cooling, room: hall, profile: generic-crah, "
      << ep() << "}\n";
  return y.str();
}

// Every point of every device, stamped polled at `t`. Each device's values change once every
// `every` rounds (1: every round, a full refresh of the site), staggered across devices.
std::unordered_map<std::string, ReadingStore::Entry> readings(const Config& cfg, int round,
                                                              TimePoint t, int every) {
  std::unordered_map<std::string, ReadingStore::Entry> out;
  int i = 0;
  for (const Device* d : cfg.all_devices()) {
    auto r = std::make_shared<DeviceReading>();
    r->device_id = d->id;
    r->polled_at = t;
    const int k = (round + ++i) / every;
    const double x = 1.0 + 0.05 * (k % 7);
    for (const auto& p : d->profile->points) {
      double v = 10 * x;
      if (p.spec.name == "active_power") v = 1000 * x;
      if (p.spec.name == "voltage") v = 220 + x;
      if (p.spec.name == "running" || p.spec.name == "cooling_active") v = 1;
      if (p.spec.unit == "percent") v = 40 + 10 * x;
      if (p.spec.unit == "ratio") v = 0.4 + 0.1 * x;
      if (p.spec.name.find("temperature") != std::string::npos) v = 20 + 2 * x;
      r->points[p.spec.name] = PointValue{v + k * 1e-3, p.spec.unit};
    }
    ReadingStore::Entry e;
    e.reading = r;
    e.health.last_attempt = e.health.last_success = t;
    e.health.up = true;
    out.emplace(d->id, std::move(e));
  }
  return out;
}

// mosquitto_sub writing "<receive unix time> <topic> <payload>"; counts messages per snapshot ts.
class Collector {
 public:
  Collector(int port, const std::string& filter) : path_((dir_.path() / "sub.out").string()) {
    proc_ = std::make_unique<Child>(
        std::vector<std::string>{kMosquittoSub, "-h", "127.0.0.1", "-p", std::to_string(port), "-q",
                                 "1", "-t", filter, "-F", "%U %t %p"},
        std::vector<std::string>{}, path_);
  }
  // Waits until `n` messages whose payload holds `ts` arrived; returns their receive times.
  std::vector<double> wait(const std::string& ts, std::size_t n, std::chrono::seconds timeout) {
    const auto deadline = Steady::now() + timeout;
    const std::string key = "\"ts\":\"" + ts + "\"";
    std::vector<double>& got = by_ts_[ts];
    while (got.size() < n && Steady::now() < deadline) {
      refresh(key);
      if (got.size() < n) std::this_thread::sleep_for(2ms);
    }
    return got;
  }

 private:
  void refresh(const std::string&) {
    std::ifstream in(path_);
    in.seekg(static_cast<std::streamoff>(offset_));
    std::string line;
    while (std::getline(in, line)) {
      if (in.eof()) break;  // a partial last line: read it again next time
      offset_ += line.size() + 1;
      const auto p = line.find("\"ts\":\"");
      if (p == std::string::npos) continue;
      by_ts_[line.substr(p + 6, 24)].push_back(std::stod(line.substr(0, line.find(' '))));
    }
  }
  TempDir dir_;
  std::string path_;
  std::unique_ptr<Child> proc_;
  std::size_t offset_ = 0;
  std::map<std::string, std::vector<double>> by_ts_;
};

struct Result {
  std::string mode;
  std::vector<double> rate, cpu_per_1000, delays;
  std::size_t messages = 0;
};

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(q * static_cast<double>(v.size())))];
}
double median(std::vector<double> v) { return percentile(std::move(v), 0.5); }

struct Bench {
  std::shared_ptr<const Config> cfg;
  int port;
  int rounds;
  std::size_t window;
  int every = 1;  // see readings()

  MqttSettings settings(const std::string& prefix) const {
    MqttSettings s;
    s.broker = "tcp://127.0.0.1:" + std::to_string(port);
    s.client_id = "bench-" + prefix;
    s.topic_prefix = "bench/" + prefix;
    s.publish_interval = 0ms;
    s.refresh_interval = 0ms;
    s.outbox.max_messages = 1'000'000;
    s.outbox.max_bytes = 4ull << 30;
    return s;
  }

  // One round's snapshot, "polled" now; returns it and the poll time.
  std::pair<std::shared_ptr<const FacilitySnapshot>, double> snapshot(int round) const {
    const TimePoint t = Clock::now();
    auto snap = compute_snapshot(cfg, readings(*cfg, round, t, every), Clock::now());
    return {snap, std::chrono::duration<double>(t.time_since_epoch()).count()};
  }

  void record(Result& r, std::size_t n, double t0, double t1, double cpu, double poll,
              const std::vector<double>& recv) const {
    r.messages = n;
    r.rate.push_back(static_cast<double>(n) / (t1 - t0));
    r.cpu_per_1000.push_back(cpu * 1000 / static_cast<double>(n) * 1000);  // ms per 1,000
    for (double t : recv) r.delays.push_back(t - poll);
  }

  Result facilityd(bool journal, int change_every = 1, int version = 4) {
    const std::string prefix = journal ? "journal" : change_every > 1 ? "steady"
                               : version == 5                       ? "v5"
                                                                    : "outbox";
    Result r{journal ? "facilityd+journal"
             : change_every > 1 ? "facilityd, 5%/round"
             : version == 5     ? "facilityd MQTT 5"
                                : "facilityd",
             {}, {}, {}, 0};
    every = change_every;
    TempDir state;
    MqttSettings s = settings(prefix);
    s.protocol_version = version;
    s.outbox.persist = journal;
    MqttPublisherOptions o;
    o.max_in_flight = window;
    o.state_dir = state.path().string();
    Collector sub(port, s.topic_prefix + "/#");
    MqttPublisher pub(s, {"big"}, o);
    pub.start();
    eventually([&] { return pub.stats().connected; }, 10s);
    std::this_thread::sleep_for(300ms);  // the subscriber is connected
    for (int round = 0; round <= rounds; ++round) {
      auto [snap, poll] = snapshot(round);
      const auto before = pub.stats();
      const double cpu0 = cpu_seconds(), t0 = unix_now();
      pub.publish(snap);
      eventually([&] { return pub.stats().snapshots_processed > before.snapshots_processed; }, 60s);
      const std::size_t n = pub.stats().queued_total - before.queued_total;
      const auto recv = sub.wait(format_rfc3339_ms(snap->computed_at), n, 120s);
      eventually([&] { return pub.stats().queue_messages == 0; }, 60s);
      const double t1 = recv.empty() ? unix_now() : *std::max_element(recv.begin(), recv.end());
      const double cpu = cpu_seconds() - cpu0;
      if (recv.size() < n) std::cerr << r.mode << ": only " << recv.size() << " of " << n << "\n";
      if (round > 0) record(r, n, t0, t1, cpu, poll, recv);  // round 0 warms up
    }
    pub.stop();
    every = 1;
    return r;
  }

  Result paho_buffer() {
    Result r{"paho-buffer", {}, {}, {}, 0};
    const MqttSettings s = settings("paho");
    Collector sub(port, s.topic_prefix + "/#");
    mqtt::create_options co(MQTTVERSION_3_1_1);
    co.set_send_while_disconnected(true);
    co.set_max_buffered_messages(1'000'000);
    mqtt::async_client client(s.broker, s.client_id, co, nullptr);
    mqtt::connect_options opts;
    opts.set_clean_session(true);
    client.connect(opts)->wait();
    std::this_thread::sleep_for(300ms);
    for (int round = 0; round <= rounds; ++round) {
      auto [snap, poll] = snapshot(round);
      const double cpu0 = cpu_seconds(), t0 = unix_now();
      const auto msgs = render_messages(*snap, s.topic_prefix);
      std::vector<mqtt::delivery_token_ptr> toks;
      toks.reserve(msgs.size());
      for (const auto& m : msgs) toks.push_back(client.publish(m.topic, m.payload.data(),
                                                               m.payload.size(), 1, true));
      for (auto& t : toks) t->wait();
      const auto recv = sub.wait(format_rfc3339_ms(snap->computed_at), msgs.size(), 120s);
      const double t1 = recv.empty() ? unix_now() : *std::max_element(recv.begin(), recv.end());
      if (round > 0) record(r, msgs.size(), t0, t1, cpu_seconds() - cpu0, poll, recv);
    }
    client.disconnect()->wait();
    return r;
  }

  Result mosquitto_pub() {
    Result r{"mosquitto_pub", {}, {}, {}, 0};
    Collector sub(port, "bench/raw/#");
    std::this_thread::sleep_for(300ms);
    for (int round = 0; round <= rounds; ++round) {
      auto [snap, poll] = snapshot(round);
      const auto msgs = render_messages(*snap, "bench/raw");
      TempDir dir;
      const std::string input = (dir.path() / "in.txt").string();
      {
        std::ofstream out(input);
        for (const auto& m : msgs) out << m.payload << "\n";
      }
      const double t0 = unix_now();
      const std::string cmd = "mosquitto_pub -h 127.0.0.1 -p " + std::to_string(port) +
                              " -q 1 -t bench/raw/x -l < " + input;
      if (std::system(cmd.c_str()) != 0) std::cerr << "mosquitto_pub failed\n";
      const auto recv = sub.wait(format_rfc3339_ms(snap->computed_at), msgs.size(), 120s);
      const double t1 = recv.empty() ? unix_now() : *std::max_element(recv.begin(), recv.end());
      r.messages = msgs.size();
      if (round > 0) r.rate.push_back(static_cast<double>(msgs.size()) / (t1 - t0));
    }
    return r;
  }
};

// CPU of the pure stages for one full snapshot, ms per 1,000 messages: rendering to JSON
// objects, the change filter (comparing with the previous round), serialising.
void breakdown(const Bench& b) {
  const auto a = b.snapshot(1).first, c = b.snapshot(2).first;
  MqttChangeFilter filter(MqttDeadbands{});
  std::vector<RenderedMessage> prev, msgs;
  render_state(*a, "bench/x", "big", prev);
  for (const auto& m : prev) filter.offer(m.topic, m.body, false, false);
  double t = cpu_seconds();
  render_state(*c, "bench/x", "big", msgs);
  const double render = cpu_seconds() - t;
  t = cpu_seconds();
  std::size_t changed = 0;
  for (const auto& m : msgs)
    changed += filter.offer(m.topic, m.body, false, false) != MqttChangeFilter::Verdict::kUnchanged;
  const double filt = cpu_seconds() - t;
  t = cpu_seconds();
  std::size_t bytes = 0;
  for (const auto& m : msgs) bytes += dump_payload(m.body).size();
  const double dump = cpu_seconds() - t;
  const double k = 1e6 / static_cast<double>(msgs.size());
  std::printf("stages, CPU ms per 1,000 messages: render %.1f, change filter %.1f (%zu of %zu "
              "changed), JSON dump %.1f; mean payload %zu bytes\n",
              render * k, filt * k, changed, msgs.size(), dump * k, bytes / msgs.size());

  // Memory of the outbox per queued message: 12 full snapshots (~100,000 messages).
  const auto rss = [] {
    std::ifstream in("/proc/self/statm");
    long pages = 0, resident = 0;
    in >> pages >> resident;
    return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE));
  };
  std::vector<std::string> payloads;
  for (const auto& m : msgs) payloads.push_back(dump_payload(m.body));
  const double before = rss();
  std::size_t n = 0, queued_bytes = 0;
  {
    MqttOutbox box({1'000'000, 4ull << 30, 0}, {"big"});
    for (int round = 0; round < 12; ++round) {
      std::vector<OutboxMessage> batch;
      for (std::size_t i = 0; i < msgs.size(); ++i) {
        OutboxMessage m;
        m.site = "big";
        m.topic = msgs[i].topic;
        m.payload = payloads[i];
        batch.push_back(std::move(m));
      }
      std::uint64_t seq = box.reserve_seqs(batch.size());
      for (auto& m : batch) m.seq = seq++;
      box.push(std::move(batch));
    }
    n = box.stats().messages;
    queued_bytes = box.stats().bytes;
    std::printf("outbox memory: %zu messages (%.1f MiB of topics and payloads) take %.1f MiB, "
                "%.2f x the bytes counted by mqtt.outbox.max_bytes\n\n",
                n, static_cast<double>(queued_bytes) / (1 << 20), (rss() - before) / (1 << 20),
                (rss() - before) / static_cast<double>(queued_bytes));
  }
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "?";
}

}  // namespace

int main(int argc, char** argv) {
  int cabinets = 2000, rounds = 5;
  std::size_t window = 256;
  std::string modes = "facilityd,facilityd+journal,paho-buffer,mosquitto_pub,facilityd-steady";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--cabinets") cabinets = std::stoi(v);
    else if (a == "--rounds") rounds = std::stoi(v);
    else if (a == "--window") window = std::stoul(v);
    else if (a == "--modes") modes = v;
    else {
      std::cerr << "usage: mqtt_bench [--cabinets N] [--rounds N] [--window N] [--modes LIST]\n";
      return 2;
    }
  }
  spdlog::set_level(spdlog::level::warn);
  TempDir dir;
  const std::string path = dir.write("site.yaml", site_yaml(cabinets, FACILITYD_SOURCE_DIR
                                                            "/config/profiles"));
  Bench b;
  b.cfg = std::make_shared<const Config>(load_config(path));
  b.rounds = rounds;
  b.window = window;
  Mosquitto broker(free_loopback_port());
  if (!broker.start()) {
    std::cerr << "cannot start mosquitto\n";
    return 1;
  }
  b.port = broker.port();

  double load[3] = {0, 0, 0};
  getloadavg(load, 3);
  const double t_model0 = cpu_seconds();
  const auto probe = b.snapshot(0).first;
  const double model_cpu = cpu_seconds() - t_model0;
  std::printf("mqtt_bench: %d cabinets, %zu devices, %zu messages per full snapshot; %d rounds "
              "per mode; window %zu\nmachine: %s, %u cores, load %.2f; model: %.0f ms CPU per "
              "snapshot (not counted below)\n\n",
              cabinets, b.cfg->all_devices().size(), render_messages(*probe, "x").size(), rounds,
              window, cpu_model().c_str(), std::thread::hardware_concurrency(), load[0],
              model_cpu * 1000);
  breakdown(b);
  std::printf("%-20s %8s %10s %14s %12s %12s\n", "mode", "msg/rnd", "msg/s", "CPU ms/1000", "delay p50",
              "delay p99");
  std::vector<Result> results;
  std::stringstream ms(modes);
  for (std::string m; std::getline(ms, m, ',');) {
    Result r = m == "facilityd"           ? b.facilityd(false)
               : m == "facilityd-steady"  ? b.facilityd(false, 20)
               : m == "facilityd-v5"      ? b.facilityd(false, 1, 5)
               : m == "facilityd+journal" ? b.facilityd(true)
               : m == "paho-buffer"       ? b.paho_buffer()
               : m == "mosquitto_pub"     ? b.mosquitto_pub()
                                          : Result{m, {}, {}, {}, 0};
    if (r.rate.empty()) {
      std::printf("%-20s (unknown mode or no result)\n", m.c_str());
      continue;
    }
    if (r.delays.empty())
      std::printf("%-20s %8zu %10.0f %14s %12s %12s\n", r.mode.c_str(), r.messages,
                  median(r.rate), "-", "-", "-");
    else
      std::printf("%-20s %8zu %10.0f %14.1f %10.0f ms %10.0f ms\n", r.mode.c_str(), r.messages,
                  median(r.rate),
                  median(r.cpu_per_1000), percentile(r.delays, 0.5) * 1000,
                  percentile(r.delays, 0.99) * 1000);
    std::fflush(stdout);
    results.push_back(std::move(r));
  }
  std::printf("\n(msg/s and CPU: medians over rounds; delay: poll -> received by the "
              "subscriber, over every message of every round)\n");
  return 0;
}
