#include "daemon/polling.h"

#include <spdlog/spdlog.h>

#include <map>

namespace facility {

PollingService::PollingService(const Config& config, ReadingStore& store, CollectorStats& stats)
    : store_(store), stats_(stats) {
  // Group devices by endpoint: one poller (one connection, one thread) per endpoint.
  std::map<std::string, std::pair<modbus::EndpointOptions, std::vector<modbus::DeviceSpec>>> eps;
  for (const Device* d : config.all_devices()) {
    auto& [eo, specs] = eps[d->endpoint.key()];
    eo.host = d->endpoint.host;
    eo.port = d->endpoint.port;
    modbus::DeviceSpec spec;
    spec.id = d->id;
    spec.unit = d->unit;
    spec.interval = d->interval;
    spec.timeout = d->timeout;
    spec.max_registers_per_read = d->profile->max_registers_per_read;
    for (const auto& p : d->profile->points) spec.points.push_back(p.spec);
    specs.push_back(std::move(spec));
  }
  for (auto& [key, v] : eps) {
    auto& [eo, specs] = v;
    pollers_.push_back(std::make_unique<modbus::EndpointPoller>(
        eo, std::move(specs),
        [this](const modbus::PollResult& r) {
          stats_.on_poll(r.device_id, std::chrono::duration<double>(r.duration).count());
          if (r.ok) {
            DeviceReading dr;
            dr.device_id = r.device_id;
            dr.polled_at = r.completed_at;
            for (const auto& pv : r.values) dr.points[pv.name] = PointValue{pv.value, pv.unit};
            store_.put_success(std::move(dr));
          } else {
            store_.put_failure(r.device_id, r.completed_at, r.error);
            spdlog::debug("poll {} failed: {}", r.device_id, r.error);
          }
        },
        [this](const modbus::RequestEvent& e) { stats_.on_request(e); }));
  }
}

PollingService::~PollingService() { stop(); }

void PollingService::start() {
  for (auto& p : pollers_) p->start();
}

void PollingService::stop() {
  for (auto& p : pollers_) p->stop();
}

}  // namespace facility
