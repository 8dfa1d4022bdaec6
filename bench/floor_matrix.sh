#!/usr/bin/env bash
# floor_matrix.sh BEFORE AFTER [LOG]
#
# Two facilityd builds against the physical floor, with ../shared/bench (the figures of record,
# bench/RESULTS.md "Site scale at the physical floor"). For each size (100, 1,000 and 6,000
# devices polled every second, 6,000 every 10 s) one run each of: the floor client, AFTER with
# MQTT, BEFORE with MQTT, AFTER without, BEFORE without; every run through with_load.sh, which
# waits for a 1-minute load average <= 1.5 and logs the load averages. Summary lines go to LOG
# (/tmp/floor-matrix.log). About 25 minutes; nothing else should run meanwhile.
#
#   git worktree add /tmp/before <commit> && (cd /tmp/before && scripts/build)  # or any build
#   bench/floor_matrix.sh /tmp/before/build/facilityd build/facilityd
#   bench/floor_table.py /tmp/floor-matrix.log
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 BEFORE AFTER [LOG]" >&2; exit 2; }
BEFORE=$(realpath "$1") AFTER=$(realpath "$2") LOG=${3:-/tmp/floor-matrix.log}
SHARED=$(cd "$(dirname "$0")/../../shared/bench" && pwd)
# The harness builds its farm and floor client next to its sources: run a copy.
B=$(mktemp -d /tmp/fbench.XXXXXX)
cp -r "$SHARED"/. "$B"/
W="$B/with_load.sh $LOG"
size() {  # N INTERVAL SECONDS BASE_PORT
  export BASE_PORT=$4
  $W "$B/run_floor.sh" "$1" "$2" "$3"
  FACILITYD=$AFTER MQTT=1 $W "$B/run_facilityd.sh" "$1" "$2" "$3"
  FACILITYD=$BEFORE MQTT=1 $W "$B/run_facilityd.sh" "$1" "$2" "$3"
  FACILITYD=$AFTER MQTT=0 $W "$B/run_facilityd.sh" "$1" "$2" "$3"
  FACILITYD=$BEFORE MQTT=0 $W "$B/run_facilityd.sh" "$1" "$2" "$3"
  unset BASE_PORT
}
size 100 1 30 15000
size 1000 1 30 15000
# 6,000 endpoints from port 20000: 15000 + 6000 would cover the daemon's and broker's ports.
size 6000 1 30 20000
size 6000 10 60 20000
echo "done: $LOG"
