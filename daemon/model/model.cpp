// The stateless model: fresh readings in base units, and the snapshot assembled from them.
// Cabinets are in cabinet.cpp, site aggregates in site.cpp, and what needs memory across cycles
// (alerts, energy windows, peaks) in state.cpp.
#include "daemon/model/model.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "daemon/model/internal.h"

namespace facility {

const char* to_string(OverloadState s) {
  switch (s) {
    case OverloadState::kWarning:
      return "warning";
    case OverloadState::kCritical:
      return "critical";
    case OverloadState::kOk:
      break;
  }
  return "ok";
}

std::string window_label(std::chrono::milliseconds w) {
  using namespace std::chrono;
  const auto s = duration_cast<seconds>(w).count();
  if (s % 86400 == 0 && s >= 2 * 86400) return std::to_string(s / 86400) + "d";
  if (s % 3600 == 0) return std::to_string(s / 3600) + "h";
  if (s % 60 == 0) return std::to_string(s / 60) + "m";
  return std::to_string(s) + "s";
}

std::optional<double> Occupancy::ratio_powered() const {
  if (total == 0 || powered_known < total) return std::nullopt;
  return double(powered) / total;
}
std::optional<double> Occupancy::ratio_sold() const {
  if (total == 0) return std::nullopt;
  return double(sold) / total;
}
std::optional<double> Occupancy::ratio_rack_units() const {
  if (u_reporting == 0 || u_total <= 0) return std::nullopt;
  return u_occupied / u_total;
}

namespace model_detail {

DeviceState device_state(bool polled_fresh, const DeviceReading* r) {
  if (!polled_fresh || !r) return DeviceState::kDown;
  if (r->with_data == 0) return DeviceState::kNoData;
  return r->unreadable > 0 ? DeviceState::kPartial : DeviceState::kUp;
}

FreshView::FreshView(const Config& cfg,
                     const std::unordered_map<std::string, ReadingStore::Entry>& rd,
                     TimePoint now) {
  for (const Device* d : cfg.all_devices()) {
    DeviceSnapshot ds;
    ds.device = d;
    auto it = rd.find(d->id);
    if (it != rd.end()) {
      const auto& e = it->second;
      ds.last_success = e.health.last_success;
      ds.last_error = e.health.last_error;
      const auto bound = d->interval * cfg.daemon.stale_after_intervals;
      const bool fresh =
          e.reading && e.health.last_success != TimePoint{} && now - e.health.last_success <= bound;
      if (fresh) {
        ds.quality = Quality::kGood;
        ds.reading = e.reading;
      } else {
        ds.quality = e.reading ? Quality::kStale : Quality::kError;
      }
      ds.state = device_state(e.health.up && fresh, e.reading.get());
      ds.up = ds.state == DeviceState::kUp || ds.state == DeviceState::kPartial;
      if (ds.state == DeviceState::kNoData) {
        ds.last_error = "answers, but no point gave a value (" +
                        std::to_string(e.reading->unreadable) +
                        " unreadable: the device refuses their addresses; the rest not "
                        "available); check the profile with `facilityd probe`";
      }
    }
    index_[d->id] = devices_.size();
    devices_.push_back(std::move(ds));
  }
}

bool FreshView::fresh(const std::string& id) const { return reading(id) != nullptr; }

const DeviceReading* FreshView::reading(const std::string& id) const {
  auto it = index_.find(id);
  return it == index_.end() ? nullptr : devices_[it->second].reading.get();
}

std::optional<double> point_value(const DeviceReading& r, const std::string& point) {
  auto p = r.points.find(point);
  if (p == r.points.end() || !p->second.value || !std::isfinite(*p->second.value)) {
    return std::nullopt;
  }
  return to_base_unit(*p->second.value, p->second.unit);
}

std::optional<double> FreshView::get(const std::string& id, const std::string& point) const {
  const DeviceReading* r = reading(id);
  return r ? point_value(*r, point) : std::nullopt;
}

SourceSum sum_points(const std::vector<const Device*>& devices, const std::string& point,
                     const FreshView& v) {
  SourceSum m;
  int ok = 0;
  for (const Device* d : devices) {
    ++m.count;
    if (auto p = v.get(d->id, point)) {
      m.partial += *p;
      ++ok;
    }
  }
  if (m.count > 0) {
    m.coverage = double(ok) / m.count;
    if (ok == m.count) m.value = m.partial;
  }
  return m;
}

std::optional<double> covered_value(const SourceSum& s, double min_coverage) {
  if (s.value) return s.value;
  if (s.count == 0 || s.coverage <= 0 || s.coverage < min_coverage) return std::nullopt;
  return s.partial / s.coverage;  // extrapolated in proportion to coverage (bound < 1 only)
}

std::shared_ptr<FacilitySnapshot> build_snapshot(
    std::shared_ptr<const Config> config,
    const std::unordered_map<std::string, ReadingStore::Entry>& readings, TimePoint now) {
  auto snap = std::make_shared<FacilitySnapshot>();
  snap->computed_at = now;
  snap->config = config;
  const Config& cfg = *config;
  FreshView view(cfg, readings, now);
  for (const Site& site : cfg.sites) {
    SiteSnapshot ss;
    compute_site(cfg, site, view, now, ss);
    snap->sites.push_back(std::move(ss));
  }
  snap->devices = view.take();
  return snap;
}

}  // namespace model_detail

std::shared_ptr<const FacilitySnapshot> compute_snapshot(
    std::shared_ptr<const Config> config,
    const std::unordered_map<std::string, ReadingStore::Entry>& readings, TimePoint now) {
  return model_detail::build_snapshot(std::move(config), readings, now);
}

}  // namespace facility
