#!/usr/bin/env python3
"""facilityd under a real Prometheus (Debian's prometheus 2.42), with the shipped rules:

  facility-sim ── demo site over Modbus TCP ──┬── facilityd "single" (unsharded, basic auth)
                                              │      └── nginx (TLS, test CA) ── https ──┐
                                              ├── facilityd shard 0/2 ─── http ──────────┤
                                              └── facilityd shard 1/2 ─── http ──────────┴── Prometheus

Checked:
  * TLS through the shipped reverse proxy (config/nginx/facilityd-metrics.conf): Prometheus scrapes https with the test CA and basic
    auth (up == 1); a client without credentials gets 401, one that does not trust the CA fails.
  * Basic auth on the daemon itself on /metrics, / and /reports.
  * The two shards export every cabinet and device exactly once and no partial site aggregate.
  * The recorded site totals of the two shards equal those of the unsharded daemon (within the
    drift between two polls), and the unsharded daemon's recorded totals equal its own model.
  * The alert rules run on the data (the demo's overloaded cabinet is pending or firing in both).
  * Every PromQL expression of the Grafana dashboard runs against this Prometheus without error,
    and the overview panels return data.
"""
import base64
import json
import os
import re
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import yaml

sys.path.insert(0, os.path.dirname(__file__))
import dashboard  # noqa: E402
import harness as h  # noqa: E402

TOLERANCE = 0.03  # two daemons poll the same simulator a few seconds apart
USER, PASSWORD = "prometheus", "scrape-secret-42"
OVERLOADED = ("hl1", "2FA-A02-06")  # the demo cabinet at 104 % of its rating


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_certs(d):
    """A test CA and a server certificate for 127.0.0.1 / localhost signed by it."""
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=facilityd test CA",
            cwd=d)
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost", cwd=d)
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "server.ext", cwd=d)


