// The front door of the metrics listener: every HTTP request passes here first (civetweb's
// begin_request callback, given to prometheus::Exposer's constructor).
//
//   1. HTTP basic authentication (daemon.auth), when configured, for every route: /metrics,
//      the landing page "/", /reports, and any other path. A request without valid credentials
//      gets 401 with a WWW-Authenticate challenge. Credentials can change on a reload.
//   2. /metrics: the Exposition body (daemon/sinks/prometheus/exposition.h), rendered from the sources the daemon
//      provides at that moment.
//   3. Anything else goes to the report routes (HttpRoutes::handle_request), then civetweb (404).
//
// A request on a port whose gate is not (yet) registered gets 503: nothing is served before
// authentication is in place.
//
// TLS is not done here: civetweb's TLS crashes the process on Debian 12; docs/prometheus.md
// shows the reverse proxy (nginx) that terminates TLS in front of this listener.
//
// Thread-safety: the callbacks run on civetweb workers; set_*() may be called from any thread.
// A gate is registered in a process-wide table by port and unregistered by its destructor.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "daemon/config/credentials.h"
#include "daemon/sinks/prometheus/exposition.h"

struct CivetCallbacks;
struct mg_connection;

namespace facility {

// Checks an "Authorization: Basic ..." header value against one user name and password.
// Comparison time does not depend on where the strings differ.
bool basic_auth_matches(std::string_view header, const std::string& user,
                        const std::string& password);

class HttpGate {
 public:
  static const CivetCallbacks* callbacks();

  explicit HttpGate(int port);
  ~HttpGate();
  HttpGate(const HttpGate&) = delete;
  HttpGate& operator=(const HttpGate&) = delete;

  // Basic auth on every route; nullopt (or a user/password missing) = open. Call before
  // publish() so that the first request is already checked.
  void set_auth(const Credentials& auth);
  void set_metrics(std::shared_ptr<const Exposition> exposition,
                   std::function<ScrapeSources()> sources);
  // Starts answering requests on the port (until then: 503).
  void publish();

  struct Impl;

 private:
  int port_;
  std::shared_ptr<Impl> impl_;
};

}  // namespace facility
