// PollEngine: event-driven Modbus client for many endpoints on one thread.
//
// Why our own client: a 6,000-device site holds thousands of sockets. libmodbus 3.1.6 waits
// with select(), which corrupts memory for a socket fd >= 1024, accepts replies with a wrong
// MBAP protocol id and ignores the MBAP length (pitfalls.md); and one thread per endpoint costs a
// stack and a context switch per request. Here one epoll loop drives every endpoint: non-blocking
// connects, one request in flight per endpoint, strict reply validation (frame.h), timers for
// timeouts, pauses and backoff. bench/RESULTS.md has the measurements behind the choice.
//
// Transports: Modbus TCP (MBAP), and RTU framing (CRC-16) over a raw TCP socket, the protocol
// of cheap serial-to-Ethernet gateways (libmodbus has no such mode). Serial lines are polled by
// SerialLinePoller (libmodbus RTU) instead.
//
// Host names are looked up on a resolver thread (resolver.h), never in the constructor or on the
// I/O thread, and again after every failed connect, so a name that did not resolve at boot, or
// that moved to a new address, is followed without a restart. IPv4 literals are used as they are.
//
// Per endpoint: its devices (unit ids) are served one request at a time, with an optional pause
// after connecting and between requests. The connection is kept open between polls; when it
// cannot be opened, the endpoint waits (exponential backoff from backoff_initial to backoff_max)
// and every poll due meanwhile fails at once with result "connection". A dead or slow endpoint
// only delays its own devices.
//
// Scheduling: every device has its own interval; its first poll is offset by a hash of its id
// within the interval, so polls spread evenly instead of bursting. A slot that comes due while
// the device's previous poll is still queued or running is skipped and counted as an overrun.
//
// Reload: a new engine can be built from a halted one (halt(), then the constructor with
// `previous`). It takes over every endpoint whose spec is unchanged, with its open connection
// and the request in flight, and on it every device whose spec is unchanged, with its schedule,
// backoff and memory of unreadable points, under the device's new index; what it does not take
// over is closed when `previous` is destroyed. A device on a changed endpoint, or changed
// itself, starts afresh.
//
// Thread-safety: construct, start(), halt() and stop() from one thread; the observer is called
// on the engine's I/O thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "collectors/modbus/device_poll.h"
#include "collectors/modbus/frame.h"
#include "collectors/modbus/poll_observer.h"
#include "collectors/modbus/resolver.h"

namespace facility::modbus {

struct EndpointSpec {
  std::string key;  // "tcp://10.0.0.5:502", for messages
  Framing framing = Framing::kTcp;  // kRtu: RTU frames over a raw TCP socket
  std::string host;
  int port = 502;
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds pause_after_connect{0};
  std::chrono::milliseconds pause_between_requests{0};
  std::chrono::milliseconds backoff_initial{1000};
  std::chrono::milliseconds backoff_max{60000};

  bool operator==(const EndpointSpec&) const = default;
};

struct EngineEndpoint {
  std::size_t index = 0;  // reported to PollObserver::on_connection
  EndpointSpec spec;
  std::vector<std::pair<std::size_t, DeviceSpec>> devices;  // (device index, spec)

  bool operator==(const EngineEndpoint&) const = default;
};

class PollEngine {
 public:
  // Throws std::invalid_argument for a device spec a codec rejects.
  PollEngine(std::vector<EngineEndpoint> endpoints, PollObserver& observer);
  // With the host-name lookup injected (tests); the default is getaddrinfo.
  PollEngine(std::vector<EngineEndpoint> endpoints, PollObserver& observer, ResolveFn resolve);
  // Takes over what is unchanged from `previous`, which must be halted (or never started).
  PollEngine(std::vector<EngineEndpoint> endpoints, PollObserver& observer, PollEngine& previous,
             ResolveFn resolve = {});
  ~PollEngine();
  PollEngine(const PollEngine&) = delete;
  PollEngine& operator=(const PollEngine&) = delete;

  void start();
  void stop();  // idempotent; returns when the I/O thread has exited, connections closed
  // Like stop(), but connections stay open and nothing is reported, for a successor.
  void halt();

  std::size_t endpoint_count() const;
  std::size_t device_count() const;
  // What this engine took over from its predecessor: device indices, and the indices of the
  // endpoints whose connection it took over open.
  struct Adopted {
    std::vector<std::size_t> devices;
    std::vector<std::size_t> connected_endpoints;
  };
  const Adopted& adopted() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
  std::thread thread_;
};

// A device's next slot on its own grid after `slot`, skipping the slots already past at `now`
// (they are not made up: each is an overrun). Shared by the engine and the serial poller.
struct NextSlot {
  SteadyTime at;
  long skipped = 0;
};
NextSlot advance_slot(SteadyTime slot, std::chrono::milliseconds interval, SteadyTime now);

// The first poll's offset within the interval, from a hash of the device id (stable per id).
std::chrono::milliseconds start_offset(const std::string& id, std::chrono::milliseconds interval);

}  // namespace facility::modbus
