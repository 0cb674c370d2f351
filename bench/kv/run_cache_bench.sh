#!/usr/bin/env bash
# KV read-cache benchmark: a cached GET from the host's kv_cache segment (1 and 2 reader
# processes, CacheReader and the ReadThrough client API) against a GET by RPC to our own
# 3-node kv_server cluster, to a 3-node etcd cluster (same machine, same keys, same load
# generator) and to redis-server, with the one-atomic ping-pong floor measured in the same run.
# REPS repetitions of every cell, medians (min..max) reported; JSON and markdown written.
#
# Usage: bench/kv/run_cache_bench.sh [--quick]
# Env:   BUILD_DIR     where bin/kv_server, kv_cache, kv_client, kv_cache_bench are (default build)
#        REPS          repetitions per cell (default 5; --quick: 1)
#        KEYS          distinct keys, 16-byte keys, 100-byte values (default 1000)
#        READ_SECONDS  throughput phase per cache reader (default 2; --quick 0.5)
#        RPC_OPS       GETs per RPC cell, one client (default 3000; --quick 500)
#        CACHE_BENCH_JSON / CACHE_BENCH_MD  output files (default $BUILD_DIR/cache-bench.{json,md})
# Exit 0; 3 if any read returned a wrong value; 2 if our own cluster or cache could not run.
# Every process it starts is stopped by PID on exit; the temp dir is removed.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${BUILD_DIR:-$root/build}"
bin="$build/bin"
reps="${REPS:-5}"
keys="${KEYS:-1000}"
read_seconds="${READ_SECONDS:-2}"
rpc_ops="${RPC_OPS:-3000}"
while (($#)); do
  case "$1" in
    --quick) reps="${REPS:-1}"; read_seconds="${READ_SECONDS:-0.5}"; rpc_ops="${RPC_OPS:-500}"; shift ;;
    -h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run_cache_bench: unknown argument $1" >&2; exit 2 ;;
  esac
done
json_out="${CACHE_BENCH_JSON:-$build/cache-bench.json}"
md_out="${CACHE_BENCH_MD:-$build/cache-bench.md}"
for b in kv_server kv_cache kv_client kv_cache_bench; do
  if [[ ! -x "$bin/$b" ]]; then
    echo "run_cache_bench: $bin/$b not found; build first (cmake --build $build)" >&2
    exit 2
  fi
done
client="$bin/kv_client"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/rw_cache_bench.XXXXXX")"
pids=()
# shellcheck source=bench/kv/common.sh
source "$root/bench/kv/common.sh"
trap kv_bench_cleanup EXIT
trap 'exit 130' INT TERM

pct="$(cpu_busy_pct)"
echo "run_cache_bench: $(nproc) CPUs, ${pct}% busy in the second before the run"
if ((pct > 10)); then echo "run_cache_bench: warning: other work is running" >&2; fi
results="$tmp/results.jsonl"
: >"$results"
notes="$tmp/notes.txt"
: >"$notes"
note() { echo "run_cache_bench: $*"; echo "$*" >>"$notes"; }
status=0

record() {  # record CELL REP FILE: append the JSON object in FILE, tagged
  python3 -c '
import json,sys
j=json.load(open(sys.argv[1])); j.update(cell=sys.argv[2], rep=int(sys.argv[3]))
print(json.dumps(j))' "$3" "$1" "$2" >>"$results"
}

# rpc_cells SYSTEM ENDPOINTS: one-client GETs by RPC, linearizable and serializable.
rpc_cells() {
  local sys="$1" eps="$2" rep rc mode extra
  for ((rep = 1; rep <= reps; rep++)); do
    for mode in linearizable serializable; do
      extra=()
      [[ "$mode" == serializable ]] && extra=(--serializable)
      rc=0
      timeout -k 5 180 "$client" --server "$eps" --timeout 10 --json bench get --clients 1 \
        --ops "$rpc_ops" --keys "$keys" --key-size 16 --value-size 100 --max-seconds 150 \
        "${extra[@]}" >"$tmp/cell.json" 2>"$tmp/cell.err" || rc=$?
      if [[ "$rc" != 0 ]]; then
        note "$sys get $mode rep $rep failed (exit $rc): $(tail -n1 "$tmp/cell.err")"
        [[ "$rc" == 3 ]] && status=3
        continue
      fi
      record "${sys}_rpc_get_${mode}" "$rep" "$tmp/cell.json"
      python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print("  %-28s rep %s: p50 %7.1f us  p99 %7.1f us  %6.0f ops/s" % (sys.argv[2], sys.argv[3], j["p50_us"], j["p99_us"], j["ops_per_sec"]))' \
        "$tmp/cell.json" "${sys}_rpc_get_${mode}" "$rep"
    done
  done
}

# ---- the floor -----------------------------------------------------------------------------
for ((rep = 1; rep <= reps; rep++)); do
  "$bin/kv_cache_bench" floor --json >"$tmp/floor.json"
  record floor_pingpong "$rep" "$tmp/floor.json"
done

# ---- ringwire: cluster, agent, cache reads, RPC reads ---------------------------------------
if ! start_ringwire3 "$bin/kv_server"; then
  echo "run_cache_bench: cannot start kv_server cluster: $skip_reason" >&2; exit 2
fi
eps="$ringwire3_endpoints"
if ! wait_cluster "$client" "$eps" 30; then
  echo "run_cache_bench: kv_server cluster did not elect a leader in 30 s" >&2; exit 2
fi
cache="rwcb$$"
"$bin/kv_cache" --cluster "$eps" --name "$cache" --capacity 65536 --log-level warn \
  >"$tmp/kv_cache.log" 2>&1 &
agent=$!; pids+=("$agent")
for _ in $(seq 100); do
  "$client" --json stats --cache "$cache" 2>/dev/null | grep -q '"agent_state":"serving"' && break
  sleep 0.1
done
echo "run_cache_bench: kv_server cluster (pids ${rw_pids[*]}), kv_cache agent $agent (cache $cache)"
for ((rep = 1; rep <= reps; rep++)); do
  for spec in "raw 1" "raw 2" "client 1" "client 2"; do
    read -r api readers <<<"$spec"
    cell="cache_get_${api}_${readers}proc"
    rc=0
    timeout -k 5 120 "$bin/kv_cache_bench" run --json --cache "$cache" --endpoints "$eps" \
      --api "$api" --readers "$readers" --keys "$keys" --key-size 16 --value-size 100 \
      --seconds "$read_seconds" >"$tmp/cell.json" 2>"$tmp/cell.err" || rc=$?
    if [[ "$rc" != 0 ]]; then
      note "$cell rep $rep failed (exit $rc): $(tail -n1 "$tmp/cell.err")"
      [[ "$rc" == 3 ]] && status=3
      continue
    fi
    record "$cell" "$rep" "$tmp/cell.json"
    python3 -c '
import json,sys
j=json.load(open(sys.argv[1]))
r=j["per_reader"]
print("  %-28s rep %s: %6.2f M reads/s total; p50 %s ns; p99 %s ns; hits %s; verify errors %s" % (
  sys.argv[2], sys.argv[3], j["total_reads_per_sec"]/1e6, "/".join("%.0f" % x["p50_ns"] for x in r),
  "/".join("%.0f" % x["p99_ns"] for x in r), "/".join(str(x["throughput_hits"]) for x in r),
  sum(x["verify_errors"] for x in r)))' "$tmp/cell.json" "$cell" "$rep"
  done
done
"$client" --json stats --cache "$cache" >"$tmp/stats.json" 2>/dev/null || true
rpc_cells ringwire "$eps"
stop_pids "$agent"
if ls /dev/shm | grep -q "$cache"; then
  note "kv_cache left segments behind: $(ls /dev/shm | grep "$cache" | tr '\n' ' ')"
fi
stop_pids "${rw_pids[@]}"

# ---- etcd ----------------------------------------------------------------------------------
if start_etcd3; then
  if wait_cluster "$client" "$etcd3_endpoints" 30; then
    echo "run_cache_bench: etcd $(etcd --version | head -n1 | awk '{print $3}') cluster up (pids ${etcd_pids[*]})"
    rpc_cells etcd "$etcd3_endpoints"
  else
    note "etcd: cluster did not elect a leader within 30 s"
  fi
  stop_pids "${etcd_pids[@]}"
else
  note "etcd: skipped ($skip_reason)"
fi

# ---- redis ---------------------------------------------------------------------------------
if start_redis; then
  echo "run_cache_bench: redis-server on 127.0.0.1:$redis_port (pid $redis_pid)"
  redis-benchmark -h 127.0.0.1 -p "$redis_port" -t set -n "$keys" -c 1 -d 100 -r "$keys" -q >/dev/null
  for ((rep = 1; rep <= reps; rep++)); do
    rc=0
    timeout -k 5 120 redis-benchmark -h 127.0.0.1 -p "$redis_port" -t get -n $((rpc_ops * 5)) \
      -c 1 -d 100 -r "$keys" --csv >"$tmp/redis.csv" 2>"$tmp/redis.err" || rc=$?
    if [[ "$rc" != 0 ]]; then note "redis get rep $rep failed (exit $rc)"; continue; fi
    python3 - "$tmp/redis.csv" "$rep" >>"$results" <<'PY' || note "redis rep $rep: unparsable output"
import csv, json, sys
rows = [r for r in csv.reader(open(sys.argv[1])) if r]
head = [h.strip().lower() for h in rows[0]]
col = {h: i for i, h in enumerate(head)}
r = rows[-1]
print(json.dumps({"cell": "redis_get", "rep": int(sys.argv[2]), "ops_per_sec": float(r[col["rps"]]),
                  "p50_us": float(r[col["p50_latency_ms"]]) * 1000.0,
                  "p99_us": float(r[col["p99_latency_ms"]]) * 1000.0}))
PY
  done
  stop_pids "$redis_pid"
else
  note "redis: skipped ($skip_reason)"
fi

# ---- medians, ratios, JSON, markdown ----------------------------------------------------------
python3 - "$results" "$json_out" "$md_out" "$notes" "$reps" "$pct" "$tmp/stats.json" <<'PY'
import json, os, statistics, sys, datetime, platform
res, json_out, md_out, notes_path, reps, busy, stats_path = sys.argv[1:]
rows = [json.loads(l) for l in open(res) if l.strip()]
notes = [l.strip() for l in open(notes_path) if l.strip()]
def vals(cell, f):
    return [f(r) for r in rows if r["cell"] == cell]
def med(v):
    return (statistics.median(v), min(v), max(v)) if v else None
out = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "host": platform.node(),
       "cpus": os.cpu_count(), "cpu_busy_before_pct": int(busy), "reps": int(reps),
       "key_size": 16, "value_size": 100, "cells": {}, "runs": rows, "notes": notes}
