#!/usr/bin/env python3
"""Hostile-connection load + scrape latency probe for the HTTP front-door prototypes.

  python3 load.py --port 18082 --slow 32 --idle 32 --duration 60 --interval 0.5 \
      --server-pid PID --label mhd-epoll --out results.jsonl

Hostile clients (asyncio, one process):
  slowloris: connect, send "GET /metrics HTTP/1.1\\r\\nHost: x\\r\\nX-a: " one byte every 2 s,
             then 'a' bytes forever (one every 2 s); never finishes the head.
  idle:      connect, send nothing.
  Both reconnect 0.1 s after the server closes them (an attacker keeps the pressure on).
  --src many (default): each hostile connection from its own 127.10.x.y source address
  (many hostile hosts; per-IP limits do not help); --src one: all from 127.0.0.2 (one hostile
  host); --src same: from 127.0.0.1 like the scraper (e.g. behind a local reverse proxy).
Scraper (separate process): GET /metrics every --interval s (next one starts at the later of
  the schedule and the end of the previous one), Connection: close, total deadline --timeout s
  (Prometheus' scrape_timeout); a failure is a timeout, a refused/reset connection, a status
  other than 200 or a short body. Latency = connect to last body byte.
Sampler: the server's VmRSS, VmHWM, Threads and open fds every 0.5 s.
Every loop is bounded in time; only loopback addresses are used.
"""
import argparse
import asyncio
import json
import multiprocessing as mp
import os
import socket
import statistics
import sys
import threading
import time

HEAD = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-a: "


def scraper(host, port, duration, interval, timeout, accept_gzip, q):
    lat, fails, kinds = [], 0, {}
    t_end = time.monotonic() + duration
    nxt = time.monotonic()
    req = (f"GET /metrics HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n"
           + ("Accept-Encoding: gzip\r\n" if accept_gzip else "") + "\r\n").encode()
    while True:
        now = time.monotonic()
        if now >= t_end:
            break
        if now < nxt:
            time.sleep(nxt - now)
        nxt = max(nxt + interval, time.monotonic())
        t0 = time.monotonic()
        deadline = t0 + timeout
        err = None
        s = None
        try:
            s = socket.create_connection((host, port), timeout=timeout)
            s.sendall(req)
            buf = bytearray()
            hdr_end = -1
            clen = None
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("deadline")
                s.settimeout(left)
                chunk = s.recv(1 << 20)
                if not chunk:
                    break
                buf += chunk
                if hdr_end < 0:
                    hdr_end = buf.find(b"\r\n\r\n")
                    if hdr_end >= 0:
                        head = bytes(buf[:hdr_end]).decode("latin1")
                        status = head.split(" ", 2)[1]
                        if status != "200":
                            err = "status " + status
                            break
                        for line in head.split("\r\n")[1:]:
                            k, _, v = line.partition(":")
                            if k.strip().lower() == "content-length":
                                clen = int(v.strip())
                if hdr_end >= 0 and clen is not None and len(buf) - hdr_end - 4 >= clen:
                    break
            if err is None:
                if hdr_end < 0:
                    err = "no head"
                elif clen is not None and len(buf) - hdr_end - 4 < clen:
                    err = "short body"
        except TimeoutError:
            err = "timeout"
        except OSError as e:
            err = type(e).__name__
        finally:
            if s:
                s.close()
        dt = time.monotonic() - t0
        if err:
            fails += 1
            kinds[err] = kinds.get(err, 0) + 1
        else:
            lat.append(dt)
    q.put({"lat": lat, "fails": fails, "fail_kinds": kinds})


