#include "collectors/modbus/device_poll.h"

#include <algorithm>
#include <array>
#include <memory>
#include <mutex>

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

namespace {

std::string where(const DeviceSpec& s, const ReadRequest& r) {
  return "unit " + std::to_string(s.unit) + " FC" + std::to_string(static_cast<int>(r.kind)) +
         " @" + std::to_string(r.address) + "+" + std::to_string(r.count);
}

AddressRange range_of(const PointSpec& p) {
  return {p.kind, p.address, static_cast<std::uint16_t>(p.address + p.width() - 1)};
}

bool overlaps(const AddressRange& r, const PointSpec& p) {
  return r.kind == p.kind && r.first < p.address + p.width() && r.last >= p.address;
}

// What every device with the same points shares: their codecs and the names of their values.
// A site's thousands of devices come from a handful of profiles, so they keep one copy per
// profile instead of one per device (about 10 KB per 37-point PDU).
struct SharedPoints {
  std::shared_ptr<const std::vector<PointCodec>> codecs;
  std::shared_ptr<const std::vector<std::string>> names;
};

std::vector<std::string> value_names(const DeviceSpec& spec) {
  std::vector<std::string> names;
  names.reserve(spec.points.size() + spec.derived.size());
  for (const auto& p : spec.points) names.push_back(p.name);
  for (const auto& d : spec.derived) names.push_back(d.name);
  return names;
}

bool same_points(const std::vector<PointCodec>& codecs, const std::vector<PointSpec>& points) {
  return std::equal(codecs.begin(), codecs.end(), points.begin(), points.end(),
                    [](const PointCodec& c, const PointSpec& p) { return c.spec() == p; });
}

// Thread-safe: pollers are built on any thread (the daemon's, a reload's, `probe`'s).
SharedPoints shared_points(const DeviceSpec& spec) {
  static std::mutex mu;
  static std::vector<std::pair<std::weak_ptr<const std::vector<PointCodec>>,
                               std::weak_ptr<const std::vector<std::string>>>>
      known;
  std::vector<std::string> names = value_names(spec);
  std::lock_guard lock(mu);
  std::erase_if(known, [](const auto& k) { return k.first.expired() || k.second.expired(); });
  for (const auto& [wc, wn] : known) {
    auto codecs = wc.lock();
    auto shared_names = wn.lock();
    if (codecs && shared_names && *shared_names == names && same_points(*codecs, spec.points)) {
      return {std::move(codecs), std::move(shared_names)};
    }
  }
  std::vector<PointCodec> codecs;
  codecs.reserve(spec.points.size());
  for (const auto& p : spec.points) codecs.emplace_back(p);  // throws for a bad point
  SharedPoints s{std::make_shared<const std::vector<PointCodec>>(std::move(codecs)),
                 std::make_shared<const std::vector<std::string>>(std::move(names))};
  known.emplace_back(s.codecs, s.names);
  return s;
}

}  // namespace

DevicePoll::DevicePoll(DeviceSpec spec, std::size_t index)
    : spec_(std::move(spec)), index_(index), derived_(spec_.derived, spec_.points.size()) {
  SharedPoints shared = shared_points(spec_);
  codecs_ = std::move(shared.codecs);
  value_names_ = std::move(shared.names);
  for (const auto& p : spec_.points) {
    if (!is_bit_kind(p.kind)) widest_register_point_ = std::max(widest_register_point_, p.width());
  }
  const std::size_t n = spec_.points.size();
  rejected_.assign(n, false);
  by_function_.assign(n, false);
  plan_unreadable_.assign(n, false);
  unreadable_why_.assign(n, {});
  reprobe_at_.assign(n, {});
  reprobe_wait_.assign(n, std::chrono::milliseconds(0));
  last_.assign(n, Decoded{});
  last_read_at_.assign(n, {});
  learned_cap_ = std::clamp(spec_.plan.max_registers, 1, 125);
  replan();
}

std::size_t DevicePoll::unreadable_points() const {
  std::size_t n = 0;
  for (std::size_t i = 0; i < spec_.points.size(); ++i) n += unreadable(i) ? 1 : 0;
  return n;
}

