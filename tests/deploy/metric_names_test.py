#!/usr/bin/env python3
"""Every metric name deploy/ uses is one a real node exports.

Collects the names the Grafana dashboard's expressions and the alert rules'
expressions reference, then scrapes /metrics of three real `qallow run`
nodes: configs/default.json on its own, and a datacentre and an edge
(configs/datacentre.json, configs/edge.json with keys, paths and broker
rewritten into a temporary directory) on a real mosquitto on a free port.
Each scrape must pass `promtool check metrics`; every referenced name must
be in the union of the scrapes.  Names that appear only once something has
happened (an edge's birth, a receipt) are awaited, up to a deadline.

Usage: metric_names_test.py QALLOW_BIN PLUGIN_DIR SOURCE_DIR
A missing promtool fails (scripts/setup.sh --tests installs it)."""
import ctypes
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
import urllib.request

# A slow machine (sanitizers, qemu) stretches every deadline, as
# tests/support does.
SCALE = float(os.environ.get("QALLOW_TEST_TIME_SCALE", "1") or 1)
NAME = re.compile(r"\b((?:qallow|process)_[a-zA-Z0-9_:]*|up)\b")
# `up` is Prometheus's own, one per target: never in an exposition.
PROMETHEUS_OWN = {"up"}
SERVING = re.compile(r"http serving [^\n]* on http://127\.0\.0\.1:([0-9]+)/")


def expr_names(expr):
    """Metric names in one PromQL expression (not label values, not
    functions: only identifiers of our prefixes, and `up` outside quotes)."""
    unquoted = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    return {m.group(1) for m in NAME.finditer(unquoted)}


def referenced_names(source):
    """{name: [where it is used]} from the dashboard and the alert rules."""
    used = {}
    dash = json.load(open(os.path.join(source, "deploy/grafana/qallow.json")))
    for p in dash["panels"]:
        for t in p.get("targets", []):
            for n in expr_names(t["expr"]):
                used.setdefault(n, []).append("dashboard panel " + repr(p["title"]))
    for v in dash["templating"]["list"]:
        for n in expr_names(v.get("definition", "")):
            used.setdefault(n, []).append("dashboard variable " + v["name"])
    for alert, expr in alert_exprs(os.path.join(source, "deploy/prometheus/alerts.yml")):
        for n in expr_names(expr):
            used.setdefault(n, []).append("alert " + alert)
    return used


def alert_exprs(path):
    try:
        import yaml
    except ImportError:  # without PyYAML: the whole file, descriptions too (stricter)
        return [("(alerts.yml, any line)", open(path).read())]
    doc = yaml.safe_load(open(path))
    return [(r.get("alert") or r.get("record"), r["expr"]) for g in doc["groups"] for r in g["rules"]]


def exported_names(text):
    """Sample names of an exposition, and for histograms and summaries the
    family's own name as well (X_bucket, X_sum, X_count -> X)."""
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    names = set()
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0)
            names.add(name)
            for suffix in ("_bucket", "_sum", "_count"):
                base = name[: -len(suffix)]
                if name.endswith(suffix) and types.get(base) in ("histogram", "summary"):
                    names.add(base)
    return names


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(condition, seconds, what):
    deadline = time.monotonic() + seconds * SCALE
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    print(f"gave up after {seconds * SCALE:.0f} s waiting for {what}")
    return False


def die_with_parent():
    # A test killed by CTest's timeout takes its nodes and broker with it.
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Proc:
    def __init__(self, name, args, workdir):
        self.name, self.err_path = name, os.path.join(workdir, name + ".err")
        self.p = subprocess.Popen(args, stdout=open(os.path.join(workdir, name + ".out"), "w"),
                                  stderr=open(self.err_path, "w"), stdin=subprocess.DEVNULL,
                                  preexec_fn=die_with_parent)
        self.port = 0
        self.scrape_error = "no scrape yet"

    def log(self):
        return open(self.err_path, errors="replace").read()

    def running(self):
        return self.p.poll() is None

    def wait_http(self):
        def served():
            m = SERVING.search(self.log())
            self.port = int(m.group(1)) if m else 0
            return self.port != 0 or not self.running()
        wait_until(served, 30, f"{self.name} to serve HTTP")
        if not self.port:
            raise RuntimeError(f"{self.name} serves no HTTP (exit {self.p.poll()}):\n{self.log()}")

    def scrape(self):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=10) as r:
                return r.read().decode()
        except OSError as e:  # HTTPError included: a 4xx/5xx answer
            self.scrape_error = str(e)
            return ""

    def stop(self, sig=signal.SIGTERM):
        if self.running():
            self.p.send_signal(sig)
            try:
                self.p.wait(20 * SCALE)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


