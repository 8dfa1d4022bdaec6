// MQTT settings of the configuration. Parsed by daemon/config_mqtt.cpp; see docs/config.md.
#pragma once

#include <chrono>
#include <string>

namespace facility {

struct MqttSettings {
  bool enabled = true;
  std::string broker = "tcp://127.0.0.1:1883";
  std::string client_id = "facilityd";
  std::string topic_prefix = "facility";
  int qos = 1;
  std::chrono::milliseconds publish_interval{10000};
  std::chrono::milliseconds keepalive{30000};
};

}  // namespace facility
