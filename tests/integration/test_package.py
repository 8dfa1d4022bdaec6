#!/usr/bin/env python3
"""The Debian package, built from this build tree with CPack (as `cpack` would for a release):
every path the install layout promises is in it, its dependencies are computed from the binaries
(dpkg-shlibdeps), /etc/facilityd/facilityd.yaml is a conffile, the maintainer scripts are the
systemd ones, lintian reports no error, the man pages render without a groff warning and cover
every command, the bash completion knows every command and option, and the unit's exposure in
`systemd-analyze security` is 2.0 or lower (also with the serial-ports drop-in).

Installing the package into a fresh Debian root and booting systemd there is
test_package_install.py (opt-in: it takes a few minutes and the network).
"""
import gzip
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402

# Paths every package must contain (directories end with /).
REQUIRED = [
    "./usr/bin/facilityd",
    "./usr/bin/facility-sim",
    "./etc/facilityd/facilityd.yaml",
    "./lib/systemd/system/facilityd.service",
    "./usr/share/facilityd/profiles/generic-pdu-1ph.yaml",
    "./usr/share/facilityd/demo/facilityd.yaml",
    "./usr/share/facilityd/prometheus/facilityd-alerts.rules.yml",
    "./usr/share/facilityd/prometheus/facilityd-recording.rules.yml",
    "./usr/share/facilityd/alertmanager/alertmanager.yml",
    "./usr/share/facilityd/grafana/facilityd-dashboard.json",
    "./usr/share/facilityd/nginx/facilityd-metrics.conf",
    "./usr/share/doc/facilityd/README.md",
    "./usr/share/doc/facilityd/copyright",
    "./usr/share/doc/facilityd/changelog.gz",
    "./usr/share/doc/facilityd/docs/config.md",
    "./usr/share/doc/facilityd/docs/api.md",
    "./usr/share/doc/facilityd/docs/schemas/api/site.json",
    "./usr/share/doc/facilityd/examples/minimal.yaml",
    "./usr/share/doc/facilityd/examples/serial-ports.conf",
    "./usr/share/man/man8/facilityd.8.gz",
    "./usr/share/man/man5/facilityd.yaml.5.gz",
    "./usr/share/man/man1/facility-sim.1.gz",
    "./usr/share/bash-completion/completions/facilityd",
    "./usr/share/bash-completion/completions/facility-sim",
]
# Libraries the binaries link: dpkg-shlibdeps must have found each (nothing is hand-listed).
# prometheus-cpp: only its pull library (the HTTP listener); the product writes /metrics itself
# and no longer links prometheus-cpp-core, which the pull library's package depends on.
SHLIB_PACKAGES = ["libmodbus5", "libpaho-mqttpp3", "libmicrohttpd12", "libyaml-cpp",
                  "libsqlite3-0", "libsystemd0", "zlib1g", "libstdc++6", "libc6"]


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, **kw)


def build_package(build_dir, out_dir):
    r = run(["cpack", "--config", os.path.join(build_dir, "CPackConfig.cmake"), "-B", out_dir])
    debs = [f for f in os.listdir(out_dir) if f.endswith(".deb")] if r.returncode == 0 else []
    return r, [os.path.join(out_dir, f) for f in debs]


def check_contents(c, deb, src):
    r = run(["dpkg-deb", "--contents", deb])
    paths = {line.split()[-1] for line in r.stdout.splitlines() if line.strip()}
    for p in REQUIRED:
        c.check(p in paths, f"the package contains {p}")
    for prof in sorted(os.listdir(os.path.join(src, "config", "profiles"))):
        if prof.endswith(".yaml"):
            c.check(f"./usr/share/facilityd/profiles/{prof}" in paths, f"profile {prof} shipped")
    c.check(not any(p.startswith("./var/") for p in paths),
            "no /var in the package: systemd's StateDirectory= makes /var/lib/facilityd")
    c.check(not any("/include/" in p or p.endswith(".a") for p in paths),
            "no headers or static libraries of the build in the package")
    modes = {line.split()[-1]: line.split()[0] for line in r.stdout.splitlines() if line.strip()}
    c.check(modes.get("./usr/bin/facilityd", "").startswith("-rwxr-xr-x"),
            f"facilityd is 0755 ({modes.get('./usr/bin/facilityd')})")
    c.check(modes.get("./etc/facilityd/facilityd.yaml", "").startswith("-rw-r--r--"),
            "the configuration is 0644")


