# Shared by the tool checks in tests/cli (sourced). The caller sets `out` and `err` (files for
# the last command's output) and `fails=0`, and ends with `exit $((fails > 0))` or the like.

expect() {  # expect CODE DESCRIPTION -- command...: run it (20 s bound), check its exit code
  local want="$1" what="$2"; shift 3
  timeout 20 "$@" >"$out" 2>"$err"; local got=$?
  if [[ "$got" != "$want" ]]; then
    echo "FAIL: $what: exit $got, wanted $want"; cat "$out" "$err"; fails=$((fails + 1))
    return 1
  fi
  echo "ok: $what"
}

check() {  # check DESCRIPTION -- command...: a condition on the last outputs
  local what="$1"; shift 2
  if "$@"; then echo "ok: $what"; else
    echo "FAIL: $what"; echo "--- stdout"; cat "$out"; echo "--- stderr"; cat "$err"
    fails=$((fails + 1))
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
