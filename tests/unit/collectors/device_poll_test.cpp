// DevicePoll: the error classes of one poll cycle, driven by hand-made reply PDUs.
#include <gtest/gtest.h>

#include <functional>
#include <set>

#include "collectors/modbus/device_poll.h"

namespace facility::modbus {
namespace {

using Bytes = std::vector<std::uint8_t>;
using Step = DevicePoll::Step;

PointSpec reg(const std::string& name, std::uint16_t addr, DataType t = DataType::kUInt16) {
  PointSpec s;
  s.name = name;
  s.kind = RegisterKind::kHolding;
  s.address = addr;
  s.type = t;
  s.unit = "none";
  return s;
}

Bytes exception(RegisterKind k, int code) {
  return {static_cast<std::uint8_t>(static_cast<int>(k) | 0x80), static_cast<std::uint8_t>(code)};
}

// A fake device: registers hold their own address; reads touching `illegal` get exception 2.
Bytes answer(const ReadRequest& r, const std::set<int>& illegal) {
  for (int a = r.address; a < r.address + r.count; ++a) {
    if (illegal.count(a)) return exception(r.kind, 2);
  }
  Bytes b{static_cast<std::uint8_t>(r.kind), static_cast<std::uint8_t>(r.count * 2)};
  for (int a = r.address; a < r.address + r.count; ++a) {
    b.push_back(static_cast<std::uint8_t>(a >> 8));
    b.push_back(static_cast<std::uint8_t>(a & 0xFF));
  }
  return b;
}

struct CycleRun {
  PollResult result;
  std::vector<ReadRequest> sent;
  std::vector<RequestEvent> events;
};

// Drives one cycle, scheduled (and run) at `now`, to its end with `device` answering each
// request.
CycleRun cycle(DevicePoll& p, const std::function<Bytes(const ReadRequest&)>& device,
               SteadyTime now = SteadyClock::now()) {
  CycleRun run;
  p.begin(now, now);
  DevicePoll::Outcome o = p.first();
  int guard = 0;
  while ((o.step == Step::kSend || o.step == Step::kSendAfter) && ++guard < 100) {
    run.sent.push_back(p.request());
    p.on_sent();
    o = p.on_reply(device(p.request()));
    run.events.push_back(o.event);
  }
  run.result = p.take_result(now);
  return run;
}

DeviceSpec spec_of(std::vector<PointSpec> pts) {
  DeviceSpec s;
  s.id = "dev";
  s.points = std::move(pts);
  s.plan.max_gap = 0;
  return s;
}

// Devices with the same points share their codecs and value names (one copy per profile, not
// per device); a device whose points differ in anything gets its own, and decodes by them.
TEST(DevicePoll, DevicesWithTheSamePointsShareTheirNamesAndDecodeAlike) {
  const auto healthy = [](const ReadRequest& q) { return answer(q, {}); };
  DevicePoll a(spec_of({reg("a", 10), reg("b", 11)}), 0);
  DevicePoll b(spec_of({reg("a", 10), reg("b", 11)}), 1);
  PointSpec scaled = reg("b", 11);
  scaled.scale = 0.5;
  DevicePoll c(spec_of({reg("a", 10), scaled}), 2);
  DevicePoll d(spec_of({reg("a", 10), reg("x", 11)}), 3);
  const CycleRun ra = cycle(a, healthy), rb = cycle(b, healthy), rc = cycle(c, healthy),
                 rd = cycle(d, healthy);
  ASSERT_TRUE(ra.result.ok && rb.result.ok && rc.result.ok && rd.result.ok);
  ASSERT_TRUE(ra.result.names);
  EXPECT_EQ(ra.result.names.get(), rb.result.names.get());
  EXPECT_EQ(ra.result.values[0].name.data(), rb.result.values[0].name.data()) << "no copy";
  EXPECT_NE(ra.result.names.get(), rc.result.names.get()) << "another scale: other codecs";
  EXPECT_EQ(rc.result.values[1].value, 5.5);
  EXPECT_EQ(ra.result.values[1].value, 11);
  EXPECT_NE(ra.result.names.get(), rd.result.names.get());
  EXPECT_EQ(rd.result.values[1].name, "x");
  EXPECT_EQ(*ra.result.names, (std::vector<std::string>{"a", "b"}));
}

TEST(DevicePoll, HealthyCycleDecodesEveryPointInOneRead) {
  DevicePoll p(spec_of({reg("a", 10), reg("b", 11), reg("c", 12, DataType::kUInt32)}), 0);
  const CycleRun r = cycle(p, [](const ReadRequest& q) { return answer(q, {}); });
  ASSERT_TRUE(r.result.ok) << r.result.error;
  ASSERT_EQ(r.sent.size(), 1u);
  EXPECT_EQ(r.result.values[0].value, 10);
  EXPECT_EQ(r.result.values[1].value, 11);
  EXPECT_EQ(r.result.values[2].value, (12 << 16) | 13);
  EXPECT_EQ(r.events.at(0).result, RequestResult::kOk);
  EXPECT_EQ(r.events.at(0).function, 3);
}

TEST(DevicePoll, IllegalAddressInsideABatchIsFoundAndRemembered) {
  std::vector<PointSpec> pts;
  for (int a = 0; a < 8; ++a) pts.push_back(reg("p" + std::to_string(a), static_cast<std::uint16_t>(a)));
  DevicePoll p(spec_of(pts), 0);
  const std::set<int> illegal{5};
  CycleRun r = cycle(p, [&](const ReadRequest& q) { return answer(q, illegal); });
  // This very cycle: every other point arrives, the culprit is unreadable.
  ASSERT_TRUE(r.result.ok) << r.result.error;
  for (int a = 0; a < 8; ++a) {
    SCOPED_TRACE(a);
    if (a == 5) {
      EXPECT_TRUE(r.result.values[5].unreadable);
      EXPECT_FALSE(r.result.values[5].value.has_value());
    } else {
      EXPECT_FALSE(r.result.values[static_cast<std::size_t>(a)].unreadable);
      EXPECT_EQ(r.result.values[static_cast<std::size_t>(a)].value, a);
    }
  }
  EXPECT_GT(r.sent.size(), 2u);  // the batch was split
  int exc2 = 0;
  for (const auto& e : r.events) exc2 += e.result == RequestResult::kException && e.exception_code == 2;
  EXPECT_GE(exc2, 2);
  EXPECT_EQ(p.unreadable_points(), 1u);
  // Next cycle: the address is remembered; two reads around it, no exception at all.
  r = cycle(p, [&](const ReadRequest& q) { return answer(q, illegal); });
  ASSERT_TRUE(r.result.ok);
  ASSERT_EQ(r.sent.size(), 2u);
  EXPECT_EQ(r.sent[0].address, 0);
  EXPECT_EQ(r.sent[0].count, 5);
  EXPECT_EQ(r.sent[1].address, 6);
  EXPECT_EQ(r.sent[1].count, 2);
  for (const auto& e : r.events) EXPECT_EQ(e.result, RequestResult::kOk);
}

TEST(DevicePoll, IllegalDataValueOnALongReadHalvesTheCap) {
  std::vector<PointSpec> pts;
  for (int a = 0; a < 40; ++a) pts.push_back(reg("p" + std::to_string(a), static_cast<std::uint16_t>(a)));
  DevicePoll p(spec_of(pts), 0);
  // A device that answers exception 3 to any read above 10 registers.
  auto dev = [](const ReadRequest& q) {
    return q.count > 10 ? exception(q.kind, 3) : answer(q, {});
  };
  CycleRun r = cycle(p, dev);
  ASSERT_TRUE(r.result.ok) << r.result.error;
  EXPECT_EQ(p.unreadable_points(), 0u);
  for (int a = 0; a < 40; ++a) EXPECT_EQ(r.result.values[static_cast<std::size_t>(a)].value, a);
  r = cycle(p, dev);
  for (const auto& q : r.sent) EXPECT_LE(q.count, 10);
  for (const auto& e : r.events) EXPECT_EQ(e.result, RequestResult::kOk);
}

TEST(DevicePoll, IllegalFunctionMakesThatFunctionsPointsUnreadable) {
  PointSpec in = reg("in", 0);
  in.kind = RegisterKind::kInput;
  DevicePoll p(spec_of({reg("h", 0), in}), 0);
  const CycleRun r = cycle(p, [](const ReadRequest& q) {
    return q.kind == RegisterKind::kInput ? exception(q.kind, 1) : answer(q, {});
  });
  ASSERT_TRUE(r.result.ok);
  EXPECT_EQ(r.result.values[0].value, 0);
  EXPECT_TRUE(r.result.values[1].unreadable);
}

TEST(DevicePoll, BusyIsRetriedAfterAWaitThenFailsWithoutReconnect) {
  DeviceSpec s = spec_of({reg("a", 0)});
  s.busy_retries = 2;
  s.busy_retry_delay = std::chrono::milliseconds(123);
  DevicePoll p(s, 3);
  const auto now = SteadyClock::now();
  p.begin(now, now);
  ASSERT_EQ(p.first().step, Step::kSend);
  for (int i = 0; i < 2; ++i) {
    const auto o = p.on_reply(exception(RegisterKind::kHolding, 6));
    EXPECT_EQ(o.step, Step::kSendAfter);
    EXPECT_EQ(o.delay.count(), 123);
    EXPECT_EQ(o.event.exception_code, 6);
    EXPECT_EQ(o.event.device_index, 3u);
  }
  EXPECT_EQ(p.on_reply(exception(RegisterKind::kHolding, 6)).step, Step::kDone);
  const PollResult r = p.take_result(SteadyClock::now());
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("busy"), std::string::npos);
  // A busy device that recovers on a retry completes the cycle.
  p.begin(now, now);
  (void)p.first();
  EXPECT_EQ(p.on_reply(exception(RegisterKind::kHolding, 6)).step, Step::kSendAfter);
  EXPECT_EQ(p.on_reply(answer(p.request(), {})).step, Step::kDone);
  EXPECT_TRUE(p.take_result(SteadyClock::now()).ok);
}

TEST(DevicePoll, TimeoutsRetryOnANewConnectionThenBackOff) {
  DeviceSpec s = spec_of({reg("a", 0)});
  s.retries = 1;
  s.interval = std::chrono::milliseconds(1000);
  s.backoff_max = std::chrono::milliseconds(8000);
  DevicePoll p(s, 0);
  const auto now = SteadyClock::now();
  for (int cycle_no = 1; cycle_no <= 5; ++cycle_no) {
    p.begin(now, now);
    (void)p.first();
    auto o = p.on_timeout();
    EXPECT_EQ(o.step, Step::kReconnectSend);
    EXPECT_EQ(o.event.result, RequestResult::kTimeout);
    o = p.on_timeout();
    EXPECT_EQ(o.step, Step::kDoneReconnect);
    EXPECT_FALSE(p.take_result(now).ok);
    // 1st failure: next slot as usual; then 2, 4, 8 intervals, capped at backoff_max.
    const auto wait = p.next_poll(now, now) - now;
    const long want[] = {0, 2000, 4000, 8000, 8000};
    EXPECT_EQ(std::chrono::duration_cast<std::chrono::milliseconds>(wait).count(),
              want[cycle_no - 1]) << "cycle " << cycle_no;
  }
  // One success resets the backoff.
  p.begin(now, now);
  (void)p.first();
  (void)p.on_reply(answer(p.request(), {}));
  EXPECT_TRUE(p.take_result(now).ok);
  EXPECT_EQ(p.next_poll(now, now), now);
}

TEST(DevicePoll, MalformedRepliesEndTheCycleAndReconnect) {
  DevicePoll p(spec_of({reg("a", 0), reg("b", 1)}), 0);
  const auto now = SteadyClock::now();
  p.begin(now, now);
  (void)p.first();
  // Three registers' worth of data for a read of two.
  const auto o = p.on_reply(Bytes{3, 6, 0, 1, 0, 2, 0, 3});
  EXPECT_EQ(o.step, Step::kDoneReconnect);
  EXPECT_EQ(o.event.result, RequestResult::kMalformed);
  const PollResult r = p.take_result(now);
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(r.values.empty());  // nothing from a failed cycle is reported as a value
  EXPECT_NE(r.error.find("malformed"), std::string::npos);
}

TEST(DevicePoll, GatewayExceptionsFailTheCycleButKeepTheConnection) {
  DevicePoll p(spec_of({reg("a", 0)}), 0);
  const auto now = SteadyClock::now();
  p.begin(now, now);
  (void)p.first();
  const auto o = p.on_reply(exception(RegisterKind::kHolding, 11));
  EXPECT_EQ(o.step, Step::kDone);
  EXPECT_EQ(o.event.exception_code, 11);
  EXPECT_NE(p.take_result(now).error.find("gateway target"), std::string::npos);
}

}  // namespace
}  // namespace facility::modbus

