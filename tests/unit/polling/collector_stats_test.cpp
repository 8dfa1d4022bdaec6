// CollectorStats across a reload: the counters of devices and endpoints that stay go on from
// their values before it (by id and key, whatever their new index); the unreadable-points gauge
// and the connection state only where the poller or connection was taken over.
#include <gtest/gtest.h>

#include "daemon/polling/collector_stats.h"

namespace facility {
namespace {

modbus::RequestEvent ok_read(std::size_t device) {
  modbus::RequestEvent e;
  e.device_index = device;
  e.function = 3;
  e.result = modbus::RequestResult::kOk;
  return e;
}

std::uint64_t ok_reads(const CollectorStats& s, const std::string& device) {
  std::uint64_t n = 0;
  s.for_each_request(
      [&](const std::string& d, int function, std::string_view result, std::uint64_t count) {
        if (d == device && function == 3 && result == "ok") n += count;
      });
  return n;
}

TEST(CollectorStats, AReloadCarriesCountersOverByIdAndKeyNotIndex) {
  CollectorStats old;
  old.configure({"a", "b", "gone"}, {"tcp://x:502", "tcp://y:502"}, {0, 0, 1});
  for (int i = 0; i < 3; ++i) old.on_request(ok_read(0));
  old.on_request(ok_read(1));
  old.on_poll(0, 0.02, true);
  old.on_poll(0, 0.02, true);
  old.on_overrun(1);
  old.set_unreadable_points(0, 2);
  old.set_unreadable_points(1, 4);
  old.on_connection(0, true);
  old.on_connection(1, true);
  old.on_discarded(0, 13);

  // "new" is added first: every index moves. "a" was taken over, "b" restarts (its spec
  // changed); the connection of x was taken over open, y's endpoint is gone.
  CollectorStats next;
  next.configure({"new", "b", "a"}, {"tcp://z:502", "tcp://x:502"}, {0, 1, 1});
  next.carry_over(old, /*kept_devices=*/{2}, /*open_endpoints=*/{1});

  EXPECT_EQ(ok_reads(next, "a"), 3u);
  EXPECT_EQ(ok_reads(next, "b"), 1u);
  EXPECT_EQ(ok_reads(next, "new"), 0u);
  EXPECT_EQ(next.polls(2), 2u);
  EXPECT_EQ(next.poll_duration(2).count, 2u);
  EXPECT_NEAR(next.poll_duration(2).sum, 0.04, 1e-9);
  EXPECT_EQ(next.overruns(1), 1u);
  EXPECT_EQ(next.unreadable_points(2), 2u) << "a's poller keeps what it learned";
  EXPECT_EQ(next.unreadable_points(1), 0u) << "b's new poller learns again";
  EXPECT_TRUE(next.endpoint_up(1));
  EXPECT_EQ(next.endpoint_connects(1), 1u);
  EXPECT_EQ(next.endpoint_discarded_bytes(1), 13u);
  EXPECT_FALSE(next.endpoint_up(0));
  EXPECT_EQ(next.endpoint_connects(0), 0u);

  // Counting goes on from there.
  next.on_request(ok_read(2));
  EXPECT_EQ(ok_reads(next, "a"), 4u);

  // Without the connection taken over, the endpoint starts down (its poller reconnects).
  CollectorStats fresh;
  fresh.configure({"a"}, {"tcp://x:502"}, {0});
  fresh.carry_over(old, {}, {});
  EXPECT_FALSE(fresh.endpoint_up(0));
  EXPECT_EQ(fresh.endpoint_connects(0), 1u);
  EXPECT_EQ(fresh.unreadable_points(0), 0u);
}

}  // namespace
}  // namespace facility
