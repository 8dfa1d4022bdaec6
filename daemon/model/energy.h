// Energy accounting of the facility model: device energy counters tracked across wraps and
// resets, and per-role energy series on a fixed time grid for rolling PUE windows.
//
// CounterTracker turns one device's raw counter readings into a monotonic energy (J since the
// first reading):
//   * an increase is energy, if it is plausible: at most 2 x the largest power reading since
//     the counter last moved x the time since it last moved, plus two counter steps (one count
//     of an integer register, one ulp of a float register at its current value). Measuring from
//     the last change, not from the previous reading, matters twice: a point read every N-th
//     poll (its own `interval`) is carried unchanged in between with each poll's time, so its
//     whole increase shows up in one poll; and a float32 kWh register moves in steps of one ulp
//     (7 kJ at 20,000 kWh), which at a few hundred W take longer than one poll.
//   * a decrease is a wrap when the counter has a finite range (an integer register:
//     2^bits x scale) and "range - previous + current" is plausible (without a power reading:
//     at most 10 % of the range); that difference is the energy.
//   * any other decrease is a reset (a reboot, a replaced meter): the new value is the energy
//     since the reset if plausible, and the interval counts as lost, because the energy between
//     the last reading and the reset is unknown.
//   * a reading that is none of these (a torn read, a glitch) is an outlier: it is rejected and
//     the baseline stays where it was, so the next good reading continues as if it had not
//     happened. Only when the next reading agrees with the rejected one (a plausible increase
//     from it) has the level really moved: the tracker re-baselines there (a reset if it went
//     down), and the interval before the new level counts as lost.
// Nothing ever turns into negative or huge energy, and every wrap, reset and rejection is
// counted.
//
// EnergySeries sums the trackers of one role (e.g. every facility_total meter of a site) on a
// grid of 10 s. A grid point T is finalised once every device has a reading at or after T, or is
// stale: each device's energy is interpolated linearly at T from its readings, so every device
// contributes over exactly the same interval whatever its poll phase. A device missing at a grid
// point (stale, not yet polled, no counter) adds 10 s of lost device-time. Points are kept for
// 25 h at 10 s, and every 5 min for the longest window, so a window W ending at the latest point
// has energy E(T) - E(T - W) and coverage 1 - lost / (devices x W). A window is only available
// once the history reaches back W.
//
// The grid survives restarts and reloads: every finalised point is handed out (take_finalized)
// and the history stores it; a new series is restored from those points (restore) before its
// first advance, and every grid step between the last stored point and the first new reading
// of each device counts as lost device-time, like a stale device. So a window that spans a
// restart keeps its measured energy, and its coverage says how much of it was measured.
//
// Thread-safety: none; owned by FacilityModel.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "daemon/config/config.h"
#include "daemon/readings/readings.h"

namespace facility::model_detail {

// How an energy counter register counts, in joules.
struct CounterFormat {
  std::optional<double> modulus_j;  // it wraps there (integer registers); nullopt: floats, 64-bit
  double step_j = 0;                // one count of an integer register (0 if unknown)
  int float_bits = 0;               // floats: significand bits (24 float32, 53 float64); else 0
  // The quantisation of a reading of magnitude |raw_j|: one count, or one ulp of a float.
  double resolution(double raw_j) const;
};
// The format of a profile point (type, scale and unit).
CounterFormat counter_format(const ProfilePoint& p);
// The format of a profile's `energy` point, read or derived (a 32/64-bit value from two registers
// counts like a read one; a sum of counters has no single modulus: a wrap of one part reads as
// a reset); nullopt when the profile has none.
std::optional<CounterFormat> energy_counter_format(const Profile& p);

class CounterTracker {
 public:
  explicit CounterTracker(CounterFormat format) : format_(format) {}

  // A new reading at `t` (strictly after the previous one; older or equal ones are ignored).
  void add(TimePoint t, double raw_j, std::optional<double> power_w);

  struct At {
    double energy_j = 0;  // since the first reading
    double lost_s = 0;    // seconds whose energy is not (fully) known, cumulative
  };
  // Linear interpolation at t between the held readings; nullopt outside them.
  std::optional<At> at(TimePoint t) const;
  // Drops readings not needed to interpolate at or after t.
  void trim(TimePoint t);

  // The held readings: accepted ones (an outlier is not held, see the file comment).
  bool empty() const { return samples_.empty(); }
  TimePoint first_time() const { return samples_.front().t; }
  TimePoint last_time() const { return samples_.back().t; }

  std::uint64_t wraps = 0, resets = 0, rejected = 0;

 private:
  // delta_j over dt_s at up to power_w, with the counter at about raw_j.
  bool plausible(double delta_j, double dt_s, std::optional<double> power_w, double raw_j) const;
  void accept(TimePoint t, const At& v, double raw_j, std::optional<double> power_w);

