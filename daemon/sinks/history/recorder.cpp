#include "daemon/sinks/history/recorder.h"

#include <algorithm>
#include <cmath>

namespace facility {

using history_detail::fmax_nan;
using history_detail::fmin_nan;
using history_detail::unix_s;

namespace {

// The site's power terms, counts and worst cooling headroom over `dt` seconds.
void add_site(const SiteSnapshot& ss, double dt, SiteInterval& s) {
  s.samples_s += dt;
  if (ss.it_power_w) {
    s.it_j += *ss.it_power_w * dt;
    s.it_s += dt;
    s.it_peak_w = fmax_nan(s.it_peak_w, *ss.it_power_w);
  }
  if (ss.facility_power_w) {
    s.fac_j += *ss.facility_power_w * dt;
    s.fac_s += dt;
  }
  if (ss.cooling_power_w) {
    s.cool_j += *ss.cooling_power_w * dt;
    s.cool_s += dt;
  }
  if (ss.it_power_w && ss.facility_power_w) {
    s.pue_it_j += *ss.it_power_w * dt;
    s.pue_fac_j += *ss.facility_power_w * dt;
    s.pue_s += dt;
  }
  if (ss.capacity.measured_w) {
    s.cab_j += *ss.capacity.measured_w * dt;
    s.cab_s += dt;
    s.cab_peak_w = fmax_nan(s.cab_peak_w, *ss.capacity.measured_w);
  }
  const Occupancy& o = ss.occupancy;
  s.cab_known_s += o.measured * dt;
  s.cab_expected_s += o.total * dt;
  s.total = o.total;
  s.powered = o.powered;
  s.sold = o.sold;
  s.internal = o.internal;
  s.free = o.free;
  s.powered_known = o.powered_known;
  s.powered_max = std::max(s.powered_max, o.powered);
  s.pue_category = ss.pue_category;
  double worst = kNaN;
  bool all = false;
  for (const auto& r : ss.rooms) {
    if (r.cooling.units == 0) continue;
    if (!r.cooling.headroom_n_plus_1_w) {
      all = false;
      worst = kNaN;
      break;
    }
    all = true;
    worst = fmin_nan(worst, *r.cooling.headroom_n_plus_1_w);
  }
  if (all) {
    s.cool_hr_min_w = fmin_nan(s.cool_hr_min_w, worst);
    s.cool_hr_s += dt;
  }
}

void add_cabinets(const SiteSnapshot& ss, double dt, std::vector<int>& last_overload,
                  std::vector<CabinetInterval>& cabinets) {
  for (std::size_t ci = 0; ci < ss.cabinets.size() && ci < cabinets.size(); ++ci) {
    const CabinetSnapshot& cs = ss.cabinets[ci];
    CabinetInterval& c = cabinets[ci];
    if (cs.power_w) {
      c.energy_ws += *cs.power_w * dt;
      c.known_s += dt;
      c.peak_w = fmax_nan(c.peak_w, *cs.power_w);
    }
    if (cs.powered) c.powered_s += dt;
    const int ov = static_cast<int>(cs.overload);
    if (ov > 0) c.overload_s += dt;
    if (ov > 0 && last_overload[ci] == 0) ++c.overload_starts;
    last_overload[ci] = ov;
    // The worst feed or phase: a three-phase cabinet typically fails on one phase.
    if (cs.failover_worst_w) {
      c.failover_min_w = fmin_nan(c.failover_min_w, *cs.failover_worst_w);
      if (*cs.failover_worst_w < 0) c.failover_neg_s += dt;
    }
  }
}

// The energy grid points finalised in this cycle, per role.
void add_energy_points(const SiteSnapshot& ss, std::vector<EnergyRows>& rows) {
  for (const auto& es : ss.energy) {
    if (es.new_points.empty()) continue;
    auto it = std::find_if(rows.begin(), rows.end(),
                           [&es](const EnergyRows& r) { return r.role == es.role; });
    if (it == rows.end()) it = rows.insert(rows.end(), EnergyRows{es.role, es.members, {}});
    it->points.insert(it->points.end(), es.new_points.begin(), es.new_points.end());
  }
}

}  // namespace

HistoryRecorder::HistoryRecorder(std::shared_ptr<const Config> config)
    : config_(std::move(config)) {
  sites_.resize(config_->sites.size());
  for (std::size_t i = 0; i < sites_.size(); ++i) {
    sites_[i].last_overload.assign(config_->sites[i].cabinets.size(), 0);
  }
}

std::vector<MinuteRecord> HistoryRecorder::add(const FacilitySnapshot& snap) {
  std::vector<MinuteRecord> done;
  const double now = unix_s(snap.computed_at);
  double dt = 0;
  if (last_) dt = std::clamp(unix_s(snap.computed_at) - unix_s(*last_), 0.0, kMaxSampleGap);
  last_ = snap.computed_at;
  const auto minute = std::int64_t(std::floor(now / 60.0)) * 60;

  for (std::size_t si = 0; si < snap.sites.size() && si < sites_.size(); ++si) {
    const SiteSnapshot& ss = snap.sites[si];
    SiteState& st = sites_[si];
    if (st.current && st.current->t != minute) {
      done.push_back(std::move(*st.current));
      st.current.reset();
    }
    if (!st.current) {
      st.current.emplace();
      st.current->site = ss.site->id;
      st.current->t = minute;
      st.current->site_index = si;
      st.current->cabinets.resize(ss.cabinets.size());
    }
    MinuteRecord& m = *st.current;
    add_site(ss, dt, m.site_data);
    add_cabinets(ss, dt, st.last_overload, m.cabinets);
    add_energy_points(ss, m.energy);
  }
  return done;
}

std::vector<MinuteRecord> HistoryRecorder::flush() {
  std::vector<MinuteRecord> out;
  for (auto& st : sites_) {
    if (st.current) out.push_back(std::move(*st.current));
    st.current.reset();
  }
  return out;
}

}  // namespace facility
