#!/usr/bin/env python3
"""floor_table.py LOG: the log of bench/floor_matrix.sh as a Markdown table.

Runs come in groups of five per size, in the order floor_matrix.sh runs them: the floor, after
(MQTT on), before (MQTT on), after (MQTT off), before (MQTT off). Each facilityd row is divided
by the floor of its own group; the load average is with_load.sh's at the start of the run."""
import re
import sys

ORDER = ["floor", "after, MQTT on", "before, MQTT on", "after, MQTT off", "before, MQTT off"]


def fields(line):
    return dict(x.split("=", 1) for x in line.split()[1:] if "=" in x)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    runs, loads = [], []
    for line in open(sys.argv[1]):
        if line.startswith("#") and "cmd:" in line:
            if not loads or loads[-1] != line:  # with_load.sh may log a start twice
                loads.append(line)
        elif line.startswith(("floor ", "facilityd ")):
            runs.append(fields(line.strip()))
    print("| devices × interval | run | µs/value | ÷ floor | polls achieved (overruns) "
          "| fresh % (oldest, s) | peak RSS MB | scrape ms (body) | CPU s: Paho / rest "
          "| load avg at start |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    floor = None
    for i, d in enumerate(runs):
        m = re.search(r"loadavg_start: (\S+ \S+ \S+)", loads[i]) if i < len(loads) else None
        load = m.group(1) if m else ""
        who = ORDER[i % len(ORDER)]
        size = f"{d['devices']} × {d['interval']} s"
        if who == "floor":
            floor = float(d["us_per_value"])
            print(f"| {size} | floor | {d['us_per_value']} | 1 | {d.get('on_time_pct', '')} % "
                  f"(on time) | | {d['peak_rss_mb']} | | {d['cpu_s']} | {load} |")
            continue
        ratio = float(d["us_per_value"]) / floor
        rest = float(d["cpu_s"]) - float(d["cpu_mqtt_s"])
        print(f"| {size} | {who} | {d['us_per_value']} | {ratio:.2f} | {d['achieved_pct']} % "
              f"({d.get('poll_overruns', '?')}) | {d['fresh_pct']} ({d['age_max_s']}) "
              f"| {d['peak_rss_mb']} | {d['scrape_ms']} ({int(d['scrape_bytes']) / 1e6:.1f} MB) "
              f"| {d['cpu_mqtt_s']} / {rest:.2f} | {load} |")


if __name__ == "__main__":
    main()
