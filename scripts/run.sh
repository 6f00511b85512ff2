#!/usr/bin/env bash
# README command 1: install what is missing, build, and run one node on the
# default config (no broker needed).  Arguments go to `qallow run`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
QALLOW_BUILD_BENCH=OFF "$root/scripts/build.sh" -DQALLOW_BUILD_TESTS=OFF -DQALLOW_BUILD_BENCH=OFF
cd "$root"
exec "${QALLOW_BUILD_DIR:-$root/build}/bin/qallow" run --config configs/default.json "$@"
