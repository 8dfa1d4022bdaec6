#!/usr/bin/env python3
"""MQTT outages with a real mosquitto and the real publisher (driven by tests/mqtt_driver.cpp
with a written config):

1. The broker is stopped for 30 s while snapshots and alert transitions keep coming: every
   message queued within the bound arrives after the restart - counted against what the test
   itself expects - in order per topic, and nothing is dropped.
2. The bound is exceeded: the drops are counted, they are the oldest state messages, and no
   alert event is among them.

A persistent subscriber session on a persistent broker receives everything published while it
was away, so the test sees the backlog whoever reconnects first.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402
import mqtt_support as ms  # noqa: E402

OUTAGE_S = 30


def mqtt_section(port, client_id, extra=""):
    return (f'  broker: "tcp://127.0.0.1:{port}"\n  client_id: {client_id}\n'
            "  publish_interval: 100ms\n  refresh_interval: 0\n"
            "  reconnect_min_interval: 1s\n  reconnect_max_interval: 2s\n" + extra)


def per_topic(live):
    out = {}
    for topic, payload in live:
        if not topic.endswith("/status"):
            out.setdefault(topic, []).append(json.loads(payload)["ts"])
    return out


def outage(args, c):
    with h.workspace("mqtt-outage") as (wd, procs):
        broker = ms.Broker(procs, persistent=True).start()
        ms.register_session(broker.port, "outage-sub", "facility/#")
        cfg = ms.write_config(wd, args.source_dir, mqtt_section(broker.port, "outage"),
                              sites=("s1", "s2"), cabinets=10)
        drv = ms.Driver(args.build_dir, cfg, wd)
        try:
            c.check(drv.cmd("wait-connected 15")["ok"], "driver connected")
            ts = {1: drv.cmd("snap 1")["ts"]}
            c.check(drv.cmd("wait-drained 15")["ok"], "first snapshot delivered")
            before = drv.cmd("stats")["stats"]

            broker.stop()
            ms.wait_stat(drv, lambda s: not s["connected"], "the publisher notices the outage")
            t_down, k, raised = time.time(), 1, False
            flips = {}  # snapshot -> alert state published with it
            while time.time() - t_down < OUTAGE_S:
                k += 1
                if k % 4 == 0:
                    raised = not raised
                    state = "raised" if raised else "cleared"
                    drv.cmd(f"alert s1 cabinet_overload c01 {state} warning 0.95 0.9 ratio")
                    flips[k] = state
                r = drv.cmd(f"snap {k}")
                ts[k] = r["ts"]
                time.sleep(1)
            during = drv.cmd("stats")["stats"]
            queued = during["queued_total"] - before["queued_total"]
            drops = sum(during["dropped"].values())
            c.check(during["queue_messages"] == queued and drops == 0 and not during["connected"],
                    f"broker down {ms.elapsed(t_down)}: {queued} messages queued "
                    f"({during['queue_bytes']} bytes) from {k - 1} snapshots, none dropped")

            broker.start()
            c.check(drv.cmd("wait-drained 60")["ok"],
                    f"reconnected and drained {ms.elapsed(t_down)} after the outage began")
            after = drv.cmd("stats")["stats"]
            c.check(sum(after["dropped"].values()) == 0, f"no drops at all: {after['dropped']}")

            sub = ms.Sub(procs, broker.port, "facility/#", "sub", session="outage-sub")
            # What the test itself expects to have been queued: every state topic of the first
            # snapshot for each snapshot of the outage, plus the alert transitions.
            topics = sorted(t for t, p in sub_wait_first(sub, ts[1]))
            alert_topic = "facility/s1/alert/cabinet_overload/c01"
            expected = {(t, ts[n]) for n in range(2, k + 1) for t in topics}
            expected |= {(alert_topic, ts[n]) for n in flips}
            c.check(len(expected) == queued,
                    f"the publisher queued exactly what the test expects: {queued} == "
                    f"{len(topics)} topics x {k - 1} snapshots + {len(flips)} alert events")

            def arrived():
                got = {(t, json.loads(p)["ts"]) for t, p in sub.live() if not t.endswith("/status")}
                return expected <= got
            try:
                h.wait_for("every queued message at the subscriber", arrived, timeout=60)
                c.check(True, f"all {len(expected)} queued messages arrived after the outage")
            except TimeoutError as e:
                c.check(False, str(e)[:300])
            disorder = [t for t, stamps in per_topic(sub.live()).items() if stamps != sorted(stamps)]
            c.check(not disorder, f"ordered per topic ({len(per_topic(sub.live()))} topics; "
                                  f"out of order: {disorder[:3]})")
            events = [json.loads(p)["state"] for t, p in sub.live() if t == alert_topic]
            c.check(events[:len(flips)] == list(flips.values()),
                    f"alert transitions in order: {events}")
        finally:
            drv.close()


def sub_wait_first(sub, ts1):
    """The (topic, payload) pairs of the first snapshot, once the subscriber has them."""
    def first():
        msgs = [(t, p) for t, p in sub.live()
                if not t.endswith("/status") and json.loads(p)["ts"] == ts1]
        return msgs if len(msgs) >= 2 * 14 else None
    return h.wait_for("the first snapshot at the subscriber", first, timeout=30)


def bound_exceeded(args, c):
    with h.workspace("mqtt-bound") as (wd, procs):
        broker = ms.Broker(procs, persistent=True).start()
        ms.register_session(broker.port, "bound-sub", "facility/#")
        broker.stop()
        bound = 40
        cfg = ms.write_config(wd, args.source_dir,
                              mqtt_section(broker.port, "bound",
                                           f"  outbox: {{max_messages: {bound}}}\n"),
                              sites=("s1", "s2"), cabinets=10)
        drv = ms.Driver(args.build_dir, cfg, wd)
        try:
            subjects = ("c01", "c02")
            sent = {s: [] for s in subjects}
            ts = {}
            for k in range(1, 11):
                for s in subjects:
                    state = "raised" if k % 2 else "cleared"
                    drv.cmd(f"alert s1 cabinet_overload {s} {state} critical 1.1 1.0 ratio")
                    sent[s].append(state)
                ts[k] = drv.cmd(f"snap {k}")["ts"]
                time.sleep(0.15)  # > publish_interval: every snapshot's state is checked
            st = drv.cmd("stats")["stats"]
            events = 10 * len(subjects)
            state_msgs = st["queued_total"] - events
            c.check(st["queue_messages"] == bound and st["queue_events"] == events,
                    f"outbox at its bound: {st['queue_messages']} messages, "
                    f"{st['queue_events']} of them alert events")
            c.check(st["dropped"]["queue_full"] == state_msgs - (bound - events)
                    and sum(st["dropped"].values()) == st["dropped"]["queue_full"],
                    f"{st['dropped']['queue_full']} state messages dropped (queue_full), "
                    f"counted; {state_msgs} were offered")

            broker.start()
            c.check(drv.cmd("wait-drained 30")["ok"], "reconnected and drained")
            sub = ms.Sub(procs, broker.port, "facility/#", "sub", session="bound-sub")
            topic = "facility/s1/alert/cabinet_overload/"

            def got_events():
                seen = {s: [json.loads(p)["state"] for t, p in sub.live() if t == topic + s]
                        for s in subjects}
                return seen if all(len(seen[s]) >= 10 for s in subjects) else None
            seen = h.wait_for("every alert event at the subscriber", got_events, timeout=30)
            c.check(all(seen[s][:10] == sent[s] for s in subjects),
                    "no alert event among the drops: all 20 arrived, in order")
            old = [(t, p) for t, p in sub.live() if not t.endswith("/status")
                   and "/alert/" not in t and json.loads(p)["ts"] != ts[10]]
            c.check(not old, f"the dropped state messages were the oldest: only the newest "
                             f"snapshot's state arrived ({len(old)} older)")
        finally:
            drv.close()


def main():
    args = h.parse_args()
    c = h.Checks()
    outage(args, c)
    bound_exceeded(args, c)
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
