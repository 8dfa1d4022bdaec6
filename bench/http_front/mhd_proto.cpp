// Prototype: libmicrohttpd 0.9.75 (Debian 12) as facilityd's HTTP front door.
//
//   ./mhd_proto --listen 127.0.0.1:18082 --mb 20 [--pool 0] [--limit 256] [--per-ip 64]
//               [--timeout 30] [--hdr-timeout 5] [--hdr-deadline 5] [--max-age 120]
//               [--auth user:pass] [--tpc 1]
//
// Thread model: one MHD thread with its own epoll (MHD_USE_EPOLL_INTERNAL_THREAD, --pool 0), or
// a pool of N epoll threads (--pool N), or thread-per-connection (--tpc 1, MHD_USE_POLL per
// thread). Reports run off the event thread: suspend the connection, compute on a worker,
// resume (MHD_ALLOW_SUSPEND_RESUME).
//
// Limits and timeouts:
//   MHD_OPTION_CONNECTION_LIMIT      --limit    total connections (extra ones are accepted and closed)
//   MHD_OPTION_PER_IP_CONNECTION_LIMIT --per-ip connections per client address
//   MHD_OPTION_CONNECTION_TIMEOUT    --timeout  inactivity (s) once the request is in (sending the body)
//   per-connection option set in NOTIFY_STARTED --hdr-timeout inactivity (s) while the request
//                                    head is being received (MHD's timeout is inactivity-based:
//                                    every received byte resets it)
//   reaper thread                    --hdr-deadline  total time (s) to receive the request head,
//                                    --max-age total connection age (s); shuts the socket down
//                                    (shutdown(2), never close: MHD still owns the fd; the
//                                    map entry is removed in NOTIFY_CLOSED, which MHD calls before
//                                    it closes the fd, under the same mutex -> no fd-reuse race)
//
// Routes: /metrics (GET/HEAD; gzip from a per-snapshot cached body when Accept-Encoding has gzip),
// / (HTML), /reports/<site> (suspend + worker thread), /api/v1/<x> (JSON), else 404; 405 for
// other methods; basic auth (constant-time compare) on every route.
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "body.h"

using Clock = std::chrono::steady_clock;

namespace {

struct Snapshot {
  std::string text;
  std::string gzip;  // compressed once per snapshot, shared by every scrape that meets it
  // --iovec: the facility part as raw deflate ending in Z_FULL_FLUSH (byte-aligned, not final),
  // with its CRC-32; a scrape appends the live part's raw deflate (Z_FINISH) and the trailer:
  // one gzip member, like pigz joins its blocks.
  std::string deflate_flushed;
  uLong crc = 0;
};

// Raw deflate of `in` ending with `flush` (Z_FULL_FLUSH: more may follow; Z_FINISH: final).
std::string raw_deflate(const std::string& in, int level, int flush) {
  z_stream z{};
  deflateInit2(&z, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, in.size()) + 16, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, flush);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}
bool g_iovec = false;  // --iovec 1: body = facility part (per snapshot) + live part (per scrape)
std::shared_ptr<const Snapshot> g_snap;
std::string g_auth_header;  // "Basic base64(user:pass)" or empty
int g_hdr_deadline = 0, g_max_age = 0, g_hdr_timeout = 0, g_timeout = 30;

struct ConnState {
  int fd;
  Clock::time_point start;
  bool head_done = false;
  bool shut = false;
};
std::mutex g_mu;
std::map<MHD_Connection*, ConnState> g_conns;
std::atomic<unsigned long> g_reaped_head{0}, g_reaped_age{0}, g_started{0};

std::string gzip(const std::string& in, int level) {
  z_stream z{};
  deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, in.size()), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

std::string b64(const std::string& s) {
  static const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string o;
  unsigned v = 0;
  int bits = 0;
  for (unsigned char c : s) {
    v = (v << 8) | c;
    bits += 8;
    while (bits >= 6) o += a[(v >> (bits -= 6)) & 63];
  }
  if (bits) o += a[(v << (6 - bits)) & 63];
  while (o.size() % 4) o += '=';
  return o;
}

bool same(const std::string& a, const char* b) {
  const std::size_t bl = b ? std::strlen(b) : 0;
  unsigned char d = a.size() == bl ? 0 : 1;
  for (std::size_t i = 0; i < std::max(a.size(), bl); ++i)
    d |= static_cast<unsigned char>((i < a.size() ? a[i] : 0) ^ (i < bl ? b[i] : 0));
  return d == 0;
}

MHD_Result send_text(MHD_Connection* c, unsigned status, const std::string& body,
                     const char* type = "text/plain; charset=utf-8",
                     const char* extra_name = nullptr, const char* extra_value = nullptr) {
  MHD_Response* r =
      MHD_create_response_from_buffer(body.size(), const_cast<char*>(body.data()), MHD_RESPMEM_MUST_COPY);
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
  MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
  if (extra_name) MHD_add_response_header(r, extra_name, extra_value);
  MHD_Result ret = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return ret;
}

