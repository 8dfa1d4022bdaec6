// Request planning: the fewest read requests that cover a device's points.
//
// Model. For each register kind (each has its own function code) a read is a window of
// addresses [start, start + count). A window is *allowed* when
//   * count <= the per-read limit (125 registers / 2000 bits, or the device's lower cap),
//   * it contains no forbidden address ("never read" ranges of the profile, and addresses the
//     device answered "illegal data address" for),
//   * every hole inside it -- a run of addresses that no point of the device maps -- is at most
//     max_gap long (bridging a hole reads registers nobody asked for; some devices refuse it).
// A point is read by a window that contains all of its registers. The planner returns a
// minimum number of allowed windows that together contain every point.
//
// Why the greedy below is optimal: take the uncovered point with the lowest start s. Some window
// of any solution contains it, and that window can be moved to start at s without losing a
// point (no remaining point starts before s) or becoming disallowed (a sub-window of an allowed
// window is allowed: fewer addresses, a subset of its holes, no new forbidden address). Among
// windows starting at s, the longest allowed one contains a superset of the points of any
// other. So choosing it leaves a subset of the points any optimal solution still has to cover,
// and by induction the greedy uses no more windows than an optimum. planner_test.cpp checks this
// against an exhaustive search on random tricky maps.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <vector>

#include "collectors/modbus/codec.h"

namespace facility::modbus {

struct ReadRequest {
  RegisterKind kind;
  std::uint16_t address;  // first register / bit
  std::uint16_t count;    // registers or bits
  std::vector<std::size_t> points;  // indexes into the point list this read covers
};

// Inclusive address range of one register kind.
struct AddressRange {
  RegisterKind kind = RegisterKind::kHolding;
  std::uint16_t first = 0;
  std::uint16_t last = 0;

  bool operator==(const AddressRange&) const = default;
};

struct PlanOptions {
  int max_registers = 125;  // device cap; never above 125 (the protocol limit for FC 3/4)
  int max_bits = 2000;      // protocol limit for FC 1/2
  int max_gap = 16;         // largest hole (registers or bits) bridged to save a request
  std::vector<AddressRange> forbidden = {};  // addresses never to read

  bool operator==(const PlanOptions&) const = default;
};

struct Plan {
  std::vector<ReadRequest> reads;
  // Points that no allowed window can contain (they overlap a forbidden address): never read.
  std::vector<std::size_t> unreadable;
};

// Plans the reads of points[i] for every i with !(exclude && (*exclude)[i]).
Plan make_plan(const std::vector<PointSpec>& points, const PlanOptions& opt,
               const std::vector<bool>* exclude = nullptr);

// make_plan(...).reads, for callers that know every point is readable.
std::vector<ReadRequest> plan_reads(const std::vector<PointSpec>& points, const PlanOptions& opt);

// A simple lower bound on the reads any plan needs, for benchmarks: per kind, the mapped
// addresses of each group of points that no allowed window can join (separated by a hole longer
// than max_gap or by a forbidden address), divided by the per-read limit, rounded up.
int plan_lower_bound(const std::vector<PointSpec>& points, const PlanOptions& opt);

}  // namespace facility::modbus
