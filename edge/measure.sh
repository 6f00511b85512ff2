#!/usr/bin/env bash
# The edge build's figures (edge/README.md): binary size, resident memory
# running phase12, ethics, energy and federation against a real broker, and
# the time from exec to the end of the first tick.  Targets: binary < 5 MB,
# RSS < 20 MB, first tick < 100 ms.
#
#   edge/measure.sh [build-dir]        (default build-edge/, built with the
#                                       "edge" preset if missing)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build-edge}"
if [ ! -x "$build/bin/qallow-edge" ]; then
  cmake --preset edge -S "$root" >/dev/null
  cmake --build --preset edge -j "$(nproc)" >/dev/null
fi
bin="$build/bin/qallow-edge"
plugins="$(dirname "$(find "$build" -name phase12.so | head -1)")"
work="$(mktemp -d /tmp/qallow-edge-measure.XXXXXX)"
broker_pid=""
node_pid=""
cleanup() {
  [ -n "$node_pid" ] && kill -9 "$node_pid" 2>/dev/null || true
  [ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$port" > "$work/mosquitto.conf"
mosquitto -c "$work/mosquitto.conf" > "$work/broker.log" 2>&1 &
broker_pid=$!
for _ in $(seq 50); do (echo > /dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done

mkdir -p "$work/trust" "$work/controllers"
for n in dc-1 edge-1; do "$bin" keys gen --out "$work/keys" --node-id "$n" > /dev/null; cp "$work/keys/$n.pub" "$work/trust/"; done
cp "$work/keys/dc-1.pub" "$work/controllers/"
cat > "$work/edge.json" <<JSON
{ "seed": 42, "ticks": 1000000,
  "instances": [ { "plugin": "phase12" }, { "plugin": "ethics" }, { "plugin": "energy" } ],
  "ledger": { "path": "$work/ledger.jsonl", "node_id": "edge-1", "key": "$work/keys/edge-1.key", "fsync": "per_tick" },
  "federation": { "role": "edge", "broker": "tcp://127.0.0.1:$port", "cluster": "lab", "trust": "$work/trust",
                  "controllers": "$work/controllers", "tick_ms": 10, "telemetry_every": 10 } }
JSON

start_ns=$(date +%s%N)
"$bin" --log-format json run --config "$work/edge.json" --plugins "$plugins" --out "$work/out" \
  --state-dir "$work/state" --no-ctl --no-progress 2> "$work/node.err" &
node_pid=$!
for _ in $(seq 100); do grep -q '"first tick done' "$work/node.err" 2>/dev/null && break; sleep 0.05; done
first_line=$(grep '"first tick done' "$work/node.err" | head -1)
first_ns=$(python3 -c "import json,sys,datetime; t=json.loads(sys.argv[1])['time']; d=datetime.datetime.strptime(t,'%Y-%m-%dT%H:%M:%S.%fZ').replace(tzinfo=datetime.timezone.utc); print(int(d.timestamp()*1e9))" "$first_line")
sleep 3 # connected, ticking, publishing
rss_kb=$(awk '/VmRSS/ {print $2}' /proc/$node_pid/status)
hwm_kb=$(awk '/VmHWM/ {print $2}' /proc/$node_pid/status)
connected=$(grep -c 'federation: connected to' "$work/node.err" || true)
kill -TERM "$node_pid"; wait "$node_pid" || true; node_pid=""

size=$(stat -c %s "$bin")
inside=$(python3 -c "import json; print(json.load(open('$work/out/summary.json'))['first_tick_ms'])")
printf '%-44s %s\n' "qallow-edge ($(uname -m))" "$(python3 -c "print(f'{$size/1e6:.2f} MB ($size bytes); target < 5 MB')")"
for p in "$plugins"/*.so; do printf '  %-42s %s\n' "$(basename "$p")" "$(stat -c %s "$p") bytes"; done
printf '%-44s %s\n' "resident memory after 3 s (VmRSS / VmHWM)" "$(python3 -c "print(f'{$rss_kb/1024:.1f} MB / {$hwm_kb/1024:.1f} MB; target < 20 MB')")"
printf '%-44s %s\n' "first tick, from exec (from main)" "$(python3 -c "print(f'{($first_ns-$start_ns)/1e6:.1f} ms ({$inside:.1f} ms); target < 100 ms')")"
printf '%-44s %s\n' "federation connected" "$([ "$connected" -ge 1 ] && echo yes || echo NO)"
printf '%-44s %s\n' "shared libraries" "$(ldd "$bin" | awk '/=>/ {print $1}' | tr '\n' ' ')"
