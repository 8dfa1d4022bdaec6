#include "collectors/modbus/frame.h"

namespace facility::modbus {
namespace {

std::uint16_t get16(const std::uint8_t* p) {
  return static_cast<std::uint16_t>((p[0] << 8) | p[1]);
}
void put16(std::vector<std::uint8_t>& v, std::uint16_t x) {
  v.push_back(static_cast<std::uint8_t>(x >> 8));
  v.push_back(static_cast<std::uint8_t>(x & 0xFF));
}

constexpr std::array<std::uint16_t, 256> make_crc_table() {
  std::array<std::uint16_t, 256> t{};
  for (unsigned i = 0; i < 256; ++i) {
    std::uint16_t c = static_cast<std::uint16_t>(i);
    for (int k = 0; k < 8; ++k) c = (c & 1) ? static_cast<std::uint16_t>((c >> 1) ^ 0xA001) : c >> 1;
    t[i] = c;
  }
  return t;
}
constexpr auto kCrcTable = make_crc_table();

}  // namespace

std::string describe_exception(int code) {
  const char* what = "unknown";
  switch (code) {
    case 1: what = "illegal function"; break;
    case 2: what = "illegal data address"; break;
    case 3: what = "illegal data value"; break;
    case 4: what = "server device failure"; break;
    case 5: what = "acknowledge"; break;
    case 6: what = "server device busy"; break;
    case 7: what = "negative acknowledge"; break;
    case 8: what = "memory parity error"; break;
    case 10: what = "gateway path unavailable"; break;
    case 11: what = "gateway target device failed to respond"; break;
  }
  return "exception " + std::to_string(code) + " (" + what + ")";
}

std::uint16_t crc16(std::span<const std::uint8_t> bytes) {
  std::uint16_t crc = 0xFFFF;
  for (std::uint8_t b : bytes) crc = static_cast<std::uint16_t>((crc >> 8) ^ kCrcTable[(crc ^ b) & 0xFF]);
  return crc;
}

void encode_read_request(Framing framing, std::uint16_t transaction_id, std::uint8_t unit,
                         RegisterKind kind, std::uint16_t address, std::uint16_t count,
                         std::vector<std::uint8_t>& out) {
  const std::size_t start = out.size();
  if (framing == Framing::kTcp) {
    put16(out, transaction_id);
    put16(out, 0);  // protocol id
    put16(out, 6);  // unit id + 5-byte PDU
  }
  out.push_back(unit);
  out.push_back(static_cast<std::uint8_t>(kind));  // function code 1-4: reads only
  put16(out, address);
  put16(out, count);
  if (framing == Framing::kRtu) {
    const std::uint16_t crc = crc16(std::span(out.data() + start, out.size() - start));
    out.push_back(static_cast<std::uint8_t>(crc & 0xFF));
    out.push_back(static_cast<std::uint8_t>(crc >> 8));
  }
}

std::size_t reply_pdu_size(RegisterKind kind, std::uint16_t count) {
  return 2 + (is_bit_kind(kind) ? (count + 7u) / 8u : 2u * count);
}

namespace {

// A Modbus TCP reply: the MBAP header, checked against the request, then the PDU.
FrameStatus find_tcp_reply(std::span<const std::uint8_t> in, std::uint16_t transaction_id,
                           std::uint8_t unit, RegisterKind kind, std::uint16_t count,
                           ReplyFrame& out, std::uint16_t stale_tids) {
  const auto fc = static_cast<std::uint8_t>(kind);
  if (in.size() < kMbapHeaderSize) return FrameStatus::kIncomplete;
  const std::uint16_t length = get16(&in[4]);
  if (get16(&in[2]) != 0) {
    out.error = "MBAP protocol id " + std::to_string(get16(&in[2])) + " (expected 0)";
    return FrameStatus::kMalformed;
  }
  // How many requests ago the frame's transaction id was sent (mod 2^16).
  const auto age = static_cast<std::uint16_t>(transaction_id - get16(&in[0]));
  if (age != 0 && age <= stale_tids && length >= 3 && length <= 254) {
    if (in.size() < std::size_t{6} + length) return FrameStatus::kIncomplete;
    out.size = std::size_t{6} + length;
    out.error = "a reply to an earlier request (transaction id " +
                std::to_string(get16(&in[0])) + ")";
    return FrameStatus::kStale;
  }
  if (get16(&in[0]) != transaction_id) {
    out.error = "transaction id " + std::to_string(get16(&in[0])) + " (expected " +
                std::to_string(transaction_id) + ")";
    return FrameStatus::kMalformed;
  }
  if (length < 3 || length > 254) {
    out.error = "MBAP length " + std::to_string(length) + " out of range 3..254";
    return FrameStatus::kMalformed;
  }
  if (in[6] != unit) {
    out.error = "reply from unit " + std::to_string(in[6]) + " (expected " +
                std::to_string(unit) + ")";
    return FrameStatus::kMalformed;
  }
  if (in.size() < kMbapHeaderSize + 1) return FrameStatus::kIncomplete;
  // The function code tells which length the request implies: a data reply or an exception.
  std::size_t expected = 0;
  if (in[7] == fc) {
    expected = 1 + reply_pdu_size(kind, count);
  } else if (in[7] == (fc | 0x80)) {
    expected = 3;
  } else {
    out.error = "function code " + std::to_string(in[7]) + " (expected " + std::to_string(fc) +
                ")";
    return FrameStatus::kMalformed;
  }
  if (length != expected) {
    out.error = "MBAP length " + std::to_string(length) + " (expected " +
                std::to_string(expected) + ")";
    return FrameStatus::kMalformed;
  }
  const std::size_t size = 6 + length;
  if (in.size() < size) return FrameStatus::kIncomplete;
  out.size = size;
  out.pdu_offset = kMbapHeaderSize;
  out.pdu_size = size - kMbapHeaderSize;
  return FrameStatus::kComplete;
}

FrameStatus find_rtu_reply(std::span<const std::uint8_t> in, std::uint8_t unit, RegisterKind kind,
                           std::uint16_t count, ReplyFrame& out) {
  const auto fc = static_cast<std::uint8_t>(kind);
  // RTU: unit, function, then either an exception code or a byte count and data; CRC last.
  if (in.size() < 3) return FrameStatus::kIncomplete;
  if (in[0] != unit) {
    out.error = "reply from unit " + std::to_string(in[0]) + " (expected " +
                std::to_string(unit) + ")";
    return FrameStatus::kMalformed;
  }
  std::size_t size;
  if (in[1] == (fc | 0x80)) {
    size = 5;
  } else if (in[1] == fc) {
    const std::size_t want = reply_pdu_size(kind, count) - 2;
    if (in[2] != want) {
      out.error = "byte count " + std::to_string(in[2]) + " (expected " + std::to_string(want) +
                  ")";
      return FrameStatus::kMalformed;
    }
    size = 3 + want + 2;
  } else {
    out.error = "function code " + std::to_string(in[1]) + " (expected " + std::to_string(fc) + ")";
    return FrameStatus::kMalformed;
  }
  if (in.size() < size) return FrameStatus::kIncomplete;
  const std::uint16_t want = crc16(in.first(size - 2));
  const std::uint16_t got = static_cast<std::uint16_t>(in[size - 2] | (in[size - 1] << 8));
  if (want != got) {
    out.error = "bad CRC";
    return FrameStatus::kMalformed;
  }
  out.size = size;
  out.pdu_offset = 1;
  out.pdu_size = size - 3;
  return FrameStatus::kComplete;
}

}  // namespace

FrameStatus find_reply(Framing framing, std::span<const std::uint8_t> in,
                       std::uint16_t transaction_id, std::uint8_t unit, RegisterKind kind,
                       std::uint16_t count, ReplyFrame& out, std::uint16_t stale_tids) {
  if (framing == Framing::kTcp) {
    return find_tcp_reply(in, transaction_id, unit, kind, count, out, stale_tids);
  }
  return find_rtu_reply(in, unit, kind, count, out);
}

ParsedReply parse_read_reply(std::span<const std::uint8_t> pdu, RegisterKind kind,
                             std::uint16_t count, std::uint16_t* values) {
  ParsedReply r;
  const auto fc = static_cast<std::uint8_t>(kind);
  if (pdu.empty()) {
    r.error = "empty PDU";
    return r;
  }
  if (pdu[0] == (fc | 0x80)) {
    if (pdu.size() != 2) {
      r.error = "exception reply of " + std::to_string(pdu.size()) + " bytes (expected 2)";
      return r;
    }
    r.kind = ReplyKind::kException;
    r.exception_code = pdu[1];
    return r;
  }
  if (pdu[0] != fc) {
    r.error = "function code " + std::to_string(pdu[0]) + " (expected " + std::to_string(fc) + ")";
    return r;
  }
  const std::size_t want = reply_pdu_size(kind, count);
  if (pdu.size() < 2 || pdu[1] != want - 2 || pdu.size() != want) {
    r.error = "byte count " + std::to_string(pdu.size() < 2 ? 0 : pdu[1]) + " in a PDU of " +
              std::to_string(pdu.size()) + " bytes (expected " + std::to_string(want - 2) + ")";
    return r;
  }
  const std::uint8_t* data = pdu.data() + 2;
  if (is_bit_kind(kind)) {
    for (std::size_t i = 0; i < count; ++i) values[i] = (data[i / 8] >> (i % 8)) & 1u;
  } else {
    for (std::size_t i = 0; i < count; ++i) values[i] = get16(data + 2 * i);
  }
  r.kind = ReplyKind::kData;
  return r;
}

}  // namespace facility::modbus
