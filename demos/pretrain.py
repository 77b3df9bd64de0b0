"""Pre-train it yourself: tiny models learn from random weights, by self-supervision, while you
watch. Text: a byte-level Llama learns to predict the next byte of Python's language reference.
Pictures: a ViT masked autoencoder learns to fill hidden patches of handwritten digits. Scale:
the same training at four sizes, plotted against parameters and estimated compute.

The lesson is `assets/text/pretrain.md`; the training loop is `gallery/pretraining.py`; what the
page draws from a run is `demos/pretrain_show.py`. Every run is seeded, and a finished run is kept
(curve, checkpoints, weights) by its configuration, so a room pressing "Train" on the defaults
trains once and everyone after replays it at once.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Iterator

import gradio as gr

from demos import pretrain_finetune_panels as finetune_panels
from demos import pretrain_show as show
from gallery import pretraining as engine
from gallery import inputs, settings, ui
from gallery.device import device, gpu, sized
from gallery.errors import InputError
from gallery.lru import LRU

TITLE = "Pre-train it yourself"
SUMMARY = (
    "Models start from **random weights** and learn by hiding part of the data and predicting "
    "it: the next byte of a text, the hidden half of a digit. Press **Train** and watch the loss "
    "fall and the samples turn from noise into words. Nothing is downloaded; the data ships with "
    "Python and scikit-learn."
)
DEFAULT_PROMPT = "The return value of "
TINY = bool(settings.TINY_MODELS_DIR)  # tests: the same code on smaller models and budgets
TEXT_SIZES = {  # label -> (layers, width); heads = width / 32
    "2 layers × 64 wide": (2, 64),
    "4 layers × 128 wide": (4, 128),
    "4 layers × 192 wide": (4, 192),
}
DEFAULT_TEXT_SIZE = "2 layers × 64 wide" if TINY else "4 layers × 128 wide"
SCALE_SIZES = [(1, 32), (2, 48), (2, 64), (4, 128)]  # (layers, width), smallest first
# (default, largest) steps per panel: the defaults finish in about a minute on a 2-core laptop CPU
TEXT_STEPS = (40, 80) if TINY else (350, 1500)
IMAGE_STEPS = (60, 120) if TINY else (1200, 4000)
SCALE_STEPS = (20, 40) if TINY else (120, 400)
TIME_CEILING_S = min(settings.TIME_LIMIT_S, 180.0)  # hard wall-clock ceiling per run: it stops, keeps the weights
STREAM_EVERY_S = 0.5  # page updates while training (the browser redraws the whole curve each time)
# Fixed series colours: a vega chart's colour scale is set when first drawn, so a series that
# appears later (the next model size, the first held-out point) must be known from the start.
PALETTE = ["#6366f1", "#ec4899", "#10b981", "#f59e0b"]
CURVE_COLORS = {"training loss": PALETTE[0], "held-out loss": PALETTE[1]}
SIZE_COLORS = {show.size_label(l, w): c for (l, w), c in zip(SCALE_SIZES, PALETTE)}
FLOPS_TITLE = "log₁₀ compute in FLOPs (estimated as 6 · N · tokens)"
FIRST_SCREEN = {"inputs": ["pretrain-prompt", "pretrain-text-steps"], "button": "pretrain-text-train", "result": "pretrain-curve"}
PANEL_SCREENS = finetune_panels.PANEL_SCREENS  # the panels after pre-training, each on its own tab
STORE = engine.RunStore(settings.PRETRAIN_CACHE_DIR, memory_runs=8, disk_runs=16)  # worst case ~0.4 GB RAM, ~0.7 GB disk


# --- checking what a visitor (or the API) sent: gallery/inputs.py's policy ----------------------
def _steps(value, name: str, budget: tuple[int, int], notes: list[str]) -> int:
    default, largest = budget
    return inputs.number(value, name, 10, largest, default, notes, integer=True)


def _seed(value, notes: list[str]) -> int:
    return inputs.seed(value, notes, note_drawn=True)  # the seed box is no output: a drawn seed gets a note


def text_config(size, steps, seed, notes: list[str]) -> engine.TextConfig:
    layers, width = TEXT_SIZES[inputs.choice(size, TEXT_SIZES, "model size")]
    return engine.TextConfig(
        layers=layers,
        width=width,
        heads=width // 32,
        steps=_steps(steps, "Steps", TEXT_STEPS, notes),
        lr=3e-3 if width > 128 else 4e-3,
        seed=_seed(seed, notes),
    )


def image_config(steps, seed, notes: list[str]) -> engine.ImageConfig:
    return engine.ImageConfig(steps=_steps(steps, "Steps", IMAGE_STEPS, notes), seed=_seed(seed, notes))


def scale_configs(steps, seed, notes: list[str]) -> list[engine.TextConfig]:
    steps = _steps(steps, "Steps per size", SCALE_STEPS, notes)
    seed = _seed(seed, notes)
    return [engine.TextConfig(layers=l, width=w, heads=max(1, w // 32), steps=steps, lr=4e-3, seed=seed) for l, w in SCALE_SIZES]


def check_hide(choice) -> str:
    return inputs.choice(choice, list(show.HIDE_CHOICES), "choice of what to hide")


# --- training, shared by the three panels: cache, stop flags, the GPU call ------------------------
_stop_flags: dict[str, threading.Event] = {}


def _gpu_work_s(config: engine.Config, stop_key: str = "") -> float:
    """Estimated GPU seconds for a run (ZeroGPU reserves time by it): these tiny models do a few
    hundred steps a second there, plus a held-out evaluation per checkpoint."""
    return config.steps / 150 + len(engine.checkpoint_steps(config.steps))


@gpu(duration=sized(_gpu_work_s))
def _training_events(config: engine.Config, stop_key: str = "") -> Iterator[engine.Event]:
    """The engine's events, on the GPU when there is one. (On ZeroGPU this runs in a forked
    worker: only small events cross back, and the stop flag of the main process is not seen
    there, so a run stops at its budget or the time ceiling.)"""
    flag = _stop_flags.get(stop_key)
    yield from engine.train(
        config,
        device=device(),
        should_stop=flag.is_set if flag else (lambda: False),
        time_limit_s=TIME_CEILING_S,
    )


def runs(config: engine.Config, stop_key: str) -> Iterator[tuple[engine.Run, engine.Checkpoint | None]]:
    """(the run so far, a checkpoint that just arrived or None), about every STREAM_EVERY_S.
    A configuration trained before is replayed from the cache in a few quick frames."""
    cached = STORE.get(engine.config_key(config, device()))
    if cached is not None:
        for share in (0.34, 0.67, 1.0):
            partial = engine.Run(config, cached.device, from_cache=True)
            partial.points = cached.points[: max(1, int(len(cached.points) * share))]
            partial.checkpoints = [c for c in cached.checkpoints if c.step <= partial.last_step]
            yield (dataclasses.replace(cached, from_cache=True) if share == 1.0 else partial), None
            time.sleep(0.05)
        return
    run = engine.Run(config, device())
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


def status_line(run: engine.Run, notes: list[str], done: bool) -> str:
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
        head = f"**Stopped at step {run.last_step}** of {run.config.steps} ({reason}); the weights so far are kept, ask them below."
    elif done:
        rate = run.last_step / max(run.seconds, 1e-9)
        head = f"**Trained {run.last_step} steps in {run.seconds:.0f} s** on {run.device.upper()} ({rate:.1f} steps/s)."
    else:
        head = f"Training… step {run.last_step} of {run.config.steps}, {run.seconds:.0f} s, loss {run.points[-1].loss:.2f}." if run.points else "Starting…"
    params = f" {run.parameters:,} parameters," if run.parameters else ""
    tail = f"{params} {seen:,} {what} seen." if done else ""
    return " ".join([head + tail, *notes]).strip()


# --- text panel --------------------------------------------------------------------------------------
# (configuration, device, step, prompt) -> (held-out loss, sample). A checkpoint's weights depend only
# on those (training is deterministic), so a replay, a stopped run and a running one share samples.
_sample_cache = LRU(256)


def text_samples(run: engine.Run, prompt_ids: list[int]) -> list[tuple[int, float, str]]:
    rows = []
    for checkpoint in run.checkpoints:
        key = (engine.config_key(run.config, run.device), checkpoint.step, tuple(prompt_ids))
        sample = _sample_cache.get(key)
        if sample is None:
            sample = (checkpoint.held_out_loss, show.checkpoint_sample(run, checkpoint.step, prompt_ids))
            _sample_cache.put(key, sample)
        rows.append((checkpoint.step, *sample))
    return rows


def text_view(run: engine.Run, prompt: str, prompt_ids: list[int], step: int | None = None) -> tuple:
    """(samples markdown, next-byte bars, checkpoint choice update) for a run and a prompt."""
    steps = [c.step for c in run.checkpoints]
    if not steps:
        return show.samples_markdown([], prompt), None, gr.update(choices=[], value=None)
    step = step if step in steps else steps[-1]
    probs = engine.next_byte_probabilities(run.model_at(step), run.config.context, prompt_ids)
    return show.samples_markdown(text_samples(run, prompt_ids), prompt), show.next_byte_bars(probs), gr.update(choices=steps, value=step)


def _last_run(key) -> engine.Run:
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
        for run, checkpoint in runs(config, stop_key):
            done = run.finished or bool(run.stopped)
            if checkpoint is not None or done:  # samples change only at checkpoints
                view = text_view(run, prompt, prompt_ids)
            yield show.loss_curve(run), *view, status_line(run, notes, done), run.key
    finally:
        _finish(stop_key)


@ui.user_errors
def on_ask_text(prompt, step, run_key):
    show.clean_prompt(prompt, engine.TextConfig.context)  # the prompt first: bad input gets its own answer
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
        for run, checkpoint in runs(config, stop_key):
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
    finished: list[engine.Run] = []
    try:
        for index, config in enumerate(configs):
            for run, _ in runs(config, stop_key):
                tables = show.scaling_tables(finished + [run], list(SIZE_COLORS))
                label = f"Size {index + 1} of {len(configs)}: {show.size_name(run)} ({run.parameters or '…'} parameters). " + status_line(run, [], run.finished or bool(run.stopped))
                yield *tables, " ".join([label, *notes])
            finished.append(run)
            if run.stopped:
                break
        yield *show.scaling_tables(finished, list(SIZE_COLORS)), " ".join([f"Trained {len(finished)} sizes for {configs[0].steps} steps each.", *notes])
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


# --- the tab ---------------------------------------------------------------------------------------------
def _legend(title: str, colors: dict[str, str]) -> gr.HTML:
    """The colours' key in one line (gradio's own legend leaves only its title at this height)."""
    return gr.HTML(f"{title}: " + " · ".join(f'<span style="color:{c}">■</span> {name}' for name, c in colors.items()))


CURVE_KEY = {"training loss (each batch)": CURVE_COLORS["training loss"],
             "held-out loss (at each checkpoint, on data it never trains on)": CURVE_COLORS["held-out loss"]}


def _curve_plot(label: str, **kw) -> gr.LinePlot:
    return gr.LinePlot(
        x="step", y="loss", color="series", color_map=CURVE_COLORS, label=label, height=300, y_title="loss (nats)", **kw
    )


def _train_controls(steps_range, panel: str):
    steps = gr.Slider(
        10, steps_range[1], value=steps_range[0], step=10, label="Training steps (budget)", elem_id=f"pretrain-{panel}-steps"
    )
    with gr.Row():  # the buttons before the seed: Train stays on a laptop's first screen
        train = gr.Button("▶ Train", variant="primary", elem_id=f"pretrain-{panel}-train")
        stop = gr.Button("■ Stop (keep what it learnt)")
    seed = gr.Number(value=0, precision=0, label="Seed (same seed → same run)", minimum=0, maximum=inputs.MAX_SEED, elem_id=f"pretrain-{panel}-seed")
    stop.click(on_stop(panel), None, None, queue=False, api_name=f"pretrain_stop_{panel}")
    return steps, seed, train, stop


def create_demo() -> None:
    ui.lesson("pretrain", SUMMARY, title="The lesson: self-supervision, checkpoints, scale, fine-tuning and its risks")
    with gr.Tabs(elem_id="pretrain-tabs"):
        with gr.Tab("Text: predict the next byte", id="pretrain-text"):
            with gr.Row():
                with gr.Column(scale=2, min_width=320):
                    prompt = gr.Textbox(DEFAULT_PROMPT, label="Prompt (samples and next-byte bars)", max_lines=2, elem_id="pretrain-prompt")
                    size = gr.Dropdown(list(TEXT_SIZES), value=DEFAULT_TEXT_SIZE, label="Model size")
                    steps, seed, train, stop = _train_controls(TEXT_STEPS, "text")
                    status = gr.Markdown()
                with gr.Column(scale=3):
                    curve = _curve_plot("Loss while it learns (lower = better predictions)", elem_id="pretrain-curve")
                    _legend("Lines", CURVE_KEY)
            with gr.Row():
                samples = gr.Markdown(show.samples_markdown([], DEFAULT_PROMPT))
                with gr.Column():
                    step = gr.Radio([], label="Checkpoint (step)", elem_id="pretrain-text-step")
                    bars = ui.bar_plot(x="next byte", y="probability", y_lim=[0, 1], height=240, label="Its top next bytes after your prompt", elem_id="pretrain-byte-bars")
                    ask = gr.Button("Ask again with this prompt")
                    ask_note = gr.Markdown()
            text_key = gr.State("")
            train.click(
                on_train_text, [size, steps, seed, prompt], [curve, samples, bars, step, status, text_key],
                api_name="pretrain_text", **ui.heavy(),
            )
            ask.click(on_ask_text, [prompt, step, text_key], [samples, bars, step, ask_note], api_name="pretrain_ask_text", **ui.heavy())
            gr.on([step.input, prompt.submit], on_ask_text, [prompt, step, text_key], [samples, bars, step, ask_note], api_visibility="private", **ui.heavy())

        with gr.Tab("Pictures: fill the hidden half", id="pretrain-image"):
            with gr.Row():
                with gr.Column(scale=2, min_width=320):
                    hide = gr.Radio(list(show.HIDE_CHOICES), value="bottom half", label="Hide")
                    isteps, iseed, itrain, _ = _train_controls(IMAGE_STEPS, "image")
                    istatus = gr.Markdown()
                with gr.Column(scale=3):
                    icurve = _curve_plot("Loss on hidden pixels while it learns", elem_id="pretrain-image-curve")
                    _legend("Lines", CURVE_KEY)
            strips = gr.Gallery(label="Held-out digits at each checkpoint: original / what the model sees / its completion", columns=2, height=260, format="png")
            with gr.Row():
                drawing = gr.Sketchpad(
                    label="Draw a digit (big, centred)", type="numpy", image_mode="RGBA", canvas_size=(280, 280),
                    brush=gr.Brush(default_size=22, colors=["#000000"], color_mode="fixed"),
                )
                with gr.Column():
                    ask_draw = gr.Button("Hide part of my digit and ask the model", variant="primary")
                    answer = gr.Image(label="Your digit, hidden, completed", format="png", height=220)
                    answer_note = gr.Markdown()
            image_key = gr.State("")
            itrain.click(on_train_image, [isteps, iseed, hide], [icurve, strips, istatus, image_key], api_name="pretrain_image", **ui.heavy())
            hide.input(on_hide_change, [hide, image_key], strips, api_visibility="private", **ui.heavy())
            ask_draw.click(on_ask_drawing, [drawing, hide, image_key], [answer, answer_note], api_name="pretrain_ask_drawing", **ui.heavy())

        with gr.Tab("Scale: four sizes, same steps", id="pretrain-scale"):
            with gr.Row():
                with gr.Column(scale=2, min_width=320):
                    ssteps, sseed, strain, _ = _train_controls(SCALE_STEPS, "scale")
                    sstatus = gr.Markdown()
                compute_curves = gr.LinePlot(
                    x="log10_flops", y="log10_loss", color="model", color_map=SIZE_COLORS, height=300, scale=3,
                    x_title=FLOPS_TITLE, y_title="log₁₀ training loss", elem_id="pretrain-scale-curves",
                    label="Training loss against compute spent, per size (both axes log10)",
                )
            _legend("Sizes", SIZE_COLORS)
            with gr.Row():
                by_params = gr.ScatterPlot(
                    x="log10_params", y="held_out_loss", color="model", color_map=SIZE_COLORS, height=260, x_title="log₁₀ parameters (outside the embedding)",
                    y_title="held-out loss", label="Final held-out loss vs parameters", elem_id="pretrain-scale-params",
                )
                by_compute = gr.ScatterPlot(
                    x="log10_flops", y="held_out_loss", color="model", color_map=SIZE_COLORS, height=260, x_title=FLOPS_TITLE,
                    y_title="held-out loss", label="Final held-out loss vs compute", elem_id="pretrain-scale-compute",
                )
            gr.Markdown(
                "Compute is an **estimate**: 6 × N × tokens seen, the usual rule of thumb for a forward and a backward "
                "pass, with N the weights outside the embedding (here each byte is one token). What does *not* carry over from this scale: the models "
                "are 1 000–100 000× smaller than real ones, train for seconds on one text, see it more than once, "
                "and are not tuned per size, so the slopes you see are not the published scaling laws."
            )
            strain.click(on_train_scale, [ssteps, sseed], [compute_curves, by_params, by_compute, sstatus], api_name="pretrain_scale", **ui.heavy())

        # After pre-training: fine-tune, inherited habits, memorized secrets (demos/pretrain_finetune_panels.py),
        # lent the text panel's runs: the visitor's last one, and the default, trained once and cached.
        default = text_config(DEFAULT_TEXT_SIZE, TEXT_STEPS[0], 0, [])
        finetune_panels.create(text_key, finetune_panels.Parents(config=default, find=STORE.get, runs=runs))


if __name__ == "__main__":
    import app as gallery_app

    with gr.Blocks(title=TITLE) as demo:
        create_demo()
    gallery_app.launch(demo)
