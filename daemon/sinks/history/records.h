// What the history stores: one cabinet and one site over one interval (a minute or an hour),
// the cabinet layout rows refer to, a completed minute, and the cabinet blob format. The
// recorder fills them, the database stores them, reports read them
// (daemon/sinks/history/history.h).
//
// Thread-safety: plain data and pure functions.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "daemon/config/config.h"
#include "daemon/model/model.h"
#include "daemon/readings/readings.h"

namespace facility {

inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// One cabinet over one interval (a minute or an hour).
struct CabinetInterval {
  double energy_ws = 0;          // power x seconds, over the seconds whose power is known
  double known_s = 0;            // seconds whose power is known
  double peak_w = kNaN;          // highest model value seen
  double powered_s = 0;          // seconds counted as powered
  double overload_s = 0;         // seconds in overload state warning or critical
  int overload_starts = 0;       // transitions from ok to warning/critical (incidents)
  double failover_min_w = kNaN;  // lowest failover headroom seen (worst feed or phase)
  double failover_neg_s = 0;     // seconds with negative failover headroom

  double avg_w() const { return known_s > 0 ? energy_ws / known_s : kNaN; }
  void merge(const CabinetInterval& o);
};

// One site over one interval.
struct SiteInterval {
  double samples_s = 0;           // seconds covered by model cycles (the daemon was running)
  double it_j = 0, it_s = 0;      // IT energy (the site's primary IT term) and seconds known
  double fac_j = 0, fac_s = 0;    // facility energy
  double cool_j = 0, cool_s = 0;  // cooling energy (cooling meters)
  double pue_it_j = 0, pue_fac_j = 0, pue_s = 0;  // both terms known at the same time
  double it_peak_w = kNaN;
  // Sum of the cabinets' power, only while every cabinet's power is known (the capacity term).
  double cab_j = 0, cab_s = 0, cab_peak_w = kNaN;
  double cab_known_s = 0;     // cabinet-seconds whose power is known
  double cab_expected_s = 0;  // cabinets x seconds covered
  // Cabinet counts at the end of the interval (the last cycle).
  int total = 0, powered = 0, sold = 0, internal = 0, free = 0, powered_known = 0;
  int powered_max = 0;  // most cabinets powered at once
  // Worst room's N+1 cooling headroom (capacity without the largest running unit - IT heat).
  double cool_hr_min_w = kNaN, cool_hr_s = 0;
  int pue_category = 0;

  void merge(const SiteInterval& later);
};

// A site's cabinets in the order of the rows that refer to it; stored once per distinct list.
struct LayoutCabinet {
  std::string id, room;
  double rated_w = 0;
  std::string status;  // free | sold | internal
};
struct Layout {
  std::int64_t id = 0;
  std::string site;
  std::vector<LayoutCabinet> cabinets;
};
std::vector<LayoutCabinet> layout_of(const Site& site);

// Energy grid points of one role finalised during a minute (EnergySnapshot::new_points): the
// daemon restores its energy PUE windows from them at start-up.
struct EnergyRows {
  std::string role;
  std::string members;  // the role's devices, as EnergySnapshot::members
  std::vector<EnergyGridPoint> points;
};

// One completed (or, at shutdown, partial) minute of one site.
struct MinuteRecord {
  std::string site;
  std::int64_t t = 0;          // unix seconds of the minute's start
  std::size_t site_index = 0;  // index in Config::sites (the writer maps it to a layout)
  SiteInterval site_data;
  std::vector<CabinetInterval> cabinets;  // in Site::cabinets order
  std::vector<EnergyRows> energy{};       // per role with points in this minute
};

enum class Resolution { kMinute = 60, kHour = 3600 };

// Cabinet blob: version byte 1, u32 count, then per cabinet 22 bytes little-endian:
// f32 avg_w, f32 peak_w, u16 known_s, u16 powered_s, u16 overload_s, u16 overload_starts,
// f32 failover_min_w, u16 failover_neg_s (NaN = unknown).
std::string encode_cabinets(const std::vector<CabinetInterval>& cabs);
std::vector<CabinetInterval> decode_cabinets(const void* data, std::size_t size);

}  // namespace facility

namespace facility::history_detail {

// Maximum and minimum where NaN means "unknown" (the other value wins).
inline double fmax_nan(double a, double b) {
  return std::isnan(a) ? b : std::isnan(b) ? a : std::max(a, b);
}
inline double fmin_nan(double a, double b) {
  return std::isnan(a) ? b : std::isnan(b) ? a : std::min(a, b);
}
inline double unix_s(TimePoint t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

}  // namespace facility::history_detail
