// libFuzzer target: Modbus TCP replies (MBAP framing, stale transaction ids, trailing bytes,
// exception replies, byte counts) through the poll cycle and the point decoders. Input format
// and invariants: modbus_driver.h.
#include <cstddef>
#include <cstdint>

#include "fuzz/modbus_driver.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  facility::fuzz::drive(facility::modbus::Framing::kTcp, facility::fuzz::ChunkReader{data, size});
  return 0;
}
