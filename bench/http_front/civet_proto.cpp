// Prototype: prometheus-cpp 1.0.1 Exposer (civetweb 1.15), serving /metrics from civetweb's
// begin_request callback exactly as daemon/metrics_http.cpp does (mg_printf + mg_write).
//   ./civet_proto --listen 127.0.0.1:18081 --mb 20                       # = Exposer(listen, 4, cb), today's daemon
//   ./civet_proto --listen 127.0.0.1:18081 --mb 20 --opt num_threads=128 --opt request_timeout_ms=2000 ...
#include <CivetServer.h>
#include <civetweb.h>
#include <prometheus/exposer.h>

#include <csignal>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "body.h"

static std::shared_ptr<const std::string> g_body;

static int begin_request(mg_connection* conn) {
  const mg_request_info* ri = mg_get_request_info(conn);
  const std::string uri = ri->local_uri ? ri->local_uri : "";
  if (uri != "/metrics") return 0;  // civetweb: 404
  auto body = g_body;
  mg_printf(conn,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
            "Content-Length: %zu\r\nConnection: close\r\n\r\n",
            body->size());
  if (std::strcmp(ri->request_method, "HEAD") != 0) mg_write(conn, body->data(), body->size());
  return 200;
}

int main(int argc, char** argv) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);  // before civetweb starts threads
  g_body = std::make_shared<const std::string>(make_body(arg_mb(argc, argv, "--mb", 20)));
  const std::string listen = arg_str(argc, argv, "--listen", "127.0.0.1:18081");
  std::vector<std::string> opts;
  for (int i = 1; i + 1 < argc; ++i)
    if (std::string(argv[i]) == "--opt") {
      std::string kv = argv[i + 1];
      auto eq = kv.find('=');
      opts.push_back(kv.substr(0, eq));
      opts.push_back(kv.substr(eq + 1));
    }
  static CivetCallbacks cb;
  cb.begin_request = &begin_request;
  std::unique_ptr<prometheus::Exposer> ex;
  try {
    if (opts.empty()) {
      ex = std::make_unique<prometheus::Exposer>(listen, 4, &cb);
    } else {
      std::vector<std::string> o = {"listening_ports", listen};
      o.insert(o.end(), opts.begin(), opts.end());
      ex = std::make_unique<prometheus::Exposer>(o, &cb);
    }
  } catch (const std::exception& e) {
    std::cerr << "civet_proto: cannot listen on " << listen << ": " << e.what() << "\n";
    return 2;
  }
  std::cerr << "civet_proto: listening on " << listen << " body " << g_body->size() << " bytes\n";
  int sig;
  sigwait(&set, &sig);
  return 0;
}
