// The HTTP listener of facilityd (/metrics, "/", /reports): libmicrohttpd 0.9.75 on one epoll
// I/O thread, chosen by measurement over civetweb, libevent's evhttp and cpp-httplib
// (bench/RESULTS.md, "HTTP front door"): no number of slow or idle clients can starve it.
//
//   * Connections are bounded in total (max_connections) and per client address
//     (max_per_client); past the total, new ones wait in the kernel's accept queue.
//   * A request head must arrive within header_timeout in total -- a slowloris sending one byte
//     at a time is cut off -- and a connection lives at most max_connection_age; both are ours
//     (libmicrohttpd's own timeout, idle_timeout, restarts at every byte).
//   * Routes never run long on the I/O thread: Deferred work runs on `workers` threads while
//     its connection is suspended.
//   * At most max_large_responses bodies of 1 MiB or more are in flight at once (a 20 MB
//     /metrics held by a slow reader pins its snapshot): more get 503 with Retry-After.
//   * Every response closes its connection (no idle kept-alive connections holding slots).
//
// The listening socket is ours, so a taken port or a bad address is reported exactly, and
// IPv6 ("[::1]:10044") works.
//
// Thread-safety: construct and destroy from one thread; port() and stats() from any thread. The
// handler runs on the I/O thread, Deferred work on the workers: both may run concurrently.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "daemon/http/http.h"

namespace facility::http {

struct ServerOptions {
  std::string listen = "127.0.0.1:10044";  // HOST:PORT or [IPv6]:PORT; port 0 = a free one
  unsigned max_connections = 1024;
  unsigned max_per_client = 16;  // 0: no limit per address (behind a proxy, every client is it)
  std::chrono::seconds header_timeout{5};
  std::chrono::seconds idle_timeout{30};
  std::chrono::seconds max_connection_age{120};
  unsigned max_large_responses = 8;
  unsigned workers = 2;
};

struct ServerStats {
  std::uint64_t connections = 0;        // accepted so far
  std::uint64_t open_connections = 0;   // now
  std::uint64_t header_timeouts = 0;    // closed: no complete request head in time
  std::uint64_t age_limit = 0;          // closed: older than max_connection_age
  std::uint64_t busy = 0;               // 503: too many large responses in flight
  std::uint64_t requests = 0;           // answered
};

// The counters behind ServerStats, shared so that a reader may outlive the server.
struct ServerCounters {
  std::atomic<std::uint64_t> connections{0}, open_connections{0}, header_timeouts{0},
      age_limit{0}, busy{0}, requests{0};
  ServerStats read() const;
};

class Server {
 public:
  // Binds and starts serving. Throws std::runtime_error with what went wrong ("cannot listen on
  // 127.0.0.1:10044: Address already in use (another process is listening on this port)").
  Server(ServerOptions options, Handler handler);
  ~Server();  // stops accepting, ends every connection, joins its threads
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  int port() const;  // the bound port (useful with port 0)
  ServerStats stats() const;
  std::shared_ptr<const ServerCounters> counters() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace facility::http
