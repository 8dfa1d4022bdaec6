// ModbusServer: a small Modbus TCP server for the site simulator and for tests.
//
// Why not libmodbus' server side: we need to misbehave on purpose (delay, stay silent, close,
// answer "busy" or "illegal address") per unit, to count every function code a client sends
// (to prove facilityd only ever reads), and to serve many ports and thousands of connections
// from one thread, which libmodbus' select()-based server cannot do above fd 1024.
//
// Framing: Modbus TCP (MBAP) by default; a listener can instead speak RTU framing (unit id +
// PDU + CRC-16) over TCP, like a cheap serial-to-Ethernet gateway, and serve_serial() serves RTU
// on a serial device (e.g. one end of a socat pty pair), like the devices on an RS-485 line.
//
// What it serves: function codes 1-4 (read coils, discrete inputs, holding and input registers)
// from a UnitImage per (port, unit id), and Read Device Identification (43/14) for units whose
// image has identification objects. Anything else gets exception 1 (illegal function).
// Framing is strict: a protocol id other than 0 or an MBAP length outside 2..254 closes the
// connection, because the stream can no longer be trusted to be in sync.
//
// Threading model: one I/O thread (start()/stop()) runs a level-triggered epoll loop over
// non-blocking sockets; delayed replies are kept in a timer queue inside that loop, so a slow
// unit never blocks the others. Unit images, faults and statistics live behind one mutex, so
// every public method is thread-safe and may be called while the loop runs — the simulator's
// model thread replaces unit images with set_unit() once per update, atomically per unit, so a
// client never reads half of an update. listen() is the exception: call it before start().
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "collectors/modbus/codec.h"
#include "collectors/modbus/device_id.h"
#include "sim/unique_fd.h"

namespace facility::sim {

// One contiguous table of one register kind: values[i] is the register (or, for coils and
// discrete inputs, the bit as 0/1) at address start + i. An empty table maps nothing.
struct RegisterTable {
  std::uint16_t start = 0;
  std::vector<std::uint16_t> values;

  bool empty() const { return values.empty(); }
  // True when every address of [addr, addr + count) is mapped.
  bool covers(std::uint32_t addr, std::uint32_t count) const {
    return !values.empty() && addr >= start && addr + count <= start + values.size();
  }
};

// Everything one Modbus unit serves.
struct UnitImage {
  std::array<RegisterTable, 4> tables;  // indexed by RegisterKind - 1
  // Device quirk: some devices accept fewer registers per read than the protocol's 125; a read
  // above this gets exception 3, as such a device would answer.
  int max_registers_per_read = 125;
  // Read Device Identification (function 43/14) objects; empty: the unit answers that function
  // with exception 1, like a device without it.
  modbus::DeviceIdObjects device_id;

  RegisterTable& table(modbus::RegisterKind k) { return tables[static_cast<int>(k) - 1]; }
  const RegisterTable& table(modbus::RegisterKind k) const {
    return tables[static_cast<int>(k) - 1];
  }
};

// Misbehaviour injected for one (port, unit). Several may be combined; `close` wins over
// `silent`, which wins over `busy`; the delay applies to whatever reply is sent.
struct Fault {
  std::chrono::milliseconds delay{0};  // reply this late (without blocking other units)
  // Gateway quirks: `trailing` junk bytes after every reply; every reply sent twice.
  std::uint16_t trailing = 0;
  bool duplicate = false;
  bool busy = false;    // answer every request with exception 6 (server device busy)
  bool silent = false;  // never answer; the client must time out
  bool close = false;   // close the connection as soon as a request for this unit arrives
  std::set<std::uint16_t> illegal_addresses;  // exception 2 for any read covering one of these
  // Not a transport fault: a UPS reports a mains failure, its output on battery. The Simulator
  // applies it to the device's values (Simulator::set_fault); the server ignores it.
  bool on_battery = false;

