#!/usr/bin/env bash
# kv_faults' command line without a cluster: --help, invalid input (exit 2, one JSON object
# with --json), and --check on hand-written histories: a good one (exit 0), a stale read
# (exit 3, with the failing window written next to it), a malformed file (exit 2).
# Usage: kv_faults_cli.sh BIN_DIR SOURCE_DIR
set -u
bin="$1"
f="$bin/kv_faults"
if [[ ! -x "$f" ]]; then
  echo "SKIP: $f not built (RINGWIRE_BUILD_KV=OFF?)"
  exit 0
fi
tmp=$(mktemp -d /tmp/rw_kvf_cli.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fails=0
expect() {  # expect CODE DESCRIPTION command...
  local want="$1" what="$2"; shift 2
  timeout 20 "$@" >"$tmp/out" 2>"$tmp/err"; local got=$?
  if [[ "$got" != "$want" ]]; then
    echo "FAIL: $what: exit $got, wanted $want"; cat "$tmp/out" "$tmp/err"; fails=$((fails + 1))
  else
    echo "ok: $what"
  fi
}
one_json() {  # stdout is exactly one JSON object
  python3 -c 'import json,sys; l=sys.stdin.read().strip().split("\n"); assert len(l)==1; json.loads(l[0])' \
    < "$tmp/out" && echo "ok: $1" || { echo "FAIL: $1"; cat "$tmp/out"; fails=$((fails + 1)); }
}

expect 0 "--help" "$f" --help
expect 2 "unknown fault" "$f" --faults bogus --json
one_json "invalid input --json is one object"
expect 2 "missing kv_server" "$f" --kv-server "$tmp/none" --json
expect 2 "bad --nodes" "$f" --nodes 0

w='"kind":"write","outcome":"ok","process":0'
r='"kind":"read","outcome":"ok","process":1'
cat > "$tmp/good.jsonl" <<JSON
{"key":"k",$w,"invoke_ns":0,"complete_ns":10,"value":"a"}
{"key":"k",$r,"invoke_ns":5,"complete_ns":15,"value":null}
{"key":"k",$r,"invoke_ns":20,"complete_ns":30,"value":"a"}
{"key":"k","kind":"write","outcome":"unknown","process":0,"invoke_ns":40,"complete_ns":50,"value":"b"}
{"key":"k",$r,"invoke_ns":60,"complete_ns":70,"value":"b"}
JSON
expect 0 "--check of a linearizable history" "$f" --check "$tmp/good.jsonl" --json
one_json "--check --json is one object"

cat > "$tmp/stale.jsonl" <<JSON
{"key":"k",$w,"invoke_ns":0,"complete_ns":10,"value":"a"}
{"key":"k",$w,"invoke_ns":20,"complete_ns":30,"value":"b"}
{"key":"k",$r,"invoke_ns":40,"complete_ns":50,"value":"a"}
JSON
expect 3 "--check of a stale read" "$f" --check "$tmp/stale.jsonl"
if grep -q '"value":"a"' "$tmp/stale.jsonl.failure.txt" 2>/dev/null; then
  echo "ok: failing window written"
else
  echo "FAIL: no failing window in $tmp/stale.jsonl.failure.txt"; fails=$((fails + 1))
fi

echo '{"key":' > "$tmp/bad.jsonl"
expect 2 "--check of a malformed file" "$f" --check "$tmp/bad.jsonl"
expect 2 "--check of a missing file" "$f" --check "$tmp/missing.jsonl"

if ((fails > 0)); then
  echo "$fails check(s) failed"
  exit 1
fi
echo "all kv_faults cli checks passed"
