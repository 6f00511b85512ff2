#!/usr/bin/env bash
# What a third party does: install the SDK, build the example plugin out of
# tree with find_package(QallowSDK), drop it into a plugin directory, run it.
# Usage: sdk_out_of_tree.sh <build dir> <source dir>
set -euo pipefail
build=$1 src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
test -f "$work/prefix/include/qallow/plugin.h"
cmake -S "$src/sdk/examples/hello" -B "$work/hello" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/hello" >/dev/null
mkdir "$work/plugins"
cp "$work/hello/hello.so" "$work/plugins/"
"$work/prefix/bin/qallow" plugins --plugins "$work/plugins" | tee "$work/list.txt"
grep -q "^hello 1.0.0  \[phase, ABI 1.2" "$work/list.txt"
cat > "$work/hello.json" <<JSON
{ "seed": 1, "ticks": 50, "instances": [ { "plugin": "hello", "params": { "damping": 0.1 } } ] }
JSON
"$work/prefix/bin/qallow" run --config "$work/hello.json" --plugins "$work/plugins" --out "$work/out"
test "$(wc -l < "$work/out/telemetry.csv")" -eq 51
head -1 "$work/out/telemetry.csv" | grep -qx "tick,hello.x,hello.ops"
# x1 = 1*(1-0.1) + 0.1 = 1.0 (tick 1 is odd), x2 = 1.0*0.9 - 0.1 = 0.8
sed -n 2p "$work/out/telemetry.csv" | grep -qx "1,1,1"
sed -n 3p "$work/out/telemetry.csv" | grep -qx "2,0.8,1"
# The installed host also finds the installed built-in plugins by default.
# Not `grep -q`: it may exit before qallow's last write, and pipefail turns
# the SIGPIPE into a failure.
"$work/prefix/bin/qallow" plugins | grep "^phase13 1.0.0" >/dev/null
echo "out-of-tree plugin built, listed and run"
