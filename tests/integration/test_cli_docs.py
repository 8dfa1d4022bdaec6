#!/usr/bin/env python3
"""What the programs and the documentation say about each other stays true:

* every "Exit status:" sentence in `facilityd [COMMAND] --help` and `facility-sim --help` is
  what the program does for a good run, a failed run and a bad command line;
* every key the configuration loader accepts (the key lists of its MapReaders) is documented in
  docs/config.md;
* docs/config.md lists every shipped profile (config/profiles/*.yaml) with its source, and no
  profile that is not shipped;
* the broken example in docs/config.md ("Errors and check-config") is exactly what
  `facilityd check-config` prints for tests/data/check-config/site.yaml;
* the installed default configuration (config/default/facilityd.yaml) passes check-config.
"""
import glob
import os
import re
import subprocess
import sys

import yaml

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, **kw)


def exit_sentence(help_text):
    m = re.search(r"Exit status:(.*?)(?:\n\n|$)", help_text, re.S)
    return " ".join(m.group(1).split()) if m else ""


def check_exit_codes(c, fd, sim, src, wd):
    demo = os.path.join(src, "config", "demo", "facilityd.yaml")
    broken = os.path.join(src, "tests", "data", "check-config", "site.yaml")
    missing = os.path.join(wd, "no-such-file.yaml")
    # (argv, expected status, why); each command's --help must promise these statuses.
    cases = {
        "": [([fd, "--bogus"], 2, "unknown option"), ([fd], 2, "no command"),
             ([fd, "--version"], 0, "--version")],
        "check-config": [([fd, "check-config", demo], 0, "valid configuration"),
                         ([fd, "check-config", broken], 1, "configuration with problems"),
                         ([fd, "check-config"], 2, "missing argument"),
                         ([fd, "check-config", demo, "--bogus"], 2, "unknown option")],
        "probe": [([fd, "probe", "tcp://127.0.0.1:1", "--unit", "1", "--profile",
                    os.path.join(src, "config", "profiles", "generic-pdu-1ph.yaml"),
                    "--timeout", "200ms"], 1, "a poll that fails (connection refused)"),
                  ([fd, "probe", "--bogus"], 2, "unknown option"),
                  ([fd, "probe", "tcp://127.0.0.1:1", "--unit", "x"], 2, "bad --unit"),
                  ([fd, "probe", "tcp://127.0.0.1:1"], 2, "neither --profile nor --device"),
                  ([fd, "probe", "tcp://127.0.0.1:1", "--profile", "p", "--timeout", "soon"], 2,
                   "bad --timeout")],
        "scan": [([fd, "scan", "tcp://127.0.0.1:1", "--units", "1-3", "--timeout", "200ms"], 1,
                  "an endpoint that cannot be opened (connection refused)"),
                 ([fd, "scan", "--bogus"], 2, "unknown option"),
                 ([fd, "scan", "tcp://127.0.0.1:1", "--units", "9-3"], 2, "bad --units"),
                 ([fd, "scan", "tcp://127.0.0.1:1", "--budget", "soon"], 2, "bad --budget")],
        "report": [([fd, "report", "-c", demo, "--site", "hl1", "--db", missing], 1,
                    "no history database"),
                   ([fd, "report", "-c", demo], 2, "missing --site"),
                   ([fd, "report", "--bogus"], 2, "unknown option")],
        "run": [([fd, "run", "--config", broken], 1, "configuration that does not load"),
                ([fd, "run"], 2, "missing --config"),
                ([fd, "run", "--config", missing], 2, "--config names no file"),
                ([fd, "run", "--config", demo, "--bogus"], 2, "unknown option")],
    }
    for cmd, runs in cases.items():
        argv = [fd] + ([cmd] if cmd else []) + ["--help"]
        r = run(argv)
        sentence = exit_sentence(r.stdout)
        c.check(r.returncode == 0 and sentence,
                f"`facilityd {cmd} --help` exits 0 and states its exit status: {sentence!r}")
        for args, code, why in runs:
            c.check(re.search(rf"\b{code} (on|when|after|for)\b", sentence) is not None,
                    f"`facilityd {cmd} --help` promises status {code} ({why})")
            r = run(args, cwd=wd)
            c.check(r.returncode == code,
                    f"facilityd {' '.join(os.path.basename(a) for a in args[1:])}: status "
                    f"{r.returncode}, --help says {code} for {why} ({r.stderr.strip()[-160:]})")

    r = run([sim, "--help"])
    sentence = exit_sentence(r.stdout)
    c.check(r.returncode == 0 and sentence, f"facility-sim --help states its exit status")
    for args, code, why in [([sim], 2, "a missing --config (bad option)"),
                            ([sim, "--bogus"], 2, "unknown option"),
                            ([sim, "--config", broken], 2, "a bad config"),
                            ([sim, "--config", demo, "--speed", "-1"], 2, "a bad --speed")]:
        c.check(str(code) in sentence, f"facility-sim --help promises {code} for {why}")
        r = run(args, cwd=wd)
        c.check(r.returncode == code,
                f"facility-sim {' '.join(os.path.basename(a) for a in args[1:])}: status "
                f"{r.returncode}, --help says {code} ({r.stderr.strip()[-160:]})")
    r = run([fd, "--version"])
    c.check(re.match(r"^facilityd \d+\.\d+\.\d+ \(git [0-9a-f]{7,}(-dirty)?\)$", r.stdout.strip())
            is not None or "(git unknown)" in r.stdout,
            f"facilityd --version names the version and the git revision: {r.stdout.strip()}")


