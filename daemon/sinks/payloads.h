// The JSON vocabulary of facilityd's entities -- a site summary, a cabinet, a cooling unit, a
// UPS, a device, an alert -- as pure functions of a FacilitySnapshot. The MQTT payloads
// (docs/mqtt.md, docs/schemas/*.json) are exactly these, and the web view's JSON API
// (daemon/web/, docs/api.md) returns the same objects, so a dashboard, a script and a DCIM read
// one truth in one shape.
//
// Values that are unknown or not finite are JSON null, never 0 and never NaN; every number is
// rounded to 15 significant digits (daemon/readings/decimal.h).
//
// Thread-safety: every function here is reentrant.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <unordered_map>

#include "daemon/model/model.h"

namespace facility {

// RFC 3339 UTC with exactly three fractional digits, e.g. "2026-11-22T04:03:19.123Z".
// Sub-millisecond parts are truncated (never rounded up into the next second). Thread-safe: no
// gmtime(), no locale.
std::string format_rfc3339_ms(TimePoint t);

// "good", "stale", "error": spelled out here rather than borrowed from to_string(Quality), so
// renaming an enum value cannot silently change what dashboards receive.
const char* quality_name(Quality q);

// A site summary is "good" when every source of its IT and facility power is fresh.
Quality summary_quality(const SiteSnapshot& s);

// A payload as published: compact JSON; invalid UTF-8 (from device error strings) replaced.
std::string dump_payload(const nlohmann::json& body);

// docs/schemas/cabinet.json
nlohmann::json cabinet_json(const SiteSnapshot& site, const CabinetSnapshot& cs,
                            const std::string& ts);
// docs/schemas/summary.json
nlohmann::json summary_json(const SiteSnapshot& s, const std::string& ts);
// docs/schemas/cooling.json; `ds` is the unit's device entry (null: reported stale)
nlohmann::json cooling_json(const std::string& site_id, const CoolingSnapshot& cs,
                            const DeviceSnapshot* ds, const std::string& ts);
// docs/schemas/ups.json
nlohmann::json ups_json(const std::string& site_id, const UpsSnapshot& u, const DeviceSnapshot* ds,
                        const std::string& ts);
// docs/schemas/device.json
nlohmann::json device_json(const DeviceSnapshot& ds, const std::string& ts);
// docs/schemas/alert.json; `quality`: of the alert's subject (AlertSubjectQuality)
nlohmann::json alert_json(const AlertState& a, const std::string& quality, const std::string& ts);

// The quality of the data behind an alert: its subject's current quality (a cabinet, a device,
// or the site's summary); a subject that is no entity (rare) is "good" when the alert carries a
// value, else "stale". Indexed once per snapshot, for every alert of it.
class AlertSubjectQuality {
 public:
  // The subjects of `site` ("" = every site).
  AlertSubjectQuality(const FacilitySnapshot& snap, const std::string& site = "");
  const char* of(const AlertState& a) const;

 private:
  std::unordered_map<std::string, Quality> by_subject_;  // site '\n' subject
};

}  // namespace facility
