// PollingService: turns the configured devices into running collectors (one poller per Modbus
// endpoint) that feed the ReadingStore and the CollectorStats.
//
// Thread-safety: start()/stop() from the owning thread. Non-copyable, non-movable.
#pragma once

#include <memory>
#include <vector>

#include "collectors/modbus/endpoint_poller.h"
#include "daemon/collector_stats.h"
#include "daemon/config.h"
#include "daemon/readings.h"

namespace facility {

class PollingService {
 public:
  // `config`, `store` and `stats` must outlive the service.
  PollingService(const Config& config, ReadingStore& store, CollectorStats& stats);
  ~PollingService();
  PollingService(const PollingService&) = delete;
  PollingService& operator=(const PollingService&) = delete;

  void start();
  void stop();  // idempotent
  std::size_t endpoint_count() const { return pollers_.size(); }

 private:
  ReadingStore& store_;
  CollectorStats& stats_;
  std::vector<std::unique_ptr<modbus::EndpointPoller>> pollers_;
};

}  // namespace facility
