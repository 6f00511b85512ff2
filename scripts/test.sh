#!/usr/bin/env bash
# README command 2 (and all that CI runs): install what is missing, build
# everything (benchmarks included, so they keep compiling), run every test.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
"$root/scripts/build.sh" -DQALLOW_BUILD_TESTS=ON -DQALLOW_BUILD_BENCH=ON
cd "${QALLOW_BUILD_DIR:-$root/build}"
ctest --output-on-failure -j "$(nproc)" --timeout 300
# The edge for arm64 (edge/README.md): cross-built with Debian's aarch64
# toolchain, its unit tests and an arm64 edge node federating with the x86_64
# datacentre, both under qemu-aarch64-static.  QALLOW_ARM64=0 skips it.
if [ "${QALLOW_ARM64:-1}" != 0 ] && [ "$(uname -m)" = x86_64 ]; then
  "$root/edge/cross-setup.sh"
  JOBS="$(nproc)" "$root/edge/cross-build.sh"
  "$root/edge/cross-federate.sh"
fi
