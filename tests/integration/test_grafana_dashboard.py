#!/usr/bin/env python3
"""The Grafana dashboard (config/grafana/facilityd-dashboard.json), statically: every PromQL
expression of its panels, variables and annotations parses (promtool check rules on a generated
rule file, one recording rule per expression), and every metric it selects is exported by
facilityd (docs/metrics.md) or recorded by the shipped rules (config/prometheus/). The panels
the issue asks for are there. test_prometheus.py runs the same expressions against a real
Prometheus scraping facilityd.
"""
import os
import re
import subprocess
import sys
import tempfile

import yaml

sys.path.insert(0, os.path.dirname(__file__))
import dashboard  # noqa: E402
import harness as h  # noqa: E402


def documented(src):
    with open(os.path.join(src, "docs/metrics.md")) as f:
        text = f.read()
    names = set(re.findall(r"`((?:facility|process)_[a-z0-9_]+)", text))
    return names


def recorded(src):
    out = set()
    for fn in os.listdir(os.path.join(src, "config/prometheus")):
        if fn.endswith(".rules.yml"):
            with open(os.path.join(src, "config/prometheus", fn)) as f:
                for g in yaml.safe_load(f)["groups"]:
                    out |= {r["record"] for r in g["rules"] if "record" in r}
    return out


def main():
    args = h.parse_args()
    src = args.source_dir
    c = h.Checks()
    dash = dashboard.load(src)
    exprs = dashboard.raw_expressions(dash)
    c.check(len(exprs) >= 25, f"{len(exprs)} expressions found in the dashboard")

    with tempfile.TemporaryDirectory(prefix="facilityd-dashboard-") as wd:
        rules = {"groups": [{"name": "dashboard", "rules": [
            {"record": f"dashboard:check_{i}", "expr": dashboard.substitute(e, {
                "job": ".+", "site": ".+", "room": ".+", "cabinet": ".+"})}
            for i, (_, e) in enumerate(exprs)]}]}
        path = os.path.join(wd, "dashboard.rules.yml")
        with open(path, "w") as f:
            yaml.safe_dump(rules, f)
        r = subprocess.run(["promtool", "check", "rules", path], capture_output=True, text=True)
        c.check(r.returncode == 0 and f"SUCCESS: {len(exprs)} rules found" in r.stdout,
                f"promtool parses every expression (rc {r.returncode}: "
                f"{(r.stdout + r.stderr).strip()[-800:]})")

    known = documented(src) | recorded(src)
    unknown = []
    for where, e in exprs:
        for name in dashboard.metric_names(e):
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            if name not in known and base not in known:
                unknown.append((where, name))
    c.check(not unknown, f"every metric the dashboard selects is exported or recorded {unknown}")
    c.check(len(documented(src)) > 60 and len(recorded(src)) > 30,
            "the reference sets are not empty (docs/metrics.md, recording rules)")

    titles = " | ".join(p.get("title", "") for p in dashboard.panels(dash)).lower()
    for want in ("it power", "facility power", "pue", "occupancy", "headroom", "heat",
                 "top cabinets by utilisation", "failover", "feed balance", "phase balance",
                 "inlet", "devices down"):
        c.check(want in titles, f"a panel for '{want}'")
    # Issue 15: a cabinet drill-down, links to facilityd, thresholds from the exported series.
    for want in ("cabinet utilisation and its thresholds", "cabinet feeds", "cabinet phases",
                 "cabinet failover headroom", "cabinet inlet", "feed balance per room",
                 "pue against target", "against their own warning threshold"):
        c.check(want in titles, f"a panel for '{want}'")
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    c.check("cabinet" in variables and "facility_cabinet_info" in str(variables["cabinet"]),
            "a $cabinet variable from facility_cabinet_info")
    cab_panels = [p["title"] for p in dashboard.panels(dash)
                  if any('cabinet=~"$cabinet"' in t.get("expr", "") for t in p.get("targets", []))]
    c.check(len(cab_panels) >= 5, f"the cabinet row's panels select $cabinet {cab_panels}")
    urls = [l.get("url", "") for l in dash.get("links", [])]
    c.check("${facilityd_url}/reports/${site}" in urls and "${facilityd_url}/" in urls,
            f"links to /reports/<site> and the landing page {urls}")
    thresholds = [t["expr"] for p in dashboard.panels(dash) for t in p.get("targets", [])
                  if "facility_cabinet_utilization_threshold_ratio" in t.get("expr", "")
                  or "facility_site_pue_target_ratio" in t.get("expr", "")
                  or "facility_site_inlet_threshold_celsius" in t.get("expr", "")]
    c.check(len(thresholds) >= 4, f"panels compare with facilityd's exported thresholds "
                                  f"({len(thresholds)} expressions)")
    kinds = {p["type"] for p in dashboard.panels(dash)}
    c.check("heatmap" in kinds, "the cabinet utilisation heat map is a heatmap panel")
    bad_ds = [p.get("title") for p in dashboard.panels(dash) if p["type"] != "row" and
              p.get("datasource", {}).get("uid") != "${datasource}"]
    c.check(not bad_ds, f"every panel uses the $datasource variable {bad_ds}")
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
