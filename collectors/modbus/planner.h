// Request planning: the fewest read requests that cover a device's points.
//
// Points are grouped per register kind (each kind has its own function code), sorted by address,
// and merged into one read while the merged span stays within the per-read limit (125 registers,
// 2000 bits, or the device's own lower cap) and the hole between two points is at most max_gap.
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

struct PlanOptions {
  int max_registers = 125;  // device cap; never above 125 (the protocol limit for FC 3/4)
  int max_bits = 2000;      // protocol limit for FC 1/2
  int max_gap = 16;         // largest hole (registers or bits) bridged to save a request
};

std::vector<ReadRequest> plan_reads(const std::vector<PointSpec>& points, const PlanOptions& opt);

}  // namespace facility::modbus
