#!/usr/bin/env bash
# Installs the Debian packages ringwire needs to build and test, only if some
# are missing. Idempotent; runs `apt-get update` before any install.
# Usage: scripts/setup-deps.sh [--bench]   (--bench adds the benchmark peers)
set -euo pipefail

pkgs=(build-essential cmake ninja-build pkg-config g++ clang-format python3
      libgtest-dev libgmock-dev libbenchmark-dev libcli11-dev nlohmann-json3-dev libfmt-dev)
if [[ "${1:-}" == "--bench" ]]; then
  # Peers measured by bench/ only; the library never needs them.
  pkgs+=(libboost-dev libconcurrentqueue-dev libreaderwriterqueue-dev libatomic-queue-dev libtbb-dev)
fi

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "setup-deps: installing ${missing[*]}"
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
