#!/usr/bin/env bash
# Configures and builds into build/ (or $QALLOW_BUILD_DIR).  Extra arguments
# go to CMake's configure step, e.g. -DQALLOW_BUILD_BENCH=OFF.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${QALLOW_BUILD_DIR:-$root/build}
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=${CMAKE_BUILD_TYPE:-RelWithDebInfo} "$@" >/dev/null
cmake --build "$build" -j "$(nproc)"
