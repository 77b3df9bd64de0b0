"""Settings read once from environment variables, and the one online/offline decision.

Import this module before anything that imports huggingface_hub: the hub library reads
HF_HUB_OFFLINE when it is first imported, so the decision has to be made before then.
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
import threading
from pathlib import Path
from urllib.parse import urlparse

log = logging.getLogger("gallery")

# torch's OpenMP threads spin for a while after each operation, waiting for the next (about 3 ms
# by default); on a laptop CPU shared by llama.cpp, the web server and other visitors' work, a
# spinning thread takes the core from the one that has work. Read when OpenMP first loads, so set
# here, before anything imports torch. Sleeping at once (PASSIVE) measured here on 2 busy cores,
# bench_text_engine minutes apart: llama.cpp generation 31.8 -> 117.9 tok/s, transformers fp32
# 4.0 -> 16.0 tok/s. But a training step is hundreds of small operations, and waking the threads
# for each one made the pre-train tab 1.5x slower (a step of the 4 x 128 model on 2 threads: 139 ms,
# against 92 ms with the default spin). A short spin (GOMP_SPINCOUNT 10 000, about 0.1 ms) keeps
# both: 95 ms a step; llama.cpp's
# generation unchanged (51.0 -> 52.4 tok/s), transformers fp32 15.2 -> 27.8 tok/s; the opening
# and bar lanes under load no slower (README, "Threads").
OPENMP = {"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": "10000"}
for _name, _value in OPENMP.items():
    os.environ.setdefault(_name, _value)


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


# --- server ----------------------------------------------------------------------------------
SERVER_NAME = os.environ.get("GALLERY_HOST", "127.0.0.1")  # 0.0.0.0 on Spaces / to share a LAN
SERVER_PORT = _env_int("GALLERY_PORT", 7860)
QUEUE_MAX_SIZE = _env_int("GALLERY_QUEUE_MAX_SIZE", 64)  # people waiting before "queue full"
MAX_FILE_SIZE = os.environ.get("GALLERY_MAX_FILE_SIZE", "20mb")  # per upload
# Two lanes of model calls, each with its own limit: short ones (next-token bars, a guess, CLIP
# on cached text, room tallies) never wait behind long ones (generation, diffusion, set scoring,
# training). One call per lane: on a 2-core CPU at most two model calls run at once.
SHORT_CONCURRENCY = _env_int("GALLERY_SHORT_CONCURRENCY", 1)
MODEL_CONCURRENCY = _env_int("GALLERY_MODEL_CONCURRENCY", 1)  # the long lane
TIME_LIMIT_S = _env_float("GALLERY_TIME_LIMIT_S", 300.0)  # per request, for long generations
AUTH = os.environ.get("GALLERY_AUTH", "")  # "user:password" for a private workshop
SAFETY_CHECKER = _env_bool("GALLERY_SAFETY_CHECKER", True)  # text-to-image safety check
# gradio's temporary files (uploads, generated pictures): a folder of the gallery's own, swept
# every TEMP_SWEEP_S. Files older than TEMP_MAX_AGE_S go, and the oldest go first while the
# folder is above TEMP_MAX_MB, so a day of 512-px pictures cannot fill a small disk.
TEMP_DIR = Path(
    os.environ.get("GRADIO_TEMP_DIR")
    or Path(tempfile.gettempdir()) / "foundation-model-gallery"
)
os.environ["GRADIO_TEMP_DIR"] = str(TEMP_DIR)  # before gradio reads it
TEMP_SWEEP_S = max(1, _env_int("GALLERY_TEMP_SWEEP_S", 60))
TEMP_MAX_AGE_S = max(1, _env_int("GALLERY_TEMP_MAX_AGE_S", 3600))
TEMP_MAX_MB = _env_float("GALLERY_TEMP_MAX_MB", 500.0)
TEMP_MIN_AGE_S = _env_float("GALLERY_TEMP_MIN_AGE_S", 10.0)  # younger files may still be fetched
# On ZeroGPU each GPU call runs in a forked worker, so models must be loaded in the main process
# before the first request (a model loaded inside a call would be lost with the worker).
ZERO_GPU = _env_bool("SPACES_ZERO_GPU", False)
PRELOAD = _env_bool("GALLERY_PRELOAD", ZERO_GPU)  # load every default model at start
# Work out each tab's opening answer at start, so the first visitors find it ready (gallery/opening.py);
# not on ZeroGPU, where no GPU is lent outside a request.
WARM_OPENINGS = _env_bool("GALLERY_WARM", not ZERO_GPU)
OPENING_CONCURRENCY = _env_int("GALLERY_OPENING_CONCURRENCY", 8)
# ZeroGPU meters GPU time per visitor IP, and a room on one Wi-Fi is one IP. Text models up to this
# many million parameters answer quickly on a CPU, so on ZeroGPU they stay there and never spend
# that quota (0 = every model on the GPU). See catalog.runs_on_cpu.
CPU_MAX_PARAMS_M = _env_int("GALLERY_CPU_MAX_PARAMS_M", 500)

# --- models ----------------------------------------------------------------------------------
# When set, every model role is served from tiny local checkpoints in this folder (tests, CI,
# load tests). Built by `python -m tests.support.tiny_models DIR`.
TINY_MODELS_DIR = os.environ.get("GALLERY_TINY_MODELS", "").strip() or None
# The engine for the bundled GGUF text models on CPU: "auto" = llama.cpp when it is installed
# and passes its start-up check, else transformers; "transformers" = always transformers.
TEXT_ENGINE = os.environ.get("GALLERY_TEXT_ENGINE", "auto").strip().lower() or "auto"
# An OpenAI-compatible text server for the text tabs (gallery/text_server.py): its API's URL
# ("http://host:port/v1"), the model it serves (a catalogue model), an optional API key (never
# logged), and how long one request may wait for it before it is set aside. Unset: in-process.
TEXT_SERVER = os.environ.get("GALLERY_TEXT_SERVER", "").strip()
TEXT_SERVER_MODEL = os.environ.get("GALLERY_TEXT_SERVER_MODEL", "").strip()
TEXT_SERVER_KEY = os.environ.get("GALLERY_TEXT_SERVER_KEY", "")
TEXT_SERVER_TIMEOUT_S = max(0.1, _env_float("GALLERY_TEXT_SERVER_TIMEOUT_S", 20.0))
# Where converted models (the bundled GGUF turned into safetensors) are kept between starts.
CACHE_DIR = Path(
    os.environ.get("GALLERY_CACHE_DIR")
    or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "foundation-model-gallery"
)
PREFETCH_COMMAND = "python -m gallery.prefetch"
# Finished pre-training runs of tab 6 (curves and weights), so a room trains each configuration once.
PRETRAIN_CACHE_DIR = Path(os.environ.get("GALLERY_PRETRAIN_CACHE") or CACHE_DIR / "pretrain")


# --- online / offline: decided once, fast ------------------------------------------------------
def _hub_reachable(timeout_s: float = 2.0) -> bool:
    """One TCP connection attempt to the Hub, bounded by a thread join (DNS can stall too)."""
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    host = urlparse(endpoint).hostname or "huggingface.co"
    port = 443 if endpoint.startswith("https") else 80
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout_s):
                result.append(True)
        except OSError:
            result.append(False)

    worker = threading.Thread(target=probe, daemon=True)
    worker.start()
    worker.join(timeout_s)
    return bool(result and result[0])


def _decide_offline() -> bool:
    forced = os.environ.get("HF_HUB_OFFLINE")
    if forced is not None and forced.strip() != "":
        return _env_bool("HF_HUB_OFFLINE", False)
    if TINY_MODELS_DIR:  # tests never talk to the Hub
        return True
    return not _hub_reachable()


OFFLINE = _decide_offline()
if OFFLINE:
    # Every hub call after this fails in milliseconds instead of stalling on retries.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import sys

    if "huggingface_hub" in sys.modules:  # imported before us: patch its constant too
        import huggingface_hub.constants as _hub_constants

        _hub_constants.HF_HUB_OFFLINE = True
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
log.info("Hugging Face Hub: %s", "offline" if OFFLINE else "online")