class Hostile:
    def __init__(self, host, port, src_mode):
        self.host, self.port, self.src_mode = host, port, src_mode
        self.open = 0
        self.closed_by_server = 0
        self.connect_fail = 0
        self.connects = 0

    def src(self, k):
        if self.src_mode == "same":
            return None
        if self.src_mode == "one":
            return ("127.0.0.2", 0)
        return (f"127.10.{k // 250}.{k % 250 + 1}", 0)

    async def noread(self, k, stop):
        """Slow reader: sends a whole GET /metrics, then reads 1 KB every 2 s through a 4 KB
        receive buffer (the server's send blocks; its inactivity timer still sees progress);
        reconnects when the server closes, or after 30 s."""
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.setblocking(False)
            src = self.src(k)
            try:
                if src:
                    sock.bind(src)
                await asyncio.wait_for(loop.sock_connect(sock, (self.host, self.port)), 5)
            except (OSError, asyncio.TimeoutError):
                self.connect_fail += 1
                sock.close()
                await asyncio.sleep(0.1)
                continue
            self.connects += 1
            self.open += 1
            t0 = time.monotonic()
            try:
                await loop.sock_sendall(sock, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                while not stop.is_set() and time.monotonic() - t0 < 30:
                    await asyncio.sleep(2.0)
                    try:
                        data = sock.recv(1024)
                    except BlockingIOError:
                        continue
                    if not data:
                        self.closed_by_server += 1
                        break
            except OSError:
                self.closed_by_server += 1
            finally:
                self.open -= 1
                sock.close()
            await asyncio.sleep(0.1)

    async def conn(self, k, slow, stop):
        while not stop.is_set():
            try:
                r, w = await asyncio.wait_for(
                    asyncio.open_connection(self.host, self.port, local_addr=self.src(k)), 5)
            except (OSError, asyncio.TimeoutError):
                self.connect_fail += 1
                await asyncio.sleep(0.1)
                continue
            self.connects += 1
            self.open += 1
            try:
                reader = asyncio.ensure_future(r.read(65536))
                i = 0
                while not stop.is_set():
                    if slow:
                        b = HEAD[i:i + 1] if i < len(HEAD) else b"a"
                        i += 1
                        w.write(b)
                    done, _ = await asyncio.wait({reader}, timeout=2.0 if slow else 1.0)
                    if reader in done:
                        break  # server answered or closed: either way, reconnect
                    if stop.is_set():
                        break
                if not stop.is_set():
                    self.closed_by_server += 1
                reader.cancel()
            except (OSError, ConnectionError):
                self.closed_by_server += 1
            finally:
                self.open -= 1
                w.close()
            await asyncio.sleep(0.1)

    async def run(self, n_slow, n_idle, duration, n_noread=0):
        stop = asyncio.Event()
        tasks = [asyncio.ensure_future(self.conn(k, True, stop)) for k in range(n_slow)]
        tasks += [asyncio.ensure_future(self.conn(n_slow + k, False, stop)) for k in range(n_idle)]
        tasks += [asyncio.ensure_future(self.noread(n_slow + n_idle + k, stop)) for k in range(n_noread)]
        samples = []
        t_end = time.monotonic() + duration
        while time.monotonic() < t_end:
            await asyncio.sleep(1)
            samples.append(self.open)
        stop.set()
        await asyncio.wait(tasks, timeout=3)
        for t in tasks:
            t.cancel()
        return samples


def sampler(pid, stop, out):
    rss = hwm = thr = fds = 0
    while not stop.is_set():
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss = max(rss, int(line.split()[1]))
                    elif line.startswith("VmHWM:"):
                        hwm = max(hwm, int(line.split()[1]))
                    elif line.startswith("Threads:"):
                        thr = max(thr, int(line.split()[1]))
            fds = max(fds, len(os.listdir(f"/proc/{pid}/fd")))
        except OSError:
            pass
        stop.wait(0.5)
    out.update(rss_kb_max=rss, hwm_kb=hwm, threads_max=thr, fds_max=fds)


def pct(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--slow", type=int, default=32)
    ap.add_argument("--idle", type=int, default=32)
    ap.add_argument("--duration", type=float, default=60)
    ap.add_argument("--interval", type=float, default=0.5)
    ap.add_argument("--timeout", type=float, default=10)
    ap.add_argument("--noread", type=int, default=0, help="slow-read clients: whole request, never read the reply")
    ap.add_argument("--src", choices=["many", "one", "same"], default="many")
    ap.add_argument("--gzip", action="store_true")
    ap.add_argument("--warmup", type=float, default=3, help="hostile connections start this long before the scraper")
    ap.add_argument("--server-pid", type=int)
    ap.add_argument("--label", default="")
    ap.add_argument("--out")
    a = ap.parse_args()
    assert a.host.startswith("127.") or a.host == "::1", "loopback only"

    q = mp.Queue()
    sstop = threading.Event()
    mem = {}
    if a.server_pid:
        st = threading.Thread(target=sampler, args=(a.server_pid, sstop, mem), daemon=True)
        st.start()
    hostile = Hostile(a.host, a.port, a.src)

    async def go():
        htask = asyncio.ensure_future(hostile.run(a.slow, a.idle, a.duration + a.warmup + 1, a.noread)) \
            if a.slow + a.idle + a.noread else None
        await asyncio.sleep(a.warmup if htask else 0)
        p = mp.Process(target=scraper, args=(a.host, a.port, a.duration, a.interval, a.timeout, a.gzip, q))
        p.start()
        loop = asyncio.get_running_loop()
        res = await loop.run_in_executor(None, q.get)
        await loop.run_in_executor(None, p.join)
        samples = await htask if htask else []
        return res, samples

    res, samples = asyncio.run(go())
    sstop.set()
    if a.server_pid:
        st.join()
    lat = res["lat"]
    out = {
        "label": a.label, "slow": a.slow, "idle": a.idle, "noread": a.noread, "src": a.src, "gzip": a.gzip,
        "duration": a.duration, "scrapes": len(lat) + res["fails"], "ok": len(lat),
        "fails": res["fails"], "fail_kinds": res["fail_kinds"],
        "p50_ms": round(pct(lat, 50) * 1000, 1) if lat else None,
        "p99_ms": round(pct(lat, 99) * 1000, 1) if lat else None,
        "max_ms": round(max(lat) * 1000, 1) if lat else None,
        "mean_ms": round(statistics.mean(lat) * 1000, 1) if lat else None,
        "hostile_open_avg": round(statistics.mean(samples), 1) if samples else 0,
        "hostile_connects": hostile.connects, "hostile_closed_by_server": hostile.closed_by_server,
        "hostile_connect_fail": hostile.connect_fail,
        **mem, "time": time.strftime("%H:%M:%S"),
    }
    line = json.dumps(out)
    print(line)
    if a.out:
        with open(a.out, "a") as f:
            f.write(line + "\n")


if __name__ == "__main__":
    main()
