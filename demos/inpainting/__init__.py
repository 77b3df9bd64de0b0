"""Fill the gap: hide part of a picture and let three methods guess what was there.

Self-supervision on images: the hidden pixels are their own answer key, so a model can practise
on any photo without a single human label. The tab hides the same squares from a masked
autoencoder (ViT-MAE, trained on exactly this game), a diffusion inpainter (SD-Turbo) and a
method that learned nothing (OpenCV's Telea inpainting), and shows their guesses side by side.

The mask travels like this (1 = hidden, 0 = visible throughout; see masks.py):
    photo ─centre-crop→ square (panel side, a multiple of the MAE's input size)
    preset or random mask: built on the MAE's patch grid (14×14 for ViT-MAE base)
    drawn mask: pixel strokes ─"≥ half of a patch"→ patch grid
    patch grid ─upsample→ the hidden pixels every method gets (so the comparison is fair).
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from demos.inpainting import fill
from demos.inpainting.fill import (
    DEFAULT_DIFFUSION_SIDE, DEFAULT_RATIO, DEFAULT_STEPS, MAX_DIFFUSION_SIDE, MAX_STEPS, MIN_DIFFUSION_SIDE,
)
from demos.inpainting.masks import BOTTOM, CENTRE, MASK_KINDS, RANDOM, TOP
from gallery import catalog, inputs, links, ui

TITLE = "Fill the gap: hide part of a picture, let models guess it"
SUMMARY = (
    "**Fill the gap.** Learning without labels: hide part of a photo and predict it; the hidden pixels "
    "are the answer key. Three guessers get the same hidden squares: a **masked autoencoder** trained "
    "on this very game, a **diffusion inpainter**, and OpenCV's **Telea** fill, which learned nothing."
)
# The tab's main controls and result, by elem_id (tests/test_first_screen_browser.py checks them).
FIRST_SCREEN = {"inputs": ["inpaint-photo", "inpaint-kind"], "button": "inpaint-run", "result": "inpaint-mae"}
API_PREFIX = "inpaint"  # every api_name of this tab starts with it (tests/test_contract.py)

IMAGES = ui.ASSETS / "images"
EXAMPLES = [
    [str(IMAGES / "astronaut.jpg"), BOTTOM],
    [str(IMAGES / "chelsea-the-cat.jpg"), RANDOM],
    [str(IMAGES / "coffee.jpg"), CENTRE],
    [str(IMAGES / "rocket.jpg"), TOP],
]


# --- layout -------------------------------------------------------------------------------------
def create_demo() -> None:
    # Over the API anything can arrive: bad values reach `fill.on_run`, which clamps or explains them
    # (gallery.inputs; the photo input hands over `Unreadable` for a file that is no picture).
    raw = inputs.pass_raw
    ui.lesson("inpainting", SUMMARY)
    ui.model_banner("mae", "inpaint")
    with gr.Row():
        with gr.Column(scale=3):
            photo = inputs.picture_input(
                gr.ImageMask,
                label="Photo (to draw your own mask, choose “Draw it yourself” and paint on it)",
                type="pil",
                sources=("upload", "clipboard"),
                layers=False,
                format="png",
                height=400,
                value={"background": EXAMPLES[0][0], "layers": [], "composite": EXAMPLES[0][0]},
                elem_id="inpaint-photo",
            )
        with gr.Column(scale=2):
            kind = raw(gr.Radio(MASK_KINDS, value=BOTTOM, label="What to hide", elem_id="inpaint-kind"))
            button = ui.model_button("Hide and guess", "mae", elem_id="inpaint-run")
            ratio = raw(gr.Slider(
                0.05, 0.95, value=DEFAULT_RATIO, step=0.05, label="Share of patches hidden", visible=False
            ))
            mask_seed = raw(gr.Number(0, precision=0, label="Mask seed", visible=False))
            brush_hint = gr.Markdown(
                "Paint over the part to hide with the brush on the photo. A patch counts as "
                "hidden when your strokes cover at least half of it.",
                visible=False,
            )
            with gr.Group():
                prompt = raw(gr.Textbox(
                    label="Prompt for the diffusion model (optional)",
                    placeholder="e.g. a photo of a cat on a sofa",
                    max_lines=2,
                ))
                with gr.Row():
                    seed = raw(gr.Number(0, precision=0, label="Seed (diffusion)"))
                    steps = raw(gr.Slider(1, MAX_STEPS, value=DEFAULT_STEPS, step=1, label="Steps"))
                    side = raw(gr.Slider(
                        MIN_DIFFUSION_SIDE, MAX_DIFFUSION_SIDE, DEFAULT_DIFFUSION_SIDE, step=64, label="Size (px)"
                    ))
            with gr.Accordion("Models", open=False):
                mae_model = raw(ui.model_dropdown("mae", label="Masked autoencoder"))
                inpaint_model = raw(ui.model_dropdown("inpaint", label="Diffusion inpainter"))
            examples = gr.Examples(
                EXAMPLES, inputs=[photo, kind], cache_examples=False, label="Example photos",
                example_labels=[f"{Path(path).stem.replace('-', ' ')} · {kind}" for path, kind in EXAMPLES],
            )

    def panel(name: str, label: str) -> gr.Image:
        return gr.Image(label=label, elem_id=f"inpaint-{name}", format="png", interactive=False)

    gr.Markdown("### The puzzle, and an answer without learning")
    with gr.Row(equal_height=True):
        original = panel("original", "Original")
        masked = panel("masked", "Masked input (what every method sees)")
        telea = panel("telea", "No learning: OpenCV Telea fill")
    gr.Markdown("### Answers from learned models")
    with gr.Row(equal_height=True):
        mae_raw = panel("mae", "MAE reconstruction (raw output)")
        mae_pasted = panel("mae-pasted", "MAE, visible patches pasted back")
        diffusion = panel("diffusion", "Diffusion inpainting")
    notes = gr.Markdown(elem_id="inpaint-notes")

    kind.change(
        fill.on_mask_kind, kind, [ratio, mask_seed, brush_hint], api_name="inpaint_mask_options",
        api_visibility="private", queue=False,
    )
    ui.bring_into_view(button.click, "inpaint-mae")
    links.linked(kind, "inpainting", "hide")
    run_inputs = [photo, kind, ratio, mask_seed, mae_model, inpaint_model, prompt, seed, steps, side]
    outputs = [original, masked, telea, mae_raw, mae_pasted, diffusion, notes]
    button.click(fill.on_run, run_inputs, outputs, api_name="inpaint", **ui.heavy())
    if catalog.available("mae"):  # an example shows its answer: computed on its first click, then kept
        ui.answer_examples(examples, fill.on_run, run_inputs, outputs)
