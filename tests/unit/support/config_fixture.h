// A config file in a temporary directory for the tests of one config section: the section's
// text ("@DIR@" becomes the directory), then a small inventory with one PDU profile; and the
// check that a mistake is reported once, at its file:line:col.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "daemon/config/config.h"
#include "test_util.h"

namespace facility::testing {

inline const char* kFixtureProfile = R"(name: pdu
description: test pdu
source: synthetic
points:
  - {name: active_power, function: input, address: 0, type: uint32, unit: W}
)";

inline const char* kFixtureSites = R"(sites:
  - id: s1
    rooms:
      - id: r1
        rows:
          - id: row1
            cabinets:
              - {id: c1, status: sold}
)";

struct ConfigFixture {
  TempDir dir;
  std::string text, path;
  explicit ConfigFixture(std::string head, const std::string& sites = kFixtureSites) {
    for (auto pos = head.find("@DIR@"); pos != std::string::npos; pos = head.find("@DIR@"))
      head.replace(pos, 5, dir.path().string());
    dir.write("profiles/pdu.yaml", kFixtureProfile);
    text = head + sites;
    path = dir.write("site.yaml", text);
  }
  // 1-based line and column of the first occurrence of `needle` in the file.
  std::pair<int, int> where(const std::string& needle) const {
    const auto pos = text.find(needle);
    EXPECT_NE(pos, std::string::npos) << needle;
    int line = 1;
    std::size_t line_start = 0;
    for (std::size_t i = 0; i < pos; ++i) {
      if (text[i] == '\n') {
        ++line;
        line_start = i + 1;
      }
    }
    return {line, static_cast<int>(pos - line_start) + 1};
  }
  std::vector<ConfigError> errors() const {
    try {
      load_config(path);
    } catch (const ConfigException& e) {
      return e.errors();
    }
    return {};
  }
};

// Exactly one error, at `needle`, whose message contains `what`.
inline void expect_config_error_at(const std::string& head, const std::string& needle,
                                   const std::string& what) {
  ConfigFixture f(head);
  const auto errs = f.errors();
  ASSERT_EQ(errs.size(), 1u) << head << (errs.empty() ? "" : errs[0].format());
  const auto [line, col] = f.where(needle);
  EXPECT_EQ(errs[0].loc.file, f.path);
  EXPECT_EQ(errs[0].loc.line, line) << errs[0].format();
  EXPECT_EQ(errs[0].loc.column, col) << errs[0].format();
  EXPECT_NE(errs[0].message.find(what), std::string::npos) << errs[0].format();
}

}  // namespace facility::testing
