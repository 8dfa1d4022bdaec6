#!/usr/bin/env python3
"""The facility model on the demo site, end to end, against the simulator's ground truth.

facility-sim serves the demo configuration over Modbus TCP on loopback; facilityd polls it; the
test reads /metrics and compares the derived values with what the simulator says is true (its
--truth file) and with the configuration (ratings, classes, cooling capacities, the plan).

The demo configuration is used as generated, with test-only changes that keep the run short:
  * a 1-minute PUE window next to the configured ones, and 5 s hold times for the alerts;
  * hl1's UPS meter wraps its 32-bit counter 40 s after the simulator starts (instead of
    300 s), and bj-lease's rebooting PDU restarts its counter after 40 s (instead of 400 s);
  * the site meters use a copy of generic-energy-meter whose 32-bit counter counts Wh instead
    of 0.1 kWh, so that a 1-minute energy window is not dominated by counter resolution;
  * one PDU of bj-lease is silent from the start (coverage, not silence).
"""
import datetime
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time

import yaml

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402

SILENT_PDU = "bj-lease-LF1-B01-03-pdu-b"
SILENT_CABINET = ("bj-lease", "LF1-B01-03")
WRAP_METER = "hl1-meter-ups"
RESET_PDU = "bj-lease-BJ1-A01-05-pdu-a"
ESTIMATED = ("hl1", "2FA-A04-03", "hl1-2FA-A04-03-pdu-b")
HOT_SPOT = ("hl1", "2FA-A03-10")
# Values drift by well under 1 % between a poll and the truth file (every second).
DRIFT = 0.02


def substitute(text, old, new, count=None):
    n = text.count(old)
    if n == 0 or (count is not None and n != count):
        raise SystemExit(f"demo config changed: expected {count or 'some'} x {old!r}, found {n}")
    return text.replace(old, new)


def prepare(src, wd):
    cfg, ports = h.remap_config(os.path.join(src, "config/demo/facilityd.yaml"), src, wd)
    with open(cfg) as f:
        text = f.read()
    profiles = os.path.join(wd, "profiles")
    shutil.copytree(os.path.join(src, "config/profiles"), profiles)
    with open(os.path.join(profiles, "generic-energy-meter.yaml")) as f:
        meter = yaml.safe_load(f)
    meter["name"] = "test-energy-meter-wh"
    for p in meter["points"]:
        if p["name"] == "energy":
            p.pop("scale", None)
            p["unit"] = "Wh"
    with open(os.path.join(profiles, "test-energy-meter-wh.yaml"), "w") as f:
        yaml.safe_dump(meter, f)
    text = re.sub(r"(?m)^profiles_dir:.*$", "profiles_dir: " + profiles, text)
    text = substitute(text, "profile: generic-energy-meter,", "profile: test-energy-meter-wh,")
    text = substitute(text, "pue_windows: [15m, 1h, 24h, 30d]", "pue_windows: [1m, 15m, 1h, 24h, 30d]", 1)
    text = substitute(text, "hold: 60s", "hold: 5s", 3)
    text = substitute(text, "energy_wrap_after: 300s", "energy_wrap_after: 40s", 1)
    text = substitute(text, "energy_reset_after: 400s", "energy_reset_after: 40s", 1)
    with open(cfg, "w") as f:
        f.write(text)
    return cfg, ports, yaml.safe_load(text)


class Metrics:
    def __init__(self, samples):
        self.samples = samples

    def get(self, name, **labels):
        return h.find(self.samples, name, **labels)

    def all(self, name, **labels):
        return [(l, v) for n, l, v in self.samples
                if n == name and all(l.get(k) == val for k, val in labels.items())]


def close(got, want, rel, floor=1.0):
    return got is not None and abs(got - want) <= rel * max(abs(want), floor)


