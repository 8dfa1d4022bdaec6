#include "daemon/http/server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <condition_variable>
#include <cstdarg>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <vector>

namespace facility::http {
namespace {

using SteadyClock = std::chrono::steady_clock;
constexpr std::size_t kLargeBody = 1 << 20;

// "127.0.0.1:10044", "[::1]:10044", "host.example:10044" -> a bound, listening socket.
int open_listener(const std::string& listen, int& family) {
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos) throw std::runtime_error("\"" + listen + "\" is not HOST:PORT");
  std::string host = listen.substr(0, colon);
  const std::string port = listen.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (const int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    throw std::runtime_error("cannot listen on " + listen + ": " + ::gai_strerror(rc));
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> list(found, &::freeaddrinfo);
  const addrinfo* a = found;
  const int fd = ::socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("cannot listen on " + listen + ": " + std::strerror(errno));
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (a->ai_family == AF_INET6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (::bind(fd, a->ai_addr, a->ai_addrlen) != 0 || ::listen(fd, 1024) != 0) {
    const int e = errno;
    ::close(fd);
    std::string why = std::strerror(e);
    if (e == EADDRINUSE) why += " (another process is listening on this port)";
    if (e == EADDRNOTAVAIL) why += " (no interface of this machine has that address)";
    if (e == EACCES) why += " (ports below 1024 need privileges)";
    throw std::runtime_error("cannot listen on " + listen + ": " + why);
  }
  family = a->ai_family;
  return fd;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string client_address(MHD_Connection* c) {
  const MHD_ConnectionInfo* ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  if (!ci || !ci->client_addr) return "?";
  char buf[INET6_ADDRSTRLEN] = "?";
  const sockaddr* sa = ci->client_addr;
  if (sa->sa_family == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, buf, sizeof buf);
  } else if (sa->sa_family == AF_INET6) {
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, buf, sizeof buf);
  }
  return buf;
}

MHD_Result collect(void* cls, MHD_ValueKind, const char* key, const char* value) {
  auto* out = static_cast<std::map<std::string, std::string>*>(cls);
  if (key) (*out)[lower(key)] = value ? value : "";
  return MHD_YES;
}

MHD_Result collect_args(void* cls, MHD_ValueKind, const char* key, const char* value) {
  auto* out = static_cast<std::map<std::string, std::string>*>(cls);
  if (key) (*out)[key] = value ? value : "";
  return MHD_YES;
}

// MHD's own messages (clients that drop, limits reached): debug level, at most 10 a second.
void mhd_log(void*, const char* fmt, va_list ap) {
  static std::mutex mu;
  static SteadyClock::time_point second{};
  static int lines = 0;
  std::lock_guard lock(mu);
  const auto now = SteadyClock::now();
  if (now - second > std::chrono::seconds(1)) {
    second = now;
    lines = 0;
  }
  if (++lines > 10) return;
  char buf[512];
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  std::string line = buf;
  while (!line.empty() && line.back() == '\n') line.pop_back();
  spdlog::debug("http: {}", line);
}

}  // namespace

struct Server::Impl {
  ServerOptions opt;
  Handler handler;
  int listen_fd = -1;
  int port = 0;
  MHD_Daemon* daemon = nullptr;

  // Open connections, for the deadlines MHD does not have (the reaper thread).
  struct Conn {
    int fd = -1;
    SteadyClock::time_point started;
    bool head_done = false;
    bool shut = false;
  };
  mutable std::mutex conn_mu;
  std::unordered_map<MHD_Connection*, Conn> conns;
  std::thread reaper;
  std::condition_variable reaper_cv;  // with work_mu: wakes the reaper at stop

  // Deferred work.
  std::mutex work_mu;
  std::condition_variable work_cv;
  std::deque<std::function<void()>> jobs;
  std::vector<std::thread> workers;
  std::atomic<bool> stopping{false};  // set under work_mu

