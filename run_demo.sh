#!/usr/bin/env bash
# ringwire demo: the seed's deterministic scenarios.
#   ./run_demo.sh [--mode=golden]   fixed message counts, every message verified
#   ./run_demo.sh --mode=failure    attach to a missing / mismatched segment -> exit 2
#   ./run_demo.sh --mode=crash      producer killed with SIGKILL mid-stream; the
#                                   consumer notices, the segment is reclaimed
#   ./run_demo.sh --mode=kv-golden  3-member kv_server cluster on loopback: writes,
#                                   leader killed, failover, every write still there,
#                                   the killed member restarted and caught up
#   ./run_demo.sh --mode=kv-failure kv_client asks a server that is not running -> exit 2
# Exit codes: 0 ok, 2 invalid input or unavailable IPC resource, 3 verification
# failed, 4 peer died (crash mode exits 0 when the crash was handled correctly).
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
bin="${RINGWIRE_BIN:-$here/build/bin}"
mode="golden"
for arg in "$@"; do
  case "$arg" in
    --mode=*) mode="${arg#--mode=}" ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "ERROR: invalid input or unavailable IPC resource: unknown argument '$arg'" >&2
       echo "exit=2"; exit 2 ;;
  esac
done

spsc="$bin/spsc_queue"
shmtool="$bin/ringwire-shm"
if [[ "$mode" == kv-* ]]; then
  source "$here/scripts/demo_kv.sh"
elif [[ ! -x "$spsc" || ! -x "$shmtool" ]]; then
  echo "ERROR: invalid input or unavailable IPC resource: $spsc not built (run 'make' first)" >&2
  echo "exit=2"
  exit 2
fi

leftovers() { ls /dev/shm 2>/dev/null | grep "^ringwire\.demo\.$$" || true; }

step() { printf '\n== %s\n' "$*"; }

run_golden() {
  local rc
  step "lock-free SPSC ring, 2 processes, 1000000 messages of the seed's 256-byte payload"
  "$bin/spsc_queue" --mode lockfree --iters 1000000 --payload 256 --name "demo.$$.a"; rc=$?
  ((rc == 0)) || { echo "golden step failed: exit=$rc"; return "$rc"; }

  step "same ring, zero-copy batches of 64, 1000000 messages"
  "$spsc" --mode lockfree --iters 1000000 --payload 256 --batch 64 --name "demo.$$.b"; rc=$?
  ((rc == 0)) || { echo "golden step failed: exit=$rc"; return "$rc"; }

  step "mutex baseline, 2 processes, 200000 messages"
  "$spsc" --mode mutex --iters 200000 --payload 256 --name "demo.$$.c"; rc=$?
  ((rc == 0)) || { echo "golden step failed: exit=$rc"; return "$rc"; }

  step "lock-free ring, 2 threads, 1000000 messages"
  "$spsc" --mode lockfree --threads --iters 1000000 --payload 64; rc=$?
  ((rc == 0)) || { echo "golden step failed: exit=$rc"; return "$rc"; }

  step "ping-pong latency, 2 processes, 10000 round trips"
  "$spsc" --mode lockfree --latency --iters 10000 --payload 64 --name "demo.$$.d"; rc=$?
  ((rc == 0)) || { echo "golden step failed: exit=$rc"; return "$rc"; }

  step "nothing left in /dev/shm"
  if [[ -n "$(leftovers)" ]]; then echo "leaked: $(leftovers)"; return 3; fi
  echo "no ringwire.demo.$$.* segments remain"
  echo
  echo "golden: 3200000 messages and 10000 round trips verified, 0 lost, 0 out of order, 0 corrupt"
  echo "OK: golden scenario completed"
}

run_failure() {
  local rc
  step "attach a producer to a segment that does not exist"
  "$spsc" --role producer --name "demo.$$.missing" --iters 10; rc=$?
  echo "spsc_queue exit=$rc"
  ((rc == 2)) || { echo "unexpected exit code $rc (wanted 2)"; return 1; }

  step "attach a producer with 256-byte messages to a ring built for 64-byte messages"
  "$spsc" --role consumer --name "demo.$$.mismatch" --iters 10 --payload 64 --timeout 5 >/dev/null &
  local consumer=$!
  for _ in $(seq 200); do [[ -e /dev/shm/ringwire.demo.$$.mismatch ]] && break; sleep 0.01; done
  "$spsc" --role producer --name "demo.$$.mismatch" --iters 10 --payload 256; rc=$?
  echo "spsc_queue exit=$rc"
  kill -TERM "$consumer" 2>/dev/null; wait "$consumer" 2>/dev/null
  if [[ -n "$(leftovers)" ]]; then echo "leaked: $(leftovers)"; return 3; fi
  ((rc == 2)) || { echo "unexpected exit code $rc (wanted 2)"; return 1; }

  echo
  echo "ERROR: invalid input or unavailable IPC resource"
  echo "exit=2"
  return 2
}

run_crash() {
  local name="demo.$$.crash" rc
  step "consumer creates segment $name; producer streams 1e9 messages; SIGKILL after 0.5 s"
  "$spsc" --role consumer --name "$name" --iters 1000000000 --timeout 10 &
  local consumer=$!
  for _ in $(seq 500); do [[ -e /dev/shm/ringwire.$name ]] && break; sleep 0.01; done
  "$spsc" --role producer --name "$name" --iters 1000000000 --timeout 10 &
  local producer=$!
  sleep 0.5
  "$shmtool" inspect "$name" | sed 's/^/  inspect: /'
  kill -9 "$producer"
  wait "$producer" 2>/dev/null
  echo "producer pid $producer killed with SIGKILL"
  wait "$consumer"; rc=$?
  echo "consumer exit=$rc (4 = peer died)"
  ((rc == 4)) || { echo "consumer did not report the dead producer"; return 1; }
  if [[ -e /dev/shm/ringwire.$name ]]; then
    echo "segment was not reclaimed"; "$shmtool" rm --force "$name"; return 1
  fi
  echo "segment ringwire.$name reclaimed by the consumer"
  echo "OK: crash scenario completed"
}

case "$mode" in
  golden) run_golden ;;
  failure) run_failure ;;
  crash) run_crash ;;
  kv-golden) run_kv_golden ;;
  kv-failure) run_kv_failure ;;
  *) echo "ERROR: invalid input or unavailable IPC resource: unknown mode '$mode' (golden, failure, crash, kv-golden, kv-failure)" >&2
     echo "exit=2"; exit 2 ;;
esac
exit $?