void DevicePoll::replan() {
  PlanOptions o = spec_.plan;
  o.max_registers = learned_cap_;
  for (const Learned& l : learned_) o.forbidden.push_back(l.range);
  // Points the plan cannot read are judged afresh: a point that shares a register with one the
  // device rejected comes back when that one answers a re-probe.
  for (std::size_t i = 0; i < spec_.points.size(); ++i) {
    if (!plan_unreadable_[i]) continue;
    plan_unreadable_[i] = false;
    if (!rejected_[i]) unreadable_why_[i].clear();
  }
  // One plan per point group (points read every N polls); the common case is one group.
  std::vector<int> groups;
  for (std::size_t i = 0; i < spec_.points.size(); ++i) {
    if (std::find(groups.begin(), groups.end(), every(i)) == groups.end()) groups.push_back(every(i));
  }
  std::sort(groups.begin(), groups.end());
  groups_.clear();
  plan_.clear();
  for (int g : groups) {
    std::vector<bool> exclude = rejected_;
    for (std::size_t i = 0; i < exclude.size(); ++i) exclude[i] = exclude[i] || every(i) != g;
    Plan p = make_plan(spec_.points, o, &exclude);
    for (std::size_t i : p.unreadable) {
      const PointSpec& pt = spec_.points[i];
      plan_unreadable_[i] = true;
      if (!is_bit_kind(pt.kind) && pt.width() > o.max_registers) {
        unreadable_why_[i] = "wider than the registers-per-read cap " + std::to_string(o.max_registers);
      } else if (std::any_of(learned_.begin(), learned_.end(),
                             [&](const Learned& l) { return overlaps(l.range, pt); })) {
        unreadable_why_[i] = "shares an address the device rejected";
      } else {
        unreadable_why_[i] = "address in a never_read range";
      }
    }
    plan_.insert(plan_.end(), p.reads.begin(), p.reads.end());
    groups_.push_back({g, std::move(p.reads)});
  }
  replan_needed_ = false;
}

RequestEvent DevicePoll::event(RequestResult r, int exc) const {
  RequestEvent e;
  e.device_index = index_;
  e.function = queue_.empty() ? 0 : static_cast<int>(queue_.front().read.kind);
  e.result = r;
  e.exception_code = exc;
  return e;
}

