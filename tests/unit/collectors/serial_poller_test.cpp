// SerialLinePoller on a pseudo-terminal: the test plays the RS-485 bus on the pty's master side
// (one healthy meter and one dead one behind the same line), the poller opens the slave side
// through libmodbus like a real /dev/ttyUSB0.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "collectors/modbus/frame.h"
#include "collectors/modbus/serial_poller.h"
#include "collectors/unique_fd.h"

namespace facility::modbus {
namespace {

using namespace std::chrono_literals;

// The bus: answers FC3 reads for `live_unit` (register i = 100 + i); every other unit is dead.
class PtyBus {
 public:
  explicit PtyBus(std::uint8_t live_unit) : live_(live_unit), master_(::posix_openpt(O_RDWR | O_NOCTTY)) {
    if (!master_ || ::grantpt(master_.get()) != 0 || ::unlockpt(master_.get()) != 0) {
      throw std::runtime_error("no pseudo-terminal");
    }
    path_ = ::ptsname(master_.get());
    thread_ = std::thread([this] { run(); });
  }
  ~PtyBus() {
    stop_ = true;
    thread_.join();
  }
  const std::string& path() const { return path_; }
  int requests(std::uint8_t unit) const { return unit == live_ ? live_requests_ : dead_requests_; }

 private:
  void run() {
    std::vector<std::uint8_t> in;
    while (!stop_) {
      pollfd p{master_.get(), POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0 || !(p.revents & POLLIN)) continue;
      std::uint8_t buf[256];
      const ssize_t n = ::read(master_.get(), buf, sizeof buf);
      if (n <= 0) continue;
      in.insert(in.end(), buf, buf + n);
      while (in.size() >= 8) {  // a read request: unit, fc, address, count, CRC
        const std::vector<std::uint8_t> req(in.begin(), in.begin() + 8);
        in.erase(in.begin(), in.begin() + 8);
        if (crc16(std::span(req.data(), 6)) != (req[6] | req[7] << 8)) {
          in.clear();  // out of step: drop the rest
          break;
        }
        if (req[0] != live_) {
          ++dead_requests_;
          continue;
        }
        ++live_requests_;
        const int count = req[4] << 8 | req[5];
        std::vector<std::uint8_t> rep{req[0], req[1], static_cast<std::uint8_t>(2 * count)};
        const int first = req[2] << 8 | req[3];
        for (int i = 0; i < count; ++i) {
          rep.push_back(0);
          rep.push_back(static_cast<std::uint8_t>(100 + first + i));
        }
        const std::uint16_t crc = crc16(rep);
        rep.push_back(static_cast<std::uint8_t>(crc & 0xFF));
        rep.push_back(static_cast<std::uint8_t>(crc >> 8));
        (void)!::write(master_.get(), rep.data(), rep.size());
      }
    }
  }

  std::uint8_t live_;
  UniqueFd master_;
  std::string path_;
  std::atomic<bool> stop_{false};
  std::atomic<int> live_requests_{0}, dead_requests_{0};
  std::thread thread_;
};

class LineObserver : public PollObserver {
 public:
  void on_result(PollResult&& r) override {
    std::lock_guard l(mu_);
    (r.ok ? ok_ : failed_)[r.device_index] += 1;
    if (r.ok && r.device_index == 0) last_value_ = r.values[0].value;
    cv_.notify_all();
  }
  void on_request(const RequestEvent& e) override {
    std::lock_guard l(mu_);
    if (e.result == RequestResult::kTimeout) ++timeouts_[e.device_index];
  }
  void on_overrun(std::size_t) override {}
  void on_connection(std::size_t, bool up) override {
    std::lock_guard l(mu_);
    ++(up ? opened_ : closed_);
  }
  bool wait_for(int live_ok, int dead_failed) {
    std::unique_lock l(mu_);
    return cv_.wait_for(l, 30s, [&] { return ok_[0] >= live_ok && failed_[1] >= dead_failed; });
  }

