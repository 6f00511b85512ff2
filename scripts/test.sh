#!/usr/bin/env bash
# README command 2 (and all that CI runs): install what is missing, build
# everything (benchmarks included, so they keep compiling), run every test,
# then the hostile-input checks (docs/security.md): a short run of every
# fuzzer and the suites under the sanitizers.
#
# The main build is Release and the ASan+UBSan build is Debug, so every
# test runs in both build types.  QALLOW_FUZZ=0, QALLOW_SANITIZERS=0,
# QALLOW_ARM64=0 and QALLOW_PACKAGE=0 skip a stage (for a quick local run;
# CI runs them all).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
stage() { echo "== test.sh: $1 ($(date -u +%H:%M:%S))"; }
stage setup
"$root/scripts/setup.sh" --tests
# Ninja for a new build folder (scripts/build.sh says why): after setup,
# which installs it.
if command -v ninja >/dev/null; then export CMAKE_GENERATOR=${CMAKE_GENERATOR:-Ninja}; fi
package=${QALLOW_PACKAGE:-1}
# The package stage's fresh root (debootstrap: the mirror, dpkg, one core)
# is made now, beside the builds, and waited for at that stage.
deb_root=$root/build-deb-root/bookworm-minbase.tgz
deb_root_pid=""
if [ "$package" != 0 ] && [ ! -f "$deb_root" ]; then
  mkdir -p "$(dirname "$deb_root")"
  "$root/edge/deb-root-test.sh" --make-root "$deb_root" > "$root/build-deb-root/make-root.log" 2>&1 &
  deb_root_pid=$!
fi
stage "build (Release)"
CMAKE_BUILD_TYPE=${CMAKE_BUILD_TYPE:-Release} "$root/scripts/build.sh" -DQALLOW_BUILD_TESTS=ON -DQALLOW_BUILD_BENCH=ON
stage "tests"
(cd "${QALLOW_BUILD_DIR:-$root/build}" && ctest --output-on-failure -j "$(nproc)" --timeout 300)
if [ "${QALLOW_FUZZ:-1}" != 0 ]; then
  stage "fuzzers (scripts/fuzz.sh, docs/fuzzing.md)"
  FUZZ_SECONDS=${FUZZ_SECONDS:-10} FUZZ_OPT=${FUZZ_OPT:--O0} "$root/scripts/fuzz.sh"
fi
if [ "${QALLOW_SANITIZERS:-1}" != 0 ]; then
  stage "ASan+UBSan, Debug (scripts/sanitize.sh, docs/sanitizers.md)"
  "$root/scripts/sanitize.sh" address
  stage "TSan, the threaded tests"
  "$root/scripts/sanitize.sh" thread
fi
# The edge for arm64 (edge/README.md): cross-built with Debian's aarch64
# toolchain, its unit tests and an arm64 edge node federating with the x86_64
# datacentre, both under qemu-aarch64-static.  QALLOW_ARM64=0 skips it.
# The package stage's x86_64 edge build runs beside it, on one core: the
# unit tests and the federation under qemu use one.
edge_build() {
  (cd "$root" && cmake --preset edge -DQALLOW_UNITY_BUILD=${QALLOW_UNITY_BUILD:-ON} >/dev/null &&
     cmake --build --preset edge -j "${1:-$(nproc)}")
}
edge_build_pid=""
if [ "${QALLOW_ARM64:-1}" != 0 ] && [ "$(uname -m)" = x86_64 ]; then
  stage "arm64 edge (cross build, unit tests and federation under qemu)"
  "$root/edge/cross-setup.sh"
  if [ "$package" != 0 ]; then
    mkdir -p "$root/build-edge"
    edge_build 1 > "$root/build-edge/build.log" 2>&1 &
    edge_build_pid=$!
  fi
  JOBS="$(nproc)" "$root/edge/cross-build.sh"
  "$root/edge/cross-federate.sh"
fi
# The edge's .deb (edge/README.md, "The package"): built with the edge
# preset (and from the arm64 build above), each installed with dpkg -i in a
# fresh minbase Debian 12 root, its user, first-boot key and unit checked,
# and started there.  QALLOW_PACKAGE=0 skips it.
if [ "$package" != 0 ]; then
  stage "the edge .deb in a fresh Debian 12 root (edge/deb-root-test.sh)"
  if [ -n "$edge_build_pid" ]; then
    wait "$edge_build_pid" || { cat "$root/build-edge/build.log" >&2; echo "test.sh: the x86_64 edge build failed" >&2; exit 1; }
  else
    edge_build
  fi
  debs=()
  for b in "$root/build-edge" "$root/build-edge-arm64"; do
    [ "$b" = "$root/build-edge" ] || { [ "${QALLOW_ARM64:-1}" != 0 ] && [ -d "$b" ]; } || continue
    rm -f "$b"/qallow-edge_*.deb
    (cd "$b" && cpack -G DEB >/dev/null)
    debs+=("$b"/qallow-edge_*.deb)
  done
  if [ -n "$deb_root_pid" ]; then
    wait "$deb_root_pid" || { cat "$root/build-deb-root/make-root.log" >&2; echo "test.sh: making the fresh root failed" >&2; exit 1; }
  fi
  QALLOW_DEB_ROOT_TARBALL=$deb_root "$root/edge/deb-root-test.sh" "${debs[@]}"
fi
stage done
