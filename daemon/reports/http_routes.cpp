#include "daemon/reports/http_routes.h"

#include <CivetServer.h>
#include <civetweb.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cstring>
#include <chrono>
#include <map>
#include <mutex>

#include "daemon/sinks/history/history.h"
#include "daemon/reports/report.h"

namespace facility {

struct HttpRoutes::Impl {
  std::shared_ptr<const Config> config;
  std::string history_path;
  std::atomic<int> in_flight{0};

  int handle(mg_connection* conn, const mg_request_info* ri);
  int landing_page(mg_connection* conn, bool head) const;
  int report(mg_connection* conn, const mg_request_info* ri, const std::string& site, bool head);
};

namespace {

std::mutex g_mu;
std::map<int, std::shared_ptr<HttpRoutes::Impl>> g_routes;  // by listening port

int send(mg_connection* conn, int status, const char* reason, const std::string& type,
         const std::string& body, bool head, const std::string& extra_headers = "") {
  mg_printf(conn,
            "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
            "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n%sConnection: close\r\n\r\n",
            status, reason, type.c_str(), body.size(), extra_headers.c_str());
  if (!head) mg_write(conn, body.data(), body.size());
  return status;
}

int send_text(mg_connection* conn, int status, const char* reason, const std::string& msg,
              bool head, const std::string& extra = "") {
  return send(conn, status, reason, "text/plain; charset=utf-8", msg + "\n", head, extra);
}

std::string query_var(const mg_request_info* ri, const char* name) {
  if (!ri->query_string) return "";
  char buf[256];
  const int n = mg_get_var(ri->query_string, std::strlen(ri->query_string), name, buf, sizeof buf);
  return n >= 0 ? std::string(buf, std::size_t(n)) : std::string();
}

std::string html_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '<') o += "&lt;";
    else if (c == '>') o += "&gt;";
    else if (c == '&') o += "&amp;";
    else if (c == '"') o += "&quot;";
    else o += c;
  }
  return o;
}

int begin_request(mg_connection* conn) {
  const mg_request_info* ri = mg_get_request_info(conn);
  if (!ri || !ri->local_uri) return 0;
  const std::string uri = ri->local_uri;
  if (uri != "/" && uri != "/reports" && uri.rfind("/reports/", 0) != 0) return 0;
  std::shared_ptr<HttpRoutes::Impl> impl;
  {
    std::lock_guard lock(g_mu);
    auto it = g_routes.find(ri->server_port);
    if (it == g_routes.end()) return 0;
    impl = it->second;
  }
  try {
    return impl->handle(conn, ri);
  } catch (const std::exception& e) {
    spdlog::warn("http {}: {}", uri, e.what());
    return send_text(conn, 500, "Internal Server Error", e.what(), false);
  }
}

}  // namespace

int HttpRoutes::Impl::handle(mg_connection* conn, const mg_request_info* ri) {
  const std::string method = ri->request_method ? ri->request_method : "";
  const bool head = method == "HEAD";
  if (method != "GET" && !head) {
    return send_text(conn, 405, "Method Not Allowed", "only GET and HEAD", false, "Allow: GET, HEAD\r\n");
  }
  const std::string uri = ri->local_uri;
  if (uri == "/" || uri == "/reports" || uri == "/reports/") return landing_page(conn, head);
  return report(conn, ri, uri.substr(std::string("/reports/").size()), head);
}

// "/": links to /metrics and to every site's report in every format.
int HttpRoutes::Impl::landing_page(mg_connection* conn, bool head) const {
  std::string body =
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>facilityd</title>"
      "<style>body{font-family:sans-serif;max-width:50rem;margin:1rem auto;padding:0 1rem}"
      "td{padding:.2rem .6rem}</style></head><body><h1>facilityd</h1>"
      "<p><a href=\"/metrics\">/metrics</a>: Prometheus metrics (docs/metrics.md)</p>"
      "<h2>Capacity reports</h2>";
  if (history_path.empty()) {
    body += "<p>The history is disabled (history.enabled: false), so there are no reports.</p>";
  } else {
    body += "<p>The last 30 days (or since the history starts); add <code>from</code> and "
            "<code>to</code> (YYYY-MM-DD, UTC) for another period.</p><table>";
    for (const auto& s : config->sites) {
      const std::string base = "/reports/" + s.id;
      body += "<tr><td><a href=\"" + base + "\">" + html_escape(s.id) + "</a></td><td>" +
              html_escape(s.name) + "</td><td>";
      for (const char* f : {"html", "text", "markdown", "csv", "json"}) {
        body += "<a href=\"" + base + "?format=" + f + "\">" + f + "</a> ";
      }
      body += "</td></tr>";
    }
    body += "</table>";
  }
  body += "</body></html>\n";
  return send(conn, 200, "OK", "text/html; charset=utf-8", body, head);
}

