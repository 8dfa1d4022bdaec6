// Restoring the model's energy PUE windows from the history at start-up and on reload
// (daemon/model/energy.h): each energy role's stored 10 s grid points seed the new model, so
// a 30-day window does not need 30 days of uptime after every restart or upgrade. Steps the
// daemon did not see count as lost device-time: each window's coverage says how much of it is
// measured, and the model publishes no PUE below facility.pue_min_coverage.
//
// Thread-safety: none; call before the model's first update, on the thread that owns it.
#pragma once

#include <cstdint>

#include "daemon/config/config.h"
#include "daemon/model/model.h"

namespace facility {

// The longest configured PUE window of any site, seconds (what the history keeps points for).
std::int64_t longest_pue_window_s(const Config& cfg);

struct EnergyRestore {
  std::size_t series = 0;    // series in the model
  std::size_t restored = 0;  // series seeded from the history
  std::size_t points = 0;    // grid points restored in all
};

// Reads the history at `path` (read-only) and seeds every series of the model with its stored
// points (of the same devices only). Logs one line per restored or refused series. A missing
// or unreadable history is not an error: the windows start afresh, as without a history.
EnergyRestore restore_energy_windows(FacilityModel& model, const std::string& path,
                                     TimePoint now);

}  // namespace facility
