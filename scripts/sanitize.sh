#!/usr/bin/env bash
# Sanitizer builds (docs/sanitizers.md):
#   scripts/sanitize.sh address   ASan+UBSan, Debug, every unit and integration test (build-asan/)
#   scripts/sanitize.sh thread    TSan, the threaded tests only (build-tsan/)
# Extra arguments go to ctest (e.g. -R WorkerPool).  Zero reports or it
# fails: every report is written to <build>/sanitizer-logs and any file there
# after the run fails the step, even one from a child process whose exit code
# the test did not look at.
# Environment: QALLOW_SANITIZE_BUILD_DIR (the build folder), JOBS (default nproc).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
kind=${1:-}
shift || true
jobs=${JOBS:-$(nproc)}
supp=$root/tests/sanitizers
# Ninja for a new build folder when installed (scripts/build.sh says why).
if command -v ninja >/dev/null; then export CMAKE_GENERATOR=${CMAKE_GENERATOR:-Ninja}; fi

case $kind in
  address)
    build=${QALLOW_SANITIZE_BUILD_DIR:-$root/build-asan}
    sanitize="address,undefined"
    # Debug: the CI's Debug build of the whole suite (the suite must pass in
    # Debug and Release) and the clearest stacks.
    build_type=Debug
    opt="-O0 -g1"
    # Not position-independent: at -O0 the sanitizers' data (a source
    # location for each UBSan check, a descriptor for each global) holds
    # some 2 million pointers, which in a PIE the loader fixes up (48 MB of
    # relocations) at the start of each of the suite's thousands of
    # processes: 0.2 s each (docs/sanitizers.md, "Times").
    link="-no-pie"
    ;;
  thread)
    build=${QALLOW_SANITIZE_BUILD_DIR:-$root/build-tsan}
    sanitize="thread"
    build_type=RelWithDebInfo
    # -O1: enough for TSan (its documentation asks for -O1 or higher), and
    # less compile time than -O2 on the CI's two cores.
    opt="-O1 -g1 -DNDEBUG"
    link=""
    ;;
  *)
    echo "usage: $0 address|thread [ctest arguments...]" >&2
    exit 2
    ;;
esac

logs=$build/sanitizer-logs
start=$SECONDS
# -g1: line tables and function names, all a report's stack needs, and a
# good part of the compile time of full debug information saved.
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=$build_type -DQALLOW_SANITIZE="$sanitize" \
  "-DCMAKE_CXX_FLAGS_${build_type^^}=$opt" "-DCMAKE_C_FLAGS_${build_type^^}=$opt" "-DCMAKE_EXE_LINKER_FLAGS=$link" \
  -DQALLOW_CUDA=OFF -DQALLOW_BUILD_BENCH=OFF -DQALLOW_BUILD_TESTS=ON -DQALLOW_UNITY_BUILD=${QALLOW_UNITY_BUILD:-ON} >/dev/null
cmake --build "$build" -j "$jobs"
echo "sanitize $kind: built in $((SECONDS - start)) s"

rm -rf "$logs"
mkdir -p "$logs"

# Common to all three: a report names its whole stack and ends the process
# (a test fails on the first one, not on a symptom later).  log_path: the
# integration tests spawn `qallow` and the plugins, all built with the same
# sanitizer; the environment reaches them (posix_spawn passes environ) and
# so does this folder, so a report from a child is never lost in a test's
# captured stderr.
common="halt_on_error=1:print_stacktrace=1:symbolize=1"
# Signals: the host records which plugin's code faulted (host/core/quarantine.cpp)
# with its own SIGSEGV/SIGBUS/SIGABRT/... handler, and leaves a handler that
# is already there (a sanitizer's) alone.  The crash-quarantine tests crash a
# plugin on purpose and expect that record, so the sanitizers must not
# install theirs: handle_*=0 keeps the defaults for the host to replace, and
# allow_user_segv_handler=1 lets it replace one anyway.  A real fault in the
# host still ends the run (the host's handler re-raises the signal).
signals="handle_segv=0:handle_sigbus=0:handle_sigill=0:handle_sigfpe=0:handle_abort=0:allow_user_segv_handler=1"

export QALLOW_SANITIZER=$kind
# Every timed wait in the tests allows for a slower machine.
export QALLOW_TEST_TIME_SCALE=${QALLOW_TEST_TIME_SCALE:-3}
if [ "$kind" = address ]; then
  # detect_leaks: LeakSanitizer runs at every process's exit, the host's and
  # the test programs'.  Plugins are dlclose'd at unload; fast_unwind_on_malloc=0
  # would give better leak stacks, but costs too much time.
  export ASAN_OPTIONS="$common:$signals:detect_leaks=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1:log_path=$logs/asan:suppressions=$supp/asan.supp"
  export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0"
  export UBSAN_OPTIONS="$common:log_path=$logs/ubsan:suppressions=$supp/ubsan.supp"
  tests=()
else
  export TSAN_OPTIONS="$common:$signals:second_deadlock_stack=1:log_path=$logs/tsan:suppressions=$supp/tsan.supp"
  # The threaded parts: the worker pool, federation (its MQTT, verifier and
  # outbox threads, in-process and between real nodes; a datacentre storing
  # what it verifies, Fleet.*), hot reload and its watcher thread, the
  # ctl/HTTP servers' threads, and the tick watchdog's handshake with the loop.
  tests=(-R "${QALLOW_TSAN_TESTS:-WorkerPool|HostSimulation|HostSwap|Federation|Fed[A-Z]|Fleet\.|Reload|Watcher|Ctl|Http|Watchdog|StepWatch}")
fi

start=$SECONDS
status=0
# --repeat until-pass:2: a test that fails on timing under the sanitizer's
# slowdown (several real processes and a broker on 2 cores) gets one more
# try, and ctest prints both.  That retries only the test's own checks: a
# sanitizer report from either try is in $logs and fails the step below.
(cd "$build" && ctest --output-on-failure -j "$jobs" --timeout 600 --repeat until-pass:2 "${tests[@]}" "$@") || status=$?
echo "sanitize $kind: tests ran in $((SECONDS - start)) s"

reports=$(find "$logs" -type f | sort)
if [ -n "$reports" ]; then
  for f in $reports; do
    echo "=== $f"
    cat "$f"
  done
  echo "sanitize $kind: $(echo "$reports" | wc -l) report(s), see above" >&2
  status=1
fi
# UBSan linked with ASan (gcc 12) ignores log_path and writes to stderr; its
# reports end the process (-fno-sanitize-recover), so the test that ran it
# fails on the exit code.  A report that a passing test printed anyway is
# caught here.
if grep -nE "runtime error: |ERROR: (Address|Leak)Sanitizer|WARNING: ThreadSanitizer" \
     "$build/Testing/Temporary/LastTest.log" >&2; then
  echo "sanitize $kind: sanitizer reports in the test output, see above" >&2
  status=1
fi
exit $status
