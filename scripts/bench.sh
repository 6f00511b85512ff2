#!/usr/bin/env bash
# Builds and runs the benchmarks behind docs/PERFORMANCE.md, writes their
# JSON to <out_dir>/bench_dispatch.json and <out_dir>/bench_models.json, and
# prints the ratios the doc reports (scripts/bench_summary.py).
#
#   scripts/bench.sh [out_dir] [google-benchmark flags...]
#
# out_dir defaults to out/bench; the build goes to build/ (or
# $QALLOW_BUILD_DIR), RelWithDebInfo unless CMAKE_BUILD_TYPE says otherwise.
# Extra flags go to both programs, e.g. --benchmark_repetitions=3 (the
# summary then uses the medians).  Takes about 1.5 minutes on 2 cores.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${QALLOW_BUILD_DIR:-$root/build}
out=${1:-$root/out/bench}
shift || true

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=${CMAKE_BUILD_TYPE:-RelWithDebInfo} -DQALLOW_BUILD_BENCH=ON >/dev/null
# bench_ingest: fleet ingest, verified against unsigned, SQLite and PostgreSQL
# (about 4 minutes more; its PostgreSQL cases need the server, tests/support).
cmake --build "$build" --target bench_dispatch bench_models bench_ingest -j "$(nproc)"

mkdir -p "$out"
for b in bench_dispatch bench_models bench_ingest; do
  echo "== $b" >&2
  "$build/bench/$b" --benchmark_out="$out/$b.json" --benchmark_out_format=json "$@"
done

if command -v python3 >/dev/null; then
  python3 "$root/scripts/bench_summary.py" "$out"
else
  echo "bench: python3 not found; the ratios are not printed (JSON is in $out)" >&2
fi
