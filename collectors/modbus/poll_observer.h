// What the Modbus pollers report, and to whom.
//
// Thread-safety: methods are called on a poller's own thread (the engine's I/O thread or a serial
// line's thread); an implementation shared by several pollers must be thread-safe.
#pragma once

#include <cstddef>
#include <string>

#include "collectors/modbus/device_poll.h"

namespace facility::modbus {

class PollObserver {
 public:
  virtual ~PollObserver() = default;
  // A device's poll cycle is over (successfully or not).
  virtual void on_result(PollResult&& result) = 0;
  // One request's outcome (or a poll that could not send any request: function 0).
  virtual void on_request(const RequestEvent& event) = 0;
  // A device's scheduled poll was skipped because its previous one had not finished.
  virtual void on_overrun(std::size_t device_index) = 0;
  // An endpoint's connection came up (up = true), or went down / failed to open.
  virtual void on_connection(std::size_t endpoint_index, bool up) = 0;
  // Bytes received on an endpoint that belong to no reply: after a complete reply (junk, or
  // the reply sent twice), a reply to an earlier request, or bytes while nothing was asked.
  // They were dropped and the stream resynchronised; the reply, if any, was used.
  virtual void on_discarded(std::size_t endpoint_index, std::size_t bytes) {
    (void)endpoint_index, (void)bytes;
  }
  // An endpoint became unreachable -- a connection (for a serial line: the port) could not be
  // opened, for `reason` -- or reachable again after that. Once per transition; connections
  // that a device closes after a reply are not transitions, nor is the first connection.
  virtual void on_reachability(std::size_t endpoint_index, bool reachable,
                               const std::string& reason) {
    (void)endpoint_index, (void)reachable, (void)reason;
  }
};

}  // namespace facility::modbus
