#include "collectors/modbus/device_poll.h"

#include <algorithm>
#include <array>

#include "collectors/modbus/frame.h"

namespace facility::modbus {

const char* to_string(RequestResult r) {
  switch (r) {
    case RequestResult::kOk: return "ok";
    case RequestResult::kTimeout: return "timeout";
    case RequestResult::kException: return "exception";
    case RequestResult::kMalformed: return "malformed";
    case RequestResult::kConnection: return "connection";
  }
  return "?";
}

DevicePoll::DevicePoll(DeviceSpec spec, std::size_t index)
    : spec_(std::move(spec)), index_(index) {
  codecs_.reserve(spec_.points.size());
  for (const auto& p : spec_.points) codecs_.emplace_back(p);
  unreadable_.assign(spec_.points.size(), false);
  unreadable_why_.assign(spec_.points.size(), {});
  learned_cap_ = std::clamp(spec_.plan.max_registers, 1, 125);
  replan();
}

std::size_t DevicePoll::unreadable_points() const {
  return static_cast<std::size_t>(std::count(unreadable_.begin(), unreadable_.end(), true));
}

void DevicePoll::replan() {
  PlanOptions o = spec_.plan;
  o.max_registers = learned_cap_;
  // One plan per point group (points read every N cycles); the common case is one group.
  std::vector<int> groups;
  for (std::size_t i = 0; i < spec_.points.size(); ++i) {
    if (std::find(groups.begin(), groups.end(), every(i)) == groups.end()) groups.push_back(every(i));
  }
  std::sort(groups.begin(), groups.end());
  groups_.clear();
  plan_.clear();
  for (int g : groups) {
    std::vector<bool> exclude = unreadable_;
    for (std::size_t i = 0; i < exclude.size(); ++i) exclude[i] = exclude[i] || every(i) != g;
    Plan p = make_plan(spec_.points, o, &exclude);
    for (std::size_t i : p.unreadable) {
      if (!unreadable_[i]) {
        unreadable_[i] = true;
        unreadable_why_[i] = "address in a forbidden range";
      }
    }
    plan_.insert(plan_.end(), p.reads.begin(), p.reads.end());
    groups_.emplace_back(g, std::move(p.reads));
  }
  replan_needed_ = false;
}

RequestEvent DevicePoll::event(RequestResult r, int exc) const {
  RequestEvent e;
  e.device_index = index_;
  e.function = queue_.empty() ? 0 : static_cast<int>(queue_.front().kind);
  e.result = r;
  e.exception_code = exc;
  return e;
}

void DevicePoll::begin(SteadyTime now, SteadyTime scheduled) {
  if (replan_needed_) replan();
  ++cycle_;
  queue_.clear();
  for (const auto& [n, reads] : groups_) {
    if ((cycle_ - 1) % static_cast<std::uint64_t>(n) == 0) queue_.insert(queue_.end(), reads.begin(), reads.end());
  }
  values_.assign(spec_.points.size(), Decoded{});
  read_now_.assign(spec_.points.size(), false);
  if (spec_.capture_raw) raw_.assign(spec_.points.size(), {});
  attempts_left_ = spec_.retries;
  busy_left_ = spec_.busy_retries;
  requests_ = 0;
  ok_ = false;
  timed_out_ = false;
  error_.clear();
  started_ = now;
  scheduled_ = scheduled;
  in_cycle_ = true;
}

DevicePoll::Outcome DevicePoll::finish(bool ok, std::string error, bool reconnect) {
  Outcome o;
  o.step = reconnect ? Step::kDoneReconnect : Step::kDone;
  ok_ = ok;
  if (error_.empty()) error_ = std::move(error);
  in_cycle_ = false;
  return o;
}

DevicePoll::Outcome DevicePoll::next_or_done() {
  if (queue_.empty()) return finish(true, {}, false);
  attempts_left_ = spec_.retries;
  busy_left_ = spec_.busy_retries;
  Outcome o;
  o.step = Step::kSend;
  return o;
}

void DevicePoll::mark_unreadable(std::size_t point, const std::string& why, bool forbid) {
  unreadable_[point] = true;
  unreadable_why_[point] = why;
  if (forbid) {
    const PointSpec& p = spec_.points[point];
    spec_.plan.forbidden.push_back(
        {p.kind, p.address, static_cast<std::uint16_t>(p.address + p.width() - 1)});
  }
  replan_needed_ = true;
}

namespace {
std::string where(const DeviceSpec& s, const ReadRequest& r) {
  return "unit " + std::to_string(s.unit) + " FC" + std::to_string(static_cast<int>(r.kind)) +
         " @" + std::to_string(r.address) + "+" + std::to_string(r.count);
}
}  // namespace

DevicePoll::Outcome DevicePoll::on_reply(std::span<const std::uint8_t> pdu) {
  const ReadRequest req = queue_.front();
  // One buffer per thread, not per device: thousands of devices share a few pollers.
  thread_local std::array<std::uint16_t, 2000> scratch;
  const ParsedReply pr = parse_read_reply(pdu, req.kind, req.count, scratch.data());
  if (pr.kind == ReplyKind::kMalformed) return on_malformed(pr.error);
  if (pr.kind == ReplyKind::kData) {
    const RequestEvent ev = event(RequestResult::kOk);
    for (std::size_t pi : req.points) {
      const PointSpec& p = spec_.points[pi];
      const std::span<const std::uint16_t> words(scratch.data() + (p.address - req.address),
                                                 static_cast<std::size_t>(p.width()));
      values_[pi] = codecs_[pi].decode(words);
      read_now_[pi] = true;
      if (spec_.capture_raw) raw_[pi].assign(words.begin(), words.end());
    }
    consecutive_failures_ = 0;
    queue_.pop_front();
    Outcome o = next_or_done();
    o.event = ev;
    return o;
  }
  // An exception reply.
  const int code = pr.exception_code;
  const RequestEvent ev = event(RequestResult::kException, code);
  Outcome o;
  if (code == kServerDeviceBusy || code == kAcknowledge) {
    if (busy_left_-- > 0) {
      o.step = Step::kSendAfter;
      o.delay = spec_.busy_retry_delay;
      o.event = ev;
      return o;
    }
    o = finish(false, where(spec_, req) + ": " + describe_exception(code) + " after " +
                          std::to_string(spec_.busy_retries) + " retries",
               false);
    o.event = ev;
    return o;
  }
  if (code == kIllegalDataAddress || code == kIllegalDataValue) {
    if (req.points.size() > 1) {
      // Split the batch: read the halves; whatever still fails alone is the culprit.
      if (code == kIllegalDataValue) learned_cap_ = std::max(1, std::min<int>(learned_cap_, req.count / 2));
      std::vector<std::size_t> pts = req.points;
      std::sort(pts.begin(), pts.end(), [this](std::size_t a, std::size_t b) {
        return spec_.points[a].address < spec_.points[b].address;
      });
      const std::size_t half = pts.size() / 2;
      auto sub = [&](std::size_t from, std::size_t to) {
        ReadRequest r{req.kind, 0, 0, {}};
        std::uint32_t lo = UINT32_MAX, hi = 0;
        for (std::size_t i = from; i < to; ++i) {
          const PointSpec& p = spec_.points[pts[i]];
          lo = std::min<std::uint32_t>(lo, p.address);
          hi = std::max<std::uint32_t>(hi, p.address + static_cast<std::uint32_t>(p.width()));
          r.points.push_back(pts[i]);
        }
        r.address = static_cast<std::uint16_t>(lo);
        r.count = static_cast<std::uint16_t>(hi - lo);
        return r;
      };
      queue_.pop_front();
      queue_.push_front(sub(half, pts.size()));
      queue_.push_front(sub(0, half));
      replan_needed_ = true;
      o.step = Step::kSend;
      o.event = ev;
      return o;
    }
    mark_unreadable(req.points.front(), describe_exception(code), code == kIllegalDataAddress);
    queue_.pop_front();
    o = next_or_done();
    o.event = ev;
    return o;
  }
  if (code == kIllegalFunction) {
    for (std::size_t i = 0; i < spec_.points.size(); ++i) {
      if (spec_.points[i].kind == req.kind) mark_unreadable(i, describe_exception(code), false);
    }
    std::erase_if(queue_, [&](const ReadRequest& r) { return r.kind == req.kind; });
    o = next_or_done();
    o.event = ev;
    return o;
  }
  o = finish(false, where(spec_, req) + ": " + describe_exception(code), false);
  o.event = ev;
  return o;
}

DevicePoll::Outcome DevicePoll::on_timeout() {
  const RequestEvent ev = event(RequestResult::kTimeout);
  timed_out_ = true;
  Outcome o;
  if (attempts_left_-- > 0) {
    o.step = Step::kReconnectSend;
  } else {
    ++consecutive_failures_;
    o = finish(false,
               where(spec_, queue_.front()) + ": timeout (no reply within " +
                   std::to_string(spec_.timeout.count()) + " ms)",
               true);
  }
  o.event = ev;
  return o;
}

DevicePoll::Outcome DevicePoll::on_connection_lost(const std::string& why) {
  const RequestEvent ev = event(RequestResult::kConnection);
  Outcome o;
  if (attempts_left_-- > 0) {
    o.step = Step::kReconnectSend;
  } else {
    ++consecutive_failures_;
    o = finish(false, where(spec_, queue_.front()) + ": " + why, true);
  }
  o.event = ev;
  return o;
}

DevicePoll::Outcome DevicePoll::on_malformed(const std::string& why) {
  const RequestEvent ev = event(RequestResult::kMalformed);
  ++consecutive_failures_;
  Outcome o = finish(false, where(spec_, queue_.front()) + ": malformed reply: " + why, true);
  o.event = ev;
  return o;
}

DevicePoll::Outcome DevicePoll::fail(const std::string& error) {
  RequestEvent ev;
  ev.device_index = index_;
  ev.function = 0;
  ev.result = RequestResult::kConnection;
  ++consecutive_failures_;
  Outcome o = finish(false, error, false);
  o.event = ev;
  return o;
}

PollResult DevicePoll::take_result(SteadyTime now) {
  PollResult r;
  r.device_id = spec_.id;
  r.device_index = index_;
  r.ok = ok_;
  r.error = std::move(error_);
  r.completed_at = std::chrono::system_clock::now();
  r.duration = now - started_;
  r.lateness = started_ - scheduled_;
  r.requests = requests_;
  if (ok_) {
    if (last_.size() != spec_.points.size()) {
      last_.assign(spec_.points.size(), Decoded{});
      last_cycle_.assign(spec_.points.size(), 0);
    }
    r.values.reserve(spec_.points.size());
    for (std::size_t i = 0; i < spec_.points.size(); ++i) {
      const PointSpec& p = spec_.points[i];
      if (read_now_[i]) {
        last_[i] = values_[i];
        last_cycle_[i] = cycle_;
      } else if (every(i) > 1) {
        // A slower group not due this cycle: its last value, while it is within its own
        // interval; never older.
        const bool recent = last_cycle_[i] != 0 &&
                            cycle_ - last_cycle_[i] < static_cast<std::uint64_t>(every(i));
        values_[i] = recent ? last_[i] : Decoded{std::nullopt, {}, false};
      }
      Decoded& d = values_[i];
      r.values.push_back({p.name, d.value, std::move(d.text), p.unit, unreadable_[i]});
      if (spec_.capture_raw) r.values.back().raw = std::move(raw_[i]);
    }
  }
  error_.clear();
  return r;
}

SteadyTime DevicePoll::next_poll(SteadyTime slot, SteadyTime now) const {
  if (consecutive_failures_ <= 1) return slot;
  // 2, 4, 8 ... intervals after the last attempt, at most backoff_max.
  const int shift = std::min(consecutive_failures_ - 1, 16);
  const auto back = std::min<std::chrono::milliseconds>(spec_.interval * (1 << shift),
                                                        std::max(spec_.backoff_max, spec_.interval));
  return std::max(slot, now + back);
}

}  // namespace facility::modbus
