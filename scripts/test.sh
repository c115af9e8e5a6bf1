#!/usr/bin/env bash
# `npm test`: project setup, then the whole node-tap suite. While tap runs, podman's
# Docker-compatible API serves the container sandbox tests (DOCKER_HOST); the service
# is stopped afterwards whatever happens. Without podman, tap still runs (those tests skip).
# Afterwards the run fails if the tests left files in the working tree that were not there
# before (ignored paths such as data/ and .tap/ aside).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

untracked() { git status --porcelain --untracked-files=all 2>/dev/null | sed -n 's/^?? //p' | sort; }
before=$(mktemp)
untracked >"$before"

podman_pid=
svc_dir=
stop_podman() {
  if [ -n "$podman_pid" ]; then
    kill "$podman_pid" 2>/dev/null || true
    wait "$podman_pid" 2>/dev/null || true
    podman_pid=
  fi
  if [ -n "$svc_dir" ]; then rm -rf "$svc_dir"; svc_dir=; fi
}
trap 'stop_podman; rm -f "$before"' EXIT

if [ -z "${DOCKER_HOST:-}" ] && command -v podman >/dev/null; then
  base=/run
  [ -w "$base" ] || base="${TMPDIR:-/tmp}"
  svc_dir=$(mktemp -d "$base/bazaar-podman-XXXXXX")
  sock="$svc_dir/api.sock"
  # Its own working directory: conmon (started by the service) writes an empty "oom" file
  # into its cwd whenever a container is OOM-killed, which was the repo root.
  (cd "$svc_dir" && exec podman system service --time=0 "unix://$sock") >/dev/null 2>&1 &
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

stray=$(comm -13 "$before" <(untracked))
if [ -n "$stray" ]; then
  echo "test: the tests left files in the working tree (write them to a temp dir or ignore them):" >&2
  printf '%s\n' "$stray" | sed 's/^/  /' >&2
  [ "$code" -ne 0 ] || code=1
fi
exit "$code"
