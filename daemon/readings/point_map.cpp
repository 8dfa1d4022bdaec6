#include "daemon/readings/point_map.h"

#include <algorithm>
#include <numeric>
#include <stdexcept>

namespace facility {

PointNames::PointNames(const std::vector<std::string>& names) {
  names_.reserve(names.size());
  std::vector<std::uint32_t> order(names.size());
  std::iota(order.begin(), order.end(), 0);
  // Stable: of equal names the first comes first and is the one kept.
  std::stable_sort(order.begin(), order.end(),
                   [&names](std::uint32_t a, std::uint32_t b) { return names[a] < names[b]; });
  std::vector<bool> keep(names.size(), false);
  for (std::size_t k = 0; k < order.size(); ++k) {
    keep[order[k]] = k == 0 || names[order[k]] != names[order[k - 1]];
  }
  std::vector<std::uint32_t> slot_of(names.size(), 0);
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (!keep[i]) continue;
    slot_of[i] = static_cast<std::uint32_t>(names_.size());
    names_.push_back(names[i]);
  }
  sorted_.reserve(names_.size());
  for (std::uint32_t i : order) {
    if (keep[i]) sorted_.push_back(slot_of[i]);
  }
  position_.resize(sorted_.size());
  for (std::size_t k = 0; k < sorted_.size(); ++k)
    position_[sorted_[k]] = static_cast<std::uint32_t>(k);
}

std::size_t PointNames::find(std::string_view name) const {
  const auto it =
      std::lower_bound(sorted_.begin(), sorted_.end(), name,
                       [this](std::uint32_t slot, std::string_view n) { return names_[slot] < n; });
  if (it == sorted_.end() || names_[*it] != name) return kNone;
  return *it;
}

PointMap::PointMap(std::shared_ptr<const PointNames> names)
    : names_(std::move(names)), slots_(names_ ? names_->size() : 0) {}

PointMap::PointMap(std::initializer_list<std::pair<std::string, PointValue>> init) {
  for (const auto& [name, v] : init) emplace(name, v);
}

void PointMap::set(std::size_t slot, PointValue v) {
  Slot& s = slots_[slot];
  if (!s.present) ++size_;
  s.present = true;
  s.v = std::move(v);
}

std::size_t PointMap::present_slot(std::string_view name) const {
  if (!names_) return PointNames::kNone;
  const std::size_t slot = names_->find(name);
  return slot != PointNames::kNone && slots_[slot].present ? slot : PointNames::kNone;
}

PointMap::iterator PointMap::at_slot(std::size_t slot) { return {this, names_->position(slot)}; }

PointMap::iterator PointMap::find(std::string_view name) {
  const std::size_t slot = present_slot(name);
  return slot == PointNames::kNone ? end() : at_slot(slot);
}

PointMap::const_iterator PointMap::find(std::string_view name) const {
  return const_cast<PointMap*>(this)->find(name);  // NOLINT: the same lookup, read-only result
}

PointValue& PointMap::at(std::string_view name) {
  const std::size_t slot = present_slot(name);
  if (slot == PointNames::kNone) throw std::out_of_range("no point " + std::string(name));
  return slots_[slot].v;
}

const PointValue& PointMap::at(std::string_view name) const {
  return const_cast<PointMap*>(this)->at(name);  // NOLINT: the same lookup, read-only result
}

std::size_t PointMap::slot_for(std::string_view name) {
  if (names_) {
    const std::size_t slot = names_->find(name);
    if (slot != PointNames::kNone) return slot;
  }
  // A name this device's readings never had: these names become this map's own (tests and
  // hand-built readings; the pollers fill every name through set()).
  std::vector<std::string> all = names_ ? names_->names() : std::vector<std::string>{};
  all.emplace_back(name);
  names_ = std::make_shared<const PointNames>(all);
  slots_.resize(names_->size());
  return names_->size() - 1;
}

PointValue& PointMap::operator[](std::string_view name) {
  const std::size_t slot = slot_for(name);
  if (!slots_[slot].present) set(slot, PointValue{});
  return slots_[slot].v;
}

std::pair<PointMap::iterator, bool> PointMap::emplace(std::string_view name, PointValue v) {
  const std::size_t slot = slot_for(name);
  const bool inserted = !slots_[slot].present;
  if (inserted) set(slot, std::move(v));
  return {at_slot(slot), inserted};
}

std::size_t PointMap::erase(std::string_view name) {
  const std::size_t slot = present_slot(name);
  if (slot == PointNames::kNone) return 0;
  slots_[slot] = Slot{};
  --size_;
  return 1;
}

}  // namespace facility
