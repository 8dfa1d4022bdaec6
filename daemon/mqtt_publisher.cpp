#include "daemon/mqtt_publisher.h"

#include <mqtt/async_client.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <unordered_map>
#include <utility>

namespace facility {

namespace {

using nlohmann::json;

// The payload vocabulary is part of the MQTT contract (docs/mqtt.md), so it is spelled out here
// rather than borrowed from the config/model to_string() helpers: renaming an enum value there
// must not silently change what dashboards receive.
const char* quality_name(Quality q) {
  switch (q) {
    case Quality::kGood: return "good";
    case Quality::kStale: return "stale";
    case Quality::kError: return "error";
  }
  return "error";
}

const char* cabinet_status_name(CabinetStatus s) {
  switch (s) {
    case CabinetStatus::kSold: return "sold";
    case CabinetStatus::kInternal: return "internal";
    case CabinetStatus::kFree: return "free";
  }
  return "free";
}

const char* device_kind_name(DeviceKind k) {
  switch (k) {
    case DeviceKind::kPdu: return "pdu";
    case DeviceKind::kMeter: return "meter";
    case DeviceKind::kCooling: return "cooling";
    case DeviceKind::kRackSensor: return "rack_sensor";
  }
  return "unknown";
}

// JSON has no NaN/Inf: nlohmann would print them as null anyway, but being explicit keeps the
// "unknown is null, never 0" rule visible at every call site.
json num(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }
json num(const std::optional<double>& v) { return v ? num(*v) : json(nullptr); }
json opt_bool(const std::optional<bool>& v) { return v ? json(*v) : json(nullptr); }
json opt_string(const std::string& s) { return s.empty() ? json(nullptr) : json(s); }

// Error strings come from devices and libraries and may not be valid UTF-8; a throwing dump()
// would lose the whole snapshot, so invalid bytes are replaced.
std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

json cabinet_json(const SiteSnapshot& site, const CabinetSnapshot& cs, const std::string& ts) {
  const Cabinet& c = *cs.cabinet;
  // power_w and utilization are only meaningful when every feed is fresh; the model already
  // leaves them empty otherwise, and this keeps it true even if the model changes.
  const bool good = cs.quality == Quality::kGood;

  json feeds = json::object();
  for (const auto& f : c.feeds) feeds[f] = nullptr;  // configured feeds always appear
  for (const auto& f : cs.feeds) feeds[f.feed] = num(f.power_w);

  return json{
      {"ts", ts},
      {"site", site.site->id},
      {"room", c.room},
      {"row", c.row},
      {"cabinet", c.id},
      {"power_w", good ? num(cs.power_w) : json(nullptr)},
      {"rated_w", num(c.rated_w)},
      {"utilization", good ? num(cs.utilization) : json(nullptr)},
      {"feeds", std::move(feeds)},
      {"powered", cs.powered},
      {"status", cabinet_status_name(c.status)},
      {"quality", quality_name(cs.quality)},
      {"inlet_c", num(cs.inlet_c)},
      {"humidity_ratio", num(cs.humidity_ratio)},
      {"units",
       {{"power_w", "W"},
        {"rated_w", "W"},
        {"utilization", "ratio"},
        {"feeds", "W"},
        {"inlet_c", "degC"},
        {"humidity_ratio", "ratio"}}},
  };
}

json summary_json(const SiteSnapshot& s, const std::string& ts) {
  const Site& site = *s.site;
  // planned_cabinets == 0 means "the build-out plan is what is installed" (config.h).
  const int planned = site.planned_cabinets > 0 ? site.planned_cabinets : s.cabinets_total;
  return json{
      {"ts", ts},
      {"site", site.id},
      {"name", site.name},
      {"it_power_w", num(s.it_power_w)},
      {"it_power_source", opt_string(s.it_power_source)},
      {"facility_power_w", num(s.facility_power_w)},
      {"cooling_power_w", num(s.cooling_power_w)},
      {"pue", num(s.pue)},
      {"pue_category", site.pue_category},
      {"coverage", {{"it", num(s.it_coverage)}, {"facility", num(s.facility_coverage)}}},
      {"rated_w", num(s.rated_w)},
      {"cabinets",
       {{"total", s.cabinets_total},
        {"powered", s.cabinets_powered},
        {"sold", s.cabinets_sold},
        {"internal", s.cabinets_internal},
        {"free", s.cabinets_free},
        {"planned", planned},
        {"measured", s.cabinets_measured}}},
      {"occupancy", {{"powered", num(s.occupancy_powered)}, {"sold", num(s.occupancy_sold)}}},
      {"units",
       {{"it_power_w", "W"},
        {"facility_power_w", "W"},
        {"cooling_power_w", "W"},
        {"rated_w", "W"},
        {"pue", "1"},
        {"coverage", "ratio"},
        {"occupancy", "ratio"}}},
  };
}

json cooling_json(const std::string& site_id, const CoolingSnapshot& cs, const DeviceSnapshot* ds,
                  const std::string& ts) {
  const Device& d = *cs.device;
  // Without a device entry we cannot vouch for freshness: report stale and show no numbers.
  const Quality q = ds ? ds->quality : Quality::kStale;
  const bool good = q == Quality::kGood;
  std::optional<double> delta;
  if (cs.supply_c && cs.return_c) delta = *cs.return_c - *cs.supply_c;
  const auto v = [good](const std::optional<double>& x) { return good ? num(x) : json(nullptr); };
  return json{
      {"ts", ts},
      {"site", site_id},
      {"device", d.id},
      {"room", opt_string(d.room)},
      {"supply_c", v(cs.supply_c)},
      {"return_c", v(cs.return_c)},
      {"delta_t_c", v(delta)},
      {"power_w", v(cs.power_w)},
      {"fan_ratio", v(cs.fan_ratio)},
      {"running", good ? opt_bool(cs.running) : json(nullptr)},
      {"quality", quality_name(q)},
      {"units",
       {{"supply_c", "degC"},
        {"return_c", "degC"},
        {"delta_t_c", "degC"},
        {"power_w", "W"},
        {"fan_ratio", "ratio"}}},
  };
}

json device_json(const DeviceSnapshot& ds, const std::string& ts) {
  const Device& d = *ds.device;
  json j{
      {"ts", ts},
      {"site", d.site},
      {"device", d.id},
      {"kind", device_kind_name(d.kind)},
      {"profile", d.profile_name},
      {"up", ds.up},
      {"quality", quality_name(ds.quality)},
      {"last_success",
       ds.last_success == TimePoint{} ? json(nullptr) : json(format_rfc3339_ms(ds.last_success))},
      // An old error next to a working device only confuses: show it while the device is down.
      {"error", ds.up ? json(nullptr) : opt_string(ds.last_error)},
  };
  if (!d.cabinet.empty()) j["cabinet"] = d.cabinet;
  if (!d.feed.empty()) j["feed"] = d.feed;
  if (!d.room.empty()) j["room"] = d.room;

  // Points as read, in the profile's unit; only from a fresh reading, never stale values.
  json points = json::object();
  if (ds.reading && ds.quality == Quality::kGood) {
    for (const auto& [name, pv] : ds.reading->points)
      points[name] = json{{"value", num(pv.value)}, {"unit", pv.unit}};
  }
  j["points"] = std::move(points);
  return j;
}

void warn_invalid(const char* what, const std::string& id) {
  spdlog::warn("mqtt: {} id \"{}\" cannot be an MQTT topic level ('/', '+', '#' or empty); "
               "not published",
               what, id);
}

void render_site_into(const FacilitySnapshot& snap, const std::string& prefix,
                      const std::string& site_id, const std::string& ts,
                      std::vector<MqttMessage>& out) {
  if (!is_valid_topic_level(site_id)) {
    warn_invalid("site", site_id);
    return;
  }
  const std::string base = prefix + "/" + site_id + "/";
  const auto add = [&](std::string topic, const json& j) {
    out.push_back(MqttMessage{site_id, std::move(topic), dump(j), true});
  };

  std::unordered_map<const Device*, const DeviceSnapshot*> device_by_ptr;
  for (const auto& ds : snap.devices)
    if (ds.device) device_by_ptr.emplace(ds.device, &ds);

  for (const auto& s : snap.sites) {
    if (!s.site || s.site->id != site_id) continue;
    add(base + "summary", summary_json(s, ts));
    for (const auto& cs : s.cabinets) {
      if (!cs.cabinet) continue;
      if (!is_valid_topic_level(cs.cabinet->id)) {
        warn_invalid("cabinet", cs.cabinet->id);
        continue;
      }
      add(base + "cabinet/" + cs.cabinet->id, cabinet_json(s, cs, ts));
    }
    for (const auto& cs : s.cooling) {
      if (!cs.device) continue;
      if (!is_valid_topic_level(cs.device->id)) {
        warn_invalid("device", cs.device->id);
        continue;
      }
      const auto it = device_by_ptr.find(cs.device);
      add(base + "cooling/" + cs.device->id,
          cooling_json(site_id, cs, it == device_by_ptr.end() ? nullptr : it->second, ts));
    }
  }
  for (const auto& ds : snap.devices) {
    if (!ds.device || ds.device->site != site_id) continue;
    if (!is_valid_topic_level(ds.device->id)) {
      warn_invalid("device", ds.device->id);
      continue;
    }
    add(base + "device/" + ds.device->id, device_json(ds, ts));
  }
}

bool is_valid_prefix(const std::string& p) {
  if (p.empty() || p.front() == '$') return false;  // $-topics belong to the broker
  std::size_t start = 0;
  for (;;) {
    const std::size_t slash = p.find('/', start);
    const std::string level = p.substr(start, slash == std::string::npos ? slash : slash - start);
    if (!is_valid_topic_level(level)) return false;  // also rejects "a//b", "/a", "a/"
    if (slash == std::string::npos) return true;
    start = slash + 1;
  }
}

}  // namespace

// ---- Pure functions -------------------------------------------------------------------------

std::string format_rfc3339_ms(TimePoint t) {
  using namespace std::chrono;
  const auto ms = floor<milliseconds>(t);  // floor, not round: never jump into the next second
  const auto day = floor<days>(ms);
  const year_month_day ymd{day};
  const hh_mm_ss<milliseconds> hms{ms - day};
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                static_cast<int>(hms.seconds().count()),
                static_cast<int>(hms.subseconds().count()));
  return buf;
}

