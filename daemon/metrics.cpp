#include "daemon/metrics.h"

#include <unistd.h>

#include <chrono>
#include <deque>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "facilityd_version.h"

namespace facility {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using Labels = std::vector<ClientMetric::Label>;

// Families are filled through references handed out by family(); a deque keeps those
// references valid while more families are added.
class Families {
 public:
  MetricFamily& family(const std::string& name, const std::string& help, MetricType type) {
    out_.push_back(MetricFamily{name, help, type, {}});
    return out_.back();
  }
  std::vector<MetricFamily> take() {
    // Families without samples are dropped so that exposition only shows what is known.
    std::vector<MetricFamily> res;
    for (auto& f : out_) {
      if (!f.metric.empty()) res.push_back(std::move(f));
    }
    return res;
  }

 private:
  std::deque<MetricFamily> out_;
};

void gauge(MetricFamily& f, Labels labels, double v) {
  ClientMetric m;
  m.label = std::move(labels);
  m.gauge.value = v;
  f.metric.push_back(std::move(m));
}
void gauge(MetricFamily& f, Labels labels, const std::optional<double>& v) {
  if (v) gauge(f, std::move(labels), *v);
}
void counter(MetricFamily& f, Labels labels, double v) {
  ClientMetric m;
  m.label = std::move(labels);
  m.counter.value = v;
  f.metric.push_back(std::move(m));
}

Labels cabinet_labels(const Cabinet& c) {
  return {{"site", c.site}, {"room", c.room}, {"row", c.row}, {"cabinet", c.id}};
}

double unix_seconds(TimePoint t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

std::string power_class(double rated_w) {
  std::ostringstream os;
  os.precision(3);
  os << rated_w / 1000.0 << "kW";
  return os.str();
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
    auto& c_power = fam.family("facility_cabinet_power_watts",
                               "Cabinet active power, sum of all feeds, in watts. Absent unless "
                               "every feed's PDU reported fresh data.",
                               MetricType::Gauge);
    auto& c_feed = fam.family("facility_cabinet_feed_power_watts",
                              "Active power of one cabinet feed (A/B), in watts, from its PDU.",
                              MetricType::Gauge);
    auto& c_rated = fam.family("facility_cabinet_rated_power_watts",
                               "Cabinet rated (contracted) power in watts, from rated_kw or the "
                               "breaker (V x A, or sqrt(3) x V x A for three phases).",
                               MetricType::Gauge);
    auto& c_util = fam.family("facility_cabinet_utilization_ratio",
                              "Cabinet power divided by its rated power (0..1, may exceed 1 when "
                              "overloaded).",
                              MetricType::Gauge);
    auto& c_info = fam.family("facility_cabinet_info",
                              "Cabinet inventory attributes as labels; value is always 1.",
                              MetricType::Gauge);
    auto& c_inlet = fam.family("facility_rack_inlet_temperature_celsius",
                               "Rack inlet air temperature in degrees Celsius, per sensor.",
                               MetricType::Gauge);
    auto& c_outlet = fam.family("facility_rack_outlet_temperature_celsius",
                                "Rack outlet (exhaust) air temperature in degrees Celsius, per sensor.",
                                MetricType::Gauge);
    auto& c_hum = fam.family("facility_rack_humidity_ratio",
                             "Rack relative humidity as a ratio (0..1), per sensor.",
                             MetricType::Gauge);
    auto& cool_sup = fam.family("facility_cooling_supply_temperature_celsius",
                                "Cooling unit supply air temperature in degrees Celsius.",
                                MetricType::Gauge);
    auto& cool_ret = fam.family("facility_cooling_return_temperature_celsius",
                                "Cooling unit return air temperature in degrees Celsius.",
                                MetricType::Gauge);
    auto& cool_pow = fam.family("facility_cooling_power_watts",
                                "Cooling unit electrical power in watts.", MetricType::Gauge);
    auto& cool_fan = fam.family("facility_cooling_fan_speed_ratio",
                                "Cooling unit fan speed as a ratio of maximum (0..1).",
                                MetricType::Gauge);
    auto& cool_run = fam.family("facility_cooling_running",
                                "1 if the cooling unit reports running, 0 if stopped.",
                                MetricType::Gauge);
    auto& s_it = fam.family("facility_site_it_power_watts",
                            "Site IT power in watts: the it_total meter(s), or the sum of all "
                            "cabinets when there is none (label source). Absent unless fully "
                            "covered.",
                            MetricType::Gauge);
    auto& s_fac = fam.family("facility_site_facility_power_watts",
                             "Site total facility power in watts from the facility_total meter(s).",
                             MetricType::Gauge);
    auto& s_cool = fam.family("facility_site_cooling_power_watts",
                              "Site cooling power in watts from the cooling meter(s).",
                              MetricType::Gauge);
    auto& s_pue = fam.family("facility_site_pue_ratio",
                             "Power usage effectiveness: facility power / IT power (ISO/IEC "
                             "30134-2; category = where IT power is measured: 1 UPS output, 2 PDU "
                             "output, 3 IT equipment input). Absent unless both terms are fully "
                             "covered.",
                             MetricType::Gauge);
    auto& s_rated = fam.family("facility_site_rated_power_watts",
                               "Sum of rated power of all cabinets of the site, in watts.",
                               MetricType::Gauge);
    auto& s_cab = fam.family("facility_site_cabinets",
                             "Cabinets of the site by state: total (delivered in the inventory), "
                             "planned (build-out plan), powered (drawing more than the powered "
                             "threshold), measured (power known), sold, internal, free.",
                             MetricType::Gauge);
    auto& s_occ = fam.family("facility_site_occupancy_ratio",
                             "Cabinets powered or sold divided by cabinets total (0..1).",
                             MetricType::Gauge);
    auto& s_cov = fam.family("facility_site_coverage_ratio",
                             "Fraction (0..1) of the sources of a site aggregate that reported "
                             "fresh data.",
                             MetricType::Gauge);

    for (const auto& ss : snap->sites) {
      const Site& site = *ss.site;
      const std::string& sid = site.id;
      for (const auto& cs : ss.cabinets) {
        const Cabinet& c = *cs.cabinet;
        auto l = cabinet_labels(c);
        gauge(c_power, l, cs.power_w);
        gauge(c_rated, l, c.rated_w);
        gauge(c_util, l, cs.utilization);
        for (const auto& f : cs.feeds) {
          auto lf = l;
          lf.push_back({"feed", f.feed});
          gauge(c_feed, lf, f.power_w);
        }
        auto li = l;
        li.push_back({"power_class", power_class(c.rated_w)});
        li.push_back({"ownership", to_string(site.ownership)});
        li.push_back({"status", to_string(c.status)});
        gauge(c_info, li, 1.0);
      }
      for (const auto& rs : ss.rack_sensors) {
        const Cabinet* c = site.find_cabinet(rs.cabinet);
        if (!c) continue;
        auto l = cabinet_labels(*c);
        l.push_back({"sensor", rs.device->id});
        gauge(c_inlet, l, rs.inlet_c);
        gauge(c_outlet, l, rs.outlet_c);
        gauge(c_hum, l, rs.humidity_ratio);
      }
      for (const auto& cs : ss.cooling) {
        Labels l{{"site", sid}, {"room", cs.device->room}, {"unit", cs.device->id}};
        gauge(cool_sup, l, cs.supply_c);
        gauge(cool_ret, l, cs.return_c);
        gauge(cool_pow, l, cs.power_w);
        gauge(cool_fan, l, cs.fan_ratio);
        if (cs.running) gauge(cool_run, l, *cs.running ? 1.0 : 0.0);
      }
      gauge(s_it, {{"site", sid}, {"source", ss.it_power_source}}, ss.it_power_w);
      gauge(s_fac, {{"site", sid}}, ss.facility_power_w);
      gauge(s_cool, {{"site", sid}}, ss.cooling_power_w);
      gauge(s_pue,
            {{"site", sid}, {"category", std::to_string(site.pue_category)}, {"window", "instant"}},
            ss.pue);
      gauge(s_rated, {{"site", sid}}, ss.rated_w);
      const std::pair<const char*, int> states[] = {
          {"total", ss.cabinets_total},       {"planned", site.planned_cabinets},
          {"powered", ss.cabinets_powered},   {"measured", ss.cabinets_measured},
          {"sold", ss.cabinets_sold},         {"internal", ss.cabinets_internal},
          {"free", ss.cabinets_free}};
      for (const auto& [state, n] : states) gauge(s_cab, {{"site", sid}, {"state", state}}, n);
      gauge(s_occ, {{"site", sid}, {"basis", "powered"}}, ss.occupancy_powered);
      gauge(s_occ, {{"site", sid}, {"basis", "sold"}}, ss.occupancy_sold);
      gauge(s_cov, {{"site", sid}, {"quantity", "it_power"}}, ss.it_coverage);
      if (ss.facility_coverage > 0 || ss.facility_power_w) {
        gauge(s_cov, {{"site", sid}, {"quantity", "facility_power"}}, ss.facility_coverage);
      }
    }

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
    auto& req = fam.family("facility_modbus_requests_total",
                           "Modbus requests sent, by device, function code and result (ok, "
                           "timeout, exception_N, malformed, connection).",
                           MetricType::Counter);
    for (const auto& [key, n] : src.collector->requests()) {
      const auto& [dev, fc, result] = key;
      counter(req, {{"device", dev}, {"function", std::to_string(fc)}, {"result", result}},
              static_cast<double>(n));
    }
    auto& dur = fam.family("facility_device_poll_duration_seconds",
                           "Duration of one complete poll cycle of a device, in seconds.",
                           MetricType::Histogram);
    for (const auto& [dev, h] : src.collector->poll_durations()) {
      ClientMetric m;
      m.label = {{"device", dev}};
      m.histogram.sample_count = h.count;
      m.histogram.sample_sum = h.sum;
      std::uint64_t cum = 0;
      for (std::size_t i = 0; i < CollectorStats::kDurationBuckets.size(); ++i) {
        cum += h.buckets[i];
        m.histogram.bucket.push_back({cum, CollectorStats::kDurationBuckets[i]});
      }
      m.histogram.bucket.push_back({h.count, std::numeric_limits<double>::infinity()});
      dur.metric.push_back(std::move(m));
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