try:
    out["cache_stats_after"] = json.load(open(stats_path))
except Exception:
    pass
floor = med(vals("floor_pingpong", lambda r: r["round_trip_ns"]))
out["cells"]["floor_pingpong_round_trip_ns"] = floor
lines = ["| cell | p50 | p99 | reads/s | vs floor (p50) |", "| --- | ---: | ---: | ---: | ---: |"]
def fmt(m, unit, scale=1.0, prec=0):
    if not m: return "-"
    return "%.*f %s [%.*f..%.*f]" % (prec, m[0] * scale, unit, prec, m[1] * scale, prec, m[2] * scale)
if floor:
    lines.append("| one-atomic ping-pong round trip (floor) | %s | | | 1.00 |" % fmt(floor, "ns"))
cache_p50 = {}
for api in ("raw", "client"):
    for n in (1, 2):
        cell = "cache_get_%s_%dproc" % (api, n)
        # latency: the median over reps of each rep's median across its readers
        p50 = med(vals(cell, lambda r: statistics.median(x["p50_ns"] for x in r["per_reader"])))
        p99 = med(vals(cell, lambda r: max(x["p99_ns"] for x in r["per_reader"])))
        tput = med(vals(cell, lambda r: r["total_reads_per_sec"]))
        per = med(vals(cell, lambda r: min(x["reads_per_sec"] for x in r["per_reader"])))
        hits = vals(cell, lambda r: sum(x["throughput_hits"] for x in r["per_reader"]))
        reads = vals(cell, lambda r: sum(x["reads"] for x in r["per_reader"]))
        out["cells"][cell] = {"p50_ns": p50, "p99_ns": p99, "reads_per_sec_total": tput,
                              "reads_per_sec_slowest_reader": per,
                              "hit_fraction": (sum(hits) / sum(reads)) if reads else None}
        if not p50: continue
        cache_p50[cell] = p50[0]
        label = "cache GET, %s, %d reader process%s" % (
            "CacheReader::get" if api == "raw" else "ReadThrough::get_into", n, "" if n == 1 else "es")
        lines.append("| %s | %s | %s | %s | %s |" % (label, fmt(p50, "ns"), fmt(p99, "ns"),
                     fmt(tput, "M", 1e-6, 1), "%.2f" % (p50[0] / floor[0]) if floor else "-"))
