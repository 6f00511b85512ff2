#!/usr/bin/env python3
"""Prints the ratios of docs/PERFORMANCE.md from the JSON of scripts/bench.sh.

    scripts/bench_summary.py <out_dir>     (reads bench_dispatch.json, bench_models.json)

With --benchmark_repetitions the medians are used, otherwise the single runs.
"""
import json
import re
import sys
from pathlib import Path

DISPATCH_TARGET_NS = 5.0
VM_RATE_TARGET = 1e8
BANDWIDTH_RATIO_TARGET = 0.5


def load(path):
    """{run_name: entry}, medians preferred over single iterations."""
    data = json.loads(Path(path).read_text())
    runs, medians = {}, {}
    for b in data["benchmarks"]:
        name = b.get("run_name", b["name"])
        if b.get("run_type") == "aggregate":
            if b.get("aggregate_name") == "median":
                medians[name] = b
        else:
            runs.setdefault(name, b)  # first repetition if no aggregates
    runs.update(medians)
    return data.get("context", {}), runs


def args_of(name):
    return {k: int(v) for k, v in re.findall(r"(\w+):(\d+)", name)}


def find(runs, prefix, **want):
    for name, b in runs.items():
        if name.split("/")[0] != prefix:
            continue
        a = args_of(name)
        if all(a.get(k) == v for k, v in want.items()):
            return b
    return None


def per_call(runs, bench, calls):
    for name, b in runs.items():
        if name == f"{bench}/{calls}":
            return b["ns_per_call"]
    return float("nan")


def verdict(ok):
    return "MET" if ok else "MISSED"


def main():
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "out/bench")
    ctx, disp = load(out / "bench_dispatch.json")
    _, models = load(out / "bench_models.json")
    print(f"machine: {ctx.get('num_cpus')} CPUs at {ctx.get('mhz_per_cpu')} MHz (nominal), "
          f"load average {ctx.get('load_avg')}")

    print("\ndispatch, ns per call (wall time / calls):")
    print(f"  {'calls/tick':>10} {'inline':>8} {'pointer':>8} {'abi_step':>9} {'host_step':>10} {'overhead':>9}")
    for calls in (1, 8, 64):
        inl = per_call(disp, "BM_direct_inline", calls)
        ptr = per_call(disp, "BM_direct_pointer", calls)
        abi = per_call(disp, "BM_abi_step", calls)
        host = per_call(disp, "BM_host_step", calls)
        print(f"  {calls:>10} {inl:8.2f} {ptr:8.2f} {abi:9.2f} {host:10.2f} {host - ptr:9.2f}")
    ptr8, host8 = per_call(disp, "BM_direct_pointer", 8), per_call(disp, "BM_host_step", 8)
    ovh = host8 - ptr8
    print(f"  overhead per call at 8 instances = host_step - direct_pointer = {ovh:.2f} ns "
          f"(target < {DISPATCH_TARGET_NS} ns): {verdict(ovh < DISPATCH_TARGET_NS)}")

    print("\nnode updates per second (millions):")
    print(f"  {'nodes':>10} {'vm 1t':>8} {'vm 2t':>8} {'p13 1t':>8} {'p13 2t':>8}")
    for n in (1000, 10000, 100000, 1000000, 10000000):
        row = []
        for m in ("BM_vm", "BM_phase13"):
            for t in (1, 2):
                b = find(models, m, nodes=n, threads=t)
                row.append(b["node_updates_per_s"] / 1e6 if b else float("nan"))
        print(f"  {n:>10} " + " ".join(f"{x:8.1f}" for x in row))
    vm6 = find(models, "BM_vm", nodes=1000000, threads=1)
    if vm6:
        r = vm6["node_updates_per_s"]
        print(f"  vm at N=1e6, 1 thread: {r / 1e6:.0f} M/s = {r / VM_RATE_TARGET:.2f}x the 1e8/s target: "
              f"{verdict(r >= VM_RATE_TARGET)}")

    print("\nbandwidth at N=1e7 (GB/s = 1e9 B/s, nominal bytes: vm 16 B per node update):")
    for t in (1, 2):
        vm = find(models, "BM_vm", nodes=10000000, threads=t)
        p13 = find(models, "BM_phase13", nodes=10000000, threads=t)
        rw = find(models, "BM_stream_rw", elements=30000000, threads=t)
        rw1 = find(models, "BM_stream_rw", elements=10000000, threads=t)
        tri = find(models, "BM_stream_triad", elements=30000000, threads=t)
        if not (vm and rw and tri):
            continue
        v, s, s1, tr = vm["bytes_per_s"], rw["bytes_per_s"], rw1["bytes_per_s"] if rw1 else float("nan"), tri["bytes_per_s"]
        print(f"  {t} thread(s): vm {v / 1e9:.1f}, phase13 {p13['bytes_per_s'] / 1e9:.1f}, "
              f"stream_rw {s / 1e9:.1f} (3e7) / {s1 / 1e9:.1f} (1e7), triad {tr / 1e9:.1f}")
        print(f"    vm / stream_rw = {v / s:.2f}, vm / triad = {v / tr:.2f} "
              f"(target >= {BANDWIDTH_RATIO_TARGET}): {verdict(v / s >= BANDWIDTH_RATIO_TARGET)}")
        # The kernels every CPU without AVX-512 runs (issue 16), same run.
        for name, label in (("BM_vm_x86_64_v3", "x86-64-v3 (AVX2)"), ("BM_vm_baseline", "portable")):
            k = find(models, name, nodes=10000000, threads=t)
            if k:
                print(f"    vm {label} kernel: {k['bytes_per_s'] / 1e9:.1f} GB/s = {k['bytes_per_s'] / s:.2f} "
                      f"of stream_rw (target >= 0.7 for x86-64-v3)")


if __name__ == "__main__":
    main()
