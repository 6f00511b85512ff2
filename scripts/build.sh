#!/usr/bin/env bash
# Configures and builds into build/ (or $QALLOW_BUILD_DIR).  Extra arguments
# go to CMake's configure step, e.g. -DQALLOW_BUILD_BENCH=OFF.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${QALLOW_BUILD_DIR:-$root/build}
# Ninja when installed (scripts/setup.sh does): it compiles the objects of
# libraries that depend on each other in parallel, where Make builds them
# one library at a time (docs/DECISIONS.md, "Ninja").  Only a new build
# folder takes it: an existing one keeps its generator.
if command -v ninja >/dev/null; then export CMAKE_GENERATOR=${CMAKE_GENERATOR:-Ninja}; fi
# QALLOW_UNITY_BUILD (default ON): batches of sources per compile, a clean
# build in about 0.6 of the time (CMakeLists.txt); OFF for edit-compile work.
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=${CMAKE_BUILD_TYPE:-RelWithDebInfo} \
  -DQALLOW_UNITY_BUILD=${QALLOW_UNITY_BUILD:-ON} "$@" >/dev/null
cmake --build "$build" -j "$(nproc)"
