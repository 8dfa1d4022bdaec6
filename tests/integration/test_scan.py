#!/usr/bin/env python3
"""`facilityd scan` against real peers.

1. A simulated gateway (facility-sim on loopback) with 6 devices of five kinds from the catalog
   on unit ids spread over 1..247: the scan of the whole range finds exactly those units within
   its time budget, proposes the right profile for each, and prints an inventory block that,
   pasted into a site with its TODOs filled in, passes check-config and polls every device up.
   The gateway's request log shows function 43 (only scan sends it) and never a write.
2. Debian's python3-pymodbus as an independent peer answers Read Device Identification with
   its own implementation: the scan reads the objects and identifies the meter by them.
3. An RTU serial line (a socat pty pair, facility-sim on one end): silent unit ids cost one
   timeout each, the two devices are found and identified, and a budget too short for the
   range stops the scan, which says so and exits 1.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402

# unit -> (profile, kind); units spread over the range, the last one 247.
DEVICES = {
    3: ("raritan-px3", "pdu"),
    58: ("schneider-iem3000", "meter"),
    101: ("vertiv-liebert-crv", "cooling"),
    160: ("tripplite-smartonline-modbuscard", "ups"),
    213: ("apc-smart-ups-srt", "ups"),
    247: ("egnite-querx-th", "rack_sensor"),
}
BUDGET_S = 90


def profiles_dir(src):
    return os.path.join(os.path.abspath(src), "config", "profiles")


def sim_config(src, wd, port):
    lines = []
    for unit, (profile, kind) in DEVICES.items():
        extra = {"pdu": ", cabinet: C1, feed: A", "rack_sensor": ", cabinet: C1",
                 "cooling": ", room: hall, capacity_kw: 60", "meter": ", role: other"}.get(kind, "")
        lines.append(f'      - {{id: d{unit}, kind: {kind}, profile: {profile}, '
                     f'endpoint: "tcp://127.0.0.1:{port}", unit: {unit}{extra}}}')
    return write_site(src, wd, "sim.yaml", "\n".join(lines))


def write_site(src, wd, name, devices_block):
    text = f"""profiles_dir: {os.path.join(os.path.abspath(src), "config", "profiles")}
