#!/usr/bin/env bash
# End-to-end checks of spsc_queue's command line: --help, --json, validation
# and exit codes. Usage: spsc_queue_cli.sh BIN_DIR SOURCE_DIR
set -u
bin="$1"
fails=0
expect() {  # expect CODE DESCRIPTION -- command...
  local want="$1" what="$2"; shift 3
  "$@" >/tmp/rw_cli_out.$$ 2>/tmp/rw_cli_err.$$; local got=$?
  if [[ "$got" != "$want" ]]; then
    echo "FAIL: $what: exit $got, wanted $want"; cat /tmp/rw_cli_out.$$ /tmp/rw_cli_err.$$; fails=$((fails + 1))
  else
    echo "ok: $what"
  fi
}
q="$bin/spsc_queue"
expect 0 "--help exits 0" -- "$q" --help
expect 2 "unknown flag is invalid input" -- "$q" --bogus
expect 2 "capacity not a power of two" -- "$q" --capacity 1000
expect 2 "unsupported payload" -- "$q" --payload 7
expect 2 "bad --pin" -- "$q" --pin 0
expect 2 "bad --mode" -- "$q" --mode fast
expect 2 "producer without --name" -- "$q" --role producer
expect 2 "producer on a missing segment" -- "$q" --role producer --name "cli.$$.missing"
expect 2 "invalid segment name" -- "$q" --role producer --name "../etc"
expect 0 "lockfree processes" -- "$q" --iters 100000
expect 0 "mutex threads" -- "$q" --iters 100000 --mode mutex --threads
expect 0 "futex sleep wait" -- "$q" --iters 100000 --wait sleep --capacity 64
expect 0 "capacity 1" -- "$q" --iters 20000 --capacity 1
expect 0 "mutex batch" -- "$q" --iters 100000 --mode mutex --batch 32

# --json prints exactly one JSON object with the documented fields.
"$q" --iters 50000 --json >/tmp/rw_cli_json.$$ 2>/dev/null
if python3 - /tmp/rw_cli_json.$$ <<'PY'
import json, sys
lines = open(sys.argv[1]).read().strip().splitlines()
assert len(lines) == 1, lines
j = json.loads(lines[0])
for k in ("mode", "transport", "messages", "msgs_per_sec", "verified"):
    assert k in j, k
assert j["verified"] is True and j["messages"] == 50000 and j["transport"] == "processes"
PY
then echo "ok: --json throughput object"; else echo "FAIL: --json throughput"; fails=$((fails + 1)); fi

"$q" --iters 5000 --latency --json >/tmp/rw_cli_json.$$ 2>/dev/null
if python3 - /tmp/rw_cli_json.$$ <<'PY'
import json, sys
j = json.loads(open(sys.argv[1]).read())
lat = j["latency_ns"]
assert lat["p50"] <= lat["p99"] <= lat["p999"] <= lat["max"], lat
assert lat["samples"] == 5000 and j["verified"] is True
PY
then echo "ok: --json latency percentiles"; else echo "FAIL: --json latency"; fails=$((fails + 1)); fi

"$q" --payload 7 --json >/tmp/rw_cli_json.$$ 2>/dev/null
if python3 -c "import json,sys; j=json.load(open(sys.argv[1])); assert j['exit_code']==2" /tmp/rw_cli_json.$$; then
  echo "ok: --json on invalid input"; else echo "FAIL: --json invalid input"; fails=$((fails + 1)); fi

rm -f /tmp/rw_cli_out.$$ /tmp/rw_cli_err.$$ /tmp/rw_cli_json.$$
if ls /dev/shm | grep -q "^ringwire\.cli\.$$"; then echo "FAIL: segments leaked"; fails=$((fails + 1)); fi
echo "spsc_queue_cli: $fails failure(s)"
exit $((fails > 0))
