// Resolver: host names of Modbus endpoints, resolved off the poll engine's thread.
//
// getaddrinfo() blocks, for seconds per name when the DNS server is unreachable (a common boot
// ordering problem). The engine must neither stall its other endpoints nor delay start-up for
// that, so names go to this resolver's own thread, one at a time, and each answer is handed
// back through an eventfd the engine waits on with its sockets. IPv4 literals never come here.
//
// The thread and the eventfd live in a shared state: stop() does not wait for a getaddrinfo()
// that may hang; the thread finishes it on its own and then releases the state.
//
// Thread-safety: request(), take() and fd() may be called from any thread.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace facility::modbus {

struct ResolvedAddress {
  sockaddr_storage addr{};
  socklen_t len = 0;    // 0: not resolved
  std::string error;    // when len == 0
};

// The lookup itself (injectable for tests); default: getaddrinfo, IPv4, TCP.
using ResolveFn = std::function<ResolvedAddress(const std::string& host, int port)>;
ResolvedAddress resolve_with_getaddrinfo(const std::string& host, int port);

// An IPv4 literal, or nullopt-like (len 0) for anything else.
ResolvedAddress parse_ipv4(const std::string& host, int port);

class Resolver {
 public:
  explicit Resolver(ResolveFn fn = resolve_with_getaddrinfo);
  ~Resolver();  // stop()
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  // Asks for `host`; the answer comes back through take() with this tag.
  void request(std::size_t tag, std::string host, int port);
  struct Answer {
    std::size_t tag;
    ResolvedAddress address;
  };
  // The answers ready so far (clears the eventfd).
  std::vector<Answer> take();
  int fd() const;  // readable when answers are ready
  void stop();

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace facility::modbus
