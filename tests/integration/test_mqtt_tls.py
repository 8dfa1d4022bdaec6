#!/usr/bin/env python3
"""MQTT security with a real mosquitto: TLS with a CA, server and client certificates generated
by this test (openssl), a mosquitto password file, and credentials that facilityd reads from a
file and an environment variable.

- The right credentials (client certificate, user from the environment, password from a file,
  MQTT 5) connect, and a TLS subscriber receives a payload that validates against its schema.
- Wrong ones are refused, each with a log line that says why: a wrong password, no client
  certificate, a broker certificate from another CA, a certificate for another host name
  (host name verification is on).
- Plaintext to a broker that is not on this machine is refused: check-config points at the line
  and column, and `facilityd run --mqtt-broker` exits with the reason.
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402
import mqtt_support as ms  # noqa: E402


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_pki(d):
    """A test CA; a server certificate for localhost/127.0.0.1; one for another host name; a
    client certificate; and an unrelated CA."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "2", "-subj", "/CN=facilityd test CA", cwd=d)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "other-ca.key", "-out",
            "other-ca.pem", "-days", "2", "-subj", "/CN=some other CA", cwd=d)
    for name, cn, san in (("server", "localhost", "DNS:localhost,IP:127.0.0.1"),
                          ("wronghost", "broker.example", "DNS:broker.example"),
                          ("client", "facilityd", None)):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out",
                f"{name}.csr", "-subj", f"/CN={cn}", cwd=d)
        ext = []
        if san:
            with open(os.path.join(d, f"{name}.ext"), "w") as f:
                f.write(f"subjectAltName={san}\n")
            ext = ["-extfile", f"{name}.ext"]
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", *ext, cwd=d)
    subprocess.run(["mosquitto_passwd", "-b", "-c", os.path.join(d, "passwd"), "facilityd",
                    "right-password"], check=True, capture_output=True, timeout=30)
    with open(os.path.join(d, "password"), "w") as f:
        f.write("right-password\n")
    for fn in os.listdir(d):  # mosquitto runs as its own user
        os.chmod(os.path.join(d, fn), 0o644)
    os.chmod(d, 0o755)


def tls_listener(d, cert):
    return (f"cafile {d}/ca.pem\ncertfile {d}/{cert}.pem\nkeyfile {d}/{cert}.key\n"
            f"require_certificate true\npassword_file {d}/passwd\nallow_anonymous false\n")


