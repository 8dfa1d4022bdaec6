#include "collectors/modbus/planner.h"

#include <algorithm>
#include <array>

namespace facility::modbus {
namespace {

constexpr std::array kKinds{RegisterKind::kCoil, RegisterKind::kDiscreteInput,
                            RegisterKind::kHolding, RegisterKind::kInput};

int limit_for(RegisterKind kind, const PlanOptions& opt) {
  return is_bit_kind(kind) ? std::clamp(opt.max_bits, 1, 2000)
                           : std::clamp(opt.max_registers, 1, 125);
}

struct Span {
  std::uint32_t start, end;  // [start, end)
};

// Points of one kind, sorted by (start, end), and the union of their address spans.
struct KindPoints {
  std::vector<std::size_t> idx;
  std::vector<Span> spans;  // per idx entry
  std::vector<Span> mapped;  // merged union, sorted
};

bool hits_forbidden(RegisterKind kind, Span s, const PlanOptions& opt) {
  for (const auto& f : opt.forbidden) {
    if (f.kind == kind && f.first < s.end && f.last >= s.start) return true;
  }
  return false;
}

// First forbidden address at or after `from` (or UINT32_MAX).
std::uint32_t next_forbidden(RegisterKind kind, std::uint32_t from, const PlanOptions& opt) {
  std::uint32_t best = UINT32_MAX;
  for (const auto& f : opt.forbidden) {
    if (f.kind != kind || f.last < from) continue;
    best = std::min<std::uint32_t>(best, std::max<std::uint32_t>(f.first, from));
  }
  return best;
}

KindPoints collect(RegisterKind kind, const std::vector<PointSpec>& points, const PlanOptions& opt,
                   const std::vector<bool>* exclude, std::vector<std::size_t>* unreadable) {
  KindPoints kp;
  for (std::size_t i = 0; i < points.size(); ++i) {
    if (points[i].kind != kind || (exclude && i < exclude->size() && (*exclude)[i])) continue;
    const Span s{points[i].address, points[i].address + static_cast<std::uint32_t>(points[i].width())};
    if (hits_forbidden(kind, s, opt) ||
        static_cast<int>(s.end - s.start) > limit_for(kind, opt)) {
      if (unreadable) unreadable->push_back(i);
      continue;
    }
    kp.idx.push_back(i);
  }
  std::sort(kp.idx.begin(), kp.idx.end(), [&](std::size_t a, std::size_t b) {
    const auto ea = points[a].address + points[a].width();
    const auto eb = points[b].address + points[b].width();
    return points[a].address != points[b].address ? points[a].address < points[b].address
                                                  : ea < eb;
  });
  for (std::size_t i : kp.idx) {
    const Span s{points[i].address, points[i].address + static_cast<std::uint32_t>(points[i].width())};
    kp.spans.push_back(s);
    if (!kp.mapped.empty() && s.start <= kp.mapped.back().end) {
      kp.mapped.back().end = std::max(kp.mapped.back().end, s.end);
    } else {
      kp.mapped.push_back(s);
    }
  }
  return kp;
}

// The largest E such that the window [s, E) is allowed. s is the start of a point.
std::uint32_t max_window_end(RegisterKind kind, std::uint32_t s, const KindPoints& kp,
                             const PlanOptions& opt) {
  std::uint32_t cap = std::min<std::uint32_t>(s + static_cast<std::uint32_t>(limit_for(kind, opt)),
                                              next_forbidden(kind, s, opt));
  // Walk the mapped segments from the one containing s while the holes stay bridgeable.
  auto seg = std::upper_bound(kp.mapped.begin(), kp.mapped.end(), s,
                              [](std::uint32_t v, const Span& m) { return v < m.start; });
  --seg;  // the segment containing s (s is a point start, so it exists)
  std::uint32_t end = seg->end;
  for (auto next = seg + 1; next != kp.mapped.end() && end < cap; ++next) {
    if (static_cast<int>(next->start - end) > opt.max_gap) break;
    end = next->end;
  }
  return std::min(end, cap);
}

}  // namespace

Plan make_plan(const std::vector<PointSpec>& points, const PlanOptions& opt,
               const std::vector<bool>* exclude) {
  Plan plan;
  for (RegisterKind kind : kKinds) {
    KindPoints kp = collect(kind, points, opt, exclude, &plan.unreadable);
    std::vector<bool> covered(kp.idx.size(), false);
    std::size_t first = 0;  // lowest index not yet covered
    while (true) {
      while (first < kp.idx.size() && covered[first]) ++first;
      if (first == kp.idx.size()) break;
      const std::uint32_t s = kp.spans[first].start;
      const std::uint32_t limit_end = max_window_end(kind, s, kp, opt);
      ReadRequest r{kind, static_cast<std::uint16_t>(s), 0, {}};
      std::uint32_t end = s;
      for (std::size_t j = first; j < kp.idx.size() && kp.spans[j].start < limit_end; ++j) {
        if (covered[j] || kp.spans[j].end > limit_end) continue;
        covered[j] = true;
        r.points.push_back(kp.idx[j]);
        end = std::max(end, kp.spans[j].end);
      }
      r.count = static_cast<std::uint16_t>(end - s);
      plan.reads.push_back(std::move(r));
    }
  }
  std::sort(plan.unreadable.begin(), plan.unreadable.end());
  return plan;
}

std::vector<ReadRequest> plan_reads(const std::vector<PointSpec>& points, const PlanOptions& opt) {
  return make_plan(points, opt).reads;
}

int plan_lower_bound(const std::vector<PointSpec>& points, const PlanOptions& opt) {
  int total = 0;
  for (RegisterKind kind : kKinds) {
    const KindPoints kp = collect(kind, points, opt, nullptr, nullptr);
    const auto limit = static_cast<std::uint32_t>(limit_for(kind, opt));
    std::uint32_t group_mapped = 0;
    for (std::size_t i = 0; i < kp.mapped.size(); ++i) {
      const Span& m = kp.mapped[i];
      const bool joins = i > 0 && static_cast<int>(m.start - kp.mapped[i - 1].end) <= opt.max_gap &&
                         next_forbidden(kind, kp.mapped[i - 1].end, opt) >= m.start;
      if (!joins && group_mapped > 0) {
        total += static_cast<int>((group_mapped + limit - 1) / limit);
        group_mapped = 0;
      }
      group_mapped += m.end - m.start;
    }
    if (group_mapped > 0) total += static_cast<int>((group_mapped + limit - 1) / limit);
  }
  return total;
}

}  // namespace facility::modbus
