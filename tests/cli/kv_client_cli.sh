#!/usr/bin/env bash
# End-to-end checks of kv_client's command line: --help, validation, exit codes and the
# "server unavailable" path without any server; then, when etcd is installed, every command
# against a single throw-away etcd (same gRPC API as kv_server).
# Usage: kv_client_cli.sh BIN_DIR SOURCE_DIR
set -u
bin="$1"
c="$bin/kv_client"
if [[ ! -x "$c" ]]; then
  echo "SKIP: $c not built (RINGWIRE_BUILD_KV=OFF?)"
  exit 0
fi
tmp=$(mktemp -d /tmp/rw_kvc_cli.XXXXXX)
etcd_pid=""
cleanup() {
  if [[ -n "$etcd_pid" ]]; then
    kill "$etcd_pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$etcd_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$etcd_pid" 2>/dev/null
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
fails=0
out="$tmp/out" err="$tmp/err"
# shellcheck source=tests/cli/lib/harness.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/harness.sh"
err_line() { head -n1 "$err" | grep -q '^ERROR: invalid input or unavailable IPC resource'; }
json_ok() { python3 -c 'import json,sys; json.load(sys.stdin)' <"$out"; }

# ---- without a server ----------------------------------------------------------------------
expect 0 "--help exits 0" -- "$c" --help
check "--help documents exit codes" -- grep -q "Exit codes" "$out"
for sub in put get del txn watch members status bench; do
  expect 0 "$sub --help exits 0" -- "$c" "$sub" --help
done
expect 2 "no subcommand is invalid input" -- "$c"
check "parse error has the ERROR line" -- err_line
expect 2 "unknown flag" -- "$c" --bogus get k
expect 2 "unknown subcommand" -- "$c" frobnicate
expect 2 "put without a value" -- "$c" put k
expect 2 "get without a key" -- "$c" get
expect 2 "txn without an expectation" -- "$c" txn --key k --put-value v
check "txn error has the ERROR line" -- err_line
expect 2 "txn with two expectations" -- "$c" txn --key k --expect-absent --expect-value a --put-value v
expect 2 "bad --rev" -- "$c" get k --rev -3
expect 2 "bad --timeout" -- "$c" --timeout 0 get k
expect 2 "server without a port" -- "$c" --server nohost get k
check "bad server has the ERROR line" -- err_line
expect 2 "server with a bad port" -- "$c" --server 127.0.0.1:99999 get k
expect 2 "bench op must be put or get" -- "$c" bench scan
expect 2 "bench key size too small for --keys" -- "$c" bench put --key-size 2 --keys 1000

dead=$(free_port)
for cmd in "put k v" "get k" "del k" "txn --key k --expect-absent --put-value v" \
           "watch k --count 1 --timeout 2" "members" "status" "bench put --ops 10"; do
  t0=$(date +%s%N)
  # shellcheck disable=SC2086
  expect 2 "unreachable server: $cmd" -- "$c" --server "127.0.0.1:$dead" --timeout 2 $cmd
  ms=$((($(date +%s%N) - t0) / 1000000))
  check "unreachable server: $cmd: ERROR line" -- err_line
  check "unreachable server: $cmd: fails within 5 s (${ms} ms)" -- test "$ms" -lt 5000
done
expect 2 "unreachable server, --json" -- "$c" --json --server "127.0.0.1:$dead" get k
check "unreachable --json is one JSON object with exit_code 2" -- python3 -c \
  'import json,sys; j=json.load(sys.stdin); assert j["exit_code"]==2 and not j["ok"]' <"$out"
expect 2 "all of several unreachable servers" -- "$c" --server "127.0.0.1:$dead,127.0.0.1:$(free_port)" put k v
check "message names both endpoints" -- grep -q "cannot reach 127.0.0.1:$dead.*;" "$err"

# ---- against a real etcd (same gRPC API as kv_server) -----------------------------------
if ! command -v etcd >/dev/null 2>&1; then
  echo "SKIP: etcd not installed; end-to-end part skipped (scripts/setup-deps.sh --bench installs it)"
  echo "kv_client_cli: $fails failure(s)"
  exit $((fails > 0))
fi
cport=$(free_port); pport=$(free_port)
while [[ "$pport" == "$cport" ]]; do pport=$(free_port); done
etcd --name cli1 --data-dir "$tmp/etcd" \
  --listen-client-urls "http://127.0.0.1:$cport" --advertise-client-urls "http://127.0.0.1:$cport" \
  --listen-peer-urls "http://127.0.0.1:$pport" --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
  --initial-cluster "cli1=http://127.0.0.1:$pport" >"$tmp/etcd.log" 2>&1 &
etcd_pid=$!
s=(--server "127.0.0.1:$cport")
up=0
for _ in $(seq 100); do
  if "$c" "${s[@]}" --timeout 1 status >/dev/null 2>&1; then up=1; break; fi
  kill -0 "$etcd_pid" 2>/dev/null || break
  sleep 0.1
done
if [[ "$up" != 1 ]]; then
  echo "FAIL: etcd did not come up"; tail -20 "$tmp/etcd.log"
  echo "kv_client_cli: $((fails + 1)) failure(s)"; exit 1
fi
echo "ok: etcd up on 127.0.0.1:$cport (pid $etcd_pid)"

expect 0 "put" -- "$c" "${s[@]}" put k v
check "put prints OK" -- test "$(cat "$out")" = "OK"
expect 0 "put --prev-kv" -- "$c" "${s[@]}" put k v2 --prev-kv
check "put --prev-kv prints OK, key, old value" -- test "$(cat "$out")" = $'OK\nk\nv'
expect 0 "get" -- "$c" "${s[@]}" get k
check "get prints key then value" -- test "$(cat "$out")" = $'k\nv2'
expect 1 "get of a missing key exits 1" -- "$c" "${s[@]}" get missing
check "missing key message" -- grep -q "^key not found: missing" "$err"
expect 0 "put k2" -- "$c" "${s[@]}" put k2 x
expect 0 "get --prefix" -- "$c" "${s[@]}" get k --prefix
check "prefix lists both" -- test "$(cat "$out")" = $'k\nv2\nk2\nx'
expect 0 "get --prefix --keys-only --limit 1" -- "$c" "${s[@]}" get k --prefix --keys-only --limit 1
check "one key, no value" -- test "$(cat "$out")" = "k"
expect 0 "get --count-only" -- "$c" "${s[@]}" get k --prefix --count-only
check "count 2" -- test "$(cat "$out")" = "2"
expect 0 "get --serializable" -- "$c" "${s[@]}" get k --serializable
expect 0 "get --json" -- "$c" "${s[@]}" --json get k
check "get --json parses" -- json_ok
check "get --json fields" -- python3 -c \
  'import json,sys; j=json.load(sys.stdin); kv=j["kvs"][0]; assert kv["key"]=="k" and kv["value"]=="v2" and kv["version"]==2' <"$out"
rev1=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["kvs"][0]["create_revision"])' <"$out")
expect 0 "get --rev (old revision)" -- "$c" "${s[@]}" get k --rev "$rev1"
check "old revision has the old value" -- test "$(cat "$out")" = $'k\nv'
expect 1 "get --json of a missing key exits 1" -- "$c" "${s[@]}" --json get missing
check "missing key --json parses, found false" -- python3 -c \
  'import json,sys; j=json.load(sys.stdin); assert j["found"] is False and j["kvs"]==[]' <"$out"

