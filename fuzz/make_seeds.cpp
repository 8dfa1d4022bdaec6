// Writes the seed corpora of the Modbus targets (fuzz/corpus/modbus_tcp, fuzz/corpus/modbus_rtu):
// the chunks a healthy device sends for two poll cycles of fuzz_device(), and variants with the
// faults the engine must survive (exceptions, busy, a trailing junk, a reply sent twice, a stale
// reply first, a timeout, a bad CRC, a wrong byte count). Run by hand after changing
// modbus_driver.h:  facility-fuzz-seeds fuzz/corpus
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "fuzz/modbus_driver.h"

namespace {

using facility::modbus::Framing;
using facility::modbus::ReadRequest;
using Bytes = std::vector<std::uint8_t>;

// How the fake device answers request number `n` (0-based).
enum class Fault { kNone, kException2, kBusy, kTrailing, kTwice, kStaleFirst, kTimeout, kBadCrc,
                   kByteCount, kIllegalFunction };

// The reply frame of a healthy device: every register holds 0x0100 + its address; bits alternate.
Bytes reply(Framing fr, const ReadRequest& r, std::uint16_t tid, std::uint8_t unit, Bytes pdu) {
  (void)r;
  Bytes out;
  if (fr == Framing::kTcp) {
    const auto len = static_cast<std::uint16_t>(pdu.size() + 1);
    out = {static_cast<std::uint8_t>(tid >> 8), static_cast<std::uint8_t>(tid), 0, 0,
           static_cast<std::uint8_t>(len >> 8), static_cast<std::uint8_t>(len), unit};
    out.insert(out.end(), pdu.begin(), pdu.end());
  } else {
    out.push_back(unit);
    out.insert(out.end(), pdu.begin(), pdu.end());
    const std::uint16_t crc = facility::modbus::crc16(out);
    out.push_back(static_cast<std::uint8_t>(crc & 0xFF));
    out.push_back(static_cast<std::uint8_t>(crc >> 8));
  }
  return out;
}

Bytes data_pdu(const ReadRequest& r) {
  const auto fc = static_cast<std::uint8_t>(r.kind);
  Bytes pdu{fc, 0};
  if (facility::modbus::is_bit_kind(r.kind)) {
    Bytes bits((r.count + 7) / 8, 0x55);
    pdu.insert(pdu.end(), bits.begin(), bits.end());
  } else {
    for (int a = r.address; a < r.address + r.count; ++a) {
      pdu.push_back(static_cast<std::uint8_t>(0x01));
      pdu.push_back(static_cast<std::uint8_t>(a & 0xFF));
    }
  }
  pdu[1] = static_cast<std::uint8_t>(pdu.size() - 2);
  return pdu;
}

Bytes seed(Framing fr, Fault fault, int at) {
  Bytes input;
  int n = 0;
  facility::fuzz::drive(fr, [&](const ReadRequest& r, std::uint16_t tid, const Bytes&, Bytes& out) {
    const std::uint8_t unit = 7;
    const auto fc = static_cast<std::uint8_t>(r.kind);
    const bool here = n++ == at;
    const Fault f = here ? fault : Fault::kNone;
    if (f == Fault::kTimeout) {
      input.push_back(0);  // an empty chunk: no reply
      return true;
    }
    Bytes pdu = data_pdu(r);
    if (f == Fault::kException2) pdu = {static_cast<std::uint8_t>(fc | 0x80), 2};
    if (f == Fault::kBusy) pdu = {static_cast<std::uint8_t>(fc | 0x80), 6};
    if (f == Fault::kIllegalFunction) pdu = {static_cast<std::uint8_t>(fc | 0x80), 1};
    if (f == Fault::kByteCount) pdu[1] ^= 0x02;
    out = reply(fr, r, tid, unit, pdu);
    if (f == Fault::kBadCrc && fr == Framing::kRtu) out.back() ^= 0xFF;
    if (f == Fault::kTrailing) out.insert(out.end(), {0xDE, 0xAD, 0xBE, 0xEF, 0x00, 0x01});
    if (f == Fault::kTwice) {
      const Bytes once = out;
      out.insert(out.end(), once.begin(), once.end());
    }
    if (f == Fault::kStaleFirst && fr == Framing::kTcp && tid > 1) {
      Bytes stale = reply(fr, r, static_cast<std::uint16_t>(tid - 1), unit, data_pdu(r));
      stale.insert(stale.end(), out.begin(), out.end());
      out = stale;
    }
    input.push_back(static_cast<std::uint8_t>(out.size()));
    input.insert(input.end(), out.begin(), out.end());
    return true;
  });
  return input;
}

}  // namespace

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR (fuzz/corpus)\n", argv[0]);
    return 2;
  }
  const struct {
    const char* name;
    Fault fault;
    int at;
  } cases[] = {
      {"healthy", Fault::kNone, -1},          {"exception2-first", Fault::kException2, 0},
      {"exception2-third", Fault::kException2, 2}, {"busy", Fault::kBusy, 1},
      {"illegal-function", Fault::kIllegalFunction, 0}, {"trailing", Fault::kTrailing, 1},
      {"twice", Fault::kTwice, 0},            {"stale-first", Fault::kStaleFirst, 2},
      {"timeout", Fault::kTimeout, 1},        {"bad-crc", Fault::kBadCrc, 0},
      {"byte-count", Fault::kByteCount, 1},
  };
  for (const auto& [dir, fr] : {std::pair{"modbus_tcp", Framing::kTcp},
                                std::pair{"modbus_rtu", Framing::kRtu}}) {
    fs::create_directories(fs::path(argv[1]) / dir);
    for (const auto& c : cases) {
      if (c.fault == Fault::kBadCrc && fr == Framing::kTcp) continue;
      if (c.fault == Fault::kStaleFirst && fr == Framing::kRtu) continue;
      const Bytes b = seed(fr, c.fault, c.at);
      std::ofstream(fs::path(argv[1]) / dir / c.name, std::ios::binary)
          .write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
    }
  }
  return 0;
}
