#include "daemon/app/scan_match.h"

#include <algorithm>
#include <cctype>
#include <sstream>

namespace facility {
namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string where(const modbus::PointSpec& s) {
  return std::string(modbus::to_string(s.kind)) + " " + std::to_string(s.address);
}

std::string number(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

// FC43: 4 when every object the profile names is in the device's answer and one of them names
// the product (product code, product name, model name); 2 when only the vendor does; 0 when an
// object does not match; -1 when the device gave no identification (the registers then decide,
// if there are any).
int match_fc43(const Fc43Match& m, const UnitEvidence& ev, std::string& what) {
  if (!ev.fc43) return -1;
  int score = 2;
  for (const auto& [id, text] : m.objects) {
    if (id == 1 || id == 4 || id == 5) score = 4;
    auto it = std::find_if(ev.objects.begin(), ev.objects.end(),
                           [id = id](const auto& o) { return o.first == id; });
    if (it == ev.objects.end() || lower(it->second).find(lower(text)) == std::string::npos) {
      return 0;
    }
    what += std::string(what.empty() ? "" : ", ") + "FC43 " + device_id_object_name(id) + " \"" +
            it->second + "\"";
  }
  return score;
}

}  // namespace

int match_register(const IdentifyRegister& reg, const std::optional<std::vector<std::uint16_t>>& w,
                   std::string& what) {
  if (!w || static_cast<int>(w->size()) != reg.spec.width()) return 0;
  const std::string at = where(reg.spec);
  if (!reg.prefix.empty()) {
    const modbus::Decoded d = modbus::PointCodec(reg.spec).decode(*w);
    if (lower(d.text).rfind(lower(reg.prefix), 0) != 0) return 0;
    what += (what.empty() ? "" : ", ") + at + " \"" + d.text + "\"";
    return 3;
  }
  if (!reg.equals.empty()) {
    modbus::PointSpec raw = reg.spec;  // codes are raw values
    raw.scale = 1.0;
    raw.offset = 0.0;
    const auto v = modbus::PointCodec(raw).decode(*w).value;
    if (!v || std::none_of(reg.equals.begin(), reg.equals.end(),
                           [&v](std::int64_t c) { return static_cast<double>(c) == *v; })) {
      return 0;
    }
    what += (what.empty() ? "" : ", ") + at + " = " + number(*v);
    return 2;
  }
  if (reg.range) {
    const auto v = modbus::PointCodec(reg.spec).decode(*w).value;
    if (!v || *v < reg.range->first || *v > reg.range->second) return 0;
    what += (what.empty() ? "" : ", ") + at + " = " + number(*v) + " in [" +
            number(reg.range->first) + ", " + number(reg.range->second) + "]";
    return 1;
  }
  return 0;
}

std::vector<Candidate> match_profiles(const std::vector<std::shared_ptr<const Profile>>& profiles,
                                      const UnitEvidence& ev, const RegisterReader& read) {
  std::vector<Candidate> out;
  for (const auto& p : profiles) {
    const IdentifySpec& id = p->identify;
    if (id.empty()) continue;
    Candidate c;
    c.profile = p;
    int best = 0;  // the strongest kind of evidence: 4 FC43, 3 prefix, 2 code, 1 range
    if (id.fc43) {
      const int f = match_fc43(*id.fc43, ev, c.evidence);
      if (f == 0 || (f < 0 && id.registers.empty())) continue;
      if (f > 0) c.score += f;
      best = std::max(best, f);
    }
    bool ok = true;
    for (const IdentifyRegister& reg : id.registers) {
      const int s = match_register(
          reg, read(reg.spec.kind, reg.spec.address, static_cast<std::uint16_t>(reg.spec.width())),
          c.evidence);
      if (s == 0) {
        ok = false;
        break;
      }
      c.score += s;
      best = std::max(best, s);
    }
    if (!ok || c.score == 0) continue;
    c.confidence = best >= 3 ? "high" : best == 2 ? "medium" : "low";
    out.push_back(std::move(c));
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const Candidate& a, const Candidate& b) { return a.score > b.score; });
  return out;
}

}  // namespace facility