// The response keeps its snapshot alive (shared_ptr in the free callback's closure): no copy
// of a 20 MB body per scrape.
void release_snapshot(void* cls) { delete static_cast<std::shared_ptr<const Snapshot>*>(cls); }

struct ReportJob {
  std::thread worker;
  std::string result;
  bool done = false;
};

MHD_Result handle(void*, MHD_Connection* c, const char* url, const char* method, const char*,
                  const char*, size_t* upload_size, void** con_cls) {
  if (*con_cls == nullptr) {  // first call for this request: the head is complete
    if (g_hdr_timeout > 0)
      MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, (unsigned)g_timeout);
    std::lock_guard lock(g_mu);
    auto it = g_conns.find(c);
    if (it != g_conns.end()) it->second.head_done = true;
  }
  if (*upload_size != 0) {  // we accept no bodies; discard
    *upload_size = 0;
    return MHD_YES;
  }
  if (!g_auth_header.empty()) {
    const char* h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!same(g_auth_header, h))
      return send_text(c, MHD_HTTP_UNAUTHORIZED, "authentication required\n",
                       "text/plain; charset=utf-8", MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                       "Basic realm=\"facilityd\", charset=\"UTF-8\"");
  }
  const std::string u = url;
  const bool get = !std::strcmp(method, "GET"), head = !std::strcmp(method, "HEAD");
  if (!get && !head)
    return send_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD\n",
                     "text/plain; charset=utf-8", MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
  if (u == "/metrics" && g_iovec) {
    // facilityd's shape: the facility part is rendered (and gzipped) once per snapshot and
    // shared; the live part is rendered per scrape. Zero-copy scatter list; gzip as two
    // members (RFC 1952 allows concatenated members; Go's gzip.Reader reads them as one).
    struct Keep {
      std::shared_ptr<const Snapshot> snap;
      std::string live, live_gz;
      char hdr[10] = {'\x1f', '\x8b', 8, 0, 0, 0, 0, 0, 0, 3};  // gzip header, OS = Unix
    };
    auto* k = new Keep{g_snap, "# live part\nfacility_scrapes_total " + std::to_string(g_started.load()) + "\n", ""};
    const char* ae = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT_ENCODING);
    const bool gz = ae && std::strstr(ae, "gzip") && !k->snap->deflate_flushed.empty();
    MHD_Response* r;
    if (gz) {
      k->live_gz = raw_deflate(k->live, 1, Z_FINISH);
      const uLong crc_live = crc32(0L, reinterpret_cast<const Bytef*>(k->live.data()), static_cast<uInt>(k->live.size()));
      const uLong crc = crc32_combine(k->snap->crc, crc_live, static_cast<z_off_t>(k->live.size()));
      const uint32_t isize = static_cast<uint32_t>(k->snap->text.size() + k->live.size());
      for (int i = 0; i < 4; ++i) k->live_gz += static_cast<char>((crc >> (8 * i)) & 0xff);
      for (int i = 0; i < 4; ++i) k->live_gz += static_cast<char>((isize >> (8 * i)) & 0xff);
      MHD_IoVec iov[3] = {{k->hdr, sizeof k->hdr},
                          {k->snap->deflate_flushed.data(), k->snap->deflate_flushed.size()},
                          {k->live_gz.data(), k->live_gz.size()}};
      r = MHD_create_response_from_iovec(iov, 3, [](void* p) { delete static_cast<Keep*>(p); }, k);
    } else {
      MHD_IoVec iov[2] = {{k->snap->text.data(), k->snap->text.size()}, {k->live.data(), k->live.size()}};
      r = MHD_create_response_from_iovec(iov, 2, [](void* p) { delete static_cast<Keep*>(p); }, k);
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8");
    MHD_add_response_header(r, MHD_HTTP_HEADER_VARY, "Accept-Encoding");
    if (gz) MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
    MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
  }
  if (u == "/metrics") {
    auto* keep = new std::shared_ptr<const Snapshot>(g_snap);
    const char* ae = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT_ENCODING);
    const bool gz = ae && std::strstr(ae, "gzip") && !(*keep)->gzip.empty();
    const std::string& b = gz ? (*keep)->gzip : (*keep)->text;
    MHD_Response* r = MHD_create_response_from_buffer_with_free_callback_cls(
        b.size(), const_cast<char*>(b.data()), &release_snapshot, keep);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(r, MHD_HTTP_HEADER_VARY, "Accept-Encoding");
    if (gz) MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
    MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
  }
  if (u == "/")
    return send_text(c, MHD_HTTP_OK,
                     "<!doctype html><title>facilityd</title><a href=\"/metrics\">metrics</a>\n",
                     "text/html; charset=utf-8");
  if (u.rfind("/api/v1/", 0) == 0)
    return send_text(c, MHD_HTTP_OK, "{\"status\":\"ok\",\"path\":\"" + u.substr(8) + "\"}\n",
                     "application/json");
  if (u.rfind("/reports/", 0) == 0) {
    // A report takes seconds: never on the event thread. First call: start the job and
    // suspend; the worker resumes the connection; the second call sends the result.
    auto* job = static_cast<ReportJob*>(*con_cls);
    if (!job) {
      job = new ReportJob;
      *con_cls = job;
      MHD_suspend_connection(c);
      const std::string site = u.substr(9);
      job->worker = std::thread([c, job, site] {
        std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // "compute"
        job->result = "report for " + site + "\n";
        job->done = true;
        MHD_resume_connection(c);
      });
      return MHD_YES;
    }
    return send_text(c, MHD_HTTP_OK, job->result);
  }
  return send_text(c, MHD_HTTP_NOT_FOUND, "not found\n");
}

