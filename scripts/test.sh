#!/usr/bin/env bash
# Install the test tools if needed, then run the whole test suite (offline, CPU only).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev
exec "${PYTHON:-python3}" -m pytest "$@"
