#!/usr/bin/env bash
# Installs the Debian packages ringwire needs to build and test, only if some
# are missing. Idempotent; runs `apt-get update` before any install.
# Usage: scripts/setup-deps.sh [--bench]   (--bench adds the benchmark peers)
set -euo pipefail

pkgs=(build-essential cmake ninja-build pkg-config g++ clang-format python3
      libgtest-dev libgmock-dev libbenchmark-dev libcli11-dev nlohmann-json3-dev libfmt-dev
      libspdlog-dev libprotobuf-dev protobuf-compiler libgrpc++-dev protobuf-compiler-grpc
      etcd-client iproute2)
# Installed when the archive has them; reported and skipped otherwise.
optional=()
if [[ "${1:-}" == "--bench" ]]; then
  # Peers measured by bench/ only; the library never needs them.
  # libzmq3-dev: ZeroMQ for ipc_bench; gnuplot-nox: bench/run_ipc_bench.sh's plot
  # (the `gnuplot` metapackage would pull in the Qt front end).
  pkgs+=(libboost-dev libconcurrentqueue-dev libreaderwriterqueue-dev libatomic-queue-dev libtbb-dev
         libzmq3-dev gnuplot-nox etcd-server redis-server)
  # iceoryx (iox-roudi daemon) and its C++ headers for ipc_bench, if packaged.
  optional+=(iceoryx libiceoryx-posh-dev)
fi

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
available() {
  local c
  c="$(apt-cache policy "$1" 2>/dev/null | sed -n 's/^ *Candidate: //p')"
  [[ -n "$c" && "$c" != "(none)" ]]
}

missing=()
for p in "${pkgs[@]}"; do
  installed "$p" || missing+=("$p")
done
opt_missing=()
for p in "${optional[@]}"; do
  installed "$p" || opt_missing+=("$p")
done
if ((${#missing[@]} == 0 && ${#opt_missing[@]} == 0)); then
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
for p in "${opt_missing[@]}"; do
  if available "$p"; then
    missing+=("$p")
  else
    echo "setup-deps: optional package $p is not in the archive; skipping it" >&2
  fi
done
if ((${#missing[@]} == 0)); then
  exit 0
fi
echo "setup-deps: installing ${missing[*]}"
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
