#include "daemon/reports/http_routes.h"

#include <spdlog/spdlog.h>

#include <chrono>

#include "daemon/reports/report.h"
#include "daemon/sinks/history/history.h"

namespace facility {
using http::html_escape;

ReportRoutes::ReportRoutes(std::shared_ptr<const Config> config, std::string history_path)
    : config_(std::move(config)), history_path_(std::move(history_path)) {}

std::optional<http::Reply> ReportRoutes::handle(const http::Request& req) const {
  const std::string& uri = req.path;
  if (uri == "/reports" || uri == "/reports/") return landing_page();
  if (uri.rfind("/reports/", 0) != 0) return std::nullopt;
  return report(req, uri.substr(std::string("/reports/").size()));
}

// /reports: links to every site's report in every format (the NOC view at "/" links here).
http::Response ReportRoutes::landing_page() const {
  std::string body =
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>facilityd</title>"
      "<style>body{font-family:sans-serif;max-width:50rem;margin:1rem auto;padding:0 1rem}"
      "td{padding:.2rem .6rem}</style></head><body><p><a href=\"/\">facilityd</a> &middot; "
      "<a href=\"/metrics\">/metrics</a></p><h1>Capacity reports</h1>";
  if (history_path_.empty()) {
    body += "<p>The history is disabled (history.enabled: false), so there are no reports.</p>";
  } else {
    body += "<p>The last 30 days (or since the history starts); add <code>from</code> and "
            "<code>to</code> (YYYY-MM-DD, UTC) for another period.</p><table>";
    for (const auto& s : config_->sites) {
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
  return http::Response::of(200, "text/html; charset=utf-8", std::move(body));
}

// /reports/<site>?format=...&from=...&to=...&resolution=...: checked at once, computed as
// Deferred work.
http::Reply ReportRoutes::report(const http::Request& req, const std::string& site) const {
  if (!config_->find_site(site)) {
    return http::Response::text(404, "no site \"" + site + "\"; see / for the list");
  }
  const std::string fmt = req.arg("format");
  if (!parse_report_format(fmt.empty() ? "html" : fmt)) {
    return http::Response::text(400, "format must be text, markdown, csv, json or html");
  }
  if (history_path_.empty()) return http::Response::text(503, "the history is disabled");
  // One report at a time keeps a worker free for /metrics.
  if (in_flight_.fetch_add(1) > 0) {
    in_flight_.fetch_sub(1);
    return http::Response::text(503, "another report is being computed; retry shortly")
        .with_header("Retry-After", "5");
  }
  return http::Deferred([self = shared_from_this(), req, site] {
    // The slot is free before the answer leaves: a client that asks again as soon as it has
    // its answer must not find its own finished report still "being computed".
    struct Release {
      std::atomic<int>& n;
      ~Release() { n.fetch_sub(1); }
    } release{self->in_flight_};
    return self->compute(req, site);
  });
}

http::Response ReportRoutes::compute(const http::Request& req, const std::string& site) const {
  const std::string fmt_s = req.arg("format");
  const ReportFormat fmt = *parse_report_format(fmt_s.empty() ? "html" : fmt_s);
  ReportRequest rq;
  rq.site = site;
  rq.now = std::chrono::duration_cast<std::chrono::seconds>(Clock::now().time_since_epoch())
               .count();
  try {
    if (auto v = req.arg("from"); !v.empty()) rq.from = parse_report_time(v, rq.now);
    if (auto v = req.arg("to"); !v.empty()) rq.to = parse_report_time(v, rq.now);
    if (auto v = req.arg("resolution"); !v.empty()) {
      if (v == "minute") rq.resolution = Resolution::kMinute;
      else if (v == "hour") rq.resolution = Resolution::kHour;
      else throw ReportError("resolution must be minute or hour");
    }
    auto db = HistoryDb::open_reader(history_path_);
    const auto t0 = std::chrono::steady_clock::now();
    const Report rep = compute_report(*db, *config_, rq);
    http::Response r = http::Response::of(200, content_type(fmt), render_report(rep, fmt));
    spdlog::info("report {} ({}) computed in {:.2f} s", site, file_extension(fmt),
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    if (fmt != ReportFormat::kHtml) {
      r.with_header("Content-Disposition", "inline; filename=\"report-" + site + "." +
                                               file_extension(fmt) + "\"");
    }
    return r;
  } catch (const ReportError& e) {
    return http::Response::text(400, e.what());
  }
}

}  // namespace facility
