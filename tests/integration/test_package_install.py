#!/usr/bin/env python3
"""The Debian package on a fresh Debian 12 root, under a real systemd (opt-in: a few minutes,
needs root, the network for apt, and a bookworm root from `../shared/tools/fresh-machine
prepare` or debootstrap).

    FACILITYD_TEST_INSTALL=1 ctest --test-dir build -R package_install --output-on-failure

1. `apt install ./facilityd_*.deb` into a copy of a debootstrap (minbase) root: the computed
   dependencies resolve; `facilityd check-config /etc/facilityd/facilityd.yaml` accepts the
   shipped configuration; `facilityd probe --help` works; a shipped profile is found by name
   from any directory; `systemd-analyze verify` accepts the installed unit; the man pages are
   found by `man`.
2. The root is booted with systemd-nspawn: facilityd.service is enabled and running as
   installed (a dynamic user, the hardened unit), tells systemd its status and pings the
   watchdog, logs to the journal with priorities, and `systemd-analyze security facilityd`
   scores it 2.0 or lower.
3. The demo site (served by facility-sim in the container) is put in /etc/facilityd and applied
   with `systemctl reload`: every device comes up (STATUS=); the simulator stopped, every
   device goes down with a rate-limited burst of warnings (PRIORITY=4); started again, they
   come back (PRIORITY=6).
4. A stalled daemon (SIGSTOP) is aborted by the watchdog and restarted by systemd.
5. `apt-get purge facilityd` stops the service and removes its state.

Without FACILITYD_TEST_INSTALL=1 it exits 77, which CTest reports as skipped.
"""
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402

SKIP = 77
FRESH_ROOT = os.environ.get("FRESH_CACHE", "/var/tmp/fresh-bookworm") + "/root"


def run(argv, timeout=600, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)


def in_chroot(root, script, timeout=900):
    """Runs a shell script in the root with /proc and /dev, in a private mount namespace (the
    mounts vanish with it)."""
    wrapper = (f"set -e; mount -t proc proc {root}/proc; mount --rbind /dev {root}/dev; "
               f"exec chroot {root} /bin/sh -c \"$0\"")
    return run(["unshare", "--mount", "--propagation", "private", "sh", "-c", wrapper, script],
               timeout=timeout)


def child_pids(pid):
    out = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            fields = open(stat).read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.split("/")[2]))
    return out


