#!/usr/bin/env bash
# Install the test tools if needed, lint, then run the whole test suite (offline, CPU only).
#   bash scripts/test.sh            everything: what CI runs (browser, real weights, slow tests)
#   bash scripts/test.sh --fast     the edit-test loop: not browser, not real weights, not slow
# Other arguments go to pytest (e.g. `bash scripts/test.sh tests/test_inputs.py -x`); naming
# tests (a path, -k or -m) runs just those, in one process.
#
# Everything runs in two parts: the tests that watch timing as a room would (marked `serial`:
# many pages at once, a chart that grows while it trains) alone, and the rest first in
# GALLERY_TEST_WORKERS processes (pytest-xdist, 2 by default, a file to each; 1: one process).
# Each part ends with its 15 slowest tests, so the suite's time can be watched (it must stay well
# under 15 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev
PY="${PYTHON:-python3}"
"$PY" -m ruff check .
if [ "${1:-}" = "--fast" ]; then
  shift
  exec "$PY" -m pytest -m "not browser and not real_weights and not slow" "$@"
fi
for arg in "$@"; do
  case "$arg" in
    tests*|-k|-m|*::*) exec "$PY" -m pytest "$@" ;;
  esac
done
workers="${GALLERY_TEST_WORKERS:-2}"
if [ "$workers" -le 1 ]; then
  exec "$PY" -m pytest --durations=15 "$@"
fi
status=0
"$PY" -m pytest -n "$workers" --dist loadfile -m "not serial" --durations=15 "$@" || status=$?
"$PY" -m pytest -m "serial" --durations=15 "$@" || status=$?
exit "$status"
