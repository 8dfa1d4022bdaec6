// One device's poll cycle, independent of the transport: which read to send next, what a reply
// means, what to do after an error. Both transports drive it -- the event-driven TCP / RTU-over-
// TCP engine (engine.h) and the libmodbus serial-line poller (serial_poller.h) -- so the error
// classes, retries and the "split the batch, remember the bad address" rule exist once.
//
// Error classes (counted in facility_modbus_requests_total{result}):
//   exception 5, 6 (acknowledge, busy)  retried after busy_retry_delay, up to busy_retries; then
//                                        the cycle fails and the device backs off
//   exception 2, 3 on a batched read     split the read in two and read the halves; a single
//                                        point that still fails is a configuration problem of
//                                        that point: it is marked unreadable, its address is
//                                        remembered as forbidden, and the plan is remade so
//                                        the other points keep arriving. When both halves of a
//                                        read that failed with exception 2 succeed, the device
//                                        rejected the unmapped hole between them: that hole is
//                                        forbidden (never bridged again). Exception 3 on a long
//                                        read lowers the device's registers-per-read cap, never
//                                        below the largest read it answered or the widest point
//   exception 1 (illegal function)       every point of that function is unreadable
//   other exceptions (4, 10, 11, ...)    the cycle fails and the device backs off; the
//                                        connection is kept
//   timeout, connection lost             retried `retries` times on a new connection, then the
//                                        cycle fails; the device backs off exponentially
//   malformed reply                      the cycle fails and the connection is re-opened
// Unreadable points are re-probed with one single-point read (one per function for exception
// 1) reprobe_unreadable after they were marked, then twice as long each time it fails, up to
// reprobe_unreadable_max; a point that answers is planned again from the next cycle. Points the
// plan cannot read at all (a never_read overlap) are not re-probed.
//
// Point groups (DeviceSpec::every): a group read every N-th poll is due by the clock -- when
// N x interval has passed since the slot it was last read in -- so a device that backed off
// reads it on its first good poll. A group whose read failed stays due. Between its reads a
// group's points carry the value of their last read, with the time of that read (read_at).
//
// Thread-safety: none; one DevicePoll is driven by one thread at a time.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "collectors/modbus/codec.h"
#include "collectors/modbus/derived.h"
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
  // Per point: read it every N-th poll (point groups with a longer interval, e.g. energy
  // counters or nameplate strings). Empty, or 1, means every poll. Between its reads a slow
  // point carries the value of its last successful read, and the time of that read.
  std::vector<int> every;
  // Points computed from the read ones after every successful cycle (derived.h); their values
  // follow the read points' in PollResult::values.
  std::vector<DerivedSpec> derived;
  // Keep each point's raw words in PolledValue::raw (for `facilityd probe`; costs a copy).
  bool capture_raw = false;
  // An unreadable point is read alone again this long after it was marked, then twice as long
  // after every failed re-probe, at most reprobe_unreadable_max.
  std::chrono::milliseconds reprobe_unreadable{std::chrono::minutes(5)};
  std::chrono::milliseconds reprobe_unreadable_max{std::chrono::hours(1)};
  // First poll this long after start instead of at the hash-spread offset (probe: 0).
  std::optional<std::chrono::milliseconds> first_poll_offset;

  bool operator==(const DeviceSpec&) const = default;
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
  // Views into PollResult::names (kept alive by the PollResult it belongs to): the device's
  // names are not copied per reply.
  std::string_view name;
  std::optional<double> value;  // nullopt: not available, unreadable, or a string point
  std::string text;             // enumeration name / string content
  std::string unit;
  bool unreadable = false;  // the device rejects this point's address (configuration problem)
  std::vector<std::uint16_t> raw = {};  // words as received, when DeviceSpec::capture_raw
  // When the value was read: the completed_at of the cycle that read it -- this cycle's, or an
  // earlier one's for a slower point group's carried value.
  std::chrono::system_clock::time_point read_at{};
  std::string unreadable_why = {};  // why, when unreadable ("exception 2 (...)")
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
  // Every point, when ok: the read points in DeviceSpec::points order, then the derived ones.
  std::vector<PolledValue> values;
  // The names of `values`, in that order: the same vector for every result of one DevicePoll
  // (a consumer can key what it derives from the names on this pointer).
  std::shared_ptr<const std::vector<std::string>> names;
};

class DevicePoll {
 public:
  // Throws std::invalid_argument for a point its codec rejects.
  DevicePoll(DeviceSpec spec, std::size_t index);

