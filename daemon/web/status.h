// What the NOC view derives from a snapshot beyond the model's own numbers, computed once here
// so the HTML pages and the JSON API (daemon/web/pages.h, api.h) can never disagree: the site's
// best energy PUE, devices up, active alerts by severity, headroom in cabinets, each cabinet's
// display level.
//
// Thread-safety: pure functions of an immutable snapshot.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "daemon/model/model.h"

namespace facility::web {

// The energy PUE of the site's longest configured window that is published (its coverage met
// facility.pue_min_coverage), in the site's primary category.
struct EnergyPue {
  std::string window;  // "24h"
  double pue = 0;
  int category = 1;
};

struct SiteStatus {
  const SiteSnapshot* site = nullptr;
  std::optional<EnergyPue> energy_pue;
  // Devices this daemon polls; up = facility_device_up: fresh data with at least one value
  // (state up or partial).
  int devices_up = 0, devices_total = 0;
  int alerts_critical = 0, alerts_warning = 0;
  std::optional<double> headroom_w;         // rated - measured (every cabinet measured)
  std::optional<double> headroom_cabinets;  // headroom_w / facility.cabinet_equivalent_w
};
SiteStatus site_status(const FacilitySnapshot& snap, const SiteSnapshot& site);

// Raised alerts this daemon serves (owned_alert), newest first; site "" = every site.
std::vector<const AlertState*> active_alerts(const FacilitySnapshot& snap,
                                             const std::string& site = "");

// How a cabinet tile is coloured: its utilisation now against its own thresholds (its class's,
// as the report's bands and its overload alert use), or "nodata" when its power is unknown
// (never shown as 0 W).
enum class Level { kNoData, kOk, kWarning, kCritical, kOtherShard };
Level cabinet_level(const CabinetSnapshot& cs);
const char* to_string(Level l);  // "nodata", "ok", "warning", "critical", "other_shard"

// Sharding (daemon.shard): a daemon shows what it polls and serves, as its /metrics does. The
// cabinets and devices of other shards are marked as such (a tile says "other shard", device
// lists skip them), never shown as "no data" or "down"; the site's own figures (IT and facility
// power, PUE) are complete on the site's home shard.
bool owned(const FacilitySnapshot& snap, const Device& d);
bool owned_cabinet(const FacilitySnapshot& snap, const std::string& site, const Cabinet& c);
bool owned_alert(const FacilitySnapshot& snap, const AlertState& a);
// "" when not sharded, else e.g. "shard 1/2".
std::string shard_text(const FacilitySnapshot& snap);
// The level with its alert: "critical", "critical, alert pending" (the alert's hold time has not
// passed yet), "ok, warning alert until it clears" (hysteresis), "no data".
std::string level_text(const CabinetSnapshot& cs);
// The worst feed or phase could not carry the load if the other feed failed: now, or as the
// held cabinet_failover_risk alert.
bool failover_risk(const CabinetSnapshot& cs);

const SiteSnapshot* find_site(const FacilitySnapshot& snap, const std::string& id);
const CabinetSnapshot* find_cabinet(const SiteSnapshot& site, const std::string& id);
// Every device of a snapshot by id: built once per page or answer, so that a page listing many
// devices (cooling units, UPSs, alert subjects) never scans the thousands of device snapshots
// once per row.
class DeviceIndex {
 public:
  explicit DeviceIndex(const FacilitySnapshot& snap);
  const DeviceSnapshot* find(std::string_view id) const;  // null: no such device

 private:
  std::unordered_map<std::string_view, const DeviceSnapshot*> by_id_;
};

// Counts of device states per kind (devices this daemon polls), for the device health page and
// the API.
struct StateCounts {
  int up = 0, partial = 0, no_data = 0, down = 0;
  int total() const { return up + partial + no_data + down; }
};
// site "" = every site.
std::vector<std::pair<std::string, StateCounts>> device_counts(const FacilitySnapshot& snap,
                                                               const std::string& site = "");

}  // namespace facility::web
