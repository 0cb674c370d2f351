#!/usr/bin/env bash
# CTest driver for kv_faults: run_kv_faults.sh BIN_DIR OUT_DIR EXPECTED_EXIT [kv_faults args...]
# Skips (exit 77, CTest SKIP_RETURN_CODE) when not root: the runs need network namespaces.
# With EXPECTED_EXIT 3 (the --unsafe run) it also requires the failure report with the seed.
set -u
bin=$1 out=$2 expected=$3
shift 3
if [[ $(id -u) -ne 0 ]]; then
  echo "SKIP: kv_faults needs root for network namespaces (ip netns); not root here"
  exit 77
fi
if ! command -v ip > /dev/null; then
  echo "SKIP: iproute2 (ip) is not installed"
  exit 77
fi
rm -rf "$out"
"$bin/kv_faults" --out "$out" --json "$@" > "$out.json" &
pid=$!
wait $pid
rc=$?
cat "$out.json"
echo "kv_faults exit code: $rc (expected $expected)"
if [[ $rc -ne $expected ]]; then
  echo "---- tail of the node logs ----"
  for f in "$out"/n*.log; do echo "== $f"; tail -n 40 "$f"; done
  exit 1
fi
if [[ $expected -eq 3 ]]; then
  grep -q "^kv_faults seed " "$out/failure.txt" || { echo "no failure.txt with the seed"; exit 1; }
  head -n 12 "$out/failure.txt"
fi
# Nothing of ours may be left: namespaces, links, kv_server children.
if ip netns list | grep -q "^rwf-$pid-"; then echo "network namespace left behind"; exit 1; fi
if ip -o link show | grep -q ": rwf${pid}[bvp]"; then echo "link left behind"; exit 1; fi
exit 0