def main():
    args = h.parse_args()
    c = h.Checks()
    with h.workspace("mqtt-tls") as (wd, procs):
        pki = os.path.join(wd, "pki")
        os.makedirs(pki)
        make_pki(pki)
        good = ms.Broker(procs, "broker", extra=tls_listener(pki, "server")).start()
        wrong_host = ms.Broker(procs, "broker-wronghost", extra=tls_listener(pki, "wronghost")).start()
        late = ms.Broker(procs, "broker-late", extra=tls_listener(pki, "server"))  # not yet
        os.environ["FD_TEST_MQTT_USER"] = "facilityd"
        os.environ["FD_TEST_MQTT_WRONG_PASSWORD"] = "not-the-password"

        def config(name, port, ca="ca.pem", cert=True, password="password_file: {pki}/password",
                   version="3.1.1"):
            tls = f"ca_file: {pki}/{ca}" + (f", cert_file: {pki}/client.pem, key_file: {pki}/client.key"
                                            if cert else "")
            mqtt = (f'  broker: "ssl://127.0.0.1:{port}"\n  client_id: {name}\n'
                    f'  protocol_version: "{version}"\n  tls: {{{tls}}}\n'
                    f"  auth: {{username_env: FD_TEST_MQTT_USER, {password.format(pki=pki)}}}\n"
                    "  reconnect_min_interval: 1s\n  reconnect_max_interval: 2s\n")
            return ms.write_config(wd, args.source_dir, mqtt, name=f"{name}.yaml")

        cases = {
            "right": (config("right", good.port, version="5"), None),
            "wrong-password": (config("wrong-password", good.port,
                                      password="password_env: FD_TEST_MQTT_WRONG_PASSWORD"),
                               "refused: not authorized (wrong user name or password"),
            "no-client-cert": (config("no-client-cert", good.port, cert=False),
                               "the broker refused the TLS handshake"),
            "other-ca": (config("other-ca", good.port, ca="other-ca.pem"),
                         "facilityd refused the broker's certificate (unknown CA)"),
            "wrong-host": (config("wrong-host", wrong_host.port),
                           "the broker's certificate is not issued for host 127.0.0.1"),
            # Down at first, then up but refusing: every change of cause is logged.
            "late": (config("late", late.port,
                            password="password_env: FD_TEST_MQTT_WRONG_PASSWORD"), None),
        }
        # All at once: the refused ones only need a few seconds of retries each.
        drivers = {name: ms.Driver(args.build_dir, cfg, wd, name=f"driver-{name}")
                   for name, (cfg, _) in cases.items()}
        try:
            right = drivers["right"]
            c.check(right.cmd("wait-connected 20")["ok"],
                    "right credentials over TLS with a client certificate, MQTT 5: connected")
            sub_args = ["--cafile", f"{pki}/ca.pem", "--cert", f"{pki}/client.pem", "--key",
                        f"{pki}/client.key", "-u", "facilityd", "-P", "right-password"]
            sub = ms.Sub(procs, good.port, "facility/#", "sub", extra=sub_args)
            right.cmd("snap 1")
            c.check(right.cmd("wait-drained 20")["ok"], "published and acknowledged over TLS")
            validators = ms.schemas(args.source_dir)
            cab = h.wait_for("a cabinet at the TLS subscriber",
                             lambda: sub.last("facility/s1/cabinet/c01"), timeout=20)
            errs = ms.schema_errors(validators, cab[1], cab[2])
            c.check(not errs and json.loads(cab[2])["power_w"] is not None,
                    f"the TLS subscriber got a valid cabinet payload ({errs[:1]})")
            d = drivers["late"]
            h.wait_for("late: unreachable", lambda: "broker unreachable" in d.stderr(), timeout=15)
            late.start()
            try:
                h.wait_for("late: refused", lambda: "refused: not authorized" in d.stderr(),
                           timeout=20)
                c.check(True, "a broker down, then up but refusing: both causes logged, in order")
            except TimeoutError as e:
                c.check(False, f"{e}: {d.stderr()[-500:]}")
            for name, (_, expected) in cases.items():
                if expected is None:
                    continue
                d = drivers[name]
                try:
                    h.wait_for(f"{name}: log line", lambda: expected in d.stderr(), timeout=15,
                               interval=0.1)
                    logged = True
                except TimeoutError:
                    logged = False
                st = d.cmd("stats")["stats"]
                line = next((ln for ln in d.stderr().splitlines() if "cannot connect" in ln), "")
                c.check(logged and not st["connected"] and st["connects"] == 0,
                        f"{name}: refused, and the log says why: {line[line.find('mqtt:'):]!r}")
            c.check("right-password" not in "".join(d.stderr() for d in drivers.values()),
                    "no password in any log")
        finally:
            for d in drivers.values():
                d.close()

        # Plaintext to a remote broker: refused in the config (file:line:col) and on the command
        # line.
        facilityd = os.path.join(args.build_dir, "facilityd")
        cfg = ms.write_config(wd, args.source_dir, '  broker: "tcp://192.0.2.10:1883"\n',
                              name="remote.yaml")
        r = subprocess.run([facilityd, "check-config", cfg], capture_output=True, text=True,
                           timeout=30)
        with open(cfg) as f:
            lines = f.read().split("\n")
        line = next(i for i, ln in enumerate(lines) if "192.0.2.10" in ln)
        want = f"{cfg}:{line + 1}:{lines[line].index('tcp://')}: mqtt: broker"
        c.check(r.returncode == 1 and want in r.stderr and "plaintext" in r.stderr,
                f"check-config refuses plaintext to a remote broker at {want!r} "
                f"({r.stderr.strip()[:300]!r})")
        ok_cfg = ms.write_config(wd, args.source_dir, '  enabled: true\n', name="local.yaml")
        r = subprocess.run([facilityd, "run", "--config", ok_cfg, "--listen", "127.0.0.1:0",
                            "--mqtt-broker", "tcp://192.0.2.10:1883"],
                           capture_output=True, text=True, timeout=60)
        c.check(r.returncode == 1 and "plaintext" in r.stdout + r.stderr,
                f"facilityd run --mqtt-broker tcp://192.0.2.10:1883 exits 1 with the reason "
                f"(rc {r.returncode}: {(r.stdout + r.stderr).strip()[-200:]!r})")
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