namespace facility::modbus {
namespace {

TEST(DevicePoll, SlowerPointGroupsAreReadEveryNthCycleAndCarriedWithinTheirInterval) {
  DeviceSpec s = spec_of({reg("power", 0), reg("energy", 100, DataType::kUInt32)});
  s.every = {1, 3};  // energy every third poll
  DevicePoll p(s, 0);
  std::uint16_t energy_base = 7;
  auto dev = [&](const ReadRequest& q) {
    Bytes b = answer(q, {});
    if (q.address == 100) b[5] = static_cast<std::uint8_t>(energy_base);  // low byte of 2nd word
    return b;
  };
  std::vector<std::size_t> sent;
  std::vector<std::optional<double>> energy;
  const SteadyTime t0 = SteadyClock::now();
  for (int c = 0; c < 7; ++c) {
    if (c == 3) energy_base = 9;  // the counter moves between the 1st and the 2nd slow read
    const CycleRun r = cycle(p, dev, t0 + c * s.interval);
    ASSERT_TRUE(r.result.ok);
    EXPECT_EQ(r.result.values[0].value, 0);  // the fast point every time
    sent.push_back(r.sent.size());
    energy.push_back(r.result.values[1].value);
  }
  EXPECT_EQ(sent, (std::vector<std::size_t>{2, 1, 1, 2, 1, 1, 2}));
  const double first = (100 << 16) | 7, second = (100 << 16) | 9;
  EXPECT_EQ(energy, (std::vector<std::optional<double>>{first, first, first, second, second,
                                                       second, second}));
}

TEST(DevicePoll, ASlowGroupWhoseReadFailedIsReadAgainOnTheNextPoll) {
  DeviceSpec s = spec_of({reg("power", 0), reg("energy", 100)});
  s.interval = std::chrono::seconds(10);
  s.every = {1, 3};
  DevicePoll p(s, 0);
  bool fail_energy = false;
  auto dev = [&](const ReadRequest& q) {
    return q.address == 100 && fail_energy ? exception(q.kind, 4) : answer(q, {});
  };
  const SteadyTime t0 = SteadyClock::now();
  auto at = [&](int k) { return t0 + k * s.interval; };
  EXPECT_EQ(cycle(p, dev, at(0)).result.values[1].value, 100);  // read
  EXPECT_EQ(cycle(p, dev, at(1)).result.values[1].value, 100);  // carried
  EXPECT_EQ(cycle(p, dev, at(2)).result.values[1].value, 100);  // carried
  fail_energy = true;
  EXPECT_FALSE(cycle(p, dev, at(3)).result.ok);                 // due; the read fails
  fail_energy = false;
  // The very next poll reads it again instead of leaving it absent for two more polls.
  const CycleRun r = cycle(p, dev, at(4));
  ASSERT_TRUE(r.result.ok);
  EXPECT_EQ(r.sent.size(), 2u);
  EXPECT_EQ(r.result.values[1].value, 100);
  // ... and its interval restarts from there: carried at 5 and 6, read at 7.
  EXPECT_EQ(cycle(p, dev, at(5)).sent.size(), 1u);
  EXPECT_EQ(cycle(p, dev, at(6)).sent.size(), 1u);
  EXPECT_EQ(cycle(p, dev, at(7)).sent.size(), 2u);
}

TEST(DevicePoll, CarriedValuesKeepTheTimeTheyWereRead) {
  DeviceSpec s = spec_of({reg("power", 0), reg("energy", 100, DataType::kUInt32)});
  s.interval = std::chrono::seconds(10);
  s.every = {1, 3};
  DevicePoll p(s, 0);
  const SteadyTime t0 = SteadyClock::now();
  auto dev = [](const ReadRequest& q) { return answer(q, {}); };
  std::vector<PollResult> rs;
  for (int k = 0; k < 4; ++k) rs.push_back(cycle(p, dev, t0 + k * s.interval).result);
  for (const PollResult& r : rs) {
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.values[0].read_at, r.completed_at);  // read this cycle
  }
  EXPECT_EQ(rs[0].values[1].read_at, rs[0].completed_at);
  EXPECT_EQ(rs[1].values[1].read_at, rs[0].completed_at);  // carried: when it was read
  EXPECT_EQ(rs[2].values[1].read_at, rs[0].completed_at);
  EXPECT_EQ(rs[3].values[1].read_at, rs[3].completed_at);  // read again
}

TEST(DevicePoll, SlowGroupsAreDueByTimeSoBackoffNeverPresentsAnOldValueAsFresh) {
  // Energy every 10 polls of 10 s. After it was read the device fails and backs off; the first
  // good poll comes 320 s later. Counting cycles would call the group "not due" and carry a
  // 320 s old value; by time it is overdue and read.
  DeviceSpec s = spec_of({reg("power", 0), reg("energy", 100)});
  s.interval = std::chrono::seconds(10);
  s.retries = 0;
  s.every = {1, 10};
  DevicePoll p(s, 0);
  const SteadyTime t0 = SteadyClock::now();
  auto dev = [](const ReadRequest& q) { return answer(q, {}); };
  ASSERT_TRUE(cycle(p, dev, t0).result.ok);
  SteadyTime t = t0;
  for (int k = 0; k < 5; ++k) {  // five failed polls, further and further apart
    t = p.next_poll(t + s.interval, t);
    p.begin(t, t);
    (void)p.first();
    (void)p.on_timeout();
    EXPECT_FALSE(p.take_result(t).ok);
  }
  t = p.next_poll(t + s.interval, t);
  ASSERT_GT(t - t0, 10 * s.interval);
  const CycleRun r = cycle(p, dev, t);
  ASSERT_TRUE(r.result.ok);
  ASSERT_EQ(r.sent.size(), 2u);  // energy was read, not carried
  EXPECT_EQ(r.result.values[1].read_at, r.result.completed_at);
}

TEST(DevicePoll, ALatePollReadsAGroupWhoseTimeHasCome) {
  // Polls that start late (queued behind a slow unit on the same gateway) must not stretch a
  // carried value's life: a group is due by the clock, not by its slot number.
  DeviceSpec s = spec_of({reg("power", 0), reg("energy", 100)});
  s.interval = std::chrono::seconds(10);
  s.every = {1, 3};
  DevicePoll p(s, 0);
  const SteadyTime t0 = SteadyClock::now();
  auto dev = [](const ReadRequest& q) { return answer(q, {}); };
  ASSERT_TRUE(cycle(p, dev, t0).result.ok);
  // The poll of slot 1 starts 25 s late: the value read at t0 would be 35 s old.
  const SteadyTime late = t0 + std::chrono::seconds(35);
  p.begin(late, t0 + s.interval);
  std::vector<std::uint16_t> sent;
  DevicePoll::Outcome o = p.first();
  while (o.step == Step::kSend) {
    sent.push_back(p.request().address);
    o = p.on_reply(answer(p.request(), {}));
  }
  const PollResult r = p.take_result(late);
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(sent, (std::vector<std::uint16_t>{0, 100}));
  EXPECT_EQ(r.values[1].read_at, r.completed_at);
}

}  // namespace
}  // namespace facility::modbus

