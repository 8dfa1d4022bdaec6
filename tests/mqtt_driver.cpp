// facility-mqtt-driver: drives the real MqttPublisher with synthetic snapshots of a config's
// inventory, for the MQTT integration tests (tests/integration/test_mqtt_*.py).
//
// Why a driver and not only the daemon: the tests need to know exactly which messages were
// queued (every snapshot changes every value beyond the deadbands), to raise and clear alerts
// at will, and to render entities in every state (stale, estimated, three-phase) - without
// waiting for the model and the simulator to get there. Everything below the snapshot (config
// loading, rendering, change filter, outbox, journal, Paho, TLS, the broker) is the product's.
//
//   facility-mqtt-driver --config FILE            commands on stdin, one JSON line per answer
//   facility-mqtt-driver --config FILE --render   print every message of a varied snapshot
//
// Commands: snap K | alert SITE KIND SUBJECT raised|cleared SEVERITY VALUE THRESHOLD UNIT |
//           stats | wait-connected SECONDS | wait-drained SECONDS | stop
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdlib>
#include <cmath>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>

#include "daemon/config/config.h"
#include "daemon/sinks/mqtt/publisher.h"
#include "daemon/sinks/mqtt/render.h"

namespace {

using namespace facility;
using nlohmann::json;

struct Driver {
  std::shared_ptr<const Config> cfg;
  std::vector<AlertState> alerts;

