"""Which engine answers a text model's requests: the text server (GALLERY_TEXT_SERVER) where it
serves the model and answers, llama.cpp in this process for a bundled GGUF model on a CPU where it
works, else None: transformers (`models.load_causal_lm`) computes them.

`load_text_engine` is what generation uses; `distribution_engine` what the next-token bars and a
guess's probability use (llama.cpp only where it gives a prompt the same numbers however its
cache was filled); `text_engine_problem` says why a GGUF model's bars come from transformers.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from gallery import catalog, settings, text_engine, text_server
from gallery.catalog import Model
from gallery.device import device

log = logging.getLogger("gallery")

_engines: dict[str, Any] = {}  # GGUF path -> LlamaCppEngine, or None where it failed
_engine_lock = threading.Lock()


_read_gaps: dict[str, float] = {}  # GGUF path -> text_engine.read_gap on the probe prompts
PROBE_TEXTS = ("What is the capital of France?", "Write a haiku about the sea.", "The capital of France is")
READ_GAP_LIMIT = 1e-5  # bars that move by more than this with the cache's history are not used


def text_engine_problem(model: Model) -> str | None:
    """Why a GGUF model's next-token bars come from transformers rather than llama.cpp here
    (None: they do not, or it is not a GGUF model)."""
    path = catalog.gguf_file(model)
    if text_server.engine_for(model) is not None:  # a text server answers for it (GALLERY_TEXT_SERVER)
        return None
    if path is None or settings.TEXT_ENGINE == "transformers" or device() != "cpu":
        return None
    gap = _read_gaps.get(str(path), 0.0)
    return text_engine.why_unusable(path) or (
        "llama.cpp could not open the model file" if _engines.get(str(path), 1) is None else None
    ) or (f"on this CPU llama.cpp gives the same text probabilities up to {gap:.3f} apart depending on what "
          "it read before" if gap > READ_GAP_LIMIT else None)


def distribution_engine(model: Model, tokenizer):
    """The engine for next-token distributions (the bars, a guess's probability): llama.cpp where
    it gives a prompt the same numbers however its cache was filled, else None (transformers).
    Checked once per model on its first use (`text_engine.read_gap` on PROBE_TEXTS): on some CPUs
    Gemma's Q4_K weights gave the same prompt probabilities 0.011 apart, so the same Reveal twice
    would draw different bars. Generation keeps llama.cpp either way."""
    engine = load_text_engine(model)
    if not isinstance(engine, text_engine.LlamaCppEngine):  # None, or a text server (its own check)
        return engine
    key = str(engine.path)
    with _engine_lock:
        if key not in _read_gaps:
            _read_gaps[key] = engine.read_gap([tokenizer(text)["input_ids"] for text in PROBE_TEXTS])
            if _read_gaps[key] > READ_GAP_LIMIT:
                log.warning("llama.cpp reads %s inconsistently here (probabilities %.4f apart): its bars come "
                            "from transformers", engine.path.name, _read_gaps[key])
    return engine if _read_gaps[key] <= READ_GAP_LIMIT else None


def load_text_engine(model: Model):
    """-> the text server's engine when GALLERY_TEXT_SERVER serves this model and answers
    (`text_server.engine_for`); else a shared `text_engine.LlamaCppEngine` for a model that comes
    from a GGUF file, on CPU, when llama.cpp works here; None means: use transformers (Hub
    models, GPU, or no llama.cpp)."""
    server = text_server.engine_for(model)
    if server is not None:
        return server
    path = catalog.gguf_file(model)
    if path is None or settings.TEXT_ENGINE == "transformers" or device() != "cpu":
        return None

    key = str(path)
    with _engine_lock:
        if key in _engines:
            return _engines[key]
        if text_engine.why_unusable(path):
            return None
        started = time.perf_counter()
        try:
            _engines[key] = text_engine.LlamaCppEngine(path)
            log.info("llama.cpp opened %s in %.1f s", path.name, time.perf_counter() - started)
        except Exception:  # noqa: BLE001 - the model still works on transformers
            log.exception("llama.cpp could not open %s; transformers is used instead", path.name)
            _engines[key] = None
        return _engines[key]