  const DeviceSpec& spec() const { return spec_; }
  std::size_t index() const { return index_; }
  // A reload renumbered the devices: results carry the new index (the poller's own thread).
  void set_index(std::size_t index) { index_ = index; }
  // Every read of a cycle in which all point groups are due.
  const std::vector<ReadRequest>& plan() const { return plan_; }
  std::size_t unreadable_points() const;

  // Starts a cycle: queues the plan's reads.
  void begin(SteadyTime now, SteadyTime scheduled);
  bool in_cycle() const { return in_cycle_; }
  // The read to send now (valid while in_cycle() and the last outcome asked for a send).
  const ReadRequest& request() const { return queue_.front().read; }
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
  // later while its cycles keep failing (exponential backoff: 2, 4, 8 ... intervals).
  SteadyTime next_poll(SteadyTime slot, SteadyTime now) const;

 private:
  struct Queued {
    ReadRequest read;
    int split = -1;        // index in splits_ of the failed read this is a half of
    bool reprobe = false;  // a single-point re-probe of an unreadable point
  };
  // A read that failed with exception 2 and was split in two: if both halves then succeed, the
  // device rejected the hole [gap_first, gap_end) between them.
  struct Split {
    RegisterKind kind;
    std::uint16_t count;  // of the failed read
    std::uint32_t gap_first, gap_end;
    int pending = 2;
    bool failed = false;  // a half failed too: the culprit lies inside it
  };
  // An address range the device rejected; owner = the point it belongs to, or -1 for a hole.
  struct Learned {
    AddressRange range;
    long owner;
  };

  Outcome finish(bool ok, std::string error, bool reconnect);
  Outcome next_or_done();
  Outcome pop_and_next(const RequestEvent& ev);
  Outcome failed_exception(const ReadRequest& req, int code, const RequestEvent& ev,
                           const std::string& suffix = "");
  Outcome on_data(const Queued& q, const std::uint16_t* words_of_read);
  void split(const Queued& q, int code);
  void split_half_done(int split_index, bool ok);
  void forbid_holes(RegisterKind kind, std::uint32_t first, std::uint32_t end);
  void reject(std::size_t point, int code, bool forbid, SteadyTime now);
  void reprobe_failed(std::size_t point, int code, SteadyTime now);
  void note_ok(const ReadRequest& req);
  void replan();
  void add_derived(PollResult& r) const;
  RequestEvent event(RequestResult r, int exc = 0) const;
  bool unreadable(std::size_t i) const { return rejected_[i] || plan_unreadable_[i]; }
  int every(std::size_t point) const {
    return spec_.every.size() > point ? std::max(1, spec_.every[point]) : 1;
  }

  DeviceSpec spec_;
  std::size_t index_;
  // Shared by every DevicePoll with the same points (device_poll.cpp, shared_points).
  std::shared_ptr<const std::vector<PointCodec>> codecs_;
  DerivedEvaluator derived_;
  std::shared_ptr<const std::vector<std::string>> value_names_;  // PollResult::names
  int widest_register_point_ = 1;

  std::vector<ReadRequest> plan_;
  struct Group {
    int every;
    std::vector<ReadRequest> reads;
  };
  std::vector<Group> groups_;
  std::vector<std::pair<int, SteadyTime>> next_due_;  // (every N polls, due at); default: now
  std::vector<Decoded> last_;                          // last successful value of each point
  std::vector<std::chrono::system_clock::time_point> last_read_at_;  // epoch = never read
  std::vector<bool> read_now_;                         // read in the current cycle

  // Points the device rejected (learned; re-probed) and points the plan cannot read.
  std::vector<bool> rejected_;
  std::vector<bool> by_function_;  // rejected with exception 1: re-probed once per function
  std::vector<bool> plan_unreadable_;
  std::vector<std::string> unreadable_why_;
  std::vector<SteadyTime> reprobe_at_;
  std::vector<std::chrono::milliseconds> reprobe_wait_;
  std::vector<std::size_t> readable_again_;  // answered a re-probe: planned from the next cycle
  std::vector<Learned> learned_;
  int learned_cap_ = 125;
  int largest_ok_ = 0;  // largest register read the device answered
  bool replan_needed_ = false;

  // Current cycle.
  bool in_cycle_ = false;
  std::deque<Queued> queue_;  // front = in flight / next
  std::vector<Split> splits_;
  std::vector<int> due_groups_;  // `every` of the groups read this cycle
  std::vector<Decoded> values_;
  std::vector<std::vector<std::uint16_t>> raw_;
  int attempts_left_ = 0;
  int busy_left_ = 0;
  int requests_ = 0;
  bool ok_ = false;
  std::string error_;
  SteadyTime started_{};
  SteadyTime scheduled_{};
  int consecutive_failures_ = 0;  // failed cycles in a row, for the backoff
};

}  // namespace facility::modbus
