# run_demo.sh's KV modes (sourced by run_demo.sh; uses $bin).
#   kv-golden:  3 members on loopback, 100 writes, leader kill -9, new leader, every
#               acknowledged write still there, 20 more writes, the killed member restarted
#               from its data dir and caught up, clean stop.
#   kv-failure: kv_client asks a server that is not running: exit 2.

kvc="$bin/kv_client"
kvs="$bin/kv_server"
if [[ ! -x "$kvc" || ! -x "$kvs" ]]; then
  echo "ERROR: invalid input or unavailable IPC resource: $kvs / $kvc not built (run 'make' first)" >&2
  echo "exit=2"
  exit 2
fi

# Free loopback ports, chosen by the kernel (so parallel runs do not collide).
free_ports() {
  python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

json_field() {  # json_field EXPR  (reads one JSON object on stdin; EXPR in python, j = object)
  python3 -c "import json,sys; j=json.load(sys.stdin); print($1)"
}

kv_pids=()
kv_dir=""
kv_cleanup() {
  for p in "${kv_pids[@]}"; do
    [[ -n "$p" ]] && kill -TERM "$p" 2>/dev/null
  done
  for p in "${kv_pids[@]}"; do
    [[ -n "$p" ]] && wait "$p" 2>/dev/null
  done
  [[ -n "$kv_dir" ]] && rm -rf "$kv_dir"
}

start_member() {  # start_member I
  local i=$1
  "$kvs" --name "n$i" --listen "127.0.0.1:${cport[$i]}" --peer-listen "127.0.0.1:${pport[$i]}" \
    --cluster "$cluster" --data-dir "$kv_dir/n$i" --log-level warn 2>>"$kv_dir/n$i.log" &
  kv_pids[$i]=$!
}

leader_index() {  # prints the member index (1..3) that leads, or nothing
  local out lead
  out=$("$kvc" --server="$endpoints" --timeout 2 --json status 2>/dev/null) || true
  lead=$(echo "$out" | json_field "next((e['leader'] for e in j.get('endpoints',[]) if e.get('reachable') and e.get('leader')), 0)" 2>/dev/null)
  [[ -z "$lead" || "$lead" == 0 ]] && return
  echo "$out" | json_field "next((i+1 for i,e in enumerate(j['endpoints']) if e.get('reachable') and e['member_id']==$lead), '')" 2>/dev/null
}

wait_leader() {  # wait_leader [EXCEPT]: up to 30 s (CI machines are loaded)
  local l
  for _ in $(seq 300); do
    l=$(leader_index)
    if [[ -n "$l" && "$l" != "${1:-}" ]]; then echo "$l"; return 0; fi
    sleep 0.1
  done
  return 1
}

run_kv_golden() {
  local ports
  read -r -a ports <<<"$(free_ports 6)"
  cport=("" "${ports[0]}" "${ports[1]}" "${ports[2]}")
  pport=("" "${ports[3]}" "${ports[4]}" "${ports[5]}")
  cluster="n1=127.0.0.1:${pport[1]},n2=127.0.0.1:${pport[2]},n3=127.0.0.1:${pport[3]}"
  endpoints="127.0.0.1:${cport[1]},127.0.0.1:${cport[2]},127.0.0.1:${cport[3]}"
  kv_dir=$(mktemp -d /tmp/ringwire-kv-demo.XXXXXX)
  trap kv_cleanup EXIT

  step "start a 3-member cluster: $cluster"
  for i in 1 2 3; do start_member "$i"; done
  local lead
  lead=$(wait_leader) || { echo "no leader elected within 30 s"; tail -5 "$kv_dir"/n*.log; return 1; }
  echo "leader: n$lead"

  step "write 100 keys (each acknowledged after a quorum made it durable)"
  local i
  for i in $(seq -w 0 99); do
    "$kvc" --server="$endpoints" --timeout 10 put "demo/key-$i" "value-$i" >/dev/null ||
      { echo "put demo/key-$i failed"; tail -5 "$kv_dir"/n*.log; return 1; }
  done
  local count
  count=$("$kvc" --server="$endpoints" --json get demo/ --prefix --count-only | json_field "j['count']")
  echo "keys under demo/: $count"
  ((count == 100)) || return 3

  step "kill -9 the leader (n$lead)"
  kill -9 "${kv_pids[$lead]}"
  wait "${kv_pids[$lead]}" 2>/dev/null
  kv_pids[$lead]=""
  local killed=$lead
  lead=$(wait_leader "$killed") || { echo "no new leader within 30 s"; tail -5 "$kv_dir"/n*.log; return 1; }
  echo "new leader: n$lead"

  step "every acknowledged write is still there"
  local got
  got=$("$kvc" --server="$endpoints" --json get demo/ --prefix |
    json_field "sum(1 for kv in j['kvs'] if kv['value'] == 'value-' + kv['key'][-2:])")
  echo "keys with the right value: $got of 100"
  ((got == 100)) || return 3

  step "20 more writes without n$killed"
  for i in $(seq 100 119); do
    "$kvc" --server="$endpoints" --timeout 10 put "demo/key-$i" "value-$i" >/dev/null ||
      { echo "put demo/key-$i failed"; tail -5 "$kv_dir"/n*.log; return 1; }
  done

  step "restart n$killed from its data dir; it catches up"
  start_member "$killed"
  local mine=0
  for _ in $(seq 300); do
    mine=$("$kvc" --server="127.0.0.1:${cport[$killed]}" --timeout 1 --json get demo/ --prefix \
      --count-only --serializable 2>/dev/null | json_field "j['count']" 2>/dev/null) || mine=0
    [[ "$mine" == 120 ]] && break
    sleep 0.1
  done
  echo "n$killed serves $mine keys locally (serializable read)"
  [[ "$mine" == 120 ]] || { tail -5 "$kv_dir"/n*.log; return 3; }

  step "stop every member"
  kv_cleanup
  kv_pids=()
  kv_dir=""
  trap - EXIT
  if [[ -n "$(ls /dev/shm 2>/dev/null | grep '^ringwire\.demo\.' || true)" ]]; then
    echo "leaked shared memory"; return 3
  fi
  echo "all members stopped; nothing left in /dev/shm"
  echo
  echo "kv-golden: 120 writes acknowledged, 0 lost across a leader kill, restarted member caught up"
  echo "OK: golden scenario completed"
}

run_kv_failure() {
  local port rc
  port=$(free_ports 1)
  step "ask a kv_server that is not running (127.0.0.1:$port)"
  "$kvc" --server="127.0.0.1:$port" --timeout 2 get some-key; rc=$?
  echo "kv_client exit=$rc"
  ((rc == 2)) || { echo "unexpected exit code $rc (wanted 2)"; return 1; }
  echo
  echo "ERROR: invalid input or unavailable IPC resource"
  echo "exit=2"
  return 2
}
