#include <regex>

#include "daemon/config/reader.h"

namespace facility::config_detail {
namespace {

// A duration that may exceed parse_duration's 366 days: "730d" is accepted up to 10 years.
std::optional<Millis> long_duration(Diagnostics& d, MapReader& r, const std::string& key) {
  auto s = r.str(key);
  if (!s) return std::nullopt;
  static const std::regex days(R"(^\s*([0-9]{1,4})\s*d\s*$)");
  std::smatch m;
  if (std::regex_match(*s, m, days)) {
    const int n = std::stoi(m[1].str());
    if (n >= 1 && n <= 3660) return Millis(std::int64_t(n) * 86'400'000);
  } else if (auto v = parse_duration(*s)) {
    return v;
  }
  d.error(r.get(key), r.what() + ": \"" + key +
                          "\" must be a duration like 90m, 36h or 730d (at most 3660d), got \"" +
                          *s + "\"");
  return std::nullopt;
}

std::optional<double> price(Diagnostics& d, MapReader& r, const std::string& key) {
  auto v = r.num(key);
  if (v && (*v < 0 || *v > 1e9)) {
    d.error(r.get(key), r.what() + ": \"" + key + "\" must be in [0, 1e9]");
    return std::nullopt;
  }
  return v;
}

}  // namespace

void parse_history_section(Diagnostics& d, MapReader& top, Config& cfg) {
  if (top.has("history")) {
    HistorySettings& h = cfg.history;
    MapReader r(d, top.get("history"), "history",
                {"enabled", "minute_retention", "hourly_retention", "flush_interval",
                 "max_pending"});
    if (auto v = r.boolean("enabled")) h.enabled = *v;
    if (auto v = long_duration(d, r, "minute_retention")) h.minute_retention = *v;
    if (auto v = long_duration(d, r, "hourly_retention")) h.hourly_retention = *v;
    if (auto v = r.duration("flush_interval")) h.flush_interval = *v;
    if (auto v = long_duration(d, r, "max_pending")) h.max_pending = *v;
    using std::chrono::hours;
    if (h.minute_retention < hours(2)) {
      d.error(r.get("minute_retention"),
              "history: minute_retention must be at least 2h (hours are rolled up from minutes)");
    }
    if (h.hourly_retention < h.minute_retention) {
      d.error(r.get("hourly_retention"),
              "history: hourly_retention must not be shorter than minute_retention");
    }
    if (h.flush_interval < std::chrono::seconds(1) || h.flush_interval > hours(1)) {
      d.error(r.get("flush_interval"), "history: flush_interval must be 1s..1h");
    }
    if (h.max_pending < std::chrono::minutes(5)) {
      d.error(r.get("max_pending"), "history: max_pending must be at least 5m");
    }
  }
  if (top.has("report")) cfg.report = parse_report_settings(d, top.get("report"), "report", {});
}

ReportSettings parse_report_settings(Diagnostics& d, const YAML::Node& node,
                                     const std::string& what, const ReportSettings& base) {
  ReportSettings s = base;
  MapReader r(d, node, what,
              {"currency", "price_per_cabinet_month", "price_per_cabinet_year",
               "price_per_kw_month", "sell_price_per_cabinet_month"});
  if (auto v = r.str("currency")) {
    static const std::regex re(R"(^[A-Za-z]{1,8}$)");
    if (!std::regex_match(*v, re)) {
      d.error(r.get("currency"), what + ": currency must be a code of letters, e.g. CNY");
    } else {
      s.currency = *v;
    }
  }
  if (r.has("price_per_cabinet_month") && r.has("price_per_cabinet_year")) {
    d.error(r.key_node("price_per_cabinet_year"),
            what + ": give either price_per_cabinet_month or price_per_cabinet_year, not both");
  }
  if (auto v = price(d, r, "price_per_cabinet_month")) s.price_per_cabinet_month = *v;
  if (auto v = price(d, r, "price_per_cabinet_year")) s.price_per_cabinet_month = *v / 12.0;
  if (auto v = price(d, r, "price_per_kw_month")) s.price_per_kw_month = *v;
  if (auto v = price(d, r, "sell_price_per_cabinet_month")) s.sell_price_per_cabinet_month = *v;
  return s;
}

}  // namespace facility::config_detail
