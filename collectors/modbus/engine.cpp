#include "collectors/modbus/engine.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <deque>
#include <queue>
#include <stdexcept>
#include <unordered_map>

#include "collectors/modbus/resolver.h"
#include "collectors/unique_fd.h"

namespace facility::modbus {
namespace {

using std::chrono::milliseconds;

// errno texts without strerror() (not thread-safe in every libc configuration).
std::string errno_text(int e) {
  switch (e) {
    case ECONNREFUSED: return "connection refused";
    case ECONNRESET: return "connection reset by the device";
    case ETIMEDOUT: return "timed out";
    case EHOSTUNREACH: return "host unreachable";
    case ENETUNREACH: return "network unreachable";
    case EPIPE: return "connection closed (broken pipe)";
    case EMFILE: return "too many open files (raise LimitNOFILE)";
    case ENFILE: return "system file table full";
    case EADDRNOTAVAIL: return "no local port available";
    default: return "errno " + std::to_string(e);
  }
}

enum class State : std::uint8_t {
  kDisconnected,
  kConnecting,
  kPausing,   // connected; waiting before the next send (after connect, between requests, busy)
  kReady,     // connected, nothing in flight
  kAwaiting,  // a request is in flight
  kBackoff,   // connecting failed; waiting until next_connect
  kResolving,  // waiting for the resolver thread's answer for the endpoint's host name
};

struct Timer {
  SteadyTime at;
  std::size_t id;  // device or endpoint index
  std::uint64_t gen;
  bool endpoint;  // id is an endpoint's (its timer, valid while gen is the endpoint's)
  bool operator>(const Timer& o) const { return at > o.at; }
};

}  // namespace

NextSlot advance_slot(SteadyTime slot, std::chrono::milliseconds interval, SteadyTime now) {
  NextSlot n{slot + interval, 0};
  if (n.at <= now) {
    n.skipped = static_cast<long>((now - n.at) / interval) + 1;
    n.at += interval * n.skipped;
  }
  return n;
}

std::chrono::milliseconds start_offset(const std::string& id, std::chrono::milliseconds interval) {
  // FNV-1a: stable across runs and platforms, unlike std::hash.
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : id) h = (h ^ c) * 1099511628211ull;
  h ^= h >> 29;
  return milliseconds(static_cast<long>(h % static_cast<std::uint64_t>(std::max<long>(1, interval.count()))));
}

struct PollEngine::Impl {
  struct Dev {
    DevicePoll poll;
    std::size_t ep;
    SteadyTime slot{};           // the slot the queued / running poll belongs to
    SteadyTime next_slot{};      // next scheduled time
    SteadyTime backoff_until{};  // failing device: no poll before this
    bool queued = false;
    bool scheduled = false;  // next_slot is set (run() started, or taken over)
  };
  struct Ep {
    std::size_t index;
    EndpointSpec spec;
    sockaddr_storage addr{};
    socklen_t addr_len = 0;   // 0: a host name not resolved yet
    bool named = false;       // host is a name, not an IPv4 literal
    bool re_resolve = false;  // look the name up again before the next connect
    bool resolving = false;   // a lookup is with the resolver
    UniqueFd fd;
    State state = State::kDisconnected;
    std::uint64_t gen = 0;  // invalidates the endpoint's pending timer
    bool timer_armed = false;  // a timer is pending, at timer_at
    SteadyTime timer_at{};
    std::deque<std::size_t> ready;  // devices due, oldest first
    long active = -1;               // device in cycle
    bool resend = false;            // active device waits for a (re)connection to resend
    std::vector<std::uint8_t> tx;
    std::size_t tx_off = 0;
    std::vector<std::uint8_t> rx;
    std::uint16_t tid = 0;
    SteadyTime last_io{};
    milliseconds backoff{0};
    std::string last_error;
    bool unreachable = false;  // the last connection attempt failed (reported once)
    bool want_out = false;
  };