def check_control(c, deb):
    info = run(["dpkg-deb", "-f", deb]).stdout
    depends = re.search(r"^Depends: (.*)$", info, re.M)
    depends = depends.group(1) if depends else ""
    for lib in SHLIB_PACKAGES:
        c.check(lib in depends, f"Depends names {lib} (computed by dpkg-shlibdeps): {depends[:200]}")
    for pkg in ("init-system-helpers", "procps"):
        c.check(pkg in depends, f"Depends names {pkg} (maintainer scripts, ExecReload's kill)")
    version = re.search(r"^Version: (\S+)$", info, re.M)
    c.check(version and re.match(r"^\d+\.\d+\.\d+(~git\d+\.[0-9a-f]+(\.dirty)?)?$",
                                 version.group(1)),
            f"Version is the project version (+ ~gitN.REV for a development build): "
            f"{version.group(1) if version else info[:200]}")
    with tempfile.TemporaryDirectory() as d:
        run(["dpkg-deb", "-e", deb, d])
        conffiles = open(os.path.join(d, "conffiles")).read().split()
        c.check(conffiles == ["/etc/facilityd/facilityd.yaml"],
                f"conffiles is /etc/facilityd/facilityd.yaml ({conffiles})")
        for script in ("postinst", "prerm", "postrm"):
            path = os.path.join(d, script)
            text = open(path).read() if os.path.exists(path) else ""
            c.check(os.access(path, os.X_OK) and "facilityd.service" in text,
                    f"{script} is executable and handles facilityd.service")
        postinst = open(os.path.join(d, "postinst")).read()
        c.check("deb-systemd-helper enable" in postinst and "deb-systemd-invoke" in postinst,
                "postinst enables and starts the unit the Debian way")
        run(["dpkg-deb", "-x", deb, d])
        with gzip.open(os.path.join(d, "usr/share/doc/facilityd/changelog.gz"), "rt") as f:
            top = f.readline()
        c.check(version is not None and top.startswith(f"facilityd ({version.group(1)}) "),
                f"the changelog's latest entry is this version ({top.strip()})")


def check_changelog_subjects(c, src):
    """The changelog lists the latest commit subjects; a long one is cut at a word boundary
    (stop 19's CI failed on lintian's spelling-error-in-changelog for "befor", a "before" cut
    at column 72). Run the generator on a throwaway repository whose subject crosses column 72
    mid-word."""
    words = ("Energy windows: the step into a device's first grid point after a restore is "
             "down time when the device answered").split()
    with tempfile.TemporaryDirectory(prefix="facilityd-changelog-") as d:
        repo, out = os.path.join(d, "repo"), os.path.join(d, "out")
        os.makedirs(out)
        env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.org",
                   GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.org")
        for argv in (["git", "init", "-q", repo],
                     ["git", "-C", repo, "commit", "-q", "--allow-empty", "-m", " ".join(words)]):
            r = run(argv, env=env)
            if r.returncode != 0:
                c.check(False, f"{' '.join(argv[:4])}: {r.stderr.strip()[:200]}")
                return
        r = run(["cmake", f"-DSOURCE_DIR={repo}", f"-DOUT_DIR={out}", "-DVERSION=1.2.3",
                 "-P", os.path.join(src, "cmake", "write_version.cmake")])
        entries = []
        if r.returncode == 0:
            with open(os.path.join(out, "changelog")) as f:
                entries = [l[4:] for l in f.read().splitlines() if l.startswith("  * ")
                           and "git revision" not in l]
        ok = len(entries) == 1 and len(entries[0]) <= 76 and entries[0].endswith(" ...")
        ok = ok and all(w in words for w in entries[0][:-4].split())
        c.check(r.returncode == 0 and ok,
                f"a long commit subject is cut at a word boundary in the changelog ({entries})")


def check_lintian(c, deb):
    r = run(["lintian", "--pedantic", "--no-tag-display-limit", deb])
    lines = [l for l in (r.stdout + r.stderr).splitlines()
             if re.match(r"^[EWIPX]: ", l)]
    errors = [l for l in lines if l.startswith("E:")]
    print("  lintian:\n    " + "\n    ".join(lines or ["(nothing)"]))
    c.check(not errors, f"lintian reports no error ({len(errors)}: {errors[:5]})")
    # The warnings we accept are listed in the closing note; anything new is worth a look.
    warnings = [l for l in lines if l.startswith("W:")]
    c.check(not warnings, f"lintian reports no warning ({warnings[:5]})")


