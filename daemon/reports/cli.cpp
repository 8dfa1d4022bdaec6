#include "daemon/reports/cli.h"

#include <CLI/CLI.hpp>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>

#include "daemon/sinks/history/history.h"
#include "daemon/reports/report.h"

namespace facility {

CLI::App* add_report_subcommand(CLI::App& app, ReportCliOptions& opt) {
  auto* cmd = app.add_subcommand(
      "report",
      "Write a capacity report of one site from the history database: capacity and headroom, "
      "utilisation bands, stranded power and its cost, occupancy against the build-out plan with "
      "a forecast, energy and PUE, and the data coverage of the period (docs/reports.md).\n"
      "Examples:\n"
      "  facilityd report -c /etc/facilityd/facilityd.yaml --site hl1\n"
      "  facilityd report -c facilityd.yaml --site hl1 --from 2025-01-01 --to 2025-04-01 "
      "--format html --output hl1-q1.html\n"
      "  facilityd report -c facilityd.yaml --site bj-lease --from -7d --format csv");
  cmd->add_option("-c,--config", opt.config, "Configuration file (YAML)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("-s,--site", opt.site, "Site id")->required();
  cmd->add_option("--from", opt.from,
                  "Start (UTC): YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS], or -30d / -12h / -90m from "
                  "now; default 30 days before --to, or where the history starts if later");
  cmd->add_option("--to", opt.to,
                  "End (UTC, exclusive), same forms; default now, and never after now");
  cmd->add_option("-f,--format", opt.format,
                  "text, markdown, csv, json or html (default: from --output's extension, else "
                  "text)");
  cmd->add_option("-o,--output", opt.output, "Write to this file instead of stdout");
  cmd->add_option("--db", opt.db,
                  "History database (default: <daemon.state_dir>/history.sqlite)");
  cmd->add_option("--resolution", opt.resolution,
                  "minute or hour (default: minutes for periods up to 7 days that the minute "
                  "rows cover from where the history starts, else hours)");
  cmd->footer("Exit status: 0 when the report was written, 1 when it could not be (the "
              "configuration, the history database, the period or the output file), 2 for a "
              "bad command line.");
  return cmd;
}

int run_report_cli(const ReportCliOptions& opt) {
  try {
    const Config cfg = load_config(opt.config);
    ReportRequest req;
    req.site = opt.site;
    req.now = std::chrono::duration_cast<std::chrono::seconds>(
                  Clock::now().time_since_epoch()).count();
    if (!opt.from.empty()) req.from = parse_report_time(opt.from, req.now);
    if (!opt.to.empty()) req.to = parse_report_time(opt.to, req.now);
    if (opt.resolution == "minute") req.resolution = Resolution::kMinute;
    else if (opt.resolution == "hour") req.resolution = Resolution::kHour;
    else if (!opt.resolution.empty()) throw ReportError("--resolution must be minute or hour");

    std::string fmt_s = opt.format;
    if (fmt_s.empty() && !opt.output.empty()) {
      const auto dot = opt.output.rfind('.');
      if (dot != std::string::npos) fmt_s = opt.output.substr(dot + 1);
      if (!parse_report_format(fmt_s)) fmt_s.clear();
    }
    const auto fmt = parse_report_format(fmt_s.empty() ? "text" : fmt_s);
    if (!fmt) throw ReportError("--format must be text, markdown, csv, json or html");

    auto db = HistoryDb::open_reader(opt.db.empty() ? history_path(cfg) : opt.db);
    const bool tty = isatty(STDERR_FILENO) != 0;
    auto last = std::chrono::steady_clock::now() - std::chrono::seconds(1);
    ReportProgress progress;
    if (tty) {
      progress = [&](double f) {
        const auto now = std::chrono::steady_clock::now();
        if (f < 1.0 && now - last < std::chrono::milliseconds(200)) return;
        last = now;
        std::fprintf(stderr, "\rreport %s: %3.0f %%", opt.site.c_str(), f * 100);
        if (f >= 1.0) std::fprintf(stderr, "\r\033[K");
        std::fflush(stderr);
      };
    }
    const Report rep = compute_report(*db, cfg, req, progress);
    const std::string out = render_report(rep, *fmt);
    if (opt.output.empty()) {
      std::fwrite(out.data(), 1, out.size(), stdout);
    } else {
      std::ofstream f(opt.output, std::ios::binary);
      f << out;
      if (!f) throw ReportError("cannot write " + opt.output);
    }
    return 0;
  } catch (const ConfigException& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "facilityd report: %s\n", e.what());
    return 1;
  }
}

}  // namespace facility
