// The request planner: fewest reads covering all points, within per-read caps.
#include <gtest/gtest.h>

#include "collectors/modbus/planner.h"

namespace facility::modbus {
namespace {

PointSpec pt(RegisterKind k, std::uint16_t addr, DataType t = DataType::kUInt16) {
  PointSpec s;
  s.kind = k;
  s.address = addr;
  s.type = is_bit_kind(k) ? DataType::kBool : t;
  return s;
}

TEST(Planner, ContiguousPointsBecomeOneRead) {
  std::vector<PointSpec> p{pt(RegisterKind::kInput, 0, DataType::kUInt32),
                           pt(RegisterKind::kInput, 2), pt(RegisterKind::kInput, 3)};
  auto plan = plan_reads(p, {});
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].address, 0);
  EXPECT_EQ(plan[0].count, 4);  // uint32 at 0-1, then 2 and 3
  EXPECT_EQ(plan[0].points.size(), 3u);
}

TEST(Planner, KindsNeverShareARead) {
  std::vector<PointSpec> p{pt(RegisterKind::kInput, 0), pt(RegisterKind::kHolding, 1),
                           pt(RegisterKind::kCoil, 0), pt(RegisterKind::kDiscreteInput, 0)};
  EXPECT_EQ(plan_reads(p, {}).size(), 4u);
}

TEST(Planner, GapBridgingIsBounded) {
  std::vector<PointSpec> p{pt(RegisterKind::kHolding, 0), pt(RegisterKind::kHolding, 17),
                           pt(RegisterKind::kHolding, 100)};
  PlanOptions o;
  o.max_gap = 16;
  auto plan = plan_reads(p, o);
  // 0 -> 17 leaves a hole of 16 registers (1..16): bridged; 18 -> 100 is not.
  ASSERT_EQ(plan.size(), 2u);
  EXPECT_EQ(plan[0].count, 18);
  EXPECT_EQ(plan[1].address, 100);
  o.max_gap = 0;
  EXPECT_EQ(plan_reads(p, o).size(), 3u);
}

TEST(Planner, RespectsProtocolAndDeviceCaps) {
  // 200 consecutive registers need two reads at the protocol limit of 125, four at a cap of 50.
  std::vector<PointSpec> p;
  for (int a = 0; a < 200; ++a) p.push_back(pt(RegisterKind::kHolding, std::uint16_t(a)));
  auto plan = plan_reads(p, {});
  ASSERT_EQ(plan.size(), 2u);
  EXPECT_EQ(plan[0].count, 125);
  EXPECT_EQ(plan[1].count, 75);
  PlanOptions o;
  o.max_registers = 50;
  EXPECT_EQ(plan_reads(p, o).size(), 4u);
  for (const auto& r : plan_reads(p, o)) EXPECT_LE(r.count, 50);
}

TEST(Planner, MultiRegisterValueIsNeverSplit) {
  // A float64 at 122..125 cannot start in a read that ends at 124.
  std::vector<PointSpec> p{pt(RegisterKind::kHolding, 0),
                           pt(RegisterKind::kHolding, 122, DataType::kFloat64)};
  // One read would span 0..125 = 126 registers, over the limit: the float64 starts a new read.
  auto plan = plan_reads(p, PlanOptions{125, 2000, 200});
  ASSERT_EQ(plan.size(), 2u);
  EXPECT_EQ(plan[0].address, 0);
  EXPECT_EQ(plan[0].count, 1);
  EXPECT_EQ(plan[1].address, 122);
  EXPECT_EQ(plan[1].count, 4);
}

TEST(Planner, BitsUpTo2000PerRead) {
  std::vector<PointSpec> p{pt(RegisterKind::kCoil, 0), pt(RegisterKind::kCoil, 1999),
                           pt(RegisterKind::kCoil, 2000)};
  auto plan = plan_reads(p, PlanOptions{125, 2000, 5000});
  ASSERT_EQ(plan.size(), 2u);
  EXPECT_EQ(plan[0].count, 2000);
  EXPECT_EQ(plan[1].address, 2000);
}

TEST(Planner, UnsortedInputAndDuplicates) {
  std::vector<PointSpec> p{pt(RegisterKind::kInput, 5), pt(RegisterKind::kInput, 1),
                           pt(RegisterKind::kInput, 5), pt(RegisterKind::kInput, 3)};
  auto plan = plan_reads(p, {});
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].address, 1);
  EXPECT_EQ(plan[0].count, 5);
  EXPECT_EQ(plan[0].points.size(), 4u);
}

}  // namespace
}  // namespace facility::modbus
