// Config loading: valid files load; every mistake is reported with file, line and column.
#include <gtest/gtest.h>

#include <cmath>

#include "daemon/config/config.h"
#include "facilityd_paths.h"
#include "test_util.h"

namespace facility {
namespace {

using testing::TempDir;

const char* kProfile = R"(name: pdu
description: test pdu
source: synthetic
points:
  - {name: active_power, function: input, address: 0, type: uint32, unit: W}
  - {name: energy, function: input, address: 2, type: uint32, order: CDAB, scale: 0.01, unit: kWh}
)";

const char* kGood = R"(daemon:
  listen: "127.0.0.1:10044"
defaults:
  interval: 10s
sites:
  - id: s1
    planned_cabinets: 10
    rooms:
      - id: r1
        rows:
          - id: row1
            cabinets:
              - {id: c1, status: sold}
              - {id: c2, breaker: {amps: 16, volts: 400, phases: 3}}
    devices:
      - {id: p1a, kind: pdu, profile: pdu, endpoint: "tcp://127.0.0.1:1502", unit: 1, cabinet: c1, feed: A}
      - {id: p1b, kind: pdu, profile: pdu, endpoint: "tcp://127.0.0.1:1502", unit: 2, cabinet: c1, feed: B}
      - {id: m1, kind: meter, role: facility_total, profile: pdu, endpoint: "tcp://127.0.0.1:1502", unit: 3, interval: 5s}
)";

struct Fixture {
  TempDir dir;
  std::string path;
  explicit Fixture(const std::string& cfg, const std::string& profile = kProfile) {
    dir.write("profiles/pdu.yaml", profile);
    path = dir.write("site.yaml", cfg);
  }
};

std::vector<ConfigError> errors_of(const Fixture& f) {
  try {
    load_config(f.path);
  } catch (const ConfigException& e) {
    return e.errors();
  }
  return {};
}

TEST(Config, LoadsValidFileWithDefaults) {
  Fixture f(kGood);
  Config c = load_config(f.path);
  ASSERT_EQ(c.sites.size(), 1u);
  const Site& s = c.sites[0];
  EXPECT_EQ(s.planned_cabinets, 10);
  ASSERT_EQ(s.cabinets.size(), 2u);
  EXPECT_DOUBLE_EQ(s.cabinets[0].rated_w, 4400);  // default 4.4 kW
  // Three-phase breaker: sqrt(3) x 400 V x 16 A = 11085.1 W.
  EXPECT_NEAR(s.cabinets[1].rated_w, std::sqrt(3.0) * 400 * 16, 1e-6);
  EXPECT_EQ(s.cabinets[0].feeds, (std::vector<std::string>{"A", "B"}));
  ASSERT_EQ(s.devices.size(), 3u);
  EXPECT_EQ(s.devices[0].interval, Millis(10000));
  EXPECT_EQ(s.devices[2].interval, Millis(5000));
  EXPECT_EQ(s.devices[2].role, MeterRole::kFacilityTotal);
  ASSERT_TRUE(s.devices[0].profile);
  EXPECT_EQ(s.devices[0].profile->points[1].spec.order, modbus::WordOrder::kCDAB);
  EXPECT_EQ(s.devices[0].endpoint.key(), "tcp://127.0.0.1:1502");
}

// Replaces the first occurrence of `from` in the good config.
std::string mutate(const std::string& from, const std::string& to) {
  std::string s = kGood;
  const auto pos = s.find(from);
  EXPECT_NE(pos, std::string::npos) << from;
  return s.replace(pos, from.size(), to);
}

struct BadCase {
  const char* name;
  std::string config;
  int line;
  const char* message_part;
};

class ConfigErrors : public ::testing::TestWithParam<BadCase> {};

TEST_P(ConfigErrors, ReportsLineAndReason) {
  const auto& c = GetParam();
  Fixture f(c.config);
  auto errs = errors_of(f);
  ASSERT_FALSE(errs.empty()) << c.name << ": expected an error";
  bool found = false;
  for (const auto& e : errs) {
    if (e.loc.line == c.line && e.message.find(c.message_part) != std::string::npos) found = true;
  }
  std::string all;
  for (const auto& e : errs) all += e.format() + "\n";
  EXPECT_TRUE(found) << c.name << ": wanted line " << c.line << " with \"" << c.message_part
                     << "\", got:\n"
                     << all;
  EXPECT_EQ(errs[0].loc.file, f.path);
}

