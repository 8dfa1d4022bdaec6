#include "daemon/app/http_gate.h"

#include <CivetServer.h>
#include <civetweb.h>
#include <spdlog/spdlog.h>

#include <array>
#include <map>

#include "daemon/reports/http_routes.h"

namespace facility {

struct HttpGate::Impl {
  std::mutex mu;
  std::shared_ptr<const Credentials> auth;  // null or incomplete = open
  std::shared_ptr<const Exposition> exposition;
  std::function<ScrapeSources()> sources;

  int handle(mg_connection* conn, const mg_request_info* ri);
};

namespace {

std::mutex g_mu;
std::map<int, std::shared_ptr<HttpGate::Impl>> g_gates;  // by listening port

std::optional<std::string> base64_decode(std::string_view in) {
  static const auto table = [] {
    std::array<int, 256> t{};
    t.fill(-1);
    const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(a[i])] = i;
    return t;
  }();
  while (!in.empty() && in.back() == '=') in.remove_suffix(1);
  std::string out;
  unsigned acc = 0;
  int bits = 0;
  for (char c : in) {
    const int v = table[static_cast<unsigned char>(c)];
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  return out;
}

// Constant time in the contents (not in the lengths, which a password's length leaks anyway
// through the header size).
bool same(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const std::size_t n = std::max(a.size(), b.size());
  for (std::size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

int send_plain(mg_connection* conn, int status, const char* reason, const std::string& body,
               const std::string& extra_headers = "") {
  mg_printf(conn,
            "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %zu\r\n"
            "Cache-Control: no-store\r\n%sConnection: close\r\n\r\n",
            status, reason, body.size(), extra_headers.c_str());
  mg_write(conn, body.data(), body.size());
  return status;
}

int begin_request(mg_connection* conn) {
  const mg_request_info* ri = mg_get_request_info(conn);
  if (!ri) return 0;
  std::shared_ptr<HttpGate::Impl> impl;
  {
    std::lock_guard lock(g_mu);
    auto it = g_gates.find(ri->server_port);
    if (it != g_gates.end()) impl = it->second;
  }
  // Fail closed: before the gate (and its authentication) is in place, serve nothing.
  if (!impl) return send_plain(conn, 503, "Service Unavailable", "facilityd is starting\n",
                               "Retry-After: 1\r\n");
  try {
    return impl->handle(conn, ri);
  } catch (const std::exception& e) {
    spdlog::warn("http {}: {}", ri->local_uri ? ri->local_uri : "?", e.what());
    return send_plain(conn, 500, "Internal Server Error", std::string(e.what()) + "\n");
  }
}

}  // namespace

bool basic_auth_matches(std::string_view header, const std::string& user,
                        const std::string& password) {
  constexpr std::string_view kScheme = "Basic ";
  if (header.size() <= kScheme.size()) return false;
  // The scheme is case-insensitive (RFC 7617).
  for (std::size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(header[i])) !=
        std::tolower(static_cast<unsigned char>(kScheme[i])))
      return false;
  }
  std::string_view token = header.substr(kScheme.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
  const auto decoded = base64_decode(token);
  if (!decoded) return false;
  const auto colon = decoded->find(':');
  if (colon == std::string::npos) return false;
  const bool u = same(std::string_view(*decoded).substr(0, colon), user);
  const bool p = same(std::string_view(*decoded).substr(colon + 1), password);
  return u && p;
}

int HttpGate::Impl::handle(mg_connection* conn, const mg_request_info* ri) {
  std::shared_ptr<const Credentials> a;
  std::shared_ptr<const Exposition> expo;
  std::function<ScrapeSources()> src;
  {
    std::lock_guard lock(mu);
    a = auth;
    expo = exposition;
    src = sources;
  }
  if (a && a->username && a->password) {
    const char* h = mg_get_header(conn, "Authorization");
    if (!h || !basic_auth_matches(h, *a->username, *a->password)) {
      return send_plain(conn, 401, "Unauthorized", "authentication required\n",
                        "WWW-Authenticate: Basic realm=\"facilityd\", charset=\"UTF-8\"\r\n");
    }
  }
  const std::string uri = ri->local_uri ? ri->local_uri : "";
  if (uri != "/metrics") return HttpRoutes::handle_request(conn);

  const std::string method = ri->request_method ? ri->request_method : "";
  if (method != "GET" && method != "HEAD") {
    return send_plain(conn, 405, "Method Not Allowed", "only GET and HEAD\n",
                      "Allow: GET, HEAD\r\n");
  }
  if (!expo || !src) return send_plain(conn, 503, "Service Unavailable", "no metrics yet\n");
  const Exposition::Body body = expo->render(src());
  mg_printf(conn,
            "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
            "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
            Exposition::kContentType, body.size());
  if (method == "GET") {
    if (body.facility) mg_write(conn, body.facility->data(), body.facility->size());
    mg_write(conn, body.live.data(), body.live.size());
  }
  return 200;
}

const CivetCallbacks* HttpGate::callbacks() {
  static const CivetCallbacks cb = [] {
    CivetCallbacks c;
    c.begin_request = &begin_request;
    return c;
  }();
  return &cb;
}

HttpGate::HttpGate(int port) : port_(port), impl_(std::make_shared<Impl>()) {}

HttpGate::~HttpGate() {
  std::lock_guard lock(g_mu);
  auto it = g_gates.find(port_);
  if (it != g_gates.end() && it->second == impl_) g_gates.erase(it);
}

void HttpGate::set_auth(const Credentials& auth) {
  auto a = std::make_shared<const Credentials>(auth);
  std::lock_guard lock(impl_->mu);
  impl_->auth = std::move(a);
}

void HttpGate::set_metrics(std::shared_ptr<const Exposition> exposition,
                           std::function<ScrapeSources()> sources) {
  std::lock_guard lock(impl_->mu);
  impl_->exposition = std::move(exposition);
  impl_->sources = std::move(sources);
}

void HttpGate::publish() {
  std::lock_guard lock(g_mu);
  g_gates[port_] = impl_;
}

}  // namespace facility
