#!/usr/bin/env python3
"""Generate config/demo/facilityd.yaml, the demo inventory for facilityd and facility-sim.

The demo has three sites and 120 cabinets. It follows docs section 5, "Proposed demo
configuration", of the site reference notes. The real figures are the planned cabinet
counts, the rated-power classes, the 20 A circuits and the occupancy ratios. The rest is
synthetic: room layout, cooling, meters, loads, temperatures, PUE and endpoints. The
header of the generated file says which is which.

Run it from anywhere, with the Python 3 standard library only:

    scripts/gen-demo-config.py            # (re)write config/demo/facilityd.yaml
    scripts/gen-demo-config.py --check    # exit 1 if the committed file is out of date
    scripts/gen-demo-config.py -o FILE    # write somewhere else ("-" = stdout)

The output is deterministic. Pseudo-random loads and temperatures come from a hash of a
fixed seed and the cabinet id, not from the `random` module, so the output does not depend
on the Python version. Adding or removing a cabinet does not change the values of the others.
"""

import argparse
import hashlib
import os
import re
import sys

SEED = "facilityd-demo-v1"

# Modbus TCP gateways. The integration test remaps ports with a regex on
# "tcp://127.0.0.1:PORT", so every endpoint must keep exactly that form.
GATEWAY_HOST = "127.0.0.1"
FIRST_PORT = 15020
MAX_UNIT_ID = 247

PROFILE_PDU_1PH = "generic-pdu-1ph"
PROFILE_PDU_1PH_CURRENT = "generic-pdu-1ph-current"  # voltage and current only
PROFILE_PDU_3PH = "generic-pdu-3ph"
PROFILE_METER = "generic-energy-meter"
PROFILE_CRAH = "generic-crah"
PROFILE_RACK_SENSOR = "generic-rack-sensor"

METER_INTERVAL = "10s"  # meters are polled faster than the 15 s default (PUE, energy)

# Ordinary sold/internal cabinets draw 45-75 % of their rating; GPU cabinets draw 85-92 %.
LOAD_RANGE = (0.45, 0.75)
GPU_LOAD_RANGE = (0.85, 0.92)
INLET_RANGE_C = (21.0, 25.0)

# Hand-picked scenario cabinets (cabinet ids are unique within their site).
HIGH_LOADS = {  # a few ordinary cabinets near their limit (above 0.80, below 1.0)
    ("hl1", "2FA-A01-03"): 0.84,
    ("hl1", "2FA-A03-07"): 0.81,
    ("wc1", "1FA-A02-02"): 0.86,
    ("bj-lease", "BJ1-A02-09"): 0.83,
}
OVERLOADS = {  # exactly one cabinet above its rating: the overload alert scenario
    ("hl1", "2FA-A02-06"): 1.04,
}
HOT_SPOTS_C = {  # exactly one inlet above the ASHRAE recommended 27 degC
    ("hl1", "2FA-A03-10"): 29.5,
}

BREAKER_20A = {"amps": 20, "volts": 220, "phases": 1}  # 20 A x 220 V = 4.4 kW

# Cabinet classes: the rating (and, for GPU cabinets, the overload thresholds) shared by a
# room's cabinets. A class's 8.8 kW contract is already a continuous rating, so no derating.
CABINET_CLASSES = [
    ({"id": "std-20a", "breaker": BREAKER_20A}, "4.4 kW: 20 A x 220 V, derated 80 % on failover"),
    ({"id": "std-4.4kw", "rated_kw": 4.4}, "4.4 kW contract, no breaker data"),
    ({"id": "gpu-8.8kw", "rated_kw": 8.8, "derating": 1.0,
      "overload": {"warning": 0.92, "critical": 0.98}},
     "8.8 kW GPU cabinets, run hot on purpose: later thresholds"),
]

# One PDU that reports only voltage and current: its feed's power is estimated (synthetic).
CURRENT_ONLY_PDUS = {("hl1", "2FA-A04-03", "B")}

# Simulated energy-counter events (synthetic): hl1's UPS-output meter passes the top of its
# 32-bit register 5 simulated minutes after the simulator starts; one leased-room PDU reboots
# (its counter restarts from 0) after 400 s.
ENERGY_WRAPS = {"hl1-meter-ups": "300s"}
ENERGY_RESETS = {"bj-lease-BJ1-A01-05-pdu-a": "400s"}

