// FacilityModel: the stateless snapshot completed with what needs memory across cycles:
// alert states with hysteresis and hold time, energy counters and PUE windows, cabinet peaks.
#include <algorithm>
#include <cmath>
#include <deque>
#include <functional>
#include <sstream>
#include <unordered_map>

#include "daemon/config/points.h"
#include "daemon/model/alerts.h"
#include "daemon/model/energy.h"
#include "daemon/model/internal.h"

namespace facility {

using model_detail::AlertBook;
using model_detail::EnergySeries;
using model_detail::HoldAlarm;
using model_detail::LevelAlarm;

namespace {

using Millis = std::chrono::milliseconds;

// Rolling maximum over a window, in 96 buckets: memory per cabinet is bounded whatever the
// window and the model interval.
class PeakTracker {
 public:
  void add(TimePoint t, double v, Millis window) {
    const auto width = bucket_width(window);
    const auto start = TimePoint(std::chrono::floor<Millis>(t.time_since_epoch()) / width * width);
    if (!buckets_.empty() && buckets_.back().first == start) {
      buckets_.back().second = std::max(buckets_.back().second, v);
    } else {
      buckets_.emplace_back(start, v);
    }
  }
  // Forgets buckets that ended more than `window` before t. Called on every cycle, also when
  // there is nothing to add: a peak must age out while the power is unknown too.
  void trim(TimePoint t, Millis window) {
    const auto width = bucket_width(window);
    while (!buckets_.empty() && buckets_.front().first + width + window <= t) buckets_.pop_front();
  }
  std::optional<double> max() const {
    std::optional<double> m;
    for (const auto& [t, v] : buckets_) m = std::max(m.value_or(v), v);
    return m;
  }

