# Shell helpers shared by the KV benchmark scripts (sourced, not run). The sourcing script
# owns the `pids` array (every process it starts) and `tmp` (its temp dir); kv_bench_cleanup
# stops those processes by PID and removes the temp dir.

# shellcheck source=bench/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"  # cpu_busy_pct

kv_bench_cleanup() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$p" 2>/dev/null; then
      echo "$(basename "$0"): pid $p ignored SIGTERM; killing it" >&2
      kill -KILL "$p" 2>/dev/null || true
    fi
    wait "$p" 2>/dev/null || true
  done
  pids=()
  rm -rf "$tmp"
}

port_busy() {  # port_busy PORT: something listens on 127.0.0.1:PORT
  python3 -c 'import socket,sys
s=socket.socket(); s.settimeout(0.3)
sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 else 1)' "$1"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

stop_pids() {  # stop_pids PID...: stop those processes (TERM, then KILL) and forget them
  local p keep=() q
  for p in "$@"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "$@"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  for q in "${pids[@]}"; do
    [[ " $* " == *" $q "* ]] || keep+=("$q")
  done
  pids=("${keep[@]+"${keep[@]}"}")
}

# Waits (bounded) until every endpoint answers status and one of them is the leader.
wait_cluster() {  # wait_cluster KV_CLIENT ENDPOINTS SECONDS
  local client="$1" eps="$2" deadline=$(($(date +%s) + $3))
  while (($(date +%s) < deadline)); do
    if "$client" --server "$eps" --timeout 1 --json status 2>/dev/null | python3 -c '
import json,sys
e=json.load(sys.stdin)["endpoints"]
sys.exit(0 if all(x["reachable"] for x in e) and any(x.get("is_leader") for x in e) else 1)'
    then return 0; fi
    sleep 0.2
  done
  return 1
}


# Starts a 3-member etcd cluster on client ports 23791-23793 (peers 23801-23803), data in
# $tmp; appends the PIDs to `pids` and sets `etcd_pids`. Returns 1 (reason in skip_reason) if
# etcd is missing or a port is taken. Not to be called in a subshell: the PIDs must reach `pids`.
start_etcd3() {
  etcd_pids=()
  if ! command -v etcd >/dev/null 2>&1; then
    skip_reason="not installed; scripts/setup-deps.sh --bench installs etcd-server"; return 1
  fi
  local busy_ports="" p i
  for p in 23791 23792 23793 23801 23802 23803; do if port_busy "$p"; then busy_ports+=" $p"; fi; done
  if [[ -n "$busy_ports" ]]; then skip_reason="ports in use:$busy_ports"; return 1; fi
  local cluster="e1=http://127.0.0.1:23801,e2=http://127.0.0.1:23802,e3=http://127.0.0.1:23803"
  for i in 1 2 3; do
    etcd --name "e$i" --data-dir "$tmp/etcd-e$i" \
      --listen-client-urls "http://127.0.0.1:2379$i" --advertise-client-urls "http://127.0.0.1:2379$i" \
      --listen-peer-urls "http://127.0.0.1:2380$i" --initial-advertise-peer-urls "http://127.0.0.1:2380$i" \
      --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token rw-kv-bench \
      --log-level warn >"$tmp/etcd-e$i.log" 2>&1 &
    pids+=($!); etcd_pids+=($!)
  done
  return 0
}
etcd3_endpoints="127.0.0.1:23791,127.0.0.1:23792,127.0.0.1:23793"

# Starts a 3-member kv_server cluster (client ports 9001-9003, peers 9101-9103), data in $tmp;
# appends to `pids`, sets `rw_pids`. Returns 1 (reason in skip_reason) if it cannot.
start_ringwire3() {  # start_ringwire3 KV_SERVER
  local server="$1" busy_ports="" p i
  rw_pids=()
  if [[ ! -x "$server" ]]; then skip_reason="$server not built"; return 1; fi
  for p in 9001 9002 9003 9101 9102 9103; do if port_busy "$p"; then busy_ports+=" $p"; fi; done
  if [[ -n "$busy_ports" ]]; then skip_reason="ports in use:$busy_ports"; return 1; fi
  local cluster="n1=127.0.0.1:9101,n2=127.0.0.1:9102,n3=127.0.0.1:9103"
  for i in 1 2 3; do
    mkdir -p "$tmp/rw-n$i"
    "$server" --name "n$i" --listen "127.0.0.1:900$i" --peer-listen "127.0.0.1:910$i" \
      --cluster "$cluster" --data-dir "$tmp/rw-n$i" >"$tmp/rw-n$i.log" 2>&1 &
    pids+=($!); rw_pids+=($!)
  done
  return 0
}
ringwire3_endpoints="127.0.0.1:9001,127.0.0.1:9002,127.0.0.1:9003"

# Starts one redis-server (no persistence) on a free loopback port; sets redis_port and
# redis_pid, appends to `pids`. Returns 1 (reason in skip_reason) if redis is not installed.
start_redis() {
  if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-benchmark >/dev/null 2>&1; then
    skip_reason="redis-server / redis-benchmark not installed"; return 1
  fi
  redis_port="$(free_port)"
  redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$tmp" --daemonize no >"$tmp/redis.log" 2>&1 &
  redis_pid=$!; pids+=("$redis_pid")
  for _ in $(seq 50); do port_busy "$redis_port" && break; sleep 0.1; done
  return 0
}
