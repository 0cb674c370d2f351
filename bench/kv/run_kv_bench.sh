#!/usr/bin/env bash
# Replicated KV benchmark: the same kv_client bench against a 3-node etcd 3.4 cluster and a
# 3-node ringwire kv_server cluster (both on loopback, data dirs in one temp dir on the same
# disk), plus redis-server via redis-benchmark as a non-replicated, non-durable reference.
# Cells (16-byte keys, 100-byte values): put with 1 client (latency), put with 16 and 64
# clients (throughput), linearizable and serializable get with 16 clients. REPS repetitions,
# medians reported; JSON results file and a markdown table with ringwire/etcd ratios.
#
# Usage: bench/kv/run_kv_bench.sh [--quick] [--systems "etcd ringwire redis"]
# Env:   BUILD_DIR      where bin/kv_client (and bin/kv_server) are (default: build)
#        KV_CLIENT KV_SERVER  the binaries themselves (default: $BUILD_DIR/bin/...)
#        REPS           repetitions per cell (default 3; --quick: 1)
#        PUT1_OPS PUT_OPS GET_OPS   operations per cell (default 2000 / 20000 / 40000)
#        KEYS           distinct keys (default 1000)
#        CELL_TIMEOUT   seconds per cell before it is killed (default 180)
#        KV_BENCH_JSON  results file (default: $BUILD_DIR/kv-bench.json)
#        KV_BENCH_MD    markdown table file (default: $BUILD_DIR/kv-bench.md)
# Every process it starts is killed by PID on exit; the temp dir is removed.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${BUILD_DIR:-$root/build}"
client="${KV_CLIENT:-$build/bin/kv_client}"
server="${KV_SERVER:-$build/bin/kv_server}"
reps="${REPS:-3}"
put1_ops="${PUT1_OPS:-2000}"
put_ops="${PUT_OPS:-20000}"
get_ops="${GET_OPS:-40000}"
keys="${KEYS:-1000}"
cell_timeout="${CELL_TIMEOUT:-180}"
json_out="${KV_BENCH_JSON:-$build/kv-bench.json}"
md_out="${KV_BENCH_MD:-$build/kv-bench.md}"
systems="etcd ringwire redis"

while (($#)); do
  case "$1" in
    --quick)
      reps="${REPS:-1}"; put1_ops="${PUT1_OPS:-300}"; put_ops="${PUT_OPS:-2000}"
      get_ops="${GET_OPS:-4000}"; shift ;;
    --systems) systems="$2"; shift 2 ;;
    -h | --help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run_kv_bench: unknown argument $1" >&2; exit 2 ;;
  esac
done

if [[ ! -x "$client" ]]; then
  echo "run_kv_bench: $client not found; build it (cmake --build $build --target kv_client)" >&2
  exit 2
fi
mkdir -p "$(dirname "$json_out")" "$(dirname "$md_out")"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/rw_kv_bench.XXXXXX")"
pids=()
# shellcheck source=bench/kv/common.sh
source "$root/bench/kv/common.sh"
trap kv_bench_cleanup EXIT
trap 'exit 130' INT TERM

pct="$(cpu_busy_pct)"
echo "run_kv_bench: $(nproc) CPUs, ${pct}% busy in the second before the run; temp dir $tmp"
if ((pct > 10)); then
  echo "run_kv_bench: warning: other work is running; expect disturbed reps" >&2
fi

results="$tmp/results.jsonl"
: >"$results"
notes="$tmp/notes.txt"
: >"$notes"
note() { echo "run_kv_bench: $*"; echo "$*" >>"$notes"; }

# run_cells SYSTEM ENDPOINTS: every cell REPS times through kv_client bench.
run_cells() {
  local sys="$1" eps="$2" rep cell args out rc
  local common=(--key-size 16 --value-size 100 --keys "$keys" --max-seconds $((cell_timeout - 10)))
  for ((rep = 1; rep <= reps; rep++)); do
    for cell in put_1 put_16 put_64 get_16_linearizable get_16_serializable; do
      case "$cell" in
        put_1) args=(put --clients 1 --ops "$put1_ops") ;;
        put_16) args=(put --clients 16 --ops "$put_ops") ;;
        put_64) args=(put --clients 64 --ops "$put_ops") ;;
        get_16_linearizable) args=(get --clients 16 --ops "$get_ops") ;;
        get_16_serializable) args=(get --clients 16 --ops "$get_ops" --serializable) ;;
      esac
      out="$tmp/cell.json"
      rc=0
      timeout -k 5 "$cell_timeout" "$client" --server "$eps" --timeout 10 --json bench \
        "${args[@]}" "${common[@]}" >"$out" 2>"$tmp/cell.err" || rc=$?
      if [[ "$rc" != 0 ]] || ! python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$out" 2>/dev/null; then
        note "$sys $cell rep $rep failed (exit $rc): $(tail -n1 "$tmp/cell.err")"
        continue
      fi
      python3 -c '
