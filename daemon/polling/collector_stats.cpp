#include "daemon/polling/collector_stats.h"

#include <cmath>
#include <unordered_map>

namespace facility {
namespace {

constexpr std::array<std::string_view, CollectorStats::kResults> kLabels{
    "ok",          "timeout",      "malformed",    "connection",   "exception_1",
    "exception_2", "exception_3",  "exception_4",  "exception_5",  "exception_6",
    "exception_7", "exception_8",  "exception_9",  "exception_10", "exception_11",
    "exception_12", "exception_13", "exception_14", "exception_15", "exception_other"};

int slot_of(const modbus::RequestEvent& e) {
  switch (e.result) {
    case modbus::RequestResult::kOk: return 0;
    case modbus::RequestResult::kTimeout: return 1;
    case modbus::RequestResult::kMalformed: return 2;
    case modbus::RequestResult::kConnection: return 3;
    case modbus::RequestResult::kException:
      return e.exception_code >= 1 && e.exception_code <= 15 ? 3 + e.exception_code : 19;
  }
  return 19;
}

}  // namespace

std::string_view CollectorStats::result_label(int slot) { return kLabels[static_cast<std::size_t>(slot)]; }

void CollectorStats::configure(std::vector<std::string> device_ids,
                               std::vector<std::string> endpoint_keys,
                               std::vector<std::size_t> device_endpoint) {
  device_ids_ = std::move(device_ids);
  endpoint_keys_ = std::move(endpoint_keys);
  device_endpoint_ = std::move(device_endpoint);
  devices_ = std::make_unique<Device[]>(device_ids_.size());
  endpoints_ = std::make_unique<EndpointState[]>(endpoint_keys_.size());
}

namespace {
template <std::size_t N>
void copy_counters(const std::array<std::atomic<std::uint64_t>, N>& from,
                   std::array<std::atomic<std::uint64_t>, N>& to) {
  for (std::size_t i = 0; i < N; ++i) to[i].store(from[i].load());
}
void copy_counter(const std::atomic<std::uint64_t>& from, std::atomic<std::uint64_t>& to) {
  to.store(from.load());
}
}  // namespace

void CollectorStats::carry_over(const CollectorStats& old,
                                const std::vector<std::size_t>& kept_devices,
                                const std::vector<std::size_t>& open_endpoints) {
  std::unordered_map<std::string_view, std::size_t> old_device;
  for (std::size_t i = 0; i < old.device_ids_.size(); ++i)
    old_device.emplace(old.device_ids_[i], i);
  for (std::size_t i = 0; i < device_ids_.size(); ++i) {
    auto it = old_device.find(device_ids_[i]);
    if (it == old_device.end()) continue;
    const Device& from = old.devices_[it->second];
    Device& to = devices_[i];
    copy_counters(from.requests, to.requests);
    copy_counters(from.buckets, to.buckets);
    copy_counter(from.polls, to.polls);
    copy_counter(from.sum_ns, to.sum_ns);
    copy_counter(from.overruns, to.overruns);
  }
  for (std::size_t i : kept_devices) {
    auto it = i < device_ids_.size() ? old_device.find(device_ids_[i]) : old_device.end();
    if (it != old_device.end())
      copy_counter(old.devices_[it->second].unreadable, devices_[i].unreadable);
  }
  std::unordered_map<std::string_view, std::size_t> old_endpoint;
  for (std::size_t i = 0; i < old.endpoint_keys_.size(); ++i) {
    old_endpoint.emplace(old.endpoint_keys_[i], i);
  }
  for (std::size_t i = 0; i < endpoint_keys_.size(); ++i) {
    auto it = old_endpoint.find(endpoint_keys_[i]);
    if (it == old_endpoint.end()) continue;
    copy_counter(old.endpoints_[it->second].connects, endpoints_[i].connects);
    copy_counter(old.endpoints_[it->second].discarded_bytes, endpoints_[i].discarded_bytes);
  }
  for (std::size_t i : open_endpoints) {
    if (i < endpoint_keys_.size()) endpoints_[i].up.store(true);
  }
}

void CollectorStats::on_request(const modbus::RequestEvent& e) {
  if (e.device_index >= device_ids_.size() || e.function < 0 || e.function >= kFunctions) return;
  devices_[e.device_index]
      .requests[static_cast<std::size_t>(e.function * kResults + slot_of(e))]
      .fetch_add(1, std::memory_order_relaxed);
}

void CollectorStats::on_poll(std::size_t device, double seconds, bool) {
  if (device >= device_ids_.size()) return;
  Device& d = devices_[device];
  d.polls.fetch_add(1, std::memory_order_relaxed);
  d.sum_ns.fetch_add(static_cast<std::uint64_t>(std::llround(seconds * 1e9)),
                     std::memory_order_relaxed);
  std::size_t b = 0;
  while (b < kDurationBuckets.size() && seconds > kDurationBuckets[b]) ++b;
  d.buckets[b].fetch_add(1, std::memory_order_relaxed);
}

void CollectorStats::on_overrun(std::size_t device) {
  if (device < device_ids_.size()) devices_[device].overruns.fetch_add(1, std::memory_order_relaxed);
}

void CollectorStats::on_connection(std::size_t endpoint, bool up) {
  if (endpoint >= endpoint_keys_.size()) return;
  endpoints_[endpoint].up.store(up, std::memory_order_relaxed);
  if (up) endpoints_[endpoint].connects.fetch_add(1, std::memory_order_relaxed);
}

void CollectorStats::set_unreadable_points(std::size_t device, std::size_t n) {
  if (device < device_ids_.size()) devices_[device].unreadable.store(n, std::memory_order_relaxed);
}

void CollectorStats::for_each_request(
    const std::function<void(const std::string&, int, std::string_view, std::uint64_t)>& fn) const {
  for (std::size_t i = 0; i < device_ids_.size(); ++i) {
    const Device& d = devices_[i];
    for (int f = 0; f < kFunctions; ++f) {
      for (int r = 0; r < kResults; ++r) {
        const auto n = d.requests[static_cast<std::size_t>(f * kResults + r)].load(
            std::memory_order_relaxed);
        if (n) fn(device_ids_[i], f, kLabels[static_cast<std::size_t>(r)], n);
      }
    }
  }
}

CollectorStats::Histogram CollectorStats::poll_duration(std::size_t device) const {
  Histogram h;
  if (device >= device_ids_.size()) return h;
  const Device& d = devices_[device];
  for (std::size_t b = 0; b < kDurationBuckets.size(); ++b) {
    h.buckets[b] = d.buckets[b].load(std::memory_order_relaxed);
  }
  h.count = d.polls.load(std::memory_order_relaxed);
  h.sum = static_cast<double>(d.sum_ns.load(std::memory_order_relaxed)) / 1e9;
  return h;
}

std::uint64_t CollectorStats::overruns(std::size_t device) const {
  return device < device_ids_.size() ? devices_[device].overruns.load(std::memory_order_relaxed) : 0;
}
std::uint64_t CollectorStats::unreadable_points(std::size_t device) const {
  return device < device_ids_.size() ? devices_[device].unreadable.load(std::memory_order_relaxed)
                                     : 0;
}
std::uint64_t CollectorStats::polls(std::size_t device) const {
  return device < device_ids_.size() ? devices_[device].polls.load(std::memory_order_relaxed) : 0;
}
bool CollectorStats::endpoint_up(std::size_t endpoint) const {
  return endpoint < endpoint_keys_.size() && endpoints_[endpoint].up.load(std::memory_order_relaxed);
}
void CollectorStats::on_discarded(std::size_t endpoint, std::size_t bytes) {
  if (endpoint < endpoint_keys_.size()) {
    endpoints_[endpoint].discarded_bytes.fetch_add(bytes, std::memory_order_relaxed);
  }
}

std::uint64_t CollectorStats::endpoint_discarded_bytes(std::size_t endpoint) const {
  return endpoint < endpoint_keys_.size()
             ? endpoints_[endpoint].discarded_bytes.load(std::memory_order_relaxed)
             : 0;
}

std::uint64_t CollectorStats::endpoint_connects(std::size_t endpoint) const {
  return endpoint < endpoint_keys_.size()
             ? endpoints_[endpoint].connects.load(std::memory_order_relaxed)
             : 0;
}

}  // namespace facility
