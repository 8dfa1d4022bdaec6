"""Shared harness for facilityd integration tests.

Starts real components (mosquitto, facility-sim, facilityd) on free loopback ports, in a
temporary directory, and stops them whatever happens. Standard library only.
"""
import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request


def parse_args():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--source-dir", required=True)
    return ap.parse_args()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports(n):
    """n distinct free ports: every socket stays bound until all are picked, so the kernel cannot
    hand out the same port twice (which free_port() called n times can)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            socks.append(s)
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def wait_port(port, timeout=15.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        with contextlib.suppress(OSError):
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def wait_for(what, fn, timeout, interval=0.5):
    """Polls fn() until it returns a truthy value; raises with `what` on timeout."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = fn()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - keep polling, report the last error
            last = e
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


METRIC_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)$')
LABEL_RE = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """Returns a list of (name, {labels}, value)."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = METRIC_RE.match(line)
        if not m:
            raise ValueError(f"unparseable exposition line: {line!r}")
        labels = dict(LABEL_RE.findall(m.group(3) or ""))
        out.append((m.group(1), labels, float(m.group(4))))
    return out


def find(samples, name, **labels):
    for n, l, v in samples:
        if n == name and all(l.get(k) == val for k, val in labels.items()):
            return v
    return None


class Processes:
    """Children started by a test; all stopped (TERM, then KILL) on exit."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.procs = {}

    def start(self, name, argv, **kw):
        argv = self._private_state(list(argv))
        log = open(os.path.join(self.workdir, f"{name}.log"), "w")
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, **kw)
        self.procs[name] = (p, log)
        return p

    def _private_state(self, argv):
        """A daemon a test starts keeps its state (MQTT outbox journal, history database) in the
        test's workspace, never in /var/lib/facilityd, unless the test chose a state_dir."""
        if (len(argv) > 1 and os.path.basename(argv[0]) == "facilityd" and argv[1] == "run"
                and "--state-dir" not in argv and "--config" in argv):
            with open(argv[argv.index("--config") + 1]) as f:
                if not re.search(r"(?m)^\s+state_dir:", f.read()):
                    argv += ["--state-dir", os.path.join(self.workdir, "state")]
        return argv

    def log(self, name):
        with open(os.path.join(self.workdir, f"{name}.log")) as f:
            return f.read()

    def stop(self, name, sig=signal.SIGTERM, timeout=15):
        p, log = self.procs.pop(name)
        if p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        log.close()
        return p.returncode

    def stop_all(self):
        for name in list(reversed(list(self.procs))):
            self.stop(name)


