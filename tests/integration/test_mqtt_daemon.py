#!/usr/bin/env python3
"""MQTT from the real daemon: facility-sim serves a small site over Modbus TCP on loopback,
facilityd polls it and publishes to a real mosquitto.

- A late subscriber gets the retained state of every topic kind, and every payload validates
  against its JSON Schema; /metrics has the MQTT families and passes promtool.
- SIGKILL: subscribers see "offline" from the last will; restarted, the daemon says "online".
- A daemon restart loses nothing queued: with the broker down, facilityd queues; on SIGTERM it
  keeps the queue in its state directory (mqtt.outbox.persist); the next run restores it and
  delivers it when the broker is back.
"""
import json
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402
import mqtt_support as ms  # noqa: E402

CONFIG = """profiles_dir: {profiles}
daemon:
  state_dir: {state}
mqtt:
  broker: "tcp://127.0.0.1:{mqtt}"
  client_id: fd-daemon-test
  publish_interval: 1s
  refresh_interval: 0
  keepalive: 5s
  reconnect_min_interval: 1s
  reconnect_max_interval: 2s
  outbox: {{persist: true}}
defaults:
  interval: 1s
  timeout: 500ms
  rated_kw: 4.4
  feeds: [A, B]
sites:
  - id: t1
    simulate: {{pue: 1.3}}
    rooms:
      - id: hall
        rows:
          - id: r1
            cabinets:
              - {{id: c1, status: sold, simulate: {{load: 0.6}}}}
              - {{id: c2, status: sold, breaker: {{amps: 16, volts: 400, phases: 3}}, simulate: {{load: 0.5}}}}
    devices:
      - {{id: t1-main, kind: meter, role: facility_total, profile: generic-energy-meter, endpoint: "tcp://127.0.0.1:{e1}", unit: 1}}
      - {{id: t1-ups, kind: meter, role: it_total, profile: generic-energy-meter, endpoint: "tcp://127.0.0.1:{e1}", unit: 2}}
      - {{id: t1-crah, kind: cooling, room: hall, profile: generic-crah, endpoint: "tcp://127.0.0.1:{e1}", unit: 3}}
      - {{id: c1-a, kind: pdu, profile: generic-pdu-1ph, endpoint: "tcp://127.0.0.1:{e2}", unit: 1, cabinet: c1, feed: A}}
      - {{id: c1-b, kind: pdu, profile: generic-pdu-1ph, endpoint: "tcp://127.0.0.1:{e2}", unit: 2, cabinet: c1, feed: B}}
      - {{id: c2-a, kind: pdu, profile: generic-pdu-3ph, endpoint: "tcp://127.0.0.1:{e2}", unit: 3, cabinet: c2, feed: A}}
      - {{id: c2-b, kind: pdu, profile: generic-pdu-3ph, endpoint: "tcp://127.0.0.1:{e2}", unit: 4, cabinet: c2, feed: B}}
      - {{id: c1-env, kind: rack_sensor, profile: generic-rack-sensor, endpoint: "tcp://127.0.0.1:{e2}", unit: 5, cabinet: c1}}
"""

TOPICS = ["facility/t1/status", "facility/t1/summary", "facility/t1/cabinet/c1",
          "facility/t1/cabinet/c2", "facility/t1/cooling/t1-crah", "facility/t1/device/c2-a",
          "facility/t1/device/t1-main", "facility/t1/device/c1-env"]


def metric(url, name, **labels):
    return h.find(h.parse_metrics(h.http_get(url)), name, **labels)


