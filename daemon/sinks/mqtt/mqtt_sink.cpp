#include "daemon/sinks/mqtt/mqtt_sink.h"

namespace facility {

using metrics_detail::Labels;
using metrics_detail::Type;

MqttSink::MqttSink(const MqttSettings& settings, std::vector<std::string> site_ids,
                   MqttPublisherOptions options)
    : limit_messages_(settings.outbox.max_messages),
      limit_bytes_(settings.outbox.max_bytes),
      publisher_(settings, std::move(site_ids), std::move(options)) {}

void MqttSink::health(MetricWriter& out) const {
  const MqttPublisher::Stats st = publisher_.stats();
  const auto d = [](std::uint64_t v) { return static_cast<double>(v); };
  const Labels none;
  out.family("facility_mqtt_connected", "1 if every site's connection to the MQTT broker is up.",
             Type::kGauge)
      .gauge(none, st.connected ? 1.0 : 0.0);
  out.family("facility_mqtt_connects_total",
             "Successful MQTT connections (first one and every reconnect).", Type::kCounter)
      .counter(none, d(st.connects_total));
  out.family("facility_mqtt_messages_published_total",
             "MQTT messages acknowledged by the broker (QoS 1/2) or written (QoS 0), status "
             "messages included.",
             Type::kCounter)
      .counter(none, d(st.published_total));
  out.family("facility_mqtt_messages_queued_total",
             "MQTT data messages handed to the outbox; each is later published or dropped.",
             Type::kCounter)
      .counter(none, d(st.queued_total));
  out.family("facility_mqtt_messages_unchanged_total",
             "MQTT state messages not sent because no value moved beyond its deadband.",
             Type::kCounter)
      .counter(none, d(st.unchanged_total));
  auto& dropped = out.family("facility_mqtt_messages_dropped_total",
                             "MQTT messages dropped, by reason (queue_full, expired, rejected, "
                             "shutdown).",
                             Type::kCounter);
  for (const auto& [reason, n] : st.dropped_total)
    dropped.counter(Labels{{"reason", reason}}, d(n));
  out.family("facility_mqtt_queue_messages", "MQTT messages in the outbox, waiting or in flight.",
             Type::kGauge)
      .gauge(none, d(st.queue_messages));
  out.family("facility_mqtt_queue_bytes",
             "Topic and payload bytes of the MQTT messages in the outbox.", Type::kGauge)
      .gauge(none, d(st.queue_bytes));
  out.family("facility_mqtt_queue_limit_messages",
             "Bound of the MQTT outbox in messages (mqtt.outbox.max_messages).", Type::kGauge)
      .gauge(none, d(limit_messages_));
  out.family("facility_mqtt_queue_limit_bytes",
             "Bound of the MQTT outbox in bytes (mqtt.outbox.max_bytes).", Type::kGauge)
      .gauge(none, d(limit_bytes_));
  out.family("facility_mqtt_outbox_persist_errors_total",
             "Writes or deletes of the MQTT outbox journal that failed.", Type::kCounter)
      .counter(none, d(st.persist_errors_total));
  out.family("facility_mqtt_alert_snapshots_lost_total",
             "Model snapshots whose alert transitions were never published on MQTT because the "
             "publisher lagged more than 256 such snapshots behind the model.",
             Type::kCounter)
      .counter(none, d(st.alert_backlog_dropped));
}

std::shared_ptr<Sink> make_mqtt_sink(const std::shared_ptr<const Config>& config) {
  if (!config->mqtt.enabled) return nullptr;
  std::vector<std::string> site_ids;
  for (const auto& s : config->sites) site_ids.push_back(s.id);
  MqttPublisherOptions options;
  options.state_dir = config->daemon.state_dir;
  return std::make_shared<MqttSink>(config->mqtt, std::move(site_ids), std::move(options));
}

}  // namespace facility
