#include "daemon/sinks/mqtt/render.h"

#include <spdlog/spdlog.h>

#include <cmath>
#include <cstdio>
#include <optional>
#include <set>
#include <unordered_map>

#include "daemon/readings/decimal.h"

namespace facility {

namespace {

using nlohmann::json;

void warn_invalid(const char* what, const std::string& id) {
  spdlog::warn("mqtt: {} id \"{}\" cannot be an MQTT topic level ('/', '+', '#' or empty); "
               "not published",
               what, id);
}

const SiteSnapshot* find_site(const FacilitySnapshot& snap, const std::string& site_id) {
  for (const auto& s : snap.sites)
    if (s.site && s.site->id == site_id) return &s;
  return nullptr;
}

// Sites in snapshot order, then any site that only appears through its devices or alerts.
std::vector<std::string> site_order(const FacilitySnapshot& snap) {
  std::vector<std::string> order;
  std::set<std::string> seen;
  for (const auto& s : snap.sites)
    if (s.site && seen.insert(s.site->id).second) order.push_back(s.site->id);
  for (const auto& d : snap.devices)
    if (d.device && seen.insert(d.device->site).second) order.push_back(d.device->site);
  for (const auto& a : snap.alerts)
    if (seen.insert(a.site).second) order.push_back(a.site);
  return order;
}

void to_strings(std::vector<RenderedMessage>& in, std::vector<MqttMessage>& out) {
  for (auto& r : in)
    out.push_back(MqttMessage{std::move(r.site), std::move(r.topic), dump_payload(r.body), true,
                              r.kind});
  in.clear();
}

}  // namespace

const char* to_string(MqttTopicKind k) {
  switch (k) {
    case MqttTopicKind::kSummary: return "summary";
    case MqttTopicKind::kCabinet: return "cabinet";
    case MqttTopicKind::kCooling: return "cooling";
    case MqttTopicKind::kDevice: return "device";
    case MqttTopicKind::kAlert: return "alert";
    case MqttTopicKind::kUps:
      return "ups";
  }
  return "?";
}


bool is_valid_topic_level(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c == '/' || c == '+' || c == '#' || c == '\0') return false;
  return true;
}

bool is_valid_topic_prefix(const std::string& p) {
  if (p.empty() || p.front() == '$') return false;  // $-topics belong to the broker
  std::size_t start = 0;
  for (;;) {
    const std::size_t slash = p.find('/', start);
    const std::string level = p.substr(start, slash == std::string::npos ? slash : slash - start);
    if (!is_valid_topic_level(level)) return false;  // also rejects "a//b", "/a", "a/"
    if (slash == std::string::npos) return true;
    start = slash + 1;
  }
}

std::string mqtt_status_topic(const std::string& prefix, const std::string& site) {
  return prefix + "/" + site + "/status";
}

// Error strings come from devices and libraries and may not be valid UTF-8; a throwing dump()
// would lose the whole snapshot, so invalid bytes are replaced.
void render_state(const FacilitySnapshot& snap, const std::string& prefix,
                  const std::string& site_id, std::vector<RenderedMessage>& out) {
  render_state(snap, prefix, site_id, [&out](RenderedMessage&& m) { out.push_back(std::move(m)); });
}

void render_state(const FacilitySnapshot& snap, const std::string& prefix,
                  const std::string& site_id, const std::function<void(RenderedMessage&&)>& out) {
  if (!is_valid_topic_level(site_id)) {
    warn_invalid("site", site_id);
    return;
  }
  const std::string ts = format_rfc3339_ms(snap.computed_at);
  const std::string base = prefix + "/" + site_id + "/";
  const auto add = [&](MqttTopicKind kind, const std::string& id, json body) {
    out(RenderedMessage{site_id, base + to_string(kind) + "/" + id, kind, std::move(body)});
  };

  std::unordered_map<const Device*, const DeviceSnapshot*> device_by_ptr;
  for (const auto& ds : snap.devices)
    if (ds.device) device_by_ptr.emplace(ds.device, &ds);

  if (const SiteSnapshot* s = find_site(snap, site_id)) {
    out(RenderedMessage{site_id, base + "summary", MqttTopicKind::kSummary, summary_json(*s, ts)});
    for (const auto& cs : s->cabinets) {
      if (!cs.cabinet) continue;
      if (!is_valid_topic_level(cs.cabinet->id)) {
        warn_invalid("cabinet", cs.cabinet->id);
        continue;
      }
      add(MqttTopicKind::kCabinet, cs.cabinet->id, cabinet_json(*s, cs, ts));
    }
    // Cooling units and UPSs: a topic per device, rendered with the device's own snapshot.
    const auto per_device = [&](MqttTopicKind kind, const Device* d, const auto& body) {
      if (!d) return;
      if (!is_valid_topic_level(d->id)) {
        warn_invalid("device", d->id);
        return;
      }
      const auto it = device_by_ptr.find(d);
      add(kind, d->id, body(it == device_by_ptr.end() ? nullptr : it->second));
    };
    for (const auto& cs : s->cooling) {
      per_device(MqttTopicKind::kCooling, cs.device,
                 [&](const DeviceSnapshot* ds) { return cooling_json(site_id, cs, ds, ts); });
    }
    for (const auto& u : s->ups) {
      per_device(MqttTopicKind::kUps, u.device,
                 [&](const DeviceSnapshot* ds) { return ups_json(site_id, u, ds, ts); });
    }
  }
  for (const auto& ds : snap.devices) {
    if (!ds.device || ds.device->site != site_id) continue;
    if (!is_valid_topic_level(ds.device->id)) {
      warn_invalid("device", ds.device->id);
      continue;
    }
    add(MqttTopicKind::kDevice, ds.device->id, device_json(ds, ts));
  }
}

void render_alerts(const FacilitySnapshot& snap, const std::string& prefix,
                   const std::string& site_id, std::vector<RenderedMessage>& out) {
  if (!is_valid_topic_level(site_id)) return;  // warned by render_state
  const std::string ts = format_rfc3339_ms(snap.computed_at);
  // Built only when the site has alerts.
  std::optional<AlertSubjectQuality> quality;
  for (const auto& a : snap.alerts) {
    if (a.site != site_id) continue;
    if (!is_valid_topic_level(a.kind) || !is_valid_topic_level(a.subject)) {
      warn_invalid("alert kind/subject", a.kind + "/" + a.subject);
      continue;
    }
    if (!quality) quality.emplace(snap, site_id);
    out.push_back(RenderedMessage{site_id,
                                  prefix + "/" + site_id + "/alert/" + a.kind + "/" + a.subject,
                                  MqttTopicKind::kAlert, alert_json(a, quality->of(a), ts)});
  }
}

std::vector<MqttMessage> render_site_messages(const FacilitySnapshot& snap,
                                              const std::string& prefix,
                                              const std::string& site) {
  std::vector<RenderedMessage> r;
  std::vector<MqttMessage> out;
  render_state(snap, prefix, site, r);
  render_alerts(snap, prefix, site, r);
  to_strings(r, out);
  return out;
}

std::vector<MqttMessage> render_messages(const FacilitySnapshot& snap, const std::string& prefix) {
  std::vector<MqttMessage> out;
  for (const auto& site : site_order(snap)) {
    auto msgs = render_site_messages(snap, prefix, site);
    std::move(msgs.begin(), msgs.end(), std::back_inserter(out));
  }
  return out;
}

}  // namespace facility