def main():
    args = h.parse_args()
    build, src = args.build_dir, os.path.abspath(args.source_dir)
    c = h.Checks()
    validators = ms.schemas(src)
    with h.workspace("mqtt-daemon") as (wd, procs):
        broker = ms.Broker(procs, persistent=True).start()
        ms.register_session(broker.port, "daemon-sub", "facility/#")
        e1, e2 = h.free_port(), h.free_port()
        state = os.path.join(wd, "state")
        os.makedirs(state)
        cfg = os.path.join(wd, "facilityd.yaml")
        with open(cfg, "w") as f:
            f.write(CONFIG.format(profiles=os.path.join(src, "config", "profiles"), state=state,
                                  mqtt=broker.port, e1=e1, e2=e2))
        procs.start("sim", [os.path.join(build, "facility-sim"), "--config", cfg])
        for p in (e1, e2):
            h.wait_port(p)
        listen = h.free_port()
        url = f"http://127.0.0.1:{listen}/metrics"
        runs = [0]

        def start_daemon():
            runs[0] += 1
            procs.start(f"facilityd-{runs[0]}", [os.path.join(build, "facilityd"), "run",
                                                 "--config", cfg, "--listen",
                                                 f"127.0.0.1:{listen}"])
            h.wait_for("/metrics", lambda: h.http_get(url), timeout=20)
            return f"facilityd-{runs[0]}"

        daemon = start_daemon()

        def all_up():
            ups = [v for n, _, v in h.parse_metrics(h.http_get(url)) if n == "facility_device_up"]
            return ups and all(v == 1 for v in ups)
        h.wait_for("every device up", all_up, timeout=30)
        t_up = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())

        # A late subscriber: the retained state of every topic kind, published after all was up.
        late = ms.Sub(procs, broker.port, "facility/#", "late")

        def complete():
            return all(late.last(t) for t in TOPICS) and \
                json.loads(late.last("facility/t1/summary")[2])["ts"][:19] > t_up
        try:
            h.wait_for("retained state of every kind", complete, timeout=30)
        except TimeoutError:
            pass
        got = {t: late.last(t) for t in TOPICS}
        # What a subscriber gets on arrival: the first message of each topic, retained.
        first = {t: next((m for m in late.messages() if m[1] == t), None) for t in TOPICS}
        c.check(all(m and m[0] for m in first.values()),
                f"a late subscriber gets retained messages on {len(TOPICS)} topics of every kind "
                f"(missing or not retained: {[t for t, m in first.items() if not (m and m[0])]})")
        errs = []
        for r, t, p in late.messages():
            if not t.endswith("/status"):
                errs += ms.schema_errors(validators, t, p)
        c.check(not errs, f"all {len(late.messages())} daemon payloads validate ({errs[:3]})")
        summary = json.loads(got["facility/t1/summary"][2]) if got["facility/t1/summary"] else {}
        c.check(summary.get("quality") == "good" and summary.get("pue") is not None,
                f"summary is good with a PUE ({summary.get('quality')}, {summary.get('pue')})")
        c.check(got["facility/t1/status"] and got["facility/t1/status"][2] == "online",
                "status retained online")

        text = h.http_get(url)
        fams = {n for n, _, _ in h.parse_metrics(text) if n.startswith("facility_mqtt_")}
        want = {"facility_mqtt_connected", "facility_mqtt_connects_total",
                "facility_mqtt_messages_published_total", "facility_mqtt_messages_queued_total",
                "facility_mqtt_messages_unchanged_total", "facility_mqtt_messages_dropped_total",
                "facility_mqtt_queue_messages", "facility_mqtt_queue_bytes",
                "facility_mqtt_queue_limit_messages", "facility_mqtt_queue_limit_bytes",
                "facility_mqtt_outbox_persist_errors_total",
                "facility_mqtt_alert_snapshots_lost_total"}
        c.check(fams == want, f"every MQTT metric family is exposed (missing {want - fams}, "
                              f"extra {fams - want})")
        s = h.parse_metrics(text)
        reasons = {l.get("reason") for n, l, _ in s if n == "facility_mqtt_messages_dropped_total"}
        c.check(reasons == {"queue_full", "expired", "rejected", "shutdown"},
                f"drop reasons all present: {reasons}")
        c.check(h.find(s, "facility_mqtt_connected") == 1, "facility_mqtt_connected 1")
        r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                           text=True)
        c.check(r.returncode == 0, f"promtool check metrics ({(r.stdout + r.stderr)[:300]})")

        # Last will on SIGKILL, "online" again after a restart.
        status = ms.Sub(procs, broker.port, "facility/+/status", "status")
        h.wait_for("status subscriber", lambda: status.last("facility/t1/status"), timeout=10)
        def expect_status(value, what):
            try:
                h.wait_for(value, lambda: status.last("facility/t1/status")[2] == value,
                           timeout=30)
                c.check(True, what)
            except TimeoutError as e:
                c.check(False, str(e))
        procs.stop(daemon, sig=signal.SIGKILL)
        expect_status("offline", "after SIGKILL the last will says offline")
        daemon = start_daemon()
        expect_status("online", "restarted, the daemon says online again")
        h.wait_for("connected", lambda: metric(url, "facility_mqtt_connected") == 1, timeout=20)

        # Restarts with a queue: broker down, queue, SIGTERM, restart, queue more, SIGKILL,
        # restart, broker back.
        broker.stop()
        t_down = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - 1))
        h.wait_for("messages queued while the broker is down",
                   lambda: (metric(url, "facility_mqtt_queue_messages") or 0) >= 10, timeout=30)
        procs.stop(daemon)  # SIGTERM
        log = procs.log(daemon)
        m = re.search(r"mqtt: (\d+) undelivered messages kept in (\S+) ", log)
        kept = int(m.group(1)) if m else 0
        c.check(m and m.group(2) == os.path.join(state, "mqtt-outbox.sqlite"),
                f"on SIGTERM {kept} queued messages were kept in the state directory")

        def restored(name):
            log = h.wait_for("restored", lambda: "restored from" in procs.log(name) and
                             procs.log(name), timeout=20)
            m = re.search(r"mqtt: (\d+) queued messages restored", log)
            return int(m.group(1)) if m else -1
        daemon = start_daemon()
        n = restored(daemon)
        c.check(n == kept, f"the next run restored them ({n})")
        h.wait_for("more queued on top", lambda: (metric(url, "facility_mqtt_queue_messages") or 0)
                   >= kept + 5, timeout=30)
        queued = metric(url, "facility_mqtt_queue_messages")
        procs.stop(daemon, sig=signal.SIGKILL)  # no chance to save anything now
        t_term = time.strftime("%Y-%m-%dT%H:%M:%S.999", time.gmtime())
        daemon = start_daemon()
        kept = restored(daemon)
        c.check(kept >= queued, f"after SIGKILL the next run restored {kept} messages "
                                f"(at least the {queued:.0f} queued when it was killed)")
        broker.start()
        h.wait_for("drained", lambda: metric(url, "facility_mqtt_connected") == 1 and
                   metric(url, "facility_mqtt_queue_messages") == 0, timeout=30)
        s = h.parse_metrics(h.http_get(url))
        dropped = sum(v for n, _, v in s if n == "facility_mqtt_messages_dropped_total")
        c.check(dropped == 0, f"nothing dropped across the restart ({dropped})")

        sub = ms.Sub(procs, broker.port, "facility/#", "sub", session="daemon-sub")

        def backlog():
            pairs = {(t, json.loads(p)["ts"]) for t, p in sub.live() if not t.endswith("/status")}
            return [x for x in pairs if t_down <= x[1] <= t_term]
        try:
            got = h.wait_for(f"{kept} messages from before the restart", lambda: (
                lambda b: b if len(b) >= kept else None)(backlog()), timeout=30)
            c.check(kept > 0, f"the subscriber got the {len(got)} messages queued before the "
                              f"restart ({kept} kept)")
        except TimeoutError as e:
            c.check(False, str(e)[:300])
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