bool is_valid_topic_level(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c == '/' || c == '+' || c == '#' || c == '\0') return false;
  return true;
}

std::string mqtt_status_topic(const std::string& prefix, const std::string& site) {
  return prefix + "/" + site + "/status";
}

std::vector<MqttMessage> render_site_messages(const FacilitySnapshot& snap,
                                              const std::string& prefix,
                                              const std::string& site) {
  std::vector<MqttMessage> out;
  render_site_into(snap, prefix, site, format_rfc3339_ms(snap.computed_at), out);
  return out;
}

std::vector<MqttMessage> render_messages(const FacilitySnapshot& snap, const std::string& prefix) {
  // Sites in snapshot order, then any site that only appears through its devices.
  std::vector<std::string> order;
  std::set<std::string> seen;
  for (const auto& s : snap.sites)
    if (s.site && seen.insert(s.site->id).second) order.push_back(s.site->id);
  for (const auto& d : snap.devices)
    if (d.device && seen.insert(d.device->site).second) order.push_back(d.device->site);

  const std::string ts = format_rfc3339_ms(snap.computed_at);
  std::vector<MqttMessage> out;
  for (const auto& site : order) render_site_into(snap, prefix, site, ts, out);
  return out;
}

// ---- Publisher ------------------------------------------------------------------------------

