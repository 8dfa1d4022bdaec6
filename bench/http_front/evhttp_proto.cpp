// Prototype: libevent 2.1.12 evhttp (Debian 12 libevent-dev), one event-loop thread.
//   ./evhttp_proto --listen 127.0.0.1:18083 --mb 20 [--timeout 5]
// evhttp_set_timeout: read/write inactivity timeout (every byte resets it). 2.1 has no
// connection limit (evhttp_set_max_connections is 2.2-only) and no per-IP limit.
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include <csignal>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>

#include "body.h"

static std::shared_ptr<const std::string> g_body;

static void cleanup(const void*, size_t, void* cls) {
  delete static_cast<std::shared_ptr<const std::string>*>(cls);
}

static void on_request(evhttp_request* req, void*) {
  const char* uri = evhttp_request_get_uri(req);
  if (std::strncmp(uri, "/metrics", 8) != 0) {
    evhttp_send_error(req, 404, "not found");
    return;
  }
  auto* keep = new std::shared_ptr<const std::string>(g_body);
  evbuffer* out = evbuffer_new();
  evbuffer_add_reference(out, (*keep)->data(), (*keep)->size(), cleanup, keep);  // zero-copy
  evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                    "text/plain; version=0.0.4; charset=utf-8");
  evhttp_send_reply(req, 200, "OK", out);
  evbuffer_free(out);
}

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  g_body = std::make_shared<const std::string>(make_body(arg_mb(argc, argv, "--mb", 20)));
  const std::string listen = arg_str(argc, argv, "--listen", "127.0.0.1:18083");
  const int timeout = static_cast<int>(arg_mb(argc, argv, "--timeout", 5));
  event_base* base = event_base_new();
  evhttp* http = evhttp_new(base);
  evhttp_set_timeout(http, timeout);
  evhttp_set_max_headers_size(http, 16384);
  evhttp_set_gencb(http, on_request, nullptr);
  const auto colon = listen.rfind(':');
  if (!evhttp_bind_socket_with_handle(http, listen.substr(0, colon).c_str(),
                                      static_cast<uint16_t>(std::atoi(listen.c_str() + colon + 1)))) {
    std::cerr << "evhttp_proto: cannot listen on " << listen << "\n";
    return 2;
  }
  event* sig = evsignal_new(base, SIGTERM, [](evutil_socket_t, short, void* b) {
    event_base_loopbreak(static_cast<event_base*>(b)); }, base);
  event_add(sig, nullptr);
  std::cerr << "evhttp_proto: listening on " << listen << " body " << g_body->size() << " bytes, timeout " << timeout << " s\n";
  event_base_dispatch(base);
  return 0;
}
