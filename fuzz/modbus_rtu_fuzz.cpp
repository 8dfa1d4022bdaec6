// libFuzzer target: Modbus RTU framing (unit id, function, byte count, CRC-16) as used over
// RTU-over-TCP gateways: resynchronisation after junk, trailing bytes and partial frames, through
// the poll cycle and the point decoders. Input format and invariants: modbus_driver.h; besides,
// a CRC-16 of random bytes followed by that CRC always has residue 0.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "fuzz/modbus_driver.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::uint8_t> framed(data, data + size);
  const std::uint16_t crc = facility::modbus::crc16(framed);
  framed.push_back(static_cast<std::uint8_t>(crc & 0xFF));
  framed.push_back(static_cast<std::uint8_t>(crc >> 8));
  facility::fuzz::check(facility::modbus::crc16(framed) == 0);
  facility::fuzz::drive(facility::modbus::Framing::kRtu, facility::fuzz::ChunkReader{data, size});
  return 0;
}
