#include "daemon/sinks/history/restore.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>

#include "daemon/sinks/history/history_db.h"

namespace facility {

std::int64_t longest_pue_window_s(const Config& cfg) {
  std::chrono::milliseconds longest{0};
  for (const auto& s : cfg.sites) {
    if (!s.facility.pue_windows.empty()) longest = std::max(longest, s.facility.pue_windows.back());
  }
  return std::chrono::duration_cast<std::chrono::seconds>(longest).count();
}

EnergyRestore restore_energy_windows(FacilityModel& model, const std::string& path,
                                     TimePoint now) {
  EnergyRestore out;
  const auto series = model.energy_series();
  out.series = series.size();
  if (series.empty() || !std::filesystem::exists(path)) return out;
  try {
    auto db = HistoryDb::open_reader(path);
    const auto now_s = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch());
    for (const auto& s : series) {
      const auto members = db->energy_members(s.site, s.role);
      if (!members) continue;
      if (*members != s.members) {
        spdlog::info("energy windows of site {} ({}): not restored, its devices changed; they "
                     "start afresh", s.site, s.role);
        continue;
      }
      // One coarse step more than the window: its start may fall between two coarse points.
      const auto from =
          now_s.count() - std::chrono::duration_cast<std::chrono::seconds>(s.longest).count() - 300;
      const auto points = db->read_energy(s.site, s.role, from);
      const std::size_t n = model.restore_energy(s.site, s.role, points, now);
      if (n == 0) continue;
      ++out.restored;
      out.points += n;
      const double gap_s = std::chrono::duration<double>(now - points.back().t).count();
      spdlog::info("energy windows of site {} ({}): restored {} points from the history, the "
                   "last {:.0f} s ago (that time counts as not measured)",
                   s.site, s.role, n, gap_s);
    }
  } catch (const std::exception& e) {
    spdlog::warn("energy windows not restored from the history, they start afresh: {}", e.what());
  }
  return out;
}

}  // namespace facility
