// Helpers the daemon-level benchmarks share (scrape_bench, web_bench): free loopback ports,
// a synthetic site served by facility-sim, one HTTP GET timed from connect to the last byte,
// poll counts against the schedule.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench/synthetic_site.h"
#include "daemon/app/daemon.h"
#include "sim/simulator.h"

namespace facility::bench {

using Steady = std::chrono::steady_clock;

// A free loopback port, held (bound) until release_ports() so that the kernel does not hand it
// out twice while a configuration is being written.
inline std::vector<int> g_held;
inline int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  g_held.push_back(fd);
  return ntohs(a.sin_port);
}
inline void release_ports() {
  for (int fd : g_held) ::close(fd);
  g_held.clear();
}

inline std::string synthetic_config(int cabinets, int interval_s, const std::string& profiles) {
  int n = 0, port = 0;
  bench::SyntheticSite site;
  site.cabinets = cabinets;
  site.profiles_dir = profiles;
  site.preamble = "defaults: {interval: " + std::to_string(interval_s) +
                  "s, timeout: 1000ms, retries: 1}\n";
  site.endpoint = [&] {  // 100 devices per endpoint, as behind a gateway
    if (n++ % 100 == 0) port = free_port();
    return "\"tcp://127.0.0.1:" + std::to_string(port) + "\", unit: " + std::to_string(n % 100 + 1);
  };
  site.three_phase_every = 4;
  site.meter_roles = {"facility_total", "it_at_ups_output", "cooling", "other"};
  return bench::synthetic_site_config(site);
}

struct Scrape {
  double ms = 0;
  std::size_t bytes = 0;
  std::string body;
};

// One GET of `path` over a new connection, as Prometheus does: connect to the last byte.
inline Scrape http_scrape(int port, bool keep_body, const std::string& path = "/metrics") {
  Scrape s;
  const auto t0 = Steady::now();
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return s;
  }
  const std::string req =
      "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  (void)!::write(fd, req.data(), req.size());
  std::string buf(1 << 16, '\0');
  std::string all;
  for (;;) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n <= 0) break;
    s.bytes += static_cast<std::size_t>(n);
    if (keep_body) all.append(buf.data(), static_cast<std::size_t>(n));
  }
  ::close(fd);
  s.ms = std::chrono::duration<double, std::milli>(Steady::now() - t0).count();
  if (keep_body) {
    const auto p = all.find("\r\n\r\n");
    s.body = p == std::string::npos ? "" : all.substr(p + 4);
  }
  return s;
}

inline std::size_t count_series(const std::string& text) {
  std::size_t n = 0, pos = 0;
  while (pos < text.size()) {
    const auto e = text.find('\n', pos);
    if (text[pos] != '#' && e != pos) ++n;
    if (e == std::string::npos) break;
    pos = e + 1;
  }
  return n;
}

struct PollCount {
  std::uint64_t polls = 0, overruns = 0;
};

inline PollCount poll_count(const Daemon& d) {
  PollCount c;
  const auto st = d.scrape_sources().collector;
  for (std::size_t i = 0; i < st->device_ids().size(); ++i) {
    c.polls += st->poll_duration(i).count;
    c.overruns += st->overruns(i);
  }
  return c;
}

inline double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * (v.size() - 1) + 0.5))];
}

inline double ms_of(const std::function<void()>& f) {
  const auto a = Steady::now();
  f();
  return std::chrono::duration<double, std::milli>(Steady::now() - a).count();
}

// `text` written as <tmp>/<dir>/<name>.yaml (after the ports held for it are released) and
// loaded without MQTT and history: the benchmarks measure polling and HTTP alone.
inline std::shared_ptr<const Config> load_bench_config(const std::string& text,
                                                       const std::string& dir,
                                                       const std::string& name) {
  const auto folder = std::filesystem::temp_directory_path() / dir;
  std::filesystem::create_directories(folder);
  const auto path = folder / (name + ".yaml");
  std::ofstream(path) << text;
  release_ports();
  Config loaded = load_config(path.string());
  loaded.mqtt.enabled = false;
  loaded.history.enabled = false;
  return std::make_shared<const Config>(std::move(loaded));
}

// facility-sim serving every device of `cfg` on loopback Modbus TCP (its values updated every
// second) and the real Daemon polling them, its HTTP listener on a free port. The constructor
// returns once every device is up (or after 120 s + 3 intervals, with a warning).
class LiveSite {
 public:
  LiveSite(std::shared_ptr<const Config> cfg, int interval_s)
      : devices(cfg->all_devices().size()),
        simulator_(cfg, sim::SimulatorOptions{}, wall()),
        daemon_(cfg, options()) {
    simulator_.update(wall());
    simulator_.start();
    sim_thread_ = std::thread([this] {
      while (!stop_) {
        simulator_.update(wall());
        std::this_thread::sleep_for(std::chrono::seconds(1));
      }
    });
    daemon_.start();
    const auto deadline = Steady::now() + std::chrono::seconds(120 + 3 * interval_s);
    while (Steady::now() < deadline) {
      up = 0;
      for (const auto& ds : daemon_.snapshot()->devices) up += ds.up ? 1 : 0;
      if (up == devices) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    if (up != devices) std::printf("  warning: only %zu of %zu devices up\n", up, devices);
  }
  ~LiveSite() { stop(); }
  LiveSite(const LiveSite&) = delete;
  LiveSite& operator=(const LiveSite&) = delete;

  // The daemon, then the simulator. Idempotent.
  void stop() {
    if (stop_.exchange(true)) return;
    daemon_.stop();
    sim_thread_.join();
    simulator_.stop();
  }
  Daemon& daemon() { return daemon_; }
  int port() const { return daemon_.metrics_port(); }

  const std::size_t devices;
  std::size_t up = 0;  // when the constructor returned

 private:
  static double wall() {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  static DaemonOptions options() {
    DaemonOptions opt;
    opt.listen = "127.0.0.1:0";
    opt.no_mqtt = true;
    return opt;
  }

  std::atomic<bool> stop_{false};
  sim::Simulator simulator_;
  Daemon daemon_;
  std::thread sim_thread_;
};

}  // namespace facility::bench
