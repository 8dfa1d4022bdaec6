#!/usr/bin/env python3
"""A hand-made mutation pass over the frame, codec, planner and model code.

Each mutant is one realistic slip (an off-by-one, a flipped comparison, a dropped check, a
wrong word order). For each: apply it to the source, rebuild the unit tests, run them, restore
the source. A mutant is *killed* when a test fails. Prints one line per mutant and the kill
rate; exits 1 if any mutant survived.

Not part of CI (each mutant is a rebuild): run it after changing one of these files.

    tests/mutation/run.py [--build-dir build] [--only SUBSTRING]
"""
import argparse
import os
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

# (file, original text (must occur exactly once), mutated text, what the slip is)
MUTANTS = [
    # ---- frame.cpp: framing and reply validation
    ("collectors/modbus/frame.cpp", "if (get16(&in[2]) != 0) {", "if (false) {",
     "TCP: protocol id not checked"),
    ("collectors/modbus/frame.cpp", "  if (get16(&in[0]) != transaction_id) {", "  if (false) {",
     "TCP: transaction id not checked"),
    ("collectors/modbus/frame.cpp", "  if (in[6] != unit) {", "  if (false) {",
     "TCP: unit id not checked"),
    ("collectors/modbus/frame.cpp", "  if (length != expected) {", "  if (length < expected) {",
     "TCP: MBAP length only checked as a minimum"),
    ("collectors/modbus/frame.cpp", "if (age != 0 && age <= stale_tids", "if (age != 0 && age < stale_tids",
     "TCP: stale-reply window one short"),
    # (want and got stay used: a bare "if (false)" leaves them unused, an error under -Werror)
    ("collectors/modbus/frame.cpp", "  if (want != got) {", "  if (want != got && false) {",
     "RTU: CRC not checked"),
    ("collectors/modbus/frame.cpp", "    if (in[2] != want) {", "    if (in[2] > want) {",
     "RTU: byte count only checked as a maximum"),
    ("collectors/modbus/frame.cpp", "pdu.size() < 2 || pdu[1] != want - 2 || pdu.size() != want",
     "pdu.size() < 2 || pdu.size() != want",
     "PDU: byte-count byte not checked"),
    ("collectors/modbus/frame.cpp", "values[i] = (data[i / 8] >> (i % 8)) & 1u;",
     "values[i] = (data[i / 8] >> (7 - i % 8)) & 1u;", "bits: MSB first"),
    ("collectors/modbus/frame.cpp", "return 2 + (is_bit_kind(kind) ? (count + 7u) / 8u : 2u * count);",
     "return 2 + (is_bit_kind(kind) ? count / 8u : 2u * count);", "bit reply size rounded down"),
    # ---- codec.cpp: decoding
    ("collectors/modbus/codec.cpp",
     "bool swaps_bytes(WordOrder o) { return o == WordOrder::kBADC || o == WordOrder::kDCBA; }",
     "bool swaps_bytes(WordOrder o) { return o == WordOrder::kBADC; }", "DCBA does not swap bytes"),
    ("collectors/modbus/codec.cpp",
     "bool reverses_words(WordOrder o) { return o == WordOrder::kCDAB || o == WordOrder::kDCBA; }",
     "bool reverses_words(WordOrder o) { return o == WordOrder::kCDAB; }",
     "DCBA does not reverse words"),
    ("collectors/modbus/codec.cpp",
     "double num_i16(std::uint64_t b, int) { return static_cast<std::int16_t>(b); }",
     "double num_i16(std::uint64_t b, int) { return static_cast<std::uint16_t>(b); }",
     "int16 not sign-extended"),
    ("collectors/modbus/codec.cpp", "  d.value = raw * spec_.scale + spec_.offset;",
     "  d.value = (raw + spec_.offset) * spec_.scale;", "offset applied before scale"),
    # ---- planner.cpp: request planning
    ("collectors/modbus/planner.cpp", ": std::clamp(opt.max_registers, 1, 125);",
     ": std::clamp(opt.max_registers, 1, 126);", "register cap 126"),
    ("collectors/modbus/planner.cpp", "    if (static_cast<int>(next->start - end) > opt.max_gap) break;",
     "    if (static_cast<int>(next->start - end) >= opt.max_gap) break;", "max_gap off by one"),
    # ---- model: facility math
    ("daemon/model/cabinet.cpp", "  if (u >= s.critical) return OverloadState::kCritical;",
     "  if (u > s.critical) return OverloadState::kCritical;", "critical at exactly the threshold missed"),
    ("daemon/model/cabinet.cpp", "  const double derated = cab.feed_capacity_w * cab.derating;",
     "  const double derated = cab.feed_capacity_w;", "derating ignored"),
    ("daemon/model/cabinet.cpp", "    cs.powered = !all_report_outlets && *cs.power_w > powered_threshold_w;",
     "    cs.powered = !all_report_outlets && *cs.power_w >= powered_threshold_w;",
     "powered at exactly the threshold"),
    ("daemon/model/cabinet.cpp", "  if (nfeeds > 0 && known == nfeeds) {", "  if (nfeeds > 0 && known > 0) {",
     "cabinet power from a partial sum of feeds"),
    ("daemon/model/site.cpp", "      if (f) pv.pue = *f / *it;", "      if (f) pv.pue = *it / *f;",
     "PUE inverted"),
    ("daemon/model/model.cpp", "now - e.health.last_success <= bound;", "now - e.health.last_success < bound;",
     "staleness bound exclusive"),
    ("daemon/model/model.cpp", "  if (r->with_data == 0) return DeviceState::kNoData;", "",
     "a device with no value counted as up"),
    ("daemon/model/state.cpp", "  cst.overload.update(cond(ov.warning, ov.warning - ov.hysteresis),",
     "  cst.overload.update(cond(ov.warning, ov.warning),", "no hysteresis below warning"),
    ("daemon/model/state.cpp", "                      cond(ov.critical, ov.critical - ov.hysteresis), now, ov.hold);",
     "                      cond(ov.critical, ov.critical), now, ov.hold);", "no hysteresis below critical"),
    # ---- config: checks
    ("daemon/config/profile.cpp", "        if (a.first == b.first && a.last == b.last) continue;",
     "        continue;", "overlapping registers accepted"),
]


