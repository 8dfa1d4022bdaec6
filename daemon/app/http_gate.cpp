#include "daemon/app/http_gate.h"

#include "daemon/http/auth.h"
#include "daemon/sinks/gzip_parts.h"

namespace facility {

void HttpGate::set_auth(const Credentials& auth) {
  auto a = std::make_shared<const Credentials>(auth);
  std::lock_guard lock(mu_);
  auth_ = std::move(a);
}

void HttpGate::set_metrics(std::shared_ptr<const Exposition> exposition,
                           std::function<ScrapeSources()> sources) {
  std::lock_guard lock(mu_);
  exposition_ = std::move(exposition);
  sources_ = std::move(sources);
}

void HttpGate::set_routes(std::shared_ptr<const ReportRoutes> routes) {
  std::lock_guard lock(mu_);
  routes_ = std::move(routes);
}

void HttpGate::set_web(std::shared_ptr<const web::Routes> web) {
  std::lock_guard lock(mu_);
  web_ = std::move(web);
}

void HttpGate::publish() {
  std::lock_guard lock(mu_);
  published_ = true;
}

http::Reply HttpGate::handle(const http::Request& req) const {
  std::shared_ptr<const Credentials> auth;
  std::shared_ptr<const ReportRoutes> routes;
  std::shared_ptr<const web::Routes> web;
  {
    std::lock_guard lock(mu_);
    // Fail closed: before the gate (and its authentication) is in place, serve nothing.
    if (!published_) {
      return http::Response::text(503, "facilityd is starting").with_header("Retry-After", "1");
    }
    auth = auth_;
    routes = routes_;
    web = web_;
  }
  if (auth && auth->username && auth->password &&
      !http::basic_auth_matches(req.header("authorization"), *auth->username, *auth->password)) {
    return http::Response::text(401, "authentication required")
        .with_header("WWW-Authenticate", "Basic realm=\"facilityd\", charset=\"UTF-8\"");
  }
  if (req.method != "GET" && !req.head()) {
    return http::Response::text(405, "only GET and HEAD").with_header("Allow", "GET, HEAD");
  }
  // Rendering a new snapshot's facility part takes tens of milliseconds at 100 k series: on a
  // worker, so the I/O thread keeps serving every other connection meanwhile.
  if (req.path == "/metrics") return http::Deferred([this, req] { return metrics(req); });
  if (web) {
    if (auto reply = web->handle(req)) return std::move(*reply);
  }
  if (routes) {
    if (auto reply = routes->handle(req)) return std::move(*reply);
  }
  return http::Response::text(404, "not found; see / for what is served");
}

http::Response HttpGate::metrics(const http::Request& req) const {
  std::shared_ptr<const Exposition> expo;
  std::function<ScrapeSources()> src;
  {
    std::lock_guard lock(mu_);
    expo = exposition_;
    src = sources_;
  }
  if (!expo || !src) return http::Response::text(503, "no metrics yet");
  // gzip when the scraper accepts it (Prometheus always does): a tenth of the bytes to send.
  const bool gzip = gzip::accepted(req.header("accept-encoding"));
  Exposition::Body body = expo->render(src(), gzip);
  http::Response r;
  r.content_type = Exposition::kContentType;
  r.with_header("Vary", "Accept-Encoding");
  if (gzip) r.with_header("Content-Encoding", "gzip");
  if (body.facility) r.body.push_back(std::move(body.facility));
  r.with_body(std::move(body.live));
  return r;
}

std::function<void(MetricWriter&)> listener_health(
    std::shared_ptr<const http::ServerCounters> counters) {
  return [counters = std::move(counters)](MetricWriter& out) {
    using metrics_detail::Labels;
    using metrics_detail::Type;
    const http::ServerStats st = counters->read();
    const auto d = [](std::uint64_t v) { return static_cast<double>(v); };
    const Labels none;
    out.family("facility_http_connections_total",
               "Connections accepted by the HTTP listener (/metrics, the NOC view, /api, /reports).",
               Type::kCounter)
        .counter(none, d(st.connections));
    out.family("facility_http_open_connections", "Connections open on the HTTP listener now.",
               Type::kGauge)
        .gauge(none, d(st.open_connections));
    auto& closed = out.family(
        "facility_http_connections_closed_total",
        "Connections the HTTP listener closed before an answer, by reason: header_timeout (no "
        "complete request head within 5 s: a slow or idle client), max_age (open longer than "
        "120 s).",
        Type::kCounter);
    closed.counter(Labels{{"reason", "header_timeout"}}, d(st.header_timeouts));
    closed.counter(Labels{{"reason", "max_age"}}, d(st.age_limit));
    out.family("facility_http_busy_responses_total",
               "Requests answered 503 because too many large bodies (1 MiB or more, e.g. "
               "/metrics of a big site) were still being sent to slow readers.",
               Type::kCounter)
        .counter(none, d(st.busy));
  };
}

}  // namespace facility
