#!/usr/bin/env python3
"""deploy/grafana/qallow.json: a dashboard Grafana imports (schema, the
${DS_PROMETHEUS} data source input, the job/instance variables, unique panel
ids, every query on that data source), and every PromQL expression parses:
`promtool check rules` on a rules file holding each one (with Grafana's
variables replaced by values) as a recording rule.

Usage: grafana_dashboard_test.py SOURCE_DIR.  A missing promtool fails (scripts/setup.sh --tests installs it)."""
import json
import os
import shutil
import subprocess
import sys
import tempfile



def expressions(dash):
    """(panel title, expr) for every query of every panel and variable."""
    out = []
    for p in dash["panels"]:
        for t in p.get("targets", []):
            out.append((p["title"], t["expr"]))
    for v in dash["templating"]["list"]:
        if v["type"] == "query":
            out.append(("variable " + v["name"], v["definition"]))
    return out


def grafana_to_promql(expr):
    """Grafana's variables replaced by what Grafana would put there."""
    for var, value in (("$__rate_interval", "1m"), ("$__range", "1h"), ("$__interval", "15s"),
                       ("$job", ".*"), ("$instance", ".*"), ("$signal", ".*")):
        expr = expr.replace(var, value)
    if "$" in expr:
        raise ValueError("unknown variable in: " + expr)
    return expr


def structure_problems(dash):
    problems = []
    if dash.get("schemaVersion", 0) < 36:
        problems.append(f"schemaVersion {dash.get('schemaVersion')}: 36 or later expected")
    names = {v["name"]: v for v in dash["templating"]["list"]}
    if names.get("DS_PROMETHEUS", {}).get("type") != "datasource":
        problems.append("no data source variable DS_PROMETHEUS")
    if [i["name"] for i in dash.get("__inputs", [])] != ["DS_PROMETHEUS"]:
        problems.append("__inputs should name DS_PROMETHEUS (the import asks for the data source)")
    for v in ("job", "instance"):
        if names.get(v, {}).get("type") != "query":
            problems.append(f"no query variable {v}")
    ids = [p["id"] for p in dash["panels"]]
    if len(ids) != len(set(ids)):
        problems.append(f"panel ids repeat: {sorted(ids)}")
    for p in dash["panels"]:
        for t in p.get("targets", []):
            if t.get("datasource", {}).get("uid") != "${DS_PROMETHEUS}":
                problems.append(f"panel {p['title']!r}: a query not on ${{DS_PROMETHEUS}}")
            if 'instance=~"$instance"' not in t["expr"]:
                problems.append(f"panel {p['title']!r}: {t['expr']} ignores the instance variable")
    return problems


def label_values_metric(expr):
    """label_values(METRIC{...}, label) -> METRIC{...} (a query promtool can parse)."""
    if expr.startswith("label_values(") and expr.endswith(")"):
        return expr[len("label_values("):expr.rindex(",")]
    return expr


def main():
    source = sys.argv[1]
    promtool = shutil.which("promtool")
    if not promtool:
        print("promtool is not on PATH: scripts/setup.sh --tests installs it (Debian package prometheus)", file=sys.stderr)
        return 1
    dash = json.load(open(os.path.join(source, "deploy/grafana/qallow.json")))
    problems = structure_problems(dash)
    exprs = expressions(dash)
    rules = [{"record": f"qallow_dashboard:query{i}", "expr": grafana_to_promql(label_values_metric(e))}
             for i, (_, e) in enumerate(exprs)]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "dashboard_rules.yml")
        # JSON is YAML: no YAML library needed.
        json.dump({"groups": [{"name": "dashboard", "rules": rules}]}, open(path, "w"), indent=1)
        r = subprocess.run([promtool, "check", "rules", path], capture_output=True, text=True)
        if r.returncode != 0:
            problems.append("promtool check rules on the dashboard's expressions:\n" + r.stdout + r.stderr)
            for i, (title, e) in enumerate(exprs):
                problems.append(f"  query{i} ({title}): {e}")
    print(f"{len(dash['panels'])} panels, {len(exprs)} expressions")
    for p in problems:
        print("FAIL:", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
