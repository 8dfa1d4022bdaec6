#!/usr/bin/env python3
"""Reports never block scrapes, and a second report while one runs gets 503 + Retry-After.

facilityd runs with a site of 2,000 cabinets (no devices: nothing to poll) whose history holds
120 days of synthetic hourly rows (2020), written by this test with Python's sqlite3 in the
documented format (docs/reports.md), so a report over them takes a noticeable time. While
such a report runs:
  * GET /metrics answers, and it answers before the report does (it was not queued behind it);
  * a second GET /reports/... gets 503 with a Retry-After header, immediately.
Both need the first report to be still running when they arrive: the scrape must end before
the first report's answer does, and only a running report can cause the 503. The test tries
again, up to 5 times, if the machine was so fast that the first report finished first.
"""
import os
import sqlite3
import struct
import sys
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402

CABINETS = 2000
DAYS = 120
T0 = 1577836800  # 2020-01-01T00:00:00Z, long before the daemon's own rows
CAB_RECORD = struct.Struct("<ffHHHHfH")


def config(wd, port):
    lines = [
        "daemon:",
        f'  listen: "127.0.0.1:{port}"',
        f"  state_dir: {os.path.join(wd, 'state')}",
        "defaults: {rated_kw: 4.4}",
        "history: {flush_interval: 1s}",
        "sites:",
        "  - id: big",
        "    rooms:",
        "      - id: r1",
        "        rows:",
        "          - id: w1",
        "            cabinets:",
    ]
    lines += [f"              - {{id: c{i:04d}, status: sold}}" for i in range(CABINETS)]
    path = os.path.join(wd, "facilityd.yaml")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def fill_history(db):
    """120 days of hourly rows for every cabinet of the daemon's own layout."""
    con = sqlite3.connect(db, timeout=30, isolation_level=None)
    try:
        layout = con.execute("SELECT id FROM layouts WHERE site = 'big' ORDER BY id DESC").fetchone()[0]
        con.execute("BEGIN IMMEDIATE")
        for hour in range(DAYS * 24):
            t = T0 + hour * 3600
            w = 1000.0 + (hour % 100) * 10
            rec = CAB_RECORD.pack(w, w + 200, 3600, 3600, 0, 0, 1000.0, 0)
            blob = struct.pack("<BI", 1, CABINETS) + rec * CABINETS
            con.execute("INSERT INTO cabinet_hour(site, t, layout, data) VALUES('big', ?, ?, ?)",
                        (t, layout, blob))
            con.execute("INSERT INTO site_hour(site, t, samples_s, cab_j, cab_s, cab_peak_w, "
                        "cab_known_s, cab_expected_s, cabinets_total, powered, powered_known, "
                        "powered_max) VALUES('big', ?, 3600, ?, 3600, ?, ?, ?, ?, ?, ?, ?)",
                        (t, w * CABINETS * 3600, (w + 200) * CABINETS, CABINETS * 3600.0,
                         CABINETS * 3600.0, CABINETS, CABINETS, CABINETS, CABINETS))
        con.execute("COMMIT")
    finally:
        con.close()


def get(url, timeout=120):
    """(status, headers, body, end time)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            body = r.read()
            return r.status, dict(r.headers), body, time.monotonic()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read(), time.monotonic()


def main():
    args = h.parse_args()
    c = h.Checks()
    with h.workspace("report-concurrency") as (wd, procs):
        port = h.free_port()
        cfg = config(wd, port)
        os.makedirs(os.path.join(wd, "state"))
        db = os.path.join(wd, "state", "history.sqlite")
        procs.start("facilityd", [os.path.join(args.build_dir, "facilityd"), "run", "--config", cfg,
                                  "--no-mqtt"])
        h.wait_port(port, timeout=60)
        h.wait_for("history layout written", lambda: os.path.exists(db) and sqlite3.connect(
            db, timeout=10).execute("SELECT COUNT(*) FROM layouts").fetchone()[0] > 0, timeout=60)
        t = time.monotonic()
        fill_history(db)
        print(f"  (history: {DAYS * 24} hourly rows x {CABINETS} cabinets written in "
              f"{time.monotonic() - t:.1f} s, {os.path.getsize(db) / 1e6:.0f} MB)")

        base = f"http://127.0.0.1:{port}"
        url = f"{base}/reports/big?format=json&from=2020-01-01&to=2020-04-30"
        # The report alone, for its duration and its figures.
        t = time.monotonic()
        status, _, body, end = get(url)
        alone = end - t
        c.check(status == 200 and b'"rows":2880' in body.replace(b" ", b""),
                f"report over {DAYS * 24} hours of {CABINETS} cabinets: HTTP {status}, "
                f"{alone:.2f} s")

        proven_scrape = proven_busy = False
        for attempt in range(5):
            if proven_scrape and proven_busy:
                break
            first = {}

            def run_first():
                first["start"] = time.monotonic()
                first["status"], _, _, first["end"] = get(url)

            th = threading.Thread(target=run_first)
            th.start()
            # Let the first request reach its handler: a quarter of its measured duration.
            time.sleep(min(max(alone / 4, 0.02), 1.0))
            s_start = time.monotonic()
            s_status, _, s_body, s_end = get(f"{base}/metrics", timeout=30)
            b_status, b_headers, b_body, b_end = get(url)
            th.join(180)
            c.check(first.get("status") == 200, f"attempt {attempt}: the running report completes "
                                                f"(HTTP {first.get('status')})")
            if first.get("end", 0) > s_end:
                proven_scrape = True
                c.check(s_status == 200 and b"facility_" in s_body,
                        f"attempt {attempt}: /metrics answered in {s_end - s_start:.3f} s while "
                        f"the report ran (it ended {first['end'] - s_end:.2f} s later)")
            # 503 is only possible while the first one holds the slot; 200 means it had already
            # finished computing (it may still have been sending its answer).
            if b_status == 503:
                proven_busy = True
                c.check(b_headers.get("Retry-After") == "5" and b_end < first.get("end", 0),
                        f"attempt {attempt}: a second report while one runs: HTTP 503, "
                        f"Retry-After {b_headers.get('Retry-After')!r}, {b_body[:60]!r}")
            elif b_status != 200:
                c.check(False, f"attempt {attempt}: the second report got HTTP {b_status}")
        c.check(proven_scrape, "a scrape was answered while a report was running")
        c.check(proven_busy, "a second report arrived while one was running")
        # The slot is free again afterwards.
        status, _, _, _ = get(url)
        c.check(status == 200, f"after both, a report is served again (HTTP {status})")
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
