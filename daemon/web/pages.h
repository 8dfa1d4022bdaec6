// The NOC view's HTML pages, server-rendered from the newest snapshot: inline CSS and SVG, no
// external resource (NOC networks are often closed), readable on a 1920x1080 wall screen and a
// laptop. Each page replaces its <main> from a fresh copy every few seconds (a small inline
// script; without JavaScript, a meta refresh), so the screen updates without flicker.
//
//   /                               one card per site (power, PUE, occupancy, headroom, devices,
//                                   alerts) and the active alerts, newest first
//   /sites/<site>                   the floor map: every room, every row in order, every cabinet
//                                   as a tile with its utilisation (colour and number), level,
//                                   failover risk and inlet temperature; row and room totals
//   /sites/<site>/cabinets/<id>     feeds and phases, sensors, the last hour, its devices
//   /devices[?site=S][&all=1]       every device not up (all=1: every device), with its reason
//                                   and endpoint; counts per kind
//
// Tiles and rows carry data-* attributes (data-cabinet, data-level, data-utilization) so tests
// and scripts can read a page without scraping text.
//
// Thread-safety: pure functions of an immutable snapshot.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "daemon/web/live_view.h"

namespace facility::web {

struct PageOptions {
  int refresh_s = 5;    // 0: no self-refresh
  bool reports = true;  // the history is on: link the capacity reports
  // When the page is rendered (epoch: unknown). A snapshot older than kFrozenAfter then gets a
  // banner: the model has stopped and every value on the page is frozen.
  TimePoint now{};
  // Three model steps at the longest (5 s, auto_model_step).
  static constexpr std::chrono::seconds kFrozenAfter{15};
};

std::string overview_page(const FacilitySnapshot& snap, const PageOptions& opt);
// nullopt: no such site (or cabinet).
std::optional<std::string> site_page(const FacilitySnapshot& snap, const std::string& site,
                                     const PageOptions& opt);
std::optional<std::string> cabinet_page(const FacilitySnapshot& snap, const std::string& site,
                                        const std::string& cabinet,
                                        const std::vector<LiveView::Sample>& history,
                                        const PageOptions& opt);
// site "" = every site; all: every device, else those down, without data or partial.
std::string devices_page(const FacilitySnapshot& snap, const std::string& site, bool all,
                         const PageOptions& opt);

// The last hour of a cabinet's power as an inline SVG line chart against its rated power and
// overload thresholds; gaps where the power was unknown.
std::string power_chart_svg(const std::vector<LiveView::Sample>& history, TimePoint now,
                            const Cabinet& cabinet);

}  // namespace facility::web