// One broker connection. Everything a Paho callback touches is atomic: callbacks run on Paho's
// threads, concurrently with the worker and with stats().
struct MqttPublisher::SiteLink {
  // Completion of every publish on this connection (exactly one of the two per accepted
  // message: Paho reports failure for in-flight messages it discards, e.g. on a clean-session
  // reconnect, with MQTTASYNC_OPERATION_INCOMPLETE).
  class DeliveryListener : public mqtt::iaction_listener {
   public:
    explicit DeliveryListener(SiteLink& l) : link_(l) {}
    void on_success(const mqtt::token&) override {
      link_.published.fetch_add(1, std::memory_order_relaxed);
      link_.outstanding.fetch_sub(1, std::memory_order_relaxed);
    }
    void on_failure(const mqtt::token& tok) override {
      const int rc = tok.get_return_code();
      if (rc == MQTTASYNC_OPERATION_INCOMPLETE || rc == MQTTASYNC_DISCONNECTED)
        link_.drop_not_connected.fetch_add(1, std::memory_order_relaxed);
      else
        link_.drop_publish_error.fetch_add(1, std::memory_order_relaxed);
      link_.outstanding.fetch_sub(1, std::memory_order_relaxed);
    }

   private:
    SiteLink& link_;
  };

  // Paho retries a failed connect on its own (automatic reconnect also covers the very first
  // attempt); this only makes the first failure of a series visible in the log.
  class ConnectListener : public mqtt::iaction_listener {
   public:
    explicit ConnectListener(SiteLink& l) : link_(l) {}
    void on_success(const mqtt::token&) override {}
    void on_failure(const mqtt::token& tok) override {
      if (!link_.connect_failure_logged.exchange(true))
        spdlog::warn("mqtt: site {}: cannot connect to {} as {} (rc {}); retrying", link_.site,
                     link_.broker, link_.client_id, tok.get_return_code());
    }

