#!/usr/bin/env bash
# The end-to-end grid: real agent CLIs through `crossroute launch` against fake upstreams.
# Clients are installed (or taken from the cache) first; then, where the machine allows it
# (root with unshare), the grid runs in a network namespace that has only loopback, so the
# run also proves that nothing leaves the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTEST=${PYTEST:-.venv/bin/pytest}

./scripts/install-clients.sh >/dev/null

# Two workers: the cells are mostly waiting on client start-up and the model turns, and the machine has two cores.
run_grid() { "$PYTEST" -q -p no:cacheprovider -m e2e -n "${E2E_WORKERS:-2}" tests/e2e "$@"; }

if [ "$(id -u)" = 0 ] && unshare -n true 2>/dev/null; then
  echo "e2e: running inside a loopback-only network namespace" >&2
  export -f run_grid
  export PYTEST
  exec unshare -n bash -c 'ip link set lo up && run_grid "$@"' _ "$@"
fi
echo "e2e: unshare not available; running on the host network" >&2
run_grid "$@"