class Container:
    """A booted systemd-nspawn container sharing the host's network (loopback included)."""

    def __init__(self, root, log):
        self.proc = subprocess.Popen(
            ["systemd-nspawn", "--quiet", "--register=no", "--keep-unit", "-D", root, "--boot",
             "--pipe"], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.leader = h.wait_for("the container's systemd (PID 1)", self._leader, 60)

    def _leader(self):
        for c in child_pids(self.proc.pid):
            if open(f"/proc/{c}/comm").read().strip() == "systemd":
                return c
        return None

    def sh(self, command, timeout=120):
        return run(["nsenter", "-t", str(self.leader), "-a", "/bin/sh", "-c", command],
                   timeout=timeout)

    def prop(self, unit, name):
        return self.sh(f"systemctl show {unit} -p {name} --value").stdout.strip()

    def journal(self, unit):
        r = self.sh(f"journalctl -u {unit} -o json --no-pager")
        return [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # nspawn powers the container off
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def remap_demo(src, ports_out):
    """The demo configuration with every endpoint on a free port (the container shares the
    host's loopback) and the shipped profiles."""
    text = open(os.path.join(src, "config", "demo", "facilityd.yaml")).read()
    ep = re.compile(r'(endpoint:\s*"?tcp://127\.0\.0\.1:)(\d+)')
    ports = sorted(set(m.group(2) for m in ep.finditer(text)))
    mapping = {p: str(n) for p, n in zip(ports, h.free_ports(len(ports)))}
    ports_out.extend(mapping.values())
    text = ep.sub(lambda m: m.group(1) + mapping[m.group(2)], text)
    return re.sub(r"(?m)^profiles_dir:.*$", "", text)


def phase_install(c, root, deb):
    shutil.copy(deb, os.path.join(root, "tmp", "facilityd.deb"))
    shutil.copy("/etc/resolv.conf", os.path.join(root, "etc", "resolv.conf"))
    # No service starts in the chroot (there is no systemd running there).
    policy = os.path.join(root, "usr", "sbin", "policy-rc.d")
    with open(policy, "w") as f:
        f.write("#!/bin/sh\nexit 101\n")
    os.chmod(policy, 0o755)
    t0 = time.time()
    r = in_chroot(root, "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install "
                        "-y -qq --no-install-recommends /tmp/facilityd.deb systemd systemd-sysv "
                        "dbus man-db curl >/tmp/apt.log 2>&1 || { tail -30 /tmp/apt.log; "
                        "exit 1; }")
    c.check(r.returncode == 0, f"apt installs the package and its dependencies in a fresh root "
                               f"({time.time() - t0:.0f} s): {(r.stdout + r.stderr)[-800:]}")
    if r.returncode != 0:
        return False
    os.remove(policy)
    r = in_chroot(root, "cd / && facilityd check-config /etc/facilityd/facilityd.yaml")
    c.check(r.returncode == 0 and "OK" in r.stdout,
            f"check-config accepts the installed /etc/facilityd/facilityd.yaml: {r.stdout.strip()}")
    r = in_chroot(root, "cd /tmp && facilityd probe --help")
    c.check(r.returncode == 0 and "Exit status" in r.stdout, "facilityd probe --help")
    r = in_chroot(root, "cd /tmp && facilityd probe tcp://127.0.0.1:1 --unit 1 "
                        "--profile generic-pdu-1ph --timeout 200ms")
    c.check(r.returncode == 1 and "poll failed" in r.stderr and "no profile" not in r.stderr,
            f"probe finds the shipped profile generic-pdu-1ph from any directory "
            f"(rc {r.returncode}: {r.stderr.strip()[:200]})")
    r = in_chroot(root, "systemd-analyze verify /lib/systemd/system/facilityd.service")
    c.check(r.returncode == 0, f"systemd-analyze verify accepts the installed unit "
                               f"({(r.stdout + r.stderr).strip()[:300]})")
    r = in_chroot(root, "man -w facilityd && man -w 5 facilityd.yaml && man -w facility-sim")
    c.check(r.returncode == 0 and r.stdout.count("/usr/share/man/") == 3,
            f"man finds facilityd(8), facilityd.yaml(5), facility-sim(1): {r.stdout.strip()}")
    r = in_chroot(root, "test -L /etc/systemd/system/multi-user.target.wants/facilityd.service")
    c.check(r.returncode == 0, "the postinst enabled facilityd.service")
    return True


def phase_boot(c, box, port):
    c.check(h.wait_for("facilityd.service active", lambda: box.prop("facilityd", "ActiveState")
                       == "active", 60) is True, "facilityd.service runs after boot")
    body = h.wait_for("/metrics", lambda: h.http_get(f"http://127.0.0.1:{port}/metrics"), 30)
    c.check(re.search(r'facility_build_info\{version="[^"]+",revision="[0-9a-f]+', body)
            is not None, "the installed daemon serves /metrics with its version and revision")
    c.check(box.prop("facilityd", "WatchdogUSec") == "30s", "WatchdogSec=30s is in effect")
    status = h.wait_for("STATUS=", lambda: box.prop("facilityd", "StatusText"), 20)
    c.check(status == "0 of 0 devices up, 0 sites", f"systemd shows the daemon's status: {status}")
    user = box.sh("ps -o user= -C facilityd").stdout.strip()
    c.check(user and user != "root", f"facilityd runs as a dynamic user ({user})")
    r = box.sh("systemd-analyze security facilityd --no-pager")
    m = re.search(r"Overall exposure level for facilityd.service: (\d+\.\d+)", r.stdout)
    c.check(m is not None and float(m.group(1)) <= 2.0,
            f"systemd-analyze security facilityd: {m.group(1) if m else r.stdout[-300:]} <= 2.0")
    entries = box.journal("facilityd")
    started = [e for e in entries if "metrics at" in e.get("MESSAGE", "")]
    c.check(started and started[0].get("PRIORITY") == "6" and
            not re.match(r"^\d{4}-", started[0]["MESSAGE"]),
            f"journal: info lines have PRIORITY=6 and no time stamp of their own "
            f"({started[0] if started else entries[-3:]})")


def phase_demo(c, box, root, src, port, wd):
    ports = []
    demo = remap_demo(src, ports)
    c.check('listen: "127.0.0.1:10044"' in demo, "the demo listens on 127.0.0.1:10044")
    demo = demo.replace('listen: "127.0.0.1:10044"', f'listen: "127.0.0.1:{port}"')
    demo = re.sub(r"(?m)^(\s*)enabled: true", r"\1enabled: false", demo)  # no broker here
    with open(os.path.join(root, "etc", "facilityd", "demo.yaml"), "w") as f:
        f.write(demo)
    r = box.sh("systemd-run --unit facility-sim --property=DynamicUser=yes /usr/bin/facility-sim "
               "--config /etc/facilityd/demo.yaml")
    c.check(r.returncode == 0, f"facility-sim runs as a service in the container ({r.stderr})")
    for p in ports[:3]:
        h.wait_port(int(p), 30)
    with open(os.path.join(root, "etc", "facilityd", "facilityd.yaml"), "w") as f:
        f.write(demo)
    r = box.sh("facilityd check-config --quiet /etc/facilityd/facilityd.yaml && "
               "systemctl reload facilityd")
    c.check(r.returncode == 0, f"systemctl reload applies the demo site ({r.stderr.strip()})")
    devices = demo.count("kind: ")
    want = f"{devices} of {devices} devices up, 3 sites"
    status = h.wait_for(want, lambda: box.prop("facilityd", "StatusText") == want and want, 90,
                        interval=2)
    c.check(status == want, f"systemd status: {want}")

    box.sh("systemctl stop facility-sim")
    h.wait_for("every device down", lambda: box.prop("facilityd", "StatusText").startswith(
        f"0 of {devices}"), 120, interval=2)
    time.sleep(11)  # the rate limiter's window ends: its summary line is written
    entries = box.journal("facilityd")
    down = [e for e in entries if " is down: " in e.get("MESSAGE", "")]
    summaries = [e for e in entries if "more devices went down" in e.get("MESSAGE", "")]
    counted = len([e for e in down if e["MESSAGE"].startswith("device ")]) + sum(
        int(e["MESSAGE"].split()[0]) for e in summaries)
    c.check(down and all(e.get("PRIORITY") == "4" for e in down + summaries),
            f"devices and endpoints going down are warnings (PRIORITY=4): "
            f"{down[0]['MESSAGE'] if down else entries[-3:]}")
    c.check(counted == devices, f"each of the {devices} devices' transition is logged once, "
                                f"one by one or in a summary ({counted})")
    c.check(len(down) + len(summaries) < devices / 3,
            f"rate-limited: {len(down)} lines and {len(summaries)} summaries for {devices} "
            f"devices and their endpoints")
    c.check(any("connection refused" in e["MESSAGE"] for e in down),
            "the reason is logged (connection refused)")

    box.sh("systemctl start facility-sim || systemd-run --unit facility-sim "
           "--property=DynamicUser=yes /usr/bin/facility-sim --config /etc/facilityd/demo.yaml")
    h.wait_for("devices back", lambda: box.prop("facilityd", "StatusText") == want, 120,
               interval=2)
    entries = box.journal("facilityd")
    back = [e for e in entries if "is up again" in e.get("MESSAGE", "")
            or "came back up" in e.get("MESSAGE", "")]
    c.check(back and all(e.get("PRIORITY") == "6" for e in back),
            f"coming back is logged at info (PRIORITY=6): {back[0]['MESSAGE'] if back else ''}")


def phase_watchdog(c, box):
    box.sh("mkdir -p /run/systemd/system/facilityd.service.d && printf '[Service]\\n"
           "WatchdogSec=4s\\n' > /run/systemd/system/facilityd.service.d/watchdog.conf && "
           "systemctl daemon-reload && systemctl restart facilityd")
    h.wait_for("restarted with WatchdogSec=4s",
               lambda: box.prop("facilityd", "WatchdogUSec") == "4s" and
               box.prop("facilityd", "ActiveState") == "active", 30)
    before = int(box.prop("facilityd", "NRestarts") or 0)
    pid = box.prop("facilityd", "MainPID")
    box.sh(f"kill -STOP {pid}")
    restarted = h.wait_for("a watchdog restart",
                           lambda: int(box.prop("facilityd", "NRestarts") or 0) > before, 60)
    c.check(restarted, "a stalled facilityd is aborted by the watchdog and restarted")
    msgs = " ".join(e.get("MESSAGE", "") for e in box.journal("facilityd"))
    c.check("Watchdog timeout" in msgs, "the journal says why: Watchdog timeout")
    box.sh("rm -r /run/systemd/system/facilityd.service.d && systemctl daemon-reload")


def phase_purge(c, box):
    r = box.sh("DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq facilityd", timeout=300)
    c.check(r.returncode == 0, f"apt-get purge facilityd ({r.stderr.strip()[-300:]})")
    c.check(box.prop("facilityd", "ActiveState") in ("inactive", "failed", ""),
            "the service is stopped")
    gone = ["/var/lib/private/facilityd", "/var/lib/facilityd", "/etc/facilityd/facilityd.yaml",
            "/lib/systemd/system/facilityd.service"]
    left = [p for p in gone if box.sh(f"test -e {p} || test -L {p}").returncode == 0]
    c.check(not left, f"purge removes the state, the configuration and the unit (left: {left})")


def main():
    args = h.parse_args()
    if os.environ.get("FACILITYD_TEST_INSTALL") != "1":
        print("skipped: set FACILITYD_TEST_INSTALL=1 to install the package into a fresh Debian "
              "root and boot it with systemd (a few minutes, root and network needed)")
        return SKIP
    c = h.Checks()
    src = os.path.abspath(args.source_dir)
    if not os.path.isdir(FRESH_ROOT):
        tool = os.path.join(src, "..", "shared", "tools", "fresh-machine")
        r = run([tool, "prepare"], timeout=1800)
        c.check(r.returncode == 0, f"fresh-machine prepare ({r.stdout[-300:]}{r.stderr[-300:]})")
    for tool in ("systemd-nspawn", "nsenter", "unshare", "cpack"):
        c.check(shutil.which(tool) is not None, f"{tool} is installed")
    if c.failed:
        return c.finish()
    with h.workspace("package-install") as (wd, _procs):
        r = run(["cpack", "--config", os.path.join(args.build_dir, "CPackConfig.cmake"), "-B",
                 os.path.join(wd, "deb")])
        debs = glob.glob(os.path.join(wd, "deb", "*.deb"))
        c.check(r.returncode == 0 and len(debs) == 1, f"cpack builds the package {debs}")
        root = os.path.join(wd, "root")
        run(["cp", "-a", FRESH_ROOT, root])
        if not debs or not phase_install(c, root, debs[0]):
            return c.finish()
        port = h.free_port()
        conf = os.path.join(root, "etc", "facilityd", "facilityd.yaml")
        text = open(conf).read().replace('listen: "127.0.0.1:10044"', f'listen: "127.0.0.1:{port}"')
        open(conf, "w").write(text)
        with open(os.path.join(wd, "container.log"), "w") as log:
            box = Container(root, log)
            try:
                phase_boot(c, box, port)
                phase_demo(c, box, root, src, port, wd)
                phase_watchdog(c, box)
                phase_purge(c, box)
            finally:
                box.stop()
        # Leave nothing mounted or running in the work directory before it is removed.
        run(["umount", "-R", root])
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