def nginx_conf(src, wd, port, upstream_port):
    """The shipped reverse proxy (config/nginx/facilityd-metrics.conf) with the test's port,
    certificate and upstream, inside a minimal nginx main configuration for an unprivileged
    instance in the workspace."""
    with open(os.path.join(src, "config/nginx/facilityd-metrics.conf")) as f:
        server = f.read()
    for pattern, repl in ((r"listen \d+ ssl;", f"listen 127.0.0.1:{port} ssl;"),
                          (r"ssl_certificate +\S+;", f"ssl_certificate {wd}/server.pem;"),
                          (r"ssl_certificate_key +\S+;", f"ssl_certificate_key {wd}/server.key;"),
                          (r"proxy_pass http://127\.0\.0\.1:\d+;",
                           f"proxy_pass http://127.0.0.1:{upstream_port};")):
        server, n = re.subn(pattern, repl, server)
        if n != 1:
            raise ValueError(f"config/nginx/facilityd-metrics.conf: {pattern!r} found {n} times")
    tmp = os.path.join(wd, "nginx-tmp")
    os.makedirs(tmp, exist_ok=True)
    conf = os.path.join(wd, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""daemon off;
pid {wd}/nginx.pid;
error_log stderr notice;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/body;
  proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi;
  scgi_temp_path {tmp}/scgi;
{server}
}}
""")
    return conf


def get(url, auth=None, context=None, timeout=10):
    """(status, body) of a GET; HTTP errors are returned, not raised."""
    req = urllib.request.Request(url)
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(
            f"{auth[0]}:{auth[1]}".encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


class Prom:
    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}/api/v1"

    def query(self, expr, at=None):
        """Result of an instant query, now or at a Unix time."""
        params = {"query": expr}
        if at is not None:
            params["time"] = repr(at)
        status, body = get(f"{self.base}/query?" + urllib.parse.urlencode(params), timeout=30)
        doc = json.loads(body)
        if doc.get("status") != "success":
            raise RuntimeError(f"{expr}: {doc.get('errorType')}: {doc.get('error')}")
        return doc["data"]["result"]

    def values(self, expr, key, at=None):
        """{key labels tuple: float} of an instant query."""
        return {tuple(r["metric"].get(k, "") for k in key): float(r["value"][1])
                for r in self.query(expr, at)}


def daemon_config(base_text, wd, name, shard=None, auth=None):
    cfg = yaml.safe_load(base_text)
    d = cfg.setdefault("daemon", {})
    # A 30 s energy PUE window besides the demo's, so that the recorded energy PUE (the daemon's
    # own windows) appears within the test.
    cfg.setdefault("facility", {})["pue_windows"] = ["30s", "15m", "1h", "24h", "30d"]
    if shard:
        d["shard"] = shard
        cfg["mqtt"] = {"enabled": False}
        cfg["history"] = {"enabled": False}
    if auth:
        d["auth"] = auth
    path = os.path.join(wd, f"{name}.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(cfg, f, sort_keys=False)
    return path


def close(a, b, rel=TOLERANCE, floor=1.0):
    return a is not None and b is not None and abs(a - b) <= rel * max(abs(a), abs(b), floor)


def main():
    args = h.parse_args()
    build, src = args.build_dir, args.source_dir
    facilityd = os.path.join(build, "facilityd")
    c = h.Checks()
    for tool in ("prometheus", "nginx", "openssl"):
        if not (os.path.exists(f"/usr/bin/{tool}") or os.path.exists(f"/usr/sbin/{tool}")):
            c.check(False, f"{tool} is installed (scripts/install-deps)")
            return c.finish()

    with h.workspace("prometheus") as (wd, procs):
        make_certs(wd)
        cfg, sim_ports = h.remap_config(os.path.join(src, "config/demo/facilityd.yaml"), src, wd)
        with open(cfg) as f:
            # Faster polls than the demo's 15 s / 10 s, so that everything is up within seconds.
            base = f.read().replace("interval: 15s", "interval: 5s").replace("interval: 10s",
                                                                            "interval: 5s")
        with open(cfg, "w") as f:
            f.write(base)
        with open(os.path.join(wd, "user"), "w") as f:
            f.write(USER + "\n")
        with open(os.path.join(wd, "password"), "w") as f:
            f.write(PASSWORD + "\n")
        auth = {"username_file": os.path.join(wd, "user"),
                "password_file": os.path.join(wd, "password")}
        configs = {"single": daemon_config(base, wd, "single", auth=auth),
                   "shard0": daemon_config(base, wd, "shard0", shard="0/2"),
                   "shard1": daemon_config(base, wd, "shard1", shard="1/2")}

        procs.start("sim", [os.path.join(build, "facility-sim"), "--config", cfg])
        for p in sim_ports:
            h.wait_port(p)
        ports = {}
        for name, path in configs.items():
            ports[name] = h.free_port()
            procs.start(name, [facilityd, "run", "--config", path, "--no-mqtt",
                               "--listen", f"127.0.0.1:{ports[name]}"])
        tls_port = h.free_port()
        procs.start("nginx", ["nginx", "-e", "stderr", "-p", wd,
                              "-c", nginx_conf(src, wd, tls_port, ports["single"])])
        prom_port = h.free_port()
        prom_cfg = os.path.join(wd, "prometheus.yml")
        with open(prom_cfg, "w") as f:
            yaml.safe_dump({
                # Short intervals so that the test settles in seconds; a timeout as long as the
                # interval so that a loaded machine does not turn a slow scrape into up == 0.
                "global": {"scrape_interval": "3s", "evaluation_interval": "2s",
                           "scrape_timeout": "3s"},
                "rule_files": [os.path.abspath(os.path.join(src, "config/prometheus", fn))
                               for fn in ("facilityd-recording.rules.yml",
                                          "facilityd-alerts.rules.yml")],
                "scrape_configs": [
                    {"job_name": "single", "scheme": "https",
                     "tls_config": {"ca_file": os.path.join(wd, "ca.pem")},
                     "basic_auth": {"username": USER,
                                    "password_file": os.path.join(wd, "password")},
                     "static_configs": [{"targets": [f"127.0.0.1:{tls_port}"]}]},
                    {"job_name": "sharded",
                     "static_configs": [{"targets": [f"127.0.0.1:{ports['shard0']}",
                                                     f"127.0.0.1:{ports['shard1']}"]}]},
                ]}, f)
        procs.start("prometheus", ["prometheus", f"--config.file={prom_cfg}",
                                   f"--storage.tsdb.path={os.path.join(wd, 'tsdb')}",
                                   f"--web.listen-address=127.0.0.1:{prom_port}"])
        for p in (*ports.values(), tls_port, prom_port):
            h.wait_port(p, timeout=60)
        prom = Prom(prom_port)

        # ---- Authentication on the daemon, and TLS through nginx --------------------------
        direct = f"http://127.0.0.1:{ports['single']}"
        # The listener answers 503 until the daemon has put its authentication in place.
        h.wait_for("the daemon's HTTP gate", lambda: get(direct + "/metrics")[0] != 503,
                   timeout=60)
        for path in ("/metrics", "/", "/sites/hl1", "/api/v1/sites", "/reports", "/reports/hl1"):
            st, _ = get(direct + path)
            st_ok, _ = get(direct + path, auth=(USER, PASSWORD))
            st_bad, _ = get(direct + path, auth=(USER, "wrong"))
            # A report may answer 503 (Retry-After) while another is being computed.
            ok_codes = (200,) if path == "/metrics" else (200, 503)
            c.check(st == 401 and st_bad == 401 and st_ok in ok_codes,
                    f"{path}: 401 without ({st}) or with wrong credentials ({st_bad}), "
                    f"{st_ok} with them")
        ca = ssl.create_default_context(cafile=os.path.join(wd, "ca.pem"))
        url = f"https://127.0.0.1:{tls_port}/metrics"
        st, body = get(url, auth=(USER, PASSWORD), context=ca)
        c.check(st == 200 and "facility_build_info" in body,
                f"https through nginx with the test CA and credentials: {st}")
        st, _ = get(url, context=ca)
        c.check(st == 401, f"https through nginx without credentials: {st}")
        try:
            get(url, auth=(USER, PASSWORD), context=ssl.create_default_context())
            c.check(False, "a client that does not trust the test CA is refused")
        except urllib.error.URLError as e:
            c.check("CERTIFICATE_VERIFY_FAILED" in str(e),
                    f"a client that does not trust the test CA is refused ({e.reason})")
        st, _ = get(f"http://127.0.0.1:{tls_port}/metrics")
        c.check(st == 400, f"plain http on the TLS port is refused ({st})")
        with open(os.path.join(src, "config/nginx/facilityd-metrics.conf")) as f:
            server = f.read()
        server = server[server.index("server {"):]
        with open(os.path.join(src, "docs/prometheus.md")) as f:
            c.check(server in f.read(), "docs/prometheus.md shows the tested nginx server block")

        # ---- Prometheus scrapes everything; every device is up --------------------------
        def targets_up():
            ups = prom.values("up", ("job", "instance"))
            return ups if len(ups) == 3 and all(v == 1 for v in ups.values()) else None

        ups = h.wait_for("Prometheus scraping all three targets", targets_up, timeout=60)
        c.check(len(ups) == 3, "Prometheus scrapes the https target with basic auth and both "
                               f"shards {sorted(ups)}")
        n_devices = sum(1 for line in base.splitlines() if "kind:" in line and "profile:" in line)

        def devices_up():
            n = prom.values('count by (job) (facility_device_up == 1)', ("job",))
            return n if n.get(("single",)) == n.get(("sharded",)) == n_devices else None

        h.wait_for(f"all {n_devices} devices up in both deployments", devices_up, timeout=90)
        c.check(True, f"all {n_devices} devices up, in the single daemon and across the two shards")

        # ---- The shards split the site without overlap or partial aggregates --------------
        per_cab = prom.values('count by (site, cabinet) (facility_cabinet_info{job="sharded"})',
                              ("site", "cabinet"))
        single_cabs = prom.values('count by (site, cabinet) (facility_cabinet_info{job="single"})',
                                  ("site", "cabinet"))
        c.check(set(per_cab) == set(single_cabs) and all(v == 1 for v in per_cab.values()),
                f"every one of {len(single_cabs)} cabinets is exported by exactly one shard")
        per_shard = prom.values('count by (instance) (facility_cabinet_info{job="sharded"})',
                                ("instance",))
        c.check(len(per_shard) == 2 and min(per_shard.values()) > 20,
                f"both shards carry a fair part of the cabinets {per_shard}")
        dup = prom.query('count by (device) (facility_device_up{job="sharded"}) > 1')
        c.check(not dup, f"no device is polled by both shards {dup[:3]}")
        partial = prom.query('{job="sharded",__name__=~"facility_site_(coverage_ratio|rack_units)"'
                             '} or facility_site_cabinets{job="sharded",state=~"powered|measured"}'
                             ' or facility_site_it_power_watts{job="sharded",source="pdu_sum"}')
        c.check(not partial, f"no shard exports a partial site aggregate "
                             f"{[r['metric'] for r in partial[:3]]}")
        homes = prom.values('count by (site) (count by (site, instance) '
                            '(facility_site_info{job="sharded"}))', ("site",))
        c.check(len(homes) == 3 and all(v == 1 for v in homes.values()),
                f"each site's aggregates come from one shard (its home) {homes}")

        # ---- Recorded site totals: sharded == single == the model --------------------------
        def recorded_ready():
            n = prom.values('count by (job) (site:facility_it_power_watts:sum)', ("job",))
            e = prom.values('count by (job) (site:facility_pue_energy:ratio{window="30s"})',
                            ("job",))
            return (n.get(("single",)) == 3 and n.get(("sharded",)) == 3 and
                    e.get(("single",)) == 2 and e.get(("sharded",)) == 2)

        h.wait_for("recorded IT power of 3 sites and 30 s energy PUE of 2 in both jobs",
                   recorded_ready, timeout=90, interval=2)
        time.sleep(4)  # a few more rule evaluations on settled data
        exact = ["site:facility_cabinets:count", "site:facility_cabinet_rated_power_watts:sum",
                 "site:facility_cabinets_powered:count", "site:facility_cabinets_sold:count",
                 "site:facility_occupancy_powered:ratio", "site:facility_occupancy_sold:ratio",
                 "room:facility_cabinets:count", "fleet:facility_cabinets:count",
                 "site:facility_capacity_reserve_watts"]
        drift = ["site:facility_it_power_watts:sum", "site:facility_cabinet_power_watts:sum",
                 "site:facility_facility_power_watts:sum", "site:facility_pue:ratio",
                 "site:facility_utilization:ratio", "room:facility_cabinet_power_watts:sum",
                 "fleet:facility_it_power_watts:sum"]
        for name in exact + drift:
            key = ("site", "room") if name.startswith("room:") else ("site",)
            a = prom.values(f'{name}{{job="single"}}', key)
            b = prom.values(f'{name}{{job="sharded"}}', key)
            ok = bool(a) and set(a) == set(b) and all(
                (a[k] == b[k]) if name in exact else close(a[k], b[k]) for k in a)
            shown = {"/".join(k): (round(a[k], 4), round(b.get(k, float("nan")), 4)) for k in a}
            c.check(ok, f"{name}: single == sharded "
                        f"{'exactly' if name in exact else 'within drift'} {shown}")
        # Energy PUE: the rules record the daemons' own windows (here the 30 s one; the demo's
        # 0.1 kWh counters make a 30 s window too coarse to compare two daemons' values), and
        # the energy from the joules counters of both deployments agrees over a window that
        # every counter covers, with the rules' choice of IT role (UPS output on the demo).
        e1 = prom.values('site:facility_pue_energy:ratio{job="single",window="30s"}', ("site",))
        e2 = prom.values('site:facility_pue_energy:ratio{job="sharded",window="30s"}', ("site",))
        c.check(set(e1) == set(e2) == {("hl1",), ("wc1",)},
                f"the 30 s energy PUE is recorded for the metered sites in both {sorted(e1)}")

        def energy_pue(job):
            inc = ('sum by (site) (increase(facility_site_energy_joules_total{job="%s",role="%s"}'
                   '[20s]))')
            fac = prom.values(inc % (job, "facility_total"), ("site",))
            it = prom.values(inc % (job, "it_at_ups_output"), ("site",))
            return {k: fac[k] / it[k] for k in fac if it.get(k)}

        def energy_agrees():
            a, b = energy_pue("single"), energy_pue("sharded")
            ok = set(a) == set(b) == {("hl1",), ("wc1",)} and all(
                close(a[k], b[k], 0.1) and 1 < a[k] < 3 for k in a)
            return (a, b) if ok else None

        got = h.wait_for("the energy PUE of both deployments over 20 s", energy_agrees,
                         timeout=60, interval=2)
        c.check(bool(got), f"energy PUE from the joules counters: single == sharded within 10 % "
                           f"{got}")
        # The recorded totals of the unsharded daemon against its own model, both evaluated at
        # the instant of the rule evaluation (a later scrape would otherwise make them differ).
        model = {  # recorded series: (the daemon's own site metric, its other labels)
            "site:facility_it_power_watts:sum": ("facility_site_it_power_watts", ""),
            "site:facility_cabinets_powered:count": ("facility_site_cabinets", 'state="powered"'),
            "site:facility_capacity_headroom_watts": ("facility_site_capacity_watts",
                                                      'quantity="headroom"'),
            "site:facility_pue:ratio": ("facility_site_pue_ratio",
                                        'window="instant",category="1"'),
        }
        for name, (metric, labels) in model.items():
            at = max(float(r["value"][1]) for r in prom.query(f'timestamp({name}{{job="single"}})'))
            a = prom.values(f'{name}{{job="single"}}', ("site",), at)
            b = prom.values(f'max by (site) ({metric}{{job="single",{labels}}})', ("site",), at)
            ok = bool(b) and set(a) == set(b) and all(close(a[k], b[k], 1e-9) for k in a)
            c.check(ok, f"{name} equals the model's own value "
                        f"{ {k[0]: (a.get(k), b.get(k)) for k in b} }")

        # ---- Alerts run on real data ----------------------------------------------------------
        alerts = prom.values('ALERTS{alertname="CabinetOverload"}', ("job", "site", "cabinet"))
        c.check(("single",) + OVERLOADED in alerts and ("sharded",) + OVERLOADED in alerts,
                f"CabinetOverload is pending or firing for {OVERLOADED} in both jobs "
                f"{sorted(alerts)}")
        shards = prom.values('job:facility_shards:complete', ("job",))
        c.check(shards == {("single",): 1.0, ("sharded",): 2.0},
                f"both deployments are complete: 1 shard and 2 shards {shards}")
        # Device-down is checked above positively (every device up); a device that misses one
        # poll on a loaded machine makes DeviceDown pending, which is not an error here.
        quiet = prom.query('ALERTS{alertname=~"FacilitydShardsIncomplete|FacilitydSnapshotStale|'
                           'FacilitydConfigReloadFailed"}')
        c.check(not quiet, f"no facilityd self-alert pending or firing {quiet[:2]}")

        # ---- The Grafana dashboard against this Prometheus -----------------------------------
        dash = dashboard.load(src)
        errors, empty = [], []
        must_have_data = ("IT power", "Facility power", "PUE (instant)", "Occupancy (powered)",
                          "Headroom to reserve", "Top cabinets by utilisation",
                          "Failover risk: lowest headroom", "Feed balance (A/B)",
                          "Phase balance (three-phase feeds)", "Inlet temperature by room",
                          "Hottest inlets", "Devices down", "Cooling headroom",
                          "Cabinet heat map: utilisation over time", "IT and facility power",
                          "Cabinets against their own warning threshold",
                          "Feed balance per room (A/B)", "Cabinet utilisation and its thresholds",
                          "Cabinet feeds", "Cabinet phases", "Cabinet failover headroom",
                          "Cabinet inlet and its site's thresholds")
        for where, expr in dashboard.raw_expressions(dash):
            q = dashboard.substitute(expr, {"job": "single|sharded", "site": ".+", "room": ".+",
                                            "cabinet": ".+"})
            try:
                res = prom.query(q)
            except RuntimeError as e:
                errors.append(f"{where}: {e}")
                continue
            if any(f"'{t}'" in where for t in must_have_data) and not res:
                empty.append(where)
        c.check(not errors, f"every dashboard expression runs in Prometheus 2.42 {errors[:3]}")
        c.check(not empty,
                f"the overview, cabinet, environment and health panels have data {empty}")

        for name in ("single", "shard0", "shard1"):
            rc = procs.stop(name)
            c.check(rc == 0, f"{name} stops cleanly (rc {rc})")
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
