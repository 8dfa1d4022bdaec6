"""The Grafana dashboard's PromQL (config/grafana/facilityd-dashboard.json): every expression of
its panels, template variables and annotations, with the template variables substituted, and
the metric names they refer to. Shared by test_grafana_dashboard.py (static: promtool, names)
and test_prometheus.py (live: every expression against a real Prometheus). Standard library.
"""
import json
import os
import re

FUNCTIONS = {
    # aggregations and keywords
    "sum", "min", "max", "avg", "count", "count_values", "topk", "bottomk", "quantile", "stddev",
    "stdvar", "group", "by", "without", "on", "ignoring", "group_left", "group_right", "and",
    "or", "unless", "offset", "bool", "atan2",
    # functions used (and common ones)
    "rate", "irate", "increase", "delta", "idelta", "deriv", "changes", "resets", "time",
    "timestamp", "vector", "scalar", "abs", "ceil", "floor", "round", "clamp", "clamp_min",
    "clamp_max", "ln", "log2", "log10", "exp", "sqrt", "histogram_quantile", "label_replace",
    "label_join", "sort", "sort_desc", "absent", "absent_over_time", "avg_over_time",
    "min_over_time", "max_over_time", "sum_over_time", "count_over_time", "last_over_time",
    "quantile_over_time", "predict_linear", "holt_winters", "day_of_week", "hour", "minute",
    "month", "year", "days_in_month", "inf", "nan",
}


def load(src):
    with open(os.path.join(src, "config/grafana/facilityd-dashboard.json")) as f:
        return json.load(f)


def panels(dash):
    for p in dash.get("panels", []):
        yield p
        yield from p.get("panels", [])


def raw_expressions(dash):
    """(where, expression) for every PromQL expression the dashboard evaluates."""
    out = []
    for p in panels(dash):
        for t in p.get("targets", []):
            if t.get("expr"):
                out.append((f"panel '{p.get('title')}' {t.get('refId')}", t["expr"]))
    for v in dash.get("templating", {}).get("list", []):
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        if v.get("type") == "query" and q:
            m = re.match(r"^\s*label_values\((.*),\s*([a-zA-Z_]\w*)\)\s*$", q)
            out.append((f"variable ${v['name']}", m.group(1) if m else q))
    for a in dash.get("annotations", {}).get("list", []):
        if a.get("expr"):
            out.append((f"annotation '{a.get('name')}'", a["expr"]))
    return out


def substitute(expr, values):
    """Template variables replaced: values maps name -> regex (job, site, room)."""
    expr = expr.replace("$__rate_interval", "5m").replace("$__interval", "1m")
    expr = expr.replace("$__range", "1h")
    for name, value in values.items():
        expr = expr.replace("${" + name + "}", value).replace("$" + name, value)
    return expr


def metric_names(expr):
    """Metric (and recorded series) names an expression selects."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings
    e = re.sub(r"\{[^}]*\}", "", e)                # label matchers
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", e)
    e = re.sub(r"\[[^\]]*\]", "", e)               # ranges
    names = set()
    # Identifiers not glued to a number (5m, 1e3, 0.95 are not names).
    for tok in re.findall(r"(?<![\w.])[a-zA-Z_:][a-zA-Z0-9_:]*", e):
        if tok not in FUNCTIONS:
            names.add(tok)
    return names
