#!/usr/bin/env bash
# README command 1: install what is missing, build, and run one node on the
# default config (no broker needed).  Arguments go to `qallow run`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
QALLOW_BUILD_BENCH=OFF "$root/scripts/build.sh" -DQALLOW_BUILD_TESTS=OFF -DQALLOW_BUILD_BENCH=OFF
cd "$root"
# The dashboard (docs/dashboard.md) on a free loopback port, its address
# printed first; on a terminal the finished run stays on view until Ctrl-C.
extra=()
case " $* " in *" --http-port"*) ;; *) extra+=(--http-port "${QALLOW_HTTP_PORT:-0}") ;; esac
[ -t 1 ] && extra+=(--linger)
exec "${QALLOW_BUILD_DIR:-$root/build}/bin/qallow" run --config configs/default.json "${extra[@]}" "$@"
