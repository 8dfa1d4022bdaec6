// The embedded history: per cabinet and per minute average and peak power (and the seconds
// powered, overloaded, at negative failover headroom), per site and per minute IT, facility and
// cooling energy, cabinet counts and coverage, kept in SQLite (WAL) in the daemon's state
// directory, with hourly rollups kept much longer than the minutes. Capacity reports
// (daemon/reports/report.h) read it. docs/reports.md describes the schema and what each figure
// means.
//
// Three pieces, a header each (this one includes them all):
//   * HistoryRecorder (recorder.h) folds each model snapshot into the minute in progress. It runs
//   on the
//     model thread and is cheap (a few additions per cabinet); it never touches the disk.
//   * HistoryWriter (writer.h) owns a thread and a SQLite connection: completed minutes are handed
//   to it
//     and written in one transaction per flush interval; it rolls complete hours up and prunes
//     old rows. When the disk is slow or failing, completed minutes wait in memory up to
//     `history.max_pending`; beyond that the oldest are dropped and counted.
//   * HistoryDb (history_db.h) is one SQLite connection with the schema and the read and write
//   queries. A
//     report opens its own read-only connection: with WAL, readers and the writer do not block
//     each other.
//
// Energy in the history is the model's power integrated over its cycles (power x the time
// since the previous cycle, at most kMaxSampleGap), counted only while the value is known; the
// seconds known are stored next to it, so every figure carries its coverage. What is stored is
// in records.h; the sink that feeds the recorder and the writer is history_sink.h. The model's
// energy grid is stored too, to restore the PUE windows at start-up (restore.h).
#pragma once

#include "daemon/sinks/history/history_db.h"
#include "daemon/sinks/history/recorder.h"
#include "daemon/sinks/history/records.h"
#include "daemon/sinks/history/restore.h"
#include "daemon/sinks/history/writer.h"
