// The MQTT payload contract (docs/mqtt.md, docs/schemas/*.json) on the C++ side: a pure function
// from a FacilitySnapshot to topics and JSON payloads (the bodies: daemon/sinks/payloads.h). No
// broker, no state, no clock.
//
// Thread-safety: every function here is reentrant.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "daemon/model/model.h"
#include "daemon/readings/readings.h"
#include "daemon/sinks/payloads.h"

namespace facility {

// Topic kinds; each has its JSON Schema docs/schemas/<name>.json (status is plain text).
enum class MqttTopicKind { kSummary, kCabinet, kCooling, kDevice, kAlert, kUps };
// "summary", "cabinet", "cooling", "device", "alert", "ups"
const char* to_string(MqttTopicKind k);

// One message to publish. `site` says which site's connection carries it. Every message
// facilityd publishes is retained: each topic holds the current state of one entity.
struct MqttMessage {
  std::string site;
  std::string topic;
  std::string payload;
  bool retained = true;
  MqttTopicKind kind = MqttTopicKind::kSummary;
};

// A message before serialisation: the publisher compares bodies (deadbands) before it spends
// time on dump().
struct RenderedMessage {
  std::string site;
  std::string topic;
  MqttTopicKind kind = MqttTopicKind::kSummary;
  nlohmann::json body;
};

// format_rfc3339_ms() and the payload bodies: daemon/sinks/payloads.h.

// True if `s` can be used as one MQTT topic level: non-empty, valid UTF-8 is assumed (ids come
// from YAML), and no '/', '+', '#' or NUL. A wildcard in a PUBLISH topic makes brokers drop the
// connection, so such ids must never reach Paho.
bool is_valid_topic_level(const std::string& s);

// A prefix of one or more topic levels: no empty level, no wildcard, no leading '$'.
bool is_valid_topic_prefix(const std::string& p);

// "<prefix>/<site>/status"
std::string mqtt_status_topic(const std::string& prefix, const std::string& site);


// State messages of one site, in publish order: summary, cabinets, cooling, UPSs, devices. Entities
// whose id is not a valid topic level are skipped (with a warning log). Values that are unknown
// or not finite are JSON null, never 0 and never NaN.
void render_state(const FacilitySnapshot& snap, const std::string& prefix,
                  const std::string& site, std::vector<RenderedMessage>& out);
// The same, one message at a time: each body can be compared, serialised and freed before the
// next is built (the publisher; a 6,000-device site would otherwise hold ~9,000 JSON trees).
void render_state(const FacilitySnapshot& snap, const std::string& prefix, const std::string& site,
                  const std::function<void(RenderedMessage&&)>& out);

// One message per AlertState of the site (raised, or cleared and not yet forgotten by the
// model): <prefix>/<site>/alert/<kind>/<subject>.
void render_alerts(const FacilitySnapshot& snap, const std::string& prefix,
                   const std::string& site, std::vector<RenderedMessage>& out);

// Every message of a snapshot as strings: for each site (in snapshot order) its state messages,
// then its alerts. Status (online/offline) is not included: it belongs to the connection.
std::vector<MqttMessage> render_messages(const FacilitySnapshot& snap, const std::string& prefix);

// Same, restricted to one site.
std::vector<MqttMessage> render_site_messages(const FacilitySnapshot& snap,
                                              const std::string& prefix,
                                              const std::string& site);

}  // namespace facility
