# Shared by edge/measure.sh and edge/symbol-order.sh: the measured edge's
# surroundings.  Source it; the caller's cleanup kills $broker_pid.

# A mosquitto on a free loopback port in $1: sets port and broker_pid.
start_broker() {
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
  printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$port" > "$1/mosquitto.conf"
  mosquitto -c "$1/mosquitto.conf" > "$1/broker.log" 2>&1 &
  broker_pid=$!
  for _ in $(seq 50); do (echo > /dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done
}

# Keys of dc-1 (the controller) and edge-1 in $1/keys, trusted in $1/trust
# and $1/controllers; the rest of the arguments run qallow-edge.
make_cluster() {
  local work=$1; shift
  mkdir -p "$work/trust" "$work/controllers"
  for n in dc-1 edge-1; do "$@" keys gen --out "$work/keys" --node-id "$n" > /dev/null; cp "$work/keys/$n.pub" "$work/trust/"; done
  cp "$work/keys/dc-1.pub" "$work/controllers/"
}

# The edge's config to stdout: phase12, ethics, energy and federation at
# 10 ms ticks.  $1 the cluster's folder, $2 the run's folder, $3 ticks.
edge_config() {
  cat <<JSON
{ "seed": 42, "ticks": $3,
  "instances": [ { "plugin": "phase12" }, { "plugin": "ethics" }, { "plugin": "energy" } ],
  "ledger": { "path": "$2/ledger.jsonl", "node_id": "edge-1", "key": "$1/keys/edge-1.key", "fsync": "per_tick" },
  "federation": { "role": "edge", "broker": "tcp://127.0.0.1:$port", "cluster": "lab", "trust": "$1/trust",
                  "controllers": "$1/controllers", "tick_ms": 10, "telemetry_every": 10 } }
JSON
}
