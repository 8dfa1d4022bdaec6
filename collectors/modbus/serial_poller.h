// SerialLinePoller: the devices on one RS-485 serial line, polled with libmodbus' RTU backend.
//
// Serial lines are few (one thread each is cheap), and libmodbus' RTU code handles what a
// serial line needs (termios, RS-485 inter-frame timing). Requests are sent raw and replies
// are validated by our own frame.h, and the same DevicePoll drives the cycle, so error classes
// and counters are the ones of the TCP engine.
//
// A timeout or a bad frame from one slave does not reopen the port (that would not wake a dead
// slave, and would flap the endpoint's up gauge and reset termios on every dead-meter poll):
// the line is drained and the request resent. Only a read/write error on the port itself (an
// unplugged USB adapter) closes it; it is reopened with backoff.
//
// libmodbus 3.1.6 waits with select(): a serial port whose fd lands at or above FD_SETSIZE
// (possible when thousands of TCP sockets are open) is moved below it with F_DUPFD, or refused.
//
// Reload: a poller built from a halted one of the same line (same spec) takes over the open
// line and each device whose spec is unchanged, with its schedule and poll state.
//
// Thread-safety: start()/stop()/halt() from one owner thread; the observer is called on this
// poller's own thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "collectors/modbus/device_poll.h"
#include "collectors/modbus/poll_observer.h"

struct _modbus;  // libmodbus' modbus_t

namespace facility::modbus {

struct SerialSpec {
  std::string key;     // "rtu:///dev/ttyUSB0", for messages
  std::string device;  // "/dev/ttyUSB0"
  int baud = 9600;
  char parity = 'N';  // 'N', 'E', 'O'
  int data_bits = 8;
  int stop_bits = 1;
  std::chrono::milliseconds pause_after_connect{0};
  std::chrono::milliseconds pause_between_requests{0};
  std::chrono::milliseconds backoff_initial{1000};
  std::chrono::milliseconds backoff_max{60000};

  bool operator==(const SerialSpec&) const = default;
};

class SerialLinePoller {
 public:
  SerialLinePoller(std::size_t endpoint_index, SerialSpec spec,
                   std::vector<std::pair<std::size_t, DeviceSpec>> devices, PollObserver& observer);
  // Takes over from `previous` (halted here) what is unchanged; nothing if its spec differs.
  SerialLinePoller(std::size_t endpoint_index, SerialSpec spec,
                   std::vector<std::pair<std::size_t, DeviceSpec>> devices, PollObserver& observer,
                   SerialLinePoller& previous);
  ~SerialLinePoller();
  SerialLinePoller(const SerialLinePoller&) = delete;
  SerialLinePoller& operator=(const SerialLinePoller&) = delete;

  void start();
  void stop();  // idempotent
  void halt();  // like stop(), but the line stays open for a successor
  // Taken over from the predecessor: the devices' indices, and whether the line was open.
  const std::vector<std::size_t>& adopted_devices() const { return adopted_devices_; }
  bool line_adopted() const { return line_adopted_; }
  const SerialSpec& spec() const { return spec_; }

 private:
  struct Dev {
    DevicePoll poll;
    SteadyTime next_slot{};
    SteadyTime backoff_until{};
    bool scheduled = false;  // next_slot is set (run() started, or taken over)
  };
  void run();
  bool open_line(std::string& error);
  void close_line();
  void drain_line();
  void poll_device(Dev& d, SteadyTime slot);
  DevicePoll::Outcome exchange(DevicePoll& p, std::uint8_t* rsp, bool& port_failed);
  bool wait_until(SteadyTime t);  // false when stopping

  std::size_t endpoint_index_;
  SerialSpec spec_;
  std::vector<Dev> devs_;
  PollObserver& obs_;
  // The open line: a libmodbus context, closed and freed with it. Poller thread only.
  struct CtxCloser {
    void operator()(_modbus* ctx) const;
  };
  std::unique_ptr<_modbus, CtxCloser> ctx_;
  SteadyTime next_open_{};
  std::chrono::milliseconds backoff_{0};
  std::string open_error_;
  bool unreachable_ = false;  // the last open failed (reported once to the observer)
  SteadyTime last_io_{};

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool keep_line_ = false;  // halt(): run() leaves the line open
  std::thread thread_;
  std::vector<std::size_t> adopted_devices_;
  bool line_adopted_ = false;
};

}  // namespace facility::modbus