import json,sys
j=json.load(open(sys.argv[1])); j.update(system=sys.argv[2], cell=sys.argv[3], rep=int(sys.argv[4]))
print(json.dumps(j))' "$out" "$sys" "$cell" "$rep" >>"$results"
      python3 -c '
import json,sys
j=json.load(open(sys.argv[1]))
print("  %-8s %-22s rep %s: %9.0f ops/s  p50 %8.0f us  p99 %8.0f us  errors %d" % (
  sys.argv[2], sys.argv[3], sys.argv[4], j["ops_per_sec"], j["p50_us"], j["p99_us"], j["errors"]))' \
        "$out" "$sys" "$cell" "$rep"
    done
  done
}

# ---- etcd --------------------------------------------------------------------------------
if [[ " $systems " == *" etcd "* ]]; then
  if ! command -v etcd >/dev/null 2>&1; then
    note "etcd: skipped (not installed; scripts/setup-deps.sh --bench installs etcd-server)"
  else
    if start_etcd3; then
      eps="$etcd3_endpoints"
      if wait_cluster "$client" "$eps" 30; then
        echo "run_kv_bench: etcd $(etcd --version | head -n1 | awk '{print $3}') cluster up (pids ${etcd_pids[*]})"
        run_cells etcd "$eps"
      else
        note "etcd: cluster did not elect a leader within 30 s"; tail -n5 "$tmp"/etcd-e1.log >&2
      fi
      stop_pids "${etcd_pids[@]}"
    else
      note "etcd: skipped ($skip_reason)"
    fi
  fi
fi

# ---- ringwire kv_server ------------------------------------------------------------------
if [[ " $systems " == *" ringwire "* ]]; then
  if [[ ! -x "$server" ]]; then
    note "ringwire: skipped ($server not built yet)"
  elif ! "$server" --help 2>&1 | grep -q -- "--peer-listen"; then
    note "ringwire: skipped ($server --help does not list --peer-listen)"
  else
    if start_ringwire3 "$server"; then
      eps="$ringwire3_endpoints"
      if wait_cluster "$client" "$eps" 30; then
        echo "run_kv_bench: ringwire cluster up (pids ${rw_pids[*]})"
        run_cells ringwire "$eps"
      else
        note "ringwire: cluster did not elect a leader within 30 s"; tail -n5 "$tmp"/rw-n1.log >&2
      fi
      stop_pids "${rw_pids[@]}"
    else
      note "ringwire: skipped ($skip_reason)"
    fi
  fi
fi

# ---- redis (non-replicated reference) ----------------------------------------------------
if [[ " $systems " == *" redis "* ]]; then
  if ! start_redis; then
    note "redis: skipped ($skip_reason)"
  else
    rport="$redis_port"; rpid="$redis_pid"
    echo "run_kv_bench: redis-server on 127.0.0.1:$rport (pid $rpid)"
    for ((rep = 1; rep <= reps; rep++)); do
      for spec in "put_1 set 1 $put1_ops" "put_16 set 16 $put_ops" "put_64 set 64 $put_ops" \
                  "get_16_serializable get 16 $get_ops"; do
        read -r cell test clients ops <<<"$spec"
        rc=0
        # key:__rand_int__ with -r expands to key:000000000123, 16 bytes like the other cells.
        timeout -k 5 "$cell_timeout" redis-benchmark -h 127.0.0.1 -p "$rport" -t "$test" \
          -n "$ops" -c "$clients" -d 100 -r "$keys" --csv >"$tmp/redis.csv" 2>"$tmp/redis.err" || rc=$?
        if [[ "$rc" != 0 ]]; then note "redis $cell rep $rep failed (exit $rc)"; continue; fi
        python3 - "$tmp/redis.csv" "$cell" "$rep" "$clients" "$ops" >>"$results" <<'PY' ||
