// Helpers for the MQTT tests that run against a real mosquitto: child processes that are always
// reaped, a broker on a free loopback port with a config the test writes, a mosquitto_sub
// recorder, and synthetic snapshots.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "daemon/model/model.h"
#include "test_util.h"

extern char** environ;

namespace facility::testing {

using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;

inline constexpr const char* kMosquitto = "/usr/sbin/mosquitto";
inline constexpr const char* kMosquittoSub = "/usr/bin/mosquitto_sub";

// Polls a condition we can observe (bounded); never a fixed sleep in place of a condition.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = 10s) {
  const auto deadline = Steady::now() + timeout;
  for (;;) {
    if (pred()) return true;
    if (Steady::now() >= deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
}

inline int free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  int port = -1;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

inline bool port_accepts(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A child process that is always reaped: SIGKILL + waitpid in the destructor if still running.
class Child {
 public:
  Child(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env,
        const std::string& log_path, bool append = false) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    std::vector<std::string> env_store;
    for (char** e = environ; *e; ++e) env_store.emplace_back(*e);
    for (const auto& e : extra_env) env_store.push_back(e);
    std::vector<char*> env;
    for (auto& e : env_store) env.push_back(e.data());
    env.push_back(nullptr);

    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log_path.c_str(),
                                     O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC), 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    pid_t pid = -1;
    if (posix_spawn(&pid, args[0], &fa, nullptr, args.data(), env.data()) == 0) pid_ = pid;
    posix_spawn_file_actions_destroy(&fa);
  }
  ~Child() { kill_and_wait(SIGKILL); }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }
  bool running() {
    if (pid_ <= 0) return false;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    return true;
  }
  // Sends `sig`, waits up to 5 s, then SIGKILL. Always reaps.
  void kill_and_wait(int sig) {
    if (pid_ <= 0) return;
    ::kill(pid_, sig);
    const auto deadline = Steady::now() + 5s;
    while (Steady::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(10ms);
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
};

// mosquitto on 127.0.0.1:port with anonymous access. Not persistent: a restart forgets retained
// messages and sessions. Persistent: sessions of clients that connect with clean session off
// (Subscriber::kPersistent) survive a restart, with every QoS 1 message published while they
// were away - how a test sees everything published right after the broker comes back.
class Mosquitto {
 public:
  explicit Mosquitto(int port, bool persistent = false, const std::string& extra = "")
      : port_(port) {
    // Started as root, mosquitto drops to the "mosquitto" user: its database directory must
    // be writable for that user.
    const auto db = dir_.path() / "db";
    std::filesystem::create_directories(db);
    std::filesystem::permissions(db, std::filesystem::perms::all);
    // max_queued_messages 0: no limit on what the broker queues for a slow or absent
    // subscriber (default 1000, beyond which it drops silently).
    const std::string persistence =
        persistent ? "persistence true\npersistence_location " + db.string() + "/\n"
                   : "persistence false\n";
    conf_ = dir_.write("mosquitto.conf", "listener " + std::to_string(port) +
                                             " 127.0.0.1\n"
                                             "allow_anonymous true\n"
                                             "log_dest stdout\n"
                                             "log_type all\n"
                                             "max_queued_messages 0\n" +
                                             persistence + extra);
    log_ = (dir_.path() / "mosquitto.log").string();
    std::filesystem::permissions(dir_.path(), std::filesystem::perms::owner_all |
                                                  std::filesystem::perms::others_exec |
                                                  std::filesystem::perms::group_exec);
  }
  ~Mosquitto() { stop(); }
  Mosquitto(const Mosquitto&) = delete;
  Mosquitto& operator=(const Mosquitto&) = delete;

  bool start() {
    // Each start appends to the log, so that a failure shows every run of the broker.
    proc_ = std::make_unique<Child>(std::vector<std::string>{kMosquitto, "-c", conf_},
                                    std::vector<std::string>{}, log_, /*append=*/true);
    return eventually([&] { return proc_->running() && port_accepts(port_); }, 5s);
  }
  void stop() {
    if (proc_) proc_->kill_and_wait(SIGTERM);
    proc_.reset();
  }
  // SIGKILL: no clean shutdown (also works on a SIGSTOPped broker).
  void kill() {
    if (proc_) proc_->kill_and_wait(SIGKILL);
    proc_.reset();
  }
  int port() const { return port_; }
  pid_t pid() const { return proc_ ? proc_->pid() : -1; }
  std::string log() const { return read_file(log_); }

 private:
  int port_;
  TempDir dir_;
  std::string conf_, log_;
  std::unique_ptr<Child> proc_;
};

// Records every message (in arrival order) and the last one per topic with its retain flag (set
// only on retained messages delivered at subscription, i.e. what a late subscriber sees). It is
// a mosquitto_sub process, not a second Paho client: Paho C serves all clients of a process
// from one select() loop that notices a new socket only after its 1 s timeout, which made every
// in-process subscriber cost seconds. mosquitto_sub flushes each message; -F prints
// "<retained> <topic> <payload>".
class Subscriber {
 public:
  // Arguments for a persistent session with client id `id` (needs a persistent Mosquitto).
  static std::vector<std::string> persistent(const std::string& id) { return {"-c", "-i", id}; }

  struct Msg {
    std::string topic;
    std::string payload;
    bool retained = false;
  };

  // `format` must start with "%r %t " (the parser needs the flag and the topic); the rest of
  // the line is what Msg::payload holds.
  Subscriber(int port, const std::string& filter, std::vector<std::string> extra_args = {},
             const std::string& format = "%r %t %p")
      : out_((dir_.path() / "sub.out").string()) {
    std::vector<std::string> argv{kMosquittoSub, "-h", "127.0.0.1", "-p", std::to_string(port),
                                  "-q", "1", "-t", filter, "-F", format};
    argv.insert(argv.end(), extra_args.begin(), extra_args.end());
    proc_ = std::make_unique<Child>(argv, std::vector<std::string>{}, out_);
  }

  bool wait(const std::function<bool(const std::map<std::string, Msg>&)>& pred,
            std::chrono::milliseconds timeout = 10s) {
    return eventually(
        [&] {
          refresh();
          return pred(last_);
        },
        timeout);
  }
  bool wait_payload(const std::string& topic, const std::string& payload,
                    std::chrono::milliseconds timeout = 10s) {
    return wait(
        [&](const auto& m) {
          const auto it = m.find(topic);
          return it != m.end() && it->second.payload == payload;
        },
        timeout);
  }
  std::optional<Msg> get(const std::string& topic) {
    refresh();
    const auto it = last_.find(topic);
    if (it == last_.end()) return std::nullopt;
    return it->second;
  }
  const std::vector<Msg>& all() {
    refresh();
    return all_;
  }
  std::string output() const { return read_file(out_); }

 private:
  // Parses complete lines appended since the last call. Our payloads are single-line.
  void refresh() {
    const std::string data = read_file(out_);
    while (consumed_ < data.size()) {
      const auto nl = data.find('\n', consumed_);
      if (nl == std::string::npos) break;
      const std::string line = data.substr(consumed_, nl - consumed_);
      consumed_ = nl + 1;
      const auto sp = line.find(' ', 2);
      if (line.size() < 3 || (line[0] != '0' && line[0] != '1') || line[1] != ' ' ||
          sp == std::string::npos)
        continue;  // not a message line (e.g. an error printed by mosquitto_sub)
      Msg m{line.substr(2, sp - 2), line.substr(sp + 1), line[0] == '1'};
      last_[m.topic] = m;
      all_.push_back(std::move(m));
    }
  }

  TempDir dir_;
  std::string out_;
  std::unique_ptr<Child> proc_;  // after dir_: the process ends before its output file goes
  std::size_t consumed_ = 0;
  std::map<std::string, Msg> last_;
  std::vector<Msg> all_;
};

// Creates a persistent session (clean session off, QoS 1 subscription) and disconnects: from now
// on the broker keeps every matching message for `id` until a Subscriber with
// Subscriber::persistent(id) collects them.
inline bool register_session(int port, const std::string& id, const std::string& filter) {
  TempDir dir;
  Child c({kMosquittoSub, "-h", "127.0.0.1", "-p", std::to_string(port), "-q", "1", "-t", filter,
           "-c", "-i", id, "-E"},
          {}, (dir.path() / "register.log").string());
  return eventually([&] { return !c.running(); }, 5s);
}

// Sites with N sold cabinets each ("c001".."cNNN"), every cabinet drawing `watts` on feed A,
// plus the alerts the test sets.
struct TestFacility {
  std::shared_ptr<Config> cfg = std::make_shared<Config>();
  int cabinets;
  std::vector<AlertState> alerts;

  TestFacility(const std::vector<std::string>& sites, int n) : cabinets(n) {
    cfg->sites.reserve(sites.size());
    for (const auto& id : sites) {
      Site s;
      s.id = id;
      s.name = "Site " + id;
      for (int i = 1; i <= n; ++i) {
        Cabinet c;
        char buf[16];
        std::snprintf(buf, sizeof buf, "c%03d", i);
        c.id = buf;
        c.site = id;
        c.room = "hall1";
        c.row = "r1";
        c.rated_w = 5000;
        c.feeds = {"A"};
        c.status = CabinetStatus::kSold;
        s.cabinets.push_back(c);
      }
      cfg->sites.push_back(std::move(s));
    }
  }

  std::shared_ptr<const FacilitySnapshot> snapshot(TimePoint t, double watts) const {
    auto snap = std::make_shared<FacilitySnapshot>();
    snap->computed_at = t;
    snap->config = cfg;
    snap->alerts = alerts;
    for (const auto& s : cfg->sites) {
      SiteSnapshot ss;
      ss.site = &s;
      ss.it_power_w = watts * static_cast<double>(s.cabinets.size());
      ss.it_power_source = "pdu_sum";
      ss.it_coverage = 1;
      ss.rated_w = 5000.0 * static_cast<double>(s.cabinets.size());
      ss.cabinets_total = ss.cabinets_powered = ss.cabinets_sold =
          static_cast<int>(s.cabinets.size());
      for (const auto& c : s.cabinets) {
        CabinetSnapshot cs;
        cs.cabinet = &c;
        FeedPower f;
        f.feed = "A";
        f.power_w = watts;
        cs.feeds = {f};
        cs.power_w = watts;
        cs.utilization = watts / c.rated_w;
        cs.powered = true;
        cs.quality = Quality::kGood;
        ss.cabinets.push_back(cs);
      }
      snap->sites.push_back(std::move(ss));
    }
    return snap;
  }
  // Summary + cabinets; no devices or cooling units.
  std::uint64_t messages_per_site() const { return 1 + static_cast<std::uint64_t>(cabinets); }
};

}  // namespace facility::testing