  // Snapshot number k: every value moves with k by far more than any default deadband.
  // `varied` adds stale, estimated and failing entities (for the schema test).
  std::shared_ptr<const FacilitySnapshot> snapshot(int k, bool varied) const {
    auto snap = std::make_shared<FacilitySnapshot>();
    const TimePoint now = Clock::now();
    snap->computed_at = now;
    snap->config = cfg;
    snap->alerts = alerts;
    int i = 0;
    for (const auto& site : cfg->sites) {
      SiteSnapshot ss;
      ss.site = &site;
      double it = 0;
      for (const auto& c : site.cabinets) {
        ++i;
        CabinetSnapshot cs;
        cs.cabinet = &c;
        cs.quality = varied && i % 4 == 0 ? Quality::kStale : Quality::kGood;
        const bool good = cs.quality == Quality::kGood;
        const double total = 1000.0 + 100.0 * k + 10.0 * i;
        const int phases = c.breaker ? c.breaker->phases : 1;
        for (const auto& f : c.feeds) {
          FeedPower fp;
          fp.feed = f;
          fp.power_w = good ? std::optional<double>(total / c.feeds.size()) : std::nullopt;
          fp.estimated = varied && i % 3 == 0;
          if (c.feeds.size() > 1 && good) fp.failover_headroom_w = c.rated_w * 0.8 - total;
          for (int p = 1; phases == 3 && p <= 3; ++p) {
            PhasePower pp;
            pp.phase = "L" + std::to_string(p);
            pp.power_w = total / c.feeds.size() / 3;
            pp.voltage_v = 230;
            pp.current_a = *pp.power_w / 230;
            if (c.feeds.size() > 1) pp.failover_headroom_w = c.rated_w * 0.8 / 3 - total / 3;
            fp.phases.push_back(pp);
          }
          cs.estimated = cs.estimated || fp.estimated;
          cs.feeds.push_back(fp);
        }
        if (good) {
          cs.power_w = total;
          cs.utilization = c.rated_w > 0 ? total / c.rated_w : std::optional<double>();
          cs.powered = true;
          if (c.feeds.size() > 1) cs.failover_headroom_w = c.rated_w * 0.8 - total;
          if (phases == 3) cs.phase_imbalance = 0.01 * (i % 5);
          cs.overload = cs.utilization && *cs.utilization > 1.0   ? OverloadState::kCritical
                        : cs.utilization && *cs.utilization > 0.8 ? OverloadState::kWarning
                                                                   : OverloadState::kOk;
          it += total;
        }
        cs.inlet_c = 20.0 + 0.5 * k + 0.1 * (i % 10);
        cs.humidity_ratio = 0.4;
        ss.cabinets.push_back(std::move(cs));
        ++ss.cabinets_total;
        ++ss.cabinets_powered;
        ++ss.cabinets_measured;
      }
      ss.it_power_w = it;
      ss.it_power_source = "pdu_sum";
      ss.it_coverage = varied ? 0.75 : 1.0;
      ss.facility_power_w = it * 1.3;
      ss.facility_coverage = 1.0;
      ss.pue = 1.3 + 0.01 * k;
      ss.rated_w = 0;
      for (const auto& c : site.cabinets) ss.rated_w += c.rated_w;
      ss.occupancy_powered = 1.0;
      for (const auto& d : site.devices) {
        if (d.kind != DeviceKind::kCooling) continue;
        CoolingSnapshot cool;
        cool.device = &d;
        cool.supply_c = 18 + 0.5 * k;
        cool.return_c = 30 + 0.5 * k;
        cool.power_w = 5000 + 100.0 * k;
        cool.fan_ratio = 0.5;
        cool.running = true;
        ss.cooling.push_back(cool);
      }
      for (const auto& d : site.devices) {
        if (d.kind != DeviceKind::kUps) continue;
        UpsSnapshot u;
        u.device = &d;
        u.fresh = true;
        for (int p = 1; p <= 3; ++p) {
          u.phases.push_back({"L" + std::to_string(p), 9000.0 + 100 * p + k, 0.6 + 0.01 * p});
        }
        u.power_w = 27600.0 + 3 * k;
        u.load_ratio = 0.63;
        u.runtime_s = 1500;
        u.charge_ratio = 0.98;
        u.output_source = varied ? "battery" : "normal";
        u.battery_state = "normal";
        u.on_battery = varied;
        u.on_bypass = false;
        u.on_battery_alert = varied;
        u.runtime_state = varied ? OverloadState::kWarning : OverloadState::kOk;
        ss.ups.push_back(std::move(u));
      }
      snap->sites.push_back(std::move(ss));
      int j = 0;
      for (const auto& d : site.devices) {
        ++j;
        DeviceSnapshot ds;
        ds.device = &d;
        const bool down = varied && j % 5 == 0;
        ds.up = !down;
        ds.quality = down ? Quality::kError : Quality::kGood;
        ds.last_success = down ? TimePoint{} : now;
        ds.last_error = down ? "timeout" : "";
        if (!down && d.profile) {
          auto r = std::make_shared<DeviceReading>();
          r->device_id = d.id;
          r->polled_at = now;
          int p = 0;
          for (const auto& pt : d.profile->points)
            r->points[pt.spec.name] = PointValue{100.0 * k + 10.0 * (++p), pt.spec.unit};
          ds.reading = r;
        }
        snap->devices.push_back(std::move(ds));
      }
    }
    return snap;
  }
};

json stats_json(const MqttPublisher::Stats& s) {
  json sites = json::array();
  for (const auto& x : s.sites)
    sites.push_back({{"site", x.site}, {"connected", x.connected}, {"connects", x.connects_total}});
  return json{{"connected", s.connected},
              {"published", s.published_total},
              {"queued_total", s.queued_total},
              {"unchanged", s.unchanged_total},
              {"dropped", s.dropped_total},
              {"queue_messages", s.queue_messages},
              {"queue_bytes", s.queue_bytes},
              {"queue_events", s.queue_events},
              {"in_flight", s.in_flight},
              {"persist_errors", s.persist_errors_total},
              {"processed", s.snapshots_processed},
              {"connects", s.connects_total},
              {"sites", sites}};
}

template <class Pred>
bool wait_for(Pred pred, double seconds) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<int>(seconds * 1000));
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

