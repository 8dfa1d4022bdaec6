#!/usr/bin/env python3
"""Modbus polling benchmark driver (opt-in; not part of scripts/test).

For each site size (devices) and poll interval: writes a facilityd config of PDUs, each one a
Modbus TCP device with its own endpoint (so N devices hold N sockets), starts facility-sim to
serve it on 127.0.0.1, and runs build/facility-bench-modbus once per design against it:
the new event-driven engine, and -- where it can run at all (it refuses sockets at fd >= 1024)
-- the previous thread-per-endpoint libmodbus design, in the same run. Prints a Markdown table
and writes every figure as JSON.

  bench/run_modbus_bench.py [--build-dir build] [--sizes 100,1000,6000] [--intervals 1,10]
                            [--legacy-max 1000] [--json out.json]
"""
import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)


def write_config(path, devices, interval_s, base_port):
    lines = [
        'daemon: {listen: "127.0.0.1:10044", stale_after_intervals: 3}',
        "mqtt: {enabled: false}",
        f"defaults: {{interval: {interval_s}s, timeout: {min(1000, interval_s * 500)}ms, retries: 1}}",
        f"profiles_dir: {os.path.join(SRC, 'config', 'profiles')}",
        "sites:",
        "  - id: bench",
        "    rooms:",
        "      - id: hall",
        "        rows:",
        "          - id: r1",
        "            cabinets:",
    ]
    cabinets = (devices + 1) // 2
    for c in range(cabinets):
        lines.append(f"              - {{id: c{c}, status: sold}}")
    lines.append("    devices:")
    for i in range(devices):
        c, feed = i // 2, "AB"[i % 2]
        profile = "generic-pdu-3ph" if c % 4 == 3 else "generic-pdu-1ph"
        lines.append(f"      - {{id: pdu-{i}, kind: pdu, profile: {profile}, "
                     f"endpoint: \"tcp://127.0.0.1:{base_port + i}\", unit: 1, cabinet: c{c}, feed: {feed}}}")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def proc_cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def vm_kb(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def run_daemon(facilityd, cfg, devices, interval, warmup, measure):
    """The whole daemon (collector, model, /metrics) as one process: CPU from /proc, freshness
    from its own /metrics."""
    import urllib.request
    port = free_port()
    p = subprocess.Popen([facilityd, "run", "--config", cfg, "--listen", f"127.0.0.1:{port}",
                          "--no-mqtt"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(warmup)

        def scrape():
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
                text = r.read().decode()
            ok = up = 0
            for line in text.splitlines():
                if line.startswith("facility_modbus_requests_total{") and 'result="ok"' in line:
                    ok += float(line.rsplit(" ", 1)[1])
                elif line.startswith("facility_device_up{"):
                    up += float(line.rsplit(" ", 1)[1]) == 1
            return ok, up

        ok0, _ = scrape()
        c0, t0 = proc_cpu(p.pid), time.time()
        time.sleep(measure)
        c1, t1 = proc_cpu(p.pid), time.time()
        ok1, up = scrape()
        req = ok1 - ok0
        return {"design": "daemon", "devices": devices, "interval_s": interval, "threads": "all",
                "window_s": t1 - t0, "requests": req, "cpu_s": c1 - c0,
                "cpu_core_fraction": (c1 - c0) / (t1 - t0),
                "cpu_ms_per_1000_requests": (c1 - c0) * 1e6 / req if req else 0,
                "requests_per_cycle": req / ((t1 - t0) / interval) if req else 0,
                "polls_on_time_pct": float("nan"), "fresh_pct": 100.0 * up / devices,
                "overruns": "", "peak_rss_mb": vm_kb(p.pid, "VmHWM") / 1024,
                "rss_mb": vm_kb(p.pid, "VmRSS") / 1024}
    finally:
        p.terminate()
        p.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", default=os.path.join(SRC, "build"))
    ap.add_argument("--sizes", default="100,1000,6000")
    ap.add_argument("--intervals", default="1,10")
    ap.add_argument("--legacy-max", type=int, default=1000)
    ap.add_argument("--base-port", type=int, default=21000)
    ap.add_argument("--json", default="")
    ap.add_argument("--daemon", action="store_true",
                    help="also measure the whole facilityd process (collector + model + /metrics)")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    sim = os.path.join(args.build_dir, "facility-sim")
    bench = os.path.join(args.build_dir, "facility-bench-modbus")
    facilityd = os.path.join(args.build_dir, "facilityd")
    results = []
    wd = tempfile.mkdtemp(prefix="facilityd-bench-")
    for n in [int(x) for x in args.sizes.split(",")]:
        for interval in [int(x) for x in args.intervals.split(",")]:
            cfg = os.path.join(wd, f"site-{n}-{interval}s.yaml")
            write_config(cfg, n, interval, args.base_port)
            simp = subprocess.Popen([sim, "--config", cfg], stdout=subprocess.PIPE, text=True)
            ready = False
            for line in simp.stdout:
                if "ready" in line:
                    ready = True
                    break
            if not ready:
                print(f"facility-sim did not start for {n} devices (ports {args.base_port}.."
                      f"{args.base_port + n - 1} in use?)", file=sys.stderr)
                simp.wait()
                continue
            warmup, measure = (5, 20) if interval == 1 else (2 * interval, 4 * interval)
            designs = ["new"] + (["legacy"] if n <= args.legacy_max else [])
            for design in designs:
                sim_cpu0 = proc_cpu(simp.pid)
                t0 = time.time()
                r = subprocess.run([bench, "--config", cfg, "--design", design,
                                    "--warmup", f"{warmup}s", "--measure", f"{measure}s"],
                                   capture_output=True, text=True)
                if r.returncode != 0:
                    print(r.stderr, file=sys.stderr)
                    continue
                res = json.loads(r.stdout.strip().splitlines()[-1])
                res["sim_cpu_core_fraction"] = (proc_cpu(simp.pid) - sim_cpu0) / (time.time() - t0)
                results.append(res)
                print(json.dumps(res), file=sys.stderr)
            if args.daemon:
                res = run_daemon(facilityd, cfg, n, interval, max(warmup, 8), measure)
                res["planned_reads_per_cycle"] = results[-1]["planned_reads_per_cycle"] if results else 0
                res["lower_bound_reads_per_cycle"] = results[-1]["lower_bound_reads_per_cycle"] if results else 0
                res["points_per_cycle"] = results[-1].get("points_per_cycle", 0) if results else 0
                results.append(res)
                print(json.dumps(res), file=sys.stderr)
            simp.terminate()
            simp.wait()
    print(f"\nMachine: {platform.node()}, {os.cpu_count()} cores, {platform.platform()}; "
          f"load average before the run {os.getloadavg()[0]:.2f}\n")
    print("| devices | interval | design | threads | CPU ms / 1000 req | CPU (cores) | values/cycle | "
          "req/cycle | planned | lower bound | polls on time | fresh | overruns | lateness p50/p99 ms | RSS / peak MB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        late = (f"{r['lateness_p50_ms']:.1f} / {r['lateness_p99_ms']:.1f}"
                if r["design"] == "new" else "n/a")
        on_time = "n/a" if r["polls_on_time_pct"] != r["polls_on_time_pct"] else f"{r['polls_on_time_pct']:.1f} %"
        print(f"| {r['devices']} | {r['interval_s']:g} s | {r['design']} | {r['threads']} | "
              f"{r['cpu_ms_per_1000_requests']:.1f} | {r['cpu_core_fraction']:.3f} | "
              f"{r.get('points_per_cycle', 0)} | {r['requests_per_cycle']:.0f} | {r['planned_reads_per_cycle']} | "
              f"{r['lower_bound_reads_per_cycle']} | {on_time} | "
              f"{r['fresh_pct']:.1f} % | {r['overruns']} | {late} | "
              f"{r.get('rss_mb', 0):.0f} / {r['peak_rss_mb']:.0f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
