"""A Modbus TCP fault-injection proxy for the tests: sits between facilityd and facility-sim (or
any Modbus TCP server), forwards every request of a listening port to its upstream, and lets a
test make one unit misbehave the way real devices and gateways do:

    delay:MS       the reply MS milliseconds late
    drop           the request never reaches the device; no reply (a timeout)
    rst            the connection is reset (RST) when the request arrives
    truncate:N     only the first N bytes of the reply, then silence
    wrong_tid      the reply with another transaction id
    garbage        random bytes instead of the reply (as long as the reply)
    exception:C    an exception reply with code C instead of the device's answer
    hang           a half-open connection: the request is read, nothing ever comes back, and
                   the proxy stops reading (the connection stays open)
    trailing:N     N junk bytes after the reply
    none           behave

It also records, on the device side of the wire, when each request for each unit passed
through (`arrivals`), so a test can tell whether healthy devices kept their schedule while
others misbehaved. Standard library only; runs its own asyncio loop on a thread.
"""
import asyncio
import os
import socket
import struct
import threading
import time

FAULTS = ("delay", "drop", "rst", "truncate", "wrong_tid", "garbage", "exception", "hang",
          "trailing", "none")


def parse_fault(spec):
    """'delay:500' -> ('delay', 500); 'garbage' -> ('garbage', None)."""
    name, _, arg = spec.partition(":")
    if name not in FAULTS:
        raise ValueError(f"unknown fault {spec!r} (expected one of {', '.join(FAULTS)})")
    return name, int(arg) if arg else None


class FaultProxy:
    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.faults = {}    # (listen port, unit) -> (name, arg)
        self.arrivals = {}  # (listen port, unit) -> [monotonic seconds of each request]
        self.counts = {}    # (listen port, unit, fault name) -> requests it was applied to
        self.servers = []
        self.lock = threading.Lock()
        self.thread.start()

    # ---- control (any thread) ------------------------------------------------------------

    def add(self, upstream_port, host="127.0.0.1"):
        """Listens on a free loopback port forwarding to host:upstream_port; returns the port."""
        fut = asyncio.run_coroutine_threadsafe(self._listen(host, upstream_port), self.loop)
        return fut.result(10)

    def set_fault(self, port, unit, spec):
        with self.lock:
            if spec == "none":
                self.faults.pop((port, unit), None)
            else:
                self.faults[(port, unit)] = parse_fault(spec)

    def times(self, port, unit):
        with self.lock:
            return list(self.arrivals.get((port, unit), []))

    def applied(self, port, unit, name):
        with self.lock:
            return self.counts.get((port, unit, name), 0)

    def close(self):
        async def shut():
            for s in self.servers:
                s.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        asyncio.run_coroutine_threadsafe(shut(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    # ---- the proxy (event loop thread) ----------------------------------------------------

    async def _listen(self, host, upstream_port):
        server = await asyncio.start_server(
            lambda r, w: self._client(r, w, host, upstream_port), "127.0.0.1", 0)
        self.servers.append(server)
        return server.sockets[0].getsockname()[1]

    async def _client(self, reader, writer, host, upstream_port):
        port = writer.get_extra_info("sockname")[1]
        try:
            up_r, up_w = await asyncio.open_connection(host, upstream_port)
        except OSError:
            writer.close()
            return
        try:
            while True:
                header = await reader.readexactly(7)
                tid, proto, length, unit = struct.unpack(">HHHB", header)
                body = await reader.readexactly(length - 1)
                with self.lock:
                    self.arrivals.setdefault((port, unit), []).append(time.monotonic())
                    name, arg = self.faults.get((port, unit), ("none", None))
                    key = (port, unit, name)
                    self.counts[key] = self.counts.get(key, 0) + 1
                if name == "drop":
                    continue
                if name == "rst":
                    sock = writer.get_extra_info("socket")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    writer.transport.abort()
                    break
                if name == "hang":
                    await asyncio.sleep(3600)
                    break
                if name == "exception":
                    fc = body[0] | 0x80
                    writer.write(struct.pack(">HHHBBB", tid, 0, 3, unit, fc, arg))
                    await writer.drain()
                    continue
                up_w.write(header + body)
                await up_w.drain()
                rh = await up_r.readexactly(7)
                rbody = await up_r.readexactly(struct.unpack(">H", rh[4:6])[0] - 1)
                reply = rh + rbody
                if name == "delay":
                    await asyncio.sleep(arg / 1000.0)
                elif name == "truncate":
                    reply = reply[:arg]
                elif name == "wrong_tid":
                    reply = struct.pack(">H", (tid + 1) & 0xFFFF) + reply[2:]
                elif name == "garbage":
                    reply = os.urandom(len(reply))
                elif name == "trailing":
                    reply = reply + bytes((0xA5 ^ i) & 0xFF for i in range(arg))
                writer.write(reply)
                await writer.drain()
                if name == "truncate":
                    await asyncio.sleep(3600)  # the rest never comes
                    break
        except (asyncio.IncompleteReadError, asyncio.CancelledError, ConnectionError, OSError):
            pass
        finally:
            for w in (writer, up_w):
                try:
                    w.close()
                except Exception:  # noqa: BLE001 - already gone
                    pass


def lateness(arrivals, interval_s):
    """How late each poll cycle's first request arrived against the device's own schedule (its
    first arrival + k x interval for the k-th cycle), in seconds, sorted. Requests of one cycle
    come within a fraction of the interval, so a cycle starts after a gap of more than half an
    interval; a skipped slot shows as a whole interval late."""
    starts = [t for i, t in enumerate(arrivals) if i == 0 or t - arrivals[i - 1] > interval_s / 2]
    return sorted(t - (starts[0] + k * interval_s) for k, t in enumerate(starts))


def p99(sorted_values):
    return sorted_values[min(len(sorted_values) - 1, int(0.99 * len(sorted_values)))]