  struct Sample {
    TimePoint t;
    At v;
  };
  struct Outlier {
    TimePoint t;
    double raw_j;
  };
  CounterFormat format_;
  std::deque<Sample> samples_;
  std::optional<TimePoint> last_seen_;  // the newest reading, accepted or not
  double base_raw_ = 0;                 // the last accepted raw value
  TimePoint changed_at_{};              // when the accepted raw value last changed
  std::optional<double> max_power_;     // highest power reading since changed_at_
  std::optional<Outlier> outlier_;      // the last rejected reading, while unconfirmed
};

class EnergySeries {
 public:
  static constexpr std::chrono::seconds kStep{10};
  static constexpr std::chrono::seconds kCoarseStep{300};
  static constexpr std::chrono::hours kFineSpan{25};

  struct Member {
    std::string device;
    std::chrono::milliseconds stale_after{};  // the device's staleness bound
    std::optional<CounterTracker> tracker;    // nullopt: the device has no energy counter
    TimePoint last_seen{};                    // polled_at of the last reading fed
  };

  // longest_window: the longest window to keep history for.
  EnergySeries(std::string role, std::vector<Member> members,
               std::chrono::milliseconds longest_window);

  const std::string& role() const { return role_; }
  std::vector<Member>& members() { return members_; }
  const std::vector<Member>& members() const { return members_; }

  // Finalises every grid point up to `now` that all devices allow (see the file comment).
  void advance(TimePoint now);

  // Energy since the start (at the latest grid point); nullopt before the first point or when a
  // device was missing at it.
  std::optional<double> total_j() const;
  double history_s() const;  // latest grid point - first grid point, seconds

  struct Window {
    double energy_j = 0;
    double coverage = 0;  // 0..1: the fraction of the device-time whose energy is known
    // 0..1: the fraction of the device-time the daemon was running (restarts, reloads); the
    // rest of what is lost is the devices' (a stale or missing meter).
    double running = 1;
  };
  // One grid point: the covered energy, the lost device-seconds and, of those, the ones lost
  // because the daemon was not running; all cumulative.
  struct Point {
    TimePoint t;
    double energy_j = 0;
    double lost_s = 0;
    double down_s = 0;
    bool operator==(const Point&) const = default;
  };
  // The points finalised since the last call, oldest first (at most the fine span of them).
  std::vector<Point> take_finalized();
  // Seeds a new series (before its first advance) with stored points of an earlier run of the
  // same series: multiples of kStep, oldest first. Points missing between them are
  // interpolated; every step from the last point to each member's first new reading counts as
  // lost device-time, and as down time (Window::running) if that reading comes within the
  // member's staleness bound of `now` (a device that does not answer after the restart is a
  // missing device, as always). Points older than the longest window are ignored. Returns the
  // number of points restored: 0 when the series has already started, or when no point falls
  // within the longest window before `now`.
  std::size_t restore(const std::vector<Point>& points, TimePoint now);
  // The members' device ids, sorted and joined with ','; a stored series is restored only into
  // a series with the same key.
  const std::string& members_key() const { return members_key_; }
  // The window ending at the latest grid point; nullopt when the history is shorter, and after a
  // restore from points older than the grid's normal lag (a step plus the longest staleness
  // bound) until the grid has caught up: a window ending at the last stored point would be the
  // previous run's value, shown as current.
  std::optional<Window> window(std::chrono::milliseconds w) const;
  std::optional<TimePoint> latest() const;

 private:
  struct LastGrid {
    TimePoint t;
    CounterTracker::At v;
  };
  void finalize(TimePoint t);
  void skip_downtime(TimePoint now);  // the restart's steps in bulk (see advance)
  void push(const Point& p);  // appends a finalised point to the grid (and the untaken ones)

  std::string role_;
  std::vector<Member> members_;
  std::vector<std::optional<LastGrid>> last_grid_;
  std::optional<TimePoint> pending_;
  TimePoint started_{};  // the first advance()
  double energy_j_ = 0;   // since the start, for the counter: across gaps too
  double covered_j_ = 0;  // the energy of the steps that are not lost: what windows count
  double lost_s_ = 0;
  double down_s_ = 0;
  std::optional<TimePoint> restored_at_;  // restore() seeded this series at that time
  bool catching_up_ = false;  // restored from old points, none finalised since: no windows
  bool complete_ = false;  // every device had data at the latest point
  std::deque<Point> fine_, coarse_;
  std::size_t fine_capacity_ = 0, coarse_capacity_ = 0;
  std::chrono::milliseconds longest_{};
  std::string members_key_;
  std::deque<Point> finalized_;  // not taken yet (take_finalized); at most the fine span
};

}  // namespace facility::model_detail
