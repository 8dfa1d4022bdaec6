#!/usr/bin/env python3
"""Fault isolation, staleness and transports end to end: facility-sim serves a small site over
Modbus TCP (gateway G1), RTU over TCP (gateway G2) and RTU on a serial line (a socat pty pair);
facilityd polls every device each second. Then faults are switched on while it runs:

  c1 PDU A  never answers         c2 PDU A  answers "busy" (exception 6)
  c3 PDU A  illegal address inside its batched read      c4 PDU A  closes the connection

Checked on /metrics: each fault is counted under its result class; the silent PDU's value
disappears (stale, never frozen) while its device shows down; the PDU with one bad register
stays up and keeps delivering its other points; devices on the other endpoints keep their
schedule (no overruns, one poll per second); the serial meters deliver; and facility-sim's
request log shows only function codes 1-4 over the whole run.
"""
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402


def write_config(wd, src, g1, g2, tty):
    cabs = [f"{{id: c{i}, status: sold}}" for i in range(1, 7)]
    devs = []
    for i in range(1, 7):
        ep, base = (f"tcp://127.0.0.1:{g1}", 0) if i <= 3 else (f"rtu-over-tcp://127.0.0.1:{g2}", 3)
        for j, feed in enumerate("AB"):
            unit = 2 * (i - base) - 1 + j
            devs.append(f"{{id: c{i}-pdu-{feed.lower()}, kind: pdu, profile: generic-pdu-1ph, "
                        f"endpoint: \"{ep}\", unit: {unit}, cabinet: c{i}, feed: {feed}}}")
    for unit, role in ((1, "facility_total"), (2, "it_total")):
        devs.append(f"{{id: meter-{role}, kind: meter, role: {role}, profile: generic-energy-meter, "
                    f"endpoint: \"rtu://{tty}\", unit: {unit}}}")
    extra = f"endpoints:\n  - {{endpoint: \"rtu://{tty}\", baud: 19200, parity: even}}\n"
    path = os.path.join(wd, "facilityd.yaml")
    with open(path, "w") as f:
        f.write(h.one_row_site(src, cabs, devs, extra=extra))
    return path


