// `facilityd probe --diagnose ADDRESS`: the registers ADDRESS-1 .. ADDRESS+4, raw, and the value
// of every type in every word order starting at ADDRESS-1, ADDRESS and ADDRESS+1. The two
// classic commissioning mistakes become visible on one screen: a manual that counts registers
// from 1 (the expected value shows one row up), and a word order (it shows in another column).
#include <nlohmann/json.hpp>

#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <iomanip>
#include <ostream>
#include <sstream>

#include "daemon/app/probe.h"
#include "daemon/config/config.h"
#include "daemon/polling/polling.h"

namespace facility::probe_detail {
namespace {

using modbus::DataType;
using modbus::WordOrder;

constexpr std::array<DataType, 9> kTypes{DataType::kInt16,  DataType::kUInt16,  DataType::kInt32,
                                         DataType::kUInt32, DataType::kFloat32, DataType::kInt64,
                                         DataType::kUInt64, DataType::kFloat64, DataType::kString};
constexpr std::array<WordOrder, 4> kOrders{WordOrder::kABCD, WordOrder::kCDAB, WordOrder::kBADC,
                                           WordOrder::kDCBA};

std::string shortest(double v) {
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, res.ptr);
}

// The registers around the address, one point each (a read the device rejects as a whole is
// split down to single registers by the poll, so the ones it has still show).
modbus::DeviceSpec window_spec(const Device& dev, modbus::RegisterKind kind, int first, int count) {
  modbus::DeviceSpec spec = make_device_spec(dev);
  spec.points.clear();
  spec.every.clear();
  spec.derived.clear();
  for (int a = first; a < first + count; ++a) {
    modbus::PointSpec p;
    p.name = "r" + std::to_string(a);
    p.kind = kind;
    p.address = static_cast<std::uint16_t>(a);
    p.type = DataType::kUInt16;
    p.unit = "none";
    spec.points.push_back(p);
  }
  spec.plan.max_gap = 0;
  spec.plan.forbidden.clear();
  spec.interval = std::chrono::hours(1);
  spec.capture_raw = true;
  spec.first_poll_offset = std::chrono::milliseconds(0);
  return spec;
}

// A value of `type` in `order` from the registers at `at`, or "" when a register is missing.
// 16-bit types have only two orders (CDAB is ABCD, DCBA is BADC): the others show "=".
std::string decode_at(const std::vector<std::optional<std::uint16_t>>& regs, std::size_t at,
                      DataType type, WordOrder order) {
  const bool narrow = modbus::width_of(type) == 1 && type != DataType::kString;
  if (narrow && (order == WordOrder::kCDAB || order == WordOrder::kDCBA)) return "=";
  modbus::PointSpec p;
  p.type = type;
  p.order = order;
  p.length = 4;  // strings: 8 characters
  p.unit = "none";
  const std::size_t n = static_cast<std::size_t>(p.width());
  std::vector<std::uint16_t> words;
  for (std::size_t i = at; i < at + n; ++i) {
    if (i >= regs.size() || !regs[i]) return "";
    words.push_back(*regs[i]);
  }
  const modbus::Decoded d = modbus::PointCodec(p).decode(words);
  if (type == DataType::kString) return "\"" + d.text + "\"";
  if (!d.value) return "NaN";
  if (type == DataType::kFloat32 || type == DataType::kFloat64) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.8g", *d.value);  // enough to recognise a reading
    return buf;
  }
  return shortest(*d.value);
}

using Registers = std::vector<std::optional<std::uint16_t>>;

