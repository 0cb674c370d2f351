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
busy() {
  local a b
  read -r -a a < <(grep '^cpu ' /proc/stat)
  sleep 1
  read -r -a b < <(grep '^cpu ' /proc/stat)
  local total=0 idle=0 i
  for i in 1 2 3 4 5 6 7 8; do total=$((total + b[i] - a[i])); done
  idle=$((b[4] - a[4] + b[5] - a[5]))
  if ((total > 0)); then echo $((100 * (total - idle) / total)); else echo 0; fi
}
pct="$(busy)"
echo "run_benchmarks: CPUs were ${pct}% busy in the second before the run"
if ((pct > 10)); then
  echo "run_benchmarks: warning: other work is running; expect disturbed reps and wider ranges" >&2
fi

status=0
"$bin" --json-file "$out" "$@" || status=$?
echo "run_benchmarks: JSON results written to $out"
exit $status
