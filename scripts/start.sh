#!/usr/bin/env bash
# Start the gallery at http://127.0.0.1:7860 (installs what it needs on the first run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec "${PYTHON:-python3}" app.py "$@"
