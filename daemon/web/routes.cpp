#include "daemon/web/routes.h"

#include "daemon/sinks/payloads.h"
#include "daemon/web/api.h"
#include "daemon/web/status.h"

namespace facility::web {
namespace {

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

http::Response html(std::string body) {
  return http::Response::of(200, "text/html; charset=utf-8", std::move(body));
}

http::Response json_of(const nlohmann::json& j) {
  return http::Response::of(200, "application/json", dump_payload(j) + "\n");
}

// "<site>" or "<site>/cabinets/<cabinet>" (ids are letters, digits, '_', '.', '-': no '/').
struct SitePath {
  std::string site, cabinet;
  bool cabinet_page = false;
};

std::optional<SitePath> split_site_path(const std::string& rest) {
  const auto slash = rest.find('/');
  if (slash == std::string::npos) return SitePath{rest, "", false};
  const std::string tail = rest.substr(slash + 1);
  if (!starts_with(tail, "cabinets/")) return std::nullopt;
  return SitePath{rest.substr(0, slash), tail.substr(9), true};
}

}  // namespace

Routes::Routes(std::shared_ptr<const LiveView> view, PageOptions options)
    : view_(std::move(view)), options_(options) {}

std::optional<http::Reply> Routes::handle(const http::Request& req) const {
  const std::string& p = req.path;
  if (!(p == "/" || p == "/devices" || starts_with(p, "/sites/") || starts_with(p, "/api/v1/") ||
        p == "/api/v1")) {
    return std::nullopt;
  }
  return http::Deferred([self = shared_from_this(), req]() {
    http::Response r = self->render(req);
    r.with_header("Cache-Control", "no-store");
    if (starts_with(r.content_type, "text/html")) {
      r.with_header("Content-Security-Policy", kContentSecurityPolicy);
    }
    r.with_header("X-Content-Type-Options", "nosniff");
    return r;
  });
}

http::Response Routes::render(const http::Request& req) const {
  const auto snap = view_->latest();
  if (!snap) {
    return http::Response::text(503, "facilityd is starting: no snapshot of the model yet")
        .with_header("Retry-After", "2");
  }
  const std::string& p = req.path;
  PageOptions opt = options_;
  opt.now = Clock::now();
  const auto not_found = [&](const std::string& what) {
    return http::Response::text(404, what + "; see / (or /api/v1/sites) for what there is");
  };
  if (p == "/") return html(overview_page(*snap, opt));
  if (p == "/devices") {
    const std::string site = req.arg("site");
    if (!site.empty() && !find_site(*snap, site)) return not_found("no site \"" + site + "\"");
    return html(devices_page(*snap, site, req.arg("all") == "1", opt));
  }
  if (starts_with(p, "/sites/")) {
    const auto sp = split_site_path(p.substr(7));
    if (!sp) return not_found("no such site or cabinet: " + p);
    if (!sp->cabinet_page) {
      auto page = site_page(*snap, sp->site, opt);
      if (!page) return not_found("no site \"" + sp->site + "\"");
      return html(std::move(*page));
    }
    auto page = cabinet_page(*snap, sp->site, sp->cabinet,
                             view_->cabinet_history(sp->site, sp->cabinet), opt);
    if (!page) return not_found("no cabinet \"" + sp->cabinet + "\" in site \"" + sp->site + "\"");
    return html(std::move(*page));
  }
  // The JSON API.
  if (p == "/api/v1" || p == "/api/v1/") {
    return json_of(
        {{"api", "facilityd/v1"},
         {"endpoints",
          {"/api/v1/sites", "/api/v1/sites/<site>", "/api/v1/sites/<site>/cabinets/<cabinet>",
           "/api/v1/alerts", "/api/v1/devices"}}});
  }
  if (p == "/api/v1/sites") return json_of(api_sites(*snap));
  if (p == "/api/v1/alerts") return json_of(api_alerts(*snap));
  if (p == "/api/v1/devices") return json_of(api_devices(*snap));
  if (starts_with(p, "/api/v1/sites/")) {
    const auto sp = split_site_path(p.substr(14));
    if (!sp) return not_found("no such site or cabinet: " + p);
    if (!sp->cabinet_page) {
      auto j = api_site(*snap, sp->site);
      if (!j) return not_found("no site \"" + sp->site + "\"");
      return json_of(*j);
    }
    auto j =
        api_cabinet(*snap, sp->site, sp->cabinet, view_->cabinet_history(sp->site, sp->cabinet));
    if (!j) return not_found("no cabinet \"" + sp->cabinet + "\" in site \"" + sp->site + "\"");
    return json_of(*j);
  }
  return not_found("no such page: " + p);
}

}  // namespace facility::web
