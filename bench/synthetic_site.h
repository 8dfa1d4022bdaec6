// A synthetic site configuration for the benchmarks (model_bench, scrape_bench): N cabinets of
// a 20 A / 220 V class in rooms of 200, every tenth cabinet free and the rest sold; per cabinet
// A/B PDUs and one rack sensor; a cooling unit per 25 cabinets; 4 site meters.
#pragma once

#include <algorithm>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

namespace facility::bench {

struct SyntheticSite {
  int cabinets = 0;
  std::string profiles_dir;
  std::string preamble;                      // YAML before profiles_dir (e.g. defaults)
  std::function<std::string()> endpoint;     // "\"tcp://...\", unit: N" of the next device
  int three_phase_every = 0;                 // every Nth cabinet has three-phase PDUs; 0 = none
  std::vector<std::string> meter_roles = {"facility_total", "cooling", "other", "other"};
};

inline std::string synthetic_site_config(const SyntheticSite& s) {
  std::ostringstream y;
  y << s.preamble << "profiles_dir: " << s.profiles_dir << "\n"
    << "cabinet_classes:\n  - {id: std, breaker: {amps: 20, volts: 220}}\n"
    << "sites:\n  - id: s\n    rooms:\n";
  const int rooms = std::max(1, s.cabinets / 200);
  for (int r = 0; r < rooms; ++r) {
    y << "      - id: r" << r << "\n        rows:\n          - id: w\n            cabinets:\n";
    for (int c = r; c < s.cabinets; c += rooms) {
      y << "              - {id: c" << c << ", class: std, status: " << (c % 10 ? "sold" : "free")
        << "}\n";
    }
  }
  y << "    devices:\n";
  for (int c = 0; c < s.cabinets; ++c) {
    const bool three = s.three_phase_every > 0 && c % s.three_phase_every == s.three_phase_every - 1;
    for (const char* f : {"A", "B"}) {
      y << "      - {id: c" << c << f << ", kind: pdu, profile: "
        << (three ? "generic-pdu-3ph" : "generic-pdu-1ph") << ", endpoint: " << s.endpoint()
        << ", cabinet: c" << c << ", feed: " << f << "}\n";
    }
    y << "      - {id: c" << c << "e, kind: rack_sensor, profile: generic-rack-sensor, endpoint: "
      << s.endpoint() << ", cabinet: c" << c << "}\n";
  }
  for (int u = 0; u < std::max(2, s.cabinets / 25); ++u) {
    y << "      - {id: cool" << u << ", kind: cooling, profile: generic-crah, endpoint: "
      << s.endpoint() << ", room: r" << u % rooms << ", capacity_kw: 120}\n";
  }
  for (std::size_t m = 0; m < s.meter_roles.size(); ++m) {
    y << "      - {id: m" << m << ", kind: meter, profile: generic-energy-meter, endpoint: "
      << s.endpoint() << ", role: " << s.meter_roles[m] << "}\n";
  }
  return y.str();
}

}  // namespace facility::bench
