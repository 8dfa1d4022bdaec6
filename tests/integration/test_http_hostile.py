#!/usr/bin/env python3
"""Hostile HTTP clients cannot blind Prometheus: facilityd serves the demo site while 32
slowloris clients (one header byte every 2 s, from 127.10.0.x) and 32 idle connections (nothing
sent, from 127.11.0.x) keep reconnecting as soon as they are dropped. Scrapes of /metrics, every
0.25 s for 30 s, must all succeed at their normal latency: p50 within 2x the same run's no-load
p50 plus 50 ms (the machine is shared, so no tight bound on the tail). The hostile connections
are cut off by the listener's deadlines and counted in facility_http_connections_closed_total.

Before the libmicrohttpd listener (prometheus-cpp's civetweb with 4 workers), four such clients
made scrapes time out and eight stopped them all.
"""
import os
import socket
import statistics
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402

SLOW, IDLE = 32, 32
DURATION_S = 30


def hostile(addr, port, trickle, stop, connects):
    """One hostile client: connect from `addr`; trickle a header byte every 2 s or send nothing;
    reconnect whenever the server drops the connection."""
    head = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000
    while not stop.is_set():
        try:
            s = socket.socket()
            s.bind((addr, 0))
            s.settimeout(2)
            s.connect(("127.0.0.1", port))
            connects[0] += 1
            i = 0
            while not stop.is_set():
                if trickle:
                    s.send(head[i % len(head):i % len(head) + 1])
                    i += 1
                # recv returns b"" (or raises) once the server has dropped us.
                try:
                    if s.recv(1) == b"":
                        break
                except socket.timeout:
                    pass
        except OSError:
            time.sleep(0.2)
        finally:
            s.close()


def scrape_series(url, seconds, interval=0.25):
    lat, failures = [], []
    end = time.time() + seconds
    while time.time() < end:
        t0 = time.time()
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                body = r.read()
            if r.status != 200 or b"facility_build_info" not in body:
                failures.append(f"status {r.status}")
            else:
                lat.append(time.time() - t0)
        except Exception as e:  # noqa: BLE001 - every failure is counted
            failures.append(repr(e)[:80])
        time.sleep(max(0, interval - (time.time() - t0)))
    return lat, failures


def pct(values, q):
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))] if v else float("nan")


def main():
    args = h.parse_args()
    c = h.Checks()
    fd = os.path.join(args.build_dir, "facilityd")
    sim = os.path.join(args.build_dir, "facility-sim")
    with h.workspace("http-hostile") as (wd, procs):
        cfg, ports = h.remap_config(os.path.join(args.source_dir, "config/demo/facilityd.yaml"),
                                    args.source_dir, wd)
        procs.start("sim", [sim, "--config", cfg])
        for p in ports[:3]:
            h.wait_port(p)
        port = h.free_port()
        procs.start("facilityd", [fd, "run", "--config", cfg, "--listen", f"127.0.0.1:{port}",
                                  "--no-mqtt", "--state-dir", os.path.join(wd, "state")])
        url = f"http://127.0.0.1:{port}/metrics"
        h.wait_for("/metrics", lambda: h.http_get(url), 30)
        base, base_fail = scrape_series(url, 10)
        c.check(not base_fail and base, f"no-load scrapes succeed ({len(base)}, {base_fail[:3]})")
        base_p50 = pct(base, 0.5)

        stop = threading.Event()
        connects = [0]
        threads = [threading.Thread(target=hostile, daemon=True,
                                    args=(f"127.10.0.{i + 1}", port, True, stop, connects))
                   for i in range(SLOW)]
        threads += [threading.Thread(target=hostile, daemon=True,
                                     args=(f"127.11.0.{i + 1}", port, False, stop, connects))
                    for i in range(IDLE)]
        for t in threads:
            t.start()
        time.sleep(1)
        lat, fail = scrape_series(url, DURATION_S)
        stop.set()
        for t in threads:
            t.join(5)
        p50, p99, mx = pct(lat, 0.5), pct(lat, 0.99), max(lat) if lat else float("nan")
        print(f"  no load: {len(base)} scrapes, p50 {base_p50 * 1000:.1f} ms")
        print(f"  {SLOW} slowloris + {IDLE} idle ({connects[0]} hostile connections made): "
              f"{len(lat)} scrapes ok, {len(fail)} failed, p50 {p50 * 1000:.1f} ms, "
              f"p99 {p99 * 1000:.1f} ms, max {mx * 1000:.1f} ms")
        c.check(not fail, f"every scrape under hostile load succeeded ({fail[:5]})")
        c.check(len(lat) >= DURATION_S * 2, f"scrapes kept coming ({len(lat)} in {DURATION_S} s)")
        c.check(p50 <= 2 * base_p50 + 0.05,
                f"scrape p50 {p50 * 1000:.1f} ms <= 2 x no-load {base_p50 * 1000:.1f} ms + 50 ms")
        s = h.parse_metrics(h.http_get(url))
        cut = h.find(s, "facility_http_connections_closed_total", reason="header_timeout") or 0
        c.check(cut >= SLOW, f"the slowloris connections were cut off at the header deadline "
                             f"(facility_http_connections_closed_total = {cut})")
        c.check(connects[0] > SLOW + IDLE, f"hostile clients were dropped and came back "
                                           f"({connects[0]} connections)")
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