def start_broker(tmp, port, procs):
    conf = os.path.join(tmp, "mosquitto.conf")
    open(conf, "w").write(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
    broker = Proc("mosquitto", [shutil.which("mosquitto", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin"),
                                "-c", conf], tmp)
    procs.append(broker)

    def port_open():
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0 or not broker.running()
    if not wait_until(port_open, 10, "the broker's port") or not broker.running():
        raise RuntimeError("mosquitto did not start:\n" + broker.log())


def cluster_config(source, tmp, name, node, port):
    """configs/<name>.json with its paths in tmp, the broker on `port`,
    HTTP on a free port."""
    c = json.load(open(os.path.join(source, "configs", name + ".json")))
    c["ticks"] = 1_000_000_000
    c["ledger"].update(path=os.path.join(tmp, node, "ledger.jsonl"), key=os.path.join(tmp, "keys", node + ".key"))
    f = c["federation"]
    f.update(broker=f"tcp://127.0.0.1:{port}", trust=os.path.join(tmp, "trust"))
    if "controllers" in f:
        f["controllers"] = os.path.join(tmp, "controllers")
    if "cluster_ledger" in f:
        f["cluster_ledger"] = os.path.join(tmp, node, "cluster-ledger.jsonl")
    if "store" in f:
        f["store"]["sqlite"] = os.path.join(tmp, node, "fleet.db")
    c["http"] = {"port": 0}
    os.makedirs(os.path.join(tmp, node), exist_ok=True)
    path = os.path.join(tmp, node, "config.json")
    json.dump(c, open(path, "w"), indent=2)
    return path


def run_node(qallow, plugins, tmp, node, config, extra, procs):
    d = os.path.join(tmp, node)
    os.makedirs(d, exist_ok=True)
    p = Proc(node, [qallow, "run", "--config", config, "--plugins", plugins, "--out", os.path.join(d, "out"),
                    "--state-dir", os.path.join(d, "state"), "--socket", os.path.join(d, "ctl.sock"),
                    "--no-progress"] + extra, d)
    procs.append(p)
    return p


def start_nodes(qallow, plugins, source, tmp, procs):
    """default (alone), dc-1 and edge-1 (on a broker); each serving HTTP."""
    keys = subprocess.run([os.path.join(source, "scripts/cluster_keys.sh"), tmp, "dc-1", "edge-1"],
                          env=dict(os.environ, QALLOW=qallow), capture_output=True, text=True)
    if keys.returncode != 0:
        raise RuntimeError("scripts/cluster_keys.sh failed:\n" + keys.stdout + keys.stderr)
    port = free_port()
    start_broker(tmp, port, procs)
    nodes = [run_node(qallow, plugins, tmp, "default", os.path.join(source, "configs/default.json"),
                      ["--ticks", "1000000000", "--threads", "1", "--http-port", "0"], procs)]
    for name, node in (("datacentre", "dc-1"), ("edge", "edge-1")):
        nodes.append(run_node(qallow, plugins, tmp, node, cluster_config(source, tmp, name, node, port), [], procs))
    for n in nodes:
        n.wait_http()
    return nodes


def scrape_until_complete(nodes, wanted):
    """The last scrape of each node, once the union of their names holds
    every wanted one or the deadline passed (then the caller reports)."""
    last = {}

    def complete():
        for n in nodes:
            text = n.scrape()
            if text:
                last[n.name] = text
        ticking = all(re.search(r"^qallow_ticks_total [1-9]", last.get(n.name, ""), re.M) for n in nodes)
        have = set().union(*(exported_names(t) for t in last.values())) if last else set()
        return ticking and wanted <= have
    wait_until(complete, 30, "every referenced metric in the nodes' scrapes")
    return last


def check_scrapes(promtool, tmp, nodes, last):
    problems = []
    for n in nodes:
        text = last.get(n.name, "")
        if not re.search(r"^qallow_ticks_total [1-9]", text, re.M):
            problems.append(f"{n.name}: no scrape with qallow_ticks_total >= 1 (running: {n.running()}; "
                            f"last scrape error: {n.scrape_error})\n{n.log()[-3000:]}")
        path = os.path.join(tmp, n.name + ".metrics")
        open(path, "w").write(text)
        r = subprocess.run([promtool, "check", "metrics"], stdin=open(path), capture_output=True, text=True)
        print(f"{n.name}: {len(exported_names(text))} names; promtool check metrics: exit {r.returncode}")
        if r.returncode != 0:
            problems.append(f"{n.name}: promtool check metrics (exit {r.returncode}):\n{r.stdout}{r.stderr}")
    return problems


def main():
    qallow, plugins, source = sys.argv[1:4]
    promtool = shutil.which("promtool")
    if not promtool:
        print("promtool is not on PATH: scripts/setup.sh --tests installs it (Debian package prometheus)", file=sys.stderr)
        return 1
    if not shutil.which("mosquitto", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin"):
        print("FAIL: mosquitto is needed (scripts/setup.sh installs it)")
        return 1
    used = referenced_names(source)
    wanted = set(used) - PROMETHEUS_OWN
    print(f"{len(wanted)} metric names referenced: {' '.join(sorted(wanted))}")
    procs = []
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally below
    with tempfile.TemporaryDirectory(prefix="qallow-deploy-") as tmp:
        try:
            nodes = start_nodes(qallow, plugins, source, tmp, procs)
            last = scrape_until_complete(nodes, wanted)
            problems = check_scrapes(promtool, tmp, nodes, last)
        finally:
            for p in reversed(procs):  # edge, datacentre, default, then the broker
                p.stop()
        have = set().union(*(exported_names(t) for t in last.values()))
        for name in sorted(wanted - have):
            problems.append(f"{name} is not exported by any node (used by {', '.join(sorted(set(used[name])))})")
    for p in problems:
        print("FAIL:", p)
    print("OK" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