   private:
    SiteLink& link_;
  };

  std::string site, client_id, status_topic, broker;

  std::atomic<bool> connected{false};  // between connected and connection-lost callbacks
  std::atomic<bool> republish{false};  // came (back) online: re-send the latest snapshot
  // Set by stop() under birth_mu; on_connected() checks it and sends "online" under the same
  // lock, so a reconnect racing with stop() cannot put "online" after "offline". The lock is
  // never held by a thread waiting for Paho, so taking it inside a Paho callback is safe.
  std::mutex birth_mu;
  bool stopping = false;
  std::atomic<bool> connect_failure_logged{false};
  std::atomic<std::uint64_t> connects{0}, published{0};
  std::atomic<std::uint64_t> drop_buffer_full{0}, drop_publish_error{0}, drop_not_connected{0};
  std::atomic<std::int64_t> outstanding{0};  // accepted by Paho, no completion yet

  DeliveryListener delivery{*this};
  ConnectListener connect_listener{*this};
  // Declared last so it is destroyed first, while the listeners it references still exist.
  std::unique_ptr<mqtt::async_client> client;
};

MqttPublisher::MqttPublisher(MqttSettings settings, std::vector<std::string> site_ids,
                             MqttPublisherOptions options)
    : settings_(std::move(settings)), options_(options) {
  if (settings_.qos < 0 || settings_.qos > 2)
    throw std::invalid_argument("mqtt.qos must be 0, 1 or 2, got " + std::to_string(settings_.qos));
  if (!is_valid_prefix(settings_.topic_prefix))
    throw std::invalid_argument("mqtt.topic_prefix \"" + settings_.topic_prefix +
                                "\" is not a valid topic prefix (no '+', '#', empty levels, "
                                "leading '$' or '/')");
  if (settings_.client_id.empty()) throw std::invalid_argument("mqtt.client_id is empty");
  if (options_.max_buffered_messages < 1)
    throw std::invalid_argument("max_buffered_messages must be at least 1");
  // TLS is not implemented yet; refusing beats connecting with Paho's default of no hostname
  // verification (see docs/mqtt.md, "Not built yet").
  for (const char* scheme : {"ssl://", "mqtts://", "wss://"})
    if (settings_.broker.rfind(scheme, 0) == 0)
      throw std::invalid_argument("mqtt.broker \"" + settings_.broker +
                                  "\": TLS is not supported yet; use tcp://");

  mqtt::create_options co(MQTTVERSION_3_1_1);
  co.set_send_while_disconnected(true);  // covers the gap before Paho notices a dead link
  co.set_max_buffered_messages(options_.max_buffered_messages);
  // Not delete-oldest: in Paho C 1.3.12 it frees the oldest message without any callback, so
  // the C++ layer keeps its delivery token (and payload) forever and nothing can count the drop.
  // With it off, a full buffer makes publish() fail with -12, which we count as buffer_full.
  co.set_delete_oldest_messages(false);

  for (const auto& site : site_ids) {
    if (!is_valid_topic_level(site))
      throw std::invalid_argument("site id \"" + site + "\" cannot be an MQTT topic level");
    if (by_site_.count(site)) throw std::invalid_argument("duplicate site id \"" + site + "\"");
    auto link = std::make_unique<SiteLink>();
    link->site = site;
    link->client_id = settings_.client_id + "-" + site;
    link->status_topic = mqtt_status_topic(settings_.topic_prefix, site);
    link->broker = settings_.broker;
    try {
      // nullptr persistence = MQTTCLIENT_PERSISTENCE_NONE. (A string, even "", would select
      // file persistence in that directory.)
      link->client = std::make_unique<mqtt::async_client>(settings_.broker, link->client_id, co,
                                                          nullptr);
    } catch (const mqtt::exception& e) {
      throw std::invalid_argument("mqtt.broker \"" + settings_.broker + "\": " + e.what());
    }
    SiteLink* l = link.get();
    l->client->set_connected_handler([this, l](const std::string&) { on_connected(*l); });
    l->client->set_connection_lost_handler([l](const std::string& cause) {
      if (l->connected.exchange(false))
        spdlog::warn("mqtt: site {}: connection to {} lost{}{}; reconnecting", l->site, l->broker,
                     cause.empty() ? "" : ": ", cause);
    });
    by_site_.emplace(site, l);
    links_.push_back(std::move(link));
  }
}

