#!/usr/bin/env bash
# Install the test tools if needed, lint, then run the whole test suite (offline, CPU only).
#   bash scripts/test.sh            everything: what CI runs (browser, real weights, slow tests)
#   bash scripts/test.sh --fast     the edit-test loop: not browser, not real weights, not slow
# Other arguments go to pytest (e.g. `bash scripts/test.sh tests/test_inputs.py -x`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev
PY="${PYTHON:-python3}"
"$PY" -m ruff check .
if [ "${1:-}" = "--fast" ]; then
  shift
  exec "$PY" -m pytest -m "not browser and not real_weights and not slow" "$@"
fi
exec "$PY" -m pytest "$@"
