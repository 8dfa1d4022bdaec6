#!/usr/bin/env python3
"""Fault injection between facilityd and facility-sim (tests/integration/fault_proxy.py): one
PDU per fault, each behind its own gateway, next to healthy PDUs behind theirs, all polled every
second. Every fault is on at once; for each one the test prints and checks

  * that it was counted under the right reason (facility_modbus_requests_total{result});
  * that no value came from a bad frame: the faulty PDU's power is either absent or what the
    simulator serves (its ground truth), never something a broken frame made up;
  * that the healthy devices kept their schedule: the p99 lateness of their polls, measured on
    the device's side of the wire (the proxy's arrival times).

Reasons: a late or missing reply is a timeout; a reset connection is "connection"; a frame with
a wrong transaction id or random bytes is "malformed"; an exception reply is exception_N; junk
after a good reply is no failure at all (the reply is used, the junk counted in
facility_modbus_discarded_bytes_total).
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import fault_proxy as fp  # noqa: E402
import harness as h  # noqa: E402

INTERVAL_S = 1.0
# fault -> (reason it must be counted under, whether the device may be up, its
# facility_device_state, requests the proxy must have spoilt and counted at least)
FAULTS = {
    "delay:800": ("timeout", False, "down", 3),
    "drop": ("timeout", False, "down", 3),
    "rst": ("connection", False, "down", 3),
    "truncate:9": ("timeout", False, "down", 3),
    "wrong_tid": ("malformed", False, "down", 3),
    "garbage": ("malformed", False, "down", 3),
    "exception:4": ("exception_4", False, "down", 3),
    # Every address refused: the poller marks each point unreadable after one refusal (and
    # re-probes it minutes later), so the cycles succeed with no value at all -- "no data",
    # which must not look up.
    "exception:2": ("exception_2", False, "no_data", 1),
    "hang": ("timeout", False, "down", 3),
    "trailing:6": ("ok", True, "up", 3),
}
HEALTHY = 4  # PDUs without a fault, two per gateway


def config(src, ports):
    """The site: one cabinet per PDU; PDU i at its own endpoint tcp://127.0.0.1:ports[i]."""
    n = len(ports)
    return h.one_row_site(
        src, [f"{{id: c{i}, status: sold, feeds: [A]}}" for i in range(n)],
        [f"{{id: pdu-{i}, kind: pdu, profile: generic-pdu-1ph, endpoint: "
         f"\"tcp://127.0.0.1:{ports[i]}\", unit: {1 + i % 2}, cabinet: c{i}, feed: A}}"
         for i in range(n)])