 private:
  static Millis bucket_width(Millis window) { return std::max<Millis>(window / 96, Millis(1000)); }
  std::deque<std::pair<TimePoint, double>> buckets_;
};

std::string percent(double ratio) {
  std::ostringstream os;
  os.setf(std::ios::fixed);
  os.precision(1);
  os << ratio * 100 << " %";
  return os.str();
}

std::string fixed(double v, int digits) {
  std::ostringstream os;
  os.setf(std::ios::fixed);
  os.precision(digits);
  os << v;
  return os.str();
}

}  // namespace

struct FacilityModel::State {
  struct CabinetState {
    LevelAlarm overload;
    HoldAlarm failover;
    LevelAlarm inlet;
    PeakTracker peak;
  };
  struct UpsState {
    LevelAlarm overload, runtime;
    HoldAlarm on_battery, on_bypass;
  };
  struct SiteState {
    std::vector<CabinetState> cabinets;  // in Site::cabinets order
    std::vector<LevelAlarm> rooms;       // cooling redundancy, in Site::rooms order
    std::vector<UpsState> ups;           // in SiteSnapshot::ups order (the site's UPS devices)
    std::vector<EnergySeries> energy;
  };
  std::vector<SiteState> sites;
  AlertBook alerts;
  std::optional<TimePoint> started;
};

FacilityModel::FacilityModel(std::shared_ptr<const Config> config)
    : config_(std::move(config)), state_(std::make_unique<State>()) {
  const Config& cfg = *config_;
  for (const Site& site : cfg.sites) {
    State::SiteState ss;
    ss.cabinets.resize(site.cabinets.size());
    ss.rooms.resize(site.rooms.size());
    ss.ups.resize(static_cast<std::size_t>(
        std::count_if(site.devices.begin(), site.devices.end(), [](const Device& d) {
          return kind_info(d.kind).contributes == Contribution::kUpsOutput;
        })));
    const auto windows = site.facility.pue_windows;
    const Millis longest = windows.empty() ? Millis(std::chrono::minutes(15)) : windows.back();

    auto member = [&cfg](const Device& d) {
      EnergySeries::Member m;
      m.device = d.id;
      m.stale_after = d.interval * cfg.daemon.stale_after_intervals;
      if (d.profile) {
        if (auto f = model_detail::energy_counter_format(*d.profile)) m.tracker.emplace(*f);
      }
      return m;
    };
    auto meters_with = [&site](auto pred) {
      std::vector<const Device*> out;
      for (const auto& d : site.devices) {
        if (kind_info(d.kind).contributes == Contribution::kSiteMeter && pred(d)) out.push_back(&d);
      }
      return out;
    };
    auto add_series = [&](std::string role, const std::vector<const Device*>& devs) {
      if (devs.empty()) return;
      std::vector<EnergySeries::Member> ms;
      for (const Device* d : devs) ms.push_back(member(*d));
      ss.energy.emplace_back(std::move(role), std::move(ms), longest);
    };
    add_series("facility_total",
               meters_with([](const Device& d) { return d.role == MeterRole::kFacilityTotal; }));
    const auto by_cat = model_detail::it_meters_by_category(site);
    for (int c = 1; c <= 3; ++c)
      add_series(model_detail::it_role_name(c), by_cat[std::size_t(c - 1)]);
    const bool it_meters =
        std::any_of(by_cat.begin(), by_cat.end(), [](const auto& v) { return !v.empty(); });
    add_series("cooling",
               meters_with([](const Device& d) { return d.role == MeterRole::kCooling; }));
    add_series("other", meters_with([](const Device& d) { return d.role == MeterRole::kOther; }));
    if (!it_meters) {
      // IT energy from the PDUs, only if every feed of every cabinet has one.
      std::vector<const Device*> pdus;
      std::size_t feeds = 0;
      for (const auto& c : site.cabinets) feeds += c.feeds.size();
      for (const auto& d : site.devices) {
        if (kind_info(d.kind).contributes == Contribution::kCabinetFeed) pdus.push_back(&d);
      }
      if (!pdus.empty() && pdus.size() == feeds) add_series("pdu_sum", pdus);
    }
    state_->sites.push_back(std::move(ss));
  }
}

FacilityModel::~FacilityModel() = default;

namespace {

int category_of_role(const std::string& role) {
  if (role == "pdu_sum") return 2;  // the rack PDUs' inlets: at the PDU output
  for (const auto& c : kPueCategories) {
    if (role == c.role_name) return c.category;
  }
  return 0;
}

void update_energy(std::vector<EnergySeries>& series, const SiteSnapshot& ss,
                   const std::unordered_map<std::string, ReadingStore::Entry>& readings,
                   TimePoint now) {
  std::unordered_map<std::string, std::optional<double>> feed_power;
  for (const auto& cs : ss.cabinets) {
    for (const auto& f : cs.feeds) {
      if (!f.device.empty()) feed_power[f.device] = f.power_w;
    }
  }
  for (auto& s : series) {
    for (auto& m : s.members()) {
      if (!m.tracker) continue;
      auto it = readings.find(m.device);
      if (it == readings.end() || !it->second.reading) continue;
      const DeviceReading& r = *it->second.reading;
      auto e = r.points.find(points::kEnergy);
      if (e == r.points.end()) continue;
      // A counter read every N-th poll is carried between its reads: fed once, at its read time.
      const TimePoint read_at = e->second.read_at != TimePoint{} ? e->second.read_at : r.polled_at;
      if (read_at <= m.last_seen) continue;
      m.last_seen = read_at;
      if (!e->second.value) continue;
      std::optional<double> power;
      if (auto p = r.points.find(points::kActivePower); p != r.points.end() && p->second.value) {
        power = to_base_unit(*p->second.value, p->second.unit);
      } else if (auto fp = feed_power.find(m.device); fp != feed_power.end()) {
        power = fp->second;
      }
      m.tracker->add(read_at, to_base_unit(*e->second.value, e->second.unit), power);
    }
    s.advance(now);
  }
}

// An energy PUE window is published only if the daemon ran for at least this fraction of it.
constexpr double kMinRunning = 0.5;

void energy_results(const Site& site, const std::vector<EnergySeries>& series, SiteSnapshot& ss) {
  const FacilitySettings& fs = site.facility;
  const EnergySeries* fac = nullptr;
  const EnergySeries* cool = nullptr;
  for (const auto& s : series) {
    if (s.role() == "facility_total") fac = &s;
    if (s.role() == "cooling") cool = &s;
    EnergySnapshot es;
    es.role = s.role();
    es.devices = static_cast<int>(s.members().size());
    es.total_j = s.total_j();
    es.history_s = s.history_s();
    es.members = s.members_key();
    for (const auto& w : fs.pue_windows) {
      const auto win = s.window(w);
      es.window_coverage.emplace_back(window_label(w),
                                      win ? std::optional(win->coverage) : std::nullopt);
      es.window_energy_j.emplace_back(window_label(w),
                                      win ? std::optional(win->energy_j) : std::nullopt);
    }
    ss.energy.push_back(std::move(es));
  }
  // Covered energy of a window: exact at full coverage, extrapolated above the bound (< 1).
  // The bound is on the devices' coverage while the daemon ran; the time it did not run
  // (a restart or reload within the window) is extrapolated over as long as it ran for at
  // least half of the window (kMinRunning).
  auto covered = [&fs](const std::optional<EnergySeries::Window>& w) -> std::optional<double> {
    if (!w || w->coverage <= 0 || w->running < kMinRunning) return std::nullopt;
    // 1e-9: the two cumulative sums round differently; a window with no device missing while
    // the daemon ran must not read 0.9999999999 against a bound of 1.
    if (w->coverage / w->running + 1e-9 < fs.pue_min_coverage) return std::nullopt;
    return w->energy_j / w->coverage;
  };
  for (const auto& it : series) {
    const int category = category_of_role(it.role());
    if (category == 0) continue;
    for (const auto& w : fs.pue_windows) {
      PueValue pv;
      pv.category = category;
      pv.window = window_label(w);
      const auto itw = it.window(w);
      std::optional<EnergySeries::Window> facw, coolw;
      if (fac) facw = fac->window(w);
      if (cool) coolw = cool->window(w);
      if (itw) pv.it_coverage = itw->coverage;
      if (facw) pv.facility_coverage = facw->coverage;
      if (coolw) pv.cooling_coverage = coolw->coverage;
      const auto e_it = covered(itw);
      if (e_it && *e_it > 0) {
        if (auto e_f = covered(facw)) pv.pue = *e_f / *e_it;
        if (auto e_c = covered(coolw)) pv.partial_cooling = (*e_it + *e_c) / *e_it;
      }
      ss.pue_values.push_back(pv);
    }
  }
}

}  // namespace

namespace {

using CabinetState = FacilityModel::State::CabinetState;

// Hands alert states to the book with the site, the time and the retention filled in.
struct Reporter {
  AlertBook& book;
  const std::string& site;
  TimePoint now;
  Millis retention;
  void operator()(AlertBook::Report r, const std::function<std::string()>& message) const {
    r.site = site;
    book.report(r, message, now, retention);
  }
};

// Overload, with hysteresis and hold time.
void update_overload(const Cabinet& cab, CabinetSnapshot& cs, CabinetState& cst, TimePoint now,
                     const Reporter& report) {
  const auto& ov = cab.overload;
  const auto& u = cs.utilization;
  auto cond = [&u](double raise_at, double clear_below) {
    if (!u) return LevelAlarm::Conditions{};
    return LevelAlarm::Conditions{*u >= raise_at, *u < clear_below};
  };
  cst.overload.update(cond(ov.warning, ov.warning - ov.hysteresis),
                      cond(ov.critical, ov.critical - ov.hysteresis), now, ov.hold);
  cs.overload = cst.overload.level();
  report({"", "cabinet_overload", cab.id, cs.overload, u,
          cs.overload == OverloadState::kCritical ? ov.critical : ov.warning, "ratio"},
         [&] {
           return "cabinet " + cab.id + " at " + (u ? percent(*u) : std::string("unknown")) +
                  " of its rated " + fixed(cab.rated_w, 0) + " W (warning from " +
                  percent(ov.warning) + ", critical from " + percent(ov.critical) + ")";
         });
}

// Failover risk: the margin is the smallest headroom relative to its capacity, over feeds and
// phases (compute_failover); the alert carries that feed's or phase's headroom.
void update_failover(const Cabinet& cab, const FacilitySettings& fs, CabinetSnapshot& cs,
                     CabinetState& cst, TimePoint now, const Reporter& report) {
  if (cab.feeds.size() < 2) return;
  const double derated = cab.feed_capacity_w * cab.derating;
  std::optional<bool> raise, clear;
  if (cs.failover_margin) {
    raise = *cs.failover_margin < 0;
    clear = *cs.failover_margin >= fs.failover.hysteresis;
  }
  cst.failover.update(raise, clear, now, fs.failover.hold);
  cs.failover_risk = cst.failover.active();
  report({"", "cabinet_failover_risk", cab.id,
          cs.failover_risk ? OverloadState::kWarning : OverloadState::kOk, cs.failover_worst_w,
          0.0, "W"},
         [&] {
           const std::string head = "cabinet " + cab.id + ": if one feed fails, ";
           if (!cs.failover_worst_w) {
             return head + "the other carries an unknown load against a derated capacity of " +
                    fixed(derated, 0) + " W";
           }
           const bool phase = cs.failover_worst.rfind("phase ", 0) == 0;
           const double cap = phase ? derated / 3.0 : derated;
           const double load = cap - *cs.failover_worst_w;
           return head + (phase ? cs.failover_worst + " of the other feed" : "the other feed") +
                  " carries " + fixed(load, 0) + " W against a derated capacity of " +
                  fixed(cap, 0) + " W (" + percent(cab.derating) + " of " +
                  fixed(cab.feed_capacity_w, 0) + " W" + (phase ? " / 3" : "") + "): " +
                  fixed(*cs.failover_worst_w, 0) + " W headroom";
         });
}

// Inlet temperature against the ASHRAE ranges.
void update_inlet(const Cabinet& cab, const InletSettings& in, CabinetSnapshot& cs,
                  CabinetState& cst, TimePoint now, const Reporter& report) {
  LevelAlarm::Conditions w{}, c{};
  if (cs.inlet_c && cs.inlet_min_c) {
    const double hi = *cs.inlet_c, lo = *cs.inlet_min_c, h = in.hysteresis_c;
    w = {hi > in.recommended_high_c || lo < in.recommended_low_c,
         hi <= in.recommended_high_c - h && lo >= in.recommended_low_c + h};
    c = {hi > in.allowable_high_c || lo < in.allowable_low_c,
         hi <= in.allowable_high_c - h && lo >= in.allowable_low_c + h};
  }
  cst.inlet.update(w, c, now, in.hold);
  cs.inlet_state = cst.inlet.level();
  const bool low = cs.inlet_min_c && cs.inlet_c && *cs.inlet_min_c < in.recommended_low_c &&
                   *cs.inlet_c <= in.recommended_high_c;
  const bool crit = cs.inlet_state == OverloadState::kCritical;
  const double threshold = low ? (crit ? in.allowable_low_c : in.recommended_low_c)
                               : (crit ? in.allowable_high_c : in.recommended_high_c);
  report({"", "inlet_temperature", cab.id, cs.inlet_state, low ? cs.inlet_min_c : cs.inlet_c,
          threshold, "celsius"},
         [&] {
           return "cabinet " + cab.id + " inlet " +
                  (cs.inlet_c ? fixed(low ? *cs.inlet_min_c : *cs.inlet_c, 1) + " degC"
                              : std::string("unknown")) +
                  " (ASHRAE " + in.ashrae_class + ": recommended " +
                  fixed(in.recommended_low_c, 0) + "-" + fixed(in.recommended_high_c, 0) +
                  " degC, allowable " + fixed(in.allowable_low_c, 0) + "-" +
                  fixed(in.allowable_high_c, 0) + " degC)";
         });
}

// Cooling redundancy of one room.
void update_cooling(const FacilitySettings& fs, RoomSnapshot& rs, LevelAlarm& alarm,
                    TimePoint now, const Reporter& report) {
  const CoolingCapacity& cc = rs.cooling;
  LevelAlarm::Conditions w{}, c{};
  const double margin = fs.failover.hysteresis * cc.n_plus_1_w.value_or(0.0);
  if (cc.headroom_n_plus_1_w) w = {*cc.headroom_n_plus_1_w < 0, *cc.headroom_n_plus_1_w >= margin};
  if (cc.headroom_w) c = {*cc.headroom_w < 0, *cc.headroom_w >= margin};
  alarm.update(w, c, now, fs.failover.hold);
  rs.cooling_state = alarm.level();
  const bool crit = rs.cooling_state == OverloadState::kCritical;
  const std::optional<double> headroom = crit ? cc.headroom_w : cc.headroom_n_plus_1_w;
  report({"", "cooling_redundancy", rs.room->id, rs.cooling_state, headroom, 0.0, "W"}, [&] {
    return "room " + rs.room->id + ": " + std::to_string(cc.units_running) + " of " +
           std::to_string(cc.units) + " cooling units running; " +
           (crit ? "running capacity" : "capacity without the largest unit (N+1)") +
           " minus IT heat load = " +
           (headroom ? fixed(*headroom, 0) + " W" : std::string("unknown"));
  });
}

using UpsState = FacilityModel::State::UpsState;

// A UPS's four alerts: overload (load ratio, or the UPS's own flag: critical), low runtime,
// on battery (critical), on bypass (warning). Subject: the device id.
void update_ups(const UpsAlertSettings& us, UpsSnapshot& u, UpsState& st, TimePoint now,
                const Reporter& report) {
  const std::string& id = u.device->id;
  const auto& ov = us.overload;
  const auto& l = u.load_ratio;
  const auto& f = u.overload_flag;
  LevelAlarm::Conditions w{}, c{};
  if (l) w = {*l >= ov.warning, *l < ov.warning - ov.hysteresis};
  if (l || f) {
    const bool flagged = f.value_or(false);
    c = {flagged || (l && *l >= ov.critical), !flagged && (!l || *l < ov.critical - ov.hysteresis)};
  }
  st.overload.update(w, c, now, ov.hold);
  u.overload = st.overload.level();
  report({"", "ups_overload", id, u.overload, l,
          u.overload == OverloadState::kCritical ? ov.critical : ov.warning, "ratio"},
         [&] {
           return "ups " + id + " output load " + (l ? percent(*l) : std::string("unknown")) +
                  (f && *f ? " (the UPS reports an overload)" : "") + " (warning from " +
                  percent(ov.warning) + ", critical from " + percent(ov.critical) + ")";
         });
  const auto secs = [](std::chrono::milliseconds m) { return m.count() / 1000.0; };
  LevelAlarm::Conditions rw{}, rc{};
  if (u.runtime_s) {
    const double t = *u.runtime_s, h = secs(us.runtime_hysteresis);
    rw = {t < secs(us.runtime_warning), t >= secs(us.runtime_warning) + h};
    rc = {t < secs(us.runtime_critical), t >= secs(us.runtime_critical) + h};
  }
  st.runtime.update(rw, rc, now, us.runtime_hold);
  u.runtime_state = st.runtime.level();
  const bool crit = u.runtime_state == OverloadState::kCritical;
  report({"", "ups_runtime_low", id, u.runtime_state, u.runtime_s,
          secs(crit ? us.runtime_critical : us.runtime_warning), "s"},
         [&] {
           return "ups " + id + " battery runtime " +
                  (u.runtime_s ? fixed(*u.runtime_s / 60.0, 1) + " min" : std::string("unknown")) +
                  " (warning below " + fixed(secs(us.runtime_warning) / 60.0, 1) +
                  " min, critical below " + fixed(secs(us.runtime_critical) / 60.0, 1) + " min)";
         });
  auto hold_flag = [&](HoldAlarm& a, const std::optional<bool>& on, std::chrono::milliseconds hold,
                       const char* kind, OverloadState level, const char* what) {
    std::optional<bool> raise, clear;
    if (on) {
      raise = *on;
      clear = !*on;
    }
    a.update(raise, clear, now, hold);
    report({"", kind, id, a.active() ? level : OverloadState::kOk,
            on ? std::optional<double>(*on ? 1.0 : 0.0) : std::nullopt, 1.0, "none"},
           [&] {
             return "ups " + id + " " + what +
                    (u.output_source.empty() ? "" : " (output source: " + u.output_source + ")");
           });
    return a.active();
  };
  u.on_battery_alert = hold_flag(st.on_battery, u.on_battery, us.on_battery_hold, "ups_on_battery",
                                 OverloadState::kCritical, "output on battery");
  u.on_bypass_alert = hold_flag(st.on_bypass, u.on_bypass, us.on_bypass_hold, "ups_on_bypass",
                                OverloadState::kWarning, "output on bypass");
}

// The energy-counter events of every tracked device, onto its DeviceSnapshot.
void record_counter_events(const std::vector<EnergySeries>& series,
                           std::unordered_map<std::string, DeviceSnapshot*>& device_snaps) {
  for (const auto& s : series) {
    for (const auto& m : s.members()) {
      auto it = device_snaps.find(m.device);
      if (it == device_snaps.end() || !m.tracker) continue;
      it->second->counter_tracked = true;
      it->second->counter_wraps = m.tracker->wraps;
      it->second->counter_resets = m.tracker->resets;
      it->second->counter_rejected = m.tracker->rejected;
    }
  }
}

}  // namespace

std::shared_ptr<const FacilitySnapshot> FacilityModel::update(
    const std::unordered_map<std::string, ReadingStore::Entry>& readings, TimePoint now) {
  auto snap = model_detail::build_snapshot(config_, readings, now);
  State& st = *state_;
  if (!st.started) st.started = now;
  snap->model_uptime_s = std::chrono::duration<double>(now - *st.started).count();

  std::unordered_map<std::string, DeviceSnapshot*> device_snaps;
  for (auto& d : snap->devices) device_snaps[d.device->id] = &d;

  for (std::size_t si = 0; si < snap->sites.size(); ++si) {
    SiteSnapshot& ss = snap->sites[si];
    const Site& site = *ss.site;
    const FacilitySettings& fs = site.facility;
    State::SiteState& sst = st.sites[si];
    const Reporter report{st.alerts, site.id, now, fs.alert_retention};
    for (std::size_t ci = 0; ci < ss.cabinets.size(); ++ci) {
      CabinetSnapshot& cs = ss.cabinets[ci];
      const Cabinet& cab = *cs.cabinet;
      State::CabinetState& cst = sst.cabinets[ci];
      update_overload(cab, cs, cst, now, report);
      update_failover(cab, fs, cs, cst, now, report);
      update_inlet(cab, fs.inlet, cs, cst, now, report);
      // Peak power over the peak window, for stranded power.
      if (cs.power_w) cst.peak.add(now, *cs.power_w, fs.peak_window);
      cst.peak.trim(now, fs.peak_window);
      cs.peak_w = cst.peak.max();
    }
    model_detail::compute_stranded(ss);
    for (std::size_t ri = 0; ri < ss.rooms.size(); ++ri) {
      update_cooling(fs, ss.rooms[ri], sst.rooms[ri], now, report);
    }
    for (std::size_t ui = 0; ui < ss.ups.size() && ui < sst.ups.size(); ++ui) {
      update_ups(fs.ups, ss.ups[ui], sst.ups[ui], now, report);
    }
    update_energy(sst.energy, ss, readings, now);
    energy_results(site, sst.energy, ss);
    for (std::size_t k = 0; k < sst.energy.size() && k < ss.energy.size(); ++k) {
      for (const auto& p : sst.energy[k].take_finalized())
        ss.energy[k].new_points.push_back({p.t, p.energy_j, p.lost_s, p.down_s});
    }
    record_counter_events(sst.energy, device_snaps);
  }
  st.alerts.collect(now, snap->alerts);
  return snap;
}

std::vector<FacilityModel::EnergySeriesKey> FacilityModel::energy_series() const {
  std::vector<EnergySeriesKey> out;
  for (std::size_t si = 0; si < state_->sites.size() && si < config_->sites.size(); ++si) {
    const auto& windows = config_->sites[si].facility.pue_windows;
    for (const auto& s : state_->sites[si].energy) {
      out.push_back({config_->sites[si].id, s.role(), s.members_key(),
                     windows.empty() ? Millis(0) : windows.back()});
    }
  }
  return out;
}

std::size_t FacilityModel::restore_energy(const std::string& site, const std::string& role,
                                          const std::vector<EnergyGridPoint>& points,
                                          TimePoint now) {
  for (std::size_t si = 0; si < state_->sites.size() && si < config_->sites.size(); ++si) {
    if (config_->sites[si].id != site) continue;
    for (auto& s : state_->sites[si].energy) {
      if (s.role() != role) continue;
      std::vector<EnergySeries::Point> ps;
      ps.reserve(points.size());
      for (const auto& p : points) ps.push_back({p.t, p.covered_j, p.lost_s, p.down_s});
      return s.restore(ps, now);
    }
  }
  return 0;
}

}  // namespace facility
