#include "collectors/modbus/resolver.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "collectors/unique_fd.h"

namespace facility::modbus {

ResolvedAddress parse_ipv4(const std::string& host, int port) {
  ResolvedAddress r;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  if (::inet_pton(AF_INET, host.c_str(), &a.sin_addr) != 1) return r;
  std::memcpy(&r.addr, &a, sizeof a);
  r.len = sizeof a;
  return r;
}

ResolvedAddress resolve_with_getaddrinfo(const std::string& host, int port) {
  ResolvedAddress r;
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res);
  if (rc != 0 || !res) {
    r.error = "cannot resolve " + host + ": " + ::gai_strerror(rc);
    return r;
  }
  std::memcpy(&r.addr, res->ai_addr, res->ai_addrlen);
  r.len = res->ai_addrlen;
  ::freeaddrinfo(res);
  return r;
}

struct Resolver::State {
  ResolveFn fn;
  UniqueFd event;
  std::mutex mu;
  std::condition_variable cv;
  struct Request {
    std::size_t tag;
    std::string host;
    int port;
  };
  std::deque<Request> requests;
  std::vector<Answer> answers;
  bool stopping = false;
  bool running = false;

  // The resolver thread: holds the state alive until it has finished its current lookup.
  static void run(std::shared_ptr<State> s) {
    std::unique_lock l(s->mu);
    while (true) {
      s->cv.wait(l, [&] { return s->stopping || !s->requests.empty(); });
      if (s->stopping) return;
      Request q = std::move(s->requests.front());
      s->requests.pop_front();
      l.unlock();
      ResolvedAddress a = s->fn(q.host, q.port);
      l.lock();
      if (s->stopping) return;
      s->answers.push_back({q.tag, std::move(a)});
      const std::uint64_t one = 1;
      [[maybe_unused]] auto n = ::write(s->event.get(), &one, sizeof one);
    }
  }
};

Resolver::Resolver(ResolveFn fn) : state_(std::make_shared<State>()) {
  state_->fn = std::move(fn);
  state_->event.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!state_->event) throw std::runtime_error("resolver: eventfd failed");
}

Resolver::~Resolver() { stop(); }

void Resolver::request(std::size_t tag, std::string host, int port) {
  std::lock_guard l(state_->mu);
  if (state_->stopping) return;
  state_->requests.push_back({tag, std::move(host), port});
  if (!state_->running) {
    // Started on first use: a site of IPv4 literals never has this thread.
    state_->running = true;
    std::thread(State::run, state_).detach();
  }
  state_->cv.notify_one();
}

std::vector<Resolver::Answer> Resolver::take() {
  std::uint64_t n;
  [[maybe_unused]] auto r = ::read(state_->event.get(), &n, sizeof n);
  std::lock_guard l(state_->mu);
  return std::exchange(state_->answers, {});
}

int Resolver::fd() const { return state_->event.get(); }

void Resolver::stop() {
  std::lock_guard l(state_->mu);
  state_->stopping = true;
  state_->cv.notify_all();
}

}  // namespace facility::modbus
