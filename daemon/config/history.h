// History and report settings of the configuration: where and how long the embedded SQLite
// history keeps its data (top-level `history`), and the prices that capacity reports value
// stranded power and idle cabinets with (top-level `report`, overridden per site). Parsed by
// daemon/config/history.cpp; see docs/config.md ("history", "report") and docs/reports.md.
//
// Thread-safety: plain data, immutable once the Config is loaded.
#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace facility {

struct HistorySettings {
  // Write <daemon.state_dir>/history.sqlite. Off: no history, and reports have nothing to read.
  bool enabled = true;
  // Per-minute rows are kept this long; hourly rollups much longer.
  std::chrono::milliseconds minute_retention{std::chrono::hours(24 * 35)};
  std::chrono::milliseconds hourly_retention{std::chrono::hours(24 * 730)};
  // Completed minutes are written in one transaction at most this often.
  std::chrono::milliseconds flush_interval{std::chrono::seconds(60)};
  // Completed minutes held in memory while the disk is slow or failing; beyond this the oldest
  // are dropped (and counted).
  std::chrono::milliseconds max_pending{std::chrono::hours(24)};
};

// How a report values capacity. Prices are per month in `currency`; a price per year in the
// file is divided by 12 when loaded.
struct ReportSettings {
  std::string currency = "CNY";
  // The value of one cabinet for a month: the list price of a self-built site's cabinet, or
  // what a leased cabinet costs (the buy price). Stranded power is valued as
  // stranded kW / cabinet_equivalent_kw x this, unless price_per_kw_month is given.
  std::optional<double> price_per_cabinet_month;
  std::optional<double> price_per_kw_month;
  // Leased sites: the resale price of a cabinet, for the sales forgone by idle cabinets.
  std::optional<double> sell_price_per_cabinet_month;
};

}  // namespace facility