def main():
    args = h.parse_args()
    build, src = args.build_dir, args.source_dir
    facilityd = os.path.join(build, "facilityd")
    sim = os.path.join(build, "facility-sim")
    c = h.Checks()
    if not shutil.which("socat"):
        c.check(False, "socat is installed (scripts/install-deps)")
        return c.finish()
    with h.workspace("faults") as (wd, procs):
        tty_a, tty_b = os.path.join(wd, "ttyA"), os.path.join(wd, "ttyB")
        procs.start("socat", ["socat", f"pty,raw,echo=0,link={tty_a}", f"pty,raw,echo=0,link={tty_b}"])
        h.wait_for("socat pty pair", lambda: os.path.exists(tty_a) and os.path.exists(tty_b), 10, 0.1)
        g1, g2 = h.free_port(), h.free_port()
        cfg = write_config(wd, src, g1, g2, tty_a)
        r = subprocess.run([facilityd, "check-config", cfg], capture_output=True, text=True)
        c.check(r.returncode == 0, f"check-config accepts tcp, rtu-over-tcp and rtu endpoints ({r.stdout.strip()}{r.stderr.strip()})")
        faults = os.path.join(wd, "faults.txt")
        stats = os.path.join(wd, "stats.json")
        procs.start("sim", [sim, "--config", cfg, "--fault-file", faults, "--stats", stats,
                            "--serial", f"rtu://{tty_a}={tty_b}"])
        h.wait_port(g1)
        h.wait_port(g2)
        # Commissioning before the daemon holds the serial line: probe a meter on it.
        r = subprocess.run([facilityd, "probe", "--device", "meter-it_total", "--config", cfg],
                           capture_output=True, text=True, timeout=60)
        c.check(r.returncode == 0 and "active_power" in r.stdout and "holding 4" in r.stdout,
                f"probe reads a meter on the serial line (rc {r.returncode}: "
                f"{(r.stdout + r.stderr).strip()[:400]})")
        port = h.free_port()
        procs.start("facilityd", [facilityd, "run", "--config", cfg, "--listen", f"127.0.0.1:{port}"])
        url = f"http://127.0.0.1:{port}/metrics"

        def scrape():
            return h.parse_metrics(h.http_get(url))

        def all_up():
            s = scrape()
            ups = [v for n, l, v in s if n == "facility_device_up"]
            return s if len(ups) == 14 and all(v == 1 for v in ups) else None

        s0 = h.wait_for("all 14 devices up (tcp, rtu-over-tcp, serial rtu)", all_up, timeout=60)
        c.check(True, "all 14 devices up over tcp, rtu-over-tcp and a serial RTU line")
        c.check(h.find(s0, "facility_site_facility_power_watts", site="s1") is not None,
                "the serial meters deliver: site facility power is known")
        c.check(h.find(s0, "facility_cabinet_feed_power_watts", cabinet="c1", feed="A") is not None,
                "c1 feed A power is exported before the fault")

        with open(faults, "w") as f:
            f.write("c1-pdu-a=silent\nc2-pdu-a=busy\nc3-pdu-a=illegal:1\nc4-pdu-a=close\n")
        t_fault = time.time()
        # Healthy devices: the serial meters (a fault-free line), and the other PDUs on G2, which
        # share that gateway with the closing c4-pdu-a (so this also checks that a closing
        # neighbour costs them nothing). G1's healthy B-side PDUs share it with the silent,
        # busy and illegal faults and are not held to a schedule here.
        healthy = ["meter-facility_total", "meter-it_total", "c4-pdu-b", "c5-pdu-a", "c5-pdu-b",
                   "c6-pdu-a", "c6-pdu-b"]

        def reads(s, dev):
            return h.find(s, "facility_modbus_requests_total", device=dev, result="ok") or 0

        def ep_polls(s, ep):
            return h.find(s, "facility_modbus_poll_duration_seconds_count", endpoint=ep) or 0

        def faults_seen():
            s = scrape()
            ok = (h.find(s, "facility_device_up", device="c1-pdu-a") == 0 and
                  h.find(s, "facility_cabinet_feed_power_watts", cabinet="c1", feed="A") is None and
                  (h.find(s, "facility_modbus_requests_total", device="c2-pdu-a", result="exception_6") or 0) > 0 and
                  (h.find(s, "facility_modbus_requests_total", device="c4-pdu-a", result="connection") or 0) > 0 and
                  h.find(s, "facility_modbus_unreadable_points", device="c3-pdu-a") == 1)
            return s if ok else None

        time.sleep(1)
        s1 = scrape()
        t1 = time.time()
        # Polls are counted per endpoint; per device, successful reads / reads per poll. Before
        # the faults every poll succeeds, which gives each endpoint's reads per poll.
        serial_ep, g2_ep = f"rtu://{tty_a}", f"rtu-over-tcp://127.0.0.1:{g2}"
        per_poll = {}
        for ep, devs in ((serial_ep, ["meter-facility_total", "meter-it_total"]),
                         (g2_ep, [f"c{i}-pdu-{x}" for i in (4, 5, 6) for x in "ab"])):
            n_reads, n_polls = sum(reads(s1, d) for d in devs), ep_polls(s1, ep)
            k = round(n_reads / n_polls) if n_polls else 0
            c.check(k >= 1 and abs(n_reads - k * n_polls) <= k * len(devs),
                    f"before the faults, {k} read(s) per poll on {ep} ({n_reads} reads, {n_polls} polls)")
            for d in devs:
                per_poll[d] = max(k, 1)

        def polls(s, dev):
            return reads(s, dev) / per_poll[dev]
        s_seen = h.wait_for("every fault visible on /metrics", faults_seen, timeout=60)
        c.check(True, f"faults visible {time.time() - t_fault:.1f} s after they were switched on")
        time.sleep(max(0, 6 - (time.time() - t1)))
        s2 = scrape()
        t2 = time.time()
        c.check((h.find(s2, "facility_modbus_requests_total", device="c1-pdu-a", function="4",
                        result="timeout") or 0) >= 1, "silent PDU: timeouts counted")
        c.check(h.find(s2, "facility_cabinet_power_watts", cabinet="c1") is None,
                "silent PDU: its cabinet has no total (never half of one)")
        c.check(h.find(s2, "facility_device_up", device="c2-pdu-a") == 0, "busy PDU: down")
        c.check(h.find(s2, "facility_device_up", device="c3-pdu-a") == 1,
                "PDU with one illegal register in its batch stays up")
        c.check(h.find(s2, "facility_cabinet_feed_power_watts", cabinet="c3", feed="A") is not None,
                "... and its active power keeps arriving")
        e2 = h.find(s2, "facility_modbus_requests_total", device="c3-pdu-a", result="exception_2") or 0
        e2_seen = h.find(s_seen, "facility_modbus_requests_total", device="c3-pdu-a",
                         result="exception_2") or 0
        c.check(1 <= e2 <= 8 and e2 == e2_seen,
                f"... the bad address is split out once and remembered ({e2_seen} exception_2 when "
                f"first seen, {e2} six polls later)")
        c.check(h.find(s2, "facility_device_up", device="c4-pdu-a") == 0, "closing PDU: down")
        c.check(h.find(s2, "facility_modbus_endpoint_up", endpoint=f"tcp://127.0.0.1:{g1}") is not None,
                "endpoint health is exported")
        lagging = []
        for dev in healthy:
            got = polls(s2, dev) - polls(s1, dev)
            want = (t2 - t1) - 2.5
            if got < want or h.find(s2, "facility_device_up", device=dev) != 1:
                lagging.append(f"{dev}: {got:.0f} polls in {t2 - t1:.1f} s")
        for ep in (serial_ep, g2_ep):
            over = h.find(s2, "facility_modbus_poll_overruns_total", endpoint=ep)
            if over != 0:
                lagging.append(f"{ep}: {over} overruns")
        c.check(not lagging, f"devices on the other endpoints keep their 1 s schedule {lagging}")
        # Recovery: clear the faults; the silent PDU comes back (its backoff is at most 60 s,
        # here a few seconds because it failed only for a few seconds).
        with open(faults, "w") as f:
            f.write("")
        h.wait_for("c1 PDU A back after the fault is cleared",
                   lambda: h.find(scrape(), "facility_device_up", device="c1-pdu-a") == 1, timeout=60)
        c.check(True, "silent PDU recovers after the fault is cleared")

        procs.stop("facilityd")
        procs.stop("sim")
        with open(stats) as f:
            st = json.load(f)
        fcs = {int(k): v for k, v in st["function_codes"].items()}
        c.check(sum(fcs.values()) > 100 and set(fcs) <= {1, 2, 3, 4},
                f"only function codes 1-4 reached the devices over the whole run: {fcs}")
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