def main():
    args = h.parse_args()
    fd = os.path.join(args.build_dir, "facilityd")
    sim = os.path.join(args.build_dir, "facility-sim")
    c = h.Checks()
    faults = list(FAULTS)
    n = len(faults) + HEALTHY
    with h.workspace("fault-injection") as (wd, procs):
        # Faulty PDU i alone on sim port i (unit 1 or 2); the healthy ones two per port.
        sim_ports = h.free_ports(len(faults) + HEALTHY // 2)
        per_device = [sim_ports[i] for i in range(len(faults))] + \
            [sim_ports[len(faults) + k // 2] for k in range(HEALTHY)]
        sim_cfg = os.path.join(wd, "sim.yaml")
        with open(sim_cfg, "w") as f:
            f.write(config(args.source_dir, per_device))
        truth = os.path.join(wd, "truth.json")
        procs.start("sim", [sim, "--config", sim_cfg, "--truth", truth])
        for p in sim_ports:
            h.wait_port(p)
        proxy = fp.FaultProxy()
        try:
            proxied = {p: proxy.add(p) for p in sim_ports}
            daemon_cfg = os.path.join(wd, "facilityd.yaml")
            with open(daemon_cfg, "w") as f:
                f.write(config(args.source_dir, [proxied[p] for p in per_device]))
            port = h.free_port()
            procs.start("facilityd", [fd, "run", "--config", daemon_cfg, "--listen",
                                      f"127.0.0.1:{port}"])
            url = f"http://127.0.0.1:{port}/metrics"

            def scrape():
                return h.parse_metrics(h.http_get(url))

            def all_up():
                s = scrape()
                ups = [v for name, _, v in s if name == "facility_device_up"]
                return s if len(ups) == n and all(v == 1 for v in ups) else None

            h.wait_for(f"all {n} PDUs up through the proxy", all_up, 60)
            c.check(True, f"all {n} PDUs up through the proxy, before any fault")
            for i, fault in enumerate(faults):
                proxy.set_fault(proxied[per_device[i]], 1 + i % 2, fault)
            t_on = time.monotonic()
            time.sleep(15)
            s = scrape()
            with open(truth) as f:
                served = json.load(f)["devices"]

            healthy_late = []
            for k in range(HEALTHY):
                i = len(faults) + k
                arr = [t for t in proxy.times(proxied[per_device[i]], 1 + i % 2) if t >= t_on]
                healthy_late.extend(fp.lateness(arr, INTERVAL_S))
            healthy_late.sort()
            p99_ms = fp.p99(healthy_late) * 1000 if healthy_late else float("nan")
            worst_ms = healthy_late[-1] * 1000 if healthy_late else float("nan")

            print(f"\n  {'fault':<12} {'counted as':<24} {'up':>3} {'power':>9} {'served':>9}  "
                  f"healthy p99 lateness")
            for i, fault in enumerate(faults):
                dev = f"pdu-{i}"
                reason, may_be_up, state_want, at_least = FAULTS[fault]
                results = {l["result"]: v for name, l, v in s
                           if name == "facility_modbus_requests_total" and l.get("device") == dev}
                up = h.find(s, "facility_device_up", device=dev)
                power = h.find(s, "facility_cabinet_feed_power_watts", cabinet=f"c{i}", feed="A")
                truth_w = served.get(dev, {}).get("active_power")
                print(f"  {fault:<12} {','.join(f'{k}={int(v)}' for k, v in sorted(results.items()) if v):<24} "
                      f"{int(up) if up is not None else '-':>3} "
                      f"{power if power is not None else '-':>9} {truth_w!s:>9}  {p99_ms:.1f} ms")
                c.check(proxy.applied(proxied[per_device[i]], 1 + i % 2, fault.split(":")[0])
                        >= at_least, f"{fault}: the proxy applied it to the PDU's requests")
                c.check(results.get(reason, 0) >= at_least,
                        f"{fault}: counted as {reason} ({results})")
                bad = sum(v for k, v in results.items()
                          if k not in ("ok", reason) and not (reason != "ok" and k == "timeout"))
                c.check(bad == 0 or reason == "timeout",
                        f"{fault}: not counted under another failure ({results})")
                c.check(up == (1 if may_be_up else 0), f"{fault}: facility_device_up is {up}")
                state = [l["state"] for name, l, v in s
                         if name == "facility_device_state" and l.get("device") == dev and v == 1]
                c.check(state == [state_want],
                        f"{fault}: facility_device_state is {state}, expected {state_want}")
                if power is not None:
                    c.check(truth_w is not None and abs(power - truth_w) <= 0.05 * truth_w + 5,
                            f"{fault}: the power exported ({power} W) is what the device serves "
                            f"({truth_w} W), never a value from a bad frame")
                else:
                    c.check(not may_be_up, f"{fault}: no power exported while it misbehaves")
            discarded = h.find(s, "facility_modbus_discarded_bytes_total",
                               endpoint=f"tcp://127.0.0.1:{proxied[per_device[faults.index('trailing:6')]]}")
            c.check((discarded or 0) >= 6 * 10,
                    f"trailing:6: the junk is counted in facility_modbus_discarded_bytes_total "
                    f"({discarded})")
            c.check(len(healthy_late) >= HEALTHY * 10,
                    f"healthy PDUs polled every second meanwhile ({len(healthy_late)} cycles)")
            c.check(p99_ms < 250,
                    f"healthy PDUs kept their schedule: p99 lateness {p99_ms:.1f} ms, worst "
                    f"{worst_ms:.1f} ms (limit 250 ms, a quarter of their interval)")
            for k in range(HEALTHY):
                dev = f"pdu-{len(faults) + k}"
                c.check(h.find(s, "facility_device_up", device=dev) == 1, f"{dev} (healthy) is up")
                over = h.find(s, "facility_modbus_poll_overruns_total",
                              endpoint=f"tcp://127.0.0.1:{proxied[per_device[len(faults) + k]]}")
                c.check(over == 0, f"{dev} (healthy): no overruns ({over})")
        finally:
            proxy.close()
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
