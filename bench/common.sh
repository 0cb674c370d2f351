# Shell helpers of the benchmark scripts (sourced, not run).

# Share of CPU time (all CPUs, user+system+steal) not idle over the next second: the numbers
# are only as good as the machine is quiet, so every script reports it before it starts.
cpu_busy_pct() {
  local a b
  read -r -a a < <(grep '^cpu ' /proc/stat)
  sleep 1
  read -r -a b < <(grep '^cpu ' /proc/stat)
  local total=0 idle=0 i
  for i in 1 2 3 4 5 6 7 8; do total=$((total + b[i] - a[i])); done
  idle=$((b[4] - a[4] + b[5] - a[5]))
  if ((total > 0)); then echo $((100 * (total - idle) / total)); else echo 0; fi
}
