#!/usr/bin/env bash
# test.sh: builds Trident the way CI does (warnings are errors, ASan + UBSan
# on) and runs every test suite through ctest. Safe to run again: it reuses
# the build directory. Exits non-zero when a dependency, the build or a test
# fails.
#
#   BUILD_DIR  build directory (default: build-test, under the repo root)
#   JOBS       build parallelism (default: nproc)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/deps.sh

build_dir=${BUILD_DIR:-build-test}
jobs=${JOBS:-$(nproc)}

cmake -S . -B "$build_dir" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DTRIDENT_WERROR=ON \
  -DTRIDENT_ASAN=ON \
  -DTRIDENT_TESTS=ON
cmake --build "$build_dir" -j "$jobs"

export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:print_stacktrace=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
cd "$build_dir"
ctest --output-on-failure --no-tests=error -j2