// /reports/<site>?format=...&from=...&to=...&resolution=...
int HttpRoutes::Impl::report(mg_connection* conn, const mg_request_info* ri,
                             const std::string& site, bool head) {
  if (!config->find_site(site)) {
    return send_text(conn, 404, "Not Found", "no site \"" + site + "\"; see / for the list", head);
  }
  const std::string fmt_s = query_var(ri, "format");
  const auto fmt = parse_report_format(fmt_s.empty() ? "html" : fmt_s);
  if (!fmt) {
    return send_text(conn, 400, "Bad Request",
                     "format must be text, markdown, csv, json or html", head);
  }
  if (history_path.empty()) {
    return send_text(conn, 503, "Service Unavailable", "the history is disabled", head);
  }
  // One report at a time keeps a civetweb worker free for /metrics.
  if (in_flight.fetch_add(1) > 0) {
    in_flight.fetch_sub(1);
    return send_text(conn, 503, "Service Unavailable",
                     "another report is being computed; retry shortly", head, "Retry-After: 5\r\n");
  }
  std::string body, type, extra, error;
  {
    struct Release {
      std::atomic<int>& n;
      ~Release() { n.fetch_sub(1); }
    } release{in_flight};
    ReportRequest req;
    req.site = site;
    req.now = std::chrono::duration_cast<std::chrono::seconds>(
                  Clock::now().time_since_epoch()).count();
    try {
      if (auto v = query_var(ri, "from"); !v.empty()) req.from = parse_report_time(v, req.now);
      if (auto v = query_var(ri, "to"); !v.empty()) req.to = parse_report_time(v, req.now);
      if (auto v = query_var(ri, "resolution"); !v.empty()) {
        if (v == "minute") req.resolution = Resolution::kMinute;
        else if (v == "hour") req.resolution = Resolution::kHour;
        else throw ReportError("resolution must be minute or hour");
      }
      auto db = HistoryDb::open_reader(history_path);
      const auto t0 = std::chrono::steady_clock::now();
      const Report rep = compute_report(*db, *config, req);
      body = render_report(rep, *fmt);
      spdlog::info("report {} ({}) computed in {:.2f} s", site, file_extension(*fmt),
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      type = content_type(*fmt);
      if (*fmt != ReportFormat::kHtml) {
        extra = "Content-Disposition: inline; filename=\"report-" + site + "." +
                file_extension(*fmt) + "\"\r\n";
      }
    } catch (const ReportError& e) {
      error = e.what();
    }
  }
  // The slot is free before the answer leaves: a client that asks again as soon as it has its
  // answer must not find its own finished report still "being computed".
  if (!error.empty()) return send_text(conn, 400, "Bad Request", error, head);
  return send(conn, 200, "OK", type, body, head, extra);
}

int HttpRoutes::handle_request(mg_connection* conn) { return begin_request(conn); }

HttpRoutes::HttpRoutes(int port, std::shared_ptr<const Config> config, std::string history_path)
    : port_(port), impl_(std::make_shared<Impl>()) {
  impl_->config = std::move(config);
  impl_->history_path = std::move(history_path);
  std::lock_guard lock(g_mu);
  g_routes[port_] = impl_;
}

HttpRoutes::~HttpRoutes() {
  std::lock_guard lock(g_mu);
  auto it = g_routes.find(port_);
  if (it != g_routes.end() && it->second == impl_) g_routes.erase(it);
}

}  // namespace facility
