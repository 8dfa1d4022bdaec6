// Config and profile files that are not what they seem: directories, FIFOs, devices, symlink
// loops, unreadable and oversized files are refused with a message that says what the path is;
// thousands of mistakes keep only the first kMaxConfigErrors messages; overlapping registers in
// a profile are refused at FILE:LINE:COL.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <future>

#include "daemon/config/config.h"
#include "test_util.h"

namespace facility {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

// The message load_config() gives for `path`, or "" if it loaded.
std::string load_error(const std::string& path) {
  try {
    load_config(path);
  } catch (const ConfigException& e) {
    return e.what();
  }
  return "";
}

TEST(ConfigInputs, ADirectoryIsRefusedNotThrownAsAStreamError) {
  TempDir dir;
  EXPECT_EQ(load_error(dir.path().string()),
            dir.path().string() + ": is a directory, not a file: give the path of a .yaml file");
}

TEST(ConfigInputs, AFifoIsRefusedWithoutWaitingForAWriter) {
  TempDir dir;
  const auto fifo = (dir.path() / "facilityd.yaml").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  // Opening a FIFO for reading blocks until a writer comes: run it where a hang shows.
  auto f = std::async(std::launch::async, [&] { return load_error(fifo); });
  ASSERT_EQ(f.wait_for(std::chrono::seconds(10)), std::future_status::ready)
      << "load_config hangs on a FIFO";
  EXPECT_NE(f.get().find(": is a FIFO (named pipe), not a file"), std::string::npos);
}

TEST(ConfigInputs, DevicesAreRefused) {
  EXPECT_NE(load_error("/dev/zero").find("/dev/zero: is a character device, not a file"),
            std::string::npos);
  EXPECT_NE(load_error("/dev/null").find("is a character device"), std::string::npos);
}

TEST(ConfigInputs, ASymlinkLoopIsNamed) {
  TempDir dir;
  fs::create_symlink(dir.path() / "b.yaml", dir.path() / "a.yaml");
  fs::create_symlink(dir.path() / "a.yaml", dir.path() / "b.yaml");
  EXPECT_NE(load_error((dir.path() / "a.yaml").string()).find("symlink loop"), std::string::npos);
}

TEST(ConfigInputs, AMissingFileIsNamed) {
  TempDir dir;
  EXPECT_NE(load_error((dir.path() / "nope.yaml").string()).find("no such file"),
            std::string::npos);
}

TEST(ConfigInputs, AFileOverTheSizeLimitIsRefusedBeforeItIsRead) {
  TempDir dir;
  const auto path = dir.write("big.yaml", "");
  // Sparse: one byte over the limit costs no disk and, refused by size, no memory.
  fs::resize_file(path, kMaxConfigFileBytes + 1);
  EXPECT_NE(load_error(path).find("is 16777217 bytes; config and profile files are limited to "
                                  "16 MiB"),
            std::string::npos);
  fs::resize_file(path, kMaxConfigFileBytes);  // at the limit: read, then parsed (and empty)
  EXPECT_EQ(load_error(path).find("limited to"), std::string::npos);
}

TEST(ConfigInputs, AnUnreadableFileIsNamed) {
  TempDir dir;
  const auto path = dir.write("secret.yaml", "daemon: {}\n");
  fs::permissions(path, fs::perms::none);
  fs::permissions(dir.path(), fs::perms::all);
  if (::geteuid() != 0) {
    EXPECT_NE(load_error(path).find("cannot open file: Permission denied"), std::string::npos);
    return;
  }
  // root reads anything: try it as nobody, in a child (setuid cannot be undone).
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(3);
    ::_exit(load_error(path).find("cannot open file: Permission denied") != std::string::npos ? 0
                                                                                                : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "3: could not become nobody; 1: wrong or no error";
}

TEST(ConfigInputs, ThousandsOfMistakesKeepTheFirstHundredAndCountTheRest) {
  TempDir dir;
  std::string text = "sites: []\n";
  for (int i = 0; i < 5000; ++i) text += "unknown_" + std::to_string(i) + ": 1\n";
  const auto path = dir.write("many.yaml", text);
  try {
    load_config(path);
    FAIL() << "5000 unknown keys accepted";
  } catch (const ConfigException& e) {
    EXPECT_EQ(e.errors().size(), kMaxConfigErrors);
    EXPECT_EQ(e.omitted(), 5000 - kMaxConfigErrors);
    EXPECT_EQ(e.total(), 5000u);
    // The kept ones are the first ones, in file order.
    EXPECT_EQ(e.errors().front().loc.line, 2);
    EXPECT_EQ(e.errors().back().loc.line, 101);
    const std::string what = e.what();
    EXPECT_NE(what.find("\n... and 4900 more problems not shown (the first 100 are)"),
              std::string::npos);
  }
}

// A profile's problems count against the same cap as the config's.
TEST(ConfigInputs, AProfilesMistakesShareTheCap) {
  TempDir dir;
  std::string profile = "name: p\npoints:\n";
  for (int i = 0; i < 150; ++i) {
    profile += "  - {name: p" + std::to_string(i) + ", function: input, address: " +
               std::to_string(i) + ", type: uint16, colour: red}\n";
  }
  dir.write("profiles/p.yaml", profile);
  const auto path = dir.write("site.yaml", R"(sites:
  - id: s1
    rooms: [{id: r1, rows: [{id: w1, cabinets: [{id: c1}]}]}]
    devices:
      - {id: m1, kind: meter, role: facility_total, profile: p, endpoint: "tcp://127.0.0.1:1", unit: 1}
)");
  try {
    load_config(path);
    FAIL() << "a profile with 150 unknown keys accepted";
  } catch (const ConfigException& e) {
    EXPECT_EQ(e.errors().size(), kMaxConfigErrors);
    EXPECT_GE(e.total(), 150u);
  }
}

const char* kSite = R"(sites:
  - id: s1
    rooms: [{id: r1, rows: [{id: w1, cabinets: [{id: c1}]}]}]
    devices:
      - {id: m1, kind: meter, role: facility_total, profile: p, endpoint: "tcp://127.0.0.1:1", unit: 1}
)";

TEST(ConfigInputs, PartlyOverlappingRegistersAreRefusedAtTheSecondPoint) {
  TempDir dir;
  dir.write("profiles/p.yaml", R"(name: p
points:
  - {name: active_power, function: holding, address: 4, type: float32, unit: W}
  - {name: energy, function: holding, address: 5, type: float32, unit: Wh}
)");
  const auto site = dir.write("site.yaml", kSite);
  EXPECT_EQ(load_error(site),
            (dir.path() / "profiles/p.yaml").string() +
                ":4:48: point \"energy\": holding registers 5-6 overlap registers 4-5 of point "
                "\"active_power\" (one register holds one value: check both addresses and types; "
                "is one of them 1-based?)");
}

TEST(ConfigInputs, AWideValueOverlappingALaterShortOneIsRefused) {
  TempDir dir;
  // The uint16 at 7 lies inside the float64 at 5-8, listed first.
  dir.write("profiles/p.yaml", R"(name: p
points:
  - {name: active_power, function: input, address: 5, type: float64, unit: W}
  - {name: voltage, function: input, address: 7, type: uint16, unit: V}
)");
  EXPECT_NE(load_error(dir.write("site.yaml", kSite))
                .find("point \"voltage\": input registers 7 overlap registers 5-8 of point "
                      "\"active_power\""),
            std::string::npos);
}

TEST(ConfigInputs, OverlapIsPerRegisterTable) {
  TempDir dir;
  // Same numbers in the holding and the input table: different registers.
  dir.write("profiles/p.yaml", R"(name: p
points:
  - {name: active_power, function: holding, address: 4, type: float32, unit: W}
  - {name: energy, function: input, address: 5, type: float32, unit: Wh}
)");
  EXPECT_EQ(load_error(dir.write("site.yaml", kSite)), "");
}

TEST(ConfigInputs, TheSameRegistersReadTwoWaysAndBitsOfAWordAreAllowed) {
  TempDir dir;
  dir.write("profiles/p.yaml", R"(name: p
points:
  - {name: active_power, function: holding, address: 0, type: float32, unit: W}
  - {name: status, function: holding, address: 2, type: uint16, unit: none, enum: {0: ok, 1: alarm}}
  - {name: status_code, function: holding, address: 2, type: uint16, unit: none}
  - {name: alarm, function: holding, address: 2, type: bool, bit: 0, unit: none}
  - {name: warning, function: holding, address: 2, type: bool, bit: 1, unit: none}
  - {name: energy, function: holding, address: 3, type: uint32, unit: Wh}
)");
  EXPECT_EQ(load_error(dir.write("site.yaml", kSite)), "");
}

// Every profile we ship passes the overlap check (a shipped profile that fails would stop every
// site that uses it).
TEST(ConfigInputs, EveryShippedProfileLoads) {
  int n = 0;
  for (const auto& e : fs::directory_iterator(fs::path(FACILITYD_SOURCE_DIR) / "config/profiles")) {
    if (e.path().extension() != ".yaml") continue;
    ++n;
    EXPECT_NO_THROW(load_profile(e.path().string())) << e.path();
  }
  EXPECT_GT(n, 5);
}

}  // namespace
}  // namespace facility
