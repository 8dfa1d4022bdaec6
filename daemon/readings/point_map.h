// The points of one DeviceReading: a map from point name to PointValue whose names are shared.
//
// A device gives the same points in every reply, so their names are interned once per device
// (PointNames) and every reading of it holds one pointer to them plus a flat array of values:
// one allocation per reading instead of a tree node and a name string per point (the polling
// hot path; bench/RESULTS.md, "Site scale at the physical floor"). The interface is the part of
// std::map's that the model, the sinks and the tests use: find, contains, at, operator[],
// emplace, erase, size, and iteration in name order yielding {first: name, second: value}.
//
// Thread-safety: a PointMap is a value, like std::map. PointNames is immutable once built and
// shared between readings and threads.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace facility {

using Clock = std::chrono::system_clock;
using TimePoint = Clock::time_point;

struct PointValue {
  std::optional<double> value;  // in the profile's unit; nullopt = device said "not available"
  std::string unit;
  // Enumeration points: the name of the code in `value`; string points: the string (their
  // value is nullopt). Empty for plain numbers.
  std::string text = {};
  // When this value was read; a point read every N-th poll carries an older value between its
  // reads. Epoch = the reading's polled_at.
  TimePoint read_at{};
};

// The distinct point names of a device, each with a slot number (its position in `names`).
class PointNames {
 public:
  static constexpr std::size_t kNone = static_cast<std::size_t>(-1);
  // Duplicates are dropped (the first one keeps its slot), as std::map::emplace would.
  explicit PointNames(const std::vector<std::string>& names);

  std::size_t size() const { return names_.size(); }
  const std::string& name(std::size_t slot) const { return names_[slot]; }
  const std::vector<std::string>& names() const { return names_; }
  // The slot of `name`, or kNone.
  std::size_t find(std::string_view name) const;
  // Slots in name order, and each slot's place in that order.
  std::span<const std::uint32_t> sorted() const { return sorted_; }
  std::size_t position(std::size_t slot) const { return position_[slot]; }

 private:
  std::vector<std::string> names_;
  std::vector<std::uint32_t> sorted_;
  std::vector<std::uint32_t> position_;
};

class PointMap {
  struct Slot {
    PointValue v;
    bool present = false;
  };

 public:
  template <bool kConst>
  class Iter {
    using Map = std::conditional_t<kConst, const PointMap, PointMap>;
    using Value = std::conditional_t<kConst, const PointValue, PointValue>;

   public:
    struct Ref {
      const std::string& first;
      Value& second;
    };
    struct Arrow {
      Ref r;
      const Ref* operator->() const { return &r; }
    };
    Iter(Map* m, std::size_t pos) : m_(m), pos_(pos) { skip(); }
    Ref operator*() const {
      const std::uint32_t s = m_->names_->sorted()[pos_];
      return Ref{m_->names_->name(s), m_->slots_[s].v};
    }
    Arrow operator->() const { return Arrow{**this}; }
    Iter& operator++() {
      ++pos_;
      skip();
      return *this;
    }
    bool operator==(const Iter& o) const { return pos_ == o.pos_; }
    operator Iter<true>() const { return Iter<true>(m_, pos_); }  // NOLINT: like std::map's

   private:
    void skip() {
      const std::size_t n = m_->names_ ? m_->names_->size() : 0;
      while (pos_ < n && !m_->slots_[m_->names_->sorted()[pos_]].present) ++pos_;
    }
    Map* m_;
    std::size_t pos_;
  };
  using iterator = Iter<false>;
  using const_iterator = Iter<true>;

  PointMap() = default;
  PointMap(std::initializer_list<std::pair<std::string, PointValue>> init);
  // Every point absent; set() fills them.
  explicit PointMap(std::shared_ptr<const PointNames> names);

  // The fast path: the value of `names()`'s slot `slot` (replaces one already there).
  void set(std::size_t slot, PointValue v);
  const std::shared_ptr<const PointNames>& names() const { return names_; }

  iterator begin() { return {this, 0}; }
  iterator end() { return {this, sorted_end()}; }
  const_iterator begin() const { return {this, 0}; }
  const_iterator end() const { return {this, sorted_end()}; }

  iterator find(std::string_view name);
  const_iterator find(std::string_view name) const;
  bool contains(std::string_view name) const { return present_slot(name) != PointNames::kNone; }
  std::size_t count(std::string_view name) const { return contains(name) ? 1 : 0; }
  // Throws std::out_of_range when absent.
  PointValue& at(std::string_view name);
  const PointValue& at(std::string_view name) const;
  // Inserts a default value when absent.
  PointValue& operator[](std::string_view name);
  // Like std::map::emplace: an existing value is kept, and the bool is false.
  std::pair<iterator, bool> emplace(std::string_view name, PointValue v);
  std::size_t erase(std::string_view name);

  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

 private:
  std::size_t sorted_end() const { return names_ ? names_->size() : 0; }
  std::size_t present_slot(std::string_view name) const;
  // The slot of `name`, adding the name (a new PointNames for this map alone) when absent.
  std::size_t slot_for(std::string_view name);
  iterator at_slot(std::size_t slot);

  std::shared_ptr<const PointNames> names_;
  std::vector<Slot> slots_;
  std::size_t size_ = 0;
};

}  // namespace facility
