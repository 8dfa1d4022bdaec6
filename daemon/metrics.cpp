#include "daemon/metrics.h"

#include <prometheus/text_serializer.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "daemon/history_metrics.h"
#include "daemon/metrics_util.h"
#include "facilityd_version.h"

namespace facility {
namespace {

using namespace metrics_detail;

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
  const Labels none;
  fam.family("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
             Type::kCounter)
      .counter(none, (std::stod(f[11]) + std::stod(f[12])) / tck);
  fam.family("process_resident_memory_bytes", "Resident memory size in bytes.", Type::kGauge)
      .gauge(none, std::stod(f[21]) * page);
  fam.family("process_virtual_memory_bytes", "Virtual memory size in bytes.", Type::kGauge)
      .gauge(none, std::stod(f[20]));
  // Boot time + start ticks gives the start time in unix seconds.
  std::ifstream ps("/proc/stat");
  for (std::string line; std::getline(ps, line);) {
    if (line.rfind("btime ", 0) == 0) {
      fam.family("process_start_time_seconds",
                 "Start time of the process since unix epoch in seconds.", Type::kGauge)
          .gauge(none, std::stod(line.substr(6)) + std::stod(f[19]) / tck);
      break;
    }
  }
  std::size_t fds = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++fds;
  }
  fam.family("process_open_fds", "Number of open file descriptors.", Type::kGauge)
      .gauge(none, static_cast<double>(fds));
}

void daemon_metrics(Families& fam, const ScrapeSources& src) {
  const Labels none;
  fam.family("facility_build_info", "facilityd build information; value is always 1.",
             Type::kGauge)
      .gauge(Labels{{"version", FACILITYD_VERSION}, {"revision", FACILITYD_REVISION}}, 1.0);
  fam.family("facility_config_last_reload_successful",
             "1 if the last configuration load (start or SIGHUP reload) succeeded, 0 if the last "
             "reload failed and the previous configuration is still in effect.",
             Type::kGauge)
      .gauge(none, src.reload.last_successful ? 1.0 : 0.0);
  fam.family("facility_config_last_reload_success_timestamp_seconds",
             "Unix time of the last successful configuration load, in seconds.", Type::kGauge)
      .gauge(none, src.reload.last_success_unix);
  const ShardSettings shard = src.config ? src.config->daemon.shard : ShardSettings{};
  fam.family("facility_shard_index",
             "This daemon's shard of every site (daemon.shard INDEX; 0 when not sharded).",
             Type::kGauge)
      .gauge(none, shard.index);
  fam.family("facility_shards",
             "Number of shards the sites are split into (daemon.shard COUNT; 1 when not "
             "sharded). The recording rules use it to know when every shard is scraped.",
             Type::kGauge)
      .gauge(none, shard.count);
}

void collector_metrics(Families& fam, const CollectorStats& st) {
  auto& req = fam.family("facility_modbus_requests_total",
                         "Modbus requests sent, by device, function code and result (ok, "
                         "timeout, exception_N, malformed, connection).",
                         Type::kCounter);
  st.for_each_request([&req](const std::string& dev, int fc, std::string_view result,
                             std::uint64_t n) {
    const std::string f = std::to_string(fc);
    req.counter(Labels{{"device", dev}, {"function", f}, {"result", result}},
                static_cast<double>(n));
  });
  auto& unread = fam.family("facility_modbus_unreadable_points",
                            "Points of a device that the device rejects (illegal function or data "
                            "address): a configuration problem; their values are absent. Present "
                            "only for devices that have some.",
                            Type::kGauge);
  // Per endpoint: where slowness lives, and 13 histogram series per device would be most of
  // the exposition of a large site (docs/prometheus.md, "Cardinality").
  const std::size_t n_ep = st.endpoint_keys().size();
  std::vector<CollectorStats::Histogram> hist(n_ep);
  std::vector<std::uint64_t> overruns(n_ep, 0);
  for (std::size_t i = 0; i < st.device_ids().size(); ++i) {
    if (const auto n = st.unreadable_points(i); n > 0)
      unread.gauge(Labels{{"device", st.device_ids()[i]}}, static_cast<double>(n));
    const std::size_t e = st.endpoint_of(i);
    if (e >= n_ep) continue;
    const CollectorStats::Histogram h = st.poll_duration(i);
    for (std::size_t b = 0; b < h.buckets.size(); ++b) hist[e].buckets[b] += h.buckets[b];
    hist[e].count += h.count;
    hist[e].sum += h.sum;
    overruns[e] += st.overruns(i);
  }
  auto& dur = fam.family("facility_modbus_poll_duration_seconds",
                         "Duration of one complete device poll (all reads of one device, "
                         "including busy waits and retries), for the devices of an endpoint, in "
                         "seconds.",
                         Type::kHistogram);
  auto& over = fam.family("facility_modbus_poll_overruns_total",
                          "Scheduled device polls skipped because the device's previous poll had "
                          "not finished: the endpoint is too slow for the interval.",
                          Type::kCounter);
  auto& ep_up = fam.family("facility_modbus_endpoint_up",
                           "1 while the connection to a Modbus endpoint (TCP device, gateway or "
                           "serial line) is open, else 0.",
                           Type::kGauge);
  auto& ep_conn = fam.family("facility_modbus_endpoint_connects_total",
                             "Connections opened to a Modbus endpoint (a fast-growing count means "
                             "the endpoint keeps dropping them).",
                             Type::kCounter);
  auto& ep_discarded = fam.family(
      "facility_modbus_discarded_bytes_total",
      "Bytes received from a Modbus endpoint that belonged to no reply and were dropped: after "
      "a complete reply (junk, a reply sent twice), late replies to earlier requests, bytes "
      "nobody asked for. The replies themselves were used.",
      Type::kCounter);
  for (std::size_t e = 0; e < n_ep; ++e) {
    const Labels l{{"endpoint", st.endpoint_keys()[e]}};
    ep_discarded.counter(l, static_cast<double>(st.endpoint_discarded_bytes(e)));
    dur.histogram(l, CollectorStats::kDurationBuckets, hist[e].buckets, hist[e].count,
                  hist[e].sum);
    over.counter(l, static_cast<double>(overruns[e]));
    ep_up.gauge(l, st.endpoint_up(e) ? 1.0 : 0.0);
    ep_conn.counter(l, static_cast<double>(st.endpoint_connects(e)));
  }
}

