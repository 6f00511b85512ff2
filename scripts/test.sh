#!/usr/bin/env bash
# README command 2 (and all that CI runs): install what is missing, build
# everything (benchmarks included, so they keep compiling), run every test.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
"$root/scripts/build.sh" -DQALLOW_BUILD_TESTS=ON -DQALLOW_BUILD_BENCH=ON
cd "${QALLOW_BUILD_DIR:-$root/build}"
ctest --output-on-failure -j "$(nproc)" --timeout 300
