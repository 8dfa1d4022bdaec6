#include <regex>

#include "daemon/config_reader.h"

namespace facility::config_detail {

void parse_mqtt_settings(Diagnostics& d, const YAML::Node& node, MqttSettings& out) {
  MapReader r(d, node, "mqtt",
              {"enabled", "broker", "client_id", "topic_prefix", "qos", "publish_interval",
               "keepalive"});
  if (auto v = r.boolean("enabled")) out.enabled = *v;
  if (auto v = r.str("broker")) {
    static const std::regex re(R"(^(tcp|mqtt|ssl|mqtts|ws|wss)://[^\s:/]+:[0-9]{1,5}$)");
    if (!std::regex_match(*v, re)) {
      d.error(r.get("broker"), "mqtt: broker \"" + *v + "\" must look like tcp://HOST:PORT");
    }
    out.broker = *v;
  }
  if (auto v = r.str("client_id")) out.client_id = *v;
  if (auto v = r.str("topic_prefix")) {
    if (v->empty() || v->find_first_of("#+") != std::string::npos || v->back() == '/') {
      d.error(r.get("topic_prefix"), "mqtt: topic_prefix must be non-empty, without '#', '+' or a trailing '/'");
    }
    out.topic_prefix = *v;
  }
  if (auto v = r.integer("qos", 0, 2)) out.qos = int(*v);
  if (auto v = r.duration("publish_interval")) out.publish_interval = *v;
  if (auto v = r.duration("keepalive")) out.keepalive = *v;
}

}  // namespace facility::config_detail