INSTANTIATE_TEST_SUITE_P(
    All, ConfigErrors,
    ::testing::Values(
        BadCase{"unknown_top_key", mutate("defaults:", "defualts:"), 3, "unknown key \"defualts\""},
        BadCase{"unknown_cabinet_key", mutate("{id: c1, status: sold}", "{id: c1, stauts: sold}"),
                13, "unknown key \"stauts\""},
        BadCase{"bad_status", mutate("status: sold", "status: leased"), 13, "unknown status"},
        BadCase{"bad_duration", mutate("interval: 10s", "interval: 10 sec"), 4, "duration"},
        BadCase{"unknown_cabinet", mutate("cabinet: c1, feed: A", "cabinet: c9, feed: A"), 16,
                "unknown cabinet \"c9\""},
        BadCase{"unknown_feed", mutate("feed: B", "feed: C"), 17, "has no feed \"C\""},
        BadCase{"duplicate_unit", mutate("unit: 2", "unit: 1"), 17, "already used by device"},
        BadCase{"unknown_profile", mutate("profile: pdu, endpoint: \"tcp://127.0.0.1:1502\", unit: 1",
                                          "profile: pdx, endpoint: \"tcp://127.0.0.1:1502\", unit: 1"),
                16, "unknown profile \"pdx\""},
        BadCase{"bad_endpoint", mutate("tcp://127.0.0.1:1502\", unit: 3", "udp://x:1\", unit: 3"),
                18, "tcp://HOST:PORT"},
        BadCase{"meter_without_role", mutate("role: facility_total, ", ""), 18, "needs \"role\""},
        BadCase{"duplicate_device", mutate("{id: p1b", "{id: p1a"), 17, "duplicate device id"},
        BadCase{"rated_and_breaker", mutate("{id: c1, status: sold}",
                                            "{id: c1, rated_kw: 4.4, breaker: {amps: 1, volts: 1}}"),
                13, "not both"},
        BadCase{"planned_too_small", mutate("planned_cabinets: 10", "planned_cabinets: 1"), 7,
                "less than the cabinets"},
        BadCase{"timeout_over_interval", mutate("unit: 3, interval: 5s", "unit: 3, interval: 5s, timeout: 6s"),
                18, "shorter than the poll interval"},
        BadCase{"yaml_syntax", mutate("rooms:", "rooms: [\n"), 10, "YAML syntax error"}),
    [](const ::testing::TestParamInfo<BadCase>& i) { return std::string(i.param.name); });

TEST(Config, ProfileErrorsNameTheProfileFile) {
  std::string bad = kProfile;
  bad.replace(bad.find("order: CDAB"), 11, "order: ABDC");
  Fixture f(kGood, bad);
  auto errs = errors_of(f);
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_NE(errs[0].loc.file.find("profiles/pdu.yaml"), std::string::npos);
  EXPECT_EQ(errs[0].loc.line, 6);
  EXPECT_NE(errs[0].message.find("unknown word order \"ABDC\" (expected ABCD, CDAB, BADC, DCBA)"),
            std::string::npos);
}

TEST(Config, ReportsEveryProblemNotJustTheFirst) {
  std::string s = mutate("status: sold", "status: leased");
  s.replace(s.find("feed: B"), 7, "feed: Z");
  Fixture f(s);
  EXPECT_GE(errors_of(f).size(), 2u);
}

TEST(Config, DuplicateKeysAreErrors) {
  Fixture f(mutate("  interval: 10s", "  interval: 10s\n  interval: 20s"));
  auto errs = errors_of(f);
  ASSERT_FALSE(errs.empty());
  EXPECT_NE(errs[0].message.find("duplicate key \"interval\""), std::string::npos);
  EXPECT_EQ(errs[0].loc.line, 5);
}

TEST(Config, MissingFileIsAClearError) {
  try {
    load_config("/nonexistent/facilityd.yaml");
    FAIL();
  } catch (const ConfigException& e) {
    EXPECT_EQ(e.errors()[0].format(), "/nonexistent/facilityd.yaml: cannot open file: no such file");
  }
}

