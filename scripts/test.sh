#!/usr/bin/env bash
# `npm test`: project setup, then the whole node-tap suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec npx tap "$@"
