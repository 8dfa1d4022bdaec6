// Read Device Identification (function 43 = 0x2B, MEI type 14 = 0x0E; Modbus Application
// Protocol v1.1b3, 6.21): a read-only request for the device's vendor name, product code,
// revision and more, as (object id, text) pairs.
//
// Only `facilityd scan` sends it, and facility-sim answers it: the polling engine never builds
// this request (`facilityd run` sends function codes 1-4 only; frame.h has no other request).
//
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace facility::modbus {

constexpr std::uint8_t kFunctionDeviceId = 0x2B;
constexpr std::uint8_t kMeiDeviceId = 0x0E;

// Read device id codes: 1 basic (objects 0-2), 2 regular (0-6), 3 extended, 4 one object.
enum class DeviceIdCode : std::uint8_t { kBasic = 1, kRegular = 2, kExtended = 3, kOne = 4 };

using DeviceIdObjects = std::vector<std::pair<int, std::string>>;

// The request PDU: 2B 0E code object_id.
std::vector<std::uint8_t> device_id_request(DeviceIdCode code, std::uint8_t first_object);

struct DeviceIdReply {
  std::uint8_t conformity = 0;
  bool more_follows = false;
  std::uint8_t next_object = 0;
  DeviceIdObjects objects;
};

// Parses a reply PDU (2B 0E code conformity more next count {id len value}*). nullopt with
// *error set when it is not one (an exception reply is handled by the caller).
std::optional<DeviceIdReply> parse_device_id_reply(std::span<const std::uint8_t> pdu,
                                                   std::string* error);

// The server side (facility-sim): the reply PDU to a request PDU for a device with `objects`,
// or an exception PDU (illegal function when it has none, illegal data address for an object
// it does not have). Every object of the stream fits one reply.
std::vector<std::uint8_t> device_id_response(std::span<const std::uint8_t> request,
                                             const DeviceIdObjects& objects);

// RTU framing of a reply to any read a scan sends (functions 1-4 and 43/14, and exceptions):
// the ADU's length once enough of it has arrived; nullopt while incomplete; 0 when the function
// code is not one of these (the frame cannot be delimited).
std::optional<std::size_t> rtu_reply_size(std::span<const std::uint8_t> adu);

}  // namespace facility::modbus