def cabinet_specs(cfg):
    """(site, cabinet) -> rated W, one-feed capacity W, derating, warning, critical."""
    fac = cfg["facility"]
    classes = {c["id"]: c for c in cfg["cabinet_classes"]}
    out = {}
    for site in cfg["sites"]:
        for room in site["rooms"]:
            for row in room["rows"]:
                for cab in row["cabinets"]:
                    cls = classes[cab["class"]]
                    if "breaker" in cls:
                        b = cls["breaker"]
                        rated = b["amps"] * b["volts"] * (math.sqrt(3) if b.get("phases", 1) == 3 else 1)
                    else:
                        rated = cls["rated_kw"] * 1000
                    ov = dict(fac["overload"], **cls.get("overload", {}))
                    out[(site["id"], cab["id"])] = {
                        "rated": rated, "derating": cls.get("derating", fac["derating"]),
                        "warning": ov["warning"], "critical": ov["critical"], "room": room["id"],
                        "status": cab.get("status", "free")}
    return out


def level(u, warning, critical, hysteresis):
    """Expected overload state, or None when u is too close to a threshold to tell."""
    if u >= critical + 0.01:
        return 2
    if warning + 0.01 <= u < critical - 0.01:
        return 1
    if u < warning - hysteresis - 0.01:
        return 0
    return None


