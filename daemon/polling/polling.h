// PollingService: turns the configured devices into running collectors that feed the
// ReadingStore and the CollectorStats: one event-driven PollEngine thread for every Modbus TCP
// and RTU-over-TCP endpoint, and one SerialLinePoller thread per RTU serial line.
//
// Thread-safety: start()/stop() from the owning thread. Non-copyable, non-movable. The observer
// methods run on poller threads and only touch thread-safe state (ReadingStore, CollectorStats).
#pragma once

#include <concepts>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "collectors/modbus/engine.h"
#include "collectors/modbus/serial_poller.h"
#include "daemon/config/config.h"
#include "daemon/logging/logging.h"
#include "daemon/polling/collector_stats.h"
#include "daemon/readings/readings.h"

namespace facility {

// The collector's view of one configured device (plan options merged from profile and device).
modbus::DeviceSpec make_device_spec(const Device& d);
// The collectors' view of an endpoint with its settings: a serial line, or a TCP endpoint (the
// daemon and `facilityd probe` build them here, so they cannot drift apart).
modbus::SerialSpec make_serial_spec(const Endpoint& ep, const EndpointSettings& es);
modbus::EndpointSpec make_endpoint_spec(const Endpoint& ep, const EndpointSettings& es);

// Everything the collectors are built from: the devices in index order, their endpoints, and
// per endpoint the specs its poller runs. Two configurations with equal plans poll exactly the
// same way, so a reload between them keeps the running pollers (their connections, schedules
// and unreadable-point memory) instead of restarting them.
struct PollPlan {
  std::vector<std::string> device_ids;
  std::vector<std::string> endpoint_keys;
  std::vector<std::size_t> device_endpoint;  // device index -> endpoint index
  std::vector<modbus::EngineEndpoint> tcp;   // Modbus TCP and RTU-over-TCP endpoints
  struct Serial {
    std::size_t index = 0;
    modbus::SerialSpec spec;
    std::vector<std::pair<std::size_t, modbus::DeviceSpec>> devices;
    bool operator==(const Serial&) const = default;
  };
  std::vector<Serial> serial;
  bool operator==(const PollPlan&) const = default;
};
PollPlan make_poll_plan(const Config& config);
// A member added to a spec without operator== would silently make every plan compare unequal
// (or not compile far from here): say so here.
static_assert(std::equality_comparable<PollPlan>,
              "every collector spec needs a defaulted operator== (reload compares poll plans)");

class PollingService : private modbus::PollObserver {
 public:
  // Called on a poller thread with every result before it is stored (benchmarks, tests).
  using ResultHook = std::function<void(const modbus::PollResult&)>;

  // `store`, `stats` and `transitions` must outlive the service. Configures `stats` for the
  // devices. Endpoints becoming unreachable and reachable again go to `transitions`.
  PollingService(const Config& config, ReadingStore& store, CollectorStats& stats,
                 ResultHook hook = nullptr, TransitionLog* transitions = nullptr);
  PollingService(PollPlan plan, ReadingStore& store, CollectorStats& stats,
                 ResultHook hook = nullptr, TransitionLog* transitions = nullptr);
  // A reload: takes over from `previous` (halted here, destroyed at the end) every endpoint,
  // serial line and device whose spec is unchanged, with its connection and schedule
  // (PollEngine, SerialLinePoller), and closes the rest. The counters of the devices and
  // endpoints that stay go on from `previous`'s stats (CollectorStats::carry_over), which must
  // be alive until this returns.
  PollingService(PollPlan plan, ReadingStore& store, CollectorStats& stats,
                 std::unique_ptr<PollingService> previous, ResultHook hook = nullptr,
                 TransitionLog* transitions = nullptr);
  ~PollingService() override;
  PollingService(const PollingService&) = delete;
  PollingService& operator=(const PollingService&) = delete;

  void start();
  void stop();  // idempotent
  // Stops polling and leaves the connections open, for a successor (the reload constructor).
  void halt();
  std::size_t endpoint_count() const { return endpoint_count_; }
  // What this service took over from its predecessor: devices with their schedule, and open
  // connections (endpoints and serial lines); 0 without a predecessor.
  std::size_t devices_taken_over() const { return taken_over_; }
  std::size_t connections_taken_over() const { return connections_taken_over_; }

 private:
  modbus::PollObserver& observer() { return *this; }
  void on_result(modbus::PollResult&& r) override;
  void on_request(const modbus::RequestEvent& e) override;
  void on_overrun(std::size_t device_index) override;
  void on_connection(std::size_t endpoint_index, bool up) override;
  void on_reachability(std::size_t endpoint_index, bool reachable,
                       const std::string& reason) override;
  void on_discarded(std::size_t endpoint_index, std::size_t bytes) override;

  // Each device's point names, interned once (a reply's values come in the same order every
  // time): a reading is then one PointMap of slots, no name string or tree node per point.
  struct PointSlots {
    std::shared_ptr<const std::vector<std::string>> source;  // the PollResult::names built from
    std::shared_ptr<const PointNames> names;
    // value index -> slot in `names` (point names are unique: the configuration rejects
    // duplicates)
    std::vector<std::size_t> slot;
    static PointSlots of(const modbus::PollResult& r);
  };
  const PointSlots& point_slots(const modbus::PollResult& r);

  ReadingStore& store_;
  CollectorStats& stats_;
  std::vector<std::shared_ptr<const PointSlots>> point_slots_;  // by device index
  std::mutex slots_mu_;  // guards slots_by_names_ (poller threads of several lines)
  std::map<const void*, std::shared_ptr<const PointSlots>> slots_by_names_;
  ResultHook hook_;
  TransitionLog* transitions_;
  void build(PollPlan plan, PollingService* previous);

  std::size_t endpoint_count_ = 0;
  std::size_t taken_over_ = 0;
  std::size_t connections_taken_over_ = 0;
  std::unique_ptr<modbus::PollEngine> engine_;
  std::vector<std::unique_ptr<modbus::SerialLinePoller>> serial_;
};

}  // namespace facility
