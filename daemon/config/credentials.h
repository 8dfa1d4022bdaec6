// Credentials read while the configuration loads (mqtt.auth, daemon.auth). They are never
// written in the config file: each comes from a file (its first line; e.g. a systemd
// credential) or an environment variable. Parsed by config_detail::parse_credentials
// (mqtt.cpp); documented in docs/config.md.
#pragma once

#include <optional>
#include <string>

namespace facility {

struct Credentials {
  std::optional<std::string> username;  // resolved value
  std::optional<std::string> password;  // resolved value; never logged
  std::string username_source;          // "file /path" or "environment variable NAME", for logs
  std::string password_source;
};

}  // namespace facility
