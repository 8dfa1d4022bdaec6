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

// Drives one cycle to its end with `device` answering each request.
CycleRun cycle(DevicePoll& p, const std::function<Bytes(const ReadRequest&)>& device) {
  CycleRun run;
  const auto now = SteadyClock::now();
  p.begin(now, now);
  DevicePoll::Outcome o = p.first();
  int guard = 0;
  while ((o.step == Step::kSend || o.step == Step::kSendAfter) && ++guard < 100) {
    run.sent.push_back(p.request());
    p.on_sent();
    o = p.on_reply(device(p.request()));
    run.events.push_back(o.event);
  }
  run.result = p.take_result(SteadyClock::now());
  return run;
}

DeviceSpec spec_of(std::vector<PointSpec> pts) {
  DeviceSpec s;
  s.id = "dev";
  s.points = std::move(pts);
  s.plan.max_gap = 0;
  return s;
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
  for (int c = 0; c < 7; ++c) {
    if (c == 3) energy_base = 9;  // the counter moves between the 1st and the 2nd slow read
    const CycleRun r = cycle(p, dev);
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

TEST(DevicePoll, ASlowPointIsNotCarriedAfterAFailedRead) {
  DeviceSpec s = spec_of({reg("power", 0), reg("energy", 100)});
  s.every = {1, 2};
  DevicePoll p(s, 0);
  bool fail_energy = false;
  auto dev = [&](const ReadRequest& q) {
    return q.address == 100 && fail_energy ? exception(q.kind, 4) : answer(q, {});
  };
  EXPECT_EQ(cycle(p, dev).result.values[1].value, 100);  // cycle 1: read
  EXPECT_EQ(cycle(p, dev).result.values[1].value, 100);  // cycle 2: carried
  fail_energy = true;
  EXPECT_FALSE(cycle(p, dev).result.ok);                  // cycle 3: the read fails
  fail_energy = false;
  // Cycle 4: energy is not due and its last value is two cycles old: absent, not frozen.
  const CycleRun r = cycle(p, dev);
  ASSERT_TRUE(r.result.ok);
  EXPECT_FALSE(r.result.values[1].value.has_value());
}

}  // namespace
}  // namespace facility::modbus
