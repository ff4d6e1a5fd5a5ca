#!/usr/bin/env bash
# bench/run.sh: builds a release tree (build-release) and runs every
# benchmark scenario with bench/run.py, writing bench/results.json and
# docs/bench-sweep.png. Arguments go to run.py (e.g. --runs 5, --only
# steady,roundtrip). Installs what is missing first: the build's packages
# (scripts/deps.sh), redis-tools for redis-benchmark, gnuplot for the plot.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
missing=()
for pkg in redis-tools gnuplot-nox; do
  if [[ "$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)" != installed ]]; then
    missing+=("$pkg")
  fi
done
if ((${#missing[@]})); then
  sudo_=()
  ((EUID == 0)) || sudo_=(sudo)
  "${sudo_[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo_[@]}" apt-get install -y -q "${missing[@]}"
fi

cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DTRIDENT_TESTS=OFF >/dev/null
cmake --build build-release -j "$(nproc)" --target tridentd trident-worker trident loadgen
exec /usr/bin/python3 bench/run.py --build build-release "$@"
