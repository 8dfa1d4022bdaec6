#!/usr/bin/env python3
"""The shipped Prometheus rules (config/prometheus/): promtool check rules is clean, promtool
test rules passes, and the unit tests cover every alert: for each alert name at least one test
where it fires and, later in the same test, one where it has resolved (and the alerts the issue
names all exist, with a summary, a description and a runbook). Every alert's runbook_url points
at a section of docs/prometheus.md ("Runbooks") that names what to check, in numbered steps.
"""
import glob
import os
import re
import subprocess
import sys

import yaml

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402

REQUIRED_ALERTS = {"CabinetPowerHigh", "CabinetOverload", "CabinetFailoverRisk", "DeviceDown",
                   "DeviceDataStale", "InletTemperatureOutOfRange", "SitePUEDegraded",
                   "SiteHeadroomLow",
                   # issue 15
                   "CoolingRedundancyLost", "FacilitydTargetDown", "FacilitydMqttDisconnected",
                   "FacilitydHistoryDown", "ModbusEndpointDown", "FacilitydSnapshotStale",
                   # issue 15: facilityd's UPS alerts
                   "UpsOnBattery", "UpsOnBypass", "UpsOverload", "UpsRuntimeLow"}
RUNBOOK_PREFIX = "file:///usr/share/doc/facilityd/docs/prometheus.md#"


def anchor(heading):
    """The anchor GitHub (and most Markdown renderers) give a heading."""
    return re.sub(r"[^a-z0-9 _-]", "", heading.strip().lower()).replace(" ", "-")


def runbook_sections(doc_text):
    """{anchor: section text} of the ### headings under "## Runbooks"."""
    part = doc_text.split("\n## Runbooks\n", 1)
    if len(part) < 2:
        return {}
    part = re.split(r"\n## ", part[1], 1)[0]
    out = {}
    for m in re.finditer(r"^### ([^\n]+)\n(.*?)(?=^### |\Z)", part, re.S | re.M):
        out[anchor(m.group(1))] = m.group(2)
    return out


def duration_s(s):
    return sum(int(n) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[u]
               for n, u in re.findall(r"(\d+)([smhd])", s))


def main():
    args = h.parse_args()
    src = args.source_dir
    c = h.Checks()
    base = os.path.abspath(os.path.join(src, "config/prometheus"))
    rules = sorted(glob.glob(os.path.join(base, "*.rules.yml")))
    tests = sorted(glob.glob(os.path.join(base, "tests", "*.yml")))
    c.check(len(rules) >= 2 and tests, f"rule files {rules} and tests {tests}")

    r = subprocess.run(["promtool", "check", "rules", *rules], capture_output=True, text=True)
    out = r.stdout + r.stderr
    c.check(r.returncode == 0 and "WARNING" not in out.upper(),
            f"promtool check rules is clean (rc {r.returncode}): {out.strip()[-600:]}")
    r = subprocess.run(["promtool", "test", "rules", *tests], capture_output=True, text=True,
                       cwd=os.path.join(base, "tests"))
    out = r.stdout + r.stderr
    c.check(r.returncode == 0 and out.count("SUCCESS") == len(tests),
            f"promtool test rules passes for {len(tests)} files (rc {r.returncode}): "
            f"{out.strip()[-1500:]}")

    alerts = {}
    for path in rules:
        with open(path) as f:
            for g in yaml.safe_load(f)["groups"]:
                for rule in g["rules"]:
                    if "alert" in rule:
                        alerts.setdefault(rule["alert"], []).append(rule)
    missing = REQUIRED_ALERTS - set(alerts)
    c.check(not missing, f"every alert the issue names exists {sorted(missing)}")
    bad = [(name, sorted(k for k in ("summary", "description", "runbook")
                         if len(rule.get("annotations", {}).get(k, "")) < 20))
           for name, rs in alerts.items() for rule in rs
           if any(len(rule.get("annotations", {}).get(k, "")) < 20
                  for k in ("summary", "description", "runbook"))]
    c.check(not bad, f"every alert has a summary, a description and a runbook {bad}")
    bad = [name for name, rs in alerts.items() for rule in rs
           if rule.get("labels", {}).get("severity") not in ("warning", "critical")]
    c.check(not bad, f"every alert has severity warning or critical {bad}")

    with open(os.path.join(src, "docs/prometheus.md")) as f:
        sections = runbook_sections(f.read())
    bad = []
    for name, rs in alerts.items():
        for rule in rs:
            url = rule.get("annotations", {}).get("runbook_url", "")
            sec = sections.get(url[len(RUNBOOK_PREFIX):]) if url.startswith(RUNBOOK_PREFIX) else None
            # A runbook says what to check: numbered steps (1., 2.) naming what to look at.
            if sec is None or not re.search(r"(?m)^1\. ", sec) or not re.search(r"(?m)^2\. ", sec):
                bad.append((name, url))
    c.check(not bad and sections, f"every alert's runbook_url is a docs/prometheus.md Runbooks "
                                  f"section with numbered steps {bad}")

    # Coverage: per alert, a test where an alert fires and a later evaluation of the same test
    # where that alert (same labels) is gone again: it resolved.
    covered = {}
    for path in tests:
        with open(path) as f:
            doc = yaml.safe_load(f)
        for t in doc["tests"]:
            evals = sorted(t.get("alert_rule_test", []), key=lambda e: duration_s(e["eval_time"]))
            seen = {}  # alertname -> identities that fired so far
            for e in evals:
                name = e["alertname"]
                now = {tuple(sorted(a.get("exp_labels", {}).items())) for a in e.get("exp_alerts") or []}
                if seen.get(name, set()) - now:
                    covered[name] = os.path.basename(path)
                seen.setdefault(name, set()).update(now)
    uncovered = sorted(set(alerts) - set(covered))
    c.check(not uncovered, f"every alert fires and then resolves in a promtool test {uncovered}")
    # "Does not fire": each test file has series that stay below the thresholds; checked by the
    # exact exp_alerts lists (promtool fails on any extra alert).
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
