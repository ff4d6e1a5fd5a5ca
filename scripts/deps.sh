#!/usr/bin/env bash
# deps.sh: installs the Debian packages Trident needs to build, test and run,
# but only those that are missing. Quiet and quick when nothing is missing;
# otherwise one `apt-get update` and one `apt-get install`. Uses sudo when not
# run as root. Exit codes: 0 all present, 1 installation failed or impossible.
set -euo pipefail

packages=(
  build-essential cmake pkg-config        # toolchain
  libevent-dev libhiredis-dev libmsgpack-dev libsystemd-dev
  check                                   # unit tests
  redis-server redis-tools                # the store, and for the tests
  python3 python3-msgpack                 # interop tests
  python3-yaml systemd                    # deploy tests: compose file, systemd-analyze verify
  clang libclang-rt-14-dev                # fuzz build: -fsanitize=fuzzer needs the runtime,
                                          # which clang only recommends
)

missing=()
for pkg in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
  if [[ "$status" != "installed" ]]; then
    missing+=("$pkg")
  fi
done
if ((${#missing[@]} == 0)); then
  exit 0
fi

if ((EUID == 0)); then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
else
  echo "deps.sh: missing packages ${missing[*]}, and neither root nor sudo to install them" >&2
  exit 1
fi

echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
