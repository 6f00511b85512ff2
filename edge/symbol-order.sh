#!/usr/bin/env bash
# Writes edge/symbol-order.txt: the functions of qallow-edge that a running
# edge executes, for lld to lay out together (host/CMakeLists.txt,
# QALLOW_EDGE_SYMBOL_ORDER; edge/README.md, "Memory").  Rerun it after large
# changes to the host: a name that is gone is ignored, a new function is
# placed after the ordered ones, so a stale list costs resident memory,
# never correctness.  Needs valgrind and mosquitto; x86_64 builds only.
#
#   edge/symbol-order.sh [build-dir]     (default build-edge/, built)
#
# The workload is edge/measure.sh's: phase12, ethics, energy and federation
# to a real broker, 10 ms ticks, a signed ledger, 300 ticks, run under
# callgrind on an unstripped link of the same objects.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="$(cd "${1:-$root/build-edge}" && pwd)"
link="$build/host/CMakeFiles/qallow.dir/link.txt"
[ -f "$link" ] || { echo "symbol-order: $link not found: configure and build the edge first" >&2; exit 1; }
command -v valgrind >/dev/null || { echo "symbol-order: needs valgrind" >&2; exit 1; }
plugins="$(dirname "$(find "$build" -name phase12.so | head -1)")"
work="$(mktemp -d /tmp/qallow-symbol-order.XXXXXX)"
broker_pid=""
cleanup() {
  [ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# The same link, unstripped (names for callgrind) and in the default order.
cmd=$(sed -e 's/ -s / /' -e 's/ -Wl,--symbol-ordering-file=[^ ]*//' -e 's| -o [^ ]*| -o '"$work"'/qallow-edge|' "$link")
(cd "$build/host" && eval "$cmd")
bin="$work/qallow-edge"

. "$root/edge/lib.sh"
start_broker "$work"
make_cluster "$work" "$bin"
edge_config "$work" "$work" 300 > "$work/edge.json"
valgrind --tool=callgrind --demangle=no --callgrind-out-file="$work/callgrind.out" \
  "$bin" run --config "$work/edge.json" --plugins "$plugins" --out "$work/out" --state-dir "$work/state" \
  --no-ctl --no-progress > "$work/node.out" 2> "$work/node.err"
grep -q 'federation: connected to' "$work/node.err" || { echo "symbol-order: the edge did not connect" >&2; exit 1; }

# Every function of the binary that ran, in callgrind's order (names are
# written in full once, then by number).
python3 - "$work/callgrind.out" "$root/edge/symbol-order.txt" <<'PY'
import re, sys
objects, names, current, order, seen = {}, {}, None, [], set()
for line in open(sys.argv[1]):
    m = re.match(r'^(c?ob)=\((\d+)\)(?: (.*))?$', line.rstrip('\n'))
    if m:
        kind, i, name = m.groups()
        if name:
            objects[i] = name
        if kind == 'ob':
            current = objects.get(i, '')
        continue
    m = re.match(r'^(c?fn)=\((\d+)\)(?: (.*))?$', line.rstrip('\n'))
    if m:
        kind, i, name = m.groups()
        if name:
            names[i] = name
        fn = names.get(i)
        if kind == 'fn' and current.endswith('/qallow-edge') and fn and fn not in seen and not fn.startswith('0x') and ' ' not in fn:
            seen.add(fn)
            order.append(fn)
with open(sys.argv[2], 'w') as f:
    f.write('\n'.join(order) + '\n')
print(f'symbol-order: {len(order)} functions -> {sys.argv[2]}')
PY