int run(int argc, char** argv) {
  std::string config_path;
  bool render = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--config" && i + 1 < argc) config_path = argv[++i];
    else if (a == "--render") render = true;
    else {
      std::cerr << "usage: facility-mqtt-driver --config FILE [--render]\n";
      return 2;
    }
  }
  Driver drv;
  try {
    drv.cfg = std::make_shared<const Config>(load_config(config_path));
  } catch (const ConfigException& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
  if (render) {
    AlertState a;
    a.kind = "cabinet_overload";
    a.severity = "warning";
    a.raised = true;
    a.value = 0.93;
    a.threshold = 0.9;
    a.unit = "ratio";
    a.since = Clock::now();
    a.message = "synthetic";
    for (const auto& s : drv.cfg->sites) {
      if (s.cabinets.empty()) continue;
      a.site = s.id;
      a.subject = s.cabinets.front().id;
      drv.alerts.push_back(a);
      AlertState cleared = a;
      cleared.kind = "inlet_temperature";
      cleared.raised = false;
      cleared.value.reset();
      cleared.unit = "celsius";
      drv.alerts.push_back(cleared);
    }
    for (const auto& m : render_messages(*drv.snapshot(1, true), drv.cfg->mqtt.topic_prefix))
      std::cout << json{{"topic", m.topic}, {"kind", to_string(m.kind)}, {"site", m.site},
                        {"payload", json::parse(m.payload)}}
                       .dump()
                << "\n";
    return 0;
  }

  std::vector<std::string> sites;
  for (const auto& s : drv.cfg->sites) sites.push_back(s.id);
  MqttPublisherOptions opts;
  opts.state_dir = drv.cfg->daemon.state_dir;
  opts.stop_timeout = std::chrono::milliseconds(3000);
  MqttPublisher pub(drv.cfg->mqtt, sites, opts);
  pub.start();

  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream in(line);
    std::string cmd;
    in >> cmd;
    json out{{"cmd", cmd}};
    if (cmd == "snap") {
      int k = 0;
      in >> k;
      auto snap = drv.snapshot(k, false);
      const auto before = pub.stats().snapshots_processed;
      pub.publish(snap);
      out["ok"] = wait_for([&] { return pub.stats().snapshots_processed > before; }, 30);
      out["snap"] = k;
      out["ts"] = format_rfc3339_ms(snap->computed_at);
    } else if (cmd == "alert") {
      AlertState a;
      std::string state;
      double value = 0, threshold = 0;
      in >> a.site >> a.kind >> a.subject >> state >> a.severity >> value >> threshold >> a.unit;
      a.raised = state == "raised";
      a.value = value;
      a.threshold = threshold;
      a.since = Clock::now();
      a.message = a.kind + " " + state;
      std::erase_if(drv.alerts, [&](const AlertState& x) {
        return x.site == a.site && x.kind == a.kind && x.subject == a.subject;
      });
      drv.alerts.push_back(a);
      out["ok"] = true;
      out["since"] = format_rfc3339_ms(a.since);
    } else if (cmd == "wait-connected" || cmd == "wait-drained") {
      double secs = 30;
      in >> secs;
      const bool drained = cmd == "wait-drained";
      out["ok"] = wait_for(
          [&] {
            const auto s = pub.stats();
            return s.connected && (!drained || s.queue_messages == 0);
          },
          secs);
    } else if (cmd == "stats") {
      out["ok"] = true;
    } else if (cmd == "stop") {
      pub.stop();
      out["ok"] = true;
    } else {
      out["ok"] = false;
      out["error"] = "unknown command";
    }
    out["stats"] = stats_json(pub.stats());
    std::cout << out.dump() << std::endl;
    if (cmd == "stop") return 0;
  }
  pub.stop();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // stdout carries the answers; the log goes to stderr.
  spdlog::set_default_logger(spdlog::stderr_color_mt("driver"));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ %v");
  if (const char* level = std::getenv("FACILITY_MQTT_DRIVER_LOG_LEVEL"))
    spdlog::set_level(spdlog::level::from_str(level));
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "facility-mqtt-driver: " << e.what() << "\n";
    return 1;
  }
}
