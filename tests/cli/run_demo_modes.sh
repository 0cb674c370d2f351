#!/usr/bin/env bash
# run_demo.sh: golden ends with the success line and exit 0, failure prints
# the seed's error line and exit=2 and exits 2, crash exits 0 after the
# consumer reported the dead producer. Usage: run_demo_modes.sh BIN_DIR SOURCE_DIR
set -u
export RINGWIRE_BIN="$1"
demo="$2/run_demo.sh"
fails=0
out=$("$demo" --mode=golden 2>&1); rc=$?
if [[ $rc -eq 0 && "$(echo "$out" | tail -n1)" == "OK: golden scenario completed" ]]; then
  echo "ok: golden"; else echo "FAIL: golden rc=$rc"; echo "$out"; fails=$((fails + 1)); fi
out=$("$demo" 2>&1); rc=$?
if [[ $rc -eq 0 && "$out" == *"OK: golden scenario completed"* ]]; then
  echo "ok: default is golden"; else echo "FAIL: default rc=$rc"; fails=$((fails + 1)); fi
out=$("$demo" --mode=failure 2>/dev/null); rc=$?
if [[ $rc -eq 2 && "$(echo "$out" | tail -n2)" == $'ERROR: invalid input or unavailable IPC resource\nexit=2' ]]; then
  echo "ok: failure"; else echo "FAIL: failure rc=$rc"; echo "$out"; fails=$((fails + 1)); fi
out=$("$demo" --mode=crash 2>&1); rc=$?
if [[ $rc -eq 0 && "$out" == *"consumer exit=4"* && "$out" == *"OK: crash scenario completed"* ]]; then
  echo "ok: crash"; else echo "FAIL: crash rc=$rc"; echo "$out"; fails=$((fails + 1)); fi
"$demo" --mode=nonsense >/dev/null 2>&1; rc=$?
if [[ $rc -eq 2 ]]; then echo "ok: bad mode"; else echo "FAIL: bad mode rc=$rc"; fails=$((fails + 1)); fi
echo "run_demo_modes: $fails failure(s)"
exit $((fails > 0))