void completed(void*, MHD_Connection* c, void** con_cls, MHD_RequestTerminationCode) {
  if (auto* job = static_cast<ReportJob*>(*con_cls)) {
    if (job->worker.joinable()) job->worker.join();
    delete job;
    *con_cls = nullptr;
  }
  // Keep-alive: the next request head gets a fresh deadline and the head timeout again.
  if (g_hdr_timeout > 0)
    MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, (unsigned)g_hdr_timeout);
  std::lock_guard lock(g_mu);
  auto it = g_conns.find(c);
  if (it != g_conns.end()) {
    it->second.start = Clock::now();
    it->second.head_done = false;
  }
}

void notify(void*, MHD_Connection* c, void**, MHD_ConnectionNotificationCode code) {
  if (code == MHD_CONNECTION_NOTIFY_STARTED) {
    g_started++;
    if (g_hdr_timeout > 0)  // inactivity limit while the head arrives
      MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, (unsigned)g_hdr_timeout);
    const MHD_ConnectionInfo* ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    std::lock_guard lock(g_mu);
    g_conns[c] = ConnState{ci ? ci->connect_fd : -1, Clock::now()};
  } else {
    std::lock_guard lock(g_mu);
    g_conns.erase(c);
  }
}

void reaper(std::atomic<bool>* stop) {
  while (!*stop) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    const auto now = Clock::now();
    std::lock_guard lock(g_mu);
    for (auto& [c, st] : g_conns) {
      if (st.shut || st.fd < 0) continue;
      const double age = std::chrono::duration<double>(now - st.start).count();
      if (g_hdr_deadline > 0 && !st.head_done && age > g_hdr_deadline) {
        ::shutdown(st.fd, SHUT_RDWR);
        st.shut = true;
        g_reaped_head++;
      } else if (g_max_age > 0 && age > g_max_age) {
        ::shutdown(st.fd, SHUT_RDWR);
        st.shut = true;
        g_reaped_age++;
      }
    }
  }
}

void mhd_log(void*, const char* fmt, va_list ap) {
  std::fputs("mhd: ", stderr);
  std::vfprintf(stderr, fmt, ap);
}