expect 0 "txn --expect-value (holds)" -- "$c" "${s[@]}" txn --key k --expect-value v2 --put-value v3
check "SUCCEEDED" -- test "$(cat "$out")" = "SUCCEEDED"
expect 1 "txn --expect-value (fails)" -- "$c" "${s[@]}" txn --key k --expect-value v2 --put-value v4
check "FAILED" -- test "$(cat "$out")" = "FAILED"
expect 0 "txn --expect-absent creates" -- "$c" "${s[@]}" --json txn --key fresh --expect-absent --put-value n
check "txn --json parses, succeeded" -- python3 -c \
  'import json,sys; assert json.load(sys.stdin)["succeeded"] is True' <"$out"
expect 1 "txn --expect-absent on an existing key" -- "$c" "${s[@]}" --json txn --key fresh --expect-absent --put-value m
check "txn --json failed shows current value" -- python3 -c \
  'import json,sys; j=json.load(sys.stdin); assert j["succeeded"] is False and j["current"]["value"]=="n"' <"$out"
"$c" "${s[@]}" --json get fresh >"$out" 2>"$err"
mrev=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["kvs"][0]["mod_revision"])' <"$out")
expect 0 "txn --expect-mod-rev (holds)" -- "$c" "${s[@]}" txn --key fresh --expect-mod-rev "$mrev" --put-value n2
expect 1 "txn --expect-mod-rev (stale)" -- "$c" "${s[@]}" txn --key fresh --expect-mod-rev "$mrev" --put-value n3