def check_man_pages(c, deb, build_dir):
    with tempfile.TemporaryDirectory() as root:
        run(["dpkg-deb", "-x", deb, root])
        fd = os.path.join(build_dir, "facilityd")
        commands = [l.split()[0] for l in run([fd, "--help"]).stdout.split("Subcommands:")[1]
                    .splitlines() if re.match(r"^  \S", l)]
        c.check(set(commands) >= {"run", "check-config", "probe", "report"},
                f"facilityd --help lists its commands ({commands})")
        for page, section in (("facilityd.8.gz", "man8"), ("facilityd.yaml.5.gz", "man5"),
                              ("facility-sim.1.gz", "man1")):
            path = os.path.join(root, "usr/share/man", section, page)
            with open(path, "rb") as f:
                raw = f.read()
            c.check(raw[3] & 0x08 == 0 and raw[4:8] == b"\0\0\0\0",
                    f"{page} is gzipped without a name or time stamp (gzip -n)")
            roff = gzip.decompress(raw).decode()
            r = subprocess.run(["man", "--warnings", "-l", path], capture_output=True, text=True,
                               env={**os.environ, "MANWIDTH": "80"})
            warnings = [l for l in r.stderr.splitlines() if l.strip()]
            c.check(r.returncode == 0 and not warnings,
                    f"man {page} renders without warnings ({warnings[:3]})")
            if page == "facilityd.8.gz":
                for cmd in commands:
                    c.check(f"facilityd {cmd}" in r.stdout, f"facilityd(8) documents `{cmd}`")
                for opt in ("--config", "--listen", "--profiles-dir", "--resolution"):
                    c.check(opt.replace("-", "\\-") in roff or opt in r.stdout,
                            f"facilityd(8) documents {opt}")
            if page == "facilityd.yaml.5.gz":
                for key in ("stale_after_intervals", "profiles_dir", "pue_windows", "max_gap"):
                    c.check(key in r.stdout, f"facilityd.yaml(5) documents {key}")
        comp = open(os.path.join(root, "usr/share/bash-completion/completions/facilityd")).read()
        r = run(["bash", "-n", "-c", comp])
        c.check(r.returncode == 0, f"the bash completion is valid bash ({r.stderr.strip()[:200]})")
        # Completing in a real bash: "facilityd pr<TAB>" and "facilityd probe --pro<TAB>".
        script = comp + """
COMP_WORDS=(facilityd pr); COMP_CWORD=1; _facilityd; echo "1:${COMPREPLY[*]}"
COMP_WORDS=(facilityd probe --pro); COMP_CWORD=2; _facilityd; echo "2:${COMPREPLY[*]}"
COMP_WORDS=(facilityd report --format ""); COMP_CWORD=3; _facilityd; echo "3:${COMPREPLY[*]}"
"""
        out = run(["bash", "-c", script]).stdout
        c.check("1:probe" in out, f"completion: facilityd pr -> probe ({out!r})")
        c.check("2:--profile --profiles-dir" in out, f"completion: probe --pro -> options ({out!r})")
        c.check("3:text markdown csv json html" in out, f"completion: --format values ({out!r})")


def check_security(c, src):
    unit = os.path.join(src, "systemd", "facilityd.service")
    exposure = {}
    with tempfile.TemporaryDirectory() as d:
        shutil.copy(unit, d)
        plain = os.path.join(d, "facilityd.service")
        r = run(["systemd-analyze", "security", "--offline=true", "--threshold=20", plain])
        m = re.search(r"Overall exposure level for facilityd.service: (\d+\.\d+)", r.stdout)
        exposure["shipped"] = (r.returncode, m and float(m.group(1)))
        os.makedirs(os.path.join(d, "facilityd.service.d"))
        shutil.copy(os.path.join(src, "systemd", "serial-ports.conf"),
                    os.path.join(d, "facilityd.service.d"))
        r = run(["systemd-analyze", "security", "--offline=true", "--threshold=20",
                 "facilityd.service"], cwd=d)
        m = re.search(r"Overall exposure level for facilityd.service: (\d+\.\d+)", r.stdout)
        exposure["with serial-ports.conf"] = (r.returncode, m and float(m.group(1)))
    for what, (rc, score) in exposure.items():
        c.check(rc == 0 and score is not None and score <= 2.0,
                f"systemd-analyze security: exposure {score} <= 2.0 ({what}, rc {rc})")
    text = open(unit).read()
    for key in ("WatchdogSec=", "Type=notify", "SystemCallFilter=@system-service",
                "CapabilityBoundingSet=\n", "DynamicUser=yes", "StateDirectory=facilityd"):
        c.check(key in text, f"the unit sets {key.strip()}")
    c.check("later issue" not in text, "the unit no longer promises hardening for later")


def main():
    args = h.parse_args()
    c = h.Checks()
    for tool in ("cpack", "dpkg-deb", "lintian", "systemd-analyze", "man"):
        if not shutil.which(tool):
            c.check(False, f"{tool} is installed (scripts/install-deps)")
            return c.finish()
    with tempfile.TemporaryDirectory(prefix="facilityd-package-") as out:
        r, debs = build_package(args.build_dir, out)
        c.check(r.returncode == 0 and len(debs) == 1,
                f"cpack builds one .deb (rc {r.returncode}: {(r.stdout + r.stderr)[-500:]})")
        if not debs:
            return c.finish()
        deb = debs[0]
        print(f"  package: {os.path.basename(deb)}, {os.path.getsize(deb) / 1e6:.1f} MB")
        check_contents(c, deb, args.source_dir)
        check_control(c, deb)
        check_lintian(c, deb)
        check_man_pages(c, deb, args.build_dir)
    check_changelog_subjects(c, args.source_dir)
    check_security(c, args.source_dir)
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
