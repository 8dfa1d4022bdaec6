#!/usr/bin/env python3
"""Runs every (scenario, candidate) pair, candidates alternating within a scenario, for
--rounds rounds; each run starts a fresh server on a fresh port, runs load.py, stops the server.

  python3 matrix.py --rounds 2 --out results.jsonl [--only civet-default,mhd-epoll] [--plan main|extra]
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

CANDIDATES = {
    # today's daemon: Exposer(listen, 4, callbacks)
    "civet-default": lambda port, mb: ["./civet_proto", "--listen", f"127.0.0.1:{port}", "--mb", str(mb)],
    # the best civetweb 1.15 can do through Exposer(options, callbacks)
    "civet-tuned": lambda port, mb: ["./civet_proto", "--listen", f"127.0.0.1:{port}", "--mb", str(mb),
                                     "--opt", "num_threads=128", "--opt", "request_timeout_ms=2000",
                                     "--opt", "listen_backlog=1024"],
    "civet-t600": lambda port, mb: ["./civet_proto", "--listen", f"127.0.0.1:{port}", "--mb", str(mb),
                                    "--opt", "num_threads=600", "--opt", "request_timeout_ms=2000",
                                    "--opt", "listen_backlog=1024"],
    "mhd-epoll": lambda port, mb: ["./mhd_proto", "--listen", f"127.0.0.1:{port}", "--mb", str(mb),
                                   "--limit", "1024", "--per-ip", "64", "--timeout", "30",
                                   "--hdr-timeout", "5", "--hdr-deadline", "5", "--max-age", "120"],
    "mhd-pool2": lambda port, mb: ["./mhd_proto", "--listen", f"127.0.0.1:{port}", "--mb", str(mb),
                                   "--pool", "2", "--limit", "1024", "--per-ip", "64", "--timeout", "30",
                                   "--hdr-timeout", "5", "--hdr-deadline", "5", "--max-age", "120"],
    "mhd-perip16": lambda port, mb: ["./mhd_proto", "--listen", f"127.0.0.1:{port}", "--mb", str(mb),
                                     "--limit", "1024", "--per-ip", "16", "--timeout", "30",
                                     "--hdr-timeout", "5", "--hdr-deadline", "5", "--max-age", "120"],
    "mhd-limit256": lambda port, mb: ["./mhd_proto", "--listen", f"127.0.0.1:{port}", "--mb", str(mb),
                                      "--limit", "256", "--per-ip", "64", "--timeout", "30",
                                      "--hdr-timeout", "5", "--hdr-deadline", "5", "--max-age", "120"],
    "evhttp": lambda port, mb: ["./evhttp_proto", "--listen", f"127.0.0.1:{port}", "--mb", str(mb),
                                "--timeout", "5"],
    "httplib": lambda port, mb: ["./httplib_proto", "--listen", f"127.0.0.1:{port}", "--mb", str(mb),
                                 "--threads", "8", "--read-timeout", "5"],
}

MAIN4 = ["civet-default", "civet-tuned", "mhd-epoll", "evhttp"]
PLANS = {
    # (mb, slow, idle, src, candidates)
    "main": [
        (20, 0, 0, "many", MAIN4 + ["httplib"]),
        (20, 32, 32, "many", MAIN4 + ["httplib"]),
        (20, 64, 64, "many", MAIN4),
        (20, 256, 256, "many", MAIN4),
        (5, 0, 0, "many", MAIN4),
        (5, 32, 32, "many", MAIN4),
    ],
    "extra": [
        (20, 256, 256, "many", ["civet-t600", "mhd-pool2"]),
        (20, 512, 512, "many", ["mhd-epoll", "evhttp"]),
        (20, 32, 32, "one", ["mhd-perip16"]),
        (20, 32, 32, "same", ["mhd-perip16"]),
        (20, 256, 256, "many", ["mhd-limit256"]),
    ],
    # slow readers: whole request, then 1 KB every 2 s (body timeouts, pinned bodies)
    "slowread": [
        (20, 0, 0, "many", ["civet-default", "civet-tuned", "mhd-epoll", "evhttp"], 32),
    ],
}


def run_one(name, port, mb, slow, idle, src, duration, out, noread=0):
    cmd = CANDIDATES[name](port, mb)
    log = open(os.path.join(HERE, "logs", f"{name}-{port}.log"), "w")
    srv = subprocess.Popen(cmd, cwd=HERE, stdout=log, stderr=subprocess.STDOUT)
    try:
        time.sleep(2.0 if mb >= 20 else 1.0)  # body build (+ gzip for mhd)
        if srv.poll() is not None:
            print(f"{name}: server exited {srv.returncode}", file=sys.stderr)
            return
        subprocess.run([sys.executable, "load.py", "--port", str(port), "--slow", str(slow),
                        "--idle", str(idle), "--noread", str(noread), "--src", src, "--duration", str(duration),
                        "--server-pid", str(srv.pid), "--label", f"{name}|{mb}MB", "--out", out],
                       cwd=HERE, check=False, timeout=duration + 60)
    finally:
        srv.send_signal(signal.SIGTERM)
        try:
            srv.wait(5)
        except subprocess.TimeoutExpired:
            srv.kill()
            srv.wait()
        log.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--duration", type=float, default=60)
    ap.add_argument("--plan", default="main")
    ap.add_argument("--only", default="")
    ap.add_argument("--out", default="results.jsonl")
    ap.add_argument("--port-base", type=int, default=19000)
    a = ap.parse_args()
    os.makedirs(os.path.join(HERE, "logs"), exist_ok=True)
    only = set(a.only.split(",")) if a.only else None
    port = a.port_base
    for r in range(a.rounds):
        for (mb, slow, idle, src, cands, *rest) in PLANS[a.plan]:
            noread = rest[0] if rest else 0
            # alternate the order between rounds so no candidate always runs first
            order = cands if r % 2 == 0 else list(reversed(cands))
            for name in order:
                if only and name not in only:
                    continue
                port += 1
                print(f"round {r + 1}: {name} {mb}MB {slow}+{idle} noread={noread} src={src} port={port}", flush=True)
                run_one(name, port, mb, slow, idle, src, a.duration, a.out, noread)


if __name__ == "__main__":
    main()
