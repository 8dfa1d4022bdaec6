// One cabinet: feed and phase power (measured, or estimated from current), total and
// utilisation, A/B failover headroom per feed and phase, phase imbalance, powered state,
// inlet temperatures and rack units.
#include <algorithm>
#include <cmath>
#include <limits>

#include "daemon/config/points.h"
#include "daemon/model/internal.h"

namespace facility::model_detail {
namespace {

constexpr const char* kPhaseNames[] = {"L1", "L2", "L3"};

// Power factor for an estimate: the PDU's own reading when it is plausible, else the nominal.
// A leading power factor reads negative on some PDUs, hence the magnitude.
double estimate_pf(std::optional<double> measured, double nominal) {
  if (measured && std::abs(*measured) > 0.0 && std::abs(*measured) <= 1.0)
    return std::abs(*measured);
  return nominal;
}

// (max |x - mean|) / mean; nullopt unless all three are known and the mean is positive.
std::optional<double> imbalance(const std::vector<std::optional<double>>& xs) {
  if (xs.size() != 3) return std::nullopt;
  double sum = 0;
  for (const auto& x : xs) {
    if (!x) return std::nullopt;
    sum += *x;
  }
  const double mean = sum / 3.0;
  if (mean <= 0) return std::nullopt;
  double dev = 0;
  for (const auto& x : xs) dev = std::max(dev, std::abs(*x - mean));
  return dev / mean;
}

// Any outlet on, for PDUs that report outlet states: a count `outlets_on`, or per-outlet
// `outlet_<N>_on` points. nullopt when the PDU reports neither.
std::optional<bool> outlets_on(const DeviceReading& r) {
  std::optional<bool> any;
  for (const auto& [name, pv] : r.points) {
    const bool count = name == points::kOutletsOn;
    const bool single = name.size() > 10 && name.rfind("outlet_", 0) == 0 &&
                        name.compare(name.size() - 3, 3, "_on") == 0;
    if ((count || single) && pv.value) any = any.value_or(false) || *pv.value > 0;
  }
  return any;
}

FeedPower compute_feed(const std::string& feed, const Device* pdu, const FreshView& v) {
  FeedPower fp;
  fp.feed = feed;
  if (!pdu) return fp;
  fp.device = pdu->id;
  const DeviceReading* r = v.reading(pdu->id);
  fp.fresh = r != nullptr;
  if (!r) return fp;
  // The reading is looked up once; its points directly (this runs for every PDU every cycle).
  auto get = [r](const std::string& p) { return point_value(*r, p); };
  const double pf = estimate_pf(get(points::kPowerFactor), pdu->nominal_power_factor);

  bool any_phase = false;
  for (int i = 0; i < 3; ++i) {
    PhasePower ph;
    ph.phase = kPhaseNames[i];
    ph.power_w = get(points::phase_point(points::kActivePower, i + 1));
    ph.current_a = get(points::phase_point(points::kCurrent, i + 1));
    ph.voltage_v = get(points::phase_point(points::kVoltage, i + 1));
    if (!ph.power_w && ph.current_a) {
      ph.power_w = *ph.current_a * ph.voltage_v.value_or(pdu->nominal_voltage_v) * pf;
      ph.estimated = true;
    }
    if (ph.power_w || ph.current_a || ph.voltage_v) any_phase = true;
    fp.phases.push_back(ph);
  }
  if (!any_phase) fp.phases.clear();

  fp.current_a = get(points::kCurrent);
  fp.voltage_v = get(points::kVoltage);
  fp.energy_j = get(points::kEnergy);
  fp.outlets_on = outlets_on(*r);
  if (auto p = get(points::kActivePower)) {
    fp.power_w = p;
  } else if (!fp.phases.empty() &&
             std::all_of(fp.phases.begin(), fp.phases.end(),
                         [](const PhasePower& ph) { return ph.power_w.has_value(); })) {
    fp.power_w = 0.0;
    for (const auto& ph : fp.phases) {
      *fp.power_w += *ph.power_w;
      fp.estimated = fp.estimated || ph.estimated;
    }
  } else if (fp.current_a) {
    fp.power_w = *fp.current_a * fp.voltage_v.value_or(pdu->nominal_voltage_v) * pf;
    fp.estimated = true;
  }
  if (fp.phases.size() == 3) {
    std::vector<std::optional<double>> currents, powers;
    for (const auto& ph : fp.phases) {
      currents.push_back(ph.current_a);
      powers.push_back(ph.power_w);
    }
    fp.phase_imbalance = imbalance(currents);
    if (!fp.phase_imbalance) fp.phase_imbalance = imbalance(powers);
  }
  return fp;
}

// If any one feed fails, each other feed must carry the whole cabinet: per feed, derated
// feed capacity - total; per phase (all feeds three-phase), derated capacity / 3 - the sum of
// that phase over every feed.
void compute_failover(const Cabinet& cab, CabinetSnapshot& cs) {
  if (cab.feeds.size() < 2 || !cs.power_w) return;
  const double derated = cab.feed_capacity_w * cab.derating;
  std::optional<double> phase_load[3];
  bool phases_known = std::all_of(cs.feeds.begin(), cs.feeds.end(),
                                  [](const FeedPower& f) { return f.phases.size() == 3; });
  for (int i = 0; phases_known && i < 3; ++i) {
    double sum = 0;
    for (const auto& f : cs.feeds) {
      if (!f.phases[std::size_t(i)].power_w)
        phases_known = false;
      else
        sum += *f.phases[std::size_t(i)].power_w;
    }
    phase_load[i] = sum;
  }
  // The worst case, relative to its own capacity (a phase has a third of a feed's).
  auto consider = [&cs](double headroom, double capacity, std::string what) {
    if (!(capacity > 0)) return;
    const double margin = headroom / capacity;
    if (cs.failover_margin && *cs.failover_margin <= margin) return;
    cs.failover_margin = margin;
    cs.failover_worst_w = headroom;
    cs.failover_worst = std::move(what);
  };
  for (auto& f : cs.feeds) {
    f.failover_headroom_w = derated - *cs.power_w;
    cs.failover_headroom_w =
        std::min(cs.failover_headroom_w.value_or(*f.failover_headroom_w), *f.failover_headroom_w);
    consider(*f.failover_headroom_w, derated, "feed " + f.feed);
  }
  // A phase's headroom is the same whichever feed survives: the load of that phase over every
  // feed against a third of the derated capacity.
  for (int i = 0; phases_known && i < 3; ++i) {
    for (auto& f : cs.feeds) {
      f.phases[std::size_t(i)].failover_headroom_w = derated / 3.0 - *phase_load[i];
    }
    consider(derated / 3.0 - *phase_load[i], derated / 3.0, std::string("phase ") + kPhaseNames[i]);
  }
  if (cs.failover_margin && *cs.failover_margin < 0) cs.failover_risk = true;
}

}  // namespace

OverloadState overload_level(double u, const OverloadSettings& s) {
  if (u >= s.critical) return OverloadState::kCritical;
  if (u >= s.warning) return OverloadState::kWarning;
  return OverloadState::kOk;
}

OverloadState inlet_level(double max_c, double min_c, const InletSettings& s) {
  if (max_c > s.allowable_high_c || min_c < s.allowable_low_c) return OverloadState::kCritical;
  if (max_c > s.recommended_high_c || min_c < s.recommended_low_c) return OverloadState::kWarning;
  return OverloadState::kOk;
}

std::optional<double> dew_point_c(double t, double rh) {
  // Magnus formula with the Sonntag (1990) constants, good to ~0.35 K for -45..60 degC.
  if (rh <= 0 || rh > 1.0) return std::nullopt;
  constexpr double b = 17.62, c = 243.12;
  const double g = std::log(rh) + b * t / (c + t);
  return c * g / (b - g);
}

CabinetSnapshot compute_cabinet(const Cabinet& cab, const std::vector<const Device*>& pdus,
                                const std::vector<const Device*>& sensors, const FreshView& v,
                                double powered_threshold_w, const InletSettings& inlet) {
  CabinetSnapshot cs;
  cs.cabinet = &cab;
  double total = 0;
  int known = 0;
  bool any_outlet_on = false, all_report_outlets = true, any_feed_above = false;
  for (const auto& feed : cab.feeds) {
    const Device* pdu = nullptr;
    for (const Device* p : pdus) {
      if (p->feed == feed) pdu = p;
    }
    FeedPower fp = compute_feed(feed, pdu, v);
    if (fp.power_w) {
      total += *fp.power_w;
      ++known;
      any_feed_above = any_feed_above || *fp.power_w > powered_threshold_w;
    }
    cs.estimated = cs.estimated || (fp.power_w && fp.estimated);
    if (fp.outlets_on) any_outlet_on = any_outlet_on || *fp.outlets_on;
    if (!fp.outlets_on) all_report_outlets = false;
    if (fp.phase_imbalance) {
      cs.phase_imbalance = std::max(cs.phase_imbalance.value_or(0.0), *fp.phase_imbalance);
    }
    cs.feeds.push_back(std::move(fp));
  }
  const int nfeeds = static_cast<int>(cab.feeds.size());
  cs.feed_coverage = nfeeds > 0 ? double(known) / nfeeds : 0.0;
  // A cabinet's power is only known when every feed is measured: a missing feed must never
  // quietly halve it.
  if (nfeeds > 0 && known == nfeeds) {
    cs.power_w = total;
    if (cab.rated_w > 0) cs.utilization = total / cab.rated_w;
    cs.quality = Quality::kGood;
  } else {
    cs.quality = Quality::kStale;
  }
  // Powered (上电): an outlet switched on where the PDU reports outlets; else power above the
  // threshold. With a feed missing, one fresh feed above the threshold is already enough.
  if (any_outlet_on) {
    cs.powered = cs.powered_known = true;
  } else if (cs.power_w) {
    cs.powered = !all_report_outlets && *cs.power_w > powered_threshold_w;
    cs.powered_known = true;
  } else if (any_feed_above) {
    cs.powered = cs.powered_known = true;
  }
  compute_failover(cab, cs);
  if (cs.utilization) cs.overload = overload_level(*cs.utilization, cab.overload);

  for (const Device* s : sensors) {
    const DeviceReading* r = v.reading(s->id);
    if (!r) continue;
    if (auto t = point_value(*r, points::kInletTemperature)) {
      cs.inlet_c = std::max(cs.inlet_c.value_or(*t), *t);
      cs.inlet_min_c = std::min(cs.inlet_min_c.value_or(*t), *t);
    }
    if (auto h = point_value(*r, points::kHumidity)) cs.humidity_ratio = *h;
    if (auto u = point_value(*r, points::kUOccupied)) {
      cs.u_occupied = std::max(cs.u_occupied.value_or(0.0), *u);
      cs.u_total = point_value(*r, points::kUTotal).value_or(double(cab.rack_units));
    }
  }
  if (cs.inlet_c) cs.inlet_state = inlet_level(*cs.inlet_c, *cs.inlet_min_c, inlet);
  cs.peak_w = cs.power_w;
  return cs;
}

}  // namespace facility::model_detail
