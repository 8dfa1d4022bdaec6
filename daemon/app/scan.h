// `facilityd scan`: find the Modbus devices behind a gateway or on a serial line, identify each
// one, propose the catalog profile that fits (scan_match.h), and print a table and a ready-to-
// paste `devices:` block.
//
// What goes on the wire, one request at a time, at most `rate` requests per second, for at most
// `budget`:
//   * presence: a read of one holding register at address 0 (function 3) to every unit id of the
//     range; any answer, exceptions included, means a device (a gateway's exceptions 10/11 and
//     silence mean none). On Modbus TCP, unit 248 (reserved on serial buses) is asked first: a
//     device that answers it answers every unit id, and only the first unit is scanned;
//   * Read Device Identification (function 43/14, basic then regular objects);
//   * the SunSpec marker "SunS" at holding registers 40000, 0 and 50000 (and then the common
//     model's manufacturer and model strings);
//   * the identification registers the profiles declare (function 1-4 reads).
// Every request is a read: scan never writes. It is the only facilityd command that sends
// function 43; `run` and `probe` send only 1-4.
//
// Thread-safety: run_scan() is a whole command on the calling thread.
#pragma once

#include <chrono>
#include <iosfwd>
#include <optional>
#include <string>

namespace CLI {
class App;
}

namespace facility {

struct ScanOptions {
  std::string endpoint;  // tcp://HOST:PORT, rtu-over-tcp://HOST:PORT, rtu:///dev/ttyUSB0
  int first_unit = 1, last_unit = 247;
  double rate = 20;  // requests per second, at most
  std::chrono::milliseconds timeout{500};
  std::chrono::milliseconds budget{std::chrono::minutes(2)};
  std::string profiles_dir;  // looked up first, then /etc/facilityd/profiles, the shipped ones
  std::optional<int> baud;
  std::optional<char> parity;
  std::optional<int> stop_bits;
  bool json = false;
  std::string id_prefix = "scan";  // device ids in the proposed inventory: <prefix>-u<unit>
};

// Prints the table and the inventory block (or JSON) to `out`, progress and problems to `err`.
// Returns 0 when the whole range was scanned and a device answered, 1 when none answered, the
// endpoint could not be opened or the budget ran out first, 2 for bad options.
int run_scan(const ScanOptions& opt, std::ostream& out, std::ostream& err);

struct ScanCliOptions {
  ScanOptions scan;
  std::string units = "1-247";
  std::string timeout = "500ms", budget = "2m";
  std::string parity;
};
CLI::App* add_scan_subcommand(CLI::App& app, ScanCliOptions& opt);
int run_scan_cli(ScanCliOptions& opt);

}  // namespace facility