MqttPublisher::~MqttPublisher() { stop(); }

void MqttPublisher::start() {
  std::lock_guard lifecycle(lifecycle_mu_);
  if (stopped_) throw std::logic_error("MqttPublisher::start() after stop()");
  if (started_) return;
  started_ = true;
  worker_ = std::thread(&MqttPublisher::run, this);

  const int keepalive_s =
      settings_.keepalive.count() <= 0
          ? 0
          : static_cast<int>(std::max<std::int64_t>(1, settings_.keepalive.count() / 1000));
  for (auto& link : links_) {
    mqtt::connect_options opts;
    opts.set_mqtt_version(MQTTVERSION_3_1_1);
    opts.set_clean_session(true);
    opts.set_keep_alive_interval(keepalive_s);
    opts.set_connect_timeout(options_.connect_timeout);
    opts.set_automatic_reconnect(options_.min_retry_interval, options_.max_retry_interval);
    // One will per connection, which is why there is one connection per site.
    opts.set_will(mqtt::will_options(link->status_topic, std::string("offline"), 1, true));
    try {
      link->client->connect(opts, nullptr, link->connect_listener);
    } catch (const mqtt::exception& e) {
      // Network problems never land here (they are reported asynchronously and retried); this is
      // Paho refusing the request itself, which retrying will not fix.
      throw std::runtime_error("mqtt: site " + link->site + ": connect request rejected: " +
                               e.what());
    }
  }
}

void MqttPublisher::publish(std::shared_ptr<const FacilitySnapshot> snap) {
  if (!snap) return;
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    if (pending_) ++superseded_;
    pending_ = std::move(snap);
  }
  cv_.notify_one();
}

void MqttPublisher::on_connected(SiteLink& link) {
  // Paho can report one connection twice (paho.mqtt.cpp#322): only the first report of a
  // connection counts, sends the birth message and asks for a republish.
  {
    std::lock_guard birth(link.birth_mu);
    if (link.stopping || link.connected.exchange(true)) return;
    link.connects.fetch_add(1, std::memory_order_relaxed);
    link.connect_failure_logged.store(false);
    spdlog::info("mqtt: site {}: connected to {} as {}", link.site, link.broker, link.client_id);
    // The broker may have published our will while we were away: say "online" again, every
    // time.
    publish_one(link, link.status_topic, "online");
  }
  link.republish.store(true);
  {
    std::lock_guard lock(mu_);
    republish_requested_ = true;
  }
  cv_.notify_one();
}

