#include "daemon/sinks/mqtt/change_filter.h"

#include <cmath>
#include <functional>

namespace facility {

namespace {

using nlohmann::json;

std::uint64_t mix(std::uint64_t h, std::uint64_t v) {
  return h ^ (v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2));
}

std::uint64_t hash_str(const std::string& s) { return std::hash<std::string>{}(s); }

// Integer and floating-point JSON numbers compare as one type: 3 and 3.0 are the same value.
constexpr std::uint8_t kNumber = 0xFF;

std::uint8_t type_code(const json& j) {
  return j.is_number() ? kNumber : static_cast<std::uint8_t>(j.type());
}

}  // namespace

double MqttChangeFilter::deadband_for(const std::string& unit) const {
  const MqttDeadbands& d = deadbands_;
  if (unit == "W") return d.power_w;
  if (unit == "kW") return d.power_w / 1e3;
  if (unit == "Wh") return d.energy_wh;
  if (unit == "kWh") return d.energy_wh / 1e3;
  if (unit == "MWh") return d.energy_wh / 1e6;
  if (unit == "celsius") return d.temperature_c;
  if (unit == "ratio") return d.ratio;
  if (unit == "percent") return d.ratio * 100;
  if (unit == "A") return d.current_a;
  if (unit == "V") return d.voltage_v;
  if (unit == "Hz") return d.frequency_hz;
  return 0;
}

void MqttChangeFilter::flatten(const json& j, const json* units, const std::string& unit,
                               std::uint64_t path, bool top, bool exact,
                               std::vector<Leaf>& out) const {
  if (j.is_object()) {
    // A {"value": ..., "unit": ...} object (device points) gives its own unit to its numbers.
    const auto own = j.find("unit");
    const std::string& local = own != j.end() && own->is_string() ? own->get_ref<const std::string&>()
                                                                  : unit;
    // Keys are visited in sorted order (nlohmann's object is a std::map): two payloads with the
    // same fields flatten to leaves in the same order.
    for (auto it = j.begin(); it != j.end(); ++it) {
      const std::string& key = it.key();
      if (top && (key == "ts" || key == "last_success")) continue;
      const std::string* child = &local;
      if (units) {
        const auto u = units->find(key);
        if (u != units->end() && u->is_string()) child = &u->get_ref<const std::string&>();
      }
      flatten(*it, units, *child, mix(path, hash_str(key)), false, exact, out);
    }
    // An empty object is a value of its own ({} vs absent vs {"L1": ...}).
    if (j.empty()) out.push_back(Leaf{path, 0, 0, 0, type_code(j)});
    return;
  }
  if (j.is_array()) {
    std::uint64_t i = 0;
    for (const auto& e : j) flatten(e, units, unit, mix(path, ++i), false, exact, out);
    if (j.empty()) out.push_back(Leaf{path, 0, 0, 0, type_code(j)});
    return;
  }
  Leaf l;
  l.path = path;
  l.type = type_code(j);
  if (j.is_number()) {
    l.number = j.get<double>();
    l.deadband = exact ? 0 : deadband_for(unit);
  } else if (j.is_string()) {
    l.value = hash_str(j.get_ref<const std::string&>());
  } else if (j.is_boolean()) {
    l.value = j.get<bool>() ? 1 : 0;
  }
  out.push_back(l);
}

MqttChangeFilter::Verdict MqttChangeFilter::offer(const std::string& topic, const json& body,
                                                  bool force, bool exact) {
  std::vector<Leaf> leaves;
  leaves.reserve(64);
  const auto u = body.is_object() ? body.find("units") : body.end();
  const json* units = body.is_object() && u != body.end() && u->is_object() ? &*u : nullptr;
  flatten(body, units, std::string(), 0, true, exact, leaves);

  const auto it = last_.find(topic);
  if (it == last_.end()) {
    last_.emplace(topic, std::move(leaves));
    return Verdict::kChanged;
  }
  const std::vector<Leaf>& old = it->second;
  bool changed = old.size() != leaves.size();
  for (std::size_t i = 0; !changed && i < leaves.size(); ++i) {
    const Leaf& a = old[i];
    const Leaf& b = leaves[i];
    if (a.path != b.path || a.type != b.type) {
      changed = true;
    } else if (b.type == kNumber) {
      // Strictly more than the deadband: a deadband of 0 publishes every difference.
      changed = std::fabs(b.number - a.number) > b.deadband;
    } else {
      changed = a.value != b.value;
    }
  }
  if (!changed && !force) return Verdict::kUnchanged;
  it->second = std::move(leaves);
  return changed ? Verdict::kChanged : Verdict::kForced;
}

std::string MqttAlertTransitions::tuple_of(const nlohmann::json& body) {
  std::string key;
  for (const char* field : {"raised", "severity", "since"}) {
    const auto it = body.find(field);
    key += it == body.end() ? std::string("-") : it->dump();
    key += '\x1f';
  }
  return key;
}

bool MqttAlertTransitions::differs(const std::string& topic, const nlohmann::json& body) const {
  const auto it = last_.find(topic);
  return it == last_.end() || it->second != tuple_of(body);
}

bool MqttAlertTransitions::is_event(const std::string& topic, const nlohmann::json& body) {
  std::string key = tuple_of(body);
  auto [it, inserted] = last_.try_emplace(topic, key);
  if (inserted) return true;
  if (it->second == key) return false;
  it->second = std::move(key);
  return true;
}

}  // namespace facility
