#include "daemon/metrics.h"

#include <unistd.h>

#include <chrono>
#include <deque>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "daemon/metrics_util.h"
#include "facilityd_version.h"

namespace facility {
namespace {

using namespace metrics_detail;

double unix_seconds(TimePoint t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

// process_* metrics as the Prometheus client libraries define them, from /proc.
void process_metrics(Families& fam) {
  std::ifstream stat("/proc/self/stat");
  std::string content((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const auto rparen = content.rfind(')');
  if (rparen == std::string::npos) return;
  std::istringstream is(content.substr(rparen + 2));
  std::vector<std::string> f;
  for (std::string tok; is >> tok;) f.push_back(tok);
  // Fields after the command: f[0] = state (field 3); utime = field 14, stime = 15,
  // starttime = 22, vsize = 23, rss = 24.
  if (f.size() < 22) return;
  const double tck = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  const double cpu = (std::stod(f[11]) + std::stod(f[12])) / tck;
  counter(fam.family("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
                     MetricType::Counter),
          {}, cpu);
  gauge(fam.family("process_resident_memory_bytes", "Resident memory size in bytes.",
                   MetricType::Gauge),
        {}, std::stod(f[21]) * page);
  gauge(fam.family("process_virtual_memory_bytes", "Virtual memory size in bytes.", MetricType::Gauge),
        {}, std::stod(f[20]));
  // Boot time + start ticks gives the start time in unix seconds.
  std::ifstream ps("/proc/stat");
  for (std::string line; std::getline(ps, line);) {
    if (line.rfind("btime ", 0) == 0) {
      const double btime = std::stod(line.substr(6));
      gauge(fam.family("process_start_time_seconds",
                       "Start time of the process since unix epoch in seconds.", MetricType::Gauge),
            {}, btime + std::stod(f[19]) / tck);
      break;
    }
  }
  std::size_t fds = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++fds;
  }
  gauge(fam.family("process_open_fds", "Number of open file descriptors.", MetricType::Gauge), {},
        static_cast<double>(fds));
}

}  // namespace

std::vector<MetricFamily> render_metrics(const ExpositionSources& src) {
  Families fam;
  auto snap = src.snapshot ? src.snapshot() : nullptr;

  gauge(fam.family("facility_build_info", "facilityd build information; value is always 1.",
                   MetricType::Gauge),
        {{"version", FACILITYD_VERSION}}, 1.0);
  gauge(fam.family("facility_config_last_reload_successful",
                   "1 if the last configuration load succeeded.", MetricType::Gauge),
        {}, 1.0);
  gauge(fam.family("facility_config_last_reload_success_timestamp_seconds",
                   "Unix time of the last successful configuration load, in seconds.",
                   MetricType::Gauge),
        {}, src.config_loaded_at);

  if (snap) {
    render_facility(fam, *snap);

    auto& d_up = fam.family("facility_device_up",
                            "1 if the device's last poll succeeded and its data is fresh, else 0.",
                            MetricType::Gauge);
    auto& d_last = fam.family("facility_device_last_success_timestamp_seconds",
                              "Unix time of the device's last successful poll, in seconds.",
                              MetricType::Gauge);
    for (const auto& ds : snap->devices) {
      Labels l{{"site", ds.device->site}, {"device", ds.device->id}, {"kind", to_string(ds.device->kind)}};
      gauge(d_up, l, ds.up ? 1.0 : 0.0);
      if (ds.last_success != TimePoint{}) gauge(d_last, l, unix_seconds(ds.last_success));
    }
  }

  if (src.collector) {
    const CollectorStats& st = *src.collector;
    auto& req = fam.family("facility_modbus_requests_total",
                           "Modbus requests sent, by device, function code and result (ok, "
                           "timeout, exception_N, malformed, connection).",
                           MetricType::Counter);
    st.for_each_request([&req](const std::string& dev, int fc, std::string_view result,
                               std::uint64_t n) {
      counter(req, {{"device", dev}, {"function", std::to_string(fc)}, {"result", std::string(result)}},
              static_cast<double>(n));
    });
    auto& dur = fam.family("facility_device_poll_duration_seconds",
                           "Duration of one complete poll cycle of a device, in seconds.",
                           MetricType::Histogram);
    auto& over = fam.family("facility_modbus_poll_overruns_total",
                            "Scheduled polls of a device skipped because its previous poll had "
                            "not finished (the endpoint is too slow for the interval).",
                            MetricType::Counter);
    auto& unread = fam.family("facility_modbus_unreadable_points",
                              "Points of a device that the device rejects (illegal function or "
                              "data address): a configuration problem; their values are absent.",
                              MetricType::Gauge);
    for (std::size_t i = 0; i < st.device_ids().size(); ++i) {
      const std::string& dev = st.device_ids()[i];
      const CollectorStats::Histogram h = st.poll_duration(i);
      if (h.count > 0) {
        ClientMetric m;
        m.label = {{"device", dev}};
        m.histogram.sample_count = h.count;
        m.histogram.sample_sum = h.sum;
        std::uint64_t cum = 0;
        for (std::size_t b = 0; b < CollectorStats::kDurationBuckets.size(); ++b) {
          cum += h.buckets[b];
          m.histogram.bucket.push_back({cum, CollectorStats::kDurationBuckets[b]});
        }
        m.histogram.bucket.push_back({h.count, std::numeric_limits<double>::infinity()});
        dur.metric.push_back(std::move(m));
      }
      counter(over, {{"device", dev}}, static_cast<double>(st.overruns(i)));
      gauge(unread, {{"device", dev}}, static_cast<double>(st.unreadable_points(i)));
    }
    auto& ep_up = fam.family("facility_modbus_endpoint_up",
                             "1 while the connection to a Modbus endpoint (TCP device, gateway "
                             "or serial line) is open, else 0.",
                             MetricType::Gauge);
    auto& ep_conn = fam.family("facility_modbus_endpoint_connects_total",
                               "Connections opened to a Modbus endpoint (a fast-growing count "
                               "means the endpoint keeps dropping them).",
                               MetricType::Counter);
    for (std::size_t i = 0; i < st.endpoint_keys().size(); ++i) {
      gauge(ep_up, {{"endpoint", st.endpoint_keys()[i]}}, st.endpoint_up(i) ? 1.0 : 0.0);
      counter(ep_conn, {{"endpoint", st.endpoint_keys()[i]}},
              static_cast<double>(st.endpoint_connects(i)));
    }
  }

  if (src.mqtt) {
    const MqttStatsView m = src.mqtt();
    if (m.enabled) {
      const auto d = [](std::uint64_t v) { return static_cast<double>(v); };
      gauge(fam.family("facility_mqtt_connected",
                       "1 if every site's connection to the MQTT broker is up.",
                       MetricType::Gauge),
            {}, m.connected ? 1.0 : 0.0);
      counter(fam.family("facility_mqtt_connects_total",
                         "Successful MQTT connections (first one and every reconnect).",
                         MetricType::Counter),
              {}, d(m.connects));
      counter(fam.family("facility_mqtt_messages_published_total",
                         "MQTT messages acknowledged by the broker (QoS 1/2) or written (QoS 0), "
                         "status messages included.",
                         MetricType::Counter),
              {}, d(m.published));
      counter(fam.family("facility_mqtt_messages_queued_total",
                         "MQTT data messages handed to the outbox; each is later published or "
                         "dropped.",
                         MetricType::Counter),
              {}, d(m.queued_total));
      counter(fam.family("facility_mqtt_messages_unchanged_total",
                         "MQTT state messages not sent because no value moved beyond its "
                         "deadband.",
                         MetricType::Counter),
              {}, d(m.unchanged));
      auto& dropped = fam.family("facility_mqtt_messages_dropped_total",
                                 "MQTT messages dropped, by reason (queue_full, expired, "
                                 "rejected, shutdown).",
                                 MetricType::Counter);
      for (const auto& [reason, n] : m.dropped) counter(dropped, {{"reason", reason}}, d(n));
      gauge(fam.family("facility_mqtt_queue_messages",
                       "MQTT messages in the outbox, waiting or in flight.", MetricType::Gauge),
            {}, d(m.queued));
      gauge(fam.family("facility_mqtt_queue_bytes",
                       "Topic and payload bytes of the MQTT messages in the outbox.",
                       MetricType::Gauge),
            {}, d(m.queue_bytes));
      gauge(fam.family("facility_mqtt_queue_limit_messages",
                       "Bound of the MQTT outbox in messages (mqtt.outbox.max_messages).",
                       MetricType::Gauge),
            {}, d(m.queue_limit_messages));
      gauge(fam.family("facility_mqtt_queue_limit_bytes",
                       "Bound of the MQTT outbox in bytes (mqtt.outbox.max_bytes).",
                       MetricType::Gauge),
            {}, d(m.queue_limit_bytes));
      counter(fam.family("facility_mqtt_outbox_persist_errors_total",
                         "Writes or deletes of the MQTT outbox journal that failed.",
                         MetricType::Counter),
              {}, d(m.persist_errors));
    }
  }

  process_metrics(fam);
  return fam.take();
}

}  // namespace facility
