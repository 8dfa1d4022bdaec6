#!/usr/bin/env python3
"""The shipped alert rules tell the same truth as facilityd's own alerts (issue 15), on one run:

  facility-sim ── facilityd (MQTT alerts to mosquitto) ── Prometheus (the shipped rules)

A site where every alert kind facilityd raises is raised, with a cabinet class whose overload
thresholds differ from the defaults (warning 0.80, critical 1.20: a cabinet at 104 % of its
rating is a warning there, where the fixed 0.95 of the rules before issue 15 said critical):

  * g1  class gpu-wide, 8.8 kW, one feed, load 1.04: cabinet_overload warning
  * s1  4.4 kW, feeds A/B, load 1.04: cabinet_overload critical, cabinet_failover_risk
  * t1  inlet 30 degC: inlet_temperature warning; t2 inlet 34 degC: critical
  * room r1: two 12 kW cooling units for about 16 kW of IT: cooling_redundancy warning (N+1)
  * three UPSs, each carrying a third of the site's IT load (about 5.5 kW, +-10 % over the day),
    with facility.ups.overload at warning 0.50, critical 1.20 (wide, so that the daily swing
    cannot change a severity): u-crit rated 3 kW (load about 1.9): ups_overload critical;
    u-warn rated 7 kW (about 0.8): warning; u-batt rated 40 kW, on battery (facility-sim
    --fault u-batt=on_battery: its output_source reads battery): ups_on_battery critical

For each alert of facilityd (the retained MQTT alert topics) and each alert rule of the shipped
file, the rule's expression is evaluated in Prometheus (its condition, without waiting for its
`for:`), and the highest severity per subject must be the same on both sides, subject by
subject, with nothing raised on one side only.
"""
import json
import os
import sys

import yaml

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402

# alert rule -> (facilityd alert kind, label naming the subject)
KINDS = {"CabinetPowerHigh": ("cabinet_overload", "cabinet"),
         "CabinetOverload": ("cabinet_overload", "cabinet"),
         "CabinetFailoverRisk": ("cabinet_failover_risk", "cabinet"),
         "InletTemperatureOutOfRange": ("inlet_temperature", "cabinet"),
         "CoolingRedundancyLost": ("cooling_redundancy", "room"),
         "UpsOnBattery": ("ups_on_battery", "ups"),
         "UpsOnBypass": ("ups_on_bypass", "ups"),
         "UpsOverload": ("ups_overload", "ups"),
         "UpsRuntimeLow": ("ups_runtime_low", "ups")}
RANK = {"warning": 1, "critical": 2}
EXPECTED = {("cabinet_overload", "g1"): "warning", ("cabinet_overload", "s1"): "critical",
            ("cabinet_failover_risk", "s1"): "warning",
            ("inlet_temperature", "t1"): "warning", ("inlet_temperature", "t2"): "critical",
            ("cooling_redundancy", "r1"): "warning",
            ("ups_overload", "u-crit"): "critical", ("ups_overload", "u-warn"): "warning",
            ("ups_on_battery", "u-batt"): "critical"}


def config(src, port):
    ep = f'endpoint: "tcp://127.0.0.1:{port}"'
    return f"""daemon: {{stale_after_intervals: 3}}
history: {{enabled: false}}
defaults: {{interval: 2s, timeout: 500ms}}
profiles_dir: {os.path.join(os.path.abspath(src), "config", "profiles")}
facility:
  overload: {{hold: 2s}}
  failover: {{hold: 2s}}
  inlet: {{hold: 2s}}
  ups: {{overload: {{warning: 0.50, critical: 1.20, hold: 2s}}, on_battery: {{hold: 2s}}}}
cabinet_classes:
  - {{id: gpu-wide, rated_kw: 8.8, feeds: [A], overload: {{warning: 0.80, critical: 1.20}}}}
sites:
  - id: p1
    rooms:
      - id: r1
        rows:
          - id: w1
            cabinets:
              - {{id: g1, class: gpu-wide, status: sold, simulate: {{load: 1.04}}}}
              - {{id: s1, rated_kw: 4.4, feeds: [A, B], status: sold, simulate: {{load: 1.04}}}}
              - {{id: t1, rated_kw: 4.4, feeds: [A], status: sold, simulate: {{load: 0.3}}}}
              - {{id: t2, rated_kw: 4.4, feeds: [A], status: sold, simulate: {{load: 0.3}}}}
    devices:
      - {{id: g1-a, kind: pdu, profile: generic-pdu-1ph, {ep}, unit: 1, cabinet: g1, feed: A}}
      - {{id: s1-a, kind: pdu, profile: generic-pdu-1ph, {ep}, unit: 2, cabinet: s1, feed: A}}
      - {{id: s1-b, kind: pdu, profile: generic-pdu-1ph, {ep}, unit: 3, cabinet: s1, feed: B}}
      - {{id: t1-a, kind: pdu, profile: generic-pdu-1ph, {ep}, unit: 4, cabinet: t1, feed: A}}
      - {{id: t2-a, kind: pdu, profile: generic-pdu-1ph, {ep}, unit: 5, cabinet: t2, feed: A}}
      - {{id: t1-env, kind: rack_sensor, profile: generic-rack-sensor, {ep}, unit: 6, cabinet: t1, simulate: {{inlet_c: 30}}}}
      - {{id: t2-env, kind: rack_sensor, profile: generic-rack-sensor, {ep}, unit: 7, cabinet: t2, simulate: {{inlet_c: 34}}}}
      - {{id: crah-1, kind: cooling, profile: generic-crah, {ep}, unit: 8, room: r1, capacity_kw: 12}}
      - {{id: crah-2, kind: cooling, profile: generic-crah, {ep}, unit: 9, room: r1, capacity_kw: 12}}
      - {{id: u-crit, kind: ups, profile: generic-ups, {ep}, unit: 10, rated_kw: 3}}
      - {{id: u-warn, kind: ups, profile: generic-ups, {ep}, unit: 11, rated_kw: 7}}
      - {{id: u-batt, kind: ups, profile: generic-ups, {ep}, unit: 12, rated_kw: 40}}
"""