  std::atomic<unsigned> large_in_flight{0};
  // Suspended by defer(), not yet back in on_access(): MHD must not be stopped before they are.
  std::atomic<unsigned> suspended{0};
  std::shared_ptr<ServerCounters> counters = std::make_shared<ServerCounters>();

  // One request's state (MHD's per-request pointer).
  struct RequestState {
    std::mutex mu;
    std::optional<Response> ready;  // set by a worker before it resumes the connection
    bool suspended = false;         // counted in Impl::suspended (I/O thread only)
    bool handled = false;           // the route has been asked (I/O thread only)
  };
  void resumed(RequestState* st) {
    if (st->suspended) {
      st->suspended = false;
      --suspended;
    }
  }

  static MHD_Result on_access(void* cls, MHD_Connection* c, const char* url, const char* method,
                              const char*, const char*, size_t* upload_size, void** req_cls);
  static void on_completed(void* cls, MHD_Connection*, void** req_cls,
                           MHD_RequestTerminationCode);
  static void on_connection(void* cls, MHD_Connection* c, void**,
                            MHD_ConnectionNotificationCode code);

  Request request(MHD_Connection* c, const char* url, const char* method) const;
  MHD_Result queue(MHD_Connection* c, Response r);
  bool defer(MHD_Connection* c, RequestState* st, Deferred work);
  void reap();
  void work();
  void start_daemon(int family);
};

Request Server::Impl::request(MHD_Connection* c, const char* url, const char* method) const {
  Request r;
  r.method = method ? method : "";
  r.path = url ? url : "";
  r.client = client_address(c);
  MHD_get_connection_values(c, MHD_HEADER_KIND, &collect, &r.headers);
  MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, &collect_args, &r.query);
  return r;
}

// Every response closes its connection; its body pieces are sent without a copy and released
// when MHD is done with them.
MHD_Result Server::Impl::queue(MHD_Connection* c, Response r) {
  const std::size_t size = r.size();
  const bool large = size >= kLargeBody;
  if (large && large_in_flight.fetch_add(1) >= opt.max_large_responses) {
    large_in_flight.fetch_sub(1);
    ++counters->busy;
    return queue(c, Response::text(503, "busy: too many large responses in flight; retry")
                        .with_header("Retry-After", "1"));
  }
  struct Held {
    std::vector<std::shared_ptr<const std::string>> pieces;
    std::atomic<unsigned>* large = nullptr;
  };
  auto* held = new Held{std::move(r.body), large ? &large_in_flight : nullptr};
  std::vector<MHD_IoVec> iov;
  for (const auto& p : held->pieces) {
    if (p && !p->empty()) iov.push_back({p->data(), p->size()});
  }
  MHD_Response* resp = MHD_create_response_from_iovec(
      iov.data(), static_cast<unsigned>(iov.size()),
      [](void* cls) {
        auto* h = static_cast<Held*>(cls);
        if (h->large) h->large->fetch_sub(1);
        delete h;
      },
      held);
  if (!resp) return MHD_NO;
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r.content_type.c_str());
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
  MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
  for (const auto& [name, value] : r.headers) {
    MHD_add_response_header(resp, name.c_str(), value.c_str());
  }
  const MHD_Result ok = MHD_queue_response(c, static_cast<unsigned>(r.status), resp);
  MHD_destroy_response(resp);
  ++counters->requests;
  return ok;
}

// False when the server is stopping: the workers may be gone, so nothing may be suspended.
bool Server::Impl::defer(MHD_Connection* c, RequestState* st, Deferred work) {
  {
    std::lock_guard lock(work_mu);
    if (stopping) return false;
    st->suspended = true;
    ++suspended;
    MHD_suspend_connection(c);
    jobs.push_back([this, c, st, work = std::move(work)] {
      Response r;
      try {
        r = stopping ? Response::text(503, "facilityd is stopping") : work();
      } catch (const std::exception& e) {
        spdlog::warn("http: {}", e.what());
        r = Response::text(500, e.what());
      }
      {
        std::lock_guard l(st->mu);
        st->ready = std::move(r);
      }
      MHD_resume_connection(c);  // `st` belongs to MHD again from here
    });
  }
  work_cv.notify_one();
  return true;
}

