// `facilityd report`: computes a capacity report from the history database of a configuration
// and writes it to stdout or a file. Shows progress on stderr when stderr is a terminal.
#pragma once

#include <string>

namespace CLI {
class App;
}

namespace facility {

struct ReportCliOptions {
  std::string config, site, from, to, format, output, db, resolution;
};

// Adds the subcommand to `app`, filling `opt`; returns it (test `*cmd` after parsing).
CLI::App* add_report_subcommand(CLI::App& app, ReportCliOptions& opt);
// Exit code: 0 written, 1 bad input or unreadable history (message on stderr).
int run_report_cli(const ReportCliOptions& opt);

}  // namespace facility
