// HTTP routes served on the metrics listener next to prometheus-cpp's /metrics: a landing page
// at "/" (links to /metrics and to every site's report) and capacity reports at
// /reports/<site>?format=text|markdown|csv|json|html&from=...&to=...&resolution=minute|hour.
//
// prometheus-cpp's Exposer (civetweb) only serves collectables; civetweb's begin_request
// callback, given to the Exposer's constructor (callbacks()), sees every request first. It
// answers "/" and "/reports..." and returns 0 for anything else, so /metrics (and any auth
// registered on it with Exposer::RegisterAuth) is untouched. begin_request runs before
// civetweb's own authorisation, so these routes are not covered by RegisterAuth: set
// `authorize` to protect them the same way.
//
// A report is computed on the civetweb worker that received the request, with its own
// read-only SQLite connection (WAL: the history writer is never blocked). At most one report
// is computed at a time (others get 503 with Retry-After), so one of the Exposer's workers
// always stays free for scrapes.
//
// Thread-safety: callbacks are called from civetweb workers; an HttpRoutes is registered in a
// process-wide table by port and unregistered in its destructor (requests in flight keep their
// own reference).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "daemon/config/config.h"

struct CivetCallbacks;
struct mg_connection;

namespace facility {

class HttpRoutes {
 public:
  // Pass to prometheus::Exposer's constructor.
  static const CivetCallbacks* callbacks();
  // The same handler as a function, for a front door that runs first (daemon/app/http_gate.h:
  // authentication and /metrics): returns 0 for a request these routes do not serve.
  static int handle_request(mg_connection* conn);

  // history_path empty: history disabled (report routes answer 503).
  HttpRoutes(int port, std::shared_ptr<const Config> config, std::string history_path);
  ~HttpRoutes();
  HttpRoutes(const HttpRoutes&) = delete;
  HttpRoutes& operator=(const HttpRoutes&) = delete;

  // Optional: return false to refuse a request (the hook sends its own 401); unset = allow.
  void set_authorize(std::function<bool(mg_connection*)> fn);

  struct Impl;

 private:
  int port_;
  std::shared_ptr<Impl> impl_;
};

}  // namespace facility
