#!/usr/bin/env bash
# An arm64 edge node (build-edge-arm64/bin/qallow-edge under
# qemu-aarch64-static) federating with an x86_64 datacentre (build/bin/qallow)
# through a local mosquitto on a free port.  Prints the datacentre's
# `qallow cluster status --json` after a few seconds.
#
#   edge/cross-federate.sh [arm64-build-dir] [x86_64-build-dir] [seconds]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
arm="${1:-$root/build-edge-arm64}"
x86="${2:-$root/build}"
secs="${3:-5}"
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

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$port" > "$work/mosquitto.conf"
mosquitto -c "$work/mosquitto.conf" > "$work/broker.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do (echo > /dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done

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
  --state-dir "$work/edge-arm64/state" --no-ctl --no-progress 2> "$work/edge-arm64.err" &
pids+=($!)
sleep "$secs"
echo "== edge (arm64, $(file -b "$edge_bin" | cut -d, -f2 | xargs)) log:"
grep -E 'federation|first tick' "$work/edge-arm64.err" | head -5
echo "== datacentre (x86_64) cluster status:"
"$dc_bin" cluster status --socket "$work/dc.sock"
"$dc_bin" cluster status --socket "$work/dc.sock" --json > "$work/status.json"
# The check: the arm64 edge is online in the x86_64 datacentre's view, its
# telemetry and ledger entries arrived verified, nothing was rejected.
python3 - "$work/status.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
n = s.get("nodes", {}).get("edge-arm64")
ok = bool(n) and n["online"] and n["telemetry_records"] > 0 and n["ledger_entries"] > 0 and n["rejected"] == 0
print("cross-federate:", "arm64 edge online, %s telemetry records, %s ledger entries, 0 rejected"
      % (n["telemetry_records"], n["ledger_entries"]) if ok else "FAILED: " + json.dumps(n))
sys.exit(0 if ok else 1)
PY