# watch: history from a revision (deterministic), then live events in the background.
expect 0 "watch --rev history" -- "$c" "${s[@]}" watch k --rev "$rev1" --count 3 --timeout 5
check "watch prints PUT/key/value per event" -- test "$(cat "$out")" = $'PUT\nk\nv\nPUT\nk\nv2\nPUT\nk\nv3'
"$c" "${s[@]}" --json watch w --prefix --prev-kv --count 3 --timeout 10 >"$tmp/watch.out" 2>"$tmp/watch.err" &
wpid=$!
sleep 0.7
"$c" "${s[@]}" put w1 a >/dev/null && "$c" "${s[@]}" put w1 b >/dev/null && "$c" "${s[@]}" del w1 >/dev/null
wait "$wpid"; wrc=$?
cp "$tmp/watch.out" "$out"; cp "$tmp/watch.err" "$err"
check "live watch exits 0 (rc $wrc)" -- test "$wrc" = 0
check "live watch --json: PUT, PUT with prev_kv, DELETE" -- python3 -c '
import json,sys
j=json.load(sys.stdin); e=j["events"]
assert [x["type"] for x in e]==["PUT","PUT","DELETE"], e
assert e[0]["value"]=="a" and e[1]["value"]=="b" and e[1]["prev_kv"]["value"]=="a", e
assert j["complete"] is True' <"$out"
t0=$(date +%s%N)
expect 1 "watch --count with too few events exits 1 at --timeout" -- "$c" "${s[@]}" watch nothing --count 1 --timeout 1
ms=$((($(date +%s%N) - t0) / 1000000))
check "watch timeout is bounded (${ms} ms)" -- test "$ms" -lt 4000

expect 0 "del" -- "$c" "${s[@]}" del k2
check "del prints 1" -- test "$(cat "$out")" = "1"
expect 0 "del --prefix --prev-kv --json" -- "$c" "${s[@]}" --json del k --prefix --prev-kv
check "del --json: 1 deleted with prev kv" -- python3 -c \
  'import json,sys; j=json.load(sys.stdin); assert j["deleted"]==1 and j["prev_kvs"][0]["key"]=="k"' <"$out"
expect 1 "get after del exits 1" -- "$c" "${s[@]}" get k

expect 0 "members" -- "$c" "${s[@]}" members
check "members table has the member" -- grep -q "cli1 .*http://127.0.0.1:$pport .*http://127.0.0.1:$cport .*false" "$out"
expect 0 "members --json" -- "$c" "${s[@]}" --json members
check "members --json parses" -- python3 -c \
  'import json,sys; m=json.load(sys.stdin)["members"]; assert len(m)==1 and m[0]["name"]=="cli1"' <"$out"
expect 0 "status" -- "$c" "${s[@]}" status
check "status says leader" -- grep -q "127.0.0.1:$cport .* true " "$out"
expect 0 "status with one member down" -- "$c" --server "127.0.0.1:$cport,127.0.0.1:$dead" --timeout 2 status
check "down member shown unreachable" -- grep -q "127.0.0.1:$dead *unreachable" "$out"
expect 0 "status --json" -- "$c" --json --server "127.0.0.1:$cport,127.0.0.1:$dead" --timeout 2 status
check "status --json: reachable leader + unreachable" -- python3 -c '
import json,sys
e=json.load(sys.stdin)["endpoints"]
assert e[0]["reachable"] and e[0]["is_leader"] and e[0]["raft_term"]>=1 and not e[1]["reachable"], e' <"$out"

# failover: the first endpoint is dead, the second answers.
expect 0 "failover from a dead endpoint" -- "$c" --server "127.0.0.1:$dead" --server "127.0.0.1:$cport" --timeout 2 put fo 1
expect 0 "read after failover" -- "$c" --server "127.0.0.1:$dead,127.0.0.1:$cport" --timeout 2 get fo

expect 0 "bench put" -- "$c" "${s[@]}" bench put --clients 4 --ops 400 --keys 50
check "bench put reports OK" -- grep -q "^OK" "$out"
expect 0 "bench get --json" -- "$c" "${s[@]}" --json bench get --clients 4 --ops 400 --keys 50 --channels 2
check "bench --json fields" -- python3 -c '
import json,sys
j=json.load(sys.stdin)
assert j["ops"]==400 and j["errors"]==0 and j["ops_per_sec"]>0, j
assert j["p50_us"]<=j["p90_us"]<=j["p99_us"]<=j["p999_us"]<=j["max_us"], j' <"$out"
expect 0 "bench get --serializable, 1 client" -- "$c" "${s[@]}" bench get --clients 1 --ops 100 --keys 10 --serializable --key-size 32 --value-size 1000
expect 0 "bench keys are exactly --key-size bytes" -- "$c" "${s[@]}" --json get b --prefix --keys-only
check "every bench key is 32 bytes" -- python3 -c '
import json,sys
ks=[kv["key"] for kv in json.load(sys.stdin)["kvs"] if len(kv["key"])>16]
assert ks and all(len(k)==32 for k in ks), ks[:3]' <"$out"

echo "kv_client_cli: $fails failure(s)"
exit $((fails > 0))
