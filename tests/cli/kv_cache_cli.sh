#!/usr/bin/env bash
# End-to-end checks of the kv_cache agent's command line and of kv_client --cache / stats
# --cache: --help, validation and exit codes without a cluster; then, against a one-member
# kv_server, a read that misses, is filled and then hits, the JSON outcome, a second agent
# refused, a clean SIGTERM that leaves nothing in /dev/shm, and reads falling back to RPC.
# Usage: kv_cache_cli.sh BIN_DIR SOURCE_DIR
set -u
bin="$1"
a="$bin/kv_cache" c="$bin/kv_client" srv="$bin/kv_server"
for b in "$a" "$c" "$srv"; do
  if [[ ! -x "$b" ]]; then echo "SKIP: $b not built"; exit 0; fi
done
tmp=$(mktemp -d /tmp/rw_kvcache_cli.XXXXXX)
name="clitest$$"
started=()
stop() {  # stop PID: TERM, wait up to 5 s, then KILL
  kill "$1" 2>/dev/null
  for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$1" 2>/dev/null
  wait "$1" 2>/dev/null
}
cleanup() {
  local p
  for p in "${started[@]}"; do stop "$p"; done
  rm -f "/dev/shm/ringwire.$name" "/dev/shm/ringwire.$name.fill"
  rm -rf "$tmp"
}
trap cleanup EXIT
fails=0
out="$tmp/out" err="$tmp/err"
# shellcheck source=tests/cli/lib/harness.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/harness.sh"
err_line() { grep -q '^ERROR: invalid input or unavailable IPC resource' "$err"; }
jq_py() { python3 -c "import json,sys; j=json.load(open('$out')); sys.exit(0 if ($1) else 1)"; }

# ---- without a cluster ------------------------------------------------------------------------
expect 0 "kv_cache --help exits 0" -- "$a" --help
check "--help documents exit codes" -- grep -q "Exit codes" "$out"
expect 2 "kv_cache without options" -- "$a"
check "missing options give the ERROR line" -- err_line
expect 2 "kv_cache --capacity 0" -- "$a" --cluster 127.0.0.1:1 --name "$name" --capacity 0
check "--capacity 0 gives the ERROR line" -- err_line
expect 2 "kv_cache --key-max too large" -- "$a" --cluster 127.0.0.1:1 --name "$name" --key-max 100000
expect 2 "kv_cache bad endpoint" -- "$a" --cluster nohost --name "$name"
expect 2 "kv_cache bad name" -- "$a" --cluster 127.0.0.1:1 --name "a/b"
expect 2 "stats without --cache" -- "$c" stats
expect 2 "stats of a cache that does not exist" -- "$c" --cache "nosuch$$" stats
check "no cache gives the ERROR line" -- err_line
check "no segment was left behind by the refusals" -- test ! -e "/dev/shm/ringwire.$name"

# ---- one kv_server ----------------------------------------------------------------------------
port=$(free_port) peer=$(free_port)
mkdir -p "$tmp/data"
"$srv" --name n1 --listen "127.0.0.1:$port" --peer-listen "127.0.0.1:$peer" \
  --cluster "n1=127.0.0.1:$peer" --data-dir "$tmp/data" >"$tmp/server.log" 2>&1 &
started+=($!)
ep="127.0.0.1:$port"
up=0
for _ in $(seq 100); do
  if "$c" --server "$ep" --timeout 1 put cli/k v1 >/dev/null 2>&1; then up=1; break; fi
  sleep 0.1
done
check "kv_server is up" -- test "$up" = 1

"$a" --cluster "$ep" --name "$name" --capacity 1000 --json --log-level warn \
  >"$tmp/agent.out" 2>"$tmp/agent.err" &
agent=$!
started+=("$agent")
for _ in $(seq 100); do
  "$c" --server "$ep" --json --cache "$name" stats >"$out" 2>/dev/null &&
    jq_py 'j["agent_state"] == "serving"' && break
  sleep 0.1
done
check "agent prints one JSON start object" -- python3 -c '
import json,sys; l=open(sys.argv[1]).read().splitlines(); j=json.loads(l[0])
sys.exit(0 if len(l) == 1 and j["status"] == "started" and j["name"] == sys.argv[2] else 1)' \
  "$tmp/agent.out" "$name"
check "agent is serving" -- jq_py 'j["agent_state"] == "serving"'
expect 2 "a second agent for the same cache is refused" -- "$a" --cluster "$ep" --name "$name"
check "refusal gives the ERROR line" -- err_line
check "the first agent survived the refusal" -- kill -0 "$agent"

expect 0 "first get through the cache (a miss, answered by RPC)" -- \
  "$c" --server "$ep" --cache "$name" get cli/k
check "the value is printed" -- grep -qx "v1" "$out"
check "the outcome is reported on stderr" -- grep -q "^cache $name: " "$err"
hit=0
for _ in $(seq 50); do
  "$c" --server "$ep" --json --cache "$name" get cli/k >"$out" 2>"$err"
  if jq_py 'j["cache"]["hit"] and j["kvs"][0]["value"] == "v1"'; then hit=1; break; fi
  sleep 0.05
done
check "a later get is a cache hit with the right value" -- test "$hit" = 1
expect 0 "--json get prints one object with the cache outcome" -- \
  "$c" --server "$ep" --json --cache "$name" get cli/k
check "cache outcome is hit" -- jq_py 'j["cache"]["outcome"] == "hit" and j["cache"]["revision"] > 0'
expect 0 "get --linearizable bypasses the cache" -- \
  "$c" --server "$ep" --json --cache "$name" get cli/k --linearizable
check "linearizable outcome" -- jq_py 'j["cache"]["outcome"] == "linearizable" and not j["cache"]["hit"]'
expect 1 "a missing key through the cache exits 1" -- "$c" --server "$ep" --cache "$name" get cli/none
"$c" --server "$ep" put cli/k v2 >/dev/null 2>&1
seen=0
for _ in $(seq 50); do
  "$c" --server "$ep" --json --cache "$name" get cli/k >"$out" 2>"$err"
  if jq_py 'j["cache"]["hit"] and j["kvs"][0]["value"] == "v2"'; then seen=1; break; fi
  sleep 0.05
done
check "an update reaches the cache through the watch" -- test "$seen" = 1
expect 0 "stats --cache (text)" -- "$c" --server "$ep" --cache "$name" stats
check "stats text shows the hit rate" -- grep -q "^hit rate " "$out"
expect 0 "stats --cache --json" -- "$c" --server "$ep" --json --cache "$name" stats
check "stats JSON has entries, hits and a lag" -- \
  jq_py 'j["entries"] >= 1 and j["hits"] >= 2 and j["revision_lag"] is not None and j["revision_lag"] >= 0'

stop "$agent"
wait "$agent" 2>/dev/null
check "SIGTERM removes the segments" -- \
  test ! -e "/dev/shm/ringwire.$name" -a ! -e "/dev/shm/ringwire.$name.fill"
expect 0 "get with the agent gone falls back to RPC" -- \
  "$c" --server "$ep" --json --cache "$name" get cli/k
check "fallback answer is right and says unavailable" -- \
  jq_py 'j["kvs"][0]["value"] == "v2" and not j["cache"]["hit"] and j["cache"]["outcome"] == "unavailable"'

if ((fails > 0)); then echo "$fails check(s) failed"; exit 1; fi
echo "all kv_cache CLI checks passed"
