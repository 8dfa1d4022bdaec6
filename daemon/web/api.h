// The NOC view's JSON API (docs/api.md; schemas in docs/schemas/api/): the model's sites, rooms,
// cabinets, alerts and devices, so a DCIM or a script can read them without parsing Prometheus
// text. Entities are the very objects facilityd publishes on MQTT (daemon/sinks/payloads.h,
// docs/schemas/*.json); what the pages derive besides (best energy PUE, headroom in cabinets,
// devices up, alerts by severity) comes from daemon/web/status.h, as on the pages.
//
//   GET /api/v1/sites                          every site's summary and status
//   GET /api/v1/sites/<site>                   one site with rooms, cabinets, cooling, UPSs
//   GET /api/v1/sites/<site>/cabinets/<id>     one cabinet, its sensors, devices, last hour
//   GET /api/v1/alerts                         raised alerts, newest first
//   GET /api/v1/devices                        every device with its state, counts per kind
//
// Thread-safety: pure functions of an immutable snapshot.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "daemon/web/live_view.h"

namespace facility::web {

nlohmann::json api_sites(const FacilitySnapshot& snap);
// nullopt: no such site.
std::optional<nlohmann::json> api_site(const FacilitySnapshot& snap, const std::string& site);
std::optional<nlohmann::json> api_cabinet(const FacilitySnapshot& snap, const std::string& site,
                                          const std::string& cabinet,
                                          const std::vector<LiveView::Sample>& history);
nlohmann::json api_alerts(const FacilitySnapshot& snap);
nlohmann::json api_devices(const FacilitySnapshot& snap);

}  // namespace facility::web
