#!/usr/bin/env bash
# Whole-process cost of a tick (docs/PERFORMANCE.md, "The tick loop"): 1e6
# ticks, one thread, telemetry.csv (and measurements.csv) written every
# tick, for phase12 and a 32-node phase13 alone, with ethics, and with
# ethics and energy (the default set).  Median wall time of N runs each,
# and the default set's ratio to the phase alone.
#
#   scripts/tick_cost.sh [BUILD_DIR ...]     (default: build/; several
#                                             builds run side by side, in turn)
#   QALLOW_TICK_RUNS=5 QALLOW_TICKS=1000000
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
[ "$#" -gt 0 ] || set -- "$root/build"
runs="${QALLOW_TICK_RUNS:-3}"
ticks="${QALLOW_TICKS:-1000000}"
work="$(mktemp -d /tmp/qallow-tick-cost.XXXXXX)"
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
      start=$(date +%s%N)
      "$build/bin/qallow" run -c "$cfg" --plugins "$build/lib/qallow/plugins" --out "$work/out" \
        --state-dir "$work/state" --no-ctl --no-progress > /dev/null 2> "$work/err" \
        || { cat "$work/err" >&2; exit 1; }
      echo "$build $name $(( ($(date +%s%N) - start) / 1000000 ))" >> "$results"
    done
  done
done

python3 - "$results" <<'PY'
import collections, statistics, sys
ms = collections.defaultdict(list)
for line in open(sys.argv[1]):
    build, name, t = line.split()
    ms[(build, name)].append(int(t))
builds = list(dict.fromkeys(b for b, _ in ms))
for b in builds:
    print(b)
    for phase in ("phase12", "phase13"):
        med = {s: statistics.median(ms[(b, f"{phase}-{s}")]) for s in ("alone", "ethics", "default")}
        print(f"  {phase:8} alone {med['alone']:6.0f} ms  +ethics {med['ethics']:6.0f} ms  "
              f"+ethics+energy {med['default']:6.0f} ms  default/alone {med['default'] / med['alone']:.2f}")
PY