// Our own listening socket: exact errno for a taken port, IPv4 or IPv6, port 0 allowed.
int make_listener(const std::string& listen, std::string& err) {
  const auto colon = listen.rfind(':');
  std::string host = listen.substr(0, colon);
  const int port = std::atoi(listen.c_str() + colon + 1);
  const bool v6 = !host.empty() && host.front() == '[';
  if (v6) host = host.substr(1, host.size() - 2);
  int fd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  int rc;
  if (v6) {
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET6, host.c_str(), &a.sin6_addr) != 1) { err = "bad IPv6 address " + host; ::close(fd); return -1; }
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    rc = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  } else {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET, host.c_str(), &a.sin_addr) != 1) { err = "bad IPv4 address " + host; ::close(fd); return -1; }
    rc = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  }
  if (rc != 0 || ::listen(fd, 1024) != 0) {
    err = std::strerror(errno);
    if (errno == EADDRINUSE) err += " (another process is listening on this port)";
    ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

int main(int argc, char** argv) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);  // before MHD starts threads

  const std::string listen = arg_str(argc, argv, "--listen", "127.0.0.1:18082");
  const double mb = arg_mb(argc, argv, "--mb", 20);
  const int pool = static_cast<int>(arg_mb(argc, argv, "--pool", 0));
  const bool tpc = arg_mb(argc, argv, "--tpc", 0) != 0;
  const unsigned limit = static_cast<unsigned>(arg_mb(argc, argv, "--limit", 256));
  const unsigned per_ip = static_cast<unsigned>(arg_mb(argc, argv, "--per-ip", 0));
  g_timeout = static_cast<int>(arg_mb(argc, argv, "--timeout", 30));
  g_hdr_timeout = static_cast<int>(arg_mb(argc, argv, "--hdr-timeout", 0));
  g_hdr_deadline = static_cast<int>(arg_mb(argc, argv, "--hdr-deadline", 0));
  g_max_age = static_cast<int>(arg_mb(argc, argv, "--max-age", 0));
  const int gzip_level = static_cast<int>(arg_mb(argc, argv, "--gzip-level", 1));
  const std::string auth = arg_str(argc, argv, "--auth", "");
  g_iovec = arg_mb(argc, argv, "--iovec", 0) != 0;
  if (!auth.empty()) g_auth_header = "Basic " + b64(auth);

  auto snap = std::make_shared<Snapshot>();
  snap->text = make_body(mb);
  if (gzip_level > 0) {
    for (int lvl : {1, 6}) {
      const auto t0 = Clock::now();
      std::string z = gzip(snap->text, lvl);
      const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
      std::cerr << "mhd_proto: gzip level " << lvl << ": " << snap->text.size() << " -> " << z.size()
                << " bytes in " << ms << " ms\n";
      if (lvl == gzip_level) snap->gzip = std::move(z);
    }
  }
  if (g_iovec && gzip_level > 0) {
    snap->deflate_flushed = raw_deflate(snap->text, gzip_level, Z_FULL_FLUSH);
    snap->crc = crc32(0L, reinterpret_cast<const Bytef*>(snap->text.data()), static_cast<uInt>(snap->text.size()));
  }
  g_snap = snap;

  std::string err;
  const int lfd = make_listener(listen, err);
  if (lfd < 0) {
    std::cerr << "mhd_proto: cannot listen on " << listen << ": " << err << "\n";
    return 2;
  }
  unsigned flags = MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
  flags |= tpc ? (MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL)
               : MHD_USE_EPOLL_INTERNAL_THREAD;
  MHD_OptionItem ops[16];
  int n = 0;
  // The logger must be the first option, or MHD logs the earlier options' errors itself.
  ops[n++] = {MHD_OPTION_EXTERNAL_LOGGER, reinterpret_cast<intptr_t>(&mhd_log), nullptr};
  ops[n++] = {MHD_OPTION_LISTEN_SOCKET, lfd, nullptr};
  ops[n++] = {MHD_OPTION_CONNECTION_LIMIT, static_cast<intptr_t>(limit), nullptr};
  if (per_ip) ops[n++] = {MHD_OPTION_PER_IP_CONNECTION_LIMIT, static_cast<intptr_t>(per_ip), nullptr};
  ops[n++] = {MHD_OPTION_CONNECTION_TIMEOUT, g_timeout, nullptr};
  ops[n++] = {MHD_OPTION_CONNECTION_MEMORY_LIMIT, 32 * 1024, nullptr};
  ops[n++] = {MHD_OPTION_NOTIFY_CONNECTION, reinterpret_cast<intptr_t>(&notify), nullptr};
  ops[n++] = {MHD_OPTION_NOTIFY_COMPLETED, reinterpret_cast<intptr_t>(&completed), nullptr};
  if (pool > 0 && !tpc) ops[n++] = {MHD_OPTION_THREAD_POOL_SIZE, pool, nullptr};
  ops[n++] = {MHD_OPTION_END, 0, nullptr};
  MHD_Daemon* d = MHD_start_daemon(flags, 0, nullptr, nullptr, &handle, nullptr,
                                   MHD_OPTION_ARRAY, ops, MHD_OPTION_END);
  if (!d) {
    std::cerr << "mhd_proto: MHD_start_daemon failed\n";
    return 2;
  }
  const MHD_DaemonInfo* di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
  std::cerr << "mhd_proto: listening on " << listen << " (port " << (di ? di->port : 0) << ") body "
            << snap->text.size() << " bytes, pool " << pool << (tpc ? " thread-per-connection" : " epoll")
            << ", limit " << limit << ", per-ip " << per_ip << ", timeout " << g_timeout
            << " s, head timeout " << g_hdr_timeout << " s, head deadline " << g_hdr_deadline
            << " s, max age " << g_max_age << " s\n";
  std::atomic<bool> stop{false};
  std::thread reap(reaper, &stop);
  sigdelset(&set, SIGPIPE);
  int sig;
  sigwait(&set, &sig);
  stop = true;
  reap.join();
  std::cerr << "mhd_proto: connections " << g_started << ", reaped (head deadline) " << g_reaped_head
            << ", reaped (max age) " << g_reaped_age << "\n";
  MHD_stop_daemon(d);
  return 0;
}
