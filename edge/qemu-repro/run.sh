#!/usr/bin/env bash
# Shows why the arm64 edge hung under qemu with 2 or more threads (issue 12):
# thread_once.c under qemu-aarch64-static with three library setups.
#
#   edge/qemu-repro/run.sh          # exit 0 when each setup behaves as below
#   edge/qemu-repro/run.sh --check  # only the setup the scripts use (-L /): exit 0 if a thread starts
#
# -L PREFIX makes qemu load the program's interpreter, /lib/ld-linux-aarch64.so.1,
# from PREFIX, but the loader then finds libc.so.6 through the host's
# /etc/ld.so.cache in /lib/aarch64-linux-gnu (libc6:arm64), because PREFIX has
# no ld.so.cache of its own.  With PREFIX=/usr/aarch64-linux-gnu (the cross
# compiler's sysroot, libc6-arm64-cross) the loader and libc.so.6 come from two
# different glibc builds; they share private data (_rtld_global), and the
# first pthread_create walks its stack cache list for ever.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
qemu="${QEMU:-qemu-aarch64-static}"
limit=${QEMU_REPRO_SECONDS:-10}
cross=/usr/aarch64-linux-gnu
bin="$(mktemp -d /tmp/qallow-qemu-repro.XXXXXX)/thread_once"
trap 'rm -rf "$(dirname "$bin")"' EXIT
aarch64-linux-gnu-gcc -O2 -pthread "$here/thread_once.c" -o "$bin"

# run NAME EXPECT ENV...: EXPECT is ok (prints "joined") or hang (killed after $limit s)
fail=0
run() {
  local name=$1 expect=$2 got rc=0
  shift 2
  env "$@" timeout -k 2 "$limit" "$qemu" "$bin" > /dev/null 2>&1 || rc=$?
  case $rc in 0) got=ok ;; 124 | 137) got=hang ;; *) got="exit $rc" ;; esac
  printf 'qemu-repro: %-58s %-5s (expected %s)\n' "$name" "$got" "$expect"
  [ "$got" = "$expect" ] || fail=1
}

if [ "${1:-}" = --check ]; then
  run "-L / (loader and libc.so.6 from libc6:arm64)" ok QEMU_LD_PREFIX=/
  exit $fail
fi
version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo "not installed"; }
echo "qemu-repro: $("$qemu" --version | head -1)"
echo "qemu-repro: libc6:arm64 $(version libc6:arm64), libc6-arm64-cross $(version libc6-arm64-cross)"
run "-L / (loader and libc.so.6 from libc6:arm64)" ok QEMU_LD_PREFIX=/
# Two builds hang; the same build twice (a cross package rebuilt from the
# same glibc) should not.
mixed=hang
[ "$(version libc6:arm64)" != "$(version libc6-arm64-cross)" ] || mixed=ok
run "-L $cross (loader from the cross sysroot, libc from /)" $mixed QEMU_LD_PREFIX=$cross
run "-L $cross with LD_LIBRARY_PATH=$cross/lib (one build)" ok QEMU_LD_PREFIX=$cross LD_LIBRARY_PATH=$cross/lib
exit $fail
