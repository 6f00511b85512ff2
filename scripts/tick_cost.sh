#!/usr/bin/env bash
# Whole-process cost of a tick (docs/PERFORMANCE.md, "The tick loop"): 1e6
# ticks, one thread, telemetry.csv written every tick (and, with energy,
# measurements.csv: a row when its values changed, docs/DECISIONS.md), for
# phase12 and a 32-node phase13 alone, with ethics, and with ethics and
# energy (the default set).  Median and least wall time of N
# runs each (on a shared machine the least is the run least disturbed),
# and the default set's ratio to the phase alone; then the time the same
# bytes take to write with nothing else (dd), the floor the files set.
#
#   scripts/tick_cost.sh [BUILD_DIR ...]     (default: build/; several
#                                             builds run side by side, in turn)
#   QALLOW_TICK_RUNS=5 QALLOW_TICKS=1000000
#   TMPDIR=/dev/shm   the files in memory: no disk writeback of the last
#                     run's 150 MB competing with the next run
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
[ "$#" -gt 0 ] || set -- "$root/build"
runs="${QALLOW_TICK_RUNS:-3}"
ticks="${QALLOW_TICKS:-1000000}"
work="$(mktemp -d "${TMPDIR:-/tmp}/qallow-tick-cost.XXXXXX")"
trap 'rm -rf "$work"' EXIT

python3 - "$work" "$ticks" <<'PY'
import json, sys
work, ticks = sys.argv[1], int(sys.argv[2])
phases = {"phase12": {"plugin": "phase12", "params": {"eps": 0.0001}},
          "phase13": {"plugin": "phase13", "params": {"nodes": 32, "k": 0.001}}}
for name, phase in phases.items():
    for suffix, extra in (("alone", []), ("ethics", [{"plugin": "ethics"}]),
                          ("default", [{"plugin": "ethics"}, {"plugin": "energy"}])):
        c = {"seed": 42, "ticks": ticks, "threads": 1, "policy": {"ethics": "warn", "fault": "stop"},
             "instances": [phase] + extra}
        json.dump(c, open(f"{work}/{name}-{suffix}.json", "w"))
PY

for build in "$@"; do
  [ -x "$build/bin/qallow" ] || { echo "tick_cost: $build/bin/qallow is missing; build it first" >&2; exit 2; }
done
results="$work/results.txt"
for r in $(seq "$runs"); do
  for cfg in "$work"/*.json; do
    for build in "$@"; do
      name="$(basename "$cfg" .json)"
      rm -rf "$work/out" # a fresh directory, as a real run: no old file to truncate on the clock
      start=$(date +%s%N)
      "$build/bin/qallow" run -c "$cfg" --plugins "$build/lib/qallow/plugins" --out "$work/out" \
        --state-dir "$work/state" --no-ctl --no-progress > /dev/null 2> "$work/err" \
        || { cat "$work/err" >&2; exit 1; }
      echo "$build $name $(( ($(date +%s%N) - start) / 1000000 ))" >> "$results"
      if [ "$build" = "$1" ]; then # the first build's files set the floor below
        for f in "$work/out"/*.csv; do echo "$name $(basename "$f") $(stat -c %s "$f")"; done > "$work/$name.bytes"
      fi
    done
  done
done

# The floor the file writes alone set: the same bytes (rounded up to 64 KiB)
# in the same 64 KiB writes, with no model and no formatting (dd from
# /dev/zero), per set.
for r in $(seq "$runs"); do
  for cfg in "$work"/*.json; do
    name="$(basename "$cfg" .json)"
    rm -rf "$work/out" && mkdir -p "$work/out"
    start=$(date +%s%N)
    while read -r _ file bytes; do
      dd if=/dev/zero of="$work/out/$file" bs=64k count=$(( (bytes + 65535) / 65536 )) status=none
    done < "$work/$name.bytes"
    echo "writes $name $(( ($(date +%s%N) - start) / 1000000 ))" >> "$results"
  done
done

python3 - "$results" <<'PY'
import collections, statistics, sys
ms = collections.defaultdict(list)
for line in open(sys.argv[1]):
    build, name, t = line.split()
    ms[(build, name)].append(int(t))
builds = [b for b in dict.fromkeys(b for b, _ in ms) if b != "writes"]

def table(b, last):
    for phase in ("phase12", "phase13"):
        for stat, f in (("median", statistics.median), ("min", min)):
            v = {s: f(ms[(b, f"{phase}-{s}")]) for s in ("alone", "ethics", "default")}
            print(f"  {phase:8} {stat:6} alone {v['alone']:6.0f} ms  +ethics {v['ethics']:6.0f} ms  "
                  f"+ethics+energy {v['default']:6.0f} ms  {last(v)}")

for b in builds:
    print(b)
    table(b, lambda v: f"default/alone {v['default'] / v['alone']:.2f}")
print("file writes alone (the same bytes, dd from /dev/zero; the first build's files)")
table("writes", lambda v: f"extra for the default set {v['default'] - v['alone']:4.0f} ms")
PY
