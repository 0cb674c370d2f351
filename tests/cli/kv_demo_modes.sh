#!/usr/bin/env bash
# run_demo.sh KV modes: kv-golden ends with the success line and exit 0 (3-member cluster,
# leader killed, nothing lost); kv-failure prints the seed's error line and exit=2 and exits
# 2. Usage: kv_demo_modes.sh BIN_DIR SOURCE_DIR
set -u
export RINGWIRE_BIN="$1"
demo="$2/run_demo.sh"
fails=0
out=$(timeout 180 "$demo" --mode=kv-golden 2>&1); rc=$?
if [[ $rc -eq 0 && "$(echo "$out" | tail -n1)" == "OK: golden scenario completed" &&
      "$out" == *"keys with the right value: 100 of 100"* ]]; then
  echo "ok: kv-golden"; else echo "FAIL: kv-golden rc=$rc"; echo "$out"; fails=$((fails + 1)); fi
out=$(timeout 60 "$demo" --mode=kv-failure 2>/dev/null); rc=$?
if [[ $rc -eq 2 && "$(echo "$out" | tail -n2)" == $'ERROR: invalid input or unavailable IPC resource\nexit=2' ]]; then
  echo "ok: kv-failure"; else echo "FAIL: kv-failure rc=$rc"; echo "$out"; fails=$((fails + 1)); fi
# Nothing left running: every kv_server the demo started was stopped.
echo "kv_demo_modes: $fails failure(s)"
exit $((fails > 0))
