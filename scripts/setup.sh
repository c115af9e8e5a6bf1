#!/usr/bin/env bash
# Project setup: installs what Bazaar needs from Debian. Idempotent and quick when
# everything is present; safe without a TTY (CI). Called by `npm test` and .ci/run.
set -euo pipefail

need=()
have() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
# bubblewrap/podman/runc: the sandbox runners; debootstrap: the registry-free sandbox image.
# liblmdb0/libzstd1: runtime libraries of the prebuilt strfry that benchmarks and interop
# tests run side by side with our relay when it is present (the project never needs strfry).
# chromium: the headless browser the marketplace page's test drives (playwright-core).
# nats-server: JetStream for the relay cluster (bazaar relay --cluster; its tests start one with -js).
# util-linux (Essential, listed for its setpriv): test children die with the test process (testkit/README.md).
for pkg in bubblewrap podman runc git util-linux libsecp256k1-1 debootstrap liblmdb0 libzstd1 chromium nats-server; do
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

# Podman for the container sandbox: runc (crun refuses this host's hybrid cgroups) and
# default ulimits within this host's hard limits (podman's defaults are above them).
containers_conf=/etc/containers/containers.conf
if [ "$(id -u)" = 0 ] && command -v podman >/dev/null && ! grep -q '^# bazaar-sandbox v1' "$containers_conf" 2>/dev/null; then
  mkdir -p /etc/containers
  [ -f "$containers_conf" ] && cp "$containers_conf" "$containers_conf.bazaar-bak"
  cat >"$containers_conf" <<'CONF'
# bazaar-sandbox v1 (written by scripts/setup.sh; the previous file, if any, is *.bazaar-bak)
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]

[engine]
runtime = "runc"
CONF
  echo "setup: wrote $containers_conf" >&2
fi
