#!/usr/bin/env bash
# The edge build's figures (edge/README.md, "Figures"): the installed size,
# the resident memory running phase12, ethics, energy and federation against
# a real broker, where that memory goes, and the time from exec to the end
# of the first tick.  Targets (AWS Greengrass nucleus lite's): installed
# edge < 5 MB, resident < 5 MB, first tick < 50 ms.
#
#   edge/measure.sh [build-dir]        (default build-edge/, built with the
#                                       "edge" preset if missing)
#
# An arm64 build (edge/cross-build.sh) runs under qemu-aarch64-static -L /.
# Its sizes and first tick are measured as on x86_64 (the tick under
# emulation).  Its resident memory is the emulator's process: the guest's
# file-backed pages (binary, libraries, plugins) are listed as they are, but
# its heap and stacks are anonymous memory of qemu's that cannot be told
# from qemu's own, so VmRSS there is not the guest's (edge/memory.py).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build-edge}"
if [ ! -x "$build/bin/qallow-edge" ]; then
  [ $# -ge 1 ] && { echo "measure.sh: $build/bin/qallow-edge does not exist: build it first" >&2; exit 1; }
  cmake --preset edge -S "$root" >/dev/null
  cmake --build --preset edge -j "$(nproc)" >/dev/null
fi
bin="$build/bin/qallow-edge"
plugins="$(dirname "$(find "$build" -name phase12.so | head -1)")"
shipped="phase12 phase13 ethics energy" # what the .deb installs (plugins/CMakeLists.txt)
runner=()
emulated=""
libdirs="/lib/$(uname -m)-linux-gnu /usr/lib/$(uname -m)-linux-gnu"
arch=$(uname -m)
if file -b "$bin" | grep -q 'ARM aarch64' && [ "$(uname -m)" != aarch64 ]; then
  export QEMU_LD_PREFIX=/ # edge/README.md, "arm64 threads under qemu"
  runner=("${QEMU:-qemu-aarch64-static}" -L /)
  emulated="--emulator"
  libdirs="/lib/aarch64-linux-gnu /usr/lib/aarch64-linux-gnu"
  arch="aarch64 under qemu-user"
fi
work="$(mktemp -d /tmp/qallow-edge-measure.XXXXXX)"
broker_pid=""
node_pid=""
cleanup() {
  [ -n "$node_pid" ] && kill -9 "$node_pid" 2>/dev/null || true
  [ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
mb() { python3 -c "print(f'{$1/1e6:.2f} MB')"; }

. "$root/edge/lib.sh"
start_broker "$work"
make_cluster "$work" "${runner[@]}" "$bin"

# The plugins the package ships, alone in a folder as installed (a build
# for the unit tests has vm too).  The private copies the host maps are
# named by their SHA-256.
mkdir -p "$work/plugins"
copies=""
for p in $shipped; do
  cp "$plugins/$p.so" "$work/plugins/"
  copies+="$(sha256sum "$plugins/$p.so" | cut -c1-64).so=$p.so,"
done

# One run: config, start, the first tick's end; the last run also stays 3 s
# (connected, ticking, publishing) and has its memory read.
run() {
  local i=$1 dir="$work/run$1"
  mkdir -p "$dir"
  edge_config "$work" "$dir" 1000000 > "$dir/edge.json"
  local start_ns first_line first_ns
  start_ns=$(date +%s%N)
  "${runner[@]}" "$bin" --log-format json run --config "$dir/edge.json" --plugins "$work/plugins" --out "$dir/out" \
    --state-dir "$dir/state" --no-ctl --no-progress > "$dir/node.out" 2> "$dir/node.err" &
  node_pid=$!
  for _ in $(seq 200); do grep -q '"first tick done' "$dir/node.err" 2>/dev/null && break; sleep 0.05; done
  first_line=$(grep '"first tick done' "$dir/node.err" | head -1)
  first_ns=$(python3 -c "import json,sys,datetime; t=json.loads(sys.argv[1])['time']; d=datetime.datetime.strptime(t,'%Y-%m-%dT%H:%M:%S.%fZ').replace(tzinfo=datetime.timezone.utc); print(int(d.timestamp()*1e9))" "$first_line")
  echo "$(( (first_ns - start_ns) / 1000 ))" > "$dir/exec_us"
  if [ "$i" = 3 ]; then
    sleep 3
    python3 "$root/edge/memory.py" "$node_pid" "$bin" --plugins "$copies" $emulated > "$work/memory.txt"
    grep -c 'federation: connected to' "$dir/node.err" > "$work/connected" || true
  fi
  kill -TERM "$node_pid"; wait "$node_pid" || true; node_pid=""
}
for i in 1 2 3; do run "$i"; done

# Installed: the binary and the plugins the package ships.
bin_size=$(stat -c %s "$bin")
total=$bin_size
plugin_line=""
for p in $shipped; do
  s=$(stat -c %s "$plugins/$p.so"); total=$((total + s)); plugin_line+="$p $(mb "$s"), "
done
printf '%-44s %s\n' "installed ($arch)" "$(mb "$total") ($total bytes); target < 5 MB"
printf '  %-42s %s\n' "qallow-edge" "$(mb "$bin_size") ($bin_size bytes)"
printf '  %-42s %s\n' "plugins" "${plugin_line%, }"
# The shared libraries still needed (the binary's and the plugins'), found
# where the loader would look.
needed=$( (readelf -d "$bin"; for p in $shipped; do readelf -d "$plugins/$p.so"; done) |
          sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | sort -u)
printf '  %-42s\n' "shared libraries still needed (not counted above)"
for lib in $needed; do
  path=""
  for d in $libdirs; do [ -e "$d/$lib" ] && { path="$d/$lib"; break; }; done
  size=$([ -n "$path" ] && stat -L -c %s "$path" || echo 0)
  case $lib in libc.so*|libm.so*|ld-linux*|libpthread*|libdl.so*|librt.so*) note=" (glibc, in every system)";; *) note="";; esac
  printf '    %-40s %s%s\n' "$lib" "$(mb "$size")" "$note"
done

printf '%-44s %s\n' "resident memory after 3 s" "target < 5 MB (VmRSS)$([ -n "$emulated" ] && echo '; under qemu: the emulator process, see above')"
cat "$work/memory.txt"

ticks=""
for i in 1 2 3; do
  inside=$(python3 -c "import json; print(f\"{json.load(open('$work/run$i/out/summary.json'))['first_tick_ms']:.1f}\")")
  ticks+="$(python3 -c "print(f'{$(cat "$work/run$i/exec_us")/1000:.1f}')") ($inside), "
done
printf '%-44s %s\n' "first tick, from exec (from main), 3 runs" "${ticks%, } ms; target < 50 ms"
printf '%-44s %s\n' "federation connected" "$([ "$(cat "$work/connected")" -ge 1 ] && echo yes || echo NO)"