def main():
    args = h.parse_args()
    build, src = args.build_dir, args.source_dir
    c = h.Checks()
    r = subprocess.run([sys.executable, os.path.join(src, "scripts/gen-demo-config.py"), "--check"],
                       capture_output=True, text=True)
    c.check(r.returncode == 0, f"config/demo/facilityd.yaml is what the generator writes {r.stderr.strip()}")
    with h.workspace("facility-model") as (wd, procs):
        cfg_path, ports, cfg = prepare(src, wd)
        truth_path = os.path.join(wd, "truth.json")
        procs.start("sim", [os.path.join(build, "facility-sim"), "--config", cfg_path,
                            "--truth", truth_path, "--fault", f"{SILENT_PDU}=silent"])
        for p in ports:
            h.wait_port(p)
        listen = h.free_port()
        procs.start("facilityd", [os.path.join(build, "facilityd"), "run", "--config", cfg_path,
                                  "--listen", f"127.0.0.1:{listen}", "--no-mqtt"])
        url = f"http://127.0.0.1:{listen}/metrics"

        def ready():
            m = Metrics(h.parse_metrics(h.http_get(url)))
            up = [(l["device"], v) for l, v in m.all("facility_device_up")]
            if not up or any(v != 1 for d, v in up if d != SILENT_PDU):
                return None
            # A 1-minute energy PUE needs a minute of history after the meters of both terms
            # answered (each role's history starts with its own meters' first readings).
            for site, cat in (("hl1", "1"), ("hl1", "2"), ("wc1", "1")):
                for name, extra in (("facility_site_pue_ratio", {}),
                                    ("facility_site_partial_pue_ratio", {"subsystem": "cooling"})):
                    if m.get(name, site=site, category=cat, window="1m", **extra) is None:
                        return None
            return m

        m = h.wait_for("every device up and 1-minute energy PUEs", ready, timeout=240, interval=2)
        text = h.http_get(url)
        m = Metrics(h.parse_metrics(text))
        with open(truth_path) as f:
            truth = json.load(f)
        specs = cabinet_specs(cfg)
        fac = cfg["facility"]
        tdev = truth["devices"]

        # ---- Cabinets: power, utilisation, failover headroom, states --------------------
        bad_power, bad_headroom, bad_state, bad_risk, n = [], [], [], [], 0
        truth_risky = []  # hl1 cabinets whose true failover margin is clearly negative
        for key, tc in truth["cabinets"].items():
            site, cab = key.split("/", 1)
            sp = specs[(site, cab)]
            got = m.get("facility_cabinet_power_watts", site=site, cabinet=cab)
            if (site, cab) == SILENT_CABINET:
                continue
            n += 1
            if (site, cab) == ESTIMATED[:2]:
                continue  # checked on its own below
            if not close(got, tc["power_w"], DRIFT, 100):
                bad_power.append((key, got, tc["power_w"]))
                continue
            derated = sp["rated"] * sp["derating"]
            # One headroom per cabinet: either feed would carry the whole cabinet alone.
            hr = m.get("facility_cabinet_failover_headroom_watts", site=site, cabinet=cab)
            if hr is None or abs(hr - (derated - tc["power_w"])) > DRIFT * sp["rated"]:
                bad_headroom.append((key, hr, round(derated - tc["power_w"])))
            u = tc["power_w"] / sp["rated"]
            want = level(u, sp["warning"], sp["critical"], fac["overload"]["hysteresis"])
            state = m.get("facility_cabinet_overload_state", site=site, cabinet=cab)
            if want is not None and state != want:
                bad_state.append((key, round(u, 3), state, want))
            margin = (derated - tc["power_w"]) / derated
            if cab.startswith("2FG-"):
                # Three-phase feeds: after a failover each phase carries both feeds' share of it,
                # against a third of the derated capacity (the model takes the smaller margin).
                pa, pb = tdev[f"{site}-{cab}-pdu-a"], tdev[f"{site}-{cab}-pdu-b"]
                for i in (1, 2, 3):
                    load = pa[f"active_power_l{i}"] + pb[f"active_power_l{i}"]
                    margin = min(margin, (derated / 3 - load) / (derated / 3))
            risk = alert(m, site, "cabinet_failover_risk", cab)
            if site == "hl1" and margin < -0.03:
                truth_risky.append(cab)
            if (margin < -0.03 and risk != 1) or (margin > fac["failover"]["hysteresis"] + 0.03 and risk != 0):
                bad_risk.append((key, round(margin, 3), risk))
        c.check(not bad_power, f"{n} cabinets: power within {DRIFT:.0%} of ground truth {bad_power[:3]}")
        c.check(not bad_headroom, "failover headroom = derating x capacity - truth power "
                                  f"{bad_headroom[:3]}")
        c.check(not bad_state, f"overload state matches the truth utilisation and thresholds {bad_state[:3]}")
        c.check(not bad_risk, f"failover risk where the truth headroom is negative, not where positive {bad_risk[:3]}")
        over = m.get("facility_cabinet_overload_state", site="hl1", cabinet="2FA-A02-06")
        c.check(over == 2, f"the cabinet at 104 % of its rating is critical (state {over})")
        risky = [l["subject"] for l, v in m.all("facility_alert_raised_timestamp_seconds", site="hl1",
                                                  kind="cabinet_failover_risk")]
        # Which near-rating cabinets are over 80 % depends on the simulated load's daily swing
        # (2FA-A01-03 is at some hours of the day, not at others): the truth says which.
        c.check("2FA-A02-06" in truth_risky and set(truth_risky) <= set(risky),
                f"near-rating cabinets are failover risks at 80 % derating: {sorted(risky)} "
                f"(truth: {sorted(truth_risky)})")

        # A PDU that reports only current: P = I x V x 0.95 (nominal power factor), flagged.
        site, cab, dev = ESTIMATED
        want = tdev[dev]["current"] * tdev[dev]["voltage"] * fac["nominal_power_factor"]
        got = m.get("facility_cabinet_feed_power_watts", site=site, cabinet=cab, feed="B")
        c.check(close(got, want, DRIFT), f"current-only feed B = I x V x 0.95 = {want:.0f} W (got {got})")
        c.check(m.get("facility_cabinet_feed_power_estimated", site=site, cabinet=cab, feed="B") == 1
                and m.get("facility_cabinet_feed_power_estimated", site=site, cabinet=cab, feed="A") is None
                and m.get("facility_cabinet_feed_power_watts", site=site, cabinet=cab, feed="A") is not None,
                "the estimated feed is flagged estimated, the measured feed is not")
        tp = truth["cabinets"][f"{site}/{cab}"]["power_w"]
        got = m.get("facility_cabinet_power_watts", site=site, cabinet=cab)
        c.check(close(got, tp, 0.05), f"estimated cabinet within 5 % of its true power ({got} vs {tp:.0f})")

        # Three-phase GPU PDUs: imbalance from the phase currents; phase failover headroom.
        bad = []
        for key, tc in truth["cabinets"].items():
            site, cab = key.split("/", 1)
            if not cab.startswith("2FG-"):
                continue
            pa, pb = tdev[f"{site}-{cab}-pdu-a"], tdev[f"{site}-{cab}-pdu-b"]
            cur = [pa[f"current_l{i}"] for i in (1, 2, 3)]
            mean = sum(cur) / 3
            want = max(abs(x - mean) for x in cur) / mean
            got = m.get("facility_cabinet_phase_imbalance_ratio", site=site, cabinet=cab, feed="A")
            if got is None or abs(got - want) > 0.02:
                bad.append((cab, "imbalance", got, round(want, 4)))
            cap = specs[(site, cab)]["rated"] * specs[(site, cab)]["derating"] / 3
            want = cap - (pa["active_power_l1"] + pb["active_power_l1"])
            got = m.get("facility_cabinet_phase_failover_headroom_watts", site=site, cabinet=cab,
                        phase="L1")
            if got is None or abs(got - want) > DRIFT * cap:
                bad.append((cab, "L1 headroom", got, round(want)))
        c.check(not bad, f"GPU cabinets: phase imbalance and L1 failover headroom match the truth {bad[:3]}")

        # ---- Coverage, not silence: one PDU of a pair silent ----------------------------
        site, cab = SILENT_CABINET
        c.check(m.get("facility_cabinet_power_watts", site=site, cabinet=cab) is None,
                f"{cab}: no cabinet power with one PDU silent (never half of it)")
        c.check(m.get("facility_cabinet_feed_power_watts", site=site, cabinet=cab, feed="B") is None
                and m.get("facility_cabinet_feed_power_watts", site=site, cabinet=cab, feed="A") is not None,
                f"{cab}: the silent feed B has no power, feed A is still published")
        cov = m.get("facility_site_coverage_ratio", site="bj-lease", quantity="it_power")
        c.check(cov is not None and abs(cov - 79 / 80) < 1e-9 and
                m.get("facility_site_it_power_watts", site="bj-lease") is None,
                f"bj-lease: IT coverage 79/80 PDUs ({cov}) and no site IT power")
        c.check(m.get("facility_site_energy_joules_total", site="bj-lease", role="pdu_sum") is None,
                "bj-lease: PDU energy counter withheld while a PDU is missing")

        # ---- PUE: instant and energy, per category --------------------------------------
        for site, cats in (("hl1", ("1", "2")), ("wc1", ("1",))):
            tpue = truth["sites"][site]["pue"]
            # The simulator puts 75 % of the overhead on the cooling board.
            tppue = 1 + (tpue - 1) * 0.75
            for cat in cats:
                inst = m.get("facility_site_pue_ratio", site=site, category=cat, window="instant")
                c.check(close(inst, tpue, 0.01), f"{site} category {cat}: instant PUE {inst} ~ truth {tpue:.3f}")
                e1 = m.get("facility_site_pue_ratio", site=site, category=cat, window="1m")
                # 1 %, as for the instant PUE: over 60 s the two meters' sample instants jitter
                # by up to ~0.3 s on a loaded machine (seen in CI: 1.3869 against 1.380).
                c.check(close(e1, tpue, 0.01), f"{site} category {cat}: 1-minute energy PUE {e1} ~ {tpue:.3f}")
                p1 = m.get("facility_site_partial_pue_ratio", site=site, category=cat, window="1m",
                           subsystem="cooling")
                c.check(close(p1, tppue, 0.005), f"{site} category {cat}: 1-minute cooling pPUE {p1} ~ {tppue:.3f}")
                c.check(m.get("facility_site_pue_ratio", site=site, category=cat, window="15m") is None,
                        f"{site} category {cat}: no 15-minute PUE before 15 minutes of history")
        c.check(m.get("facility_site_pue_ratio", site="bj-lease") is None, "bj-lease: no PUE without meters")

        # ---- Energy counters: a wrap and a reboot ----------------------------------------
        events = {(l["device"], l["event"]): v for l, v in m.all("facility_site_energy_reading_events_total")}
        c.check(tdev[WRAP_METER]["energy"] < 2 ** 31,
                f"the simulator really wrapped {WRAP_METER} (now {tdev[WRAP_METER]['energy']:.0f} Wh)")
        c.check(events.get((WRAP_METER, "wrap")) == 1 and events.get((WRAP_METER, "reset"), 0) == 0,
                f"{WRAP_METER}: one wrap, no reset ({events.get((WRAP_METER, 'wrap'))}, "
                f"{events.get((WRAP_METER, 'reset'))})")
        c.check(events.get((RESET_PDU, "reset")) == 1, f"{RESET_PDU}: its reboot is one reset")
        others = {k: v for k, v in events.items() if v and k not in
                  {(WRAP_METER, "wrap"), (RESET_PDU, "reset")}}
        c.check(not others, f"no other wrap, reset or rejected reading anywhere {list(others.items())[:5]}")
        cov = m.get("facility_site_energy_coverage_ratio", site="hl1", role="it_at_ups_output", window="1m")
        c.check(cov == 1, f"hl1 UPS energy: the wrap loses nothing (1-minute coverage {cov})")
        total = m.get("facility_site_energy_joules_total", site="hl1", role="it_at_ups_output")
        hist = m.get("facility_site_energy_history_seconds", site="hl1", role="it_at_ups_output")
        it_w = truth["sites"]["hl1"]["it_power_w"]
        c.check(total is not None and hist and close(total / hist, it_w, DRIFT),
                f"hl1 UPS energy / history = {total and hist and total / hist:.0f} W ~ truth IT {it_w:.0f} W")

        # ---- Occupancy, plan, capacity, cooling, environment -----------------------------
        for site in ("hl1", "wc1", "bj-lease"):
            cabs = {k.split("/", 1)[1]: v for k, v in truth["cabinets"].items() if k.startswith(site + "/")}
            powered = sum(1 for v in cabs.values() if v["power_w"] > cfg["daemon"]["powered_threshold_w"])
            got = m.get("facility_site_cabinets", site=site, state="powered")
            c.check(got == powered, f"{site}: {powered} powered cabinets per the truth (got {got})")
            occ = m.get("facility_site_occupancy_ratio", site=site, basis="powered")
            c.check(close(occ, powered / len(cabs), 1e-9), f"{site}: occupancy {occ} = {powered}/{len(cabs)}")
            rated = sum(specs[(site, k)]["rated"] for k in cabs)
            c.check(close(m.get("facility_site_capacity_watts", site=site, quantity="rated"), rated, 1e-9),
                    f"{site}: rated capacity {rated:.0f} W")
            if site == "bj-lease":
                continue
            measured = sum(v["power_w"] for v in cabs.values())
            got = m.get("facility_site_capacity_watts", site=site, quantity="measured")
            c.check(close(got, measured, DRIFT), f"{site}: measured capacity {got} ~ {measured:.0f} W")
            reserve = rated * cfg_site(cfg, site).get("facility", {}).get("capacity_reserve", fac["capacity_reserve"])
            got = m.get("facility_site_capacity_watts", site=site, quantity="headroom_to_reserve")
            c.check(got is not None and abs(got - (rated - reserve - measured)) <= DRIFT * measured,
                    f"{site}: headroom to reserve {got} ~ {rated - reserve - measured:.0f} W")
            # Peaks are at least the present power, so stranded <= rated - present, and close to it.
            want = sum(specs[(site, k)]["rated"] - v["power_w"] for k, v in cabs.items()
                       if v["power_w"] > 100 or specs[(site, k)]["status"] == "sold")
            got = m.get("facility_site_capacity_watts", site=site, quantity="stranded")
            c.check(got is not None and want - DRIFT * rated <= got <= want + DRIFT * measured,
                    f"{site}: stranded {got} ~ rated - peak of powered or sold = {want:.0f} W")
            eq = m.get("facility_site_capacity_equivalent_cabinets", site=site, quantity="rated")
            c.check(close(eq, rated / 4400, 1e-9), f"{site}: rated = {eq} cabinets of 4.4 kW")

        plan = cfg_site(cfg, "hl1")["build_out_plan"]
        today = datetime.datetime.now(datetime.timezone.utc).date()
        want = 0
        for step in plan:
            d = step["date"] if isinstance(step["date"], datetime.date) else datetime.date.fromisoformat(step["date"])
            if d <= today:
                want = step["powered"]
        got = m.get("facility_site_plan_powered_cabinets", site="hl1")
        c.check(got == want, f"hl1: plan in effect today is {want} powered cabinets (got {got})")
        powered = m.get("facility_site_cabinets", site="hl1", state="powered")
        att = m.get("facility_site_plan_attainment_ratio", site="hl1")
        c.check(want == 0 or close(att, powered / want, 1e-9), f"hl1: plan attainment {att} = {powered}/{want}")

        bad = []
        for site in cfg["sites"]:
            for room in site["rooms"]:
                units = [d for d in site.get("devices", []) if d["kind"] == "cooling" and d["room"] == room["id"]]
                if not units:
                    continue
                caps = [d["capacity_kw"] * 1000 for d in units]
                heat = sum(v["power_w"] for k, v in truth["cabinets"].items()
                           if k.startswith(site["id"] + "/") and specs[(site["id"], k.split("/", 1)[1])]["room"] == room["id"])
                want = sum(caps) - max(caps) - heat
                got = m.get("facility_room_cooling_headroom_watts", site=site["id"], room=room["id"],
                            redundancy="n_plus_1")
                if got is None or abs(got - want) > DRIFT * heat:
                    bad.append((site["id"], room["id"], got, round(want)))
        c.check(not bad, f"rooms: N+1 cooling headroom = capacity - largest unit - truth IT heat {bad}")

        bad = []
        for dev, pts in tdev.items():
            if "u_occupied" not in pts:
                continue
            site = dev.split("-", 1)[0] if not dev.startswith("bj-lease") else "bj-lease"
            cab = dev[len(site) + 1:-len("-env")]
            got = m.get("facility_cabinet_rack_units", site=site, cabinet=cab, state="occupied")
            if got != round(pts["u_occupied"]):
                bad.append((dev, got, pts["u_occupied"]))
        c.check(not bad, f"rack units occupied as the rack sensors report them {bad[:3]}")
        hot = m.get("facility_alert_raised_timestamp_seconds", site=HOT_SPOT[0], kind="inlet_temperature",
                    subject=HOT_SPOT[1], severity="warning")
        c.check(hot is not None and hot <= time.time(),
                f"the 29.5 degC inlet is outside the ASHRAE A1 recommended range (raised at {hot})")
        normal = [l["subject"] for l, v in m.all("facility_alert_raised_timestamp_seconds", kind="inlet_temperature")
                  if (l["site"], l["subject"]) != HOT_SPOT]
        c.check(not normal, f"every other inlet (21-25 degC) is within the recommended range {normal}")
        alerts = {}
        for l, v in m.all("facility_alert_raised_timestamp_seconds"):
            k = (l["site"], l["kind"], l["severity"])
            alerts[k] = alerts.get(k, 0) + 1
        c.check(alerts.get(("hl1", "cabinet_overload", "critical"), 0) >= 1 and
                alerts.get(("hl1", "inlet_temperature", "warning")) == 1,
                f"alerts raised: overload critical and one inlet warning in hl1 {alerts}")

        # ---- The metric contract and the exposition format --------------------------------
        names = {n for n, _, _ in m.samples}
        required = [
            "facility_cabinet_power_watts", "facility_cabinet_feed_power_watts",
            "facility_cabinet_rated_power_watts", "facility_cabinet_utilization_ratio",
            "facility_cabinet_failover_headroom_watts", "facility_cabinet_overload_state",
            "facility_site_it_power_watts", "facility_site_facility_power_watts",
            "facility_site_pue_ratio", "facility_site_energy_joules_total",
            "facility_site_coverage_ratio", "facility_site_cabinets", "facility_site_occupancy_ratio",
            "facility_rack_inlet_temperature_celsius", "facility_device_up"]
        missing = [r for r in required if r not in names]
        c.check(not missing, f"every metric of the contract is exported {missing}")
        documented = docs_names(src)
        undocumented = sorted(n for n in names if n.startswith("facility_") and n not in documented
                              and re.sub(r"_(bucket|count|sum)$", "", n) not in documented)
        c.check(not undocumented, f"every facility_* metric is documented in docs/metrics.md {undocumented}")
        r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
        c.check(r.returncode == 0 and not (r.stdout + r.stderr).strip(),
                f"promtool check metrics is clean ({(r.stdout + r.stderr).strip()[:300]})")
    return c.finish()


def alert(m, site, kind, subject):
    """1 while the model's alert is raised (its series exists), else 0."""
    return 0 if m.get("facility_alert_raised_timestamp_seconds", site=site, kind=kind,
                      subject=subject) is None else 1


def cfg_site(cfg, site_id):
    return next(s for s in cfg["sites"] if s["id"] == site_id)


def docs_names(src):
    with open(os.path.join(src, "docs/metrics.md")) as f:
        return set(re.findall(r"`(facility_[a-z0-9_]+)", f.read()))


if __name__ == "__main__":
    sys.exit(main())