def start_mosquitto(procs, workdir):
    port = free_port()
    conf = os.path.join(workdir, "mosquitto.conf")
    with open(conf, "w") as f:
        f.write(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    procs.start("mosquitto", ["/usr/sbin/mosquitto", "-c", conf])
    wait_port(port)
    return port


def remap_config(src_config, source_dir, workdir):
    """Copies a config with every tcp://127.0.0.1:PORT endpoint moved to a free port and
    profiles_dir made absolute, so tests never collide with a running demo or each other."""
    with open(src_config) as f:
        text = f.read()
    # Device endpoints only (the MQTT broker URI looks alike and is passed on the command line).
    ep = re.compile(r'(endpoint:\s*"?tcp://127\.0\.0\.1:)(\d+)')
    ports = sorted(set(m.group(2) for m in ep.finditer(text)))
    mapping = {p: str(n) for p, n in zip(ports, free_ports(len(ports)))}
    text = ep.sub(lambda m: m.group(1) + mapping[m.group(2)], text)
    text = re.sub(r"(?m)^profiles_dir:.*$",
                  "profiles_dir: " + os.path.join(os.path.abspath(source_dir), "config", "profiles"), text)
    out = os.path.join(workdir, "facilityd.yaml")
    with open(out, "w") as f:
        f.write(text)
    return out, [int(p) for p in mapping.values()]


def one_row_site(src, cabinets, devices, daemon="", extra=""):
    """A daemon and simulator config: site s1, room r1, one row w1 of `cabinets` (YAML flow
    mappings, one per line) and `devices` (likewise); 1 s polls, 300 ms timeouts, MQTT and
    history off, the repository's profiles. `daemon` adds keys to the daemon section
    ("powered_threshold_w: 150"), `extra` top-level sections (endpoints: ...)."""
    cabs = "\n".join(f"              - {c}" for c in cabinets)
    devs = "\n".join(f"      - {d}" for d in devices)
    more = f", {daemon}" if daemon else ""
    return f"""daemon: {{listen: "127.0.0.1:10044", stale_after_intervals: 3{more}}}
mqtt: {{enabled: false}}
history: {{enabled: false}}
defaults: {{interval: 1s, timeout: 300ms, retries: 1}}
profiles_dir: {os.path.join(os.path.abspath(src), "config", "profiles")}
{extra}sites:
  - id: s1
    rooms:
      - id: r1
        rows:
          - id: w1
            cabinets:
{cabs}
    devices:
{devs}
"""


def wh_meter_profiles(src, workdir):
    """A profiles folder with the shipped single-phase PDU and the shipped energy meter with a
    1 Wh energy counter ("test-meter-wh"; the shipped 0.1 kWh would be 8-16 % of a 1-minute
    window's energy on a small site); returns its path."""
    import yaml  # python3-yaml
    d = os.path.join(workdir, "profiles")
    os.makedirs(d)
    with open(os.path.join(src, "config/profiles/generic-pdu-1ph.yaml")) as f:
        pdu = f.read()
    with open(os.path.join(d, "generic-pdu-1ph.yaml"), "w") as f:
        f.write(pdu)
    with open(os.path.join(src, "config/profiles/generic-energy-meter.yaml")) as f:
        meter = yaml.safe_load(f)
    meter["name"] = "test-meter-wh"
    for p in meter["points"]:
        if p["name"] == "energy":
            p["scale"], p["unit"] = 1, "Wh"
    with open(os.path.join(d, "test-meter-wh.yaml"), "w") as f:
        yaml.safe_dump(meter, f, sort_keys=False)
    return d


def pue_meter_site(profiles_dir, port, daemon="", history="enabled: false", facility="",
                   windows="1m, 2m"):
    """A daemon and simulator config for energy PUE: site g1 at a simulated PUE of 1.35, six
    10 kW cabinets at 80 % on one PDU each, a facility and an IT (UPS output) meter with the
    1 Wh counters of wh_meter_profiles; 2 s polls, PUE windows `windows` (default 1m and 2m),
    MQTT off. `daemon`, `history` and `facility` add keys to those sections."""
    cabs = "\n".join(f"              - {{id: c{i}, status: sold, feeds: [A], rated_kw: 10, "
                     f"simulate: {{load: 0.8}}}}" for i in range(6))
    pdus = "\n".join(f"      - {{id: pdu-{i}, kind: pdu, profile: generic-pdu-1ph, endpoint: "
                     f"\"tcp://127.0.0.1:{port}\", unit: {10 + i}, cabinet: c{i}, feed: A}}"
                     for i in range(6))
    more = f", {daemon}" if daemon else ""
    fac = f"\n  {facility}" if facility else ""
    return f"""daemon: {{stale_after_intervals: 3{more}}}
mqtt: {{enabled: false}}
history: {{{history}}}
defaults: {{interval: 2s, timeout: 500ms, retries: 0}}
profiles_dir: {profiles_dir}
facility:
  pue_windows: [{windows}]{fac}
sites:
  - id: g1
    simulate: {{pue: 1.35}}
    rooms:
      - id: r1
        rows:
          - id: w1
            cabinets:
{cabs}
    devices:
      - {{id: meter-fac, kind: meter, profile: test-meter-wh, endpoint: "tcp://127.0.0.1:{port}", unit: 1, role: facility_total}}
      - {{id: meter-it, kind: meter, profile: test-meter-wh, endpoint: "tcp://127.0.0.1:{port}", unit: 2, role: it_at_ups_output}}
{pdus}
"""


def start_prometheus(procs, workdir, source_dir, scrape_configs, interval="2s"):
    """A Prometheus on a free port with the shipped recording and alert rules, scraping and
    evaluating every `interval`; returns its port once it listens."""
    import yaml  # python3-yaml: only the tests that run Prometheus need it
    port = free_port()
    cfg = os.path.join(workdir, "prometheus.yml")
    with open(cfg, "w") as f:
        yaml.safe_dump({
            "global": {"scrape_interval": interval, "evaluation_interval": interval,
                       "scrape_timeout": interval},
            "rule_files": [os.path.abspath(os.path.join(source_dir, "config/prometheus", fn))
                           for fn in ("facilityd-recording.rules.yml",
                                      "facilityd-alerts.rules.yml")],
            "scrape_configs": scrape_configs}, f)
    procs.start("prometheus", ["prometheus", f"--config.file={cfg}",
                               f"--storage.tsdb.path={os.path.join(workdir, 'tsdb')}",
                               f"--web.listen-address=127.0.0.1:{port}"])
    wait_port(port, timeout=60)
    return port


def prometheus_query(port, expr, at=None):
    """The result of an instant query (now, or at a Unix time) of the Prometheus on `port`."""
    params = {"query": expr}
    if at is not None:
        params["time"] = repr(at)
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=30) as r:
        doc = json.load(r)
    if doc.get("status") != "success":
        raise RuntimeError(f"{expr}: {doc.get('errorType')}: {doc.get('error')}")
    return doc["data"]["result"]


class Subscriber:
    """mosquitto_sub writing every message (topic + payload, retained flag) to a file."""

    def __init__(self, procs, port, topic, name="sub"):
        self.name = name
        self.path = os.path.join(procs.workdir, f"{name}.log")
        # -F: %r retained flag, %t topic, %p payload; one message per line.
        procs.start(name, ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-t", topic,
                           "-q", "1", "-F", "%r %t %p"])

    def messages(self):
        out = []
        with open(self.path) as f:
            for line in f:
                line = line.rstrip("\n")
                parts = line.split(" ", 2)
                if len(parts) == 3:
                    out.append((parts[0] == "1", parts[1], parts[2]))
        return out

    def last(self, topic):
        msgs = [m for m in self.messages() if m[1] == topic]
        return msgs[-1] if msgs else None


@contextlib.contextmanager
def workspace(name):
    d = tempfile.mkdtemp(prefix=f"facilityd-{name}-")
    procs = Processes(d)
    ok = False
    try:
        yield d, procs
        ok = True
    finally:
        procs.stop_all()
        if ok and not os.environ.get("FACILITYD_KEEP_TEST_DIRS"):
            shutil.rmtree(d, ignore_errors=True)
        else:
            print(f"test files kept in {d}", file=sys.stderr)
            for fn in sorted(os.listdir(d)):
                if fn.endswith(".log"):
                    with open(os.path.join(d, fn)) as f:
                        tail = f.read()[-3000:]
                    print(f"----- {fn} (tail) -----\n{tail}", file=sys.stderr)


class Checks:
    """Collects failures so one run reports all of them; prints a closing summary line."""

    def __init__(self):
        self.passed = 0
        self.failed = []

    def check(self, cond, what):
        if cond:
            self.passed += 1
            print(f"  ok   {what}")
        else:
            self.failed.append(what)
            print(f"  FAIL {what}")

    def finish(self):
        print(f"{self.passed} passed, {len(self.failed)} failed")
        return 1 if self.failed else 0
