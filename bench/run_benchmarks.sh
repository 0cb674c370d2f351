#!/usr/bin/env bash
# Runs the benchmark harness with its default settings, prints the table and
# writes the JSON results to $BUILD_DIR/bench-results.json.
# Usage: bench/run_benchmarks.sh [extra ringwire_bench options, e.g. --quick]
# Env:   BUILD_DIR (default: build, as used by `make bench`)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"
bin="$build/bin/ringwire_bench"
out="$build/bench-results.json"

if [[ ! -x "$bin" ]]; then
  echo "run_benchmarks: $bin not found; build first (make bench, or cmake --build $build)" >&2
  exit 2
fi

# The numbers are only as good as the machine is quiet: report how busy the
# CPUs were over the last second before we start (user+system+steal share).
# shellcheck source=bench/common.sh
source "$root/bench/common.sh"
pct="$(cpu_busy_pct)"
echo "run_benchmarks: CPUs were ${pct}% busy in the second before the run"
if ((pct > 10)); then
  echo "run_benchmarks: warning: other work is running; expect disturbed reps and wider ranges" >&2
fi

status=0
"$bin" --json-file "$out" "$@" || status=$?
echo "run_benchmarks: JSON results written to $out"

# Then the multi-producer / multi-consumer run (ringwire_bench_mpmc). It takes
# --quick from the arguments above; anything else goes in RWBENCH_MPMC_ARGS
# (e.g. RWBENCH_MPMC_ARGS="--reps 3 --items 1000000").
mpmc_bin="$build/bin/ringwire_bench_mpmc"
mpmc_out="$build/bench-mpmc-results.json"
if [[ -x "$mpmc_bin" ]]; then
  mpmc_args=()
  for a in "$@"; do
    if [[ "$a" == "--quick" ]]; then mpmc_args+=(--quick); fi
  done
  # shellcheck disable=SC2206  # word splitting of the extra options is intended
  mpmc_args+=(${RWBENCH_MPMC_ARGS:-})
  echo
  mpmc_status=0
  "$mpmc_bin" --json-file "$mpmc_out" "${mpmc_args[@]}" || mpmc_status=$?
  echo "run_benchmarks: MPMC JSON results written to $mpmc_out"
  # A verification failure (3) outranks anything else.
  if ((mpmc_status == 3 || (status == 0 && mpmc_status != 0))); then status=$mpmc_status; fi
else
  echo "run_benchmarks: $mpmc_bin not built; skipping the MPSC / MPMC run" >&2
fi
exit $status
