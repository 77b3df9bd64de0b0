"""A visitor's training runs, behind the tab's three panels: the values checked (gallery/inputs.py's
policy), a run trained on the GPU where there is one (`training`) or replayed from the store of
finished runs, streamed to the page a few times a second, stopped on request; and the handlers of
the text, pictures and scale panels. What a run is drawn as is `show`."""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Iterator

import gradio as gr

from demos.pretrain import show, training
from gallery import inputs, settings, ui
from gallery.device import device, gpu, sized
from gallery.errors import InputError
from gallery.lru import LRU

DEFAULT_PROMPT = "The return value of "
TINY = bool(settings.TINY_MODELS_DIR)  # tests: the same code on smaller models and budgets
TEXT_SIZES = {  # label -> (layers, width); heads = width / 32
    "2 layers × 64 wide": (2, 64),
    "4 layers × 128 wide": (4, 128),
    "4 layers × 192 wide": (4, 192),
}
DEFAULT_TEXT_SIZE = "2 layers × 64 wide" if TINY else "4 layers × 128 wide"
SCALE_SIZES = [(1, 32), (2, 48), (2, 64), (4, 128)]  # (layers, width), smallest first
# (default, largest) steps per panel: the defaults finish in 20-40 s on a 2-core laptop CPU (README, "Pre-training tab")
TEXT_STEPS = (40, 80) if TINY else (350, 1500)
IMAGE_STEPS = (60, 120) if TINY else (1200, 4000)
SCALE_STEPS = (20, 40) if TINY else (120, 400)
TIME_CEILING_S = min(settings.TIME_LIMIT_S, 180.0)  # hard wall-clock ceiling per run: it stops, keeps the weights
STREAM_EVERY_S = 0.5  # page updates while training (the browser redraws the whole curve each time)
SIZE_NAMES = [show.size_label(layers, width) for layers, width in SCALE_SIZES]  # the scale panel's series
# Finished runs, by configuration: worst case ~0.4 GB of memory, ~0.7 GB of disk.
STORE = training.RunStore(settings.PRETRAIN_CACHE_DIR, memory_runs=8, disk_runs=16)


# --- checking what a visitor (or the API) sent: gallery/inputs.py's policy ----------------------
def _steps(value, name: str, budget: tuple[int, int], notes: list[str]) -> int:
    default, largest = budget
    return inputs.number(value, name, 10, largest, default, notes, integer=True)


def _seed(value, notes: list[str]) -> int:
    return inputs.seed(value, notes, note_drawn=True)  # the seed box is no output: a drawn seed gets a note


def text_config(size, steps, seed, notes: list[str]) -> training.TextConfig:
    layers, width = TEXT_SIZES[inputs.choice(size, TEXT_SIZES, "model size")]
    return training.TextConfig(
        layers=layers,
        width=width,
        heads=width // 32,
        steps=_steps(steps, "Steps", TEXT_STEPS, notes),
        lr=3e-3 if width > 128 else 4e-3,
        seed=_seed(seed, notes),
    )


def image_config(steps, seed, notes: list[str]) -> training.ImageConfig:
    return training.ImageConfig(steps=_steps(steps, "Steps", IMAGE_STEPS, notes), seed=_seed(seed, notes))


