#include "daemon/model/energy.h"

#include "daemon/config/points.h"
#include "daemon/model/model.h"

#include <algorithm>
#include <cmath>

namespace facility::model_detail {
namespace {

double seconds_between(TimePoint a, TimePoint b) {
  return std::chrono::duration<double>(b - a).count();
}

CounterTracker::At lerp(TimePoint t, TimePoint t0, const CounterTracker::At& a, TimePoint t1,
                        const CounterTracker::At& b) {
  if (t1 <= t0) return b;
  const double f = seconds_between(t0, t) / seconds_between(t0, t1);
  return {a.energy_j + f * (b.energy_j - a.energy_j), a.lost_s + f * (b.lost_s - a.lost_s)};
}

}  // namespace

// ---- CounterTracker --------------------------------------------------------------------------

double CounterFormat::resolution(double raw_j) const {
  // One ulp of a float is at most |v| x 2^(1 - significand bits), whatever its scale and unit.
  if (float_bits > 0) return std::abs(raw_j) * std::ldexp(1.0, 1 - float_bits);
  return step_j;
}

CounterFormat counter_format(const ProfilePoint& p) {
  const double unit = std::abs(to_base_unit(1.0, p.spec.unit));
  const double step = std::abs(p.spec.scale) * unit;
  using modbus::DataType;
  switch (p.spec.type) {
    case DataType::kInt16:
    case DataType::kUInt16:
      return {65536.0 * step, step, 0};
    case DataType::kInt32:
    case DataType::kUInt32:
      return {4294967296.0 * step, step, 0};
    case DataType::kFloat32:
      return {std::nullopt, 0.0, 24};
    case DataType::kFloat64:
      return {std::nullopt, 0.0, 53};
    default:
      return {std::nullopt, step, 0};  // 64-bit counters do not wrap in practice
  }
}

std::optional<CounterFormat> energy_counter_format(const Profile& p) {
  if (const ProfilePoint* e = p.find(points::kEnergy)) return counter_format(*e);
  const DerivedPoint* d = p.find_derived(points::kEnergy);
  if (!d) return std::nullopt;
  if (d->spec.op == modbus::DerivedOp::kWords) {
    ProfilePoint as_read;
    as_read.spec = d->spec.words;
    as_read.spec.unit = d->spec.unit;
    return counter_format(as_read);
  }
  return CounterFormat{std::nullopt, 0.0, 0};
}

bool CounterTracker::plausible(double delta_j, double dt_s, std::optional<double> power_w,
                               double raw_j) const {
  if (!power_w) return true;
  // Twice the largest power reading over the interval, plus two counter steps of quantisation.
  const double step = format_.resolution(std::max(std::abs(raw_j), std::abs(base_raw_)));
  return delta_j <= 2.0 * std::max(0.0, *power_w) * dt_s + 2.0 * step + 1.0;
}

void CounterTracker::accept(TimePoint t, const At& v, double raw_j,
                            std::optional<double> power_w) {
  samples_.push_back({t, v});
  if (raw_j != base_raw_ || samples_.size() == 1) {
    base_raw_ = raw_j;
    changed_at_ = t;
    max_power_ = power_w;
  }
  outlier_.reset();
}

void CounterTracker::add(TimePoint t, double raw_j, std::optional<double> power_w) {
  if (!std::isfinite(raw_j)) return;
  if (last_seen_ && t <= *last_seen_) return;
  last_seen_ = t;
  if (samples_.empty()) {
    accept(t, {}, raw_j, power_w);
    return;
  }
  // Power and time since the counter last moved: the energy it shows now accrued over them.
  if (power_w) max_power_ = std::max(max_power_.value_or(*power_w), *power_w);
  const std::optional<double> p = max_power_;
  const double span = seconds_between(changed_at_, t);
  const double dt = seconds_between(samples_.back().t, t);
  At v = samples_.back().v;
  const double d = raw_j - base_raw_;
  if (d >= 0 && plausible(d, span, p, raw_j)) {
    v.energy_j += d;
    accept(t, v, raw_j, power_w);
    return;
  }
  if (d < 0 && format_.modulus_j) {
    const double w = d + *format_.modulus_j;
    const bool ok = p ? plausible(w, span, p, raw_j) : w <= 0.1 * *format_.modulus_j;
    if (w >= 0 && ok) {
      ++wraps;
      v.energy_j += w;
      accept(t, v, raw_j, power_w);
      return;
    }
  }
  if (d < 0 && raw_j >= 0 && plausible(raw_j, span, p, raw_j)) {
    // Restarted from zero: what it shows now was used since the reset; the energy between the
    // previous reading and the reset is unknown.
    ++resets;
    v.lost_s += dt;
    v.energy_j += raw_j;
    accept(t, v, raw_j, power_w);
    return;
  }
  if (outlier_ && raw_j >= outlier_->raw_j &&
      plausible(raw_j - outlier_->raw_j, seconds_between(outlier_->t, t), p, raw_j)) {
    // Two readings agree on a new level: it is real (a replaced meter, a reset to a non-zero
    // value, a jump while nothing was read). What happened before the first of them is unknown.
    if (d < 0) ++resets;
    v.lost_s += seconds_between(samples_.back().t, outlier_->t);
    v.energy_j += raw_j - outlier_->raw_j;
    accept(t, v, raw_j, power_w);
    return;
  }
  // An outlier: the baseline stays; nothing is held for it, so the grid waits for the next
  // reading (within the device's staleness bound) instead of counting its interval as lost.
  ++rejected;
  outlier_ = Outlier{t, raw_j};
}

std::optional<CounterTracker::At> CounterTracker::at(TimePoint t) const {
  if (samples_.empty() || t < samples_.front().t || t > samples_.back().t) return std::nullopt;
  for (std::size_t i = samples_.size(); i-- > 0;) {
    if (samples_[i].t <= t) {
      if (samples_[i].t == t || i + 1 == samples_.size()) return samples_[i].v;
      return lerp(t, samples_[i].t, samples_[i].v, samples_[i + 1].t, samples_[i + 1].v);
    }
  }
  return std::nullopt;
}

void CounterTracker::trim(TimePoint t) {
  while (samples_.size() >= 2 && samples_[1].t <= t) samples_.pop_front();
}

// ---- EnergySeries ----------------------------------------------------------------------------

EnergySeries::EnergySeries(std::string role, std::vector<Member> members,
                           std::chrono::milliseconds longest_window)
    : role_(std::move(role)),
      members_(std::move(members)),
      last_grid_(members_.size()),
      longest_(longest_window) {
  std::vector<std::string> ids;
  for (const auto& m : members_) ids.push_back(m.device);
  std::sort(ids.begin(), ids.end());
  for (const auto& id : ids) members_key_ += (members_key_.empty() ? "" : ",") + id;
  const auto fine_span = std::min<std::chrono::milliseconds>(longest_window, kFineSpan);
  fine_capacity_ = static_cast<std::size_t>(fine_span / kStep) + 2;
  coarse_capacity_ =
      longest_window > kFineSpan ? static_cast<std::size_t>(longest_window / kCoarseStep) + 2 : 0;
}

void EnergySeries::advance(TimePoint now) {
  if (!pending_) {
    started_ = now;
    const auto s = std::chrono::ceil<std::chrono::seconds>(now.time_since_epoch()).count();
    const auto step = kStep.count();
    pending_ = TimePoint(std::chrono::seconds(((s + step - 1) / step) * step));
  }
  skip_downtime(now);
  while (*pending_ <= now) {
    const TimePoint t = *pending_;
    for (const Member& m : members_) {
      if (!m.tracker) continue;  // no counter: missing at every point
      if (!m.tracker->empty() && m.tracker->last_time() >= t) continue;
      // No reading at or after t yet: wait for one, unless the device is stale (or has not
      // answered at all within its staleness bound of the start).
      const TimePoint last = m.tracker->empty() ? started_ : m.tracker->last_time();
      if (now - last <= m.stale_after) return;
    }
    finalize(t);
    pending_ = t + kStep;
  }
}

void EnergySeries::skip_downtime(TimePoint now) {
  // After a restore, the steps up to the restart that come before every member's first new
  // reading are lost, and down, for every member: finalize() would find exactly that, member by
  // member and step by step (after days of downtime, 2,000 PDUs x 10^5 steps in one model
  // cycle). They are pushed in bulk, once advance() may finalise them at all: every member has
  // answered or is past its staleness bound.
  if (!restored_at_ || std::any_of(last_grid_.begin(), last_grid_.end(),
                                   [](const auto& g) { return g.has_value(); }))
    return;
  TimePoint first_reading = TimePoint::max();
  for (const Member& m : members_) {
    if (!m.tracker) continue;
    if (!m.tracker->empty()) {
      first_reading = std::min(first_reading, m.tracker->first_time());
    } else if (now - started_ <= m.stale_after) {
      return;  // advance() waits for it
    }
  }
  const double step = std::chrono::duration<double>(kStep).count() * double(members_.size());
  while (*pending_ <= now && *pending_ < first_reading && *pending_ <= *restored_at_) {
    lost_s_ += step;
    down_s_ += step;
    complete_ = false;
    push(Point{*pending_, covered_j_, lost_s_, down_s_});
    catching_up_ = false;
    pending_ = *pending_ + kStep;
  }
}

void EnergySeries::finalize(TimePoint t) {
  const bool first = fine_.empty();
  const double step = std::chrono::duration<double>(kStep).count();
  std::vector<std::optional<CounterTracker::At>> at(members_.size());
  bool any = false;
  for (std::size_t i = 0; i < members_.size(); ++i) {
    if (members_[i].tracker) at[i] = members_[i].tracker->at(t);
    any = any || at[i].has_value();
  }
  // The history starts at the first point where some device has data: before it, nothing is
  // known, and nothing is lost either.
  if (first && !any) return;
  bool complete = true;
  for (std::size_t i = 0; i < members_.size(); ++i) {
    Member& m = members_[i];
    const auto& a = at[i];
    // After a restore, a member's steps until its first new point are the daemon's downtime
    // (bounded by its staleness: a device silent for longer is missing, not waited for).
    const bool down = restored_at_ && !last_grid_[i] && t <= *restored_at_ + m.stale_after;
    if (!a) {
      complete = false;
      if (!first) lost_s_ += step;
      if (down) down_s_ += step;
      continue;
    }
    if (last_grid_[i]) {
      const double de = a->energy_j - last_grid_[i]->v.energy_j;
      energy_j_ += de;  // the counter is exact across a gap: the total keeps its energy
      if (last_grid_[i]->t + kStep < t) {
        // Back after missing grid points: the energy since its last point is known only as a
        // whole, not where in the gap it fell. Counted in a window, it would land in this one
        // step while the gap's steps count as lost: a window starting inside the gap would get
        // energy from before its start. So the step into this point is lost too (the missing
        // points each lost theirs), and the windows count none of this energy: energy and
        // lost time cover exactly the same span.
        lost_s_ += step;
      } else {
        covered_j_ += de;
        lost_s_ += a->lost_s - last_grid_[i]->v.lost_s;
      }
    } else if (!first) {
      lost_s_ += step;  // its first point: the step before it is not known
      // After a restore that step is the restart's, if the device answered within its staleness
      // bound of it (the step can end up to a step after its first reading, well past the
      // bound: counted as the device's, it withheld the PUE for a whole window).
      if (restored_at_ && m.tracker->first_time() <= *restored_at_ + m.stale_after)
        down_s_ += step;
    }
    last_grid_[i] = LastGrid{t, *a};
    m.tracker->trim(t);
  }
  complete_ = complete;
  push(Point{t, covered_j_, lost_s_, down_s_});
  catching_up_ = false;
}

void EnergySeries::push(const Point& p) {
  fine_.push_back(p);
  while (fine_.size() > fine_capacity_) fine_.pop_front();
  if (coarse_capacity_ > 0 && p.t.time_since_epoch() % kCoarseStep == std::chrono::seconds(0)) {
    coarse_.push_back(p);
    while (coarse_.size() > coarse_capacity_) coarse_.pop_front();
  }
  finalized_.push_back(p);
  // Nobody taking them (a model without a history) must not grow without bound.
  while (finalized_.size() > fine_capacity_) finalized_.pop_front();
}

std::vector<EnergySeries::Point> EnergySeries::take_finalized() {
  std::vector<Point> out(finalized_.begin(), finalized_.end());
  finalized_.clear();
  return out;
}

std::size_t EnergySeries::restore(const std::vector<Point>& points, TimePoint now) {
  if (pending_ || !fine_.empty() || members_.empty()) return 0;
  const TimePoint oldest = now - longest_ - kCoarseStep;
  // Both sums only grow within one chain of runs. A point where either falls starts a new
  // chain (a run that did not restore, e.g. after a longer downtime than a shorter window then
  // configured): only the newest chain is restored, never a window across two.
  std::size_t first = 0;
  for (std::size_t i = 1; i < points.size(); ++i) {
    const Point& a = points[i - 1];
    const Point& b = points[i];
    if (b.energy_j < a.energy_j || b.lost_s < a.lost_s || b.down_s < a.down_s) first = i;
  }
  std::size_t restored = 0;
  std::optional<Point> last;
  for (std::size_t i = first; i < points.size(); ++i) {
    const Point& p = points[i];
    if (p.t < oldest || p.t > now || p.t.time_since_epoch() % kStep != std::chrono::seconds(0))
      continue;
    if (last && p.t <= last->t) continue;
    if (last) {
      // Steps not stored in between (a history write that was dropped, or fine points pruned
      // where only coarse ones are kept) are interpolated, as window() does between coarse
      // points: the run that wrote them counted energy and lost time across the gap, only not
      // where in it. (A restart leaves no such gap: the next run continues from the last
      // stored point, see below, and stores the steps it finds lost.)
      const TimePoint fine_from = now - kFineSpan - kStep;
      for (TimePoint t = last->t + kStep; t < p.t; t += kStep) {
        if (t < fine_from && t.time_since_epoch() % kCoarseStep != std::chrono::seconds(0))
          continue;
        const double f = seconds_between(last->t, t) / seconds_between(last->t, p.t);
        auto mix = [f](double a, double b) { return a + f * (b - a); };
        push(Point{t, mix(last->energy_j, p.energy_j), mix(last->lost_s, p.lost_s),
                   mix(last->down_s, p.down_s)});
      }
    }
    push(p);
    last = p;
    ++restored;
  }
  finalized_.clear();  // stored already
  if (!last) return 0;
  covered_j_ = last->energy_j;
  lost_s_ = last->lost_s;
  down_s_ = last->down_s;
  restored_at_ = now;
  // A grid point lags the present by up to a step plus the longest staleness bound (advance
  // waits that long for a device). A last stored point older than that (a restart) is the
  // previous run's; a reload's is as current as the grid ever is.
  std::chrono::milliseconds lag = kStep;
  for (const auto& m : members_) {
    lag = std::max<std::chrono::milliseconds>(lag, kStep + m.stale_after);
  }
  catching_up_ = last->t < now - lag;
  // Continue on the grid after the last stored point: advance() finalises each step from there,
  // lost for every member until its first new reading (see finalize).
  started_ = now;
  pending_ = last->t + kStep;
  return restored;
}

std::optional<TimePoint> EnergySeries::latest() const {
  if (fine_.empty()) return std::nullopt;
  return fine_.back().t;
}

std::optional<double> EnergySeries::total_j() const {
  if (fine_.empty() || !complete_) return std::nullopt;
  return energy_j_;
}

double EnergySeries::history_s() const {
  if (fine_.empty()) return 0;
  TimePoint first = fine_.front().t;
  if (!coarse_.empty()) first = std::min(first, coarse_.front().t);
  return seconds_between(first, fine_.back().t);
}

std::optional<EnergySeries::Window> EnergySeries::window(std::chrono::milliseconds w) const {
  if (fine_.empty() || members_.empty() || w <= std::chrono::milliseconds(0) || catching_up_)
    return std::nullopt;
  const Point& end = fine_.back();
  const TimePoint start_t = end.t - w;
  std::optional<Point> start;
  if (w <= kFineSpan) {
    const auto steps = static_cast<std::size_t>(w / kStep);
    if (w % kStep != std::chrono::milliseconds(0) || steps >= fine_.size()) return std::nullopt;
    start = fine_[fine_.size() - 1 - steps];
  } else {
    if (coarse_.empty() || coarse_.front().t > start_t) return std::nullopt;
    for (std::size_t i = coarse_.size(); i-- > 0;) {
      if (coarse_[i].t > start_t) continue;
      const Point& a = coarse_[i];
      const Point& b = i + 1 < coarse_.size() ? coarse_[i + 1] : end;
      const auto v = lerp(start_t, a.t, {a.energy_j, a.lost_s}, b.t, {b.energy_j, b.lost_s});
      const auto d = lerp(start_t, a.t, {a.down_s, 0}, b.t, {b.down_s, 0});
      start = Point{start_t, v.energy_j, v.lost_s, d.energy_j};
      break;
    }
    if (!start) return std::nullopt;
  }
  const double secs = std::chrono::duration<double>(w).count();
  Window out;
  out.energy_j = end.energy_j - start->energy_j;
  const double lost = end.lost_s - start->lost_s;
  const double device_s = double(members_.size()) * secs;
  out.coverage = std::clamp(1.0 - lost / device_s, 0.0, 1.0);
  out.running = std::clamp(1.0 - (end.down_s - start->down_s) / device_s, 0.0, 1.0);
  return out;
}

}  // namespace facility::model_detail
