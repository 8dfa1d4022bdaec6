// Simulator: serves every Modbus TCP device of a facilityd config from one process.
//
// It ties the SiteModel (ground truth) to a ModbusServer: each device's profile becomes a
// UnitImage at its (endpoint port, unit id), and update() re-encodes every point with the
// profile's own PointCodec, so what a client decodes is exactly the model's value rounded to
// the register type. facility-sim's main() is a thin shell over this class; tests embed it.
//
// Only loopback endpoints (127.0.0.0/8, "localhost") are served: a simulator must never answer
// in place of a real device. Modbus TCP and RTU-over-TCP endpoints are served on their ports;
// an RTU serial endpoint (rtu:///dev/X) is served only when SimulatorOptions::serial maps it to
// a device path of the simulator's own (e.g. the other end of a socat pty pair), and is skipped
// with a warning otherwise.
//
// Simulated time: sim = wall_start + speed × (wall - wall_start); energy counters start at the
// model's epoch = wall_start.
//
// Thread-safety: construct, start(), update() and stop() from one thread (the model thread);
// set_fault() and the server's statistics may be used from any thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "daemon/config/config.h"
#include "sim/modbus_server.h"
#include "sim/site_model.h"

namespace facility::sim {

// A config the simulator cannot serve (non-loopback host, two devices on one unit id...) or an
// endpoint it cannot bind. The message lists every problem, one per line.
class SimulatorError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
// An endpoint could not be bound (port in use, no permission): an environment problem, not a
// config one.
class BindError : public SimulatorError {
 public:
  using SimulatorError::SimulatorError;
};

struct SimulatorOptions {
  std::uint64_t seed = 1;
  double speed = 1.0;  // simulated seconds per wall-clock second
  // Tests: bind every endpoint to an ephemeral port instead of its configured one; read the
  // ports back with bound_port().
  bool ephemeral_ports = false;
  std::map<std::string, Fault> faults;  // by device id
  // Serial endpoint key ("rtu:///dev/ttyUSB0") -> the path the simulator serves it on.
  std::map<std::string, std::string> serial;
};

class Simulator {
 public:
  // Validates the endpoints, binds every one of them and builds the model. Throws
  // SimulatorError for a config it cannot serve, BindError when binding fails.
  Simulator(std::shared_ptr<const Config> config, SimulatorOptions options, double wall_start);
  ~Simulator();
  Simulator(const Simulator&) = delete;
  Simulator& operator=(const Simulator&) = delete;

  void start();  // starts serving (call update() once before, so the first read sees values)
  void stop();

  // Evaluates the model at the simulated time of `wall_now` (unix seconds) and publishes every
  // device's registers. In the returned truth, device values are what the registers decode to.
  Truth update(double wall_now);

  double sim_time(double wall) const { return wall_start_ + speed_ * (wall - wall_start_); }

  // Replaces the fault of one device (an empty Fault clears it). Throws SimulatorError for an
  // unknown or unserved device, and for on_battery on a device that is not a UPS or whose
  // profile has neither an `on_battery` nor an `output_source` register point.
  void set_fault(const std::string& device_id, const Fault& fault);

  struct EndpointInfo {
    std::string key;  // "tcp://127.0.0.1:15020" as configured
    std::string host;
    std::uint16_t bound_port = 0;  // 0 for a serial line
    std::uint32_t unit_key = 0;    // the ModbusServer key of its units (port or serial key)
    std::vector<const Device*> devices;
  };
  const std::vector<EndpointInfo>& endpoints() const { return endpoints_; }
  // Bound port of a configured endpoint key ("tcp://HOST:PORT"); 0 if not served.
  std::uint16_t bound_port(const std::string& endpoint_key) const;
  std::size_t devices_served() const { return served_.size(); }
  const SiteModel& model() const { return model_; }
  ModbusServer& server() { return server_; }
  const std::vector<std::string>& warnings() const { return warnings_; }

 private:
  // Devices grouped by endpoint while the constructor checks them.
  struct EndpointPlan {
    std::map<std::string, std::size_t> endpoint_index;
    std::map<std::uint16_t, std::string> port_owner;                 // configured port -> host
    std::map<std::pair<std::string, int>, std::string> unit_owner;  // (endpoint, unit) -> device
    std::vector<std::size_t> device_endpoint;  // per device of Config::all_devices(); SIZE_MAX: none
  };
  void assign_endpoint(std::size_t i, const Device& d, const SimulatorOptions& options,
                       EndpointPlan& plan, std::vector<std::string>& errors);
  struct Served {
    std::size_t device_index = 0;  // into Truth::devices / Config::all_devices()
    std::uint32_t port = 0;        // bound port or serial key
    std::uint8_t unit = 0;
    std::vector<modbus::PointCodec> codecs;  // per profile point, resolved once
    UnitImage blank;                         // mapped ranges, all zero
  };

  std::shared_ptr<const Config> config_;
  double wall_start_;
  double speed_;
  SiteModel model_;
  ModbusServer server_;
  std::vector<EndpointInfo> endpoints_;
  std::vector<Served> served_;
  std::map<std::string, std::size_t> served_by_id_;  // device id -> index into served_
  mutable std::mutex fault_mu_;
  std::set<std::size_t> on_battery_;  // served_ indices with the on_battery fault (fault_mu_)
  std::vector<std::string> warnings_;
};

// The ground-truth document read by the integration tests:
// {"ts", "cabinets": {"site/cabinet": {power_w, rated_w, feeds}}, "sites": {id: {it_power_w,
// facility_power_w, cooling_power_w, pue}}, "devices": {id: {point: value}}}.
nlohmann::json truth_to_json(const Truth& truth);
nlohmann::json stats_to_json(const ServerStats& stats);

// Writes a file so that a reader sees either the old or the new content, never a mix: write a
// temporary file in the same directory, then rename it over the target. Throws on failure.
void write_file_atomic(const std::string& path, const std::string& content);

// Mapped ranges of a profile, per register kind: from the lowest point (or identification
// register) address to the highest address + width. Gaps inside read as zero.
UnitImage blank_image(const Profile& profile);
// What the profile's `identify` block expects, written into `img`: the Read Device
// Identification objects (its `simulate` values, else the texts it matches) and each
// identification register's value (its first `equals` code, its `prefix`, or the middle of its
// `range`).
void write_identity(const Profile& profile, UnitImage& img);

}  // namespace facility::sim
