// Prototype: cpp-httplib 0.11.4 (Debian 12 libcpp-httplib-dev), blocking thread pool.
//   ./httplib_proto --listen 127.0.0.1:18084 --mb 20 [--threads 8] [--read-timeout 5]
#include <httplib.h>

#include <iostream>
#include <memory>

#include "body.h"

int main(int argc, char** argv) {
  auto body = std::make_shared<const std::string>(make_body(arg_mb(argc, argv, "--mb", 20)));
  const std::string listen = arg_str(argc, argv, "--listen", "127.0.0.1:18084");
  const int threads = static_cast<int>(arg_mb(argc, argv, "--threads", 8));
  const int rt = static_cast<int>(arg_mb(argc, argv, "--read-timeout", 5));
  httplib::Server srv;
  srv.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  srv.set_read_timeout(rt, 0);
  srv.set_write_timeout(rt, 0);
  srv.set_keep_alive_max_count(1);
  srv.Get("/metrics", [body](const httplib::Request&, httplib::Response& res) {
    res.set_content(body->data(), body->size(), "text/plain; version=0.0.4; charset=utf-8");
  });
  const auto colon = listen.rfind(':');
  if (!srv.bind_to_port(listen.substr(0, colon), std::atoi(listen.c_str() + colon + 1))) {
    std::cerr << "httplib_proto: cannot listen on " << listen << "\n";
    return 2;
  }
  std::cerr << "httplib_proto: listening on " << listen << " threads " << threads << "\n";
  srv.listen_after_bind();
}
