#!/usr/bin/env python3
"""End to end on the demo site with real components: mosquitto, facility-sim serving every
device over Modbus TCP on loopback, facilityd polling them, promtool linting /metrics.

Checks /metrics values against the simulator's ground truth, the MQTT contract (birth, cabinet
and summary JSON, last will after SIGKILL), that check-config reports a broken file by line,
and that only read function codes reached the simulator.
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

# The daemon polls every 15 s; the simulator's values drift by well under 1 % in that time.
POWER_TOLERANCE = 0.02


def main():
    args = h.parse_args()
    build, src = args.build_dir, args.source_dir
    facilityd = os.path.join(build, "facilityd")
    sim = os.path.join(build, "facility-sim")
    c = h.Checks()

    # check-config on a broken file: names the file and line, exits 1.
    with h.workspace("check-config") as (wd, _):
        cfg, _ = h.remap_config(os.path.join(src, "config/demo/facilityd.yaml"), src, wd)
        with open(cfg) as f:
            lines = f.read().split("\n")
        # Break the first cabinet status: "status: sold" -> "status: solde".
        idx = next(i for i, l in enumerate(lines) if "status: sold" in l)
        lines[idx] = lines[idx].replace("status: sold", "status: solde", 1)
        col = lines[idx].index("solde") + 1
        bad = os.path.join(wd, "bad.yaml")
        with open(bad, "w") as f:
            f.write("\n".join(lines))
        r = subprocess.run([facilityd, "check-config", bad], capture_output=True, text=True)
        c.check(r.returncode == 1, f"check-config exits 1 on a broken config (got {r.returncode})")
        want = f"{bad}:{idx + 1}:{col}: "
        c.check(want in r.stderr and 'unknown status "solde"' in r.stderr,
                f"check-config prints '{want}unknown status \"solde\"...' (got: {r.stderr.strip()!r})")
        r = subprocess.run([facilityd, "check-config", cfg], capture_output=True, text=True)
        c.check(r.returncode == 0, f"check-config accepts the demo config ({r.stdout.strip()})")

    with h.workspace("e2e") as (wd, procs):
        cfg, sim_ports = h.remap_config(os.path.join(src, "config/demo/facilityd.yaml"), src, wd)
        mqtt_port = h.start_mosquitto(procs, wd)
        truth_path = os.path.join(wd, "truth.json")
        procs.start("sim", [sim, "--config", cfg, "--truth", truth_path])
        for p in sim_ports:
            h.wait_port(p)
        sub = h.Subscriber(procs, mqtt_port, "facility/#")
        listen_port = h.free_port()
        t_start = time.time()
        procs.start("facilityd", [facilityd, "run", "--config", cfg,
                                  "--listen", f"127.0.0.1:{listen_port}",
                                  "--mqtt-broker", f"tcp://127.0.0.1:{mqtt_port}"])
        url = f"http://127.0.0.1:{listen_port}/metrics"

        def all_up():
            s = h.parse_metrics(h.http_get(url))
            ups = [v for n, l, v in s if n == "facility_device_up"]
            return s if ups and all(v == 1 for v in ups) else None

        samples = h.wait_for("every device up", all_up, timeout=60)
        t_ready = time.time() - t_start
        c.check(True, f"all devices up {t_ready:.1f} s after start")
        text = h.http_get(url)
        samples = h.parse_metrics(text)
        with open(truth_path) as f:
            truth = json.load(f)

        # Cabinet power and feeds against what the simulator serves.
        n_checked, worst = 0, 0.0
        for key, tc in truth["cabinets"].items():
            site, cab = key.split("/", 1)
            got = h.find(samples, "facility_cabinet_power_watts", site=site, cabinet=cab)
            if got is None:
                c.check(False, f"{key}: facility_cabinet_power_watts present")
                continue
            err = abs(got - tc["power_w"]) / max(tc["power_w"], 100.0)
            worst = max(worst, err)
            n_checked += 1
            rated = h.find(samples, "facility_cabinet_rated_power_watts", site=site, cabinet=cab)
            if abs(rated - tc["rated_w"]) > 0.5:
                c.check(False, f"{key}: rated {rated} == truth {tc['rated_w']}")
        c.check(n_checked == len(truth["cabinets"]) and worst <= POWER_TOLERANCE,
                f"{n_checked}/{len(truth['cabinets'])} cabinets match ground truth power "
                f"(worst relative error {worst:.4f} <= {POWER_TOLERANCE})")
        over = [(l["site"], l["cabinet"], v) for n, l, v in samples
                if n == "facility_cabinet_utilization_ratio" and v > 1.0]
        c.check(len(over) == 1, f"exactly one cabinet above 100 % of rated power: {over}")
        hot = [(l["cabinet"], v) for n, l, v in samples
               if n == "facility_rack_inlet_temperature_celsius" and v > 27.0]
        c.check(len(hot) >= 1, f"an inlet hot spot above 27 degC: {hot}")

        for site, ts in truth["sites"].items():
            it = h.find(samples, "facility_site_it_power_watts", site=site)
            c.check(it is not None and abs(it - ts["it_power_w"]) / ts["it_power_w"] <= POWER_TOLERANCE,
                    f"{site}: IT power {it} ~ truth {ts['it_power_w']:.0f} W")
            pue = h.find(samples, "facility_site_pue_ratio", site=site)
            if ts.get("pue") is None:
                c.check(pue is None, f"{site}: no PUE without a facility meter (got {pue})")
            else:
                c.check(pue is not None and abs(pue - ts["pue"]) <= 0.03,
                        f"{site}: PUE {pue} ~ truth {ts['pue']:.3f}")
            total = h.find(samples, "facility_site_cabinets", site=site, state="total")
            powered = h.find(samples, "facility_site_cabinets", site=site, state="powered")
            occ = h.find(samples, "facility_site_occupancy_ratio", site=site, basis="powered")
            c.check(total and occ is not None and abs(occ - powered / total) < 1e-9,
                    f"{site}: occupancy {occ} = powered {powered} / total {total}")

        # promtool's linter on our exposition. The exposer_* families come from prometheus-cpp
        # itself (no switch to drop them) and are linted too.
        r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                           text=True)
        c.check(r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(),
                f"promtool check metrics is clean (rc {r.returncode}: {(r.stdout + r.stderr).strip()[:500]})")
        # promtool does not know watts or percent: our own unit rule for facility_* names.
        bad_names = sorted({n for n, _, _ in samples if n.startswith("facility_") and
                            re.search(r"_(kw|kilowatts|percent|pct|kwh|milliseconds)(_|$)", n)})
        c.check(not bad_names, f"facility_* names use base units only {bad_names}")

        # MQTT: birth, cabinet and summary payloads.
        sites = list(truth["sites"])

        # Wait for a publish made after every device was up, so retained state is complete.
        t_all_up = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t_start + t_ready))

        def mqtt_ready():
            for s in sites:
                m = sub.last(f"facility/{s}/summary")
                if not m or json.loads(m[2])["ts"][:19] <= t_all_up:
                    return False
            return True

        h.wait_for("MQTT summaries published after all devices were up", mqtt_ready, timeout=30)
        for s in sites:
            st = sub.last(f"facility/{s}/status")
            c.check(st is not None and st[2] == "online", f"facility/{s}/status is online ({st})")
            summ = json.loads(sub.last(f"facility/{s}/summary")[2])
            c.check(all(k in summ for k in ("ts", "it_power_w", "facility_power_w", "pue", "occupancy")),
                    f"facility/{s}/summary has ts, it_power_w, facility_power_w, pue, occupancy")
        # A late subscriber gets the retained state at once (retain flag set).
        def late(topic):
            r = subprocess.run(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(mqtt_port), "-t", topic,
                                "-C", "1", "-W", "5", "-F", "%r %p"], capture_output=True, text=True)
            flag, _, payload = r.stdout.strip().partition(" ")
            return flag == "1", payload

        for s in sites:
            retained, payload = late(f"facility/{s}/status")
            c.check(retained and payload == "online", f"late subscriber: facility/{s}/status retained online")
        for cab_key in list(truth["cabinets"])[:3]:
            site, cab = cab_key.split("/", 1)
            retained, payload = late(f"facility/{site}/cabinet/{cab}")
            ok = retained
            try:
                p = json.loads(payload)
                ok = ok and (all(k in p for k in ("ts", "power_w", "rated_w", "utilization", "feeds"))
                             and set(p["feeds"]) == set(truth["cabinets"][cab_key]["feeds"])
                             and re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", p["ts"]) is not None
                             and abs(p["power_w"] - truth["cabinets"][cab_key]["power_w"])
                             <= POWER_TOLERANCE * max(truth["cabinets"][cab_key]["power_w"], 100.0))
            except (ValueError, TypeError, KeyError):
                ok = False
            c.check(ok, f"late subscriber: facility/{site}/cabinet/{cab} is retained JSON with ts, "
                        f"power_w (~truth), rated_w, utilization, feeds ({payload[:160]})")

        # Last will: SIGKILL the daemon; the broker publishes "offline" for every site.
        procs.stop("facilityd", sig=signal.SIGKILL)

        def offline():
            return all((sub.last(f"facility/{s}/status") or (0, 0, ""))[2] == "offline" for s in sites)

        try:
            h.wait_for("last will offline", offline, timeout=90)  # keepalive 30 s x 1.5 + margin
            c.check(True, "after SIGKILL, every site's status becomes offline (last will)")
        except TimeoutError as e:
            c.check(False, str(e))

        # Read-only: the simulator counts every function code it received.
        rc = procs.stop("sim")
        log = procs.log("sim")
        fcs = {int(k) for k in re.findall(r"FC\s*(\d+)\b", log)}
        c.check(rc == 0, f"simulator exits cleanly on SIGTERM (rc {rc})")
        c.check(bool(fcs) and fcs <= {1, 2, 3, 4},
                f"only read function codes reached the devices: {sorted(fcs)}")

    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
