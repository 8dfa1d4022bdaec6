// `facilityd probe`: read one device once and print every point decoded -- value, unit, raw
// registers -- as a table. What a field engineer runs when a new PDU is wired.
//
// Thread-safety: run_probe() is a whole command; it starts and stops its own poller.
#pragma once

#include <chrono>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace facility {

struct ProbeOptions {
  // Either a device of a configuration...
  std::string config_path;
  std::string device_id;
  // ... or an endpoint, unit and profile given directly.
  std::string endpoint;      // tcp://HOST:PORT, rtu-over-tcp://HOST:PORT, rtu:///dev/ttyUSB0
  int unit = 1;
  std::string profile;       // a name in profiles_dir, or a path to a .yaml file
  std::string profiles_dir;  // looked up first (profile_search_path in config.h says the rest)
  std::optional<int> baud;
  std::optional<char> parity;
  std::optional<int> stop_bits;
  std::chrono::milliseconds timeout{1000};
  bool json = false;  // one JSON object instead of the table (for scripts)
  // Diagnose mode (no profile needed): the registers around this address, raw and decoded in
  // every type and word order from the address and one address either side.
  std::optional<int> diagnose;
  std::string function = "holding";  // holding or input, for diagnose
};

// Prints the table (or JSON) to `out` and problems to `err`. Returns 0 when the device answered
// every read, 1 when the poll failed, 2 for bad options or configuration.
int run_probe(const ProbeOptions& opt, std::ostream& out, std::ostream& err);

struct Device;
struct EndpointSettings;
namespace modbus {
struct DeviceSpec;
struct PollResult;
}  // namespace modbus
namespace probe_detail {
// One poll of `spec` on the device's endpoint with the engine or serial poller the daemon would
// use; `problems` gets every request that did not succeed ("FC3: exception 2").
modbus::PollResult poll_once(const Device& dev, const EndpointSettings& es,
                             const modbus::DeviceSpec& spec, std::vector<std::string>& problems);
// `facilityd probe --diagnose` (probe_diagnose.cpp).
int run_diagnose(const ProbeOptions& opt, const Device& dev, const EndpointSettings& es,
                 std::ostream& out, std::ostream& err);
}  // namespace probe_detail

// The `probe` subcommand of the command line, and its option checks (main.cpp wires it like
// daemon/reports/cli.h's `report`).
struct ProbeCliOptions {
  ProbeOptions probe;
  std::string timeout = "1s";  // parsed by run_probe_cli
  std::string parity;          // none, even, odd
};
// Adds the subcommand to `app`, filling `opt`; returns it (test `*cmd` after parsing).
CLI::App* add_probe_subcommand(CLI::App& app, ProbeCliOptions& opt);
// Checks the options (exit 2 with a message on stderr), then run_probe() on stdout/stderr.
int run_probe_cli(ProbeCliOptions& opt);

}  // namespace facility
