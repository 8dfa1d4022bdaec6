// libFuzzer target: the query of a report request, /reports/<site>?format=&from=&to=&resolution=
// as the HTTP server hands it to the report routes (path and arguments already percent-decoded by
// libmicrohttpd). The input is the path, a newline, then NAME=VALUE pairs separated by '&'; the
// request goes to ReportRoutes::handle(), and a report it accepts is computed against an empty
// history of a four-cabinet site. Each argument is also parsed with parse_report_time().
//
// Contract checked: a bad query is a 4xx answer (ReportError inside), never a crash, a hang or
// another exception; every answer has a status of 200, 400, 404 or 503.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <variant>

#include "daemon/config/config.h"
#include "daemon/reports/http_routes.h"
#include "daemon/reports/report.h"
#include "daemon/sinks/history/history_db.h"
#include "test_util.h"  // tests/unit/support: TempDir

namespace {

// Three cabinets (sold, internal, free) and a build-out plan.
constexpr const char* kSite = R"(defaults: {rated_kw: 4.4}
sites:
  - {id: s1, name: "Fuzz site", planned_cabinets: 10,
     build_out_plan: [{date: 2025-01-01, powered: 2}],
     rooms: [{id: r1, rows: [{id: w1, cabinets: [{id: c1, status: sold},
                                                 {id: c2, status: internal}, {id: c3}]}]}]}
)";

struct World {
  facility::testing::TempDir dir;
  std::shared_ptr<facility::ReportRoutes> routes;
  World() {
    auto cfg = std::make_shared<const facility::Config>(
        facility::load_config(dir.write("site.yaml", kSite)));
    const std::string db = (dir.path() / "history.db").string();
    facility::HistoryDb::open_writer(db);  // creates the schema
    routes = std::make_shared<facility::ReportRoutes>(cfg, db);
  }
};

World& world() {
  static World w;
  return w;
}

void check_status(int status) {
  if (status != 200 && status != 400 && status != 404 && status != 503) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  world();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  facility::http::Request req;
  req.method = "GET";
  req.client = "fuzz";
  const std::size_t nl = in.find('\n');
  req.path = std::string(in.substr(0, nl));
  std::string_view query = nl == std::string_view::npos ? std::string_view() : in.substr(nl + 1);
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    const std::size_t eq = pair.find('=');
    const std::string value =
        eq == std::string_view::npos ? std::string() : std::string(pair.substr(eq + 1));
    req.query[std::string(pair.substr(0, eq))] = value;
    try {
      (void)facility::parse_report_time(value, 1767225600);  // 2026-01-01
    } catch (const facility::ReportError&) {
    }
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
  }
  const auto reply = world().routes->handle(req);
  if (!reply) return 0;
  if (const auto* r = std::get_if<facility::http::Response>(&*reply)) {
    check_status(r->status);
  } else {
    check_status(std::get<facility::http::Deferred>(*reply)().status);
  }
  return 0;
}
