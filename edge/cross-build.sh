#!/usr/bin/env bash
# Cross-builds the edge (qallow-edge, its plugins, the unit tests) for arm64
# into build-edge-arm64/, checks the outputs are aarch64, and runs the arm64
# unit tests under qemu-aarch64-static.  Needs edge/cross-setup.sh first.
#
#   edge/cross-build.sh              # configure, build, file, unit tests
#   QALLOW_SKIP_TESTS=1 edge/cross-build.sh
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
build=${QALLOW_ARM64_BUILD_DIR:-$src/build-edge-arm64}
jobs=${JOBS:-$(nproc)}
# Ninja for a new build folder when installed (scripts/build.sh says why).
if command -v ninja >/dev/null; then export CMAKE_GENERATOR=${CMAKE_GENERATOR:-Ninja}; fi

t0=$(date +%s)
# The edge preset's cache variables, with the unit tests on and every plugin
# built (the unit tests use vm too; the package still ships the edge four).
# GNUInstallDirs drops the multiarch libdir when cross-compiling: name it, so
# plugins go to /usr/lib/aarch64-linux-gnu/qallow/plugins.
cmake -S "$src" -B "$build" \
  --toolchain "$src/edge/toolchain-aarch64.cmake" \
  -DCMAKE_BUILD_TYPE=MinSizeRel \
  -DQALLOW_EDGE=ON -DQALLOW_CUDA=OFF -DQALLOW_HTTP=OFF \
  -DQALLOW_BUILD_TESTS=ON -DQALLOW_BUILD_BENCH=OFF \
  -DQALLOW_EDGE_ALL_PLUGINS=ON -DQALLOW_UNITY_BUILD=${QALLOW_UNITY_BUILD:-ON} \
  -DCMAKE_INSTALL_PREFIX=/usr -DCMAKE_INSTALL_LIBDIR=lib/aarch64-linux-gnu \
  -DCMAKE_SKIP_INSTALL_ALL_DEPENDENCY=ON
t1=$(date +%s)
cmake --build "$build" -j"$jobs" --target qallow vm phase12 phase13 ethics energy qallow_unit_tests
# The unit tests also load the test plugins (faulty, bad, evil, reload), which
# only `all` builds: build every target of tests/plugins (Makefile generator).
if grep -q '^CMAKE_GENERATOR:INTERNAL=Ninja' "$build/CMakeCache.txt"; then
  cmake --build "$build" -j"$jobs" --target tests/plugins/all
else
  make -C "$build/tests/plugins" -j"$jobs" all
fi
t2=$(date +%s)
echo "cross-build: configure $((t1 - t0)) s, build $((t2 - t1)) s"

plugdir=$build/lib/aarch64-linux-gnu/qallow/plugins
[ -d "$plugdir" ] || plugdir=$(dirname "$(find "$build" -name libphase12.so -o -name phase12.so | head -1)")
outputs=("$build/bin/qallow-edge" "$build/bin/qallow_unit_tests")
for p in phase12 phase13 ethics energy; do
  outputs+=("$(find "$plugdir" -maxdepth 1 -name "*$p*.so" | head -1)")
done
bad=0
for f in "${outputs[@]}"; do
  desc=$(file -b "$f")
  echo "$f: $desc"
  case $desc in *"ARM aarch64"*) ;; *) bad=1 ;; esac
done
[ $bad -eq 0 ] || { echo "cross-build: an output is not ARM aarch64" >&2; exit 1; }
ls -l "$build/bin/qallow-edge"

[ -n "${QALLOW_SKIP_TESTS:-}" ] && exit 0
# arm64 loader and libraries come from the multiarch packages in /, so
# qemu's library prefix is /.  Not /usr/aarch64-linux-gnu: qemu would take
# the loader from there and libc.so.6 from /, two glibc builds, and the
# first thread would never start (edge/README.md, issue 12).
export QEMU_LD_PREFIX=/
# Say so now, rather than hang in the first test that starts a thread.
if ! QEMU_REPRO_SECONDS=20 "$src/edge/qemu-repro/run.sh" --check; then
  echo "cross-build: an arm64 program cannot start a thread under ${QEMU:-qemu-aarch64-static} -L /: see edge/README.md, \"arm64 threads under qemu\"" >&2
  exit 1
fi
# Tests that kill a child after a few milliseconds give it 10 times longer.
export QALLOW_TEST_TIME_SCALE=${QALLOW_TEST_TIME_SCALE:-10}
cd "$build"
"${QEMU:-qemu-aarch64-static}" bin/qallow_unit_tests --gtest_brief=1 "$@"
