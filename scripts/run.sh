#!/usr/bin/env bash
# run.sh: builds Trident in release mode and runs it in the foreground.
#
# Today the broker and the worker are placeholders, so this says so and shows
# their usage. Once they exist, run_daemons starts tridentd and
# trident-worker in the foreground and stops both on Ctrl-C.
#
#   BUILD_DIR  build directory (default: build, under the repo root)
#   JOBS       build parallelism (default: nproc)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

build_dir=${BUILD_DIR:-build}
jobs=${JOBS:-$(nproc)}

build() {
  scripts/deps.sh
  cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DTRIDENT_TESTS=OFF
  cmake --build "$build_dir" -j "$jobs" --target tridentd trident-worker trident
}

# run_daemons: what run.sh will do once the daemons are implemented.
run_daemons() {
  echo "run.sh: the broker (tridentd) and the worker (trident-worker) are not implemented yet."
  echo "run.sh: built in $build_dir; here is what tridentd says about itself:"
  echo
  "$build_dir/server/tridentd" --help
}

build
run_daemons