  bool empty() const {
    return delay.count() == 0 && !busy && !silent && !close && illegal_addresses.empty() &&
           trailing == 0 && !duplicate && !on_battery;
  }
  std::string describe() const;  // e.g. "delay:500ms,busy"; "none" if empty
};

// Parses a comma-separated fault list: "silent", "busy", "close", "delay:500ms" (any duration
// parse_duration accepts, or plain milliseconds), "illegal:ADDR" (0-based, decimal or 0x hex),
// "on_battery", "none". Merges into *out. Returns an error message, or nullopt on success.
std::optional<std::string> parse_fault(std::string_view spec, Fault& out);

struct ServerStats {
  std::map<int, std::uint64_t> function_codes;  // requests received, by function code
  std::map<int, std::uint64_t> exceptions;      // exception replies sent, by exception code
  std::uint64_t replies = 0;           // normal (non-exception) replies sent
  std::uint64_t dropped = 0;           // requests left unanswered by a silent/close fault
  std::uint64_t connections = 0;       // connections accepted in total
  std::uint64_t protocol_errors = 0;   // connections closed for bad MBAP framing
};

class ModbusServer {
 public:
  ModbusServer();
  ~ModbusServer();  // stops the loop and closes every socket
  ModbusServer(const ModbusServer&) = delete;
  ModbusServer& operator=(const ModbusServer&) = delete;
  ModbusServer(ModbusServer&&) = delete;
  ModbusServer& operator=(ModbusServer&&) = delete;

  // Binds host:port and returns the bound port (pass 0 for an ephemeral one). Must be called
  // before start(). Throws std::system_error with "host:port" in the message on failure.
  // rtu: speak RTU framing over the TCP connections instead of MBAP.
  std::uint16_t listen(const std::string& host, std::uint16_t port, bool rtu = false);
  // Serves RTU on a serial device (raw mode); returns the key to use for its units in
  // set_unit()/set_fault() (above any TCP port). Must be called before start(). On a serial
  // line, a request for a unit nobody serves gets no answer, as on a real bus.
  std::uint32_t serve_serial(const std::string& path);

  // Adds or replaces what (port, unit) serves. Replacing is atomic with respect to requests.
  // `port` is a bound TCP port or a serve_serial() key.
  void set_unit(std::uint32_t port, std::uint8_t unit, UnitImage image);
  // Sets the fault of (port, unit); an empty Fault clears it.
  void set_fault(std::uint32_t port, std::uint8_t unit, Fault fault);

  void start();  // starts the I/O thread
  void stop();   // idempotent; returns after the I/O thread has exited

  ServerStats stats() const;
  // Requests received by function code: over all units, and for one (port, unit).
  std::map<int, std::uint64_t> function_code_counts() const;
  std::map<int, std::uint64_t> function_code_counts(std::uint32_t port,
                                                    std::uint8_t unit) const;
  std::size_t open_connections() const { return open_connections_.load(); }

 private:
  struct Connection;
  struct Listener {
    UniqueFd fd;
    std::uint16_t port = 0;
    bool rtu = false;
  };
  using UnitKey = std::pair<std::uint32_t, std::uint8_t>;  // (port or serial key, unit id)
  using Clock = std::chrono::steady_clock;

  void loop();
  void accept_all(const Listener& l);
  void on_readable(int fd);
  // Parses and answers every complete frame in the connection's input; false if it was closed.
  bool process_input(Connection& c);
  enum class Action { kReply, kNoReply, kClose };
  // Answers one request PDU for `uid`: the reply PDU in `reply`.
  Action handle_pdu(const Connection& c, std::uint8_t uid, const std::uint8_t* pdu,
                    std::size_t pdu_len, std::vector<std::uint8_t>& reply,
                    Fault& in_effect);
  bool process_tcp(Connection& c);
  bool process_rtu(Connection& c);
  void queue_reply(Connection& c, std::vector<std::uint8_t> bytes, std::chrono::milliseconds delay);
  // Sends every due reply; false if the connection was closed.
  bool flush(Connection& c);
  void close_connection(int fd);
  void update_interest(Connection& c, bool want_write);

  UniqueFd epoll_;
  UniqueFd wake_;     // eventfd: stop() wakes the loop through it
  UniqueFd reserve_;  // spare fd, released to shed a connection when out of descriptors
  std::vector<Listener> listeners_;
  std::unordered_map<int, std::size_t> listener_index_;  // listening fd -> listeners_ index
  std::vector<int> serial_fds_;  // owned by conns_ once started
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<std::size_t> open_connections_{0};

  // Owned by the I/O thread only.
  std::unordered_map<int, std::unique_ptr<Connection>> conns_;
  std::multimap<Clock::time_point, int> timers_;  // delayed replies: due time -> connection fd

  // Shared with other threads, guarded by mu_.
  mutable std::mutex mu_;
  std::map<UnitKey, UnitImage> units_;
  std::map<UnitKey, Fault> faults_;
  std::map<UnitKey, std::map<int, std::uint64_t>> unit_fc_counts_;
  ServerStats stats_;
};

}  // namespace facility::sim
