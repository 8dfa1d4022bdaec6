#!/usr/bin/env python3
"""facilityd's Modbus client against an independent peer: Debian's python3-pymodbus serves a
register layout written by this test -- every type in every word order, a string, an
enumeration, a bit of a register, a sentinel, coils and discrete inputs -- over Modbus TCP and
over RTU framing on TCP (a serial gateway). `facilityd probe` reads it once and every decoded
value is asserted exactly against values computed here with Python's struct module.
"""
import json
import os
import re
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402

TYPES = {  # type -> (struct format, sample value)
    "int16": (">h", -12345),
    "uint16": (">H", 54321),
    "int32": (">i", -123456789),
    "uint32": (">I", 3123456789),
    "int64": (">q", -1234567890123456789),
    "uint64": (">Q", 12345678901234567890),
    "float32": (">f", -1234.5625),
    "float64": (">d", 3.141592653589793),
}
ORDERS = ["ABCD", "CDAB", "BADC", "DCBA"]


def wire_words(be, order):
    """Big-endian bytes -> register words as a device with this order puts them on the wire."""
    words = [be[i:i + 2] for i in range(0, len(be), 2)]
    if order in ("CDAB", "DCBA"):
        words.reverse()
    if order in ("BADC", "DCBA"):
        words = [w[::-1] for w in words]
    return [int.from_bytes(w, "big") for w in words]


def build():
    """Returns (layout for unit 5, profile YAML, expected {point: value or text})."""
    hr, ir, co, di = {}, {}, {}, {}
    points, expected = [], {}
    addr = 0
    for t, (fmt, v) in TYPES.items():
        for o in ORDERS:
            be = struct.pack(fmt, v)
            for i, w in enumerate(wire_words(be, o)):
                hr[str(addr + i)] = w
            name = f"{t}_{o.lower()}"
            points.append(f"  - {{name: {name}, function: holding, address: {addr}, type: {t}, "
                          f"order: {o}, unit: none}}")
            expected[name] = struct.unpack(fmt, be)[0] if t.startswith("float") else float(v)
            addr += len(be) // 2
    # A string of 4 registers, an enumeration, a bit of a status word, a sentinel.
    text = b"PDU-7\x00\x00\x00"
    for i in range(4):
        ir[str(10 + i)] = int.from_bytes(text[2 * i:2 * i + 2], "big")
    points.append("  - {name: model, function: input, address: 10, type: string, length: 4, unit: none}")
    expected["model"] = "PDU-7"
    ir["20"] = 2
    points.append("  - {name: state, function: input, address: 20, type: uint16, unit: none, "
                  "enum: {0: off, 1: on, 2: standby}}")
    expected["state"] = (2.0, "standby")
    ir["21"] = 0x0008
    points.append("  - {name: breaker_tripped, function: input, address: 21, type: bool, bit: 3, unit: none}")
    points.append("  - {name: door_open, function: input, address: 21, type: bool, bit: 4, unit: none}")
    expected["breaker_tripped"] = 1.0
    expected["door_open"] = 0.0
    ir["22"] = 0xFFFF
    points.append("  - {name: inlet_temperature, function: input, address: 22, type: int16, scale: 0.1, "
                  "unit: celsius, not_available: [-1]}")
    expected["inlet_temperature"] = None
    ir["23"] = 2305
    points.append("  - {name: voltage, function: input, address: 23, type: uint16, scale: 0.1, unit: V}")
    expected["voltage"] = 2305 * 0.1
    # Coils and discrete inputs, far apart: separate reads of their own function codes.
    for a, v in ((0, 1), (1, 0), (7, 1), (1500, 1)):
        co[str(a)] = v
        points.append(f"  - {{name: coil_{a}, function: coil, address: {a}, unit: none}}")
        expected[f"coil_{a}"] = float(v)
    for a, v in ((3, 1), (4, 0)):
        di[str(a)] = v
        points.append(f"  - {{name: input_{a}, function: discrete_input, address: {a}, unit: none}}")
        expected[f"input_{a}"] = float(v)
    profile = "name: peer\nsource: synthetic (written by test_modbus_peers.py)\npoints:\n" + \
        "\n".join(points) + "\n"
    return {"5": {"hr": hr, "ir": ir, "co": co, "di": di}}, profile, expected


def parse_table(stdout):
    rows = {}
    lines = stdout.splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith("POINT"))
    for line in lines[start + 1:]:
        if line.startswith("note:"):
            continue
        cols = re.split(r"\s{2,}", line.strip())
        rows[cols[0]] = cols[1]
    return rows


def check_values(c, label, rows, expected):
    bad = []
    for name, want in expected.items():
        got = rows.get(name)
        if want is None:
            ok = got == "(n/a)"
        elif isinstance(want, str):
            ok = got == f'"{want}"'
        elif isinstance(want, tuple):
            ok = got == f"{want[0]:g} ({want[1]})"
        else:
            try:
                ok = float(got) == want
            except (TypeError, ValueError):
                ok = False
        if not ok:
            bad.append(f"{name}: got {got!r}, want {want!r}")
    c.check(not bad and len(rows) == len(expected),
            f"{label}: all {len(expected)} points decode exactly {bad[:5]}")


def main():
    args = h.parse_args()
    facilityd = os.path.join(args.build_dir, "facilityd")
    c = h.Checks()
    layout, profile, expected = build()
    with h.workspace("peers") as (wd, procs):
        with open(os.path.join(wd, "layout.json"), "w") as f:
            json.dump(layout, f)
        prof = os.path.join(wd, "peer.yaml")
        with open(prof, "w") as f:
            f.write(profile)
        for framing, scheme in (("socket", "tcp"), ("rtu", "rtu-over-tcp")):
            port = h.free_port()
            procs.start(f"pymodbus-{framing}", ["/usr/bin/python3",
                                                os.path.join(os.path.dirname(__file__), "pymodbus_peer.py"),
                                                os.path.join(wd, "layout.json"), str(port), framing])
            h.wait_port(port)
            r = subprocess.run([facilityd, "probe", f"{scheme}://127.0.0.1:{port}", "--unit", "5",
                                "--profile", prof, "--timeout", "2s"],
                               capture_output=True, text=True, timeout=60)
            c.check(r.returncode == 0, f"{scheme}: probe exits 0 (rc {r.returncode}: {r.stderr.strip()[:300]})")
            if r.returncode != 0:
                print(r.stdout)
                continue
            rows = parse_table(r.stdout)
            check_values(c, f"{scheme} against pymodbus", rows, expected)
            # 32 holding points in 96 contiguous registers, one string/enum/bit/sentinel block,
            # coils at 0-7 and 1500, two discrete inputs: 1 + 1 + 2 + 1 = 5 reads.
            m = re.search(r"(\d+) planned reads?, (\d+) sent", r.stdout)
            c.check(m is not None and m.group(1) == "5" and m.group(2) == "5",
                    f"{scheme}: 5 planned reads, 5 sent ({m.group(0) if m else r.stdout[:200]})")
            # A unit the peer does not have: pymodbus stays silent; the probe times out cleanly.
            r = subprocess.run([facilityd, "probe", f"{scheme}://127.0.0.1:{port}", "--unit", "9",
                                "--profile", prof, "--timeout", "300ms"],
                               capture_output=True, text=True, timeout=60)
            c.check(r.returncode == 1 and "poll failed" in r.stderr,
                    f"{scheme}: unknown unit fails with a message (rc {r.returncode}: {r.stderr.strip()[:200]})")
            procs.stop(f"pymodbus-{framing}")
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
