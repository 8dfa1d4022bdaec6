// HTTP requests and responses as facilityd's routes see them (/metrics, "/", /reports, ...),
// independent of the server library underneath (daemon/http/server.h: libmicrohttpd).
//
// A route answers with a Response at once -- on the server's I/O thread, so it must not block
// (render from memory, never wait on disk or a lock that polling holds) -- or with Deferred
// work, which runs on one of the server's worker threads while the connection waits (a capacity
// report reading SQLite for seconds).
//
// Thread-safety: plain values; a Response's body pieces are immutable and shared.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace facility::http {

struct Request {
  std::string method;  // "GET", "HEAD", ...
  std::string path;    // percent-decoded by the server, not normalised ("/a/../b" stays)
  std::string client;  // the peer's address, for logs
  std::map<std::string, std::string> headers;  // names in lower case
  std::map<std::string, std::string> query;    // decoded; the last of a repeated name

  bool head() const { return method == "HEAD"; }
  // A header by its lower-case name; "" when absent.
  std::string header(std::string_view lower_name) const;
  // A query parameter; "" when absent.
  std::string arg(std::string_view name) const;
};

struct Response {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::vector<std::pair<std::string, std::string>> headers;
  // The body as pieces sent one after the other without a copy (a shared part of /metrics and
  // the part rendered for this scrape); each piece stays alive until it has been sent.
  std::vector<std::shared_ptr<const std::string>> body;

  std::size_t size() const;
  Response& with_header(std::string name, std::string value);
  Response& with_body(std::string text);

  // `message` and a newline, as text/plain.
  static Response text(int status, std::string message);
  static Response of(int status, std::string content_type, std::string body);
};

using Deferred = std::function<Response()>;
using Reply = std::variant<Response, Deferred>;
using Handler = std::function<Reply(const Request&)>;

// Text for HTML element content and attribute values: & < > " ' escaped.
std::string html_escape(std::string_view s);
// One path segment or query value percent-encoded (RFC 3986 unreserved characters kept).
std::string url_encode(std::string_view s);

}  // namespace facility::http