void print_json(const Device& dev, const std::string& fn, int address, int first,
                const Registers& regs, const std::vector<std::string>& problems,
                std::ostream& out) {
  using nlohmann::json;
  const int count = static_cast<int>(regs.size());
  json raw = json::object();
  for (int i = 0; i < count; ++i) {
    const auto& w = regs[static_cast<std::size_t>(i)];
    raw[std::to_string(first + i)] = w ? json(*w) : json(nullptr);
  }
  json starts = json::object();
  for (int s = first; s <= address + 1 && s < first + count; ++s) {
    json types = json::object();
    for (DataType t : kTypes) {
      json orders = json::object();
      for (WordOrder o : kOrders) {
        const std::string v = decode_at(regs, static_cast<std::size_t>(s - first), t, o);
        if (v != "=")
          orders[std::string(modbus::to_string(o))] = v.empty() ? json(nullptr) : json(v);
      }
      types[std::string(modbus::to_string(t))] = std::move(orders);
    }
    starts[std::to_string(s)] = std::move(types);
  }
  out << json{{"endpoint", dev.endpoint.key()},
              {"unit", dev.unit},
              {"function", fn},
              {"address", address},
              {"registers", raw},
              {"values", starts},
              {"notes", problems}}
             .dump(2)
      << "\n";
}

void print_table(const Device& dev, const std::string& fn, int address, int first,
                 const Registers& regs, std::ostream& out) {
  const int count = static_cast<int>(regs.size());
  out << "unit " << dev.unit << " at " << dev.endpoint.key() << ": " << fn << " registers " << first
      << ".." << first + count - 1 << " around " << address << "\n\nADDRESS  RAW\n";
  for (int i = 0; i < count; ++i) {
    const auto& w = regs[static_cast<std::size_t>(i)];
    std::ostringstream hex;
    if (w) hex << "0x" << std::hex << std::uppercase << std::setw(4) << std::setfill('0') << *w;
    out << std::left << std::setw(9) << first + i << (w ? hex.str() : "-- (rejected)")
        << (first + i == address ? "   <- " + std::to_string(address) : "") << "\n";
  }
  out << "\nValues starting at each address (A = most significant byte; ABCD is the Modbus "
         "standard's big-endian, CDAB word-swapped; \"=\" the same as the column two to its "
         "left):\n"
      << std::setw(7) << "START" << std::setw(9) << "TYPE";
  for (WordOrder o : kOrders) out << std::setw(22) << modbus::to_string(o);
  out << "\n";
  for (int s = first; s <= address + 1 && s < first + count; ++s) {
    for (DataType t : kTypes) {
      out << std::setw(7) << s << std::setw(9) << modbus::to_string(t);
      for (WordOrder o : kOrders) {
        const std::string v = decode_at(regs, static_cast<std::size_t>(s - first), t, o);
        out << std::setw(22) << (v.empty() ? "-" : v.substr(0, 21));
      }
      out << "\n";
    }
  }
  out << "\nIf the value you expect at " << address << " shows at " << address - 1
      << ", the manual counts registers from 1: write the manual's numbers with "
         "`address_base: 1` in the profile (or subtract 1). If it shows in another column, set "
         "the point's `order`.\n";
}

}  // namespace

int run_diagnose(const ProbeOptions& opt, const Device& dev, const EndpointSettings& es,
                 std::ostream& out, std::ostream& err) {
  const int address = *opt.diagnose;
  const auto kind =
      opt.function == "input" ? modbus::RegisterKind::kInput : modbus::RegisterKind::kHolding;
  const int first = std::max(0, address - 1);
  const int count = std::min(65535, address + 4) - first + 1;
  std::vector<std::string> problems;
  const modbus::PollResult r = poll_once(dev, es, window_spec(dev, kind, first, count), problems);
  if (!r.ok) {
    err << "facilityd probe: poll failed: " << r.error << "\n";
    for (const auto& p : problems) err << "  " << p << "\n";
    return 1;
  }
  Registers regs;
  for (const auto& v : r.values) {
    regs.push_back(v.unreadable || v.raw.empty() ? std::nullopt
                                                 : std::optional<std::uint16_t>(v.raw[0]));
  }
  const std::string fn(modbus::to_string(kind));
  if (opt.json) {
    print_json(dev, fn, address, first, regs, problems, out);
  } else {
    print_table(dev, fn, address, first, regs, out);
  }
  return 0;
}

}  // namespace facility::probe_detail
