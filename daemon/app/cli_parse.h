// The command line of facilityd and facility-sim: one rule for how a parse ends.
//
// Thread-safety: call from main() only.
#pragma once

#include <CLI/CLI.hpp>

#include <optional>

namespace facility {

// Parses `argv` into `app`. Returns the exit status when the program should stop here: 0 after
// --help or --version (printed), 2 for any bad command line (the error printed), as every
// --help of ours says. nullopt: go on.
inline std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;  // CLI11 would return its own codes (105-109)
  }
  return std::nullopt;
}

}  // namespace facility
