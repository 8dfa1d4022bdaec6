// Helpers the daemon-level benchmarks share (scrape_bench, web_bench): free loopback ports,
// a synthetic site served by facility-sim, one HTTP GET timed from connect to the last byte,
// poll counts against the schedule.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "bench/synthetic_site.h"
#include "daemon/app/daemon.h"

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

}  // namespace facility::bench