void mqtt_metrics(Families& fam, const MqttStatsView& m) {
  if (!m.enabled) return;
  const auto d = [](std::uint64_t v) { return static_cast<double>(v); };
  const Labels none;
  fam.family("facility_mqtt_connected", "1 if every site's connection to the MQTT broker is up.",
             Type::kGauge)
      .gauge(none, m.connected ? 1.0 : 0.0);
  fam.family("facility_mqtt_connects_total",
             "Successful MQTT connections (first one and every reconnect).", Type::kCounter)
      .counter(none, d(m.connects));
  fam.family("facility_mqtt_messages_published_total",
             "MQTT messages acknowledged by the broker (QoS 1/2) or written (QoS 0), status "
             "messages included.",
             Type::kCounter)
      .counter(none, d(m.published));
  fam.family("facility_mqtt_messages_queued_total",
             "MQTT data messages handed to the outbox; each is later published or dropped.",
             Type::kCounter)
      .counter(none, d(m.queued_total));
  fam.family("facility_mqtt_messages_unchanged_total",
             "MQTT state messages not sent because no value moved beyond its deadband.",
             Type::kCounter)
      .counter(none, d(m.unchanged));
  auto& dropped = fam.family("facility_mqtt_messages_dropped_total",
                             "MQTT messages dropped, by reason (queue_full, expired, rejected, "
                             "shutdown).",
                             Type::kCounter);
  for (const auto& [reason, n] : m.dropped) dropped.counter(Labels{{"reason", reason}}, d(n));
  fam.family("facility_mqtt_queue_messages", "MQTT messages in the outbox, waiting or in flight.",
             Type::kGauge)
      .gauge(none, d(m.queued));
  fam.family("facility_mqtt_queue_bytes",
             "Topic and payload bytes of the MQTT messages in the outbox.", Type::kGauge)
      .gauge(none, d(m.queue_bytes));
  fam.family("facility_mqtt_queue_limit_messages",
             "Bound of the MQTT outbox in messages (mqtt.outbox.max_messages).", Type::kGauge)
      .gauge(none, d(m.queue_limit_messages));
  fam.family("facility_mqtt_queue_limit_bytes",
             "Bound of the MQTT outbox in bytes (mqtt.outbox.max_bytes).", Type::kGauge)
      .gauge(none, d(m.queue_limit_bytes));
  fam.family("facility_mqtt_outbox_persist_errors_total",
             "Writes or deletes of the MQTT outbox journal that failed.", Type::kCounter)
      .counter(none, d(m.persist_errors));
  fam.family("facility_mqtt_alert_snapshots_lost_total",
             "Model snapshots whose alert transitions were never published on MQTT because the "
             "publisher lagged more than 256 such snapshots behind the model.",
             Type::kCounter)
      .counter(none, d(m.alert_backlog_dropped));
}

void render_live(Families& fam, const ScrapeSources& src) {
  daemon_metrics(fam, src);
  if (src.collector) collector_metrics(fam, *src.collector);
  if (src.mqtt) mqtt_metrics(fam, src.mqtt());
  if (src.history_metrics) render_history_metrics(fam, src.history.get());
  process_metrics(fam);
}

}  // namespace

std::optional<ExpositionMode> parse_exposition_mode(const std::string& s) {
  if (s == "cached") return ExpositionMode::kCached;
  if (s == "direct") return ExpositionMode::kDirect;
  if (s == "prometheus-cpp") return ExpositionMode::kPrometheusCpp;
  return std::nullopt;
}

std::vector<prometheus::MetricFamily> render_metrics(const ScrapeSources& src) {
  Families fam(Families::Mode::kPrometheusCpp);
  if (src.snapshot) render_facility(fam, *src.snapshot);
  render_live(fam, src);
  return fam.take();
}

Exposition::Body Exposition::render(const ScrapeSources& src) const {
  Body body;
  if (mode_ == ExpositionMode::kPrometheusCpp) {
    body.live = prometheus::TextSerializer().Serialize(render_metrics(src));
    return body;
  }
  if (src.snapshot) {
    auto render_snapshot = [&src] {
      Families fam;
      render_facility(fam, *src.snapshot);
      auto text = std::make_shared<std::string>();
      fam.append_text(*text);
      return std::shared_ptr<const std::string>(std::move(text));
    };
    if (mode_ == ExpositionMode::kDirect) {
      body.facility = render_snapshot();
    } else {
      std::lock_guard lock(mu_);
      if (cached_snapshot_ != src.snapshot) {
        cached_text_ = render_snapshot();
        cached_snapshot_ = src.snapshot;
      }
      body.facility = cached_text_;
    }
  }
  Families live;
  render_live(live, src);
  live.append_text(body.live);
  return body;
}

}  // namespace facility
