#!/usr/bin/env python3
"""The shipped profile catalog end to end: one device per profile in config/profiles on one
simulated Modbus TCP gateway.

- the configuration that uses every profile passes `facilityd check-config`;
- every real profile's header names its source document, and docs/config.md lists every profile;
- `facilityd probe --device ID --json` reads each device from the simulator: every read point
  answers, every number (derived points included) is in the plausible range of its unit, every
  enumeration code is one the profile names. The simulator encodes with the profile itself, so
  this proves the profile can be served, planned, read and decoded end to end, not that its
  scales match the vendor's (the golden tests in tests/unit/config/profile_catalog_test.cpp
  decode the vendor documents' own examples);
- `facilityd run` polls them all: every device up, every UPS with its facility_ups_* metrics
  (on line, not on battery), and only read function codes 1-4 reach the gateway.
"""
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402

# Plausible values, in the profile's unit, of what the simulator serves a healthy site.
RANGES = {
    "V": (0, 1000), "A": (0, 2000), "Hz": (0, 70), "celsius": (-30, 90),
    "percent": (0, 150), "ratio": (-1.0, 1.5), "rpm": (0, 20000),
    "W": (0, 5e6), "kW": (0, 5e3), "VA": (0, 5e6), "kVA": (0, 5e3), "var": (-5e6, 5e6),
    "kvar": (-5e3, 5e3), "Wh": (0, 1e13), "kWh": (0, 1e10), "MWh": (0, 1e7),
    "s": (0, 1e6), "min": (0, 2e4), "h": (0, 400), "none": (-1e9, 1e12),
}


def profile_kinds(path):
    """The profile's `kinds`, else the kind its name says (generic and Eastron maps)."""
    with open(path) as f:
        text = f.read()
    m = re.search(r"(?m)^kinds:\s*\[([^\]]*)\]", text)
    if m:
        return [k.strip() for k in m.group(1).split(",") if k.strip()], text
    name = os.path.basename(path)[:-5]
    for prefix, kind in (("generic-pdu", "pdu"), ("generic-crah", "cooling"),
                         ("generic-rack-sensor", "rack_sensor"), ("generic-ups", "ups")):
        if name.startswith(prefix):
            return [kind], text
    return ["meter"], text


def build_config(src, wd, port):
    profiles_dir = os.path.join(src, "config", "profiles")
    names = sorted(f[:-5] for f in os.listdir(profiles_dir) if f.endswith(".yaml"))
    devices, cabinets, kinds = [], [], {}
    for unit, name in enumerate(names, start=1):
        kind = profile_kinds(os.path.join(profiles_dir, name + ".yaml"))[0][0]
        kinds[name] = kind
        dev = (f'{{id: cat-{name}, kind: {kind}, profile: {name}, '
               f'endpoint: "tcp://127.0.0.1:{port}", unit: {unit}')
        if kind in ("pdu", "rack_sensor"):
            cab = f"C{unit:02d}"
            cabinets.append(f"              - {{id: {cab}, rated_kw: 8, status: sold}}")
            dev += f", cabinet: {cab}" + (", feed: A" if kind == "pdu" else "")
        if kind == "cooling":
            dev += ", room: hall, capacity_kw: 60"
        if kind == "meter":
            dev += ", role: other"
        devices.append("      - " + dev + "}")
    cfg = f"""profiles_dir: {profiles_dir}
defaults: {{interval: 5s, timeout: 1s, feeds: [A]}}
mqtt: {{enabled: false}}
history: {{enabled: false}}
sites:
  - id: cat
    rooms:
      - id: hall
        rows:
          - id: R1
            cabinets:
{chr(10).join(cabinets)}
    devices:
{chr(10).join(devices)}
"""
    path = os.path.join(wd, "catalog.yaml")
    with open(path, "w") as f:
        f.write(cfg)
    return path, names, kinds


def check_headers(c, src, names):
    with open(os.path.join(src, "docs", "config.md")) as f:
        doc = f.read()
    real = 0
    for name in names:
        kinds, text = profile_kinds(os.path.join(src, "config", "profiles", name + ".yaml"))
        m = re.search(r'(?m)^source:\s*"?([^"\n]*)', text)
        source = m.group(1).strip() if m else ""
        c.check(f"| `{name}` |" in doc, f"docs/config.md lists the shipped profile {name}")
        if source == "synthetic":
            continue
        real += 1
        # A real map says where it comes from: a document title and a table or page.
        c.check(len(source) > 30 and re.search(r"(?i)table|p\.|pp\.|page|section|register",
                                                source),
                f"{name}: source names the document and table/page ({source[:70]!r})")
    c.check(real >= 15, f"at least 15 real (non-synthetic) profiles are shipped ({real})")
    return real


def in_range(point, kind_of_enum):
    unit, value = point["unit"], point["value"]
    lo, hi = RANGES.get(unit, (None, None))
    if lo is None:
        return False, f"unknown unit {unit}"
    return lo <= value <= hi, f"{value} {unit} not in [{lo}, {hi}]"


