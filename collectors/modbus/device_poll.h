// One device's poll cycle, independent of the transport: which read to send next, what a reply
// means, what to do after an error. Both transports drive it -- the event-driven TCP / RTU-over-
// TCP engine (engine.h) and the libmodbus serial-line poller (serial_poller.h) -- so the error
// classes, retries and the "split the batch, remember the bad address" rule exist once.
//
// Error classes (counted in facility_modbus_requests_total{result}):
//   exception 5, 6 (acknowledge, busy)  retried after busy_retry_delay, up to busy_retries
//   exception 2, 3 on a batched read     split the read in two and read the halves; a single
//                                        point that still fails is a configuration problem of
//                                        that point: it is marked unreadable, its address is
//                                        remembered as forbidden, and the plan is remade so
//                                        the other points keep arriving (exception 3 on a long
//                                        read also halves the device's registers-per-read cap)
//   exception 1 (illegal function)       every point of that function is unreadable
//   other exceptions (4, 10, 11, ...)    the cycle fails; the connection is kept
//   timeout, connection lost             retried `retries` times on a new connection, then the
//                                        cycle fails; the device backs off exponentially
//   malformed reply                      the cycle fails and the connection is re-opened
// Unreadable points stay unreadable until the daemon restarts; their values are absent.
//
// Thread-safety: none; one DevicePoll is driven by one thread at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <algorithm>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "collectors/modbus/codec.h"
#include "collectors/modbus/planner.h"

namespace facility::modbus {

using SteadyClock = std::chrono::steady_clock;
using SteadyTime = SteadyClock::time_point;

struct DeviceSpec {
  std::string id;
  int unit = 1;
  std::chrono::milliseconds interval{15000};
  std::chrono::milliseconds timeout{1000};
  int retries = 1;  // further attempts of a request after a timeout or a lost connection
  int busy_retries = 3;
  std::chrono::milliseconds busy_retry_delay{250};
  std::chrono::milliseconds backoff_max{60000};  // longest pause of a failing device
  PlanOptions plan;  // max_registers, max_gap, forbidden ranges
  std::vector<PointSpec> points;
  // Per point: read it every N-th cycle (point groups with a longer interval, e.g. energy
  // counters or nameplate strings). Empty, or 1, means every cycle. Between its reads a slow
  // point carries the value of its last successful read -- for at most N cycles, so it is
  // never older than its own interval.
  std::vector<int> every;
  // Keep each point's raw words in PolledValue::raw (for `facilityd probe`; costs a copy).
  bool capture_raw = false;
  // First poll this long after start instead of at the hash-spread offset (probe: 0).
  std::optional<std::chrono::milliseconds> first_poll_offset;
};

// Outcome class of one request, as counted in facility_modbus_requests_total{result}.
enum class RequestResult : std::uint8_t { kOk, kTimeout, kException, kMalformed, kConnection };
const char* to_string(RequestResult r);

struct RequestEvent {
  std::size_t device_index = 0;
  int function = 0;  // 0 when no request could be sent (no connection)
  RequestResult result = RequestResult::kOk;
  int exception_code = 0;  // when result == kException
};

struct PolledValue {
  std::string name;
  std::optional<double> value;  // nullopt: not available, unreadable, or a string point
  std::string text;             // enumeration name / string content
  std::string unit;
  bool unreadable = false;  // the device rejects this point's address (configuration problem)
  std::vector<std::uint16_t> raw = {};  // words as received, when DeviceSpec::capture_raw
};

struct PollResult {
  std::string device_id;
  std::size_t device_index = 0;
  bool ok = false;    // the device answered every read of the cycle
  std::string error;  // first error, human-readable
  std::chrono::system_clock::time_point completed_at;
  std::chrono::nanoseconds duration{0};  // first request sent -> cycle over
  std::chrono::nanoseconds lateness{0};  // cycle start - scheduled time
  int requests = 0;                      // requests sent in this cycle
  std::vector<PolledValue> values;       // every point, when ok
};

class DevicePoll {
 public:
  // Throws std::invalid_argument for a point its codec rejects.
  DevicePoll(DeviceSpec spec, std::size_t index);

  const DeviceSpec& spec() const { return spec_; }
  std::size_t index() const { return index_; }
  // Every read of a cycle in which all point groups are due.
  const std::vector<ReadRequest>& plan() const { return plan_; }
  std::size_t unreadable_points() const;

  // Starts a cycle: queues the plan's reads.
  void begin(SteadyTime now, SteadyTime scheduled);
  bool in_cycle() const { return in_cycle_; }
  // The read to send now (valid while in_cycle() and the last outcome asked for a send).
  const ReadRequest& request() const { return queue_.front(); }
  void on_sent() { ++requests_; }

  enum class Step {
    kSend,           // send request() now (or after the endpoint's pause between requests)
    kSendAfter,      // send request() again after `delay` (busy)
    kReconnectSend,  // re-open the connection, then send request() again
    kDone,           // the cycle is over; take_result()
    kDoneReconnect,  // the cycle is over and the connection must be re-opened
  };
  struct Outcome {
    Step step = Step::kDone;
    std::chrono::milliseconds delay{0};
    RequestEvent event;  // what happened to the request just answered (to be counted)
  };

  // The first step of a cycle just begun: kSend, or kDone when nothing is readable.
  Outcome first() { return next_or_done(); }

  Outcome on_reply(std::span<const std::uint8_t> pdu);
  Outcome on_timeout();
  Outcome on_connection_lost(const std::string& why);
  Outcome on_malformed(const std::string& why);
  // The cycle cannot start (no connection): fails it with `error`.
  Outcome fail(const std::string& error);

  // The finished cycle's result (call once after kDone / kDoneReconnect).
  PollResult take_result(SteadyTime now);

  // When the device may be polled again after this cycle: `slot` (its next scheduled time), or
  // later while it keeps failing with timeouts / lost connections (exponential backoff).
  SteadyTime next_poll(SteadyTime slot, SteadyTime now) const;

 private:
  Outcome finish(bool ok, std::string error, bool reconnect);
  Outcome next_or_done();
  void mark_unreadable(std::size_t point, const std::string& why, bool forbid);
  void replan();
  RequestEvent event(RequestResult r, int exc = 0) const;

  DeviceSpec spec_;
  std::size_t index_;
  std::vector<PointCodec> codecs_;
  int every(std::size_t point) const {
    return spec_.every.size() > point ? std::max(1, spec_.every[point]) : 1;
  }

  std::vector<ReadRequest> plan_;
  std::vector<std::pair<int, std::vector<ReadRequest>>> groups_;  // (every N cycles, reads)
  std::uint64_t cycle_ = 0;
  std::vector<Decoded> last_;                // last successful value of each point
  std::vector<std::uint64_t> last_cycle_;    // the cycle it was read in; 0 = never
  std::vector<bool> read_now_;               // read in the current cycle
  std::vector<bool> unreadable_;
  std::vector<std::string> unreadable_why_;
  int learned_cap_ = 125;
  bool replan_needed_ = false;

  // Current cycle.
  bool in_cycle_ = false;
  std::deque<ReadRequest> queue_;  // front = in flight / next
  std::vector<Decoded> values_;
  std::vector<std::vector<std::uint16_t>> raw_;
  int attempts_left_ = 0;
  int busy_left_ = 0;
  int requests_ = 0;
  bool ok_ = false;
  bool timed_out_ = false;
  std::string error_;
  SteadyTime started_{};
  SteadyTime scheduled_{};
  int consecutive_failures_ = 0;  // timeouts / connection losses, for the backoff
};

}  // namespace facility::modbus