def scale_configs(steps, seed, notes: list[str]) -> list[training.TextConfig]:
    steps = _steps(steps, "Steps per size", SCALE_STEPS, notes)
    seed = _seed(seed, notes)
    return [training.TextConfig(layers=layers, width=width, heads=max(1, width // 32), steps=steps, lr=4e-3, seed=seed)
            for layers, width in SCALE_SIZES]


def check_hide(choice) -> str:
    return inputs.choice(choice, list(show.HIDE_CHOICES), "choice of what to hide")


# --- training, shared by the three panels: cache, stop flags, the GPU call ------------------------
_stop_flags: dict[str, threading.Event] = {}


def _gpu_work_s(config: training.Config, stop_key: str = "") -> float:
    """Estimated GPU seconds for a run (ZeroGPU reserves time by it): these tiny models do a few
    hundred steps a second there, plus a held-out evaluation per checkpoint."""
    return config.steps / 150 + len(training.checkpoint_steps(config.steps))


@gpu(duration=sized(_gpu_work_s))
def _training_events(config: training.Config, stop_key: str = "") -> Iterator[training.Event]:
    """The training loop's events, on the GPU when there is one. (On ZeroGPU this runs in a forked
    worker: only small events cross back, and the stop flag of the main process is not seen
    there, so a run stops at its budget or the time ceiling.)"""
    flag = _stop_flags.get(stop_key)
    yield from training.train(
        config,
        device=device(),
        should_stop=flag.is_set if flag else (lambda: False),
        time_limit_s=TIME_CEILING_S,
    )


def train_or_replay(config: training.Config,
                    stop_key: str) -> Iterator[tuple[training.Run, training.Checkpoint | None]]:
    """(the run so far, a checkpoint that just arrived or None), about every STREAM_EVERY_S.
    A configuration trained before is replayed from the cache in a few quick frames."""
    cached = STORE.get(training.config_key(config, device()))
    if cached is not None:
        for share in (0.34, 0.67, 1.0):
            partial = training.Run(config, cached.device, from_cache=True)
            partial.points = cached.points[: max(1, int(len(cached.points) * share))]
            partial.checkpoints = [c for c in cached.checkpoints if c.step <= partial.last_step]
            yield (dataclasses.replace(cached, from_cache=True) if share == 1.0 else partial), None
            time.sleep(0.05)
        return
    run = training.Run(config, device())
    last = 0.0
    for event in _training_events(config, stop_key):
        run.add(event)
        if event.kind == "checkpoint":
            yield run, event.checkpoint
            last = time.perf_counter()
        elif event.kind == "done":
            STORE.put(run)
            yield run, None
        elif time.perf_counter() - last >= STREAM_EVERY_S:
            yield run, None
            last = time.perf_counter()


def _stop_key(request: gr.Request | None, panel: str) -> str:
    session = getattr(request, "session_hash", None) or "api"
    return f"{session}:{panel}"


def _start(request, panel: str) -> str:
    key = _stop_key(request, panel)
    _stop_flags[key] = threading.Event()
    return key


def _finish(key: str) -> None:
    _stop_flags.pop(key, None)


def status_line(run: training.Run, notes: list[str], done: bool) -> str:
    what = "bytes" if run.config.kind == "text" else "pictures"
    seen = run.points[-1].examples if run.points else 0
    if run.from_cache and done:
        head = (
            f"**Replayed from the cache**: this exact configuration (same size, steps and seed) was "
            f"trained on this machine before, so it gives the same curve; {run.last_step} steps, "
            f"{run.seconds:.0f} s of training when it ran."
        )
    elif done and run.stopped:
        reason = "you pressed Stop" if run.stopped == "stop" else f"the {TIME_CEILING_S:.0f} s ceiling was reached"
        head = (f"**Stopped at step {run.last_step}** of {run.config.steps} ({reason}); the weights so far are kept, "
                "ask them below.")
    elif done:
        rate = run.last_step / max(run.seconds, 1e-9)
        head = f"**Trained {run.last_step} steps in {run.seconds:.0f} s** on {run.device.upper()} ({rate:.1f} steps/s)."
    else:
        head = (f"Training… step {run.last_step} of {run.config.steps}, {run.seconds:.0f} s, "
                f"loss {run.points[-1].loss:.2f}." if run.points else "Starting…")
    params = f" {run.parameters:,} parameters," if run.parameters else ""
    tail = f"{params} {seen:,} {what} seen." if done else ""
    return " ".join([head + tail, *notes]).strip()


# --- text panel --------------------------------------------------------------------------------------
# (configuration, device, step, prompt) -> (held-out loss, sample). A checkpoint's weights depend only
# on those (training is deterministic), so a replay, a stopped run and a running one share samples.
_sample_cache = LRU(256)


def text_samples(run: training.Run, prompt_ids: list[int]) -> list[tuple[int, float, str]]:
    rows = []
    for checkpoint in run.checkpoints:
        key = (training.config_key(run.config, run.device), checkpoint.step, tuple(prompt_ids))
        sample = _sample_cache.get(key)
        if sample is None:
            sample = (checkpoint.held_out_loss, show.checkpoint_sample(run, checkpoint.step, prompt_ids))
            _sample_cache.put(key, sample)
        rows.append((checkpoint.step, *sample))
    return rows


def text_view(run: training.Run, prompt: str, prompt_ids: list[int], step: int | None = None) -> tuple:
    """(samples markdown, next-byte bars, checkpoint choice update) for a run and a prompt."""
    steps = [c.step for c in run.checkpoints]
    if not steps:
        return show.samples_markdown([], prompt), None, gr.update(choices=[], value=None)
    step = step if step in steps else steps[-1]
    probs = training.next_byte_probabilities(run.model_at(step), run.config.context, prompt_ids)
    return (show.samples_markdown(text_samples(run, prompt_ids), prompt), show.next_byte_bars(probs),
            gr.update(choices=steps, value=step))


def _last_run(key) -> training.Run:
    run = STORE.get(key) if isinstance(key, str) and key else None
    if run is None:
        raise InputError("Train a model first (press Train); then ask it.")
    return run


@ui.user_errors
def on_train_text(size, steps, seed, prompt, request: gr.Request = None):
    notes: list[str] = []
    config = text_config(size, steps, seed, notes)
    prompt_ids, prompt_note = show.clean_prompt(prompt, config.context)
    notes += [prompt_note] if prompt_note else []
    stop_key = _start(request, "text")
    view = (show.samples_markdown([], prompt), None, gr.update())
    try:
        for run, checkpoint in train_or_replay(config, stop_key):
            done = run.finished or bool(run.stopped)
            if checkpoint is not None or done:  # samples change only at checkpoints
                view = text_view(run, prompt, prompt_ids)
            yield show.loss_curve(run), *view, status_line(run, notes, done), run.key
    finally:
        _finish(stop_key)


@ui.user_errors
def on_ask_text(prompt, step, run_key):
    show.clean_prompt(prompt, training.TextConfig.context)  # the prompt first: bad input gets its own answer
    run = _last_run(run_key)
    prompt_ids, note = show.clean_prompt(prompt, run.config.context)
    samples, bars, choice = text_view(run, prompt, prompt_ids, step if isinstance(step, int) else None)
    return samples, bars, choice, note


# --- pictures panel ----------------------------------------------------------------------------------
@ui.user_errors
def on_train_image(steps, seed, hide, request: gr.Request = None):
    notes: list[str] = []
    config = image_config(steps, seed, notes)
    hide = check_hide(hide)
    stop_key = _start(request, "image")
    gallery: list = []
    try:
        for run, checkpoint in train_or_replay(config, stop_key):
            done = run.finished or bool(run.stopped)
            if checkpoint is not None or done:
                gallery = show.checkpoint_gallery(run, hide)
            yield show.loss_curve(run), gallery, status_line(run, notes, done), run.key
    finally:
        _finish(stop_key)


@ui.user_errors
def on_hide_change(hide, run_key):
    run = STORE.get(run_key) if isinstance(run_key, str) and run_key else None
    return show.checkpoint_gallery(run, check_hide(hide)) if run else []


@ui.user_errors
def on_ask_drawing(drawing, hide, run_key):
    hide = check_hide(hide)
    digit = show.drawing_to_digit(drawing)  # (1, 1, 16, 16); checked before the model, so any drawing gets an answer
    run = _last_run(run_key)
    strip, error = show.reconstruction_strip(run.model_at(), digit, show.hide_noise(hide, 1, seed=run.config.seed))
    note = (
        f"Top: your digit as the model sees it (8×8, upscaled). Middle: with the {hide} hidden. "
        f"Bottom: the model's completion after {run.last_step} steps (error on the hidden pixels {error:.3f})."
    )
    return strip, note


# --- scale panel ---------------------------------------------------------------------------------------
@ui.user_errors
def on_train_scale(steps, seed, request: gr.Request = None):
    notes: list[str] = []
    configs = scale_configs(steps, seed, notes)
    stop_key = _start(request, "scale")
    finished: list[training.Run] = []
    try:
        for index, config in enumerate(configs):
            for run, _ in train_or_replay(config, stop_key):
                tables = show.scaling_tables(finished + [run], SIZE_NAMES)
                label = (f"Size {index + 1} of {len(configs)}: {show.size_name(run)} "
                         f"({run.parameters or '…'} parameters). "
                         + status_line(run, [], run.finished or bool(run.stopped)))
                yield *tables, " ".join([label, *notes])
            finished.append(run)
            if run.stopped:
                break
        done = f"Trained {len(finished)} sizes for {configs[0].steps} steps each."
        yield *show.scaling_tables(finished, SIZE_NAMES), " ".join([done, *notes])
    finally:
        _finish(stop_key)


def on_stop(panel: str):
    @ui.user_errors
    def stop(request: gr.Request = None):
        flag = _stop_flags.get(_stop_key(request, panel))
        if flag:
            flag.set()

    stop.__name__ = f"on_stop_{panel}"
    return stop
