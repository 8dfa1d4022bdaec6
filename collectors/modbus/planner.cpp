#include "collectors/modbus/planner.h"

#include <algorithm>
#include <array>

namespace facility::modbus {

std::vector<ReadRequest> plan_reads(const std::vector<PointSpec>& points, const PlanOptions& opt) {
  std::vector<ReadRequest> out;
  constexpr std::array kinds{RegisterKind::kCoil, RegisterKind::kDiscreteInput,
                             RegisterKind::kHolding, RegisterKind::kInput};
  for (RegisterKind kind : kinds) {
    std::vector<std::size_t> idx;
    for (std::size_t i = 0; i < points.size(); ++i) {
      if (points[i].kind == kind) idx.push_back(i);
    }
    if (idx.empty()) continue;
    std::sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) {
      return points[a].address < points[b].address;
    });
    const int limit = is_bit_kind(kind) ? std::min(opt.max_bits, 2000)
                                        : std::clamp(opt.max_registers, 1, 125);
    // Greedy left-to-right merge is optimal for intervals on a line with a span cap and a gap
    // cap: extending the current read as far as possible never forces an extra read later.
    ReadRequest cur{};
    int cur_end = -1;  // one past the last covered address
    for (std::size_t i : idx) {
      const PointSpec& p = points[i];
      const int start = p.address;
      const int end = start + p.width();
      const bool fits = cur_end >= 0 && start - cur_end <= opt.max_gap &&
                        std::max(end, cur_end) - cur.address <= limit;
      if (fits) {
        cur_end = std::max(cur_end, end);
        cur.count = static_cast<std::uint16_t>(cur_end - cur.address);
        cur.points.push_back(i);
        continue;
      }
      if (cur_end >= 0) out.push_back(cur);
      cur = ReadRequest{kind, p.address, static_cast<std::uint16_t>(p.width()), {i}};
      cur_end = end;
    }
    if (cur_end >= 0) out.push_back(cur);
  }
  return out;
}

}  // namespace facility::modbus
