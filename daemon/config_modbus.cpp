#include <regex>

#include "daemon/config_reader.h"

namespace facility {

std::string Endpoint::key() const { return scheme + "://" + host + ":" + std::to_string(port); }

namespace config_detail {

Endpoint parse_endpoint(Diagnostics& d, const YAML::Node& at, const std::string& what,
                        const std::string& s) {
  Endpoint e;
  static const std::regex re(R"(^(tcp)://([A-Za-z0-9.\-]+):([0-9]{1,5})$)");
  std::smatch m;
  if (!std::regex_match(s, m, re)) {
    d.error(at, what + ": endpoint \"" + s + "\" must look like tcp://HOST:PORT");
    return e;
  }
  e.scheme = m[1].str();
  e.host = m[2].str();
  e.port = std::stoi(m[3].str());
  if (e.port < 1 || e.port > 65535) d.error(at, what + ": endpoint port must be 1..65535");
  return e;
}

}  // namespace config_detail
}  // namespace facility
