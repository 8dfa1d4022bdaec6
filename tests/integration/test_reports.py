#!/usr/bin/env python3
"""History and capacity reports, end to end, on the demo site.

facility-sim serves the demo configuration; facilityd polls it and writes its history to a
state directory of the test. The test checks
  * what the history holds (read with Python's own sqlite3, decoding the cabinet records as
    docs/reports.md describes them) against the simulator's ground truth;
  * the report served at /reports/<site> (JSON, CSV, text) against the history, /metrics and
    the configuration; the landing page; errors for a bad site or format;
  * `facilityd report` on the command line gives the same figures;
  * the HTML report rendered by headless Chromium: headings and chart elements in the DOM, and
    a screenshot kept as a test artefact (<build>/test-artifacts/report-hl1.png);
  * a SIGKILL of the daemon: the database passes PRAGMA integrity_check, the daemon starts
    again on it, and the report still works.
"""
import csv
import io
import json
import os
import re
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402

SITE = "hl1"
CAB_RECORD = struct.Struct("<ffHHHHfH")


def prepare(src, wd):
    cfg, ports = h.remap_config(os.path.join(src, "config/demo/facilityd.yaml"), src, wd)
    with open(cfg) as f:
        text = f.read()
    state = os.path.join(wd, "state")
    os.makedirs(state)
    text, n = re.subn(r"(?m)^(  powered_threshold_w:.*)$", r"\1\n  state_dir: " + state, text)
    if n != 1:
        raise SystemExit("demo config changed: no daemon.powered_threshold_w line")
    # Write completed minutes within a second (the default batches them per minute).
    if text.count("  minute_retention: 35d\n") != 1:
        raise SystemExit("demo config changed: no history.minute_retention line")
    text = text.replace("  minute_retention: 35d\n", "  minute_retention: 35d\n  flush_interval: 1s\n")
    with open(cfg, "w") as f:
        f.write(text)
    return cfg, ports, state


def db_query(path, sql, args=()):
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def decode_cabinets(blob):
    version, n = struct.unpack_from("<BI", blob, 0)
    assert version == 1 and len(blob) == 5 + n * CAB_RECORD.size, (version, n, len(blob))
    return [CAB_RECORD.unpack_from(blob, 5 + i * CAB_RECORD.size) for i in range(n)]