# Cooling sized per room so that N+1 (all units but the largest) carries the room's mean IT
# heat times this margin (synthetic). The GPU hall is the tight one.
COOLING_MARGIN = {"2F-A": 1.3, "2F-G": 1.18, "1F-A": 1.3}

# Huailai's ramp plan (上电机柜: 570 -> 1,200 -> 1,650 of 1,700 powered in years 2, 3 and 4),
# scaled to the 48 cabinets of the demo sample: 570 x 48 / 1700 = 16.1, 1200 x 48 / 1700 = 33.9,
# 1650 x 48 / 1700 = 46.6. The dates (years 2-4 starting each July) are synthetic.
HL1_PLAN = [("2024-07-01", 16), ("2025-07-01", 34), ("2026-07-01", 47)]

# ---- The inventory --------------------------------------------------------------------------
#
# A room: id, name, code (prefix of its cabinet ids), rows as (row id, cabinet count),
# rating (either {"rated_kw": x} or {"breaker": {...}}), pdu profile, status rule, load range.
# A status rule is a function (index among the room's cabinets, cabinet count) -> status.


def hl1_general_status(i, n):
    # 39 of 40 powered (97.5 %, scenario year 4 = 97.06 %). The last cabinet is free.
    # Powered cabinets are sold:internal = 2:1 (year 4: 1,100 external : 550 internal).
    if i == n - 1:
        return "free"
    return "internal" if i % 3 == 2 else "sold"


def hl1_gpu_status(i, n):
    # Synthetic split: the GPU hall is mostly the operator's own GPU cloud.
    return "sold" if i in (1, 4, 6) else "internal"


