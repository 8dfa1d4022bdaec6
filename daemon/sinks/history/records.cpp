#include "daemon/sinks/history/records.h"

#include <cstring>

namespace facility {
namespace {

using history_detail::fmax_nan;
using history_detail::fmin_nan;

template <typename T>
void put(std::string& out, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));  // little-endian hosts only (x86-64, arm64)
  out.append(b, sizeof(T));
}
template <typename T>
T get(const unsigned char*& p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  p += sizeof(T);
  return v;
}
std::uint16_t sec16(double s) { return std::uint16_t(std::clamp(std::llround(s), 0LL, 65535LL)); }

constexpr std::size_t kCabinetBytes = 22;

}  // namespace

void CabinetInterval::merge(const CabinetInterval& o) {
  energy_ws += o.energy_ws;
  known_s += o.known_s;
  peak_w = fmax_nan(peak_w, o.peak_w);
  powered_s += o.powered_s;
  overload_s += o.overload_s;
  overload_starts += o.overload_starts;
  failover_min_w = fmin_nan(failover_min_w, o.failover_min_w);
  failover_neg_s += o.failover_neg_s;
}

void SiteInterval::merge(const SiteInterval& o) {
  samples_s += o.samples_s;
  it_j += o.it_j;
  it_s += o.it_s;
  fac_j += o.fac_j;
  fac_s += o.fac_s;
  cool_j += o.cool_j;
  cool_s += o.cool_s;
  pue_it_j += o.pue_it_j;
  pue_fac_j += o.pue_fac_j;
  pue_s += o.pue_s;
  it_peak_w = fmax_nan(it_peak_w, o.it_peak_w);
  cab_j += o.cab_j;
  cab_s += o.cab_s;
  cab_peak_w = fmax_nan(cab_peak_w, o.cab_peak_w);
  cab_known_s += o.cab_known_s;
  cab_expected_s += o.cab_expected_s;
  if (o.total > 0 || o.samples_s > 0) {
    total = o.total;
    powered = o.powered;
    sold = o.sold;
    internal = o.internal;
    free = o.free;
    powered_known = o.powered_known;
  }
  powered_max = std::max(powered_max, o.powered_max);
  cool_hr_min_w = fmin_nan(cool_hr_min_w, o.cool_hr_min_w);
  cool_hr_s += o.cool_hr_s;
  if (o.pue_category) pue_category = o.pue_category;
}

std::string encode_cabinets(const std::vector<CabinetInterval>& cabs) {
  std::string out;
  out.reserve(5 + cabs.size() * kCabinetBytes);
  put<std::uint8_t>(out, 1);
  put<std::uint32_t>(out, std::uint32_t(cabs.size()));
  for (const auto& c : cabs) {
    put<float>(out, float(c.avg_w()));
    put<float>(out, float(c.peak_w));
    put<std::uint16_t>(out, sec16(c.known_s));
    put<std::uint16_t>(out, sec16(c.powered_s));
    put<std::uint16_t>(out, sec16(c.overload_s));
    put<std::uint16_t>(out, std::uint16_t(std::clamp(c.overload_starts, 0, 65535)));
    put<float>(out, float(c.failover_min_w));
    put<std::uint16_t>(out, sec16(c.failover_neg_s));
  }
  return out;
}

std::vector<CabinetInterval> decode_cabinets(const void* data, std::size_t size) {
  const auto* p = static_cast<const unsigned char*>(data);
  if (size < 5 || p[0] != 1) throw std::runtime_error("history: unknown cabinet record format");
  ++p;
  const auto n = get<std::uint32_t>(p);
  if (size != 5 + std::size_t(n) * kCabinetBytes) {
    throw std::runtime_error("history: truncated cabinet record");
  }
  std::vector<CabinetInterval> out(n);
  for (auto& c : out) {
    const double avg = get<float>(p);
    c.peak_w = get<float>(p);
    c.known_s = get<std::uint16_t>(p);
    c.powered_s = get<std::uint16_t>(p);
    c.overload_s = get<std::uint16_t>(p);
    c.overload_starts = get<std::uint16_t>(p);
    c.failover_min_w = get<float>(p);
    c.failover_neg_s = get<std::uint16_t>(p);
    c.energy_ws = c.known_s > 0 && !std::isnan(avg) ? avg * c.known_s : 0;
  }
  return out;
}

std::vector<LayoutCabinet> layout_of(const Site& site) {
  std::vector<LayoutCabinet> out;
  for (const auto& c : site.cabinets) out.push_back({c.id, c.room, c.rated_w, to_string(c.status)});
  return out;
}

}  // namespace facility
