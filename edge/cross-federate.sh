#!/usr/bin/env bash
# An arm64 edge node (build-edge-arm64/bin/qallow-edge under
# qemu-aarch64-static) federating with an x86_64 datacentre (build/bin/qallow)
# through a local mosquitto on a free port.  Prints the datacentre's
# `qallow cluster status` after a few seconds.  The edge runs with
# EDGE_THREADS (default 2) worker threads, and an arm64 phase13 large enough
# for the worker pool to split its ticks must give the same telemetry with
# 1 and EDGE_THREADS threads (issue 12: multi-threaded arm64 in CI).
# Needs jq and mosquitto, not python3.
#
#   edge/cross-federate.sh [arm64-build-dir] [x86_64-build-dir] [seconds]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
arm="${1:-$root/build-edge-arm64}"
x86="${2:-$root/build}"
secs="${3:-5}"
threads="${EDGE_THREADS:-2}"
edge_bin="$arm/bin/qallow-edge"
dc_bin="$x86/bin/qallow"
edge_plugins="$(dirname "$(find "$arm" -path '*qallow/plugins/phase12.so' | head -1)")"
dc_plugins="$(dirname "$(find "$x86" -path '*qallow/plugins/phase12.so' | head -1)")"
export QEMU_LD_PREFIX=/
qemu="${QEMU:-qemu-aarch64-static}"
work="$(mktemp -d /tmp/qallow-cross-federate.XXXXXX)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  sleep 0.5
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  [ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT

# A free port: one nothing answers on, that mosquitto then manages to bind
# (another process may take it in between: try another).
port=""
for _ in $(seq 20); do
  p=$((20000 + RANDOM % 40000))
  (echo > /dev/tcp/127.0.0.1/"$p") 2>/dev/null && continue
  printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$p" > "$work/mosquitto.conf"
  mosquitto -c "$work/mosquitto.conf" > "$work/broker.log" 2>&1 &
  broker=$!
  for _ in $(seq 50); do
    (echo > /dev/tcp/127.0.0.1/"$p") 2>/dev/null && { port=$p; break; }
    kill -0 "$broker" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$port" ] && { pids+=("$broker"); break; }
  kill "$broker" 2>/dev/null || true
done
[ -n "$port" ] || { echo "cross-federate: FAILED: mosquitto did not start on a free port: $(cat "$work/broker.log")" >&2; exit 1; }

# Keys: the datacentre's with the x86_64 binary, the edge's with the arm64 one.
mkdir -p "$work/trust" "$work/controllers"
"$dc_bin" keys gen --out "$work/keys" --node-id dc-1 > /dev/null
"$qemu" "$edge_bin" keys gen --out "$work/keys" --node-id edge-arm64 > /dev/null
cp "$work/keys/dc-1.pub" "$work/keys/edge-arm64.pub" "$work/trust/"
cp "$work/keys/dc-1.pub" "$work/controllers/"

fed() { # role node-id
  printf '"federation": { "role": "%s", "broker": "tcp://127.0.0.1:%s", "cluster": "lab", "trust": "%s/trust", "controllers": "%s/controllers", "tick_ms": 10, "telemetry_every": 10 }' \
    "$1" "$port" "$work" "$work"
}
for n in dc-1:datacentre edge-arm64:edge; do
  id=${n%%:*}; role=${n#*:}
  cat > "$work/$id.json" <<JSON
{ "seed": 42, "ticks": 1000000,
  "instances": [ { "plugin": "phase12" }, { "plugin": "ethics" }, { "plugin": "energy" } ],
  "ledger": { "path": "$work/$id/ledger.jsonl", "node_id": "$id", "key": "$work/keys/$id.key", "fsync": "per_tick" },
  $(fed "$role") }
JSON
  mkdir -p "$work/$id"
done

"$dc_bin" run --config "$work/dc-1.json" --plugins "$dc_plugins" --out "$work/dc-1/out" \
  --state-dir "$work/dc-1/state" --socket "$work/dc.sock" --no-progress 2> "$work/dc-1.err" &
pids+=($!)
"$qemu" "$edge_bin" run --config "$work/edge-arm64.json" --plugins "$edge_plugins" --out "$work/edge-arm64/out" \
  --state-dir "$work/edge-arm64/state" --no-ctl --no-progress --threads "$threads" 2> "$work/edge-arm64.err" &
edge_pid=$!
pids+=("$edge_pid")
sleep "$secs"
echo "== edge (arm64, $(file -b "$edge_bin" | cut -d, -f2 | xargs)) log:"
grep -E 'federation|first tick' "$work/edge-arm64.err" | head -5 || echo "(no federation or first-tick line: the edge is stuck before its first tick)"
echo "== datacentre (x86_64) cluster status:"
"$dc_bin" cluster status --socket "$work/dc.sock"
"$dc_bin" cluster status --socket "$work/dc.sock" --json > "$work/status.json"
# The check: the arm64 edge is online in the x86_64 datacentre's view, its
# telemetry and ledger entries arrived verified, nothing was rejected.
if ! jq -e '.nodes["edge-arm64"] | . != null and .online and .telemetry_records > 0 and .ledger_entries > 0 and .rejected == 0' \
  "$work/status.json" > /dev/null; then
  echo "cross-federate: FAILED: $(jq -c '.nodes["edge-arm64"]' "$work/status.json")" >&2
  exit 1
fi
jq -r '.nodes["edge-arm64"] | "cross-federate: arm64 edge online, \(.telemetry_records) telemetry records, \(.ledger_entries) ledger entries, 0 rejected"' \
  "$work/status.json"

# The edge ends on SIGTERM within a few ticks and says how many threads it ran.
kill -TERM "$edge_pid"
for _ in $(seq 100); do kill -0 "$edge_pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$edge_pid" 2>/dev/null; then
  echo "cross-federate: FAILED: the arm64 edge ($threads threads) did not end within 10 s of SIGTERM" >&2
  exit 1
fi
summary="$work/edge-arm64/out/summary.json"
if ! jq -e --argjson t "$threads" '.threads == $t and .ticks > 0' "$summary" > /dev/null; then
  echo "cross-federate: FAILED: the arm64 edge's summary: $(jq -c '{threads, ticks, stopped_by}' "$summary" 2>&1)" >&2
  exit 1
fi
echo "cross-federate: arm64 edge ran $(jq .ticks "$summary") ticks on $threads threads, stopped by $(jq -r .stopped_by "$summary")"

# The worker pool on arm64: phase13 at 131072 nodes (over the plugins'
# serial threshold of 65536 updates a tick) splits every tick across the
# threads.  Chunks are fixed, so the telemetry must be byte-identical.
printf '{ "seed": 42, "ticks": 20, "instances": [ { "plugin": "phase13", "params": { "nodes": 131072 } } ] }\n' > "$work/pool.json"
for t in 1 "$threads"; do
  if ! timeout -k 5 120 "$qemu" "$edge_bin" run --config "$work/pool.json" --plugins "$edge_plugins" --out "$work/pool-$t" \
    --state-dir "$work/pool-$t/state" --no-ctl --no-progress --threads "$t" 2> "$work/pool-$t.err"; then
    echo "cross-federate: FAILED: arm64 phase13 on $t threads did not finish in 120 s:" >&2
    tail -5 "$work/pool-$t.err" >&2
    exit 1
  fi
done > /dev/null
if ! cmp -s "$work/pool-1/telemetry.csv" "$work/pool-$threads/telemetry.csv" ||
  ! jq -e --argjson t "$threads" '.threads == $t and .ticks == 20' "$work/pool-$threads/summary.json" > /dev/null; then
  echo "cross-federate: FAILED: arm64 phase13 telemetry differs between 1 and $threads threads" >&2
  exit 1
fi
echo "cross-federate: arm64 phase13, 131072 nodes, 20 ticks: the same telemetry on 1 and $threads threads"
