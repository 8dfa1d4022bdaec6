"""Helpers for the MQTT integration tests (test_mqtt_*.py): a mosquitto we can stop and restart
on the same port (optionally persistent, TLS, with a password file), mosquitto_sub recorders
(optionally with a persistent session), the test driver (tests/mqtt_driver.cpp), written configs,
and the JSON Schemas of docs/schemas. Standard library and Debian's python3-jsonschema only.
"""
import json
import os
import signal
import subprocess
import time

import harness as h

try:
    import jsonschema
except ImportError:  # scripts/install-deps installs python3-jsonschema
    jsonschema = None

KINDS = ("summary", "cabinet", "device", "cooling", "ups", "alert")


class Broker:
    """mosquitto on a free loopback port. persistent=True keeps sessions (and every QoS 1
    message for a persistent subscriber that is away) across a SIGTERM restart."""

    def __init__(self, procs, name="mosquitto", persistent=False, extra=""):
        self.procs, self.name = procs, name
        self.port = h.free_port()
        db = os.path.join(procs.workdir, f"{name}-db")
        os.makedirs(db, exist_ok=True)
        # Started as root, mosquitto drops to the "mosquitto" user, which must reach its database.
        os.chmod(procs.workdir, 0o711)
        os.chmod(db, 0o777)
        self.conf = os.path.join(procs.workdir, f"{name}.conf")
        with open(self.conf, "w") as f:
            f.write(f"listener {self.port} 127.0.0.1\n")
            f.write(extra if extra else "allow_anonymous true\n")
            if persistent:
                f.write(f"persistence true\npersistence_location {db}/\nmax_queued_messages 0\n")
            else:
                f.write("persistence false\n")
            f.write("log_dest stdout\nlog_type error\nlog_type warning\nlog_type notice\n")
        self.runs = 0

    def start(self):
        self.runs += 1
        self.procs.start(f"{self.name}-{self.runs}", ["/usr/sbin/mosquitto", "-c", self.conf])
        h.wait_port(self.port)
        return self

    def stop(self, sig=signal.SIGTERM):
        self.procs.stop(f"{self.name}-{self.runs}", sig=sig)
        # The port must be free again before anything relies on "the broker is down".
        h.wait_for("broker port closed", lambda: not port_open(self.port), timeout=10, interval=0.1)


def port_open(port):
    import socket
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


class Sub:
    """A mosquitto_sub recording '<retained> <topic> <payload>' lines. session=ID makes it a
    persistent session (clean session off, fixed client id)."""

    def __init__(self, procs, port, topic, name, session=None, extra=()):
        self.path = os.path.join(procs.workdir, f"{name}.log")
        argv = ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-t", topic, "-q", "1",
                "-F", "%r %t %p", *extra]
        if session:
            argv += ["-c", "-i", session]
        procs.start(name, argv)

    def messages(self):
        out = []
        with open(self.path) as f:
            for line in f:
                parts = line.rstrip("\n").split(" ", 2)
                if len(parts) == 3 and parts[0] in ("0", "1"):
                    out.append((parts[0] == "1", parts[1], parts[2]))
        return out

    def last(self, topic):
        msgs = [m for m in self.messages() if m[1] == topic]
        return msgs[-1] if msgs else None

    def live(self):
        """Messages forwarded live (not the retained copies of a (re-)subscription)."""
        return [(t, p) for r, t, p in self.messages() if not r]


def register_session(port, session, topic):
    """Creates a persistent QoS 1 session and leaves: the broker keeps every matching message
    for it from now on."""
    subprocess.run(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-t", topic, "-q", "1",
                    "-c", "-i", session, "-E"], check=True, timeout=10)


class Driver:
    """tests/mqtt_driver.cpp: one command per line on stdin, one JSON answer per line."""

    def __init__(self, build, config, workdir, name="driver"):
        self.log_path = os.path.join(workdir, f"{name}.log")
        self.log = open(self.log_path, "w")
        self.p = subprocess.Popen([os.path.join(build, "tests", "facility-mqtt-driver"),
                                   "--config", config],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
                                  text=True, bufsize=1)

    def cmd(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        answer = self.p.stdout.readline()
        if not answer:
            raise RuntimeError(f"driver exited ({line!r}); log:\n{self.stderr()[-3000:]}")
        return json.loads(answer)

    def stderr(self):
        self.log.flush()
        with open(self.log_path) as f:
            return f.read()

    def close(self):
        if self.p.poll() is None:
            try:
                self.cmd("stop")
            except (RuntimeError, BrokenPipeError, ValueError):
                pass
            try:
                self.p.wait(15)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.log.close()


SITE = """
  - id: {site}
    rooms:
      - id: r1
        rows:
          - id: row1
            cabinets:
{cabinets}
    devices:
      - {{id: {site}-crah-1, kind: cooling, room: r1, profile: generic-crah, endpoint: "tcp://127.0.0.1:1502", unit: {u1}}}
      - {{id: {site}-pdu-1a, kind: pdu, profile: generic-pdu-1ph, endpoint: "tcp://127.0.0.1:1502", unit: {u2}, cabinet: c01, feed: A}}
"""


def write_config(workdir, src, mqtt, sites=("s1",), cabinets=4, name="facilityd.yaml",
                 daemon=""):
    """A config for the driver: `mqtt` is the body of the mqtt: section (indented by 2)."""
    src = os.path.abspath(src)
    cab = "\n".join(f"              - {{id: c{i:02d}, status: sold}}" for i in range(1, cabinets + 1))
    text = (f"profiles_dir: {os.path.join(src, 'config', 'profiles')}\n"
            f"daemon:\n  state_dir: {workdir}\n{daemon}"
            f"mqtt:\n{mqtt}sites:"
            + "".join(SITE.format(site=s, cabinets=cab, u1=2 * i + 1, u2=2 * i + 2)
                      for i, s in enumerate(sites)))
    path = os.path.join(workdir, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def schemas(src):
    out = {}
    for kind in KINDS:
        with open(os.path.join(src, "docs", "schemas", f"{kind}.json")) as f:
            schema = json.load(f)
        jsonschema.Draft202012Validator.check_schema(schema)
        out[kind] = jsonschema.Draft202012Validator(schema)
    return out


def kind_of(topic, prefix="facility"):
    """<prefix>/<site>/<kind>[/...] -> kind (summary, cabinet, ..., status)."""
    rest = topic[len(prefix) + 1:].split("/")
    return rest[1] if len(rest) > 1 else None


def schema_errors(validators, topic, payload, prefix="facility"):
    """[] if the payload validates against its topic kind's schema, else the errors."""
    kind = kind_of(topic, prefix)
    if kind not in validators:
        return [f"no schema for topic kind {kind!r} ({topic})"]
    try:
        doc = json.loads(payload) if isinstance(payload, str) else payload
    except ValueError as e:
        return [f"not JSON: {e}"]
    return [f"{topic}: {'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validators[kind].iter_errors(doc)]


def wait_stat(driver, pred, what, timeout=30):
    return h.wait_for(what, lambda: pred(driver.cmd("stats")["stats"]), timeout=timeout,
                      interval=0.2)


def elapsed(t0):
    return f"{time.time() - t0:.1f} s"
