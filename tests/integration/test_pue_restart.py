#!/usr/bin/env python3
"""The energy PUE windows survive a restart and a reload (issue 15): facilityd stores its
energy grid in the history and restores it at start-up.

  facility-sim (6 cabinets at a simulated PUE of 1.35, a facility and an IT meter with 1 Wh
  energy counters) -- facilityd (2 s polls, PUE windows 1m and 2m, the history on)

  1. The first run publishes the 2-minute window once two minutes of energy are in its history.
  2. facilityd is stopped (SIGTERM) and started again after a 20 s pause (longer than the grid's
     normal lag of 16 s, so the restored window waits for new points). Soon after the start,
     well before two minutes of uptime, the 2-minute window is published again: its energy
     history reaches back further than the new process has run, its coverage is below 1 (the
     pause was not measured), the ratio is within 1 % of the simulator's ground truth, and the
     log says what was restored.
  3. A reload (SIGHUP) restarts the model: the window is still there right after it, and both
     after the restart and after the reload it stays there once new grid points come in.
Without the restore, a new process or model has no 2-minute window for two minutes.
"""
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402

PAUSE_S = 20


def config(profiles_dir, port, state_dir):
    return h.pue_meter_site(profiles_dir, port, daemon=f"state_dir: {state_dir}",
                            history="enabled: true, flush_interval: 1s")


def main():
    args = h.parse_args()
    build, src = args.build_dir, args.source_dir
    c = h.Checks()
    with h.workspace("pue-restart") as (wd, procs):
        sim_port, port = h.free_ports(2)
        cfg = os.path.join(wd, "facilityd.yaml")
        with open(cfg, "w") as f:
            f.write(config(h.wh_meter_profiles(src, wd), sim_port, os.path.join(wd, "state")))
        truth = os.path.join(wd, "truth.json")
        procs.start("sim", [os.path.join(build, "facility-sim"), "--config", cfg,
                            "--truth", truth, "--update-interval", "200ms"])
        h.wait_port(sim_port)
        url = f"http://127.0.0.1:{port}/metrics"
        argv = [os.path.join(build, "facilityd"), "run", "--config", cfg,
                "--listen", f"127.0.0.1:{port}"]

        def scrape():
            try:
                return h.parse_metrics(h.http_get(url))
            except OSError:
                return None

        def window(s, name="facility_site_pue_ratio", **labels):
            return h.find(s, name, site="g1", window="2m", **labels) if s else None

        def pue_2m():
            s = scrape()
            return s if window(s, category="1") is not None else None

        # 1. The first run.
        procs.start("facilityd", argv)
        s = h.wait_for("the first run's 2-minute PUE", pue_2m, timeout=240, interval=1)
        with open(truth) as f:
            true_pue = json.load(f)["sites"]["g1"]["pue"]
        first = window(s, category="1")
        c.check(abs(first / true_pue - 1) <= 0.01,
                f"first run: 2-minute PUE {first} within 1 % of the truth {true_pue}")
        time.sleep(12)  # a few more grid points into the history
        c.check(procs.stop("facilityd") == 0, "first run stopped cleanly (SIGTERM)")

        # 2. The restart.
        time.sleep(PAUSE_S)
        procs.start("facilityd-2", argv)
        started = time.time()
        s = h.wait_for("the 2-minute PUE after the restart", pue_2m, timeout=90, interval=1)
        elapsed = time.time() - started
        history_s = h.find(s, "facility_site_energy_history_seconds", site="g1",
                           role="facility_total")
        c.check(history_s is not None and history_s > elapsed + 60,
                f"the energy history reaches back {history_s} s, {elapsed:.0f} s after the start")
        cov = window(s, "facility_site_energy_coverage_ratio", role="facility_total")
        c.check(cov is not None and 0.5 <= cov < 1,
                f"its coverage {cov} says the {PAUSE_S} s pause was not measured")
        after = window(s, category="1")
        c.check(abs(after / true_pue - 1) <= 0.01,
                f"after the restart: 2-minute PUE {after} within 1 % of the truth {true_pue}")
        log = procs.log("facilityd-2")
        c.check("energy windows of site g1 (facility_total): restored" in log and
                "energy windows of site g1 (it_at_ups_output): restored" in log,
                "the log says which energy windows were restored")

        # Still there once each meter's first point after the restart is in the grid (that step
        # is the restart's too: counted as a missing meter's, it withheld the PUE for 2 minutes).
        time.sleep(14)
        s = scrape()
        c.check(window(s, category="1") is not None,
                f"14 s later the 2-minute PUE is still published ({window(s, category='1')}, "
                f"coverage {window(s, 'facility_site_energy_coverage_ratio', role='facility_total')})")

        # 3. A reload: the new model restores them too.
        time.sleep(2)
        procs.procs["facilityd-2"][0].send_signal(signal.SIGHUP)
        h.wait_for("the reload", lambda: "configuration reloaded" in procs.log("facilityd-2"),
                   timeout=30, interval=0.2)
        s = scrape()
        restored = [ln for ln in procs.log("facilityd-2").splitlines() if "restored" in ln][-2:]
        c.check(window(s, category="1") is not None,
                f"right after the reload the 2-minute PUE is still published "
                f"({window(s, category='1')}; coverage "
                f"{window(s, 'facility_site_energy_coverage_ratio', role='facility_total')}; "
                f"{restored})")
        time.sleep(14)
        s = scrape()
        c.check(window(s, category="1") is not None,
                f"and 14 s after the reload ({window(s, category='1')})")
        c.check(procs.log("facilityd-2").count("(facility_total): restored") == 2,
                "the reload restored the windows from the history")
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
