// Internals shared by the model's source files (model.cpp, cabinet.cpp, site.cpp, state.cpp).
// Not a public interface: sinks use daemon/model/model.h only.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "daemon/model/model.h"

namespace facility::model_detail {

// Fresh readings of one model run, by device id, converted to base units. A device whose last
// success is older than stale_after_intervals x its interval has no values here.
class FreshView {
 public:
  FreshView(const Config& cfg, const std::unordered_map<std::string, ReadingStore::Entry>& rd,
            TimePoint now);

  bool fresh(const std::string& id) const;
  // A point in base units; nullopt if the device is not fresh or did not report the point.
  std::optional<double> get(const std::string& id, const std::string& point) const;
  const DeviceReading* reading(const std::string& id) const;  // null unless fresh
  std::vector<DeviceSnapshot> take() { return std::move(devices_); }

 private:
  std::vector<DeviceSnapshot> devices_;
  std::unordered_map<std::string, std::size_t> index_;
};

// One point of a reading in base units; nullopt if absent, "not available" or not finite.
std::optional<double> point_value(const DeviceReading& r, const std::string& point);
// up / partial / no_data / down of a device whose last poll succeeded with fresh data or not.
DeviceState device_state(bool polled_fresh, const DeviceReading* r);

// Sum of one point over a set of devices; coverage is the fraction that answered fresh.
struct SourceSum {
  std::optional<double> value;  // only when every source answered
  double partial = 0;           // sum over the sources that answered
  double coverage = 0;
  int count = 0;
};
SourceSum sum_points(const std::vector<const Device*>& devices, const std::string& point,
                     const FreshView& v);
// `value` if fully covered; else partial / coverage when coverage >= min_coverage (< 1).
std::optional<double> covered_value(const SourceSum& s, double min_coverage);

// One cabinet from its PDUs and rack sensors (cabinet.cpp).
CabinetSnapshot compute_cabinet(const Cabinet& cab, const std::vector<const Device*>& pdus,
                                const std::vector<const Device*>& sensors, const FreshView& v,
                                double powered_threshold_w, const InletSettings& inlet);
// Instantaneous levels (no hysteresis, no hold time).
OverloadState overload_level(double utilization, const OverloadSettings& s);
OverloadState inlet_level(double max_c, double min_c, const InletSettings& s);
std::optional<double> dew_point_c(double temp_c, double rh_ratio);

// A UPS from its fresh reading (ups.cpp); instantaneous alert levels with `s`.
UpsSnapshot compute_ups(const Device& d, const FreshView& v, const UpsAlertSettings& s);
// The text (enumeration name) of a point; "" if absent.
std::string point_text(const DeviceReading& r, const std::string& point);

// Site aggregates from its cabinets, rooms and meters (site.cpp).
void compute_site(const Config& cfg, const Site& site, const FreshView& v, TimePoint now,
                  SiteSnapshot& ss);
// Stranded power of the site and its rooms from the cabinets' peak_w (called again by
// FacilityModel once it has filled the peaks).
void compute_stranded(SiteSnapshot& ss);
// Category -> IT meters of the site (categories 1..3; empty when none).
std::vector<std::vector<const Device*>> it_meters_by_category(const Site& site);
// Canonical energy role name of an IT category: it_at_ups_output, it_at_pdu_output, ...
const char* it_role_name(int category);

// The whole stateless snapshot, still mutable for FacilityModel to complete.
std::shared_ptr<FacilitySnapshot> build_snapshot(
    std::shared_ptr<const Config> config,
    const std::unordered_map<std::string, ReadingStore::Entry>& readings, TimePoint now);

}  // namespace facility::model_detail
