// Client-side framing: request bytes, CRC-16, strict reply validation for TCP and RTU.
#include <gtest/gtest.h>

#include "collectors/modbus/frame.h"

namespace facility::modbus {
namespace {

using Bytes = std::vector<std::uint8_t>;

TEST(Crc16, KnownVectors) {
  // The Modbus spec's example: 01 03 00 00 00 0A -> CRC C5 CD (low byte first on the wire).
  const Bytes req{0x01, 0x03, 0x00, 0x00, 0x00, 0x0A};
  EXPECT_EQ(crc16(req), 0xCDC5);
  // CRC-16/MODBUS check value of "123456789".
  const std::string s = "123456789";
  EXPECT_EQ(crc16(std::span(reinterpret_cast<const std::uint8_t*>(s.data()), s.size())), 0x4B37);
}

TEST(Frame, ReadRequestBytes) {
  Bytes tcp;
  encode_read_request(Framing::kTcp, 0x1234, 17, RegisterKind::kHolding, 0x006B, 3, tcp);
  EXPECT_EQ(tcp, (Bytes{0x12, 0x34, 0, 0, 0, 6, 17, 3, 0x00, 0x6B, 0, 3}));
  Bytes rtu;
  encode_read_request(Framing::kRtu, 0, 1, RegisterKind::kHolding, 0, 10, rtu);
  EXPECT_EQ(rtu, (Bytes{1, 3, 0, 0, 0, 0x0A, 0xC5, 0xCD}));
  Bytes coil;
  encode_read_request(Framing::kTcp, 1, 1, RegisterKind::kCoil, 19, 37, coil);
  EXPECT_EQ(coil[7], 1);  // function code 1: reads only
}

TEST(Frame, TcpReplyIsFoundAndValidated) {
  const Bytes ok{0x00, 0x07, 0, 0, 0, 5, 9, 4, 2, 0x12, 0x34};
  ReplyFrame f;
  EXPECT_EQ(find_reply(Framing::kTcp, std::span(ok).first(6), 7, 9, RegisterKind::kInput, 1, f),
            FrameStatus::kIncomplete);
  EXPECT_EQ(find_reply(Framing::kTcp, std::span(ok).first(10), 7, 9, RegisterKind::kInput, 1, f),
            FrameStatus::kIncomplete);
  ASSERT_EQ(find_reply(Framing::kTcp, ok, 7, 9, RegisterKind::kInput, 1, f), FrameStatus::kComplete);
  EXPECT_EQ(f.size, ok.size());
  EXPECT_EQ(f.pdu_offset, 7u);
  EXPECT_EQ(f.pdu_size, 4u);

  Bytes bad = ok;
  bad[3] = 1;  // protocol id 1: libmodbus 3.1.6 would accept it
  EXPECT_EQ(find_reply(Framing::kTcp, bad, 7, 9, RegisterKind::kInput, 1, f), FrameStatus::kMalformed);
  EXPECT_NE(f.error.find("protocol id"), std::string::npos);
  bad = ok;
  bad[1] = 8;  // another transaction
  EXPECT_EQ(find_reply(Framing::kTcp, bad, 7, 9, RegisterKind::kInput, 1, f), FrameStatus::kMalformed);
  bad = ok;
  bad[6] = 10;  // another unit
  EXPECT_EQ(find_reply(Framing::kTcp, bad, 7, 9, RegisterKind::kInput, 1, f), FrameStatus::kMalformed);
  bad = ok;
  bad[5] = 2;  // MBAP length too small for any reply
  EXPECT_EQ(find_reply(Framing::kTcp, bad, 7, 9, RegisterKind::kInput, 1, f), FrameStatus::kMalformed);
}

TEST(Frame, AReplyToAnEarlierRequestIsStaleNotMalformed) {
  // Transaction 7's reply arriving while transaction 9 is awaited (7 timed out, 8 too).
  const Bytes late{0x00, 0x07, 0, 0, 0, 5, 9, 4, 2, 0x12, 0x34};
  ReplyFrame f;
  EXPECT_EQ(find_reply(Framing::kTcp, late, 9, 9, RegisterKind::kInput, 1, f, 16),
            FrameStatus::kStale);
  EXPECT_EQ(f.size, late.size());
  // Only whole frames are skipped: the rest of it is waited for.
  EXPECT_EQ(find_reply(Framing::kTcp, std::span(late).first(9), 9, 9, RegisterKind::kInput, 1, f,
                       16),
            FrameStatus::kIncomplete);
  // The window includes its last transaction: 16 requests ago is still inside a window of 16
  // (taking it for malformed would drop a healthy connection after a run of timeouts, and the
  // reply now on its way with it), and 1 ago inside the smallest window.
  EXPECT_EQ(find_reply(Framing::kTcp, late, 7 + 16, 9, RegisterKind::kInput, 1, f, 16),
            FrameStatus::kStale);
  EXPECT_EQ(find_reply(Framing::kTcp, late, 7 + 1, 9, RegisterKind::kInput, 1, f, 1),
            FrameStatus::kStale);
  // Outside the window (or with no window, or from the future) it stays malformed.
  EXPECT_EQ(find_reply(Framing::kTcp, late, 7 + 17, 9, RegisterKind::kInput, 1, f, 16),
            FrameStatus::kMalformed);
  EXPECT_EQ(find_reply(Framing::kTcp, late, 7 + 2, 9, RegisterKind::kInput, 1, f, 1),
            FrameStatus::kMalformed);
  EXPECT_EQ(find_reply(Framing::kTcp, late, 9, 9, RegisterKind::kInput, 1, f),
            FrameStatus::kMalformed);
  EXPECT_EQ(find_reply(Framing::kTcp, late, 6, 9, RegisterKind::kInput, 1, f, 16),
            FrameStatus::kMalformed);
  // Across the wrap of the 16-bit transaction id.
  Bytes wrapped = late;
  wrapped[0] = 0xFF;
  wrapped[1] = 0xFF;
  EXPECT_EQ(find_reply(Framing::kTcp, wrapped, 1, 9, RegisterKind::kInput, 1, f, 16),
            FrameStatus::kStale);
  EXPECT_EQ(find_reply(Framing::kTcp, wrapped, 15, 9, RegisterKind::kInput, 1, f, 16),
            FrameStatus::kStale);  // 0xFFFF is 16 requests before 15: the window's edge
  // A bad MBAP length is never skipped over: malformed.
  Bytes lying = late;
  lying[5] = 255;
  EXPECT_EQ(find_reply(Framing::kTcp, lying, 9, 9, RegisterKind::kInput, 1, f, 16),
            FrameStatus::kMalformed);
}

TEST(Frame, RtuReplyLengthComesFromByteCountAndCrcIsChecked) {
  Bytes r{1, 3, 4, 0x00, 0x2A, 0xFF, 0xFE};
  const std::uint16_t crc = crc16(r);
  r.push_back(crc & 0xFF);
  r.push_back(crc >> 8);
  ReplyFrame f;
  EXPECT_EQ(find_reply(Framing::kRtu, std::span(r).first(8), 0, 1, RegisterKind::kHolding, 2, f),
            FrameStatus::kIncomplete);
  ASSERT_EQ(find_reply(Framing::kRtu, r, 0, 1, RegisterKind::kHolding, 2, f), FrameStatus::kComplete);
  EXPECT_EQ(f.size, 9u);
  EXPECT_EQ(f.pdu_offset, 1u);
  EXPECT_EQ(f.pdu_size, 6u);
  Bytes bad = r;
  bad[4] ^= 1;
  EXPECT_EQ(find_reply(Framing::kRtu, bad, 0, 1, RegisterKind::kHolding, 2, f), FrameStatus::kMalformed);
  EXPECT_EQ(f.error, "bad CRC");
  // An exception reply is 5 bytes.
  Bytes exc{1, 0x83, 2};
  const std::uint16_t c2 = crc16(exc);
  exc.push_back(c2 & 0xFF);
  exc.push_back(c2 >> 8);
  ASSERT_EQ(find_reply(Framing::kRtu, exc, 0, 1, RegisterKind::kHolding, 2, f), FrameStatus::kComplete);
  EXPECT_EQ(f.pdu_size, 2u);
  // A reply from another unit or to another function is not ours.
  EXPECT_EQ(find_reply(Framing::kRtu, exc, 0, 2, RegisterKind::kHolding, 2, f), FrameStatus::kMalformed);
  EXPECT_EQ(find_reply(Framing::kRtu, exc, 0, 1, RegisterKind::kInput, 1, f), FrameStatus::kMalformed);
}

TEST(Frame, ATooLongMbapLengthIsMalformedWithoutWaitingForItsBytes) {
  // A read of 1 input register: the reply's MBAP length must be 1 + 4 = 5. This one says 7 and
  // will never send the two extra bytes; the header alone must be enough to reject it.
  const Bytes lying{0x00, 0x07, 0, 0, 0, 7, 9, 4, 2, 0x12, 0x34};
  ReplyFrame f;
  EXPECT_EQ(find_reply(Framing::kTcp, std::span(lying).first(8), 7, 9, RegisterKind::kInput, 1, f),
            FrameStatus::kMalformed);
  EXPECT_NE(f.error.find("MBAP length 7"), std::string::npos) << f.error;
  EXPECT_EQ(find_reply(Framing::kTcp, lying, 7, 9, RegisterKind::kInput, 1, f),
            FrameStatus::kMalformed);
  // Too short is malformed too (it would swallow the start of the next frame).
  Bytes short_len = lying;
  short_len[5] = 4;
  EXPECT_EQ(find_reply(Framing::kTcp, short_len, 7, 9, RegisterKind::kInput, 1, f),
            FrameStatus::kMalformed);
  // An exception reply has length 3, whatever was asked for.
  const Bytes exc{0x00, 0x07, 0, 0, 0, 3, 9, 0x84, 2};
  EXPECT_EQ(find_reply(Framing::kTcp, exc, 7, 9, RegisterKind::kInput, 100, f),
            FrameStatus::kComplete);
  Bytes exc_long = exc;
  exc_long[5] = 5;
  EXPECT_EQ(find_reply(Framing::kTcp, exc_long, 7, 9, RegisterKind::kInput, 1, f),
            FrameStatus::kMalformed);
  // Until the function code has arrived the length cannot be judged yet.
  EXPECT_EQ(find_reply(Framing::kTcp, std::span(lying).first(7), 7, 9, RegisterKind::kInput, 1, f),
            FrameStatus::kIncomplete);
}

TEST(Frame, AWrongRtuByteCountIsMalformedWithoutWaitingForItsBytes) {
  // A read of 2 holding registers: byte count 4. A byte count of 200 would make us wait for
  // 200 bytes that never come.
  const Bytes lying{1, 3, 200, 0, 1};
  ReplyFrame f;
  EXPECT_EQ(find_reply(Framing::kRtu, lying, 0, 1, RegisterKind::kHolding, 2, f),
            FrameStatus::kMalformed);
  EXPECT_NE(f.error.find("byte count 200"), std::string::npos) << f.error;
  const Bytes coils{1, 1, 2};  // 10 coils need 2 bytes: fine so far
  EXPECT_EQ(find_reply(Framing::kRtu, coils, 0, 1, RegisterKind::kCoil, 10, f),
            FrameStatus::kIncomplete);
}

TEST(Frame, ATooSmallRtuByteCountIsMalformedEvenWithAGoodCrc) {
  // A read of 2 holding registers answered with one: byte count 2 instead of 4, and a CRC that
  // is correct for those 7 bytes. Too small is as wrong as too large: reading the frame length
  // from the request instead would wait for 2 bytes that never come (a timeout, not a malformed
  // reply), or take them from whatever comes next on the line.
  Bytes r{1, 3, 2, 0x00, 0x2A};
  const std::uint16_t crc = crc16(r);
  r.push_back(crc & 0xFF);
  r.push_back(crc >> 8);
  ReplyFrame f;
  EXPECT_EQ(find_reply(Framing::kRtu, r, 0, 1, RegisterKind::kHolding, 2, f),
            FrameStatus::kMalformed);
  EXPECT_NE(f.error.find("byte count 2"), std::string::npos) << f.error;
  // The byte count alone is enough to tell.
  EXPECT_EQ(find_reply(Framing::kRtu, std::span(r).first(3), 0, 1, RegisterKind::kHolding, 2, f),
            FrameStatus::kMalformed);
  // Bits likewise: 10 coils take 2 bytes, not 1.
  Bytes coils{1, 1, 1, 0b10100101};
  const std::uint16_t c2 = crc16(coils);
  coils.push_back(c2 & 0xFF);
  coils.push_back(c2 >> 8);
  EXPECT_EQ(find_reply(Framing::kRtu, coils, 0, 1, RegisterKind::kCoil, 10, f),
            FrameStatus::kMalformed);
  EXPECT_NE(f.error.find("byte count 1"), std::string::npos) << f.error;
}

TEST(Frame, ParseReadReplyIsStrictAboutByteCount) {
  std::uint16_t v[3] = {};
  const Bytes regs{3, 6, 0, 1, 0, 2, 0xAB, 0xCD};
  auto r = parse_read_reply(regs, RegisterKind::kHolding, 3, v);
  ASSERT_EQ(r.kind, ReplyKind::kData);
  EXPECT_EQ(v[0], 1);
  EXPECT_EQ(v[2], 0xABCD);
  // Asked for 2 registers, got 3: libmodbus 3.1.6 desynchronises here; we call it malformed.
  EXPECT_EQ(parse_read_reply(regs, RegisterKind::kHolding, 2, v).kind, ReplyKind::kMalformed);
  // Byte count field disagrees with the PDU length.
  const Bytes lying{3, 4, 0, 1, 0, 2, 0xAB, 0xCD};
  EXPECT_EQ(parse_read_reply(lying, RegisterKind::kHolding, 2, v).kind, ReplyKind::kMalformed);
  // A PDU of exactly the right length whose byte count is wrong: the byte count alone catches it
  // (Modbus TCP frames by the MBAP length, so find_reply lets this PDU through).
  const Bytes miscounted{3, 5, 0, 1, 0, 2, 0xAB, 0xCD};
  ASSERT_EQ(miscounted.size(), reply_pdu_size(RegisterKind::kHolding, 3));
  r = parse_read_reply(miscounted, RegisterKind::kHolding, 3, v);
  EXPECT_EQ(r.kind, ReplyKind::kMalformed);
  EXPECT_NE(r.error.find("byte count 5"), std::string::npos) << r.error;
  const Bytes miscounted_bits{1, 3, 0b10100101, 0b10};  // 10 coils take 2 bytes, not 3
  EXPECT_EQ(parse_read_reply(miscounted_bits, RegisterKind::kCoil, 10, v).kind,
            ReplyKind::kMalformed);
  // Wrong function code.
  EXPECT_EQ(parse_read_reply(regs, RegisterKind::kInput, 3, v).kind, ReplyKind::kMalformed);
  // Exceptions.
  const Bytes exc{0x84, 2};
  r = parse_read_reply(exc, RegisterKind::kInput, 3, v);
  EXPECT_EQ(r.kind, ReplyKind::kException);
  EXPECT_EQ(r.exception_code, 2);
  EXPECT_EQ(parse_read_reply(Bytes{0x84, 2, 0}, RegisterKind::kInput, 3, v).kind,
            ReplyKind::kMalformed);
  // Bits are packed LSB first.
  std::uint16_t bits[10] = {};
  const Bytes coils{1, 2, 0b10100101, 0b10};
  ASSERT_EQ(parse_read_reply(coils, RegisterKind::kCoil, 10, bits).kind, ReplyKind::kData);
  const std::uint16_t want[10] = {1, 0, 1, 0, 0, 1, 0, 1, 0, 1};
  for (int i = 0; i < 10; ++i) EXPECT_EQ(bits[i], want[i]) << i;
}

}  // namespace
}  // namespace facility::modbus