def wc1_status(i, n):
    # Phase 1 recently energized: per row of 8, positions 7-8 are not yet let (8 free).
    # Of the 24 powered, every fourth is internal (18 sold, 6 internal). Synthetic.
    pos = i % 8
    if pos >= 6:
        return "free"
    powered_index = (i // 8) * 6 + pos
    return "internal" if powered_index % 4 == 3 else "sold"


def bj_status_beijing(i, n):
    return "sold"


def bj_status_langfang(i, n):
    # 39 of 40 leased cabinets resold (97.5 %, cf. 97.49 % sell-through 2023Q1): one free.
    return "free" if i == n - 1 else "sold"


SITES = [
    {
        "id": "hl1",
        "name": "Huailai phase 1, building 2 (Zhangjiakou, Hebei)",
        "ownership": "self_built",
        "planned_cabinets": 48,  # Huailai's 1,700, scaled to the 48-cabinet sample
        "pue_category": None,  # every IT meter says its category in its role
        "plan": HL1_PLAN,
        "facility": None,
        "simulate": {"pue": 1.30},
        "rooms": [
            {
                "id": "2F-A", "name": "2F-A general hall (4.4 kW, 20 A)", "code": "2FA",
                "rows": [("A01", 10), ("A02", 10), ("A03", 10), ("A04", 10)],
                "rating": {"class": "std-20a"},
                "pdu_profile": PROFILE_PDU_1PH,
                "status": hl1_general_status,
                "load_range": LOAD_RANGE,
                "cooling": [("crah", 4)],
            },
            {
                "id": "2F-G", "name": "2F-G GPU hall (8.8 kW)", "code": "2FG",
                "rows": [("G01", 8)],
                "rating": {"class": "gpu-8.8kw"},
                "pdu_profile": PROFILE_PDU_3PH,
                "status": hl1_gpu_status,
                "load_range": GPU_LOAD_RANGE,
                "cooling": [("inrow", 3)],
            },
        ],
        "meters": [("main", "facility_total", "utility main incomer"),
                   ("ups", "it_at_ups_output", "UPS output (IT, PUE category 1)"),
                   ("pdu-out", "it_at_pdu_output", "floor PDU outputs (IT, PUE category 2)"),
                   ("cooling", "cooling", "cooling distribution board")],
    },
    {
        "id": "wc1",
        "name": "Wenchang phase 1 (Hainan)",
        "ownership": "self_built",
        "planned_cabinets": 200,  # Wenchang's 2,000, scaled like sites.md: 32 delivered = 16 %
        "pue_category": 1,  # of its it_total meter (the pre-category role, kept for compatibility)
        "plan": None,
        "facility": {"capacity_reserve": 0.15},  # synthetic: a larger reserve for a young site
        "simulate": {"pue": 1.38},
        "rooms": [
            {
                "id": "1F-A", "name": "1F-A general hall (4.4 kW)", "code": "1FA",
                "rows": [("A01", 8), ("A02", 8), ("A03", 8), ("A04", 8)],
                "rating": {"class": "std-4.4kw"},
                "pdu_profile": PROFILE_PDU_1PH,
                "status": wc1_status,
                "load_range": LOAD_RANGE,
                "cooling": [("crah", 3)],
            },
        ],
        "meters": [("main", "facility_total", "utility main incomer"),
                   ("ups", "it_total", "UPS output (IT at pue_category 1)"),
                   ("cooling", "cooling", "cooling distribution board")],
    },
    {
        "id": "bj-lease",
        "name": "Greater Beijing leased rooms",
        "ownership": "leased",
        "planned_cabinets": None,  # leased: the inventory is the whole contract
        # 2023Q1 average buy and sell prices of leased cabinets, CNY per cabinet-month.
        "report": {"price_per_cabinet_month": 4497, "sell_price_per_cabinet_month": 5056},
        "pue_category": None,
        "plan": None,
        "facility": None,
        "simulate": None,
        "rooms": [
            {
                "id": "BJ1", "name": "Beijing leased room", "code": "BJ1",
                "rows": [("A01", 12), ("A02", 12)],
                "rating": {"class": "std-4.4kw"},
                "pdu_profile": PROFILE_PDU_1PH,
                "status": bj_status_beijing,
                "load_range": LOAD_RANGE,
                "cooling": [],  # landlord's equipment, not polled
            },
            {
                "id": "LF1", "name": "Langfang leased room", "code": "LF1",
                "rows": [("B01", 8), ("B02", 8)],
                "rating": {"class": "std-4.4kw"},
                "pdu_profile": PROFILE_PDU_1PH,
                "status": bj_status_langfang,
                "load_range": LOAD_RANGE,
                "cooling": [],
            },
        ],
        "meters": False,  # landlord's meters: no facility_total, no it_total -> no PUE
    },
]

HEADER = """\
# generated by scripts/gen-demo-config.py, do not edit by hand.
# Change the script and run it again: scripts/gen-demo-config.py
#
# facilityd demo inventory: 3 sites and 120 cabinets (240 PDUs, 120 rack sensors,
# 10 cooling units, 7 meters). The Modbus devices are served by facility-sim, which
# reads this same file. The daemon ignores every `simulate:` key.
#
# REAL figures, from the public filings summarised in the site reference notes:
#   * hl1: Huailai phase 1 plans 1,700 cabinets of 4.4 kW, all built; the demo samples 48 of
#     them, so planned_cabinets is 48 and ratios against the plan keep their real meaning.
#   * 4.4 kW = a 20 A circuit (modelled as 20 A x 220 V single phase), and the 8.8 kW
#     density class (a peer's AI park).
#   * wc1: Wenchang plans 2,000 cabinets and phase 1 delivered 313 (15.65 %); the demo has
#     32 delivered of planned_cabinets 200 (16 %), the same ratio at a tenth of the scale.
#   * The ratios in hl1 2F-A: 39 of 40 powered (97.5 %; year 4 of the plan is 97.06 %),
#     and sold : internal = 2 : 1 (year 4: 1,100 external : 550 internal).
#   * bj-lease: 39 of 40 leased cabinets resold (97.5 %; sell-through 2023Q1 was 97.49 %).
#     The landlord owns the cooling and the meters, so nothing of theirs is polled.
#   * hl1's build-out plan follows Huailai's ramp of powered cabinets (570 -> 1,200 -> 1,650
#     of 1,700 in years 2-4), scaled to the 48-cabinet sample: 16 -> 34 -> 47.
#   * Report prices: Huailai's list price of 5.30万 CNY per 4.4 kW cabinet-year (used for
#     hl1, and for wc1, whose price is not published); bj-lease's average buy price of
#     4,497 and sell price of 5,056 CNY per cabinet-month (2023Q1).
#
# SYNTHETIC (assumptions made for the demo; no source gives them):
#   * The inventory is a small sample: 48 of hl1's 1,700 cabinets, 32 for wc1 (about
#     1:10 of the 313 delivered in phase 1), and 40 of the roughly 3,100 leased cabinets.
#     The room names, room splits and row layouts are made up.
#   * Wenchang's 4.4 kW density, the 3-phase PDUs in the GPU hall, and 2 PDUs (feeds A/B)
#     per cabinet.
#   * Cooling: 4 CRAH units in hl1 2F-A, 3 in-row units in hl1 2F-G, 3 CRAH units in wc1,
#     each room's units sized so that N+1 carries 1.3 x its mean IT heat (1.18 x in the GPU
#     hall). The meters are a utility main, a UPS output (hl1: it_at_ups_output; wc1: the
#     older it_total role) and a cooling board per self-built site, plus a floor-PDU output
#     meter in hl1 (it_at_pdu_output: PUE category 2 next to category 1).
#   * The dates of hl1's plan (each year starting in July), the 80 % continuous-load
#     derating, the GPU class's later overload thresholds (92 % / 98 %), the 10 % capacity
#     reserve (15 % in wc1) and the PDU nominal voltage and power factor (220 V, 0.95).
#   * Device quirks: hl1 2FA-A04-03's B-feed PDU reports voltage and current only, so its
#     power is estimated; hl1's UPS meter's 32-bit energy counter wraps 5 simulated minutes
#     after the simulator starts; bj-lease BJ1-A01-05's A-feed PDU reboots after 400 s and
#     its energy counter restarts from 0. Rack sensors report U-space (rack units).
#   * Every register map (config/profiles/generic-*.yaml). None comes from a vendor manual.
#     Nor does the 42U cabinet height and the U-space the simulator serves.
#   * simulate.pue (hl1 1.30, wc1 1.38 for the tropical climate). No source gives any PUE,
#     so show PUE only as a simulated value.
#   * Loads: from a hash of a fixed seed, 0.45-0.75 of rated for sold/internal cabinets
#     and 0.85-0.92 in the GPU hall. Four cabinets are set by hand to 0.81-0.86, and one
#     (hl1 2FA-A02-06) to 1.04, over its rating. Free cabinets draw 0.
#   * Inlet temperatures 21-25 degC, except one hot spot (hl1 2FA-A03-10 at 29.5 degC,
#     above the ASHRAE recommended 27 degC).
#   * Endpoints: one Modbus TCP gateway per row (its PDUs and rack sensors as unit ids
#     1..N) and, per self-built site, one gateway for the meters and cooling units. All are
#     tcp://127.0.0.1 with consecutive ports from 15020.
"""


# ---- Helpers --------------------------------------------------------------------------------


def unit_interval(*key):
    """A stable pseudo-random number in [0, 1) from the seed and a key."""
    digest = hashlib.sha256(":".join((SEED,) + key).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def pick(lo, hi, *key):
    return lo + (hi - lo) * unit_interval(*key)


_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$|^[0-9][A-Za-z0-9_-]*[A-Za-z][A-Za-z0-9_-]*$")
_RESERVED = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def scalar(v):
    """One YAML scalar. Strings are left plain only when no YAML reader can mistake them."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        text = f"{v:.4f}".rstrip("0").rstrip(".")
        return text if text not in ("", "-0") else "0"
    s = str(v)
    if _PLAIN.match(s) and s.lower() not in _RESERVED and not re.fullmatch(r"[0-9eE._+-]+", s):
        return s
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def flow(d):
    """A flow mapping {k: v, ...}; values may be scalars, lists or nested dicts."""
    parts = []
    for k, v in d.items():
        if isinstance(v, dict):
            parts.append(f"{k}: {flow(v)}")
        elif isinstance(v, list):
            parts.append(f"{k}: [" + ", ".join(scalar(x) for x in v) + "]")
        else:
            parts.append(f"{k}: {scalar(v)}")
    return "{" + ", ".join(parts) + "}"


class Gateways:
    """Hands out consecutive ports on GATEWAY_HOST and unit ids per gateway."""

    def __init__(self):
        self.next_port = FIRST_PORT
        self.list = []  # (endpoint, description, device count)

    def new(self, description):
        endpoint = f"tcp://{GATEWAY_HOST}:{self.next_port}"
        self.next_port += 1
        self.list.append([endpoint, description, 0])
        return endpoint

    def count(self, endpoint, unit):
        if not 1 <= unit <= MAX_UNIT_ID:
            raise SystemExit(f"unit id {unit} on {endpoint} is outside 1..{MAX_UNIT_ID}")
        for g in self.list:
            if g[0] == endpoint:
                g[2] += 1


# ---- Building the inventory -----------------------------------------------------------------


def cabinet_load(site_id, cab_id, status, load_range):
    key = (site_id, cab_id)
    if status == "free":
        return 0
    if key in OVERLOADS:
        return OVERLOADS[key]
    if key in HIGH_LOADS:
        return HIGH_LOADS[key]
    return round(pick(load_range[0], load_range[1], "load", site_id, cab_id), 2)


def inlet_c(site_id, cab_id):
    key = (site_id, cab_id)
    if key in HOT_SPOTS_C:
        return HOT_SPOTS_C[key]
    return round(pick(INLET_RANGE_C[0], INLET_RANGE_C[1], "inlet", site_id, cab_id), 1)


def room_rated_w(room):
    """Rated power of one cabinet of the room, from its class."""
    cls = next(c for c, _ in CABINET_CLASSES if c["id"] == room["rating"]["class"])
    if "breaker" in cls:
        b = cls["breaker"]
        return b["amps"] * b["volts"] * (3 ** 0.5 if b.get("phases", 1) == 3 else 1)
    return cls["rated_kw"] * 1000


def cooling_kw(heat_w, units, margin):
    """Capacity of each of `units` equal units so that units - 1 carry heat x margin, rounded
    up to 5 kW."""
    need_kw = heat_w * margin / (units - 1) / 1000
    return int(-(-need_kw // 5) * 5)


def build_site(site, gateways, out, stats):
    sid = site["id"]
    out.append(f"  - id: {scalar(sid)}")
    out.append(f"    name: {scalar(site['name'])}")
    out.append(f"    ownership: {site['ownership']}")
    if site["planned_cabinets"] is not None:
        out.append(f"    planned_cabinets: {site['planned_cabinets']}")
    if site["pue_category"] is not None:
        out.append(f"    pue_category: {site['pue_category']}"
                   "        # the it_total meter measures UPS output")
    if site["facility"]:
        out.append(f"    facility: {flow(site['facility'])}")
    if site.get("report"):
        out.append(f"    report: {flow(site['report'])}   # leased: buy and resale price per month")
    if site["plan"]:
        out.append("    build_out_plan:                # powered cabinets planned from each date")
        for date, powered in site["plan"]:
            out.append(f"      - {{date: {date}, powered: {powered}}}")
    if site["simulate"]:
        out.append(f"    simulate: {flow(site['simulate'])}")

    # Rooms, rows, cabinets; collect per-row device lists as we go.
    out.append("    rooms:")
    row_devices = []  # (room, row id, [cabinet ids])
    heat_w = {}  # room id -> mean IT heat, W (sum of rated x simulated load)
    for room in site["rooms"]:
        out.append(f"      - id: {scalar(room['id'])}")
        out.append(f"        name: {scalar(room['name'])}")
        out.append("        rows:")
        n_room = sum(n for _, n in room["rows"])
        i = 0
        for row_id, n in room["rows"]:
            out.append(f"          - id: {scalar(row_id)}")
            out.append("            cabinets:")
            cab_ids = []
            for pos in range(1, n + 1):
                cab_id = f"{room['code']}-{row_id}-{pos:02d}"
                status = room["status"](i, n_room)
                load = cabinet_load(sid, cab_id, status, room["load_range"])
                cab = {"id": cab_id}
                cab.update(room["rating"])
                cab["status"] = status
                cab["simulate"] = {"load": load}
                note = ""
                if (sid, cab_id) in OVERLOADS:
                    note = "  # synthetic: over its rating (overload alert)"
                elif (sid, cab_id) in HIGH_LOADS:
                    note = "  # synthetic: near its rating"
                out.append(f"              - {flow(cab)}{note}")
                cab_ids.append(cab_id)
                heat_w[room["id"]] = heat_w.get(room["id"], 0.0) + room_rated_w(room) * load
                stats["cabinets"] += 1
                stats["status_" + status] += 1
                stats[f"{sid}_cabinets"] += 1
                i += 1
            row_devices.append((room, row_id, cab_ids))

    # Devices.
    out.append("    devices:")
    if site["meters"] or any(room["cooling"] for room in site["rooms"]):
        ep = gateways.new(f"{sid} meters and cooling")
        n_meters = len(site["meters"] or [])
        out.append(f"      # Gateway {ep}: meters (units 1-{n_meters}) and cooling units"
                   " (11 and up).")
        for unit, (suffix, role, what) in enumerate(site["meters"] or [], start=1):
            dev = {"id": f"{sid}-meter-{suffix}", "kind": "meter", "profile": PROFILE_METER,
                   "endpoint": ep, "unit": unit, "interval": METER_INTERVAL, "role": role}
            note = ""
            if dev["id"] in ENERGY_WRAPS:
                dev["simulate"] = {"energy_wrap_after": ENERGY_WRAPS[dev["id"]]}
                note = "; synthetic: its energy counter wraps"
            out.append(f"      - {flow(dev)}  # {what}{note}")
            gateways.count(ep, unit)
            stats["meter"] += 1
        unit = 11
        for room in site["rooms"]:
            units = sum(count for _, count in room["cooling"])
            for kind_name, count in room["cooling"]:
                for k in range(1, count + 1):
                    dev = {"id": f"{sid}-{room['code']}-{kind_name}-{k}", "kind": "cooling",
                           "profile": PROFILE_CRAH, "endpoint": ep, "unit": unit,
                           "room": room["id"],
                           "capacity_kw": cooling_kw(heat_w[room["id"]], units,
                                                     COOLING_MARGIN[room["id"]])}
                    out.append(f"      - {flow(dev)}")
                    gateways.count(ep, unit)
                    unit += 1
                    stats["cooling"] += 1
    else:
        out.append("      # No meters or cooling units: the landlord owns them. IT power is the")
        out.append("      # sum of the PDUs; no PUE is computed for this site.")

    for room, row_id, cab_ids in row_devices:
        ep = gateways.new(f"{sid} {room['id']} row {row_id}")
        out.append(f"      # Gateway {ep}: room {room['id']} row {row_id}; per cabinet N"
                   " (1-based): PDU A = unit 3N-2, PDU B = 3N-1, rack sensor = 3N.")
        for pos, cab_id in enumerate(cab_ids, start=1):
            base = 3 * (pos - 1)
            prefix = f"{sid}-{cab_id}"
            for offset, feed in ((1, "A"), (2, "B")):
                current_only = (sid, cab_id, feed) in CURRENT_ONLY_PDUS
                dev = {"id": f"{prefix}-pdu-{feed.lower()}", "kind": "pdu",
                       "profile": PROFILE_PDU_1PH_CURRENT if current_only else room["pdu_profile"],
                       "endpoint": ep, "unit": base + offset, "cabinet": cab_id, "feed": feed}
                note = "  # synthetic: reports current only" if current_only else ""
                stats["pdu_current_only"] += current_only
                if dev["id"] in ENERGY_RESETS:
                    dev["simulate"] = {"energy_reset_after": ENERGY_RESETS[dev["id"]]}
                    note = "  # synthetic: reboots, its energy counter restarts from 0"
                out.append(f"      - {flow(dev)}{note}")
                gateways.count(ep, base + offset)
                stats["pdu"] += 1
            temp = inlet_c(sid, cab_id)
            dev = {"id": f"{prefix}-env", "kind": "rack_sensor", "profile": PROFILE_RACK_SENSOR,
                   "endpoint": ep, "unit": base + 3, "cabinet": cab_id,
                   "simulate": {"inlet_c": temp}}
            note = "  # synthetic hot spot" if (sid, cab_id) in HOT_SPOTS_C else ""
            out.append(f"      - {flow(dev)}{note}")
            gateways.count(ep, base + 3)
            stats["rack_sensor"] += 1


def generate():
    from collections import Counter

    stats = Counter()
    gateways = Gateways()
    body = []
    for site in SITES:
        build_site(site, gateways, body, stats)

    # Sanity checks on the scenario, so that a change to the tables above cannot quietly
    # break what the demo is meant to show.
    assert stats["cabinets"] == 120, stats
    assert len(OVERLOADS) == 1 and all(v > 1.0 for v in OVERLOADS.values())
    assert 3 <= len(HIGH_LOADS) <= 5 and all(0.80 < v < 1.0 for v in HIGH_LOADS.values())
    assert LOAD_RANGE[1] <= 0.80 and GPU_LOAD_RANGE[1] < 1.0
    assert all(b >= a for (_, a), (_, b) in zip(HL1_PLAN, HL1_PLAN[1:]))
    assert stats["pdu_current_only"] == len(CURRENT_ONLY_PDUS) == 1

    head = [HEADER.rstrip("\n"), "#"]
    head.append(f"# Totals: {stats['cabinets']} cabinets ({stats['status_sold']} sold, "
                f"{stats['status_internal']} internal, {stats['status_free']} free); "
                f"{stats['pdu']} PDUs, {stats['rack_sensor']} rack sensors,")
    head.append(f"# {stats['cooling']} cooling units, {stats['meter']} meters; "
                f"{len(gateways.list)} endpoints "
                f"({gateways.list[0][0]} .. {gateways.list[-1][0]}).")
    head.append("")
    head += [
        "daemon:",
        '  listen: "127.0.0.1:10044"',
        "  stale_after_intervals: 3      # older than 3 x the device's interval = stale",
        "  powered_threshold_w: 100      # a cabinet drawing more than this counts as powered",
        "",
        "mqtt:",
        "  enabled: true",
        '  broker: "tcp://127.0.0.1:18830"   # the demo script starts its own mosquitto here',
        "  client_id: facilityd-demo",
        "  topic_prefix: facility",
        "  qos: 1",
        "  publish_interval: 10s",
        "  keepalive: 30s",
        "",
        "history:                        # the history behind capacity reports (docs/reports.md)",
        "  minute_retention: 35d",
        "  hourly_retention: 730d",
        "",
        "report:                         # how reports value capacity; a site may override it",
        "  currency: CNY",
        "  price_per_cabinet_year: 53000 # Huailai's list price, 5.30万 per 4.4 kW cabinet-year",
        "",
        "defaults:",
        "  interval: 15s                 # PDUs, rack sensors and cooling; meters set 10s",
        "  timeout: 1s",
        "  rated_kw: 4.4",
        "  feeds: [A, B]",
        "",
        "facility:                       # the facility model (docs/config.md, facility)",
        "  derating: 0.8                 # a feed carries 80 % of its breaker continuously",
        "  nominal_voltage_v: 220        # for PDUs that report current only",
        "  nominal_power_factor: 0.95",
        "  overload: {warning: 0.80, critical: 0.95, hysteresis: 0.05, hold: 60s}",
        "  failover: {hysteresis: 0.02, hold: 60s}",
        "  inlet: {class: A1, hysteresis_c: 0.5, hold: 60s}   # ASHRAE recommended 18-27 degC",
        "  pue_min_coverage: 1.0         # PUE only when both terms are fully measured",
        "  pue_windows: [15m, 1h, 24h, 30d]",
        "  capacity_reserve: 0.1",
        "  cabinet_equivalent_kw: 4.4",
        "  peak_window: 24h",
        "",
        "cabinet_classes:",
    ] + [f"  - {flow(c)}  # {note}" for c, note in CABINET_CLASSES] + [
        "",
        "profiles_dir: ../profiles       # relative to this file: config/profiles",
        "",
        "sites:",
    ]
    return "\n".join(head + body) + "\n", stats, gateways


def main():
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    default_out = os.path.join(repo, "config", "demo", "facilityd.yaml")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-o", "--output", default=default_out,
                    help="file to write, '-' for stdout (default: %(default)s)")
    ap.add_argument("--check", action="store_true",
                    help="do not write; exit 1 if the output file differs from what "
                         "the script would generate")
    args = ap.parse_args()

    text, stats, gateways = generate()

    if args.check:
        try:
            with open(args.output, encoding="utf-8") as f:
                current = f.read()
        except OSError as e:
            print(f"{args.output}: {e.strerror}", file=sys.stderr)
            return 1
        if current != text:
            print(f"{args.output} is out of date: run scripts/gen-demo-config.py",
                  file=sys.stderr)
            return 1
        return 0

    if args.output == "-":
        sys.stdout.write(text)
    else:
        os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
        tmp = args.output + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, args.output)
        print(f"wrote {args.output}: {stats['cabinets']} cabinets, {stats['pdu']} PDUs, "
              f"{stats['rack_sensor']} rack sensors, {stats['cooling']} cooling units, "
              f"{stats['meter']} meters, {len(gateways.list)} endpoints", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
