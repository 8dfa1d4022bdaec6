// HTTP routes served on the listener next to /metrics: a list of reports at /reports (links to
// every site's report) and capacity reports at
// /reports/<site>?format=text|markdown|csv|json|html&from=...&to=...&resolution=minute|hour.
//
// The front door (daemon/app/http_gate.h) sees every request first: it checks authentication,
// answers /metrics and the NOC view (daemon/web/), and hands anything else to handle(), which
// answers "/reports..." and gives nothing back for the rest (the gate then answers 404).
//
// A report is computed as Deferred work on one of the HTTP server's worker threads (never on its
// I/O thread), with its own read-only SQLite connection (WAL: the history writer is never
// blocked). At most one report is computed at a time (others get 503 with Retry-After), so a
// worker always stays free for scrapes.
//
// Thread-safety: handle() may be called from any thread; a report in flight keeps the routes
// (and the configuration they read) alive across a reload.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>

#include "daemon/config/config.h"
#include "daemon/http/http.h"

namespace facility {

class ReportRoutes : public std::enable_shared_from_this<ReportRoutes> {
 public:
  // history_path empty: history disabled (report routes answer 503).
  ReportRoutes(std::shared_ptr<const Config> config, std::string history_path);

  // "/reports...": the answer; nullopt for any other path.
  std::optional<http::Reply> handle(const http::Request& req) const;

 private:
  http::Response landing_page() const;
  http::Reply report(const http::Request& req, const std::string& site) const;
  http::Response compute(const http::Request& req, const std::string& site) const;

  std::shared_ptr<const Config> config_;
  std::string history_path_;
  mutable std::atomic<int> in_flight_{0};
};

}  // namespace facility
