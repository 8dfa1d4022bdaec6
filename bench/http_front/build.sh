#!/bin/bash
# Builds the prototypes. Packages (Debian 12): prometheus-cpp-dev libcivetweb-dev (today's stack),
# libmicrohttpd-dev zlib1g-dev, libevent-dev, libcpp-httplib-dev; load tools: wrk, curl, python3.
set -e
cd "$(dirname "$0")"
g++ -std=c++20 -O2 -Wall -o civet_proto civet_proto.cpp -lprometheus-cpp-pull -lprometheus-cpp-core -lcivetweb-cpp -lcivetweb -lpthread
g++ -std=c++20 -O2 -Wall -o mhd_proto mhd_proto.cpp -lmicrohttpd -lz -lpthread
g++ -std=c++20 -O2 -Wall -o evhttp_proto evhttp_proto.cpp -levent
g++ -std=c++20 -O2 -Wall -o httplib_proto httplib_proto.cpp -lcpp-httplib -lpthread
