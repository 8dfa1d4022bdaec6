#include "daemon/polling/polling.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <map>

namespace facility {

modbus::DeviceSpec make_device_spec(const Device& d) {
  modbus::DeviceSpec spec;
  spec.id = d.id;
  spec.unit = d.unit;
  spec.interval = d.interval;
  spec.timeout = d.timeout;
  spec.retries = d.modbus.retries;
  spec.busy_retries = d.modbus.busy_retries;
  spec.busy_retry_delay = d.modbus.busy_retry_delay;
  if (d.profile) {
    spec.plan.max_registers = d.profile->max_registers_per_read;
    spec.plan.max_gap = d.profile->max_gap;
    spec.plan.forbidden = d.profile->never_read;
    for (const auto& p : d.profile->points) {
      spec.points.push_back(p.spec);
      spec.every.push_back(every_nth_poll(p.interval, d.interval));  // slower point groups
    }
    if (std::all_of(spec.every.begin(), spec.every.end(), [](int n) { return n == 1; })) {
      spec.every.clear();
    }
    for (const auto& dp : d.profile->derived) spec.derived.push_back(dp.spec);
  }
  if (d.modbus.max_registers_per_read) spec.plan.max_registers = *d.modbus.max_registers_per_read;
  if (d.modbus.max_gap) spec.plan.max_gap = *d.modbus.max_gap;
  spec.plan.forbidden.insert(spec.plan.forbidden.end(), d.modbus.never_read.begin(),
                             d.modbus.never_read.end());
  return spec;
}

modbus::SerialSpec make_serial_spec(const Endpoint& ep, const EndpointSettings& es) {
  modbus::SerialSpec s;
  s.key = ep.key();
  s.device = ep.device;
  s.baud = es.baud;
  s.parity = es.parity;
  s.data_bits = es.data_bits;
  s.stop_bits = es.stop_bits;
  s.pause_after_connect = es.pause_after_connect;
  s.pause_between_requests = es.pause_between_requests;
  s.backoff_initial = es.backoff_initial;
  s.backoff_max = es.backoff_max;
  return s;
}

modbus::EndpointSpec make_endpoint_spec(const Endpoint& ep, const EndpointSettings& es) {
  modbus::EndpointSpec s;
  s.key = ep.key();
  s.framing = ep.transport == Transport::kRtuOverTcp ? modbus::Framing::kRtu : modbus::Framing::kTcp;
  s.host = ep.host;
  s.port = ep.port;
  s.connect_timeout = es.connect_timeout;
  s.pause_after_connect = es.pause_after_connect;
  s.pause_between_requests = es.pause_between_requests;
  s.backoff_initial = es.backoff_initial;
  s.backoff_max = es.backoff_max;
  return s;
}

PollPlan make_poll_plan(const Config& config) {
  PollPlan plan;
  std::map<std::string, std::size_t> ep_index;
  std::vector<std::size_t> position;  // endpoint index -> position in serial or tcp
  for (const Device* d : config.all_devices()) {
    const std::size_t di = plan.device_ids.size();
    plan.device_ids.push_back(d->id);
    const std::string key = d->endpoint.key();
    auto [it, fresh] = ep_index.emplace(key, plan.endpoint_keys.size());
    plan.device_endpoint.push_back(it->second);
    const EndpointSettings es = config.endpoint_settings(d->endpoint);
    const bool on_serial = d->endpoint.transport == Transport::kRtu;
    if (fresh) {
      plan.endpoint_keys.push_back(key);
      // Position in `serial` / `tcp`, by endpoint index: no search per device at 6,000 devices.
      position.push_back(on_serial ? plan.serial.size() : plan.tcp.size());
      if (on_serial) {
        plan.serial.push_back({it->second, make_serial_spec(d->endpoint, es), {}});
      } else {
        modbus::EngineEndpoint e;
        e.index = it->second;
        e.spec = make_endpoint_spec(d->endpoint, es);
        plan.tcp.push_back(std::move(e));
      }
    }
    modbus::DeviceSpec spec = make_device_spec(*d);
    spec.backoff_max = es.backoff_max;
    auto& devices = on_serial ? plan.serial[position[it->second]].devices
                              : plan.tcp[position[it->second]].devices;
    devices.emplace_back(di, std::move(spec));
  }
  return plan;
}

PollingService::PollingService(const Config& config, ReadingStore& store, CollectorStats& stats,
                               ResultHook hook, TransitionLog* transitions)
    : PollingService(make_poll_plan(config), store, stats, std::move(hook), transitions) {}

PollingService::PollingService(PollPlan plan, ReadingStore& store, CollectorStats& stats,
                               ResultHook hook, TransitionLog* transitions)
    : store_(store), stats_(stats), hook_(std::move(hook)), transitions_(transitions) {
  build(std::move(plan), nullptr);
}

PollingService::PollingService(PollPlan plan, ReadingStore& store, CollectorStats& stats,
                               std::unique_ptr<PollingService> previous, ResultHook hook,
                               TransitionLog* transitions)
    : store_(store), stats_(stats), hook_(std::move(hook)), transitions_(transitions) {
  build(std::move(plan), previous.get());
}

void PollingService::build(PollPlan plan, PollingService* previous) {
  endpoint_count_ = plan.endpoint_keys.size();
  point_slots_.resize(plan.device_ids.size());
  stats_.configure(std::move(plan.device_ids), std::move(plan.endpoint_keys),
                   std::move(plan.device_endpoint));
  if (previous) previous->halt();
  std::vector<std::size_t> kept;  // devices and open connections taken over
  std::vector<std::size_t> open;
  if (!plan.tcp.empty()) {
    if (previous && previous->engine_) {
      engine_ =
          std::make_unique<modbus::PollEngine>(std::move(plan.tcp), observer(), *previous->engine_);
      const auto& a = engine_->adopted();
      kept = a.devices;
      open = a.connected_endpoints;
    } else {
      engine_ = std::make_unique<modbus::PollEngine>(std::move(plan.tcp), observer());
    }
  }
  for (auto& s : plan.serial) {
    modbus::SerialLinePoller* before = nullptr;
    if (previous) {
      for (auto& p : previous->serial_) {
        if (p->spec().key == s.spec.key) before = p.get();
      }
    }
    if (!before) {
      serial_.push_back(std::make_unique<modbus::SerialLinePoller>(
          s.index, std::move(s.spec), std::move(s.devices), observer()));
      continue;
    }
    serial_.push_back(std::make_unique<modbus::SerialLinePoller>(
        s.index, std::move(s.spec), std::move(s.devices), observer(), *before));
    const auto& line = *serial_.back();
    kept.insert(kept.end(), line.adopted_devices().begin(), line.adopted_devices().end());
    if (line.line_adopted()) open.push_back(s.index);
  }
  if (previous) stats_.carry_over(previous->stats_, kept, open);
  taken_over_ = kept.size();
  connections_taken_over_ = open.size();
}

PollingService::~PollingService() {
  stop();
  // Here, while this observer is whole: a serial line not taken over reports its close.
  engine_.reset();
  serial_.clear();
}

void PollingService::halt() {
  if (engine_) engine_->halt();
  for (auto& s : serial_) s->halt();
}

void PollingService::start() {
  if (engine_) engine_->start();
  for (auto& s : serial_) s->start();
}

void PollingService::stop() {
  if (engine_) engine_->stop();
  for (auto& s : serial_) s->stop();
}

const PollingService::PointSlots& PollingService::point_slots(const modbus::PollResult& r) {
  // Each device index is only ever reported by its own poller thread, and the vector is sized
  // when the service is built: no two threads touch one element. Every result of one DevicePoll
  // carries the same names vector (shared by all devices with the same points), so the slots
  // are looked up once per device and built once per profile.
  std::shared_ptr<const PointSlots>& cached = point_slots_[r.device_index];
  if (!cached || !r.names || cached->source != r.names || cached->slot.size() != r.values.size()) {
    if (!r.names) {
      cached = std::make_shared<const PointSlots>(PointSlots::of(r));
    } else {
      std::lock_guard lock(slots_mu_);
      auto& shared = slots_by_names_[r.names.get()];
      if (!shared || shared->slot.size() != r.values.size()) {
        shared = std::make_shared<const PointSlots>(PointSlots::of(r));
      }
      cached = shared;
    }
  }
  return *cached;
}

PollingService::PointSlots PollingService::PointSlots::of(const modbus::PollResult& r) {
  std::vector<std::string> names;
  names.reserve(r.values.size());
  for (const auto& v : r.values) names.emplace_back(v.name);
  PointSlots s;
  s.source = r.names;
  s.names = std::make_shared<const PointNames>(names);
  s.slot.reserve(r.values.size());
  for (const auto& v : r.values) s.slot.push_back(s.names->find(v.name));
  return s;
}

void PollingService::on_result(modbus::PollResult&& r) {
  if (hook_) hook_(r);
  stats_.on_poll(r.device_index, std::chrono::duration<double>(r.duration).count(), r.ok);
  if (!r.ok) {
    spdlog::debug("poll {} failed: {}", r.device_id, r.error);
    store_.put_failure(r.device_id, r.completed_at, std::move(r.error));
    return;
  }
  DeviceReading dr;
  dr.device_id = std::move(r.device_id);
  dr.polled_at = r.completed_at;
  const PointSlots& slots = point_slots(r);
  dr.points = PointMap(slots.names);
  std::size_t unreadable = 0;
  for (std::size_t i = 0; i < r.values.size(); ++i) {
    auto& pv = r.values[i];
    if (pv.unreadable) {
      ++unreadable;
      dr.complete = false;
      continue;
    }
    dr.points.set(slots.slot[i],
                  PointValue{pv.value, std::move(pv.unit), std::move(pv.text), pv.read_at});
  }
  dr.unreadable = unreadable;
  if (unreadable != stats_.unreadable_points(r.device_index)) {
    spdlog::warn("device {}: {} point(s) unreadable (the device rejects their addresses); "
                 "see facility_modbus_requests_total and `facilityd probe`",
                 dr.device_id, unreadable);
    stats_.set_unreadable_points(r.device_index, unreadable);
  }
  store_.put_success(std::move(dr));
}

void PollingService::on_request(const modbus::RequestEvent& e) { stats_.on_request(e); }
void PollingService::on_overrun(std::size_t device_index) { stats_.on_overrun(device_index); }
void PollingService::on_reachability(std::size_t endpoint_index, bool reachable,
                                     const std::string& reason) {
  if (!transitions_ || endpoint_index >= stats_.endpoint_keys().size()) return;
  const std::string& key = stats_.endpoint_keys()[endpoint_index];
  if (reachable) {
    transitions_->up("endpoint", key);
  } else {
    transitions_->down("endpoint", key, reason);
  }
}

void PollingService::on_discarded(std::size_t endpoint_index, std::size_t bytes) {
  stats_.on_discarded(endpoint_index, bytes);
}

void PollingService::on_connection(std::size_t endpoint_index, bool up) {
  stats_.on_connection(endpoint_index, up);
}

}  // namespace facility
