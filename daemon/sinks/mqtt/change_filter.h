// Change-driven publishing: decides whether a freshly rendered state message differs enough from
// the last one queued on its topic to be worth sending (docs/mqtt.md, "Publishing policy").
//
// A message counts as changed when
//   * a number moved by more than the deadband of its quantity (chosen by the number's unit:
//     the payload's "units" entry for the field or an enclosing field, or a sibling "unit" as
//     in device points), or
//   * anything else changed: a string, a boolean, null <-> number, a field appearing or going.
// Timestamps alone ("ts", "last_success") never count. The comparison is against the last
// message *accepted* on the topic, not the last one rendered, so a slow drift is published once
// it adds up to more than the deadband.
//
// Thread-safety: not thread-safe; owned by the publisher's worker thread.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <unordered_map>
#include <vector>

#include "daemon/config/mqtt.h"

namespace facility {

class MqttChangeFilter {
 public:
  explicit MqttChangeFilter(MqttDeadbands deadbands) : deadbands_(deadbands) {}

  enum class Verdict {
    kUnchanged,  // not accepted; the remembered message stays
    kChanged,    // accepted: differs from the last accepted message (or the first on the topic)
    kForced,     // accepted because `force` was set, although nothing changed
  };

  // `exact`: every number compares without deadband (alerts: their numbers only change at a
  // transition). An accepted body becomes the reference for the next call on the topic.
  Verdict offer(const std::string& topic, const nlohmann::json& body, bool force, bool exact);

  // The next offer on the topic counts as changed: its last accepted message was not delivered.
  void forget(const std::string& topic) { last_.erase(topic); }
  std::size_t size() const { return last_.size(); }

  // The deadband of a quantity in the given unit (as written in payloads), in that unit. 0 for a
  // unit without a configured deadband (any change counts).
  double deadband_for(const std::string& unit) const;

 private:
  // A payload flattened to leaves in document order: compact, and cheap to compare.
  struct Leaf {
    std::uint64_t path = 0;   // hash of the key path
    std::uint64_t value = 0;  // hash of a non-number value
    double number = 0;
    double deadband = 0;
    std::uint8_t type = 0;  // nlohmann::json::value_t
  };
  void flatten(const nlohmann::json& j, const nlohmann::json* units, const std::string& unit,
               std::uint64_t path, bool top, bool exact, std::vector<Leaf>& out) const;

  MqttDeadbands deadbands_;
  std::unordered_map<std::string, std::vector<Leaf>> last_;
};

// Which alert messages are *events* (docs/mqtt.md, "Outbox"): a change of the alert's state
// tuple (raised/cleared, severity, since), or the first message on its topic. Anything else an
// alert payload carries can change without a transition - above all `quality`, the subject's
// current data quality, which flips with every stale cycle of one PDU - and such a message is a
// state message: droppable under the outbox bound and superseded by the next one. Events are
// never dropped, so only real transitions may become events.
//
// Thread-safety: not thread-safe; owned by the publisher's worker thread.
class MqttAlertTransitions {
 public:
  // `body` is an alert payload (render.cpp's alert_json). Remembers its state tuple; true if it
  // differs from the one remembered for the topic, or the topic is new.
  bool is_event(const std::string& topic, const nlohmann::json& body);
  // Like is_event, but remembers nothing.
  bool differs(const std::string& topic, const nlohmann::json& body) const;
  std::size_t size() const { return last_.size(); }

 private:
  static std::string tuple_of(const nlohmann::json& body);
  std::unordered_map<std::string, std::string> last_;  // topic -> state tuple, serialised
};

}  // namespace facility
