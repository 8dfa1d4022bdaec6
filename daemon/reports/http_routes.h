// HTTP routes served on the metrics listener next to /metrics: a landing page at "/" (links to
// /metrics and to every site's report) and capacity reports at
// /reports/<site>?format=text|markdown|csv|json|html&from=...&to=...&resolution=minute|hour.
//
// The front door (daemon/app/http_gate.h) sees every request first: it checks authentication,
// answers /metrics, and hands anything else to handle_request(), which answers "/" and
// "/reports..." and returns 0 for the rest (civetweb then answers 404).
//
// A report is computed on the civetweb worker that received the request, with its own
// read-only SQLite connection (WAL: the history writer is never blocked). At most one report
// is computed at a time (others get 503 with Retry-After), so one of the listener's workers
// always stays free for scrapes.
//
// Thread-safety: handle_request() is called from civetweb workers; an HttpRoutes is registered
// in a process-wide table by port and unregistered in its destructor (requests in flight keep
// their own reference).
#pragma once

#include <memory>
#include <string>

#include "daemon/config/config.h"

struct mg_connection;

namespace facility {

class HttpRoutes {
 public:
  // Answers a request for "/" or "/reports..." on a port with registered routes; returns 0 for
  // any other request.
  static int handle_request(mg_connection* conn);

  // history_path empty: history disabled (report routes answer 503).
  HttpRoutes(int port, std::shared_ptr<const Config> config, std::string history_path);
  ~HttpRoutes();
  HttpRoutes(const HttpRoutes&) = delete;
  HttpRoutes& operator=(const HttpRoutes&) = delete;

  struct Impl;

 private:
  int port_;
  std::shared_ptr<Impl> impl_;
};

}  // namespace facility
