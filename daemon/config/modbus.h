// Modbus transport settings of the configuration: endpoints (Modbus TCP, RTU over a raw TCP
// socket, RTU on a serial line), per-endpoint settings (the top-level `endpoints` list) and
// per-device quirks. Parsed by daemon/config/modbus.cpp; see docs/config.md.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "collectors/modbus/planner.h"

namespace facility {

enum class Transport { kTcp, kRtuOverTcp, kRtu };

struct Endpoint {
  std::string scheme;  // "tcp", "rtu-over-tcp", "rtu"
  std::string host;    // tcp, rtu-over-tcp
  int port = 502;
  Transport transport = Transport::kTcp;
  std::string device = {};  // rtu: serial device path, e.g. /dev/ttyUSB0
  // "tcp://host:port", "rtu-over-tcp://host:port" or "rtu:///dev/ttyUSB0": identifies one
  // connection / serial line.
  std::string key() const;
};

// Parses "tcp://HOST:PORT", "rtu-over-tcp://HOST:PORT" or "rtu:///dev/PATH"; nullopt with *error
// set when the string is none of these.
std::optional<Endpoint> parse_endpoint_uri(const std::string& s, std::string* error);

// Why `unit` is not a valid unit id behind endpoint `e`, or "" when it is. Modbus TCP: 0..255
// (the TCP implementation guide recommends 255 for a device addressed directly); behind a
// serial bus (rtu://, rtu-over-tcp://): 1..247 (0 is broadcast, 248..255 are reserved).
// Shared by the configuration and `facilityd probe`.
std::string unit_problem(const Endpoint& e, long long unit);

// A point with its own `interval` is read on every N-th poll of its device: N = the point's
// interval / the device's, rounded, at least 1. nullopt (no own interval) = every poll.
int every_nth_poll(std::optional<std::chrono::milliseconds> point_interval,
                   std::chrono::milliseconds device_interval);

// Settings of one endpoint (top-level `endpoints` list); endpoints not listed get the defaults.
struct EndpointSettings {
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds pause_after_connect{0};
  std::chrono::milliseconds pause_between_requests{0};
  std::chrono::milliseconds backoff_initial{1000};
  std::chrono::milliseconds backoff_max{60000};
  // Serial lines only.
  int baud = 9600;
  char parity = 'N';  // N, E, O
  int data_bits = 8;
  int stop_bits = 1;
};

// Per-device Modbus settings beyond endpoint/unit/interval/timeout.
struct DeviceModbusSettings {
  int retries = 1;       // further attempts after a timeout or a lost connection
  int busy_retries = 3;  // further attempts after exception 5/6
  std::chrono::milliseconds busy_retry_delay{250};
  std::optional<int> max_registers_per_read;  // overrides the profile's
  std::optional<int> max_gap;                 // overrides the profile's
  std::vector<modbus::AddressRange> never_read;  // in addition to the profile's
};

}  // namespace facility
