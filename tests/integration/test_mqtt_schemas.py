#!/usr/bin/env python3
"""The MQTT payload contract: every message facilityd renders for a varied inventory (two sites,
single- and three-phase cabinets, stale and estimated cabinets, a failing device, cooling, a UPS,
meters, rack sensors, raised and cleared alerts) validates against its JSON Schema in docs/schemas, every
topic kind appears, and the schemas reject what breaks the contract (so they are not vacuous).
Payloads of the running daemon are validated in test_mqtt_daemon.py.
"""
import copy
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402
import mqtt_support as ms  # noqa: E402

CONFIG = """profiles_dir: {profiles}
sites:
  - id: dc1
    rooms:
      - id: hall-1
        rows:
          - id: r1
            cabinets:
              - {{id: c01, status: sold}}
              - {{id: c02, status: internal, breaker: {{amps: 16, volts: 400, phases: 3}}}}
              - {{id: c03, status: free, feeds: [A]}}
              - {{id: c04, status: sold}}
    devices:
      - {{id: m-main, kind: meter, role: facility_total, profile: generic-energy-meter, endpoint: "tcp://127.0.0.1:1502", unit: 1}}
      - {{id: crah-1, kind: cooling, room: hall-1, profile: generic-crah, endpoint: "tcp://127.0.0.1:1502", unit: 2}}
      - {{id: c02-pdu-a, kind: pdu, profile: generic-pdu-3ph, endpoint: "tcp://127.0.0.1:1502", unit: 3, cabinet: c02, feed: A}}
      - {{id: c02-pdu-b, kind: pdu, profile: generic-pdu-3ph, endpoint: "tcp://127.0.0.1:1502", unit: 4, cabinet: c02, feed: B}}
      - {{id: ups-1, kind: ups, role: it_at_ups_output, rated_kw: 40, profile: generic-ups, endpoint: "tcp://127.0.0.1:1502", unit: 6}}
      - {{id: c01-env, kind: rack_sensor, profile: generic-rack-sensor, endpoint: "tcp://127.0.0.1:1502", unit: 5, cabinet: c01}}
  - id: dc2
    rooms:
      - id: h
        rows:
          - id: r
            cabinets:
              - {{id: x1, status: sold}}
"""


def main():
    args = h.parse_args()
    c = h.Checks()
    validators = ms.schemas(args.source_dir)
    c.check(True, f"docs/schemas/{{{','.join(ms.KINDS)}}}.json are valid JSON Schema 2020-12")

    with h.workspace("mqtt-schemas") as (wd, _):
        cfg = os.path.join(wd, "facilityd.yaml")
        with open(cfg, "w") as f:
            f.write(CONFIG.format(
                profiles=os.path.join(os.path.abspath(args.source_dir), "config", "profiles")))
        r = subprocess.run([os.path.join(args.build_dir, "tests", "facility-mqtt-driver"),
                            "--config", cfg, "--render"], capture_output=True, text=True, timeout=60)
        c.check(r.returncode == 0, f"driver renders (rc {r.returncode}: {r.stderr[-500:]})")
        msgs = [json.loads(line) for line in r.stdout.splitlines()]
    if not msgs:
        return c.finish()

    errors = []
    kinds = {}
    for m in msgs:
        kinds[m["kind"]] = kinds.get(m["kind"], 0) + 1
        c_kind = ms.kind_of(m["topic"])
        if c_kind != m["kind"]:
            errors.append(f"{m['topic']}: topic kind {c_kind} != {m['kind']}")
        errors += ms.schema_errors(validators, m["topic"], m["payload"])
    c.check(msgs and not errors, f"all {len(msgs)} payloads validate against their schema "
                        f"({errors[:5]})")
    c.check(set(kinds) == set(ms.KINDS), f"every topic kind rendered: {kinds}")

    def find(pred):
        return next(m for m in msgs if pred(m))

    # The variety the schemas had to accept really was there.
    cab3 = find(lambda m: m["topic"] == "facility/dc1/cabinet/c02")["payload"]
    c.check(set(cab3["feeds"]["A"]["phases"]) == {"L1", "L2", "L3"},
            "a three-phase cabinet has phases L1..L3 on its feeds")
    stale = [m for m in msgs if m["kind"] == "cabinet" and m["payload"]["quality"] != "good"]
    c.check(stale and all(m["payload"]["power_w"] is None for m in stale),
            f"{len(stale)} stale cabinet(s), with power_w null")
    c.check(any(m["payload"]["estimated"] for m in msgs if m["kind"] == "cabinet"),
            "an estimated cabinet")
    down = [m for m in msgs if m["kind"] == "device" and not m["payload"]["up"]]
    c.check(down and all(m["payload"]["points"] == {} and m["payload"]["error"] for m in down),
            f"{len(down)} device(s) down: no points, an error")
    states = {m["payload"]["state"] for m in msgs if m["kind"] == "alert"}
    c.check(states == {"raised", "cleared"}, f"alerts raised and cleared: {states}")

    # Mutations that break the contract must fail validation.
    def rejected(pred, mutate, what):
        m = copy.deepcopy(find(pred))
        mutate(m["payload"])
        errs = ms.schema_errors(validators, m["topic"], m["payload"])
        c.check(bool(errs), f"schema rejects {what} ({errs[:1]})")

    is_cab = lambda m: m["kind"] == "cabinet" and m["payload"]["quality"] == "good"  # noqa: E731
    rejected(is_cab, lambda p: p.pop("ts"), "a cabinet without ts")
    rejected(is_cab, lambda p: p.update(ts="2026-01-01T00:00:00Z"), "a timestamp without ms")
    rejected(is_cab, lambda p: p.update(power_w="4.2 kW"), "power as a string")
    rejected(is_cab, lambda p: p["units"].update(power_w="kW"), "a cabinet power unit other than W")
    rejected(is_cab, lambda p: p.update(overload="bad"), "an unknown overload state")
    rejected(is_cab, lambda p: p["feeds"]["A"].pop("phases"), "a feed without phases")
    rejected(is_cab, lambda p: p.update(extra=1), "an undocumented field")
    rejected(lambda m: m["kind"] == "summary", lambda p: p["occupancy"].update(sold=1.5),
             "an occupancy above 1")
    rejected(lambda m: m["kind"] == "device" and m["payload"]["up"],
             lambda p: next(iter(p["points"].values())).update(unit="furlongs"),
             "a point with an unknown unit")
    rejected(lambda m: m["kind"] == "device" and not m["payload"]["up"],
             lambda p: p["points"].update(x={"value": 1, "unit": "W"}),
             "points on a device that is not good")
    rejected(lambda m: m["kind"] == "alert" and m["payload"]["raised"],
             lambda p: p.update(state="cleared"), "an alert raised but 'cleared'")
    rejected(lambda m: m["kind"] == "cooling", lambda p: p.update(quality="fine"),
             "an unknown quality")
    rejected(lambda m: m["kind"] == "ups", lambda p: p.update(charge_ratio=98),
             "a UPS battery charge in percent")
    rejected(lambda m: m["kind"] == "ups", lambda p: p["phases"].update(L4={}),
             "a UPS phase L4")
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
