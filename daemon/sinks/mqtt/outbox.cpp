#include "daemon/sinks/mqtt/outbox.h"

#include <algorithm>
#include <cstdint>

namespace facility {

const char* to_string(MqttDropReason r) {
  switch (r) {
    case MqttDropReason::kQueueFull: return "queue_full";
    case MqttDropReason::kExpired: return "expired";
    case MqttDropReason::kRejected: return "rejected";
    case MqttDropReason::kShutdown: return "shutdown";
  }
  return "?";
}

MqttOutbox::MqttOutbox(Limits limits, const std::vector<std::string>& sites) : limits_(limits) {
  for (const auto& s : sites) {
    if (site_index_.count(s)) continue;
    site_index_.emplace(s, sites_.size());
    sites_.emplace_back();
  }
}

std::uint64_t MqttOutbox::reserve_seqs(std::size_t n) {
  std::lock_guard lock(mu_);
  const std::uint64_t first = next_seq_;
  next_seq_ += n;
  return first;
}

void MqttOutbox::restore_seq(std::uint64_t last_used) {
  std::lock_guard lock(mu_);
  next_seq_ = std::max(next_seq_, last_used + 1);
}

bool MqttOutbox::fits(std::size_t bytes) const {
  return entries_.size() + 1 <= limits_.max_messages && bytes_ + bytes <= limits_.max_bytes;
}

void MqttOutbox::make_ready(TopicQueue& tq) {
  if (!tq.in_flight && !tq.seqs.empty()) sites_[tq.site].ready.insert({tq.seqs.front(), &tq});
}

// The entry is queued (not in flight) and counted in its site's `pending`.
void MqttOutbox::remove(std::map<std::uint64_t, Entry>::iterator it, bool dropped,
                        MqttDropReason reason) {
  const std::uint64_t seq = it->first;
  Entry& e = it->second;
  TopicQueue& tq = *e.topic;
  SiteQueue& sq = sites_[tq.site];
  const bool was_head = !tq.seqs.empty() && tq.seqs.front() == seq;
  if (was_head) {
    sq.ready.erase({seq, &tq});
    tq.seqs.pop_front();
  } else {
    const auto pos = std::find(tq.seqs.begin(), tq.seqs.end(), seq);
    if (pos != tq.seqs.end()) tq.seqs.erase(pos);
  }
  --sq.pending;
  evictable_.erase(seq);
  bytes_ -= e.msg.bytes();
  if (e.msg.cls == MqttClass::kEvent) --events_;
  if (dropped) {
    ++dropped_[static_cast<std::size_t>(reason)];
    dropped_topics_.push_back(e.msg.topic);
  } else {
    ++delivered_;
  }
  removed_.push_back(seq);
  const std::string topic = std::move(e.msg.topic);
  entries_.erase(it);
  if (tq.seqs.empty() && !tq.in_flight) {
    topics_.erase(topic);  // nothing refers to it any more
  } else if (was_head) {
    make_ready(tq);
  }
}

void MqttOutbox::push(std::vector<OutboxMessage> msgs) {
  std::lock_guard lock(mu_);
  for (auto& m : msgs) {
    ++queued_;
    const auto site = site_index_.find(m.site);
    if (site == site_index_.end()) {  // e.g. restored from a journal after a config change
      ++dropped_[static_cast<std::size_t>(MqttDropReason::kRejected)];
      removed_.push_back(m.seq);
      continue;
    }
    const std::size_t size = m.bytes();
    // Make room by dropping the oldest state messages that are not in flight.
    while (!fits(size) && !evictable_.empty()) {
      const auto victim = entries_.find(*evictable_.begin());
      const OutboxMessage& v = victim->second.msg;
      const bool expired = limits_.expiry_ms > 0 && v.expires &&
                           m.queued_ms - v.queued_ms >= limits_.expiry_ms;
      remove(victim, true, expired ? MqttDropReason::kExpired : MqttDropReason::kQueueFull);
    }
    if (!fits(size) && m.cls == MqttClass::kState) {
      ++dropped_[static_cast<std::size_t>(MqttDropReason::kQueueFull)];
      removed_.push_back(m.seq);
      dropped_topics_.push_back(m.topic);
      continue;
    }
    // Alert events are kept even over the bound (see the policy in the header).
    const std::uint64_t seq = m.seq;
    const MqttClass cls = m.cls;
    auto [it, inserted] = entries_.emplace(seq, Entry{std::move(m), nullptr, 0});
    if (!inserted) continue;  // a seq can only be queued once
    TopicQueue& tq = topics_[it->second.msg.topic];
    tq.site = site->second;
    it->second.topic = &tq;
    tq.seqs.push_back(seq);
    ++sites_[tq.site].pending;
    bytes_ += size;
    if (cls == MqttClass::kEvent) {
      ++events_;
    } else {
      evictable_.insert(seq);
    }
    if (tq.seqs.size() == 1) make_ready(tq);
  }
}

std::vector<MqttOutbox::Send> MqttOutbox::take(const std::string& site,
                                               std::size_t max_in_flight, std::int64_t now_ms) {
  std::vector<Send> out;
  std::lock_guard lock(mu_);
  const auto idx = site_index_.find(site);
  if (idx == site_index_.end()) return out;
  SiteQueue& sq = sites_[idx->second];
  while (sq.in_flight < max_in_flight && !sq.ready.empty()) {
    const std::uint64_t seq = sq.ready.begin()->first;
    const auto it = entries_.find(seq);
    Entry& e = it->second;
    std::int64_t remaining = 0;
    if (limits_.expiry_ms > 0 && e.msg.expires) {
      remaining = limits_.expiry_ms - (now_ms - e.msg.queued_ms);
      if (remaining <= 0) {
        remove(it, true, MqttDropReason::kExpired);
        continue;
      }
    }
    sq.ready.erase(sq.ready.begin());
    e.send_id = next_send_id_++;
    e.topic->in_flight = true;
    in_flight_.emplace(e.send_id, seq);
    ++sq.in_flight;
    --sq.pending;
    evictable_.erase(seq);
    out.push_back(Send{e.send_id, seq, e.msg.topic, e.msg.payload, e.msg.cls, remaining});
  }
  return out;
}

void MqttOutbox::back_to_queue(std::uint64_t send_id) {
  const auto f = in_flight_.find(send_id);
  if (f == in_flight_.end()) return;
  const std::uint64_t seq = f->second;
  in_flight_.erase(f);
  Entry& e = entries_.at(seq);
  TopicQueue& tq = *e.topic;
  SiteQueue& sq = sites_[tq.site];
  e.send_id = 0;
  tq.in_flight = false;
  --sq.in_flight;
  ++sq.pending;
  if (e.msg.cls == MqttClass::kState) evictable_.insert(seq);
  make_ready(tq);
}

std::size_t MqttOutbox::acked(std::uint64_t send_id) { return finish(send_id, false); }

void MqttOutbox::failed(std::uint64_t send_id, bool permanent) {
  if (permanent) {
    finish(send_id, true);
    return;
  }
  std::lock_guard lock(mu_);
  back_to_queue(send_id);
}

std::size_t MqttOutbox::finish(std::uint64_t send_id, bool dropped) {
  std::lock_guard lock(mu_);
  const auto f = in_flight_.find(send_id);
  if (f == in_flight_.end()) return SIZE_MAX;  // superseded attempt: see acked()
  const std::uint64_t seq = f->second;
  const auto it = entries_.find(seq);
  const std::size_t site = it->second.topic->site;
  // Back to "queued head" first, then removed like any queued message.
  back_to_queue(send_id);
  remove(entries_.find(seq), dropped, MqttDropReason::kRejected);
  return sites_[site].in_flight;
}

std::size_t MqttOutbox::requeue_site(const std::string& site) {
  std::lock_guard lock(mu_);
  const auto idx = site_index_.find(site);
  if (idx == site_index_.end()) return 0;
  std::vector<std::uint64_t> ids;
  for (const auto& [send_id, seq] : in_flight_)
    if (entries_.at(seq).topic->site == idx->second) ids.push_back(send_id);
  for (auto id : ids) back_to_queue(id);
  return ids.size();
}

std::size_t MqttOutbox::drop_all(MqttDropReason reason) {
  std::lock_guard lock(mu_);
  std::vector<std::uint64_t> ids;
  for (const auto& kv : in_flight_) ids.push_back(kv.first);
  for (auto id : ids) back_to_queue(id);
  const std::size_t n = entries_.size();
  while (!entries_.empty()) remove(entries_.begin(), true, reason);
  return n;
}

void MqttOutbox::drain_removed(std::vector<std::uint64_t>& seqs,
                               std::vector<std::string>& dropped_topics) {
  std::lock_guard lock(mu_);
  seqs.insert(seqs.end(), removed_.begin(), removed_.end());
  removed_.clear();
  std::move(dropped_topics_.begin(), dropped_topics_.end(), std::back_inserter(dropped_topics));
  dropped_topics_.clear();
}

MqttOutbox::Stats MqttOutbox::stats() const {
  std::lock_guard lock(mu_);
  Stats s;
  s.messages = entries_.size();
  s.bytes = bytes_;
  s.in_flight = in_flight_.size();
  s.events = events_;
  s.queued_total = queued_;
  s.delivered_total = delivered_;
  s.dropped_total = dropped_;
  return s;
}

std::size_t MqttOutbox::pending(const std::string& site) const {
  std::lock_guard lock(mu_);
  const auto idx = site_index_.find(site);
  return idx == site_index_.end() ? 0 : sites_[idx->second].pending;
}

bool MqttOutbox::over_bound() const {
  std::lock_guard lock(mu_);
  return entries_.size() > limits_.max_messages || bytes_ > limits_.max_bytes;
}

}  // namespace facility
