// A minimal HTTP/1.1 client on a raw loopback socket for the tests of the listener: one request,
// the whole answer, the connection closed. Optionally from another loopback address
// (127.0.0.2, 127.10.0.1, ...), which Linux routes like 127.0.0.1.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <string>

namespace facility::testing {

struct HttpResult {
  int status = 0;  // 0: no answer (connection refused, reset or closed)
  std::string head, body;
};

// A connected socket to 127.0.0.1:port, from `from` (an IPv4 loopback address); -1 on failure.
inline int connect_loopback(int port, const char* from = nullptr) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (from) {
    sockaddr_in local{};
    local.sin_family = AF_INET;
    ::inet_pton(AF_INET, from, &local.sin_addr);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) {
      ::close(fd);
      return -1;
    }
  }
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Reads until the peer closes; splits head and body.
inline HttpResult read_answer(int fd) {
  HttpResult r;
  std::string all;
  char buf[65536];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) all.append(buf, std::size_t(n));
  const auto split = all.find("\r\n\r\n");
  r.head = all.substr(0, split);
  r.body = split == std::string::npos ? "" : all.substr(split + 4);
  if (all.size() > 12 && all.rfind("HTTP/1.", 0) == 0) r.status = std::stoi(all.substr(9, 3));
  return r;
}

inline HttpResult http(int port, const std::string& path, const std::string& extra_headers = "",
                       const std::string& method = "GET", const char* from = nullptr) {
  const int fd = connect_loopback(port, from);
  if (fd < 0) return {};
  const std::string req = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
                          extra_headers + "Connection: close\r\n\r\n";
  (void)!::write(fd, req.data(), req.size());
  HttpResult r = read_answer(fd);
  ::close(fd);
  return r;
}

}  // namespace facility::testing
