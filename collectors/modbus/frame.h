// Modbus framing for the client side: read-request PDUs, the MBAP header of Modbus TCP, RTU
// frames (unit id + PDU + CRC-16) as sent over a serial line or a raw TCP socket to a
// serial-to-Ethernet gateway, and strict validation of replies.
//
// Strict means: a reply is accepted only when every field is what the request implies --
// protocol id 0, the same transaction id and unit id, the same function code (or it with bit 7
// set and a one-byte exception code), an MBAP length and a byte count that are exactly the ones
// the request implies, a correct CRC for RTU. Anything else is "malformed" as soon as the field
// has arrived (a too-long length is not waited for): the stream can no longer be trusted and
// the caller reconnects. (libmodbus 3.1.6 accepts a wrong protocol id and ignores the MBAP
// length; see pitfalls.md.)
//
// Only read function codes exist here: there is no way to build a write request.
//
// Thread-safety: pure functions.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "collectors/modbus/codec.h"

namespace facility::modbus {

enum class Framing : std::uint8_t { kTcp, kRtu };

constexpr std::size_t kMbapHeaderSize = 7;  // transaction id, protocol id, length, unit id
constexpr std::size_t kMaxAduSize = 260;

// Modbus exception codes facilityd reacts to.
enum ExceptionCode : std::uint8_t {
  kIllegalFunction = 1,
  kIllegalDataAddress = 2,
  kIllegalDataValue = 3,
  kServerDeviceFailure = 4,
  kAcknowledge = 5,
  kServerDeviceBusy = 6,
  kGatewayPathUnavailable = 10,
  kGatewayTargetNoResponse = 11,
};
std::string describe_exception(int code);  // "exception 2 (illegal data address)"

// CRC-16/MODBUS (polynomial 0xA001 reflected, initial 0xFFFF). Sent low byte first.
std::uint16_t crc16(std::span<const std::uint8_t> bytes);

// Appends the whole frame (ADU) of a read request to `out`.
void encode_read_request(Framing framing, std::uint16_t transaction_id, std::uint8_t unit,
                         RegisterKind kind, std::uint16_t address, std::uint16_t count,
                         std::vector<std::uint8_t>& out);

// Bytes of a complete, successful reply PDU (function + byte count + data) to a read of `count`.
std::size_t reply_pdu_size(RegisterKind kind, std::uint16_t count);

// kStale (Modbus TCP only): a well-formed frame that answers one of the `stale_tids` requests
// sent before this one on the connection (a late reply to a read that timed out, a gateway that
// sends a reply twice). It is `out.size` bytes long; skip it and look again.
enum class FrameStatus { kIncomplete, kComplete, kMalformed, kStale };

struct ReplyFrame {
  std::size_t size = 0;  // bytes of the input the frame occupies
  std::size_t pdu_offset = 0;
  std::size_t pdu_size = 0;
  std::string error;  // when malformed: what was wrong
};

// Finds the reply to a read request of `count` registers / bits of `kind` at the start of `in`
// (the bytes received so far). For TCP, checks the MBAP header against the request; for RTU,
// computes the frame length from the function code and byte count and checks the CRC. A length
// (MBAP length, RTU byte count) other than the one the request implies is malformed as soon as
// it has arrived: waiting for bytes that a lying header announces would only end in a timeout.
FrameStatus find_reply(Framing framing, std::span<const std::uint8_t> in,
                       std::uint16_t transaction_id, std::uint8_t unit, RegisterKind kind,
                       std::uint16_t count, ReplyFrame& out, std::uint16_t stale_tids = 0);

enum class ReplyKind { kData, kException, kMalformed };

struct ParsedReply {
  ReplyKind kind = ReplyKind::kMalformed;
  int exception_code = 0;  // kException
  std::string error;       // kMalformed
};

// Validates a reply PDU to a read of `count` registers/bits of `kind` and writes the values to
// `values` (count entries: registers, or 0/1 per bit).
ParsedReply parse_read_reply(std::span<const std::uint8_t> pdu, RegisterKind kind,
                             std::uint16_t count, std::uint16_t* values);

}  // namespace facility::modbus
