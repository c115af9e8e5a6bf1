#!/usr/bin/env bash
# `npm test`: project setup, then the whole node-tap suite. While tap runs, podman's
# Docker-compatible API serves the container sandbox tests (DOCKER_HOST); the service
# is stopped afterwards whatever happens. Without podman, tap still runs (those tests skip).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

podman_pid=
sock=
stop_podman() {
  if [ -n "$podman_pid" ]; then
    kill "$podman_pid" 2>/dev/null || true
    wait "$podman_pid" 2>/dev/null || true
    podman_pid=
  fi
  if [ -n "$sock" ]; then rm -f "$sock"; fi
}
trap stop_podman EXIT

if [ -z "${DOCKER_HOST:-}" ] && command -v podman >/dev/null; then
  sock_dir=/run
  [ -w "$sock_dir" ] || sock_dir="${TMPDIR:-/tmp}"
  sock="$sock_dir/bazaar-podman-$$.sock"
  podman system service --time=0 "unix://$sock" >/dev/null 2>&1 &
  podman_pid=$!
  for _ in $(seq 1 100); do
    [ -S "$sock" ] && break
    kill -0 "$podman_pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ -S "$sock" ]; then
    export DOCKER_HOST="unix://$sock"
  else
    echo "test: podman system service did not start; container tests will start their own or skip" >&2
    stop_podman
  fi
fi

set +e
npx tap "$@"
code=$?
set -e
stop_podman
exit "$code"
