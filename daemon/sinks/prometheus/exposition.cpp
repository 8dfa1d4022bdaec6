#include "daemon/sinks/prometheus/exposition.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <span>
#include <sstream>

#include "daemon/sinks/gzip_parts.h"
#include "daemon/sinks/prometheus/facility_metrics.h"
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

void render_live(Families& fam, const ScrapeSources& src) {
  daemon_metrics(fam, src);
  if (src.collector) collector_metrics(fam, *src.collector);
  for (const auto& sink : src.sinks) sink->health(fam);
  if (src.listener) src.listener(fam);
  process_metrics(fam);
}

}  // namespace

void render_scrape(MetricWriter& out, const ScrapeSources& src) {
  if (src.snapshot) render_facility(out, *src.snapshot);
  render_live(out, src);
}

Exposition::Body Exposition::render(const ScrapeSources& src, bool gzip) const {
  Body body;
  body.gzip = gzip;
  gzip::Part facility_part;  // only its CRC and size, for the trailer
  if (src.snapshot) {
    std::lock_guard lock(mu_);
    if (cached_snapshot_ != src.snapshot) {
      // The old text goes first (unless a scrape still sends it): at 6,000 devices it is 21 MB
      // that need not be held while the next one is written.
      cached_text_.reset();
      cached_gzip_.reset();
      Families fam;
      render_facility(fam, *src.snapshot);
      auto text = std::make_shared<std::string>();
      fam.append_text(*text);
      cached_text_ = std::move(text);
      cached_snapshot_ = src.snapshot;
    }
    if (gzip && !cached_gzip_) {
      gzip::Part p = gzip::deflate(*cached_text_, false);
      cached_gzip_ = std::make_shared<const std::string>(gzip::header() + p.bytes);
      cached_gzip_crc_ = p.crc;
    }
    body.facility = gzip ? cached_gzip_ : cached_text_;
    facility_part.crc = cached_gzip_crc_;
    facility_part.text_size = cached_text_->size();
  }
  Families live;
  render_live(live, src);
  live.append_text(body.live);
  if (gzip) {
    const gzip::Part live_part = gzip::deflate(body.live, true);
    body.live = (body.facility ? std::string() : gzip::header()) + live_part.bytes;
    const gzip::Part* both[] = {&facility_part, &live_part};
    const std::span<const gzip::Part* const> parts(both);
    body.live += gzip::trailer(body.facility ? parts : parts.subspan(1));
  }
  return body;
}

}  // namespace facility
