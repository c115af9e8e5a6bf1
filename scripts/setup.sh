#!/usr/bin/env bash
# Project setup: installs what Bazaar needs from Debian. Idempotent and quick when
# everything is present; safe without a TTY (CI). Called by `npm test` and .ci/run.
set -euo pipefail

need=()
have() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
for pkg in bubblewrap podman runc git libsecp256k1-1; do
  have "$pkg" || need+=("$pkg")
done

if ((${#need[@]})); then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: missing Debian packages: ${need[*]} (run as root to install them)" >&2
  else
    echo "setup: installing ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
fi
