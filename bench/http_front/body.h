// Synthetic Prometheus exposition body of about `mb` MB (shared by all prototypes).
#pragma once
#include <cstdio>
#include <cstdlib>
#include <string>

inline std::string make_body(double mb) {
  const std::size_t target = static_cast<std::size_t>(mb * 1000 * 1000);
  std::string s;
  s.reserve(target + 256);
  s += "# HELP facility_cabinet_power_watts Cabinet power, W.\n# TYPE facility_cabinet_power_watts gauge\n";
  char line[256];
  for (unsigned i = 0; s.size() < target; ++i) {
    int n = std::snprintf(line, sizeof line,
        "facility_cabinet_power_watts{site=\"hl%u\",room=\"2F-%c\",row=\"A%02u\",cabinet=\"2FA-A%02u-%05u\",feed=\"%c\"} %u.%u\n",
        i % 7, 'A' + (i % 5), i % 40, i % 40, i, (i & 1) ? 'a' : 'b', 1000 + (i * 7919) % 9000, i % 10);
    s.append(line, static_cast<std::size_t>(n));
  }
  return s;
}

inline double arg_mb(int argc, char** argv, const char* name, double dflt) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::string(argv[i]) == name) return std::atof(argv[i + 1]);
  return dflt;
}
inline std::string arg_str(int argc, char** argv, const char* name, const char* dflt) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::string(argv[i]) == name) return argv[i + 1];
  return dflt;
}
