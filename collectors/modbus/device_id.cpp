#include "collectors/modbus/device_id.h"

#include <algorithm>

#include "collectors/modbus/frame.h"

namespace facility::modbus {

std::vector<std::uint8_t> device_id_request(DeviceIdCode code, std::uint8_t first_object) {
  return {kFunctionDeviceId, kMeiDeviceId, static_cast<std::uint8_t>(code), first_object};
}

std::optional<DeviceIdReply> parse_device_id_reply(std::span<const std::uint8_t> pdu,
                                                   std::string* error) {
  auto fail = [error](const char* why) -> std::optional<DeviceIdReply> {
    if (error) *error = why;
    return std::nullopt;
  };
  if (pdu.size() < 7) return fail("device identification reply shorter than its header");
  if (pdu[0] != kFunctionDeviceId || pdu[1] != kMeiDeviceId) {
    return fail("not a device identification reply");
  }
  DeviceIdReply r;
  r.conformity = pdu[3];
  if (pdu[4] != 0x00 && pdu[4] != 0xFF) return fail("bad more-follows byte");
  r.more_follows = pdu[4] == 0xFF;
  r.next_object = pdu[5];
  const std::size_t count = pdu[6];
  std::size_t pos = 7;
  for (std::size_t i = 0; i < count; ++i) {
    if (pos + 2 > pdu.size()) return fail("device identification object cut short");
    const int id = pdu[pos];
    const std::size_t len = pdu[pos + 1];
    pos += 2;
    if (pos + len > pdu.size()) return fail("device identification object cut short");
    r.objects.emplace_back(id, std::string(pdu.begin() + static_cast<std::ptrdiff_t>(pos),
                                           pdu.begin() + static_cast<std::ptrdiff_t>(pos + len)));
    pos += len;
  }
  if (pos != pdu.size()) return fail("bytes after the last device identification object");
  return r;
}

std::vector<std::uint8_t> device_id_response(std::span<const std::uint8_t> request,
                                             const DeviceIdObjects& objects) {
  auto exception = [](std::uint8_t code) -> std::vector<std::uint8_t> {
    return {static_cast<std::uint8_t>(kFunctionDeviceId | 0x80), code};
  };
  if (objects.empty()) return exception(kIllegalFunction);
  if (request.size() != 4 || request[1] != kMeiDeviceId) return exception(kIllegalDataValue);
  const std::uint8_t code = request[2];
  const std::uint8_t first = request[3];
  if (code < 1 || code > 4) return exception(kIllegalDataValue);
  auto has = [&objects](int id) {
    return std::any_of(objects.begin(), objects.end(),
                       [id](const auto& o) { return o.first == id; });
  };
  if (code == 4 && !has(first)) return exception(kIllegalDataAddress);
  const int last = code == 1 ? 2 : code == 2 ? 6 : 255;
  std::vector<std::uint8_t> out{kFunctionDeviceId,
                                kMeiDeviceId,
                                code,
                                static_cast<std::uint8_t>(code == 1 ? 0x81 : 0x82),
                                0x00,
                                0x00,
                                0};
  for (const auto& [id, text] : objects) {
    const bool wanted = code == 4 ? id == first : id >= first && id <= last;
    if (!wanted) continue;
    const std::size_t len = std::min<std::size_t>(text.size(), 200);
    if (out.size() + 2 + len > 253) break;  // a PDU holds 253 bytes
    out.push_back(static_cast<std::uint8_t>(id));
    out.push_back(static_cast<std::uint8_t>(len));
    out.insert(out.end(), text.begin(), text.begin() + static_cast<std::ptrdiff_t>(len));
    ++out[6];
  }
  return out;
}

std::optional<std::size_t> rtu_reply_size(std::span<const std::uint8_t> adu) {
  if (adu.size() < 3) return std::nullopt;
  const std::uint8_t fc = adu[1];
  if (fc & 0x80) return std::size_t{5};  // unit, fc, code, crc x2
  if (fc >= 1 && fc <= 4) return std::size_t{3} + adu[2] + 2;
  if (fc != kFunctionDeviceId) return std::size_t{0};
  // unit fc mei code conformity more next count, then the objects, then the CRC.
  if (adu.size() < 8) return std::nullopt;
  std::size_t pos = 8;
  for (std::size_t i = 0; i < adu[7]; ++i) {
    if (pos + 2 > adu.size()) return std::nullopt;
    pos += 2 + std::size_t{adu[pos + 1]};
  }
  return pos + 2;
}

}  // namespace facility::modbus