bool MqttPublisher::publish_one(SiteLink& link, const std::string& topic,
                                const std::string& payload) {
  // Status messages go out at QoS 1 like the will, whatever the data QoS is.
  const int qos = topic == link.status_topic ? 1 : settings_.qos;
  auto msg = mqtt::make_message(topic, payload, qos, true);
  // Count before handing over: the completion callback may run before publish() returns.
  link.outstanding.fetch_add(1, std::memory_order_relaxed);
  try {
    link.client->publish(std::move(msg), nullptr, link.delivery);
    return true;
  } catch (const mqtt::exception& e) {
    link.outstanding.fetch_sub(1, std::memory_order_relaxed);
    switch (e.get_return_code()) {
      case MQTTASYNC_MAX_BUFFERED_MESSAGES: link.drop_buffer_full.fetch_add(1); break;
      case MQTTASYNC_DISCONNECTED: link.drop_not_connected.fetch_add(1); break;
      default: link.drop_publish_error.fetch_add(1); break;
    }
  } catch (const std::exception&) {
    link.outstanding.fetch_sub(1, std::memory_order_relaxed);
    link.drop_publish_error.fetch_add(1);
  }
  return false;
}

void MqttPublisher::publish_to_site(SiteLink& link, const std::vector<MqttMessage>& msgs) {
  link.republish.store(false);
  // While a site is known to be offline its messages are not queued in Paho: all of them are
  // retained state that the next snapshot supersedes, and the latest snapshot is re-sent as
  // soon as the connection is back. Queuing them would only replay stale values on reconnect.
  if (!link.connected.load()) {
    link.drop_not_connected.fetch_add(msgs.size(), std::memory_order_relaxed);
    return;
  }
  std::size_t failed = 0;
  for (const auto& m : msgs)
    if (!publish_one(link, m.topic, m.payload)) ++failed;
  if (failed)
    spdlog::warn("mqtt: site {}: {} of {} messages dropped (buffer full or publish error)",
                 link.site, failed, msgs.size());
}

void MqttPublisher::run() {
  std::set<std::string> warned_unknown;
  for (;;) {
    std::shared_ptr<const FacilitySnapshot> snap;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || pending_ || republish_requested_; });
      if (stopping_) return;
      snap = std::exchange(pending_, nullptr);
      republish_requested_ = false;
    }
    const bool fresh = snap != nullptr;
    try {
      if (fresh) {
        latest_ = std::move(snap);
        for (const auto& s : latest_->sites)
          if (s.site && !by_site_.count(s.site->id) && warned_unknown.insert(s.site->id).second)
            spdlog::warn("mqtt: site {} is in the snapshot but has no MQTT connection",
                         s.site->id);
      }
      if (!latest_) continue;  // a connection came up before the first snapshot
      for (auto& link : links_) {
        // A new snapshot goes to every site; a reconnect only re-sends to the site(s) that
        // came back.
        if (!fresh && !link->republish.load()) continue;
        publish_to_site(*link,
                        render_site_messages(*latest_, settings_.topic_prefix, link->site));
      }
    } catch (const std::exception& e) {
      // Rendering bugs must not kill the thread (and with it all future publishing).
      spdlog::error("mqtt: publishing snapshot failed: {}", e.what());
    }
  }
}