def main():
    args = h.parse_args()
    build, src = args.build_dir, args.source_dir
    c = h.Checks()
    if not os.path.exists("/usr/bin/prometheus"):
        c.check(False, "prometheus is installed (scripts/install-deps)")
        return c.finish()
    rules_path = os.path.join(src, "config/prometheus/facilityd-alerts.rules.yml")
    with open(rules_path) as f:
        rules = [r for g in yaml.safe_load(f)["groups"] for r in g["rules"]
                 if r.get("alert") in KINDS]
    c.check(len(rules) == 13, f"the shipped rules of facilityd's alert kinds ({len(rules)})")

    with h.workspace("alert-parity") as (wd, procs):
        sim_port, fd_port = h.free_ports(2)
        cfg = os.path.join(wd, "facilityd.yaml")
        with open(cfg, "w") as f:
            f.write(config(src, sim_port))
        procs.start("sim", [os.path.join(build, "facility-sim"), "--config", cfg,
                            "--fault", "u-batt=on_battery"])
        h.wait_port(sim_port)
        mqtt_port = h.start_mosquitto(procs, wd)
        sub = h.Subscriber(procs, mqtt_port, "facility/+/alert/#")
        procs.start("facilityd", [os.path.join(build, "facilityd"), "run", "--config", cfg,
                                  "--listen", f"127.0.0.1:{fd_port}",
                                  "--mqtt-broker", f"tcp://127.0.0.1:{mqtt_port}"])
        prom_port = h.start_prometheus(procs, wd, src, [
            {"job_name": "facilityd", "static_configs": [{"targets": [f"127.0.0.1:{fd_port}"]}]}])

        def facilityd_alerts():
            out = {}
            for _, topic, payload in sub.messages():
                a = json.loads(payload)
                key = (a["kind"], a["subject"])
                if a["raised"]:
                    out[key] = a["severity"]
                else:
                    out.pop(key, None)
            return out

        def prometheus_alerts():
            out = {}
            for r in rules:
                kind, subject = KINDS[r["alert"]]
                sev = r["labels"]["severity"]
                for s in h.prometheus_query(prom_port, r["expr"]):
                    key = (kind, s["metric"][subject])
                    if RANK[sev] > RANK.get(out.get(key), 0):
                        out[key] = sev
            return out

        def both():
            a, p = facilityd_alerts(), prometheus_alerts()
            return (a, p) if a == EXPECTED and p == EXPECTED else None

        try:
            mqtt, prom = h.wait_for("facilityd's alerts on MQTT and the rules' conditions",
                                    both, timeout=90, interval=2)
        except TimeoutError:
            mqtt, prom = facilityd_alerts(), prometheus_alerts()
        print(f"  facilityd (MQTT): {sorted(mqtt.items())}\n"
              f"  Prometheus rules: {sorted(prom.items())}")
        c.check(mqtt == EXPECTED, f"facilityd raises the alerts this site was built for "
                                  f"{sorted(mqtt.items())}")
        for key in sorted(set(mqtt) | set(prom)):
            c.check(mqtt.get(key) == prom.get(key),
                    f"{key[0]} {key[1]}: facilityd {mqtt.get(key)}, Prometheus {prom.get(key)}")
        util = {s["metric"]["cabinet"]: float(s["value"][1])
                for s in h.prometheus_query(prom_port,
                                            'facility_cabinet_utilization_ratio{cabinet="g1"}')}
        c.check(util.get("g1", 0) >= 0.95,
                f"g1 is at {util.get('g1')} of its rating: a fixed 0.95 would call it critical")
        ups = {(s["metric"]["__name__"], s["metric"]["ups"], s["metric"].get("source")):
               float(s["value"][1]) for s in h.prometheus_query(
                   prom_port, '{__name__=~"facility_ups_load_ratio|facility_ups_on_battery|'
                              'facility_ups_output_source"}')}
        print(f"  UPS series: {sorted(ups.items())}")
        c.check(ups.get(("facility_ups_output_source", "u-batt", "battery")) == 1 and
                ups.get(("facility_ups_on_battery", "u-batt", None)) == 1 and
                ups.get(("facility_ups_on_battery", "u-warn", None)) == 0,
                "u-batt (facility-sim's on_battery fault) reports its output on battery, "
                "the others on line")
        rc = procs.stop("facilityd")
        c.check(rc == 0, f"facilityd stops cleanly (rc {rc})")
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
