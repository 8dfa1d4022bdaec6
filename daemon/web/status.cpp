#include "daemon/web/status.h"

#include <algorithm>
#include <map>

#include "daemon/config/device_kinds.h"
#include "daemon/config/shard.h"

namespace facility::web {

SiteStatus site_status(const FacilitySnapshot& snap, const SiteSnapshot& site) {
  SiteStatus st;
  st.site = &site;
  const Site& cfg = *site.site;
  // Longest window first: the most representative published figure (ISO/IEC 30134-2 wants a
  // year; the longest window is what facilityd has).
  auto windows = cfg.facility.pue_windows;
  std::sort(windows.rbegin(), windows.rend());
  for (const auto& w : windows) {
    const std::string label = window_label(w);
    for (const auto& p : site.pue_values) {
      if (p.category == site.pue_category && p.window == label && p.pue) {
        st.energy_pue = EnergyPue{label, *p.pue, p.category};
        break;
      }
    }
    if (st.energy_pue) break;
  }
  for (const auto& d : snap.devices) {
    if (!d.device || d.device->site != cfg.id || !owned(snap, *d.device)) continue;
    ++st.devices_total;
    if (d.up) ++st.devices_up;
  }
  for (const auto& a : snap.alerts) {
    if (a.site != cfg.id || !a.raised || !owned_alert(snap, a)) continue;
    if (a.severity == "critical")
      ++st.alerts_critical;
    else
      ++st.alerts_warning;
  }
  st.headroom_w = site.capacity.headroom_w;
  if (st.headroom_w && cfg.facility.cabinet_equivalent_w > 0) {
    st.headroom_cabinets = *st.headroom_w / cfg.facility.cabinet_equivalent_w;
  }
  return st;
}

std::vector<const AlertState*> active_alerts(const FacilitySnapshot& snap,
                                             const std::string& site) {
  std::vector<const AlertState*> out;
  for (const auto& a : snap.alerts) {
    if (a.raised && (site.empty() || a.site == site) && owned_alert(snap, a)) out.push_back(&a);
  }
  std::stable_sort(out.begin(), out.end(), [](const AlertState* a, const AlertState* b) {
    if (a->since != b->since) return a->since > b->since;
    return (a->severity == "critical") > (b->severity == "critical");
  });
  return out;
}

Level cabinet_level(const CabinetSnapshot& cs) {
  if (!cs.utilization) return Level::kNoData;
  const OverloadSettings& o = cs.cabinet->overload;
  if (*cs.utilization >= o.critical) return Level::kCritical;
  if (*cs.utilization >= o.warning) return Level::kWarning;
  return Level::kOk;
}

std::string level_text(const CabinetSnapshot& cs) {
  const Level band = cabinet_level(cs);
  const int alert = int(cs.overload);  // 0 ok, 1 warning, 2 critical: as Level - 1
  std::string t = band == Level::kNoData ? "no data" : to_string(band);
  if (band == Level::kNoData) {
    if (alert > 0) t += std::string(", ") + to_string(cs.overload) + " alert held";
    return t;
  }
  const int now = int(band) - 1;
  if (alert < now) t += ", alert pending";
  if (alert > now) t += std::string(", ") + to_string(cs.overload) + " alert until it clears";
  return t;
}

bool failover_risk(const CabinetSnapshot& cs) {
  return cs.failover_risk || (cs.failover_margin && *cs.failover_margin < 0);
}

const char* to_string(Level l) {
  switch (l) {
    case Level::kNoData:
      return "nodata";
    case Level::kOk:
      return "ok";
    case Level::kWarning:
      return "warning";
    case Level::kCritical:
      return "critical";
    case Level::kOtherShard:
      return "other_shard";
  }
  return "nodata";
}

bool owned(const FacilitySnapshot& snap, const Device& d) {
  return !snap.config || owns_device(snap.config->daemon.shard, d);
}

bool owned_cabinet(const FacilitySnapshot& snap, const std::string& site, const Cabinet& c) {
  return !snap.config || owns_cabinet(snap.config->daemon.shard, site, c.id);
}

// The rule /metrics follows (facility_alert_raised_timestamp_seconds): a UPS's alerts belong to
// its site's home shard, a cabinet's to the cabinet's shard; a room's cooling_redundancy alert
// is left out on every shard (no shard sees the whole room's load).
bool owned_alert(const FacilitySnapshot& snap, const AlertState& a) {
  if (!snap.config || !snap.config->daemon.shard.sharded()) return true;
  const ShardSettings& shard = snap.config->daemon.shard;
  if (a.kind.rfind("ups_", 0) == 0) return owns_site_home(shard, a.site);
  if (a.kind == "cooling_redundancy") return false;
  return owns_cabinet(shard, a.site, a.subject);
}

std::string shard_text(const FacilitySnapshot& snap) {
  if (!snap.config || !snap.config->daemon.shard.sharded()) return "";
  return "shard " + snap.config->daemon.shard.text();
}

const SiteSnapshot* find_site(const FacilitySnapshot& snap, const std::string& id) {
  for (const auto& s : snap.sites)
    if (s.site && s.site->id == id) return &s;
  return nullptr;
}

const CabinetSnapshot* find_cabinet(const SiteSnapshot& site, const std::string& id) {
  for (const auto& c : site.cabinets)
    if (c.cabinet && c.cabinet->id == id) return &c;
  return nullptr;
}

DeviceIndex::DeviceIndex(const FacilitySnapshot& snap) {
  by_id_.reserve(snap.devices.size());
  for (const auto& d : snap.devices)
    if (d.device) by_id_.emplace(d.device->id, &d);
}

const DeviceSnapshot* DeviceIndex::find(std::string_view id) const {
  const auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : it->second;
}

std::vector<std::pair<std::string, StateCounts>> device_counts(const FacilitySnapshot& snap,
                                                               const std::string& site) {
  std::map<std::string, StateCounts> by_kind;
  for (const auto& d : snap.devices) {
    if (!d.device || (!site.empty() && d.device->site != site) || !owned(snap, *d.device)) continue;
    StateCounts& c = by_kind[kind_info(d.device->kind).name];
    switch (d.state) {
      case DeviceState::kUp:
        ++c.up;
        break;
      case DeviceState::kPartial:
        ++c.partial;
        break;
      case DeviceState::kNoData:
        ++c.no_data;
        break;
      case DeviceState::kDown:
        ++c.down;
        break;
    }
  }
  return {by_kind.begin(), by_kind.end()};
}

}  // namespace facility::web
