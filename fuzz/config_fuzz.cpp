// libFuzzer target: the configuration and profile loader. The input is a configuration file,
// optionally followed by a line "#--profile--" and a profile (register map) file; the profile is
// written as profiles/fuzz.yaml next to the configuration (its default profiles_dir), beside
// copies of the shipped profiles, and also loaded alone with load_profile().
//
// Contract checked: a bad file is a ConfigException with at least one FILE:LINE:COL error; any
// other exception, a crash, a hang or unbounded memory is a bug.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "daemon/config/config.h"
#include "test_util.h"  // tests/unit/support: TempDir

namespace {

facility::testing::TempDir& dir() {
  static facility::testing::TempDir d;
  return d;
}

void expect_errors(const facility::ConfigException& e) {
  if (e.errors().empty()) __builtin_trap();
  for (const auto& err : e.errors()) {
    if (err.message.empty()) __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  namespace fs = std::filesystem;
  fs::create_directories(dir().path() / "profiles");
  // The shipped profiles, so that a configuration can name them.
  for (const auto& f : fs::directory_iterator(FACILITYD_SOURCE_DIR "/config/profiles")) {
    fs::copy_file(f.path(), dir().path() / "profiles" / f.path().filename(),
                  fs::copy_options::overwrite_existing);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  constexpr std::string_view kMarker = "#--profile--\n";
  const std::size_t cut = in.find(kMarker);
  const std::string_view config = in.substr(0, cut);
  const std::string_view profile =
      cut == std::string_view::npos ? std::string_view() : in.substr(cut + kMarker.size());
  const std::string profile_path = dir().write("profiles/fuzz.yaml", std::string(profile));
  const std::string config_path = dir().write("facilityd.yaml", std::string(config));
  try {
    (void)facility::load_profile(profile_path);
  } catch (const facility::ConfigException& e) {
    expect_errors(e);
  }
  try {
    (void)facility::load_config(config_path);
  } catch (const facility::ConfigException& e) {
    expect_errors(e);
  }
  return 0;
}
