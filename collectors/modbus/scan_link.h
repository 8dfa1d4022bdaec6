// ScanLink: a blocking Modbus client that sends one request at a time and waits for its reply,
// for `facilityd scan` (daemon/app/scan.h). It speaks Modbus TCP, RTU over a raw TCP socket and
// RTU on a serial line, and sends whatever read PDU it is given: the read function codes 1-4
// and Read Device Identification (43/14). The polling engine does not use it.
//
// A reply is matched to its request strictly (transaction id and unit for TCP, unit and CRC for
// RTU); a late reply to an earlier request that timed out is skipped (TCP, by its transaction
// id) or drained before the next request (RTU). A connection that breaks is re-opened on the next
// exchange.
//
// Thread-safety: none; one thread uses a link.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "collectors/modbus/frame.h"

namespace facility::modbus {

struct LinkSpec {
  std::string key;  // "tcp://10.0.0.5:502", for messages
  enum class Kind { kTcp, kRtuOverTcp, kSerial } kind = Kind::kTcp;
  std::string host;  // tcp, rtu-over-tcp
  int port = 502;
  std::string device;  // serial: /dev/ttyUSB0
  int baud = 9600;
  char parity = 'N';
  int stop_bits = 1;
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds pause_after_connect{0};
};

struct LinkReply {
  enum class Status { kReply, kTimeout, kMalformed, kFailed } status = Status::kFailed;
  std::vector<std::uint8_t> pdu;  // kReply: function code onwards (an exception reply too)
  std::string error;              // otherwise: what went wrong
};

class ScanLink {
 public:
  explicit ScanLink(LinkSpec spec);
  ~ScanLink();
  ScanLink(const ScanLink&) = delete;
  ScanLink& operator=(const ScanLink&) = delete;

  // Opens the connection or the serial line now (the first exchange would otherwise). False with
  // `error` set when it cannot.
  bool open(std::string& error);
  // Sends `pdu` to `unit` and waits up to `timeout` for the reply.
  LinkReply exchange(std::uint8_t unit, std::span<const std::uint8_t> pdu,
                     std::chrono::milliseconds timeout);
  const LinkSpec& spec() const { return spec_; }

 private:
  struct Serial;
  void close();
  bool send_all(const std::vector<std::uint8_t>& bytes, std::string& error);
  // Reads what has arrived until `deadline`; false on timeout (or a closed connection: `closed`).
  bool read_more(std::chrono::steady_clock::time_point deadline, bool& closed);
  LinkReply receive_tcp(std::uint16_t tid, std::uint8_t unit,
                        std::chrono::steady_clock::time_point deadline);
  LinkReply receive_rtu(std::uint8_t unit, std::chrono::steady_clock::time_point deadline);
  void drain();

  LinkSpec spec_;
  int fd_ = -1;
  std::unique_ptr<Serial> serial_;  // the libmodbus context that configured the tty
  std::vector<std::uint8_t> in_;
  std::uint16_t tid_ = 0;
  bool dirty_ = false;  // RTU: a reply may still arrive for a request that timed out
};

}  // namespace facility::modbus
