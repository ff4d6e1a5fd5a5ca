#!/bin/sh
# trident-entrypoint: the image's entry point, run by tini (see Dockerfile).
#
#   tridentd ARGS...        the broker
#   trident-worker ARGS...  a worker pool
#   trident ARGS...         the CLI
#   -OPTION ARGS...         tridentd with these options
#   any other command       run as given (redis-server, redis-cli, sh)
#
# exec, so that the program gets tini's signals directly and its exit status
# is the container's.
set -eu
case "${1:-}" in
    "" | -*) set -- tridentd "$@" ;;
esac
exec "$@"
