#!/usr/bin/env bash
# Runs ipc_bench (inter-process transports) with its default settings, saves
# the JSON object to build/ipc-bench.json and draws the latency plot
# docs/img/ipc_latency.svg (gnuplot: p50 / p99 / p99.9 per transport, log scale).
# Starts the iceoryx daemon (iox-roudi) for the run if it is installed and not
# already running, and stops it again (only the one it started).
# Usage: bench/run_ipc_bench.sh [extra ipc_bench options, e.g. --quick]
# Env:   BUILD_DIR       where bin/ipc_bench is (default: build)
#        IPC_BENCH_JSON  JSON output (default: build/ipc-bench.json)
#        IPC_BENCH_PLOT  plot output (default: docs/img/ipc_latency.svg; empty: no plot)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"
bin="$build/bin/ipc_bench"
json="${IPC_BENCH_JSON:-$root/build/ipc-bench.json}"
plot="${IPC_BENCH_PLOT-$root/docs/img/ipc_latency.svg}"

if [[ ! -x "$bin" ]]; then
  echo "run_ipc_bench: $bin not found; build first (cmake --build $build --target ipc_bench)" >&2
  exit 2
fi
mkdir -p "$(dirname "$json")"

# ---- load check (as run_benchmarks.sh), before RouDi's own start-up work ---------------
# shellcheck source=bench/common.sh
source "$root/bench/common.sh"
pct="$(cpu_busy_pct)"
echo "run_ipc_bench: CPUs were ${pct}% busy in the second before the run"
if ((pct > 10)); then
  echo "run_ipc_bench: warning: other work is running; expect disturbed reps and wider ranges" >&2
fi

# ---- iceoryx daemon ------------------------------------------------------------
roudi_pid=""
roudi_up() {
  # RouDi listens on the datagram socket /tmp/roudi; connect() works only while it is bound.
  python3 -c 'import socket,sys
s=socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
try:
    s.connect("/tmp/roudi")
except OSError:
    sys.exit(1)' 2>/dev/null
}
stop_roudi() {
  if [[ -n "$roudi_pid" ]]; then
    kill -TERM "$roudi_pid" 2>/dev/null || true
    for _ in $(seq 150); do
      kill -0 "$roudi_pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$roudi_pid" 2>/dev/null; then
      echo "run_ipc_bench: iox-roudi (pid $roudi_pid) ignored SIGTERM; killing it" >&2
      kill -KILL "$roudi_pid" 2>/dev/null || true
    fi
    wait "$roudi_pid" 2>/dev/null || true
    echo "run_ipc_bench: stopped iox-roudi (pid $roudi_pid)"
    roudi_pid=""
  fi
}
trap stop_roudi EXIT
if command -v iox-roudi >/dev/null 2>&1; then
  if roudi_up; then
    echo "run_ipc_bench: iox-roudi is already running; using it (and leaving it running)"
  else
    iox-roudi -l warning >"$build/iox-roudi.log" 2>&1 &
    roudi_pid=$!
    for _ in $(seq 100); do
      roudi_up && break
      kill -0 "$roudi_pid" 2>/dev/null || break
      sleep 0.1
    done
    if roudi_up; then
      echo "run_ipc_bench: started iox-roudi (pid $roudi_pid, log $build/iox-roudi.log)"
    else
      echo "run_ipc_bench: iox-roudi did not come up (see $build/iox-roudi.log); iceoryx will be reported unavailable" >&2
      stop_roudi
    fi
  fi
else
  echo "run_ipc_bench: iox-roudi not installed; iceoryx will be reported unavailable"
fi

# ---- run ------------------------------------------------------------------------------
status=0
"$bin" --json "$@" >"$json.tmp" || status=$?
mv "$json.tmp" "$json"
echo "run_ipc_bench: JSON written to $json (exit status $status)"
stop_roudi

# ---- plot -----------------------------------------------------------------------------
if [[ -n "$plot" ]]; then
  if ! command -v gnuplot >/dev/null 2>&1; then
    echo "run_ipc_bench: gnuplot not installed (scripts/setup-deps.sh --bench); no plot" >&2
  else
    data="$(mktemp)"
    python3 - "$json" >"$data" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
for r in j["summary"]["latency"]:
    if r["ok_reps"] == 0:
        continue
    print('"%s"\t%g\t%g\t%g\t%g' % (r["transport"], r["p50"]["median"], r["p99"]["median"],
                                  r["p999"]["median"], r["floor_p50_same_cell"]["median"]))
PY
    if [[ -s "$data" ]]; then
      mkdir -p "$(dirname "$plot")"
      read -r reps rtts size < <(python3 -c 'import json,sys; c=json.load(open(sys.argv[1]))["config"]; print(c["reps"], c["latency_round_trips_per_rep"], c["latency_message_bytes"])' "$json")
      gnuplot <<GP
set terminal svg size 1100,520 dynamic font 'sans,11' background '#ffffff'
set output '$plot'
set title "ipc\\\\_bench: one-way latency (RTT/2, $size B), two processes on two pinned CPUs; median of $reps reps x $rtts round trips"
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y
set yrange [10:*]
set ylabel 'ns (log scale)'
set grid ytics mytics
set xtics rotate by -30 nomirror
set key top left
plot '$data' using 2:xtic(1) title 'p50', '' using 3 title 'p99', '' using 4 title 'p99.9', '' using 5 title 'floor p50 (same cell)'
GP
      echo "run_ipc_bench: plot written to $plot"
    fi
    rm -f "$data"
  fi
fi
exit $status