TEST(Config, Durations) {
  EXPECT_EQ(parse_duration("500ms"), Millis(500));
  EXPECT_EQ(parse_duration("15s"), Millis(15000));
  EXPECT_EQ(parse_duration("2m"), Millis(120000));
  EXPECT_EQ(parse_duration("1h"), Millis(3600000));
  EXPECT_EQ(parse_duration("1.5s"), Millis(1500));
  EXPECT_FALSE(parse_duration("15").has_value());
  EXPECT_FALSE(parse_duration("-1s").has_value());
  EXPECT_FALSE(parse_duration("0s").has_value());
}

// The shipped configurations must stay valid.
TEST(Config, ShippedConfigsLoad) {
  for (const char* rel : {"config/demo/facilityd.yaml", "config/examples/minimal.yaml"}) {
    const std::string p = std::string(FACILITYD_SOURCE_DIR) + "/" + rel;
    try {
      Config c = load_config(p);
      EXPECT_FALSE(c.sites.empty()) << rel;
    } catch (const ConfigException& e) {
      ADD_FAILURE() << rel << ":\n" << e.what();
    }
  }
}

TEST(ProfileSearchPath, TheConfigurationsDirectoryComesFirstThenTheSystemOnes) {
  const auto path = profile_search_path("/srv/site/profiles/../profiles");
  ASSERT_EQ(path.size(), 3u);
  EXPECT_EQ(path[0], std::filesystem::path("/srv/site/profiles"));
  EXPECT_EQ(path[1], std::filesystem::path(FACILITYD_SYSCONFDIR) / "profiles");
  EXPECT_EQ(path[2], std::filesystem::path(FACILITYD_DATADIR) / "profiles");
  // The installed configuration's own profiles_dir is the system one: listed once.
  EXPECT_EQ(profile_search_path(std::filesystem::path(FACILITYD_SYSCONFDIR) / "profiles").size(),
            2u);
  EXPECT_EQ(profile_search_path("").size(), 2u);
}

TEST(ProfileSearchPath, TheFirstDirectoryWithTheNameWinsAndNamesAreListedOnce) {
  TempDir site, shipped;
  site.write("pdu.yaml", kProfile);
  shipped.write("pdu.yaml", kProfile);
  shipped.write("meter.yaml", kProfile);
  shipped.write("README.txt", "not a profile");
  const std::vector<std::filesystem::path> path{site.path(), shipped.path()};
  EXPECT_EQ(find_profile_file(path, "pdu"), site.path() / "pdu.yaml");
  EXPECT_EQ(find_profile_file(path, "meter"), shipped.path() / "meter.yaml");
  EXPECT_TRUE(find_profile_file(path, "nothing").empty());
  EXPECT_EQ(available_profiles(path), (std::vector<std::string>{"meter", "pdu"}));
}

TEST(ProfileSearchPath, AnUnknownProfileNamesEveryDirectorySearched) {
  TempDir dir;
  dir.write("profiles/pdu.yaml", kProfile);
  const std::string path = dir.write("site.yaml", R"(sites:
  - id: s1
    rooms: [{id: r1, rows: [{id: a, cabinets: [{id: c1}]}]}]
    devices:
      - {id: p1, kind: pdu, profile: nope, endpoint: "tcp://127.0.0.1:1", cabinet: c1, feed: A}
)");
  try {
    load_config(path);
    FAIL() << "an unknown profile was accepted";
  } catch (const ConfigException& e) {
    ASSERT_EQ(e.errors().size(), 1u);
    const std::string& m = e.errors()[0].message;
    EXPECT_NE(m.find("unknown profile \"nope\""), std::string::npos) << m;
    EXPECT_NE(m.find((dir.path() / "profiles").string()), std::string::npos) << m;
    EXPECT_NE(m.find(FACILITYD_SYSCONFDIR), std::string::npos) << m;
    EXPECT_NE(m.find(FACILITYD_DATADIR), std::string::npos) << m;
    EXPECT_NE(m.find("available: pdu"), std::string::npos) << m;
  }
}

TEST(ConfigLoad, AConfigurationWithoutSitesIsValidAndPollsNothing) {
  TempDir dir;
  for (const char* text : {"daemon:\n  listen: \"127.0.0.1:10044\"\n", "sites: []\n"}) {
    const auto cfg = load_config(dir.write("site.yaml", text));
    EXPECT_TRUE(cfg.sites.empty());
    EXPECT_TRUE(cfg.all_devices().empty());
  }
}

}  // namespace
}  // namespace facility