void MqttPublisher::stop() {
  std::lock_guard lifecycle(lifecycle_mu_);
  if (stopped_) return;
  stopped_ = true;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    pending_.reset();
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();

  if (started_) {
    using Clock = std::chrono::steady_clock;
    const auto deadline = Clock::now() + options_.stop_timeout;
    for (auto& link : links_) {
      std::lock_guard birth(link->birth_mu);
      link->stopping = true;
    }

    // 1. Retained "offline" on every connected site. A full buffer (-12) may drain: retry until
    //    the deadline rather than disconnecting without it.
    std::vector<mqtt::delivery_token_ptr> offline(links_.size());
    for (std::size_t i = 0; i < links_.size(); ++i) {
      SiteLink& link = *links_[i];
      if (!link.client->is_connected()) continue;
      for (;;) {
        link.outstanding.fetch_add(1, std::memory_order_relaxed);
        try {
          offline[i] = link.client->publish(
              mqtt::make_message(link.status_topic, std::string("offline"), 1, true), nullptr,
              link.delivery);
          break;
        } catch (const mqtt::exception& e) {
          link.outstanding.fetch_sub(1, std::memory_order_relaxed);
          if (e.get_return_code() != MQTTASYNC_MAX_BUFFERED_MESSAGES || Clock::now() >= deadline) {
            spdlog::error("mqtt: site {}: cannot queue \"offline\" ({}); {} may stay \"online\"",
                          link.site, e.what(), link.status_topic);
            break;
          }
          std::this_thread::sleep_for(std::chrono::milliseconds(20));  // let Paho drain
        }
      }
    }

    // 2. Wait for the broker to acknowledge "offline" before disconnecting: Paho re-checks a
    //    DISCONNECT that waits for in-flight QoS 1 messages only every 3 s, so disconnecting
    //    first would make every stop take seconds.
    for (std::size_t i = 0; i < links_.size(); ++i) {
      if (!offline[i]) continue;
      bool ok = false;
      try {
        ok = offline[i]->wait_until(deadline);
      } catch (const std::exception&) {  // delivery failed: the token rethrows its error
      }
      if (!ok)
        spdlog::error("mqtt: site {}: \"offline\" not acknowledged before the stop timeout",
                      links_[i]->site);
    }

    // 3. Disconnect. Even if "offline" was not acknowledged in time, Paho sends DISCONNECT
    //    after it on the same connection, so the broker sees "offline" before the clean
    //    disconnect that discards the will. (If Paho never accepted "offline" - buffer still
    //    full at the deadline - the status stays "online": logged below. MQTT 3.1.1 cannot close
    //    a connection "with will", and Paho's destroy sends DISCONNECT too.) For a site that is
    //    not connected this just stops the automatic reconnect (and may throw -3).
    std::vector<mqtt::token_ptr> disc(links_.size());
    for (std::size_t i = 0; i < links_.size(); ++i) {
      try {
        disc[i] = links_[i]->client->disconnect(static_cast<int>(options_.stop_timeout.count()));
      } catch (const mqtt::exception&) {
      }
    }
    const auto disc_deadline = Clock::now() + options_.stop_timeout;
    for (std::size_t i = 0; i < links_.size(); ++i) {
      try {
        if (disc[i]) disc[i]->wait_until(disc_deadline);
      } catch (const std::exception&) {
      }
      links_[i]->connected.store(false);
    }
  }

  // 4. Destroy the clients (this ends Paho's retries and threads for them). Whatever Paho still
  //    held is gone with them: count it, so that queue_messages goes back to 0.
  for (auto& link : links_) {
    link->client.reset();
    const auto left = link->outstanding.exchange(0);
    if (left > 0) {
      link->drop_not_connected.fetch_add(static_cast<std::uint64_t>(left));
      spdlog::warn("mqtt: site {}: {} messages undelivered at stop", link->site, left);
    }
  }
}

MqttPublisher::Stats MqttPublisher::stats() const {
  Stats st;
  st.connected = !links_.empty();
  for (const char* r : {kDropBufferFull, kDropPublishError, kDropNotConnected})
    st.dropped_total[r] = 0;
  for (const auto& link : links_) {
    SiteStats s;
    s.site = link->site;
    s.client_id = link->client_id;
    s.connected = link->connected.load();
    s.connects_total = link->connects.load();
    s.published_total = link->published.load();
    s.dropped_total[kDropBufferFull] = link->drop_buffer_full.load();
    s.dropped_total[kDropPublishError] = link->drop_publish_error.load();
    s.dropped_total[kDropNotConnected] = link->drop_not_connected.load();
    s.queue_messages = static_cast<std::uint64_t>(std::max<std::int64_t>(0, link->outstanding.load()));
    st.connected = st.connected && s.connected;
    st.published_total += s.published_total;
    for (const auto& [k, v] : s.dropped_total) st.dropped_total[k] += v;
    st.queue_messages += s.queue_messages;
    st.sites.push_back(std::move(s));
  }
  {
    std::lock_guard lock(mu_);
    st.snapshots_superseded = superseded_;
  }
  return st;
}

}  // namespace facility
