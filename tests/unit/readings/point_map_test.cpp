// PointMap: the points of a reading, with names shared per device, behave like the
// std::map<std::string, PointValue> they replace.
#include "daemon/readings/point_map.h"

#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace facility {
namespace {

std::vector<std::string> names_of(const PointMap& m) {
  std::vector<std::string> out;
  for (const auto& [name, pv] : m) out.push_back(name);
  return out;
}

TEST(PointNames, SlotsInGivenOrderLookupByNameAndDuplicatesDropped) {
  const PointNames n({"voltage", "active_power", "energy", "active_power", "current"});
  ASSERT_EQ(n.size(), 4u);
  EXPECT_EQ(n.name(0), "voltage");
  EXPECT_EQ(n.name(1), "active_power");
  EXPECT_EQ(n.name(3), "current");
  EXPECT_EQ(n.find("energy"), 2u);
  EXPECT_EQ(n.find("active_power"), 1u);
  EXPECT_EQ(n.find("power"), PointNames::kNone);
  EXPECT_EQ(n.find(""), PointNames::kNone);
  std::vector<std::string> sorted;
  for (auto s : n.sorted()) sorted.push_back(n.name(s));
  EXPECT_EQ(sorted, (std::vector<std::string>{"active_power", "current", "energy", "voltage"}));
  for (std::size_t k = 0; k < n.sorted().size(); ++k) EXPECT_EQ(n.position(n.sorted()[k]), k);
}

TEST(PointMap, SharedNamesFilledBySlotIterateInNameOrderSkippingAbsentOnes) {
  auto names = std::make_shared<const PointNames>(std::vector<std::string>{"b", "c", "a"});
  PointMap m(names);
  EXPECT_TRUE(m.empty());
  EXPECT_EQ(m.begin(), m.end());
  m.set(1, PointValue{2.0, "W"});
  m.set(2, PointValue{1.0, "V"});
  EXPECT_EQ(m.size(), 2u);
  EXPECT_EQ(names_of(m), (std::vector<std::string>{"a", "c"}));
  EXPECT_FALSE(m.contains("b")) << "a name of the device this reading did not read";
  EXPECT_EQ(m.find("b"), m.end());
  ASSERT_NE(m.find("c"), m.end());
  EXPECT_EQ(m.find("c")->second.value, 2.0);
  EXPECT_EQ(m.find("c")->first, "c");
  m.set(1, PointValue{3.0, "W"});  // replaces
  EXPECT_EQ(m.size(), 2u);
  EXPECT_EQ(m.at("c").value, 3.0);
  EXPECT_EQ(m.names().get(), names.get()) << "no copy of the names per reading";
}

TEST(PointMap, MapInterfaceForHandBuiltReadings) {
  PointMap m{{"power", PointValue{100.0, "W"}}, {"energy", PointValue{5.0, "kWh"}}};
  EXPECT_EQ(m.size(), 2u);
  EXPECT_EQ(names_of(m), (std::vector<std::string>{"energy", "power"}));
  // emplace keeps an existing value, as std::map does.
  auto [it, inserted] = m.emplace("power", PointValue{1.0, "W"});
  EXPECT_FALSE(inserted);
  EXPECT_EQ(it->second.value, 100.0);
  auto [it2, inserted2] = m.emplace("current", PointValue{0.5, "A"});
  EXPECT_TRUE(inserted2);
  EXPECT_EQ(it2->first, "current");
  EXPECT_EQ(m.count("current"), 1u);
  // operator[] inserts a default value, and writes through.
  m["voltage"].value = 230.0;
  EXPECT_EQ(m.at("voltage").value, 230.0);
  EXPECT_EQ(m.size(), 4u);
  EXPECT_EQ(m.erase("power"), 1u);
  EXPECT_EQ(m.erase("power"), 0u);
  EXPECT_EQ(m.size(), 3u);
  EXPECT_THROW((void)m.at("power"), std::out_of_range);
  EXPECT_EQ(names_of(m), (std::vector<std::string>{"current", "energy", "voltage"}));
  // Mutable iteration writes through.
  for (auto it3 = m.begin(); it3 != m.end(); ++it3) it3->second.unit = "x";
  EXPECT_EQ(m.at("energy").unit, "x");
  // A copy is a value: changing it leaves the original alone, even for shared names.
  PointMap copy = m;
  copy["new"].value = 1.0;
  EXPECT_FALSE(m.contains("new"));
  EXPECT_TRUE(copy.contains("new"));
}

}  // namespace
}  // namespace facility
