#!/usr/bin/env python3
"""A reload (SIGHUP) touches only what changed, and a burst of them makes one reload.

Against the simulator, 6 PDUs polled every second on two endpoints:
  1. a reload that changes no device (a cabinet's status, the powered threshold) keeps every
     poller: no endpoint opens a new connection and the Modbus counters go on (they would
     restart from zero with new pollers);
  2. 20 SIGHUPs in 2 s make at most 3 reloads (the first burst, plus the ones that came while it
     ran), and meanwhile every reading stays well inside its staleness bound (3 x 1 s): the
     oldest one exported stays under 2.5 s;
  3. a reload that changes one device's polling (its interval) starts only that device's poller
     afresh: the others keep theirs, no endpoint reconnects, and no counter restarts.
"""
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402

N = 6


def config(src, ports, status="sold", threshold=100, interval="1s"):
    cabs = [f"{{id: c{i}, status: {status if i == 0 else 'sold'}, feeds: [A]}}" for i in range(N)]
    devs = [f"{{id: pdu-{i}, kind: pdu, profile: generic-pdu-1ph, endpoint: "
            f"\"tcp://127.0.0.1:{ports[i % 2]}\", unit: {1 + i // 2}, cabinet: c{i}, feed: A"
            + (f", interval: {interval}" if i == 5 else "") + "}"
            for i in range(N)]
    return h.one_row_site(src, cabs, devs, daemon=f"powered_threshold_w: {threshold}")


def main():
    args = h.parse_args()
    fd = os.path.join(args.build_dir, "facilityd")
    sim = os.path.join(args.build_dir, "facility-sim")
    c = h.Checks()
    with h.workspace("reload") as (wd, procs):
        ports = h.free_ports(2)
        cfg = os.path.join(wd, "facilityd.yaml")

        def write(**kw):
            with open(cfg, "w") as f:
                f.write(config(args.source_dir, ports, **kw))

        write()
        procs.start("sim", [sim, "--config", cfg])
        for p in ports:
            h.wait_port(p)
        port = h.free_port()
        daemon = procs.start("facilityd", [fd, "run", "--config", cfg, "--listen",
                                           f"127.0.0.1:{port}"])

        def scrape():
            return h.parse_metrics(h.http_get(f"http://127.0.0.1:{port}/metrics"))

        def ups(s):
            return [v for name, _, v in s if name == "facility_device_up"]

        def connects(s):
            return {l["endpoint"]: v for name, l, v in s
                    if name == "facility_modbus_endpoint_connects_total"}

        def ok_requests(s, device=None):
            return sum(v for name, l, v in s
                       if name == "facility_modbus_requests_total" and l.get("result") == "ok"
                       and device in (None, l.get("device")))

        def reloads():
            return len(re.findall(r"configuration reloaded", procs.log("facilityd")))

        def oldest_age(s):
            now = time.time()
            ts = [v for name, _, v in s if name == "facility_device_last_success_timestamp_seconds"]
            return max(now - t for t in ts) if len(ts) == N else float("inf")

        h.wait_for(f"all {N} PDUs up", lambda: ups(scrape()) == [1] * N, 60)
        time.sleep(2)

        # 1. Nothing about polling changes.
        before = scrape()
        write(status="internal", threshold=150)
        daemon.send_signal(signal.SIGHUP)
        h.wait_for("the reload", lambda: reloads() == 1, 30)
        log = procs.log("facilityd")
        c.check("the poll plan is unchanged" in log,
                "a reload that changes no device says it keeps the pollers")
        time.sleep(2.5)
        after = scrape()
        c.check(connects(after) == connects(before) and len(connects(after)) == 2,
                f"no endpoint reconnected, counters kept ({connects(before)} -> "
                f"{connects(after)})")
        c.check(ok_requests(after) > ok_requests(before),
                f"the Modbus request counters went on ({ok_requests(before)} -> "
                f"{ok_requests(after)}), not from zero")
        c.check(ups(after) == [1] * N, "every PDU up after the reload")
        c.check(h.find(after, "facility_site_cabinets", site="s1", state="internal") == 1,
                "the new configuration is in effect (c0 internal)")

        # 2. A burst of 20 SIGHUPs in 2 s.
        n0 = reloads()
        worst = 0.0
        samples = 0
        t_end = time.time() + 2.0
        sent = 0
        while sent < 20:
            daemon.send_signal(signal.SIGHUP)
            sent += 1
            time.sleep(max(0.0, (t_end - time.time()) / max(1, 20 - sent)))
            try:
                worst = max(worst, oldest_age(scrape()))
                samples += 1
            except OSError:
                pass
        deadline = time.time() + 8
        while time.time() < deadline:
            try:
                worst = max(worst, oldest_age(scrape()))
                samples += 1
            except OSError:
                pass
            time.sleep(0.2)
        made = reloads() - n0
        c.check(1 <= made <= 3, f"20 SIGHUPs in 2 s made {made} reloads (at most 3)")
        c.check("more SIGHUPs within the burst" in procs.log("facilityd"),
                "the log says the burst was coalesced")
        c.check(samples > 10 and worst < 2.5,
                f"the oldest reading during the burst was {worst:.2f} s old over {samples} "
                f"scrapes (interval 1 s, stale after 3 s)")

        # 3. One device's polling changes (pdu-5's interval): only its poller starts afresh. The
        #    other five keep theirs, both endpoints keep their connection (pdu-5 shares one with
        #    pdu-1 and pdu-3), and no device's counters restart.
        n1 = reloads()
        before = scrape()
        write(status="internal", threshold=150, interval="2s")
        daemon.send_signal(signal.SIGHUP)
        h.wait_for("the reload", lambda: reloads() == n1 + 1, 30)
        log = procs.log("facilityd")
        c.check("the pollers of what changed restart" in log and
                f"{N - 1} of {N} devices keep their poller and schedule, 2 of 2 endpoints "
                "their open connection" in log,
                f"a reload that changes one device's interval keeps the other {N - 1} pollers")
        h.wait_for(f"all {N} PDUs up after it", lambda: ups(scrape()) == [1] * N, 30)
        time.sleep(2.5)
        after = scrape()
        c.check(connects(after) == connects(before) and len(connects(after)) == 2,
                f"no endpoint reconnected ({connects(before)} -> {connects(after)})")
        went_on = {d: (ok_requests(before, d), ok_requests(after, d)) for d in
                   (f"pdu-{i}" for i in range(N))}
        c.check(all(b > 0 and a > b for b, a in went_on.values()),
                f"every device's request counters went on, none from zero: {went_on}")
        c.check(h.find(after, "facility_device_up", device="pdu-5") == 1,
                "pdu-5 is polled at its new interval")
        c.check(daemon.poll() is None, "the daemon is still running")
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