MHD_Result Server::Impl::on_access(void* cls, MHD_Connection* c, const char* url,
                                   const char* method, const char*, const char*,
                                   size_t* upload_size, void** req_cls) {
  auto* s = static_cast<Impl*>(cls);
  auto* st = static_cast<RequestState*>(*req_cls);
  if (!st) {
    // The head is complete: the header deadline is met; from here the idle timeout applies.
    st = new RequestState;
    *req_cls = st;
    MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT,
                              static_cast<unsigned>(s->opt.idle_timeout.count()));
    std::lock_guard lock(s->conn_mu);
    if (auto it = s->conns.find(c); it != s->conns.end()) it->second.head_done = true;
  }
  if (*upload_size != 0) {  // no route takes a body: read and drop it
    *upload_size = 0;
    return MHD_YES;
  }
  {
    std::lock_guard lock(st->mu);
    if (st->ready) {  // resumed after Deferred work
      s->resumed(st);
      Response r = std::move(*st->ready);
      st->ready.reset();
      return s->queue(c, std::move(r));
    }
  }
  // Asked again for a request whose answer could not be queued (its connection broke): never
  // run the route twice; close it.
  if (st->handled) return MHD_NO;
  st->handled = true;
  Reply reply;
  try {
    reply = s->handler(s->request(c, url, method));
  } catch (const std::exception& e) {
    spdlog::warn("http {}: {}", url ? url : "?", e.what());
    reply = Response::text(500, e.what());
  }
  if (auto* r = std::get_if<Response>(&reply)) return s->queue(c, std::move(*r));
  if (!s->defer(c, st, std::move(std::get<Deferred>(reply)))) {
    return s->queue(c, Response::text(503, "facilityd is stopping"));
  }
  return MHD_YES;
}

void Server::Impl::on_completed(void* cls, MHD_Connection*, void** req_cls,
                                MHD_RequestTerminationCode) {
  auto* st = static_cast<RequestState*>(*req_cls);
  if (st) static_cast<Impl*>(cls)->resumed(st);  // resumed onto a connection that had closed
  delete st;
  *req_cls = nullptr;
}

void Server::Impl::on_connection(void* cls, MHD_Connection* c, void**,
                                 MHD_ConnectionNotificationCode code) {
  auto* s = static_cast<Impl*>(cls);
  if (code == MHD_CONNECTION_NOTIFY_STARTED) {
    ++s->counters->connections;
    ++s->counters->open_connections;
    // Until the head is complete, the (inactivity) timeout is the header deadline; the reaper
    // enforces the same deadline in total.
    MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT,
                              static_cast<unsigned>(s->opt.header_timeout.count()));
    const MHD_ConnectionInfo* ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    std::lock_guard lock(s->conn_mu);
    s->conns[c] = Conn{ci ? ci->connect_fd : -1, SteadyClock::now()};
  } else {
    // MHD calls this before it closes the descriptor, so the reaper (under the same lock)
    // never shuts down a descriptor that was reused for another connection.
    std::lock_guard lock(s->conn_mu);
    if (s->conns.erase(c)) --s->counters->open_connections;
  }
}

// The total deadlines: a request head within header_timeout, a connection within
// max_connection_age. shutdown(), never close(): the descriptor is MHD's.
void Server::Impl::reap() {
  std::unique_lock lock(work_mu);
  while (!reaper_cv.wait_for(lock, std::chrono::milliseconds(250),
                             [this] { return stopping.load(); })) {
    lock.unlock();
    const auto now = SteadyClock::now();
    {
      std::lock_guard cl(conn_mu);
      for (auto& [c, st] : conns) {
        if (st.shut || st.fd < 0) continue;
        const auto age = now - st.started;
        if (!st.head_done && age > opt.header_timeout) {
          ++counters->header_timeouts;
        } else if (age > opt.max_connection_age) {
          ++counters->age_limit;
        } else {
          continue;
        }
        ::shutdown(st.fd, SHUT_RDWR);
        st.shut = true;
      }
    }
    lock.lock();
  }
}