namespace facility::modbus {
namespace {

int exceptions(const CycleRun& r, int code) {
  int n = 0;
  for (const auto& e : r.events) n += e.result == RequestResult::kException && e.exception_code == code;
  return n;
}

// A dead unit behind a TCP gateway (10/11), a device that stays busy after its retries (5/6) and
// a device failure (4) fail the poll like a timeout does, so the device backs off too: a gateway
// answers 11 only after its own serial timeout, and that costs the whole bus every poll.
TEST(DevicePoll, GatewayBusyAndDeviceFailureExceptionsBackOffAndKeepTheConnection) {
  for (int code : {4, 6, 10, 11}) {
    SCOPED_TRACE(code);
    DeviceSpec s = spec_of({reg("a", 0)});
    s.interval = std::chrono::milliseconds(1000);
    s.backoff_max = std::chrono::milliseconds(8000);
    s.busy_retries = 1;
    DevicePoll p(s, 0);
    const auto now = SteadyClock::now();
    const long want[] = {0, 2000, 4000, 8000, 8000};
    for (long w : want) {
      p.begin(now, now);
      DevicePoll::Outcome o = p.first();
      do {
        o = p.on_reply(exception(RegisterKind::kHolding, code));
      } while (o.step == Step::kSendAfter);
      EXPECT_EQ(o.step, Step::kDone);  // not kDoneReconnect: the connection is fine
      EXPECT_FALSE(p.take_result(now).ok);
      EXPECT_EQ(std::chrono::duration_cast<std::chrono::milliseconds>(p.next_poll(now, now) - now)
                    .count(),
                w);
    }
    p.begin(now, now);
    (void)p.first();
    (void)p.on_reply(answer(p.request(), {}));
    EXPECT_TRUE(p.take_result(now).ok);
    EXPECT_EQ(p.next_poll(now, now), now);  // one answer ends the backoff
  }
}

TEST(DevicePoll, AnIllegalAddressInABridgedHoleIsRemembered) {
  // Points at 0 and 10; the device has nothing at 5 and says so. The planner bridges the hole
  // (max_gap 16); after the split both points arrive, and the hole must never be read again.
  DeviceSpec s = spec_of({reg("a", 0), reg("b", 10)});
  s.plan.max_gap = 16;
  DevicePoll p(s, 0);
  const std::set<int> illegal{5};
  auto dev = [&](const ReadRequest& q) { return answer(q, illegal); };
  CycleRun r = cycle(p, dev);
  ASSERT_TRUE(r.result.ok);
  EXPECT_EQ(exceptions(r, 2), 1);
  EXPECT_EQ(r.result.values[0].value, 0);
  EXPECT_EQ(r.result.values[1].value, 10);
  EXPECT_EQ(p.unreadable_points(), 0u);
  for (int k = 0; k < 3; ++k) {
    r = cycle(p, dev);
    ASSERT_TRUE(r.result.ok);
    EXPECT_EQ(exceptions(r, 2), 0) << "cycle " << k + 2;
    EXPECT_EQ(r.sent.size(), 2u);
    EXPECT_EQ(r.result.values[1].value, 10);
  }
}

TEST(DevicePoll, HolesAreFoundInsideHalvesToo) {
  // The bad address (2) lies in the hole inside the left half; the hole between the halves
  // (5..9) is fine and stays bridged.
  DeviceSpec s = spec_of({reg("a", 0), reg("b", 4), reg("c", 10), reg("d", 14)});
  s.plan.max_gap = 16;
  DevicePoll p(s, 0);
  const std::set<int> illegal{2};
  auto dev = [&](const ReadRequest& q) { return answer(q, illegal); };
  CycleRun r = cycle(p, dev);
  ASSERT_TRUE(r.result.ok);
  for (std::size_t i = 0; i < 4; ++i) EXPECT_TRUE(r.result.values[i].value.has_value()) << i;
  r = cycle(p, dev);
  EXPECT_EQ(exceptions(r, 2), 0);
  ASSERT_EQ(r.sent.size(), 2u);
  EXPECT_EQ(r.sent[1].address, 4);
  EXPECT_EQ(r.sent[1].count, 11);  // 4..14: the good hole is still bridged
}

TEST(DevicePoll, OnlyTheUnmappedPartOfAHoleIsForbidden) {
  // The fast group's read bridges registers 1..9; register 5 belongs to a slower point (read
  // by its own group), register 7 is what the device rejects. Forbidding 1..9 would make the
  // slower point unreadable; only 1..4 and 6..9 may be forbidden.
  DeviceSpec s = spec_of({reg("a", 0), reg("slow", 5), reg("b", 10)});
  s.plan.max_gap = 16;
  s.interval = std::chrono::seconds(10);
  s.every = {1, 6, 1};
  DevicePoll p(s, 0);
  const std::set<int> illegal{7};
  auto dev = [&](const ReadRequest& q) { return answer(q, illegal); };
  const SteadyTime t0 = SteadyClock::now();
  CycleRun r = cycle(p, dev, t0);
  ASSERT_TRUE(r.result.ok);
  EXPECT_EQ(r.result.values[1].value, 5);
  r = cycle(p, dev, t0 + s.interval);
  EXPECT_EQ(exceptions(r, 2), 0);
  EXPECT_EQ(r.sent.size(), 2u);
  r = cycle(p, dev, t0 + 6 * s.interval);
  EXPECT_EQ(exceptions(r, 2), 0);
  EXPECT_FALSE(r.result.values[1].unreadable) << r.result.values[1].unreadable_why;
  EXPECT_EQ(r.result.values[1].value, 5);
  EXPECT_EQ(p.unreadable_points(), 0u);
}

TEST(DevicePoll, ExceptionThreeNeverLowersTheCapBelowAReadTheDeviceAnswered) {
  // The device answers at most 30 registers; the map has a 20-register string and 16 single
  // registers after it. Halving the cap blindly (36 / 2 = 18) would make the string unreadable
  // although the device has just read it in a 28-register read.
  // The map starts at 0x4142 so that the string's words ("AB", "AC", ...) hold no NUL.
  constexpr int kBase = 0x4142;
  PointSpec model = reg("model", kBase, DataType::kString);
  model.length = 20;
  std::vector<PointSpec> pts{model};
  for (int a = kBase + 20; a < kBase + 36; ++a) {
    pts.push_back(reg("r" + std::to_string(a), static_cast<std::uint16_t>(a)));
  }
  DevicePoll p(spec_of(pts), 0);
  auto dev = [](const ReadRequest& q) {
    return q.count > 30 ? exception(q.kind, 3) : answer(q, {});
  };
  for (int k = 0; k < 3; ++k) {
    SCOPED_TRACE(k);
    const CycleRun r = cycle(p, dev);
    ASSERT_TRUE(r.result.ok) << r.result.error;
    EXPECT_EQ(p.unreadable_points(), 0u);
    EXPECT_FALSE(r.result.values[0].unreadable) << r.result.values[0].unreadable_why;
    EXPECT_EQ(r.result.values[0].text.substr(0, 4), "ABAC");
    EXPECT_EQ(r.result.values[16].value, kBase + 35);
    if (k > 0) {
      EXPECT_EQ(exceptions(r, 3), 0);
      for (const auto& q : r.sent) EXPECT_LE(q.count, 30);
    }
  }
}

TEST(DevicePoll, UnreadablePointsAreReprobedWithALongBackoff) {
  std::vector<PointSpec> pts;
  for (int a = 0; a < 4; ++a) pts.push_back(reg("p" + std::to_string(a), static_cast<std::uint16_t>(a)));
  DeviceSpec s = spec_of(pts);
  s.interval = std::chrono::seconds(10);
  s.reprobe_unreadable = std::chrono::seconds(60);
  s.reprobe_unreadable_max = std::chrono::seconds(120);
  DevicePoll p(s, 0);
  std::set<int> illegal{2};
  auto dev = [&](const ReadRequest& q) { return answer(q, illegal); };
  const SteadyTime t0 = SteadyClock::now();
  auto at = [&](int k) { return t0 + k * s.interval; };
  CycleRun r = cycle(p, dev, at(0));
  ASSERT_TRUE(r.result.values[2].unreadable);
  EXPECT_NE(r.result.values[2].unreadable_why.find("exception 2"), std::string::npos);
  // Until the re-probe is due: two reads around it, no exception.
  std::vector<int> exc_per_cycle;
  for (int k = 1; k <= 30; ++k) {
    r = cycle(p, dev, at(k));
    ASSERT_TRUE(r.result.ok);
    exc_per_cycle.push_back(exceptions(r, 2));
    EXPECT_TRUE(r.result.values[2].unreadable) << "cycle " << k;
  }
  // One single-point re-probe 60 s after, then 120 s after that (the max), 120 s again.
  std::vector<int> want(30, 0);
  want[6 - 1] = want[18 - 1] = want[30 - 1] = 1;
  EXPECT_EQ(exc_per_cycle, want);
  // The device is fixed (a firmware update, a gateway that had finished booting): the next
  // re-probe succeeds and the point is back in the plan, read with its neighbours.
  illegal.clear();
  for (int k = 31; k <= 42; ++k) r = cycle(p, dev, at(k));
  EXPECT_EQ(r.sent.size(), 3u);  // the re-probe at 42 (60 + 120 + 120 + 120 s)
  r = cycle(p, dev, at(43));
  EXPECT_EQ(p.unreadable_points(), 0u);
  ASSERT_EQ(r.sent.size(), 1u);
  EXPECT_EQ(r.result.values[2].value, 2);
  EXPECT_FALSE(r.result.values[2].unreadable);
}

TEST(DevicePoll, AFunctionTheDeviceRejectedIsReprobedWithOneRead) {
  PointSpec in0 = reg("in0", 0), in1 = reg("in1", 7);
  in0.kind = in1.kind = RegisterKind::kInput;
  DeviceSpec s = spec_of({reg("h", 0), in0, in1});
  s.interval = std::chrono::seconds(10);
  s.reprobe_unreadable = std::chrono::seconds(30);
  DevicePoll p(s, 0);
  bool reject = true;
  auto dev = [&](const ReadRequest& q) {
    return q.kind == RegisterKind::kInput && reject ? exception(q.kind, 1) : answer(q, {});
  };
  const SteadyTime t0 = SteadyClock::now();
  CycleRun r = cycle(p, dev, t0);
  EXPECT_TRUE(r.result.values[1].unreadable);
  EXPECT_TRUE(r.result.values[2].unreadable);
  EXPECT_EQ(cycle(p, dev, t0 + s.interval).sent.size(), 1u);
  reject = false;
  r = cycle(p, dev, t0 + 3 * s.interval);  // the re-probe: one read for the whole function
  EXPECT_EQ(r.sent.size(), 2u);
  r = cycle(p, dev, t0 + 4 * s.interval);
  EXPECT_EQ(p.unreadable_points(), 0u);
  EXPECT_EQ(r.result.values[2].value, 7);
}

}  // namespace
}  // namespace facility::modbus
