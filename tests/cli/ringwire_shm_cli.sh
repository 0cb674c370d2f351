#!/usr/bin/env bash
# ringwire-shm: list/inspect/rm/gc on real segments, including a stale one
# left by a producer-less consumer killed with SIGKILL.
# Usage: ringwire_shm_cli.sh BIN_DIR SOURCE_DIR
set -u
bin="$1"
t="$bin/ringwire-shm"
fails=0
check() { if eval "$2"; then echo "ok: $1"; else echo "FAIL: $1"; fails=$((fails + 1)); fi; }

"$t" --help >/dev/null; check "--help exits 0" "[[ $? -eq 0 ]]"
"$t" >/dev/null 2>&1; check "no subcommand is invalid input" "[[ $? -eq 2 ]]"
"$t" inspect "cli.$$.none" >/dev/null 2>&1; check "inspect missing -> 2" "[[ $? -eq 2 ]]"
"$t" rm "cli.$$.none" >/dev/null 2>&1; check "rm missing -> 2" "[[ $? -eq 2 ]]"
"$t" inspect "bad/name" >/dev/null 2>&1; check "bad name -> 2" "[[ $? -eq 2 ]]"

# A consumer waiting for a producer that never comes; then SIGKILL it.
name="cli.$$.stale"
"$bin/spsc_queue" --role consumer --name "$name" --iters 10 --timeout 30 >/dev/null 2>&1 &
pid=$!
for _ in $(seq 300); do [[ -e /dev/shm/ringwire.$name ]] && break; sleep 0.01; done
"$t" rm "$name" >/dev/null 2>&1; check "rm refuses a live (or still initialising) segment" "[[ $? -eq 2 ]]"
# The name exists from shm_open on; the header is valid a moment later.
for _ in $(seq 300); do "$t" --json inspect "$name" 2>/dev/null | grep -q '"state":"ready"' && break; sleep 0.01; done
"$t" rm "$name" >/dev/null 2>&1; check "rm refuses a live segment" "[[ $? -eq 2 ]]"
"$t" list | grep -q "$name"; check "list shows it" "[[ $? -eq 0 ]]"
"$t" --json inspect "$name" | python3 -c "import json,sys; j=json.load(sys.stdin); assert j['creator']['alive'] and j['kind']=='spsc_ring' and j['rings'][0]['capacity']==4096"
check "inspect --json shows live creator and ring" "[[ $? -eq 0 ]]"
kill -9 "$pid"; wait "$pid" 2>/dev/null
check "segment survives SIGKILL (stale)" "[[ -e /dev/shm/ringwire.$name ]]"
"$bin/spsc_queue" --role producer --name "$name" --iters 10 >/dev/null 2>&1
check "producer refuses a dead creator's segment" "[[ $? -eq 2 ]]"
"$t" --json list | python3 -c "import json,sys; j=json.load(sys.stdin); s=[x for x in j['segments'] if x['name']=='$name']; assert s and s[0]['stale']"
check "list --json marks it stale" "[[ $? -eq 0 ]]"
"$t" gc | grep -q "removed $name"; check "gc removes it" "[[ $? -eq 0 ]]"
check "gone from /dev/shm" "[[ ! -e /dev/shm/ringwire.$name ]]"

# SIGTERM: the owner unlinks on the way out.
name="cli.$$.term"
"$bin/spsc_queue" --role consumer --name "$name" --iters 10 --timeout 30 >/dev/null 2>&1 &
pid=$!
for _ in $(seq 300); do [[ -e /dev/shm/ringwire.$name ]] && break; sleep 0.01; done
kill -TERM "$pid"; wait "$pid" 2>/dev/null
check "SIGTERM unlinks the segment" "[[ ! -e /dev/shm/ringwire.$name ]]"
echo "ringwire_shm_cli: $fails failure(s)"
exit $((fails > 0))