defaults: {{interval: 5s, timeout: 1s, feeds: [A]}}
mqtt: {{enabled: false}}
history: {{enabled: false}}
sites:
  - id: scan
    rooms:
      - id: hall
        rows:
          - id: R1
            cabinets:
              - {{id: C1, rated_kw: 8, status: sold}}
    devices:
{devices_block}
"""
    path = os.path.join(wd, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def scan_simulated_gateway(c, facilityd, sim, src):
    with h.workspace("scan") as (wd, procs):
        port = h.free_port()
        cfg = sim_config(src, wd, port)
        procs.start("sim", [sim, "--config", cfg])
        h.wait_port(port)
        endpoint = f"tcp://127.0.0.1:{port}"
        t0 = time.time()
        r = subprocess.run([facilityd, "scan", endpoint, "--profiles-dir", profiles_dir(src),
                            "--budget", f"{BUDGET_S}s",
                            "--rate", "50", "--timeout", "300ms"],
                           capture_output=True, text=True, timeout=BUDGET_S + 30)
        took = time.time() - t0
        out = r.stdout
        print(out)
        c.check(r.returncode == 0, f"scan exits 0 (rc {r.returncode}, {r.stderr.strip()[:300]})")
        c.check(took <= BUDGET_S and "INCOMPLETE" not in out,
                f"scan of units 1..247 completes within its budget: {took:.1f} s of {BUDGET_S} s")
        rows = {}
        for line in out.splitlines():
            m = re.match(r"^(\d+)\s+(.*?)\s{2,}(.*?)\s{2,}(\S+)\s+(high|medium|low|-)\s", line)
            if m:
                rows[int(m.group(1))] = (m.group(4), m.group(5))
        c.check(sorted(rows) == sorted(DEVICES),
                f"scan finds exactly units {sorted(DEVICES)} (found {sorted(rows)})")
        for unit, (profile, _) in DEVICES.items():
            got = rows.get(unit, ("-", "-"))
            c.check(got[0] == profile,
                    f"unit {unit}: scan proposes {profile} (got {got[0]}, {got[1]})")
        c.check(re.search(r"3\s+Raritan\s+PX3-5000", out) is not None,
                "unit 3: vendor and model from Read Device Identification (Raritan PX3-5000)")

        # The inventory block: paste it, fill in the TODOs, check and run it.
        block = out[out.index("devices:\n") + len("devices:\n"):]
        block = block.replace("cabinet: TODO", "cabinet: C1").replace("feed: TODO", "feed: A")
        block = block.replace("room: TODO", "room: hall")
        block = "\n".join("    " + l for l in block.splitlines() if l.strip())
        pasted = write_site(src, wd, "pasted.yaml", block)
        r2 = subprocess.run([facilityd, "check-config", pasted], capture_output=True, text=True)
        c.check(r2.returncode == 0 and f"{len(DEVICES)} devices" in r2.stdout,
                f"the proposed inventory block, TODOs filled in, passes check-config with all "
                f"{len(DEVICES)} devices ({(r2.stdout + r2.stderr).strip()[:400]})")
        listen = h.free_port()
        procs.start("facilityd", [facilityd, "run", "--config", pasted,
                                  "--listen", f"127.0.0.1:{listen}"])

        def all_up():
            s = h.parse_metrics(h.http_get(f"http://127.0.0.1:{listen}/metrics"))
            up = [v for n, l, v in s if n == "facility_device_up"]
            return len(up) == len(DEVICES) and all(v == 1 for v in up)

        try:
            h.wait_for("the scanned devices up", all_up, timeout=40)
            c.check(True, f"facilityd run on the pasted inventory: all {len(DEVICES)} devices up")
        except TimeoutError as e:
            c.check(False, str(e))
        procs.stop("facilityd")
        procs.stop("sim")
        fcs = {int(k) for k in re.findall(r"FC\s*(\d+)\b", procs.log("sim"))}
        c.check(43 in fcs and fcs <= {1, 2, 3, 4, 43},
                f"the gateway saw function 43 from scan and otherwise reads only: {sorted(fcs)}")

        # JSON output for scripts.
        procs.start("sim2", [sim, "--config", cfg])
        h.wait_port(port)
        r3 = subprocess.run([facilityd, "scan", endpoint, "--units", "1-60", "--rate", "200",
                             "--profiles-dir", profiles_dir(src), "--json"], capture_output=True, text=True, timeout=60)
        try:
            j = json.loads(r3.stdout)
            found = {d["unit"]: d["candidates"][0]["profile"] for d in j["devices"]}
            c.check(found == {3: "raritan-px3", 58: "schneider-iem3000"} and j["complete"],
                    f"scan --json --units 1-60: units 3 and 58 with their profiles ({found})")
        except (ValueError, KeyError, IndexError) as e:
            c.check(False, f"scan --json prints the result ({e}: {r3.stdout[:300]!r})")


def scan_pymodbus(c, facilityd, src):
    """pymodbus answers function 43 from its own ModbusDeviceIdentification."""
    with h.workspace("scan-pymodbus") as (wd, procs):
        port = h.free_port()
        # An iEM3255: Frequency 50.0 Hz as float32 at register 3110 of the manual (the profile's
        # identify register; address_base 1: protocol address 3109), and the identification
        # objects pymodbus serves.
        layout = {"7": {"hr": {"3109": 0x4248, "3110": 0x0000}},
                  "identity": {"VendorName": "Schneider Electric", "ProductCode": "iEM3255",
                               "MajorMinorRevision": "2.1"}}
        path = os.path.join(wd, "layout.json")
        with open(path, "w") as f:
            json.dump(layout, f)
        peer = os.path.join(os.path.dirname(__file__), "pymodbus_peer.py")
        procs.start("pymodbus", ["/usr/bin/python3", peer, path, str(port), "socket"])
        h.wait_port(port)
        r = subprocess.run([facilityd, "scan", f"tcp://127.0.0.1:{port}", "--units", "5-8",
                            "--timeout", "300ms", "--profiles-dir", profiles_dir(src), "--json"],
                           capture_output=True, text=True, timeout=60)
        try:
            j = json.loads(r.stdout)
            dev = {d["unit"]: d for d in j["devices"]}
            d7 = dev.get(7, {})
            c.check(list(dev) == [7], f"pymodbus peer: scan finds unit 7 only ({list(dev)})")
            c.check((d7.get("fc43") or {}).get("vendor_name") == "Schneider Electric" and
                    d7["fc43"].get("product_code") == "iEM3255",
                    f"pymodbus answers function 43; scan reads its objects ({d7.get('fc43')})")
            # The manual does not print the ProductCode strings, so the profile matches the
            # vendor object (medium confidence) and a plausible frequency, not a model.
            best = d7["candidates"][0]
            c.check(best["profile"] == "schneider-iem3000" and best["confidence"] == "medium"
                    and 'FC43 vendor_name "Schneider Electric"' in best["evidence"],
                    f"pymodbus peer identified as schneider-iem3000 by its FC43 vendor ({best})")
        except (ValueError, KeyError, IndexError) as e:
            c.check(False, f"scan of the pymodbus peer ({e}): {r.stdout[:400]!r} "
                           f"{r.stderr[:400]!r}")


def scan_serial(c, facilityd, sim, src):
    if not shutil.which("socat"):
        c.check(False, "socat is installed (scripts/install-deps)")
        return
    with h.workspace("scan-serial") as (wd, procs):
        tty_a, tty_b = os.path.join(wd, "ttyA"), os.path.join(wd, "ttyB")
        procs.start("socat", ["socat", f"pty,raw,echo=0,link={tty_a}",
                              f"pty,raw,echo=0,link={tty_b}"])
        h.wait_for("socat pty pair", lambda: os.path.exists(tty_a) and os.path.exists(tty_b),
                   10, 0.1)
        line = f"rtu://{tty_a}"
        devices = (f'      - {{id: t1, kind: rack_sensor, profile: comet-t3311, endpoint: "{line}", '
                   f'unit: 1, cabinet: C1}}\n'
                   f'      - {{id: u20, kind: ups, profile: tripplite-smartonline-modbuscard, '
                   f'endpoint: "{line}", unit: 20}}')
        cfg = write_site(src, wd, "serial.yaml", devices)
        procs.start("sim", [sim, "--config", cfg, "--serial", f"{line}={tty_b}"])
        time.sleep(1.0)
        t0 = time.time()
        r = subprocess.run([facilityd, "scan", line, "--units", "1-24", "--timeout", "100ms",
                            "--rate", "100", "--profiles-dir", profiles_dir(src), "--json"], capture_output=True, text=True, timeout=60)
        took = time.time() - t0
        try:
            j = json.loads(r.stdout)
            found = {d["unit"]: d["candidates"][0]["profile"] if d["candidates"] else None
                     for d in j["devices"]}
        except (ValueError, KeyError) as e:
            found, j = {"error": str(e), "out": r.stdout[:300], "err": r.stderr[:300]}, {}
        c.check(found == {1: "comet-t3311", 20: "tripplite-smartonline-modbuscard"},
                f"serial line: units 1 and 20 found and identified ({found})")
        # 22 silent units x 100 ms, one request at a time: at least 2.2 s.
        c.check(2.2 <= took < 20, f"serial scan of 24 ids with 22 silent: {took:.1f} s "
                                  f"(>= 22 x 100 ms timeout: one request at a time)")
        r2 = subprocess.run([facilityd, "scan", line, "--units", "1-247", "--timeout", "100ms",
                             "--budget", "2s"], capture_output=True, text=True, timeout=60)
        m = re.search(r"scanned units 1\.\.(\d+) .* in ([0-9.]+) s", r2.stdout)
        c.check(r2.returncode == 1 and "INCOMPLETE" in r2.stdout and m and
                int(m.group(1)) < 247 and float(m.group(2)) <= 2.2,
                f"a 2 s budget stops a 247-id serial scan early, exit 1: "
                f"{m.group(0) if m else r2.stdout[-300:]!r} rc {r2.returncode}")


def main():
    args = h.parse_args()
    facilityd = os.path.join(args.build_dir, "facilityd")
    sim = os.path.join(args.build_dir, "facility-sim")
    c = h.Checks()
    scan_simulated_gateway(c, facilityd, sim, args.source_dir)
    scan_pymodbus(c, facilityd, args.source_dir)
    scan_serial(c, facilityd, sim, args.source_dir)
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