void Server::Impl::work() {
  std::unique_lock lock(work_mu);
  while (true) {
    work_cv.wait(lock, [this] { return stopping || !jobs.empty(); });
    if (jobs.empty()) return;  // stopping, and nothing left: every suspended request answered
    auto job = std::move(jobs.front());
    jobs.pop_front();
    lock.unlock();
    job();
    lock.lock();
  }
}

void Server::Impl::start_daemon(int family) {
  unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
  if (family == AF_INET6) flags |= MHD_USE_IPv6;
  MHD_OptionItem ops[] = {
      // The logger first: MHD reports problems with the options after it through it.
      {MHD_OPTION_EXTERNAL_LOGGER, reinterpret_cast<intptr_t>(&mhd_log), nullptr},
      {MHD_OPTION_LISTEN_SOCKET, listen_fd, nullptr},
      {MHD_OPTION_CONNECTION_LIMIT, static_cast<intptr_t>(opt.max_connections), nullptr},
      {MHD_OPTION_PER_IP_CONNECTION_LIMIT, static_cast<intptr_t>(opt.max_per_client), nullptr},
      {MHD_OPTION_CONNECTION_TIMEOUT, static_cast<intptr_t>(opt.idle_timeout.count()), nullptr},
      {MHD_OPTION_NOTIFY_CONNECTION, reinterpret_cast<intptr_t>(&on_connection), this},
      {MHD_OPTION_NOTIFY_COMPLETED, reinterpret_cast<intptr_t>(&on_completed), this},
      {MHD_OPTION_END, 0, nullptr},
  };
  daemon = MHD_start_daemon(flags, 0, nullptr, nullptr, &on_access, this, MHD_OPTION_ARRAY, ops,
                            MHD_OPTION_END);
}

Server::Server(ServerOptions options, Handler handler) : impl_(std::make_unique<Impl>()) {
  Impl& s = *impl_;
  s.opt = std::move(options);
  s.handler = std::move(handler);
  int family = AF_INET;
  s.listen_fd = open_listener(s.opt.listen, family);
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  ::getsockname(s.listen_fd, reinterpret_cast<sockaddr*>(&addr), &len);
  s.port = ntohs(addr.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port
                                             : reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  s.start_daemon(family);
  if (!s.daemon) {
    ::close(s.listen_fd);
    throw std::runtime_error("cannot serve HTTP on " + s.opt.listen +
                             ": libmicrohttpd did not start (see the log at debug level)");
  }
  for (unsigned i = 0; i < std::max(1u, s.opt.workers); ++i) {
    s.workers.emplace_back([&s] { s.work(); });
  }
  s.reaper = std::thread([&s] { s.reap(); });
}

Server::~Server() {
  Impl& s = *impl_;
  {
    std::lock_guard lock(s.work_mu);
    s.stopping = true;
  }
  s.work_cv.notify_all();
  s.reaper_cv.notify_all();
  // Workers answer what is queued (503 "stopping") and resume those connections: MHD must not
  // be stopped with a suspended connection.
  for (auto& w : s.workers) w.join();
  s.reaper.join();
  // MHD_resume_connection() only asks the I/O thread to resume; it aborts the process if it is
  // stopped while a connection is still suspended, so wait until each one is back (a moment).
  for (int i = 0; i < 500 && s.suspended.load() > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  MHD_stop_daemon(s.daemon);  // closes the listening socket too
}

int Server::port() const { return impl_->port; }

ServerStats Server::stats() const { return impl_->counters->read(); }

std::shared_ptr<const ServerCounters> Server::counters() const { return impl_->counters; }

ServerStats ServerCounters::read() const {
  ServerStats st;
  st.connections = connections.load();
  st.open_connections = open_connections.load();
  st.header_timeouts = header_timeouts.load();
  st.age_limit = age_limit.load();
  st.busy = busy.load();
  st.requests = requests.load();
  return st;
}

}  // namespace facility::http