  std::mutex mu_;
  std::condition_variable cv_;
  // By device index (at most 7 here).
  int ok_[8] = {}, failed_[8] = {}, timeouts_[8] = {}, opened_ = 0, closed_ = 0;
  std::optional<double> last_value_;
};

DeviceSpec meter(const std::string& id, int unit, std::chrono::milliseconds timeout) {
  DeviceSpec s;
  s.id = id;
  s.unit = unit;
  s.interval = 200ms;
  s.timeout = timeout;
  s.retries = 1;
  s.backoff_max = 400ms;  // keep polling the dead meter often
  s.first_poll_offset = 0ms;
  PointSpec p;
  p.name = "power";
  p.kind = RegisterKind::kHolding;
  p.address = 3;
  p.type = DataType::kUInt16;
  s.points.push_back(p);
  return s;
}

TEST(SerialLinePoller, ADeadSlaveNeitherReopensTheLineNorStopsItsNeighbour) {
  PtyBus bus(1);
  SerialSpec line;
  line.key = "rtu://" + bus.path();
  line.device = bus.path();
  line.baud = 19200;
  std::vector<std::pair<std::size_t, DeviceSpec>> devs;
  devs.emplace_back(0, meter("live", 1, 2000ms));  // timeouts are not its subject
  devs.emplace_back(1, meter("dead", 2, 100ms));
  LineObserver obs;
  SerialLinePoller poller(0, line, std::move(devs), obs);
  poller.start();
  const bool done = obs.wait_for(5, 3);
  // Copy under the lock, before stop() closes the line (which reports it down once).
  std::unique_lock l(obs.mu_);
  const int opened = obs.opened_, closed = obs.closed_, live_failed = obs.failed_[0];
  const int dead_timeouts = obs.timeouts_[1];
  const auto value = obs.last_value_;
  l.unlock();
  poller.stop();
  ASSERT_TRUE(done) << "live ok " << obs.ok_[0] << ", dead failed " << obs.failed_[1];
  // Every dead-slave poll timed out twice (1 retry), resent on the same open line.
  EXPECT_GE(dead_timeouts, 6);
  EXPECT_GE(bus.requests(2), 6);
  EXPECT_EQ(opened, 1) << "the port was reopened after a slave's timeout";
  EXPECT_EQ(closed, 0);
  EXPECT_EQ(live_failed, 0);
  EXPECT_EQ(value, 103);
}

// A reload: the successor of a halted poller of the same line keeps the open line (no second
// open, no close) and the unchanged meter, renumbered; the one whose spec changed starts afresh.
// A changed line spec takes over nothing.
TEST(SerialLinePoller, AReloadTakesOverTheOpenLineAndUnchangedDevices) {
  PtyBus bus(1);
  SerialSpec line;
  line.key = "rtu://" + bus.path();
  line.device = bus.path();
  line.baud = 19200;
  LineObserver first_obs;
  SerialLinePoller first(0, line, {{0, meter("live", 1, 2000ms)}, {1, meter("dead", 2, 100ms)}},
                         first_obs);
  first.start();
  ASSERT_TRUE(first_obs.wait_for(2, 1));
  // Renumbered: "live" becomes device 4, "dead" 5 with a new timeout.
  LineObserver obs;
  SerialLinePoller second(3, line, {{4, meter("live", 1, 2000ms)}, {5, meter("dead", 2, 150ms)}},
                          obs, first);
  EXPECT_EQ(second.adopted_devices(), (std::vector<std::size_t>{4}));
  EXPECT_TRUE(second.line_adopted());
  second.start();
  {
    std::unique_lock l(obs.mu_);
    ASSERT_TRUE(obs.cv_.wait_for(l, 30s, [&] { return obs.ok_[4] >= 3 && obs.failed_[5] >= 1; }));
    EXPECT_EQ(obs.ok_[0] + obs.failed_[0] + obs.failed_[1], 0) << "reported under an old index";
    EXPECT_EQ(obs.opened_, 0) << "the successor opened the line again";
    EXPECT_EQ(obs.closed_, 0);
  }
  {
    std::lock_guard l(first_obs.mu_);
    EXPECT_EQ(first_obs.closed_, 0) << "the halted poller closed the line";
  }
  SerialSpec slower = line;
  slower.baud = 9600;
  LineObserver third_obs;
  SerialLinePoller third(3, slower, {{0, meter("live", 1, 2000ms)}}, third_obs, second);
  EXPECT_TRUE(third.adopted_devices().empty());
  EXPECT_FALSE(third.line_adopted());
}

}  // namespace
}  // namespace facility::modbus