def probe_all(c, facilityd, cfg, names, kinds):
    per_kind = {}
    for name in names:
        dev = f"cat-{name}"
        r = subprocess.run([facilityd, "probe", "--device", dev, "--config", cfg, "--json"],
                           capture_output=True, text=True, timeout=60)
        try:
            j = json.loads(r.stdout)
        except json.JSONDecodeError:
            c.check(False, f"{name}: probe --json prints JSON (rc {r.returncode}, "
                           f"{r.stdout[:200]!r} {r.stderr[:300]!r})")
            continue
        bad = []
        for p in j["points"]:
            if p["unreadable"]:
                bad.append(f"{p['name']} unreadable ({p.get('why')})")
            elif p["value"] is None:
                if "function" in p and p.get("text", "") == "" and not p["name"].endswith(
                        ("model", "serial", "firmware", "name", "identity", "version")):
                    bad.append(f"{p['name']} has no value")
            elif p.get("text", "").startswith("unknown("):
                bad.append(f"{p['name']} = {p['text']} (a code the profile does not name)")
            else:
                ok, why = in_range(p, kinds[name])
                if not ok:
                    bad.append(f"{p['name']}: {why}")
        n = len(j["points"])
        c.check(r.returncode == 0 and j["ok"] and n > 0 and not bad,
                f"{name} ({kinds[name]}): probe reads all {n} points from the simulator, "
                f"values in range" + (f": {bad[:4]}" if bad else "") +
                ("" if j["ok"] else f" (error {j['error']})"))
        per_kind[kinds[name]] = per_kind.get(kinds[name], 0) + 1
    return per_kind


def main():
    args = h.parse_args()
    build, src = args.build_dir, os.path.abspath(args.source_dir)
    facilityd = os.path.join(build, "facilityd")
    sim = os.path.join(build, "facility-sim")
    c = h.Checks()
    with h.workspace("catalog") as (wd, procs):
        port = h.free_port()
        cfg, names, kinds = build_config(src, wd, port)
        check_headers(c, src, names)
        r = subprocess.run([facilityd, "check-config", cfg], capture_output=True, text=True)
        c.check(r.returncode == 0,
                f"check-config accepts a site using all {len(names)} profiles "
                f"({(r.stdout + r.stderr).strip()[:600]})")

        procs.start("sim", [sim, "--config", cfg])
        h.wait_port(port)
        per_kind = probe_all(c, facilityd, cfg, names, kinds)
        for kind in ("pdu", "ups", "cooling", "meter", "rack_sensor"):
            c.check(per_kind.get(kind, 0) >= 2, f"at least 2 profiles of kind {kind} "
                                                f"({per_kind.get(kind, 0)})")

        listen = h.free_port()
        procs.start("facilityd", [facilityd, "run", "--config", cfg,
                                  "--listen", f"127.0.0.1:{listen}"])
        url = f"http://127.0.0.1:{listen}/metrics"

        def all_up():
            s = h.parse_metrics(h.http_get(url))
            up = {l["device"]: v for n, l, v in s if n == "facility_device_up"}
            return s if len(up) == len(names) and all(v == 1 for v in up.values()) else None

        try:
            samples = h.wait_for("every catalog device up", all_up, timeout=60)
            c.check(True, f"facilityd run: all {len(names)} catalog devices up")
        except TimeoutError as e:
            c.check(False, str(e))
            samples = h.parse_metrics(h.http_get(url))
        text = h.http_get(url)
        r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                           text=True)
        c.check(r.returncode == 0 and not (r.stdout + r.stderr).strip(),
                f"promtool check metrics is clean with every kind, UPSs included "
                f"({(r.stdout + r.stderr).strip()[:400]})")
        for name in names:
            if kinds[name] != "ups":
                continue
            dev = f"cat-{name}"
            on_batt = h.find(samples, "facility_ups_on_battery", ups=dev)
            src_state = [l.get("source") for n, l, v in samples
                         if n == "facility_ups_output_source" and l.get("ups") == dev]
            c.check(on_batt == 0, f"{dev}: facility_ups_on_battery is 0 (on line): {on_batt}")
            c.check(h.find(samples, "facility_ups_overload_state", ups=dev) == 0,
                    f"{dev}: facility_ups_overload_state is 0")
            c.check(src_state in ([], ["normal"]) or (src_state and src_state[0] != "battery"),
                    f"{dev}: output source is not battery ({src_state})")
        procs.stop("facilityd")
        rc = procs.stop("sim")
        fcs = {int(k) for k in re.findall(r"FC\s*(\d+)\b", procs.log("sim"))}
        c.check(rc == 0 and bool(fcs) and fcs <= {1, 2, 3, 4},
                f"only read function codes 1-4 reached the gateway from probe and run: "
                f"{sorted(fcs)}")
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
