#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/, docs/fuzzing.md) with clang in
# their own build folder and runs each one for a while: first over its
# regression inputs (tests/fuzz/regressions/<target>/, each a crash found
# once), then fuzzing from its seed corpus (tests/fuzz/corpus/<target>/).
# Exit 1 when any target finds something, with the reproducer's path and
# the command that replays it; 0 when none does.
#
#   scripts/fuzz.sh [TARGET...]       default: every target
#   FUZZ_SECONDS=20                   fuzzing time per target
#   FUZZ_PARALLEL=2                   targets run at once (default: cores, at most 2)
#   FUZZ_BUILD_DIR=build-fuzz         the clang build (configured when missing)
#   FUZZ_JOBS                         build parallelism (default: cores)
#   FUZZ_NO_BUILD=1                   use the binaries as they are
#
# New inputs the fuzzer finds stay in <build>/fuzz-runs/<target>/corpus
# (not in the repository); docs/fuzzing.md says how to merge good ones.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${FUZZ_BUILD_DIR:-$root/build-fuzz}
seconds=${FUZZ_SECONDS:-20}
cores=$(nproc)
# Ninja for a new build folder when installed (scripts/build.sh says why).
if command -v ninja >/dev/null; then export CMAKE_GENERATOR=${CMAKE_GENERATOR:-Ninja}; fi
parallel=${FUZZ_PARALLEL:-$(( cores < 2 ? cores : 2 ))}
all=(config ctl envelope ledger checkpoint elf deploy http quarantine outbox telemetry fleet_query report)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")

# Longest input per target: enough for every seed, small enough to stay fast.
declare -A max_len=([config]=8192 [ctl]=4096 [envelope]=8192 [ledger]=16384 [checkpoint]=16384
                    [elf]=16384 [deploy]=16384 [http]=4096 [quarantine]=4096 [outbox]=8192
                    [telemetry]=8192 [fleet_query]=1024 [report]=4096)
declare -A dict=([http]=http.dict [elf]=elf.dict [telemetry]=telemetry.dict [fleet_query]=fleet_query.dict)
for t in "${targets[@]}"; do
  [ -n "${max_len[$t]:-}" ] || { echo "fuzz: unknown target '$t'; allowed: ${all[*]}" >&2; exit 2; }
done

start=$(date +%s)
if [ "${FUZZ_NO_BUILD:-0}" != 1 ]; then
  command -v clang++ >/dev/null || { echo "fuzz: clang++ not found (scripts/setup.sh installs it)" >&2; exit 2; }
  # -O1 and line tables only: the usual fuzzing build, and half the compile
  # time of -O2 -g with ASan on a small machine.  FUZZ_OPT=-O0 halves it
  # again for CI's 10-second smoke runs (scripts/test.sh), at 0.14-0.38
  # of the executions per second (docs/fuzzing.md has the figures).
  opt="${FUZZ_OPT:--O1} -gline-tables-only -DNDEBUG"
  if ! grep -qs '^QALLOW_FUZZ:BOOL=ON' "$build/CMakeCache.txt" ||
     ! grep -qsx "CMAKE_CXX_FLAGS_RELWITHDEBINFO:STRING=$opt" "$build/CMakeCache.txt"; then
    CC=clang CXX=clang++ cmake -S "$root" -B "$build" -DQALLOW_FUZZ=ON -DQALLOW_CUDA=OFF -DQALLOW_BUILD_BENCH=OFF \
      -DQALLOW_BUILD_TESTS=OFF -DQALLOW_HTTP=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo -DQALLOW_UNITY_BUILD=${QALLOW_UNITY_BUILD:-ON} \
      "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=$opt" "-DCMAKE_C_FLAGS_RELWITHDEBINFO=$opt" >/dev/null
  fi
  cmake --build "$build" -j "${FUZZ_JOBS:-$cores}" --target $(printf 'fuzz_%s ' "${targets[@]}")
fi
built=$(date +%s)

# One target: regressions first (whole files, never cut to max_len), then
# the fuzzing.  Writes <work>/result: "ok ..." or "FINDING ...".
run_target() {
  local t=$1 bin=$build/bin/fuzz_$1 work=$build/fuzz-runs/$1
  local src=$root/tests/fuzz
  rm -rf "$work/artifacts" "$work/result"
  mkdir -p "$work/corpus" "$work/artifacts"
  local common=(-timeout=5 -rss_limit_mb=2048 -max_len="${max_len[$t]}" -artifact_prefix="$work/artifacts/")
  [ -n "${dict[$t]:-}" ] && common+=(-dict="$src/dict/${dict[$t]}")
  [ -z "${dict[$t]:-}" ] && [ "$t" != elf ] && common+=(-dict="$src/dict/json.dict")
  local regressions=()
  if [ -d "$src/regressions/$t" ]; then
    mapfile -t regressions < <(find "$src/regressions/$t" -type f | sort)
  fi
  # A regression that fails again is a finding; the fuzzing still runs, so
  # one known failure does not hide new ones.
  local again=""
  if [ ${#regressions[@]} -gt 0 ] &&
     ! "$bin" -timeout=5 -rss_limit_mb=2048 -artifact_prefix="$work/artifacts/regression-" "${regressions[@]}" \
        >"$work/regressions.log" 2>&1; then
    local which
    which=$(grep -o 'Running: .*' "$work/regressions.log" | tail -1 | cut -d' ' -f2-)
    again="a regression input fails again: $which (log: $work/regressions.log; replay: $bin $which); "
  fi
  local corpora=("$work/corpus" "$src/corpus/$t")
  local execs cov
  if "$bin" "${corpora[@]}" "${common[@]}" -max_total_time="$seconds" -print_final_stats=1 >"$work/fuzz.log" 2>&1; then
    execs=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$work/fuzz.log" | grep -o '[0-9]*$' || echo '?')
    cov=$(grep -E '^#[0-9]+' "$work/fuzz.log" | tail -1 | grep -o 'cov: [0-9]* ft: [0-9]*' || echo 'cov: ?')
    if [ -n "$again" ]; then
      echo "FINDING $t: $again${seconds}s fuzzing found nothing new ($execs exec/s, $cov)" >"$work/result"
    else
      echo "ok $t: ${#regressions[@]} regression input(s) pass; ${seconds}s fuzzing, $execs exec/s, $cov" >"$work/result"
    fi
  else
    local art
    art=$(find "$work/artifacts" -type f ! -name 'regression-*' | head -1)
    echo "FINDING $t: $again${art:-no reproducer written} (log: $work/fuzz.log; replay: $bin ${art:-<input>})" >"$work/result"
  fi
}

running=0
for t in "${targets[@]}"; do
  run_target "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$parallel" ]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait || true

status=0
for t in "${targets[@]}"; do
  r=$(cat "$build/fuzz-runs/$t/result" 2>/dev/null || echo "FINDING $t: no result (the run itself failed)")
  echo "fuzz: $r"
  case $r in ok*) ;; *) status=1 ;; esac
done
end=$(date +%s)
echo "fuzz: build $((built - start)) s, runs $((end - built)) s; $([ $status = 0 ] && echo 'no finding' || echo 'FINDINGS above')"
exit $status