def loader_keys(src):
    """Every key in a MapReader's key list (and the simulate hints' lists) of the loader."""
    keys = {}
    files = glob.glob(os.path.join(src, "daemon", "**", "*.cpp"), recursive=True)
    for path in files:
        text = open(path).read()
        for m in re.finditer(r"MapReader\s+\w+\s*\(\s*d\s*,[^;{]*?\{([^}]*)\}\s*\)", text, re.S):
            for k in re.findall(r'"([a-z0-9_]+)"', m.group(1)):
                keys.setdefault(k, os.path.relpath(path, src))
        for m in re.finditer(r"parse_sim\(\s*d\s*,\s*\w+\s*,\s*\{([^}]*)\}", text):
            for k in re.findall(r'"([a-z0-9_]+)"', m.group(1)):
                keys.setdefault(k, os.path.relpath(path, src))
    return keys


def check_config_keys(c, src):
    keys = loader_keys(src)
    c.check(len(keys) > 100, f"found the loader's key lists ({len(keys)} keys)")
    doc = open(os.path.join(src, "docs", "config.md")).read()
    doc = re.sub(r"^```.*?^```", "", doc, flags=re.S | re.M)  # examples do not document a key
    words = set()
    for span in re.findall(r"`([^`\n]+)`", doc):
        words.update(re.findall(r"[a-z0-9_]+", span))
    missing = sorted(k for k in keys if k not in words)
    c.check(not missing, f"every key the loader accepts is in docs/config.md (missing: "
                         f"{[(k, keys[k]) for k in missing]})")


def check_profile_table(c, src):
    doc = open(os.path.join(src, "docs", "config.md")).read()
    section = doc.split("### Shipped profiles", 1)[-1].split("\n### ", 1)[0]
    listed = set(re.findall(r"^\| `([a-z0-9-]+)` \|", section, re.M))
    shipped = {os.path.basename(p)[:-5]
               for p in glob.glob(os.path.join(src, "config", "profiles", "*.yaml"))}
    c.check(listed == shipped, f"docs/config.md lists exactly the shipped profiles "
                               f"(not listed: {sorted(shipped - listed)}, "
                               f"not shipped: {sorted(listed - shipped)})")
    for name in sorted(shipped):
        prof = yaml.safe_load(open(os.path.join(src, "config", "profiles", name + ".yaml")))
        row = re.search(rf"^\| `{re.escape(name)}` \|(.*)$", section, re.M)
        source = prof.get("source", "")
        cited = row and (source == "synthetic" and "synthetic" in row.group(1)
                         or source != "synthetic" and "synthetic" not in row.group(1))
        c.check(bool(cited), f"{name}: its row says where its map comes from ({source[:60]})")


def check_error_example(c, fd, src):
    doc = open(os.path.join(src, "docs", "config.md")).read()
    m = re.search(r"```\n\$ facilityd check-config site.yaml\n(.*?)\$ echo \$\?\n1\n```", doc,
                  re.S)
    c.check(m is not None, "docs/config.md shows check-config on the broken example")
    r = run([fd, "check-config", "site.yaml"],
            cwd=os.path.join(src, "tests", "data", "check-config"))
    c.check(r.returncode == 1, f"check-config exits 1 on the broken example ({r.returncode})")
    c.check(m is not None and m.group(1) == r.stderr,
            "the documented output is exactly the program's:\n" + r.stderr)


def check_default_config(c, fd, src):
    path = os.path.join(src, "config", "default", "facilityd.yaml")
    r = run([fd, "check-config", path])
    c.check(r.returncode == 0 and "OK: 0 sites" in r.stdout and "no sites yet" in r.stdout,
            f"the installed default configuration passes check-config and says there is no "
            f"site yet ({r.stdout.strip()[:200]} {r.stderr.strip()[:200]})")
    cfg = yaml.safe_load(open(path))
    c.check(cfg["mqtt"]["enabled"] is False, "MQTT is off in the default configuration")
    c.check(cfg["daemon"]["listen"].startswith("127.0.0.1:"), "it listens on loopback only")


def main():
    args = h.parse_args()
    c = h.Checks()
    fd = os.path.abspath(os.path.join(args.build_dir, "facilityd"))
    sim = os.path.abspath(os.path.join(args.build_dir, "facility-sim"))
    with h.workspace("cli-docs") as (wd, _procs):
        check_exit_codes(c, fd, sim, os.path.abspath(args.source_dir), wd)
        check_config_keys(c, args.source_dir)
        check_profile_table(c, args.source_dir)
        check_error_example(c, fd, args.source_dir)
        check_default_config(c, fd, args.source_dir)
    return c.finish()


if __name__ == "__main__":
    sys.exit(main())
