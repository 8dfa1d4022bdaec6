// The front door of the HTTP listener (daemon/http/server.h): every request passes here first.
//
//   1. Until publish(), every request gets 503: nothing is served before authentication is in
//      place.
//   2. HTTP basic authentication (daemon.auth), when configured, for every route: /metrics, the
//      landing page "/", /reports, and any other path. A request without valid credentials gets
//      401 with a WWW-Authenticate challenge. Credentials can change on a reload.
//   3. GET and HEAD only (405 with Allow otherwise).
//   4. /metrics: the Exposition body (daemon/sinks/prometheus/exposition.h), rendered from the
//      sources the daemon provides at that moment; "/", /sites, /devices and /api/v1: the NOC
//      view (daemon/web/routes.h); /reports: the report routes (daemon/reports/http_routes.h);
//      anything else 404.
//
// TLS is not done here: docs/prometheus.md shows the reverse proxy (nginx) that terminates TLS
// in front of this listener.
//
// Thread-safety: handle() runs on the server's I/O thread (its Deferred work on the server's
// workers); set_*() and publish() may be called from any thread.
#pragma once

#include <functional>
#include <memory>
#include <mutex>

#include "daemon/config/credentials.h"
#include "daemon/http/http.h"
#include "daemon/http/server.h"
#include "daemon/reports/http_routes.h"
#include "daemon/sinks/prometheus/exposition.h"
#include "daemon/web/routes.h"

namespace facility {

class HttpGate {
 public:
  // Basic auth on every route; nullopt (or a user/password missing) = open. Call before
  // publish() so that the first request is already checked.
  void set_auth(const Credentials& auth);
  void set_metrics(std::shared_ptr<const Exposition> exposition,
                   std::function<ScrapeSources()> sources);
  // /reports (replaced on a reload; a report being computed keeps the old routes).
  void set_routes(std::shared_ptr<const ReportRoutes> routes);
  // The NOC view: "/", /sites, /devices, /api/v1.
  void set_web(std::shared_ptr<const web::Routes> web);
  // Starts answering requests (until then: 503).
  void publish();

  http::Reply handle(const http::Request& req) const;

 private:
  http::Response metrics(const http::Request& req) const;

  mutable std::mutex mu_;
  bool published_ = false;
  std::shared_ptr<const Credentials> auth_;  // null or incomplete = open
  std::shared_ptr<const Exposition> exposition_;
  std::function<ScrapeSources()> sources_;
  std::shared_ptr<const ReportRoutes> routes_;
  std::shared_ptr<const web::Routes> web_;
};

// Writes the listener's facility_http_* families (docs/metrics.md) from its counters, which the
// returned function keeps alive.
std::function<void(MetricWriter&)> listener_health(
    std::shared_ptr<const http::ServerCounters> counters);

}  // namespace facility
