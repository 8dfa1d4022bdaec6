// Modbus transport settings of the configuration: endpoints (and, later, per-device quirks).
// Parsed by daemon/config_modbus.cpp; see docs/config.md.
#pragma once

#include <string>

namespace facility {

struct Endpoint {
  std::string scheme;  // "tcp"
  std::string host;
  int port = 502;
  std::string key() const;  // "tcp://host:port", identifies one connection / serial line
};

}  // namespace facility