def close(got, want, rel):
    return got is not None and abs(got - want) <= rel * max(abs(want), 1.0)


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def chromium(html_path, artefacts):
    """Returns (dom, screenshot path) of the page rendered by headless Chromium."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        return None, None
    profile = tempfile.mkdtemp(prefix="facilityd-chromium-")
    common = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--disable-dev-shm-usage", f"--user-data-dir={profile}"]
    url = "file://" + os.path.abspath(html_path)
    try:
        dom = subprocess.run(common + ["--dump-dom", url], capture_output=True, text=True,
                             timeout=120).stdout
        png = os.path.join(artefacts, "report-hl1.png")
        if os.path.exists(png):
            os.remove(png)
        subprocess.run(common + ["--hide-scrollbars", "--window-size=1100,4200",
                                 f"--screenshot={png}", url],
                       capture_output=True, text=True, timeout=120)
        return dom, png
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def main():
    args = h.parse_args()
    build, src = args.build_dir, args.source_dir
    c = h.Checks()
    artefacts = os.path.join(build, "test-artifacts")
    os.makedirs(artefacts, exist_ok=True)
    with h.workspace("reports") as (wd, procs):
        cfg_path, ports, state = prepare(src, wd)
        db = os.path.join(state, "history.sqlite")
        truth_path = os.path.join(wd, "truth.json")
        procs.start("sim", [os.path.join(build, "facility-sim"), "--config", cfg_path,
                            "--truth", truth_path])
        for p in ports:
            h.wait_port(p)
        listen = h.free_port()
        daemon = [os.path.join(build, "facilityd"), "run", "--config", cfg_path,
                  "--listen", f"127.0.0.1:{listen}", "--no-mqtt"]
        procs.start("facilityd", daemon)
        base = f"http://127.0.0.1:{listen}"
        started = time.time()

        def all_up():
            samples = h.parse_metrics(h.http_get(base + "/metrics"))
            up = [v for n, _, v in samples if n == "facility_device_up"]
            return up and all(v == 1 for v in up)

        h.wait_for("every device up", all_up, timeout=120, interval=1)
        up_at = time.time()

        # A complete minute that starts after every device was up, written to the history.
        def good_minute():
            rows = db_query(db, "SELECT t, samples_s, cab_s, cab_j, it_j, it_s, pue_fac_j, pue_it_j, "
                                "powered, cabinets_total FROM site_minute WHERE site = ? AND t >= ? "
                                "ORDER BY t", (SITE, int(up_at) // 60 * 60 + 60))
            return [r for r in rows if r[1] > 55] or None

        rows = h.wait_for("a complete minute in the history", good_minute, timeout=150, interval=2)
        t, samples_s, cab_s, cab_j, it_j, it_s, pue_fac, pue_it, powered, total = rows[0]
        with open(truth_path) as f:
            truth = json.load(f)
        cabs = {k.split("/", 1)[1]: v for k, v in truth["cabinets"].items() if k.startswith(SITE + "/")}
        truth_sum = sum(v["power_w"] for v in cabs.values())
        c.check(close(cab_j / cab_s, truth_sum, 0.03),
                f"history: hl1 minute average of the cabinet sum {cab_j / cab_s:.0f} W ~ truth {truth_sum:.0f} W")
        c.check(close(it_j / it_s, truth["sites"][SITE]["it_power_w"], 0.03),
                f"history: IT power {it_j / it_s:.0f} W ~ truth {truth['sites'][SITE]['it_power_w']:.0f} W")
        c.check(close(pue_fac / pue_it, truth["sites"][SITE]["pue"], 0.01),
                f"history: energy PUE of the minute {pue_fac / pue_it:.3f} ~ truth {truth['sites'][SITE]['pue']:.3f}")
        want_powered = sum(1 for v in cabs.values() if v["power_w"] > 100)
        c.check(powered == want_powered and total == len(cabs),
                f"history: {powered} of {total} cabinets powered (truth {want_powered} of {len(cabs)})")
        (layout_json,), = db_query(db, "SELECT l.cabinets FROM cabinet_minute m JOIN layouts l ON "
                                       "l.id = m.layout WHERE m.site = ? AND m.t = ?", (SITE, t))
        (blob,), = db_query(db, "SELECT data FROM cabinet_minute WHERE site = ? AND t = ?", (SITE, t))
        ids = [x["id"] for x in json.loads(layout_json)]
        recs = dict(zip(ids, decode_cabinets(blob)))
        bad = [(k, round(recs[k][0]), round(v["power_w"])) for k, v in cabs.items()
               if not close(recs[k][0], v["power_w"], 0.03)]
        c.check(not bad, f"history: every hl1 cabinet's minute average ~ its true power {bad[:3]}")
        over = recs["2FA-A02-06"]
        c.check(over[1] >= over[0] > 4400, f"history: the overloaded cabinet averages {over[0]:.0f} W, peak {over[1]:.0f} W")

        # ---- Reports over HTTP ------------------------------------------------------------
        landing = h.http_get(base + "/")
        listing = h.http_get(base + "/reports")
        c.check('href="/metrics"' in landing and 'href="/reports/hl1"' in landing
                and 'href="/reports"' in landing
                and 'href="/reports/bj-lease?format=csv"' in listing,
                "the NOC view links /metrics, /reports and each site's report; /reports lists "
                "every site's reports in every format")
        metrics = h.parse_metrics(h.http_get(base + "/metrics"))
        written = h.find(metrics, "facility_history_records_written_total")
        c.check(written and written >= 3 and h.find(metrics, "facility_history_up") == 1 and
                h.find(metrics, "facility_history_enabled") == 1 and
                h.find(metrics, "facility_history_records_dropped_total") == 0,
                f"/metrics still served, with the history's health ({written} site-minutes written)")
        for url, code in ((base + "/reports/nope", 404), (base + "/reports/hl1?format=pdf", 400),
                          (base + "/reports/hl1?from=yesterday", 400)):
            try:
                h.http_get(url)
                got = 200
            except urllib.error.HTTPError as e:
                got = e.code
            c.check(got == code, f"{url[len(base):]} -> {got} (want {code})")

        frm = iso(started - 60)
        rep = json.loads(h.http_get(f"{base}/reports/{SITE}?format=json&from={frm}", timeout=60))
        c.check(rep["period"]["resolution_s"] == 60, "a report of minutes uses the minute rows")
        rated = h.find(metrics, "facility_site_capacity_watts", site=SITE, quantity="rated")
        c.check(close(rep["capacity"]["rated_w"], rated, 1e-9), f"report rated {rep['capacity']['rated_w']} W = /metrics {rated}")
        m_powered = h.find(metrics, "facility_site_cabinets", site=SITE, state="powered")
        c.check(rep["capacity"]["cabinets"]["powered"] == m_powered,
                f"report: {rep['capacity']['cabinets']['powered']} powered = /metrics {m_powered}")
        m_planned = h.find(metrics, "facility_site_cabinets", site=SITE, state="planned")
        m_total = h.find(metrics, "facility_site_cabinets", site=SITE, state="total")
        c.check(rep["capacity"]["cabinets"]["planned"] == m_planned
                and rep["capacity"]["cabinets"]["delivered"] == m_total,
                f"report: {rep['capacity']['cabinets']['planned']} planned = /metrics {m_planned}, "
                f"{rep['capacity']['cabinets']['delivered']} delivered = /metrics total {m_total}")
        p95 = rep["capacity"]["p95_w"]
        c.check(close(p95, truth_sum, 0.05), f"report: p95 of the cabinet sum {p95} ~ truth {truth_sum:.0f} W")
        cov = rep["coverage"]
        c.check(0 < cov["recorded"] < 1 and cov["gap_count"] >= 1,
                f"report: coverage says how much was recorded ({cov['recorded']:.2f}, {cov['gap_count']} gaps)")
        c.check(abs(rep["energy"]["pue"] - truth["sites"][SITE]["pue"]) < 0.02 and rep["energy"]["pue_category"] == 1,
                f"report: energy-weighted PUE {rep['energy']['pue']:.3f} category 1 ~ truth")
        listed = {x["id"]: x for x in rep["cabinets"]["list"]}
        c.check(listed["2FA-A02-06"]["peak_utilization"] > 1.0 and
                rep["cabinets"]["top_by_peak_utilization"][0] == "2FA-A02-06",
                "report: the cabinet over its rating tops the peak-utilisation list")
        c.check("2FA-A02-06" in rep["cabinets"]["negative_failover_headroom"],
                "report: it has negative failover headroom")
        st = rep["stranded"]
        want_month = st["power_w"] / 4400 * 53000 / 12
        c.check(st["currency"] == "CNY" and close(st["cost_per_month"], want_month, 1e-9),
                f"report: stranded {st['power_w']:.0f} W valued at 5.30万 CNY per cabinet-year "
                f"({st['cost_per_month']:.0f} per month)")
        lease = json.loads(h.http_get(f"{base}/reports/bj-lease?format=json&from={frm}", timeout=60))
        c.check("4497" in lease["stranded"]["price_basis"],
                f"bj-lease valued at its buy price: {lease['stranded']['price_basis']}")

        # CSV from the command line: same figures.
        r = subprocess.run([os.path.join(build, "facilityd"), "report", "--config", cfg_path,
                            "--site", SITE, "--from", frm, "--format", "csv"],
                           capture_output=True, text=True, timeout=120)
        c.check(r.returncode == 0 and not r.stderr, f"facilityd report exits 0 quietly ({r.stderr.strip()[:200]})")
        table = list(csv.DictReader(io.StringIO(r.stdout)))
        c.check(table and set(table[0]) == {"section", "subject", "quantity", "value", "unit"},
                "CSV parses with its header")
        rated_csv = [x for x in table if x["section"] == "capacity" and x["quantity"] == "rated"]
        c.check(rated_csv and close(float(rated_csv[0]["value"]) * 1000, rated, 1e-6) and rated_csv[0]["unit"] == "kW",
                "CSV rated kW = /metrics")
        r = subprocess.run([os.path.join(build, "facilityd"), "report", "--config", cfg_path,
                            "--site", SITE, "--from", frm], capture_output=True, text=True, timeout=120)
        c.check(all(s in r.stdout for s in ("Data coverage", "Capacity", "Stranded power", "Energy and PUE")),
                "text report has every section")
        # --from -1h over a history a few minutes old (issue 12): minutes, not hours that would
        # hide gaps and end in the future; the part before the history is not a gap, and the
        # daemon ran for most of the time since the history starts (all but the minute in
        # progress, which is not written yet).
        r = subprocess.run([os.path.join(build, "facilityd"), "report", "--config", cfg_path,
                            "--site", SITE, "--from", "-1h", "--format", "json"],
                           capture_output=True, text=True, timeout=120)
        hour = json.loads(r.stdout) if r.returncode == 0 else {}
        per, cov = hour.get("period", {}), hour.get("coverage", {})
        c.check(per.get("resolution_s") == 60 and per.get("to", 1e18) <= per.get("generated_at", 0),
                f"--from -1h: minutes, ending at the latest now ({per})")
        c.check(cov.get("before_history_s", 0) > 0 and cov.get("recorded", 1) < 0.5
                and cov.get("recorded_since_history_start", 0) > max(0.4, 2 * cov.get("recorded", 1))
                and all(g["start"] >= per.get("history_start", 0) for g in cov.get("longest_gaps", [])),
                f"--from -1h: recorded {cov.get('recorded')} of the hour, "
                f"{cov.get('recorded_since_history_start')} since the history starts, no gap before it")
        r = subprocess.run([os.path.join(build, "facilityd"), "report", "--config", cfg_path,
                            "--site", "nope"], capture_output=True, text=True, timeout=60)
        c.check(r.returncode == 1 and "unknown site" in r.stderr, f"unknown site: exit 1, {r.stderr.strip()}")

        # ---- HTML in headless Chromium -------------------------------------------------------
        html = h.http_get(f"{base}/reports/{SITE}?format=html&from={frm}", timeout=60)
        html_path = os.path.join(artefacts, "report-hl1.html")
        with open(html_path, "w") as f:
            f.write(html)
        c.check("<script" not in html and "http://" not in html.replace("http://www.w3.org/2000/svg", ""),
                "HTML is self-contained: no scripts, no external resources")
        dom, png = chromium(html_path, artefacts)
        c.check(dom is not None, "chromium is installed (scripts/install-deps)")
        if dom:
            heads = re.findall(r"<h2>([^<]+)</h2>", dom)
            want = ["Data coverage", "Capacity", "Cabinets", "Stranded power and idle cabinets",
                    "Occupancy against the build-out plan", "Energy and PUE"]
            c.check(heads == want, f"rendered DOM has the sections {heads}")
            for chart, elem in (("chart-power", "<polyline"), ("chart-utilisation", "<rect"),
                                ("chart-plan", "<polyline")):
                m = re.search(rf'<svg[^>]*id="{chart}".*?</svg>', dom, re.S)
                c.check(m and elem in m.group(0), f"chart {chart} rendered with {elem[1:]} elements")
            c.check(png and os.path.exists(png) and os.path.getsize(png) > 20000,
                    f"screenshot saved: {png} ({os.path.getsize(png) if png and os.path.exists(png) else 0} bytes)")

        # ---- Crash: SIGKILL, then integrity, restart, report ------------------------------
        # Kill just after a minute boundary, around when the writer takes that minute. A commit
        # takes well under a millisecond, so this rarely lands inside one: what it shows is that
        # the daemon's own files survive a SIGKILL and a restart. That an interrupted transaction
        # leaves a consistent database is proven in the unit test
        # HistoryDbTest.KilledMidWriteLeavesAConsistentDatabase.
        while time.time() % 60 > 0.3:
            time.sleep(0.05)
        time.sleep(0.5)
        procs.stop("facilityd", sig=signal.SIGKILL)
        ok = db_query(db, "PRAGMA integrity_check")
        c.check(ok == [("ok",)], f"after SIGKILL: PRAGMA integrity_check = {ok}")
        before = db_query(db, "SELECT COUNT(*) FROM site_minute")[0][0]
        procs.start("facilityd2", daemon)
        h.wait_for("restarted daemon serving", lambda: all_up(), timeout=120, interval=1)
        procs.stop("facilityd2")  # SIGTERM: writes the minute in progress
        after = db_query(db, "SELECT COUNT(*) FROM site_minute")[0][0]
        c.check(after > before, f"restarted on the same database and wrote to it ({before} -> {after} site-minutes)")
        r = subprocess.run([os.path.join(build, "facilityd"), "report", "--config", cfg_path,
                            "--site", SITE, "--from", frm, "--format", "json"],
                           capture_output=True, text=True, timeout=120)
        ok = r.returncode == 0 and json.loads(r.stdout)["period"]["rows"] > 0
        c.check(ok, f"the report works after the crash ({r.stderr.strip()[:200]})")
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