void DevicePoll::begin(SteadyTime now, SteadyTime scheduled) {
  for (std::size_t i : readable_again_) {
    rejected_[i] = by_function_[i] = false;
    unreadable_why_[i].clear();
    reprobe_wait_[i] = std::chrono::milliseconds(0);
    std::erase_if(learned_, [i](const Learned& l) { return l.owner == static_cast<long>(i); });
    replan_needed_ = true;
  }
  readable_again_.clear();
  if (replan_needed_) replan();
  queue_.clear();
  splits_.clear();
  due_groups_.clear();
  for (const Group& g : groups_) {
    auto due = std::find_if(next_due_.begin(), next_due_.end(),
                            [&](const auto& d) { return d.first == g.every; });
    if (g.every > 1 && due != next_due_.end() && now < due->second) continue;
    due_groups_.push_back(g.every);
    for (const ReadRequest& r : g.reads) queue_.push_back({r});
  }
  // Re-probes of rejected points whose time has come: one read per point, one per function
  // for points rejected with "illegal function".
  std::array<bool, 5> function_probed{};
  for (std::size_t i = 0; i < spec_.points.size(); ++i) {
    if (!rejected_[i] || now < reprobe_at_[i]) continue;
    const PointSpec& p = spec_.points[i];
    if (by_function_[i]) {
      if (function_probed[static_cast<std::size_t>(p.kind)]) continue;
      function_probed[static_cast<std::size_t>(p.kind)] = true;
    }
    queue_.push_back({ReadRequest{p.kind, p.address, static_cast<std::uint16_t>(p.width()), {i}},
                      -1, true});
  }
  values_.assign(spec_.points.size(), Decoded{});
  read_now_.assign(spec_.points.size(), false);
  if (spec_.capture_raw) raw_.assign(spec_.points.size(), {});
  attempts_left_ = spec_.retries;
  busy_left_ = spec_.busy_retries;
  requests_ = 0;
  ok_ = false;
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

DevicePoll::Outcome DevicePoll::pop_and_next(const RequestEvent& ev) {
  queue_.pop_front();
  Outcome o = next_or_done();
  o.event = ev;
  return o;
}

// The device answered but the cycle cannot complete: it fails and the device backs off like
// after a timeout (a gateway answering 11 has spent its own timeout on the bus first).
DevicePoll::Outcome DevicePoll::failed_exception(const ReadRequest& req, int code,
                                                 const RequestEvent& ev, const std::string& suffix) {
  ++consecutive_failures_;
  Outcome o = finish(false, where(spec_, req) + ": " + describe_exception(code) + suffix, false);
  o.event = ev;
  return o;
}

void DevicePoll::reject(std::size_t point, int code, bool forbid, SteadyTime now) {
  rejected_[point] = true;
  by_function_[point] = code == kIllegalFunction;
  unreadable_why_[point] = describe_exception(code);
  reprobe_wait_[point] = spec_.reprobe_unreadable;
  reprobe_at_[point] = now + reprobe_wait_[point];
  if (forbid) learned_.push_back({range_of(spec_.points[point]), static_cast<long>(point)});
  replan_needed_ = true;
}

void DevicePoll::reprobe_failed(std::size_t point, int code, SteadyTime now) {
  const auto wait = std::min(reprobe_wait_[point] * 2,
                             std::max(spec_.reprobe_unreadable_max, spec_.reprobe_unreadable));
  auto again = [&](std::size_t i) {
    reprobe_wait_[i] = wait;
    reprobe_at_[i] = now + wait;
    unreadable_why_[i] = describe_exception(code);
  };
  if (!by_function_[point]) {
    again(point);
    return;
  }
  for (std::size_t i = 0; i < spec_.points.size(); ++i) {
    if (by_function_[i] && spec_.points[i].kind == spec_.points[point].kind) again(i);
  }
}

// Forbids the addresses of [first, end) that no point of the device maps: a point of a slower
// group (not in this plan) may live in a hole of this group's read, and its own read finds out
// whether the device rejects it.
void DevicePoll::forbid_holes(RegisterKind kind, std::uint32_t first, std::uint32_t end) {
  std::vector<std::pair<std::uint32_t, std::uint32_t>> mapped;
  for (const PointSpec& p : spec_.points) {
    if (p.kind == kind) mapped.emplace_back(p.address, p.address + static_cast<std::uint32_t>(p.width()));
  }
  std::sort(mapped.begin(), mapped.end());
  std::uint32_t a = first;
  for (const auto& [lo, hi] : mapped) {
    if (hi <= a) continue;
    if (lo >= end) break;
    if (lo > a) {
      learned_.push_back({{kind, static_cast<std::uint16_t>(a), static_cast<std::uint16_t>(lo - 1)}, -1});
    }
    a = std::max(a, hi);
  }
  if (a < end) {
    learned_.push_back({{kind, static_cast<std::uint16_t>(a), static_cast<std::uint16_t>(end - 1)}, -1});
  }
  replan_needed_ = true;
}

void DevicePoll::split_half_done(int split_index, bool ok) {
  if (split_index < 0) return;
  Split& s = splits_[static_cast<std::size_t>(split_index)];
  if (!ok) {
    s.failed = true;
    return;
  }
  if (--s.pending > 0 || s.failed) return;
  if (s.gap_first < s.gap_end) {
    forbid_holes(s.kind, s.gap_first, s.gap_end);
  } else if (!is_bit_kind(s.kind) && largest_ok_ < s.count) {
    // Nothing unmapped between the halves, yet the whole was rejected: the device limits the
    // length of a read (some say so with exception 2 instead of 3).
    learned_cap_ = std::min(learned_cap_, std::max(largest_ok_, widest_register_point_));
    replan_needed_ = true;
  }
}

// Splits the failed read at the front of the queue into two halves (by point count).
void DevicePoll::split(const Queued& q, int code) {
  const ReadRequest& req = q.read;
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
  ReadRequest lo = sub(0, half), hi = sub(half, pts.size());
  int id = -1;
  if (code == kIllegalDataAddress) {
    id = static_cast<int>(splits_.size());
    splits_.push_back({req.kind, req.count, std::uint32_t{lo.address} + lo.count, hi.address});
  }
  const int parent = q.split;
  queue_.pop_front();
  split_half_done(parent, false);
  queue_.push_front({std::move(hi), id});
  queue_.push_front({std::move(lo), id});
  replan_needed_ = true;
}

void DevicePoll::note_ok(const ReadRequest& req) {
  if (is_bit_kind(req.kind)) return;
  largest_ok_ = std::max<int>(largest_ok_, req.count);
  if (req.count > learned_cap_) {
    learned_cap_ = std::min(static_cast<int>(req.count), std::clamp(spec_.plan.max_registers, 1, 125));
    replan_needed_ = true;
  }
}

// A data reply to the request at the front of the queue: decode its points (or, for a re-probe
// of an unreadable point, note that it answers again).
DevicePoll::Outcome DevicePoll::on_data(const Queued& q, const std::uint16_t* words_of_read) {
  const ReadRequest& req = q.read;
  const RequestEvent ev = event(RequestResult::kOk);
  consecutive_failures_ = 0;
  note_ok(req);
  if (q.reprobe) {
    // The point answers again. Its value is used from the next cycle on, when the plan holds
    // it again (the gauge of unreadable points changes once, then).
    readable_again_.push_back(req.points.front());
    if (by_function_[req.points.front()]) {
      for (std::size_t i = 0; i < spec_.points.size(); ++i) {
        if (by_function_[i] && spec_.points[i].kind == req.kind && i != req.points.front()) {
          readable_again_.push_back(i);
        }
      }
    }
    return pop_and_next(ev);
  }
  for (std::size_t pi : req.points) {
    const PointSpec& p = spec_.points[pi];
    const std::span<const std::uint16_t> words(words_of_read + (p.address - req.address),
                                               static_cast<std::size_t>(p.width()));
    values_[pi] = (*codecs_)[pi].decode(words);
    read_now_[pi] = true;
    if (spec_.capture_raw) raw_[pi].assign(words.begin(), words.end());
  }
  split_half_done(q.split, true);
  return pop_and_next(ev);
}

DevicePoll::Outcome DevicePoll::on_reply(std::span<const std::uint8_t> pdu) {
  const Queued& q = queue_.front();
  const ReadRequest& req = q.read;
  // One buffer per thread, not per device: thousands of devices share a few pollers.
  thread_local std::array<std::uint16_t, 2000> scratch;
  const ParsedReply pr = parse_read_reply(pdu, req.kind, req.count, scratch.data());
  if (pr.kind == ReplyKind::kMalformed) return on_malformed(pr.error);
  const SteadyTime now = started_;  // the cycle's time (injected by tests)
  if (pr.kind == ReplyKind::kData) return on_data(q, scratch.data());
  // An exception reply.
  const int code = pr.exception_code;
  const RequestEvent ev = event(RequestResult::kException, code);
  if (code == kServerDeviceBusy || code == kAcknowledge) {
    if (busy_left_-- > 0) {
      Outcome o;
      o.step = Step::kSendAfter;
      o.delay = spec_.busy_retry_delay;
      o.event = ev;
      return o;
    }
    return failed_exception(req, code, ev,
                            " after " + std::to_string(spec_.busy_retries) + " retries");
  }
  const bool rejects = code == kIllegalFunction || code == kIllegalDataAddress ||
                       code == kIllegalDataValue;
  if (rejects && q.reprobe) {
    reprobe_failed(req.points.front(), code, now);
    return pop_and_next(ev);
  }
  if ((code == kIllegalDataAddress || code == kIllegalDataValue) && req.points.size() > 1) {
    if (code == kIllegalDataValue && !is_bit_kind(req.kind)) {
      // The read was too long for this device. Lower the cap, but never below a read it has
      // answered or a point that needs the room: that would make the point unreadable.
      const int cap = std::max({req.count / 2, largest_ok_, widest_register_point_});
      if (cap < req.count) learned_cap_ = std::min(learned_cap_, cap);
    }
    Outcome o;
    split(q, code);
    o.step = Step::kSend;
    o.event = ev;
    return o;
  }
  if (code == kIllegalDataAddress || code == kIllegalDataValue) {
    const std::size_t point = req.points.front();
    split_half_done(q.split, false);
    reject(point, code, code == kIllegalDataAddress, now);
    return pop_and_next(ev);
  }
  if (code == kIllegalFunction) {
    for (std::size_t i = 0; i < spec_.points.size(); ++i) {
      if (spec_.points[i].kind == req.kind && !rejected_[i]) reject(i, code, false, now);
    }
    const RegisterKind kind = req.kind;
    queue_.pop_front();
    std::erase_if(queue_, [&](const Queued& r) { return r.read.kind == kind; });
    Outcome o = next_or_done();
    o.event = ev;
    return o;
  }
  return failed_exception(req, code, ev);
}

DevicePoll::Outcome DevicePoll::on_timeout() {
  const RequestEvent ev = event(RequestResult::kTimeout);
  Outcome o;
  if (attempts_left_-- > 0) {
    o.step = Step::kReconnectSend;
  } else {
    ++consecutive_failures_;
    o = finish(false,
               where(spec_, queue_.front().read) + ": timeout (no reply within " +
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
    o = finish(false, where(spec_, queue_.front().read) + ": " + why, true);
  }
  o.event = ev;
  return o;
}

DevicePoll::Outcome DevicePoll::on_malformed(const std::string& why) {
  const RequestEvent ev = event(RequestResult::kMalformed);
  ++consecutive_failures_;
  Outcome o = finish(false, where(spec_, queue_.front().read) + ": malformed reply: " + why, true);
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
    // The groups read this cycle are due again N intervals after this cycle's slot. A group
    // whose read failed was not read (the cycle failed) and stays due.
    for (int g : due_groups_) {
      auto due = std::find_if(next_due_.begin(), next_due_.end(),
                              [&](const auto& d) { return d.first == g; });
      if (due == next_due_.end()) due = next_due_.insert(next_due_.end(), {g, SteadyTime{}});
      due->second = scheduled_ + g * spec_.interval;
    }
    r.names = value_names_;
    r.values.reserve(value_names_->size());
    for (std::size_t i = 0; i < spec_.points.size(); ++i) {
      const PointSpec& p = spec_.points[i];
      bool carried = false;
      if (read_now_[i]) {
        last_[i] = values_[i];
        last_read_at_[i] = r.completed_at;
      } else if (every(i) > 1 && last_read_at_[i] != std::chrono::system_clock::time_point{}) {
        // A slower group not due this cycle: not yet N intervals since the slot it was read
        // in, so its last value is younger than its own interval.
        values_[i] = last_[i];
        carried = true;
      }
      Decoded& d = values_[i];
      r.values.push_back({(*value_names_)[i], d.value, std::move(d.text), p.unit, unreadable(i)});
      PolledValue& v = r.values.back();
      v.read_at = carried ? last_read_at_[i] : r.completed_at;
      if (v.unreadable) v.unreadable_why = unreadable_why_[i];
      if (spec_.capture_raw) v.raw = std::move(raw_[i]);
    }
    add_derived(r);
  }
  error_.clear();
  return r;
}

// The derived points of a successful cycle, after its read points (derived.h).
void DevicePoll::add_derived(PollResult& r) const {
  if (derived_.empty()) return;
  std::vector<DerivedValue> values;
  values.reserve(r.values.size() + derived_.specs().size());
  for (const PolledValue& v : r.values) {
    values.push_back({v.value, {}, v.read_at, !v.unreadable});
  }
  derived_.evaluate(values);
  for (std::size_t k = 0; k < derived_.specs().size(); ++k) {
    const DerivedSpec& s = derived_.specs()[k];
    DerivedValue& d = values[spec_.points.size() + k];
    PolledValue v{(*value_names_)[spec_.points.size() + k], d.value, std::move(d.text), s.unit};
    v.read_at = d.read_at;
    r.values.push_back(std::move(v));
  }
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