  PollObserver& obs;
  std::vector<Dev> devs;
  std::vector<Ep> eps;
  std::vector<std::uint8_t> reply_scratch;  // the reply being handled (on_readable)
  UniqueFd epoll;
  UniqueFd wake;
  std::atomic<bool> stopping{false};
  std::atomic<bool> keep_open{false};  // halt(): run() leaves the connections open
  Adopted adopted;
  std::priority_queue<Timer, std::vector<Timer>, std::greater<>> timers;
  Resolver resolver;

  Impl(std::vector<EngineEndpoint> endpoints, PollObserver& o, ResolveFn resolve,
       Impl* prev = nullptr)
      : obs(o), resolver(resolve ? std::move(resolve) : ResolveFn(resolve_with_getaddrinfo)) {
    epoll.reset(::epoll_create1(EPOLL_CLOEXEC));
    wake.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!epoll || !wake) throw std::runtime_error("poll engine: epoll/eventfd failed");
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = UINT64_MAX;
    ::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, wake.get(), &ev);
    ev.data.u64 = kResolverEvent;
    ::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, resolver.fd(), &ev);
    Previous before(prev);
    for (auto& e : endpoints) {
      if (Ep* old = before.endpoint(e.spec)) {
        take_over(e, *old, before);
        continue;
      }
      Ep ep;
      ep.index = e.index;
      ep.spec = std::move(e.spec);
      // IPv4 literals here; names on the first connect, by the resolver thread (never here:
      // the daemon's start-up must not wait for DNS).
      const ResolvedAddress a = parse_ipv4(ep.spec.host, ep.spec.port);
      ep.named = a.len == 0;
      ep.addr = a.addr;
      ep.addr_len = a.len;
      const std::size_t ei = eps.size();
      eps.push_back(std::move(ep));
      for (auto& [idx, spec] : e.devices) {
        devs.push_back(Dev{DevicePoll(std::move(spec), idx), ei});
      }
    }
  }

  // ---- taking over from a halted engine (a reload) -----------------------------------------
  // The halted engine's endpoints by key and devices by id.
  struct Previous {
    Impl* impl;
    std::unordered_map<std::string, std::size_t> eps;
    std::unordered_map<std::string, std::size_t> devs;
    explicit Previous(Impl* p) : impl(p) {
      if (!p) return;
      for (std::size_t i = 0; i < p->eps.size(); ++i) eps.emplace(p->eps[i].spec.key, i);
      for (std::size_t i = 0; i < p->devs.size(); ++i) devs.emplace(p->devs[i].poll.spec().id, i);
    }
    Ep* endpoint(const EndpointSpec& spec) {
      auto it = eps.find(spec.key);
      if (it == eps.end() || impl->eps[it->second].spec != spec) return nullptr;
      Ep* ep = &impl->eps[it->second];
      eps.erase(it);  // taken: once
      return ep;
    }
  };

  // Takes the endpoint over with its connection, transaction id, state and timer, and on it each
  // device whose spec is unchanged with its schedule and poll state, renumbered.
  void take_over(EngineEndpoint& e, Ep& old, Previous& before) {
    const std::size_t ei = eps.size();
    const std::size_t old_ei = static_cast<std::size_t>(&old - before.impl->eps.data());
    std::unordered_map<std::size_t, std::size_t> renumbered;  // old device index -> new
    for (auto& [idx, spec] : e.devices) {
      auto it = before.devs.find(spec.id);
      Dev* d = it == before.devs.end() ? nullptr : &before.impl->devs[it->second];
      if (d && d->ep == old_ei && d->poll.spec() == spec) {
        renumbered.emplace(it->second, devs.size());
        d->poll.set_index(idx);
        d->ep = ei;
        devs.push_back(std::move(*d));
        adopted.devices.push_back(idx);
      } else {
        devs.push_back(Dev{DevicePoll(std::move(spec), idx), ei});
      }
    }
    const std::deque<std::size_t> ready = std::move(old.ready);
    const long active = old.active;
    eps.push_back(std::move(old));
    Ep& ep = eps.back();
    ep.index = e.index;
    ep.gen = 0;
    ep.ready.clear();
    for (std::size_t di : ready) {
      if (auto r = renumbered.find(di); r != renumbered.end()) ep.ready.push_back(r->second);
    }
    ep.active = -1;
    // A lookup with the old engine's resolver is lost: the next connect asks again.
    ep.resolving = false;
    if (ep.state == State::kResolving) {
      ep.state = State::kDisconnected;
      ep.timer_armed = false;
    }
    if (active >= 0) {
      if (auto r = renumbered.find(static_cast<std::size_t>(active)); r != renumbered.end()) {
        ep.active = static_cast<long>(r->second);
      } else {
        abandon_cycle(ep);
      }
    }
    if (ep.fd) {
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLRDHUP | (ep.want_out ? EPOLLOUT : 0u);
      ev.data.u64 = ei;
      if (::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, ep.fd.get(), &ev) != 0) drop_connection(ep);
    }
    if (ep.fd && ep.state != State::kConnecting) adopted.connected_endpoints.push_back(e.index);
    if (ep.timer_armed) set_ep_timer(ep, ep.timer_at);
  }

  // The device in cycle changed or was removed: its cycle ends unreported. A request of it in
  // flight must not have its reply read as another's: over Modbus TCP that reply carries an old
  // transaction id and is skipped and counted when it comes (on_readable); RTU framing cannot
  // tell it apart, so that connection is dropped.
  static void abandon_cycle(Ep& ep) {
    if (ep.state == State::kAwaiting && ep.spec.framing == Framing::kRtu) {
      drop_connection(ep);
      return;
    }
    ep.active = -1;
    ep.resend = false;  // a pause (after connecting, between requests) still runs its course
    if (ep.state == State::kAwaiting) {
      ep.state = State::kReady;
      ep.timer_armed = false;
    }
  }

  // Before the I/O thread runs: closes a taken-over connection without reporting it (the
  // successor's counters start with it down).
  static void drop_connection(Ep& ep) {
    ep.fd.reset();
    ep.rx.clear();
    ep.tx.clear();
    ep.tx_off = 0;
    ep.want_out = false;
    ep.resend = false;
    ep.active = -1;
    ep.timer_armed = false;
    ep.state = State::kDisconnected;
  }

  static constexpr std::uint64_t kResolverEvent = UINT64_MAX - 1;
  // A reply whose transaction id is one of this many before the current one answers an earlier
  // request of the connection (retries are at most 10): skipped, not a malformed stream.
  static constexpr std::uint16_t kStaleTransactions = 16;

  void on_resolved(SteadyTime now) {
    for (Resolver::Answer& a : resolver.take()) {
      Ep& ep = eps[a.tag];
      ep.resolving = false;
      if (a.address.len > 0) {
        ep.addr = a.address.addr;
        ep.addr_len = a.address.len;
        ep.re_resolve = false;
      } else if (ep.addr_len > 0) {
        // The name did resolve before: try the address it had (DNS may be down, not the device).
        spdlog::debug("{}: {}; using the previous address", ep.spec.key, a.address.error);
      }
      if (ep.state != State::kResolving) continue;  // gave up waiting; the answer is kept
      if (ep.addr_len == 0) {
        connect_failed(ep, a.address.error, now);
      } else {
        ep.state = State::kDisconnected;
        start_connect(ep, now);
      }
    }
  }

  // ---- timers ----------------------------------------------------------------------------
  void set_ep_timer(Ep& ep, SteadyTime at) {
    ++ep.gen;
    ep.timer_armed = true;
    ep.timer_at = at;
    timers.push({at, static_cast<std::size_t>(&ep - eps.data()), ep.gen, true});
  }
  void cancel_ep_timer(Ep& ep) {
    ++ep.gen;
    ep.timer_armed = false;
  }

  // ---- scheduling ------------------------------------------------------------------------
  void on_device_due(std::size_t di, SteadyTime now) {
    Dev& d = devs[di];
    const SteadyTime slot = d.next_slot;
    const auto interval = d.poll.spec().interval;
    if (d.queued || d.poll.in_cycle()) {
      obs.on_overrun(d.poll.index());
    } else if (now >= d.backoff_until) {
      d.queued = true;
      d.slot = slot;
      eps[d.ep].ready.push_back(di);
    }
    const NextSlot next = advance_slot(slot, interval, now);
    for (long i = 0; i < next.skipped; ++i) obs.on_overrun(d.poll.index());
    d.next_slot = next.at;
    timers.push({d.next_slot, di, 0, false});
    proceed(eps[d.ep], now);
  }

  // ---- connection ------------------------------------------------------------------------
  void close_conn(Ep& ep, bool report) {
    if (ep.fd) {
      ::epoll_ctl(epoll.get(), EPOLL_CTL_DEL, ep.fd.get(), nullptr);
      ep.fd.reset();
      if (report) obs.on_connection(ep.index, false);
    }
    ep.rx.clear();
    ep.tx.clear();
    ep.tx_off = 0;
    ep.want_out = false;
    cancel_ep_timer(ep);
    ep.state = State::kDisconnected;
  }

  void start_connect(Ep& ep, SteadyTime now) {
    if (ep.named && (ep.addr_len == 0 || ep.re_resolve)) {
      if (!ep.resolving) {
        ep.resolving = true;
        resolver.request(static_cast<std::size_t>(&ep - eps.data()), ep.spec.host, ep.spec.port);
      }
      ep.state = State::kResolving;
      set_ep_timer(ep, now + ep.spec.connect_timeout);
      return;
    }
    UniqueFd fd(::socket(ep.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) {
      connect_failed(ep, "socket: " + errno_text(errno), now);
      return;
    }
    const int one = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    const int rc = ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&ep.addr), ep.addr_len);
    if (rc != 0 && errno != EINPROGRESS) {
      connect_failed(ep, errno_text(errno), now);
      return;
    }
    epoll_event ev{};
    ev.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP;
    ev.data.u64 = static_cast<std::uint64_t>(&ep - eps.data());
    if (::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, fd.get(), &ev) != 0) {
      connect_failed(ep, "epoll_ctl: " + errno_text(errno), now);
      return;
    }
    ep.fd = std::move(fd);
    ep.want_out = true;
    ep.state = State::kConnecting;
    set_ep_timer(ep, now + ep.spec.connect_timeout);
  }

  void connected(Ep& ep, SteadyTime now) {
    ep.backoff = milliseconds(0);
    ep.last_error.clear();
    if (ep.unreachable) {
      ep.unreachable = false;
      obs.on_reachability(ep.index, true, "");
    }
    set_interest(ep, false);
    obs.on_connection(ep.index, true);
    ep.last_io = now;
    if (ep.spec.pause_after_connect.count() > 0) {
      ep.state = State::kPausing;
      set_ep_timer(ep, now + ep.spec.pause_after_connect);
    } else {
      ep.state = State::kReady;
      cancel_ep_timer(ep);
      proceed(ep, now);
    }
  }

  void connect_failed(Ep& ep, const std::string& why, SteadyTime now) {
    const bool was_open = static_cast<bool>(ep.fd);
    if (!ep.unreachable) {
      ep.unreachable = true;
      obs.on_reachability(ep.index, false, "connect failed: " + why);
    }
    // The name may point elsewhere now (a replaced device, a DHCP lease): look it up again on
    // the next attempt, after the backoff.
    if (ep.named) ep.re_resolve = true;
    close_conn(ep, false);
    if (was_open) obs.on_connection(ep.index, false);
    ep.backoff = ep.backoff.count() == 0 ? ep.spec.backoff_initial
                                         : std::min(ep.backoff * 2, ep.spec.backoff_max);
    ep.last_error = "connect to " + ep.spec.key + " failed: " + why + "; retry in " +
                    std::to_string(ep.backoff.count()) + " ms";
    ep.state = State::kBackoff;
    set_ep_timer(ep, now + ep.backoff);
    if (ep.active >= 0) {
      // The device was waiting for this connection to resend: its cycle ends here.
      Dev& d = devs[static_cast<std::size_t>(ep.active)];
      ep.resend = false;
      obs.on_request(d.poll.fail(ep.last_error).event);
      finish(ep, d, now);
    }
    fail_ready(ep, now);
  }

  // Makes the oldest due device the active one and begins its cycle.
  Dev& begin_next(Ep& ep, SteadyTime now) {
    const std::size_t di = ep.ready.front();
    ep.ready.pop_front();
    Dev& d = devs[di];
    d.queued = false;
    d.poll.begin(now, d.slot);
    ep.active = static_cast<long>(di);
    return d;
  }

  void fail_ready(Ep& ep, SteadyTime now) {
    while (!ep.ready.empty()) {
      Dev& d = begin_next(ep, now);
      obs.on_request(d.poll.fail(ep.last_error).event);
      finish(ep, d, now);
    }
  }

  void set_interest(Ep& ep, bool out) {
    if (ep.want_out == out || !ep.fd) return;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP | (out ? EPOLLOUT : 0u);
    ev.data.u64 = static_cast<std::uint64_t>(&ep - eps.data());
    ::epoll_ctl(epoll.get(), EPOLL_CTL_MOD, ep.fd.get(), &ev);
    ep.want_out = out;
  }

  // ---- the request cycle -----------------------------------------------------------------
  // Moves an endpoint forward from whatever state it is in.
  void proceed(Ep& ep, SteadyTime now) {
    switch (ep.state) {
      case State::kDisconnected:
        if (ep.active >= 0 || !ep.ready.empty()) start_connect(ep, now);
        return;
      case State::kBackoff:
        fail_ready(ep, now);
        return;
      case State::kReady:
        if (ep.active >= 0) {
          if (ep.resend) {
            ep.resend = false;
            send(ep, now);
          }
          return;
        }
        if (!ep.ready.empty()) {
          Dev& d = begin_next(ep, now);
          if (d.poll.first().step != DevicePoll::Step::kSend) {
            finish(ep, d, now);  // nothing readable to read
            proceed(ep, now);
            return;
          }
          send(ep, now);
        }
        return;
      case State::kConnecting:
      case State::kResolving:
      case State::kPausing:
      case State::kAwaiting:
        return;
    }
  }

  void send(Ep& ep, SteadyTime now) {
    if (!ep.fd) {
      // The device closed the connection after its last reply: open a new one, then send.
      ep.resend = true;
      start_connect(ep, now);
      return;
    }
    Dev& d = devs[static_cast<std::size_t>(ep.active)];
    if (ep.spec.pause_between_requests.count() > 0 && now < ep.last_io + ep.spec.pause_between_requests) {
      ep.state = State::kPausing;
      ep.resend = true;
      set_ep_timer(ep, ep.last_io + ep.spec.pause_between_requests);
      return;
    }
    const ReadRequest& r = d.poll.request();
    ep.tx.clear();
    ep.tx_off = 0;
    ep.rx.clear();
    ++ep.tid;
    encode_read_request(ep.spec.framing, ep.tid, static_cast<std::uint8_t>(d.poll.spec().unit),
                        r.kind, r.address, r.count, ep.tx);
    d.poll.on_sent();
    ep.state = State::kAwaiting;
    set_ep_timer(ep, now + d.poll.spec().timeout);
    flush(ep, now);
  }

  void flush(Ep& ep, SteadyTime now) {
    while (ep.tx_off < ep.tx.size()) {
      const ssize_t n = ::send(ep.fd.get(), ep.tx.data() + ep.tx_off, ep.tx.size() - ep.tx_off,
                               MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          set_interest(ep, true);
          return;
        }
        lost(ep, "send: " + errno_text(errno), now);
        return;
      }
      ep.tx_off += static_cast<std::size_t>(n);
    }
    set_interest(ep, false);
  }

  // The connection broke (reset, closed by the peer) with a request in flight or queued.
  void lost(Ep& ep, const std::string& why, SteadyTime now) {
    close_conn(ep, true);
    if (ep.active >= 0) {
      Dev& d = devs[static_cast<std::size_t>(ep.active)];
      handle(ep, d, d.poll.on_connection_lost(why), now);
    } else {
      proceed(ep, now);
    }
  }

  void handle(Ep& ep, Dev& d, DevicePoll::Outcome o, SteadyTime now) {
    obs.on_request(o.event);
    switch (o.step) {
      case DevicePoll::Step::kSend:
        ep.state = State::kReady;
        cancel_ep_timer(ep);
        send(ep, now);
        return;
      case DevicePoll::Step::kSendAfter:
        ep.state = State::kPausing;
        ep.resend = true;
        set_ep_timer(ep, now + o.delay);
        return;
      case DevicePoll::Step::kReconnectSend:
        close_conn(ep, ep.fd ? true : false);
        ep.resend = true;
        start_connect(ep, now);
        return;
      case DevicePoll::Step::kDone:
      case DevicePoll::Step::kDoneReconnect: {
        if (o.step == DevicePoll::Step::kDoneReconnect) close_conn(ep, true);
        finish(ep, d, now);
        if (ep.state == State::kAwaiting) {
          ep.state = State::kReady;
          cancel_ep_timer(ep);
        }
        proceed(ep, now);
        return;
      }
    }
  }

  // Ends the active device's cycle and reports it.
  void finish(Ep& ep, Dev& d, SteadyTime now) {
    ep.active = -1;
    ep.resend = false;
    PollResult r = d.poll.take_result(now);
    d.backoff_until = d.poll.next_poll(now, now);
    obs.on_result(std::move(r));
  }

  // Appends what the socket has to ep.rx. `drain`: read until the socket is empty (the peer
  // has closed: its FIN is read with the reply). Otherwise a short read ends it: epoll is
  // level-triggered and reports what is left, and the usual reply costs one recv() instead of a
  // second one that only says EAGAIN. Returns why the stream ended, if it did. What arrived
  // before the end is still read: devices and gateways that close after each transaction, or
  // whose idle timer fires just after a reply, send the reply and the FIN together.
  std::string receive(Ep& ep, bool drain) {
    std::array<std::uint8_t, 1024> buf;
    while (true) {
      const ssize_t n = ::recv(ep.fd.get(), buf.data(), buf.size(), 0);
      if (n > 0) {
        ep.rx.insert(ep.rx.end(), buf.data(), buf.data() + n);
        if (ep.rx.size() > kMaxAduSize * 2) return {};
        if (!drain && static_cast<std::size_t>(n) < buf.size()) return {};
        continue;
      }
      if (n == 0) return "connection closed by the device";
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return {};
      return errno_text(errno);
    }
  }

  void on_readable(Ep& ep, SteadyTime now, bool drain) {
    const std::string ended = receive(ep, drain);
    if (ep.rx.empty()) {
      if (!ended.empty()) lost(ep, ended, now);
      return;
    }
    if (ep.state != State::kAwaiting || ep.active < 0) {
      // Bytes nobody asked for (a gateway that sends a reply twice, line noise): dropped and
      // counted. Over Modbus TCP the next reply is recognised by its transaction id, so the
      // connection stays; RTU framing has none, so only a fresh connection is clean again.
      obs.on_discarded(ep.index, ep.rx.size());
      ep.rx.clear();
      if (ep.spec.framing == Framing::kRtu || !ended.empty()) {
        spdlog::debug("{}: unexpected bytes; reconnecting", ep.spec.key);
        close_conn(ep, true);
        proceed(ep, now);
      }
      return;
    }
    Dev& d = devs[static_cast<std::size_t>(ep.active)];
    const ReadRequest& r = d.poll.request();
    ReplyFrame f;
    FrameStatus st;
    // A late reply to a request that timed out (the retry went out with a new transaction id),
    // or one a gateway sent twice: skipped and counted, and the wait for this reply goes on.
    while ((st = find_reply(ep.spec.framing, ep.rx, ep.tid,
                            static_cast<std::uint8_t>(d.poll.spec().unit), r.kind, r.count, f,
                            kStaleTransactions)) == FrameStatus::kStale) {
      obs.on_discarded(ep.index, f.size);
      ep.rx.erase(ep.rx.begin(), ep.rx.begin() + static_cast<std::ptrdiff_t>(f.size));
      f = ReplyFrame{};
    }
    if (st == FrameStatus::kIncomplete) {
      if (!ended.empty()) lost(ep, ended, now);  // the rest of the reply will never come
      return;
    }
    ep.last_io = now;
    if (st == FrameStatus::kMalformed) {
      handle(ep, d, d.poll.on_malformed(f.error), now);
      return;
    }
    // Bytes after a complete reply (junk, or the reply twice as some RTU-over-TCP gateways send
    // it): the reply, framed exactly by its MBAP length or byte count and CRC, is good; the rest
    // is dropped and counted. With RTU framing nothing tells a stray byte from the next reply,
    // so the next request goes out on a fresh connection.
    bool resync = false;
    if (ep.rx.size() > f.size) {
      obs.on_discarded(ep.index, ep.rx.size() - f.size);
      ep.rx.resize(f.size);
      resync = ep.spec.framing == Framing::kRtu;
    }
    ep.state = State::kReady;
    cancel_ep_timer(ep);
    // The reply moves to a buffer of the engine's and rx gets that buffer's old storage: neither
    // allocates again for the next reply.
    std::vector<std::uint8_t>& frame = reply_scratch;
    frame.swap(ep.rx);
    ep.rx.clear();
    // A complete reply that came with the end of the stream is a good reply; the next request
    // goes out on a new connection (send() opens one), and no request failed.
    if (!ended.empty() || resync) close_conn(ep, true);
    handle(ep, d, d.poll.on_reply(std::span(frame.data() + f.pdu_offset, f.pdu_size)), now);
  }

  void on_event(Ep& ep, std::uint32_t events, SteadyTime now) {
    if (!ep.fd) return;
    if (ep.state == State::kConnecting) {
      if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(ep.fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0 || (events & (EPOLLERR | EPOLLHUP))) {
        connect_failed(ep, errno_text(err ? err : ECONNREFUSED), now);
      } else {
        connected(ep, now);
      }
      return;
    }
    if (events & EPOLLOUT) flush(ep, now);
    if (!ep.fd) return;
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
      on_readable(ep, now, (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0);
    }
  }

  void on_ep_timer(Ep& ep, SteadyTime now) {
    switch (ep.state) {
      case State::kConnecting:
        connect_failed(ep, "no answer within " + std::to_string(ep.spec.connect_timeout.count()) +
                               " ms",
                       now);
        return;
      case State::kAwaiting: {
        Dev& d = devs[static_cast<std::size_t>(ep.active)];
        handle(ep, d, d.poll.on_timeout(), now);
        return;
      }
      case State::kPausing:
        ep.state = State::kReady;
        proceed(ep, now);
        return;
      case State::kBackoff:
        ep.state = State::kDisconnected;
        proceed(ep, now);
        return;
      case State::kResolving:
        // The lookup goes on (its answer is kept); the polls waiting for it fail now.
        connect_failed(ep, "resolving " + ep.spec.host + " took longer than " +
                               std::to_string(ep.spec.connect_timeout.count()) + " ms",
                       now);
        return;
      case State::kDisconnected:
      case State::kReady:
        return;
    }
  }

  void run() {
    const SteadyTime t0 = SteadyClock::now();
    for (std::size_t i = 0; i < devs.size(); ++i) {
      Dev& d = devs[i];
      if (!d.scheduled) {  // a device taken over keeps its schedule
        const auto& sp = d.poll.spec();
        d.next_slot = t0 + sp.first_poll_offset.value_or(start_offset(sp.id, sp.interval));
        d.scheduled = true;
      }
      timers.push({d.next_slot, i, 0, false});
    }
    // Endpoints taken over with devices due but no connection (see take_over) move on.
    for (auto& ep : eps) proceed(ep, t0);
    std::vector<epoll_event> events(256);
    while (!stopping.load(std::memory_order_relaxed)) {
      int timeout_ms = -1;
      if (!timers.empty()) {
        const auto wait = timers.top().at - SteadyClock::now();
        timeout_ms = static_cast<int>(
            std::clamp<long long>(std::chrono::ceil<milliseconds>(wait).count(), 0, 60'000));
      }
      const int n = ::epoll_wait(epoll.get(), events.data(), static_cast<int>(events.size()),
                                 timeout_ms);
      if (n < 0 && errno != EINTR) {
        spdlog::error("poll engine: epoll_wait failed: {}", errno_text(errno));
        break;
      }
      SteadyTime now = SteadyClock::now();
      for (int i = 0; i < n; ++i) {
        if (events[i].data.u64 == UINT64_MAX) continue;
        if (events[i].data.u64 == kResolverEvent) {
          on_resolved(now);
          continue;
        }
        on_event(eps[events[i].data.u64], events[i].events, now);
      }
      now = SteadyClock::now();
      while (!timers.empty() && timers.top().at <= now) {
        const Timer t = timers.top();
        timers.pop();
        if (!t.endpoint) {
          on_device_due(t.id, now);
        } else if (Ep& ep = eps[t.id]; t.gen == ep.gen) {
          ep.timer_armed = false;
          on_ep_timer(ep, now);
        }
      }
    }
    if (!keep_open.load(std::memory_order_acquire)) {
      for (auto& ep : eps) close_conn(ep, false);
    }
  }
};

PollEngine::PollEngine(std::vector<EngineEndpoint> endpoints, PollObserver& observer)
    : impl_(std::make_unique<Impl>(std::move(endpoints), observer, ResolveFn{})) {}

PollEngine::PollEngine(std::vector<EngineEndpoint> endpoints, PollObserver& observer,
                       ResolveFn resolve)
    : impl_(std::make_unique<Impl>(std::move(endpoints), observer, std::move(resolve))) {}

PollEngine::PollEngine(std::vector<EngineEndpoint> endpoints, PollObserver& observer,
                       PollEngine& previous, ResolveFn resolve) {
  previous.halt();
  impl_ = std::make_unique<Impl>(std::move(endpoints), observer, std::move(resolve),
                                 previous.impl_.get());
}

PollEngine::~PollEngine() { stop(); }

void PollEngine::start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { impl_->run(); });
}

void PollEngine::stop() {
  impl_->stopping = true;
  const std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(impl_->wake.get(), &one, sizeof one);
  if (thread_.joinable()) thread_.join();
}

void PollEngine::halt() {
  if (!thread_.joinable()) return;
  impl_->keep_open.store(true, std::memory_order_release);
  stop();
}

const PollEngine::Adopted& PollEngine::adopted() const { return impl_->adopted; }

std::size_t PollEngine::endpoint_count() const { return impl_->eps.size(); }
std::size_t PollEngine::device_count() const { return impl_->devs.size(); }

}  // namespace facility::modbus
