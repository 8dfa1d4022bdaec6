// The Modbus reply path as the engine (collectors/modbus/engine.cpp) drives it, without sockets:
// a DevicePoll over a fixed device of every point type asks for reads, a `Source` answers each
// request with a chunk of bytes, and the chunk goes through find_reply() (MBAP or RTU framing,
// stale transaction ids, trailing bytes dropped), parse_read_reply() and the point decoders, as
// the engine would. The fuzz targets take the chunks from the fuzzer's input; make_seeds.cpp
// answers like a healthy (or deliberately faulty) device to write the seed corpora.
//
// Input format of the fuzz targets: a sequence of chunks, each one length byte and that many
// bytes; chunk i answers request i (transaction ids count from 1). A missing chunk is a timeout.
//
// Invariants checked (a violation traps, which libFuzzer reports as a crash):
//   - every read the poll asks for is a legal request (count 1..125 registers / 1..2000 bits);
//   - a complete or stale frame lies inside the received bytes, its PDU inside the frame;
//   - an RTU frame found complete has a CRC residue of 0 and parses as data or exception (the
//     framing has checked the byte count);
//   - a cycle ends after a bounded number of requests, and an ok result has every point.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "collectors/modbus/device_poll.h"
#include "collectors/modbus/frame.h"

namespace facility::fuzz {

inline void check(bool ok) {
  if (!ok) __builtin_trap();
}

inline modbus::PointSpec point(const char* name, modbus::RegisterKind kind, std::uint16_t address,
                               modbus::DataType type,
                               modbus::WordOrder order = modbus::WordOrder::kABCD) {
  modbus::PointSpec s;
  s.name = name;
  s.kind = kind;
  s.address = address;
  s.type = type;
  s.order = order;
  s.unit = "none";
  return s;
}

// A device with every point type, word order, a bit of a register, an enumeration, a string,
// sentinels, scale and offset, two point groups, and a small register cap so that a cycle takes
// several reads (and exceptions split them).
inline modbus::DeviceSpec fuzz_device() {
  using modbus::DataType;
  using modbus::RegisterKind;
  using modbus::WordOrder;
  modbus::DeviceSpec d;
  d.id = "fuzz";
  d.unit = 7;
  d.retries = 1;
  d.busy_retries = 2;
  d.plan.max_registers = 8;
  d.plan.max_gap = 4;
  auto& p = d.points;
  p.push_back(point("i16", RegisterKind::kHolding, 0, DataType::kInt16));
  p.back().scale = 0.1;
  p.back().offset = -5;
  p.back().not_available = {-32768};
  p.push_back(point("u32", RegisterKind::kHolding, 1, DataType::kUInt32, WordOrder::kCDAB));
  p.push_back(point("f32", RegisterKind::kHolding, 3, DataType::kFloat32));
  p.back().not_available = {0xFFFFFFFF};
  p.push_back(point("f64", RegisterKind::kHolding, 6, DataType::kFloat64, WordOrder::kDCBA));
  p.push_back(point("str", RegisterKind::kHolding, 10, DataType::kString));
  p.back().length = 4;
  p.push_back(point("bit", RegisterKind::kHolding, 14, DataType::kBool));
  p.back().bit = 3;
  p.push_back(point("enum", RegisterKind::kHolding, 15, DataType::kUInt16));
  p.back().enum_names = {{0, "stopped"}, {1, "running"}};
  p.push_back(point("i64", RegisterKind::kHolding, 16, DataType::kInt64, WordOrder::kBADC));
  p.push_back(point("u64", RegisterKind::kHolding, 30, DataType::kUInt64));
  p.push_back(point("in16", RegisterKind::kInput, 100, DataType::kInt16));
  p.push_back(point("in32", RegisterKind::kInput, 101, DataType::kInt32, WordOrder::kDCBA));
  p.push_back(point("coil0", RegisterKind::kCoil, 0, DataType::kBool));
  p.push_back(point("coil5", RegisterKind::kCoil, 5, DataType::kBool));
  p.push_back(point("di0", RegisterKind::kDiscreteInput, 0, DataType::kBool));
  // u64 and the coils every 2nd poll.
  d.every = {1, 1, 1, 1, 1, 1, 1, 1, 2, 1, 1, 2, 2, 1};
  return d;
}

// Answers request `r` (sent with transaction id `tid`, as the `request` bytes): the bytes the
// "device" sends back, or nullopt-like empty + false for no answer at all (a timeout).
using Source = std::function<bool(const modbus::ReadRequest& r, std::uint16_t tid,
                                  const std::vector<std::uint8_t>& request,
                                  std::vector<std::uint8_t>& reply)>;

// Drives two poll cycles of fuzz_device() one interval apart; returns the requests sent.
inline int drive(modbus::Framing framing, const Source& source) {
  using modbus::FrameStatus;
  using Step = modbus::DevicePoll::Step;
  const modbus::DeviceSpec spec = fuzz_device();
  modbus::DevicePoll poll(spec, 0);
  const auto unit = static_cast<std::uint8_t>(spec.unit);
  // The engine's window of earlier transaction ids whose late replies are skipped (TCP only).
  const std::uint16_t stale = framing == modbus::Framing::kTcp ? 16 : 0;
  std::uint16_t tid = 0;
  int sent = 0;
  std::vector<std::uint8_t> rx;
  std::vector<std::uint8_t> request;
  std::vector<std::uint8_t> chunk;
  const modbus::SteadyTime t0 = modbus::SteadyTime{} + std::chrono::hours(1);
  for (int cycle = 0; cycle < 2; ++cycle) {
    const modbus::SteadyTime now = t0 + cycle * spec.interval;
    poll.begin(now, now);
    modbus::DevicePoll::Outcome o = poll.first();
    int guard = 0;
    while (o.step == Step::kSend || o.step == Step::kSendAfter ||
           o.step == Step::kReconnectSend) {
      check(++guard < 1000);
      if (o.step == Step::kReconnectSend) rx.clear();
      const modbus::ReadRequest& r = poll.request();
      check(r.count >= 1 && r.count <= (modbus::is_bit_kind(r.kind) ? 2000 : 125));
      request.clear();
      modbus::encode_read_request(framing, ++tid, unit, r.kind, r.address, r.count, request);
      poll.on_sent();
      ++sent;
      chunk.clear();
      if (!source(r, tid, request, chunk)) {
        rx.clear();
        o = poll.on_timeout();
        continue;
      }
      rx.insert(rx.end(), chunk.begin(), chunk.end());
      modbus::ReplyFrame f;
      FrameStatus st;
      while ((st = modbus::find_reply(framing, rx, tid, unit, r.kind, r.count, f, stale)) ==
             FrameStatus::kStale) {
        check(f.size > 0 && f.size <= rx.size());
        rx.erase(rx.begin(), rx.begin() + static_cast<std::ptrdiff_t>(f.size));
        f = modbus::ReplyFrame{};
      }
      if (st == FrameStatus::kIncomplete) {  // the rest never comes: the request times out
        rx.clear();
        o = poll.on_timeout();
        continue;
      }
      if (st == FrameStatus::kMalformed) {
        check(!f.error.empty());
        rx.clear();
        o = poll.on_malformed(f.error);
        continue;
      }
      check(f.size <= rx.size() && f.pdu_offset + f.pdu_size <= f.size && f.pdu_size > 0);
      const std::vector<std::uint8_t> frame(rx.begin(),
                                            rx.begin() + static_cast<std::ptrdiff_t>(f.size));
      rx.clear();  // trailing bytes are dropped (and, for RTU, the connection renewed)
      const std::span<const std::uint8_t> pdu(frame.data() + f.pdu_offset, f.pdu_size);
      if (framing == modbus::Framing::kRtu) {
        check(modbus::crc16(frame) == 0);
        std::vector<std::uint16_t> values(r.count);
        check(modbus::parse_read_reply(pdu, r.kind, r.count, values.data()).kind !=
              modbus::ReplyKind::kMalformed);
      }
      o = poll.on_reply(pdu);
    }
    const modbus::PollResult res = poll.take_result(now);
    check(!res.ok || res.values.size() == spec.points.size());
    if (o.step == Step::kDoneReconnect) rx.clear();
    check(poll.next_poll(now + spec.interval, now) >= now);
  }
  return sent;
}

// The fuzz input as a Source: one length-prefixed chunk per request.
struct ChunkReader {
  const std::uint8_t* data;
  std::size_t size;
  bool operator()(const modbus::ReadRequest&, std::uint16_t, const std::vector<std::uint8_t>&,
                  std::vector<std::uint8_t>& reply) {
    if (size == 0) return false;
    const std::size_t n = std::min<std::size_t>(data[0], size - 1);
    reply.assign(data + 1, data + 1 + n);
    data += 1 + n;
    size -= 1 + n;
    return true;
  }
};

}  // namespace facility::fuzz
