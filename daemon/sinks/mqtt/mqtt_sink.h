// The MQTT publisher as a sink (daemon/sinks/sink.h): snapshots go to MqttPublisher, its
// counters come back as the facility_mqtt_* families (docs/metrics.md, "MQTT").
//
// Thread-safety: as Sink; health() reads MqttPublisher::stats(), which is thread-safe.
#pragma once

#include <memory>

#include "daemon/config/config.h"
#include "daemon/sinks/mqtt/publisher.h"
#include "daemon/sinks/sink.h"

namespace facility {

class MqttSink : public Sink {
 public:
  // Validates the settings and builds the publisher (throws like MqttPublisher's constructor).
  MqttSink(const MqttSettings& settings, std::vector<std::string> site_ids,
           MqttPublisherOptions options);

  void start() override { publisher_.start(); }
  // Every cycle: the publisher checks alerts on each snapshot and state topics every
  // mqtt.publish_interval; handing over never waits.
  void take(std::shared_ptr<const FacilitySnapshot> snap) override {
    publisher_.publish(std::move(snap));
  }
  void stop() override { publisher_.stop(); }
  void health(MetricWriter& out) const override;

 private:
  const std::uint64_t limit_messages_, limit_bytes_;
  MqttPublisher publisher_;
};

// The sink for `config` (mqtt.enabled), or null when MQTT is off.
std::shared_ptr<Sink> make_mqtt_sink(const std::shared_ptr<const Config>& config);

}  // namespace facility