rpc = {}
for cell, label in (("ringwire_rpc_get_linearizable", "RPC GET kv_server, linearizable"),
                    ("ringwire_rpc_get_serializable", "RPC GET kv_server, serializable"),
                    ("etcd_rpc_get_linearizable", "RPC GET etcd 3-node, linearizable"),
                    ("etcd_rpc_get_serializable", "RPC GET etcd 3-node, serializable"),
                    ("redis_get", "redis-server GET (1 connection)")):
    p50 = med(vals(cell, lambda r: r["p50_us"]))
    p99 = med(vals(cell, lambda r: r["p99_us"]))
    tput = med(vals(cell, lambda r: r["ops_per_sec"]))
    out["cells"][cell] = {"p50_us": p50, "p99_us": p99, "ops_per_sec": tput}
    if not p50: continue
    rpc[cell] = p50[0] * 1000.0
    lines.append("| %s | %s | %s | %s | %s |" % (label, fmt(p50, "us", 1, 1), fmt(p99, "us", 1, 1),
                 fmt(tput, "k", 1e-3, 1), "%.0f" % (p50[0] * 1000 / floor[0]) if floor else "-"))
ratios = {}
base = cache_p50.get("cache_get_raw_1proc")
client = cache_p50.get("cache_get_client_1proc")
for cell, ns in rpc.items():
    if base: ratios["%s_over_cache_raw" % cell] = ns / base
    if client: ratios["%s_over_cache_client" % cell] = ns / client
out["ratios_p50"] = ratios
json.dump(out, open(json_out, "w"), indent=1)
md = "\n".join(lines) + "\n\nMedians of %s rep(s) [min..max]; 16-byte keys, 100-byte values, %d CPUs, %s%% busy before.\n" % (
    reps, os.cpu_count(), busy)
if ratios:
    md += "\np50 ratios (RPC GET p50 / cache GET p50, same run):\n"
    for k, v in sorted(ratios.items()):
        md += "- %s: %.0fx\n" % (k, v)
for n in notes:
    md += "- note: %s\n" % n
open(md_out, "w").write(md)
print()
print(md)
print("run_cache_bench: results in %s, table in %s" % (json_out, md_out))
PY
exit "$status"