import csv, json, sys
path, cell, rep, clients, ops = sys.argv[1:]
rows = [r for r in csv.reader(open(path)) if r]
head = [h.strip().lower() for h in rows[0]] if rows and not rows[0][1].replace('.', '').isdigit() else None
data = rows[1:] if head else rows
r = data[-1]
j = {"system": "redis", "cell": cell, "rep": int(rep), "clients": int(clients), "ops": int(ops),
     "ops_per_sec": float(r[1]), "errors": 0}
if head:  # redis >= 6: test,rps,avg,min,p50,p95,p99,max (milliseconds)
    col = {h: i for i, h in enumerate(head)}
    for name, key in (("p50_latency_ms", "p50_us"), ("p99_latency_ms", "p99_us"),
                      ("max_latency_ms", "max_us")):
        if name in col:
            j[key] = float(r[col[name]]) * 1000.0
print(json.dumps(j))
PY
          note "redis $cell rep $rep: could not parse redis-benchmark output"
      done
    done
    stop_pids "$rpid"
  fi
fi

# ---- medians, JSON, markdown ---------------------------------------------------------------
python3 - "$results" "$json_out" "$md_out" "$notes" "$reps" "$pct" <<'PY'
import json, statistics, sys, datetime, platform, os
res_path, json_out, md_out, notes_path, reps, busy = sys.argv[1:]
rows = [json.loads(l) for l in open(res_path) if l.strip()]
notes = [l.rstrip("\n") for l in open(notes_path) if l.strip()]
metrics = ("ops_per_sec", "p50_us", "p90_us", "p99_us", "p999_us", "max_us")
cells = ["put_1", "put_16", "put_64", "get_16_linearizable", "get_16_serializable"]
systems = ["etcd", "ringwire", "redis"]
med = {}
for s in systems:
    for c in cells:
        rs = [r for r in rows if r["system"] == s and r["cell"] == c]
        if not rs:
            continue
        m = {"reps": len(rs), "errors": sum(r.get("errors", 0) for r in rs)}
        for k in metrics:
            vals = [r[k] for r in rs if k in r]
            if vals:
                m[k] = statistics.median(vals)
                m[k + "_min"] = min(vals)
                m[k + "_max"] = max(vals)
        med.setdefault(s, {})[c] = m
out = {
    "date": datetime.datetime.now().isoformat(timespec="seconds"),
    "host": platform.node(), "cpus": os.cpu_count(), "cpu_busy_before_pct": int(busy),
    "reps": int(reps), "key_size": 16, "value_size": 100,
    "medians": med, "runs": rows, "notes": notes,
}
json.dump(out, open(json_out, "w"), indent=1)

def fmt(v, k):
    if v is None:
        return "-"
    return "%.0f" % v
show = [("put_1", "p50_us", "put, 1 client: p50 latency (us)"),
        ("put_1", "p99_us", "put, 1 client: p99 latency (us)"),
        ("put_16", "ops_per_sec", "put, 16 clients (ops/s)"),
        ("put_64", "ops_per_sec", "put, 64 clients (ops/s)"),
        ("put_64", "p99_us", "put, 64 clients: p99 latency (us)"),
        ("get_16_linearizable", "ops_per_sec", "get linearizable, 16 clients (ops/s)"),
        ("get_16_serializable", "ops_per_sec", "get serializable, 16 clients (ops/s)")]
lines = ["| cell | etcd 3.4 | ringwire | ringwire / etcd | redis (no replication) |",
         "| --- | ---: | ---: | ---: | ---: |"]
for c, k, label in show:
    v = {s: med.get(s, {}).get(c, {}).get(k) for s in systems}
    ratio = "-"
    if v["etcd"] and v["ringwire"]:
        ratio = "%.2f" % (v["ringwire"] / v["etcd"])
    lines.append("| %s | %s | %s | %s | %s |" % (label, fmt(v["etcd"], k), fmt(v["ringwire"], k),
                                               ratio, fmt(v["redis"], k)))
md = "\n".join(lines) + "\n"
md += "\nMedians of %s rep(s); 16-byte keys, 100-byte values, %d CPUs, %s%% busy before the run.\n" % (
    reps, os.cpu_count(), busy)
for n in notes:
    md += "- %s\n" % n
open(md_out, "w").write(md)
print()
print(md)
print("run_kv_bench: results in %s, table in %s" % (json_out, md_out))
errs = sum(m.get("errors", 0) for s in med.values() for m in s.values())
sys.exit(3 if errs else 0)
PY
