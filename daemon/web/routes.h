// The NOC view's routes (pages: daemon/web/pages.h; JSON API: daemon/web/api.h), served by the
// HTTP front door (daemon/app/http_gate.h) behind the same authentication as /metrics.
//
// Every page and API answer is rendered from the newest snapshot (LiveView) as Deferred work on
// an HTTP worker thread, never on the I/O thread and never under a lock that polling or the
// model holds. Before the first snapshot: 503 with Retry-After. Answers carry
// Content-Security-Policy without any other origin (the page loads nothing from elsewhere, and a
// browser enforces that it cannot) and Cache-Control: no-store.
//
// Thread-safety: handle() from any thread.
#pragma once

#include <memory>
#include <optional>

#include "daemon/http/http.h"
#include "daemon/web/live_view.h"
#include "daemon/web/pages.h"

namespace facility::web {

class Routes : public std::enable_shared_from_this<Routes> {
 public:
  // Hold it in a shared_ptr: a page being rendered keeps the routes alive.
  Routes(std::shared_ptr<const LiveView> view, PageOptions options);

  // "/", "/sites/...", "/devices", "/api/v1/...": the answer; nullopt for any other path.
  std::optional<http::Reply> handle(const http::Request& req) const;

  static constexpr const char* kContentSecurityPolicy =
      "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
      "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
      "frame-ancestors 'none'";

 private:
  http::Response render(const http::Request& req) const;

  std::shared_ptr<const LiveView> view_;
  PageOptions options_;
};

}  // namespace facility::web
