#!/usr/bin/env bash
# run.sh: installs what is missing, builds Trident in release mode, and runs
# the main job in the foreground: tridentd (with its embedded Redis, data in
# ./trident-data) and a trident-worker, both logging to this terminal.
# Ctrl-C (or SIGTERM) stops both cleanly: the worker first, then the broker,
# each by the PID started here. Safe to run again.
#
#   BUILD_DIR  build directory (default: build, under the repo root)
#   JOBS       build parallelism (default: nproc)
#   LISTEN     broker address (default: 127.0.0.1:7878)
#   DATA_DIR   the embedded Redis's directory (default: ./trident-data)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

build_dir=${BUILD_DIR:-build}
jobs=${JOBS:-$(nproc)}
listen=${LISTEN:-127.0.0.1:7878}
data_dir=${DATA_DIR:-./trident-data}

scripts/deps.sh
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DTRIDENT_TESTS=OFF >/dev/null
cmake --build "$build_dir" -j "$jobs" --target tridentd trident-worker trident

broker_pid=""
worker_pid=""
stop() {
  trap - INT TERM EXIT
  if [[ -n "$worker_pid" ]] && kill -0 "$worker_pid" 2>/dev/null; then
    kill -TERM "$worker_pid" && wait "$worker_pid" || true
  fi
  if [[ -n "$broker_pid" ]] && kill -0 "$broker_pid" 2>/dev/null; then
    kill -TERM "$broker_pid" && wait "$broker_pid" || true
  fi
}
trap stop INT TERM EXIT

"$build_dir/server/tridentd" --listen "$listen" --data-dir "$data_dir" -v &
broker_pid=$!

# Wait until the broker accepts (bounded), then start the worker.
host=${listen%:*}
port=${listen##*:}
for _ in $(seq 1 200); do
  if ! kill -0 "$broker_pid" 2>/dev/null; then
    echo "run.sh: tridentd exited; see its log above" >&2
    exit 1
  fi
  if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then
    break
  fi
  sleep 0.05
done

"$build_dir/worker/trident-worker" --broker "$listen" -v &
worker_pid=$!

cat <<MSG

  Trident is running: broker on $listen, data in $data_dir.
  Try it from another terminal:   $build_dir/client/trident --broker $listen run echo hello
  Ctrl-C stops everything.

MSG
wait -n "$broker_pid" "$worker_pid" || true