def run(cmd, timeout):
    return subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=timeout, text=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build-dir", default="build")
    ap.add_argument("--only", default="", help="run the mutants whose description contains this")
    ap.add_argument("--gtest-filter", default="-Mqtt*:History*:HttpServer*",
                    help="unit tests to run against each mutant (default: all but the MQTT, "
                         "history and HTTP server suites, which touch none of the mutated code "
                         "and take most of the time; '*' runs all)")
    args = ap.parse_args()
    build = os.path.join(ROOT, args.build_dir)
    tests = os.path.join(build, "tests", "facility_unit_tests")
    chosen = [m for m in MUTANTS if args.only in m[3]]
    # Every original must be where the list says, exactly once, before anything is touched.
    for path, old, _, what in chosen:
        n = open(os.path.join(ROOT, path)).read().count(old)
        if n != 1:
            sys.exit(f"{path}: the original of \"{what}\" occurs {n} times (expected 1): update "
                     "tests/mutation/run.py")
    if run(["ninja", "-C", build, "facility_unit_tests"], 3600).returncode != 0:
        sys.exit("the unmutated unit tests do not build")
    gtest = [tests, "--gtest_brief=1", f"--gtest_filter={args.gtest_filter}"]
    if run(gtest, 900).returncode != 0:
        sys.exit("the unmutated unit tests fail")
    killed, survived, t0 = 0, [], time.time()
    for i, (path, old, new, what) in enumerate(chosen, 1):
        full = os.path.join(ROOT, path)
        original = open(full).read()
        try:
            with open(full, "w") as f:
                f.write(original.replace(old, new, 1))
            b = run(["ninja", "-C", build, "facility_unit_tests"], 3600)
            if b.returncode != 0:
                verdict = "did not compile (a broken mutant: fix its text)"
                survived.append(what)
            else:
                try:
                    r = run(gtest, 900)
                    # A parameterised test's line goes on ", where GetParam() = <bytes>": cut
                    # there, or the test (named before it) would not be counted.
                    failed = [l.split("] ", 1)[1].split(", where GetParam()")[0]
                              for l in r.stdout.splitlines() if l.startswith("[  FAILED  ]")]
                    failed = [n for n in failed if "," not in n and "test" not in n[:7]]
                    if r.returncode != 0:
                        killed += 1
                        verdict = f"killed by {len(failed)} test(s): {', '.join(failed[:3])}"
                    else:
                        survived.append(what)
                        verdict = "SURVIVED"
                except subprocess.TimeoutExpired:
                    killed += 1
                    verdict = "killed (the tests hung)"
        finally:
            with open(full, "w") as f:
                f.write(original)
        print(f"{i:2}/{len(chosen)} {path.split('/')[-1]:<14} {what:<45} {verdict}", flush=True)
    run(["ninja", "-C", build, "facility_unit_tests"], 3600)  # back to the real code
    n = len(chosen)
    print(f"\nkilled {killed} of {n} mutants ({100.0 * killed / max(1, n):.0f} %) in "
          f"{time.time() - t0:.0f} s" + (f"; survived: {'; '.join(survived)}" if survived else ""))
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
