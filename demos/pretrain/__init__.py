"""Pre-train it yourself: tiny models learn from random weights, by self-supervision, while you
watch. Text: a byte-level Llama learns to predict the next byte of Python's language reference.
Pictures: a ViT masked autoencoder learns to fill hidden patches of handwritten digits. Scale:
the same training at four sizes, plotted against parameters and estimated compute.

The lesson is `assets/text/pretrain.md`; the training loop is `training.py`; a visitor's runs and
the panels' handlers `runs.py`; what the page draws from a run `show.py`; the panels after
pre-training (fine-tuning and its risks) `finetune.py` and `finetune_panels.py`. Every run is seeded, and
a finished run is kept (curve, checkpoints, weights) by its configuration, so a room pressing
"Train" on the defaults trains once and everyone after replays it at once.
"""

from __future__ import annotations

import gradio as gr

from demos.pretrain import finetune_panels, runs, show
from demos.pretrain.runs import (
    DEFAULT_PROMPT, DEFAULT_TEXT_SIZE, IMAGE_STEPS, SCALE_STEPS, SIZE_NAMES, TEXT_SIZES, TEXT_STEPS,
)
from demos.pretrain.show import HIDE_CHOICES
from gallery import inputs, ui


TITLE = "Pre-train it yourself"
SUMMARY = (
    "Models start from **random weights** and learn by hiding part of the data and predicting "
    "it: the next byte of a text, the hidden half of a digit. Press **Train** and watch the loss "
    "fall and the samples turn from noise into words. Nothing is downloaded; the data ships with "
    "Python and scikit-learn."
)
# Fixed series colours: a vega chart's colour scale is set when first drawn, so a series that
# appears later (the next model size, the first held-out point) must be known from the start.
PALETTE = ["#6366f1", "#ec4899", "#10b981", "#f59e0b"]
CURVE_COLORS = {"training loss": PALETTE[0], "held-out loss": PALETTE[1]}
SIZE_COLORS = dict(zip(SIZE_NAMES, PALETTE))
FLOPS_TITLE = "log₁₀ compute in FLOPs (estimated as 6 · N · tokens)"
FIRST_SCREEN = {"inputs": ["pretrain-prompt", "pretrain-text-steps"], "button": "pretrain-text-train",
                "result": "pretrain-curve"}
PANEL_SCREENS = finetune_panels.PANEL_SCREENS  # the panels after pre-training, each on its own tab
API_PREFIX = "pretrain"  # every api_name of this tab starts with it (tests/test_contract.py)


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
        10, steps_range[1], value=steps_range[0], step=10, label="Training steps (budget)",
        elem_id=f"pretrain-{panel}-steps",
    )
    with gr.Row():  # the buttons before the seed: Train stays on a laptop's first screen
        train = gr.Button("▶ Train", variant="primary", elem_id=f"pretrain-{panel}-train")
        stop = gr.Button("■ Stop (keep what it learnt)")
    seed = gr.Number(value=0, precision=0, label="Seed (same seed → same run)", minimum=0, maximum=inputs.MAX_SEED,
                     elem_id=f"pretrain-{panel}-seed")
    stop.click(runs.on_stop(panel), None, None, queue=False, api_name=f"pretrain_stop_{panel}")
    return steps, seed, train, stop


def create_demo() -> None:
    ui.lesson("pretrain", SUMMARY, title="The lesson: self-supervision, checkpoints, scale, fine-tuning and its risks")
    with gr.Tabs(elem_id="pretrain-tabs"):
        with gr.Tab("Text: predict the next byte", id="pretrain-text"):
            with gr.Row():
                with gr.Column(scale=2, min_width=320):
                    prompt = gr.Textbox(DEFAULT_PROMPT, label="Prompt (samples and next-byte bars)", max_lines=2,
                                        elem_id="pretrain-prompt")
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
                    bars = ui.bar_plot(x="next byte", y="probability", y_lim=[0, 1], height=240,
                                       label="Its top next bytes after your prompt", elem_id="pretrain-byte-bars")
                    ask = gr.Button("Ask again with this prompt")
                    ask_note = gr.Markdown()
            text_key = gr.State("")
            train.click(
                runs.on_train_text, [size, steps, seed, prompt], [curve, samples, bars, step, status, text_key],
                api_name="pretrain_text", **ui.heavy(),
            )
            ask.click(runs.on_ask_text, [prompt, step, text_key], [samples, bars, step, ask_note],
                      api_name="pretrain_ask_text", **ui.heavy())
            gr.on([step.input, prompt.submit], runs.on_ask_text, [prompt, step, text_key],
                  [samples, bars, step, ask_note], api_visibility="private", **ui.heavy())

        with gr.Tab("Pictures: fill the hidden half", id="pretrain-image"):
            with gr.Row():
                with gr.Column(scale=2, min_width=320):
                    hide = gr.Radio(list(HIDE_CHOICES), value="bottom half", label="Hide")
                    isteps, iseed, itrain, _ = _train_controls(IMAGE_STEPS, "image")
                    istatus = gr.Markdown()
                with gr.Column(scale=3):
                    icurve = _curve_plot("Loss on hidden pixels while it learns", elem_id="pretrain-image-curve")
                    _legend("Lines", CURVE_KEY)
            strips = gr.Gallery(
                label="Held-out digits at each checkpoint: original / what the model sees / its completion",
                columns=2, height=260, format="png",
            )
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
            itrain.click(runs.on_train_image, [isteps, iseed, hide], [icurve, strips, istatus, image_key],
                         api_name="pretrain_image", **ui.heavy())
            hide.input(runs.on_hide_change, [hide, image_key], strips, api_visibility="private", **ui.heavy())
            ask_draw.click(runs.on_ask_drawing, [drawing, hide, image_key], [answer, answer_note],
                           api_name="pretrain_ask_drawing", **ui.heavy())

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
                    x="log10_params", y="held_out_loss", color="model", color_map=SIZE_COLORS, height=260,
                    x_title="log₁₀ parameters (outside the embedding)",
                    y_title="held-out loss", label="Final held-out loss vs parameters", elem_id="pretrain-scale-params",
                )
                by_compute = gr.ScatterPlot(
                    x="log10_flops", y="held_out_loss", color="model", color_map=SIZE_COLORS, height=260,
                    x_title=FLOPS_TITLE,
                    y_title="held-out loss", label="Final held-out loss vs compute", elem_id="pretrain-scale-compute",
                )
            gr.Markdown(
                "Compute is an **estimate**: 6 × N × tokens seen, the usual rule of thumb for a forward and a backward "
                "pass, with N the weights outside the embedding (here each byte is one token). What does *not* "
                "carry over from this scale: the models "
                "are 1 000–100 000× smaller than real ones, train for seconds on one text, see it more than once, "
                "and are not tuned per size, so the slopes you see are not the published scaling laws."
            )
            strain.click(runs.on_train_scale, [ssteps, sseed], [compute_curves, by_params, by_compute, sstatus],
                         api_name="pretrain_scale", **ui.heavy())

        # After pre-training: fine-tune, inherited habits, memorized secrets (finetune_panels.py),
        # lent the text panel's runs (the visitor's last one), its default configuration and its
        # trainer, which trains and caches the default and the control parent once.
        default = runs.text_config(DEFAULT_TEXT_SIZE, TEXT_STEPS[0], 0, [])
        finetune_panels.create(text_key, finetune_panels.Parents(config=default, find=runs.STORE.get,
                                                                 runs=runs.train_or_replay))
