"""Fill the gap: hide part of a picture and let three methods guess what was there.

Self-supervision on images: the hidden pixels are their own answer key, so a model can practise
on any photo without a single human label. The tab hides the same squares from a masked
autoencoder (ViT-MAE, trained on exactly this game), a diffusion inpainter (SD-Turbo) and a
method that learned nothing (OpenCV's Telea inpainting), and shows their guesses side by side.

The mask travels like this (1 = hidden, 0 = visible throughout; see inpainting_masks):
    photo ─centre-crop→ square (panel side, a multiple of the MAE's input size)
    preset or random mask: built on the MAE's patch grid (14×14 for ViT-MAE base)
    drawn mask: pixel strokes ─"≥ half of a patch"→ patch grid
    patch grid ─upsample→ the hidden pixels every method gets (so the comparison is fair).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import numpy as np
import torch
from PIL import Image

from demos.inpainting_masks import (
    BOTTOM, CENTRE, DRAWN, GREY, MASK_KINDS, RANDOM, TOP, masked_view, paste_visible, prepare, split_editor_value,
)
from gallery import catalog, inputs, links, models, ui
from gallery.device import device, dtype, gpu, gpu_seconds, sized
from gallery.errors import InputError, ModelUnavailable

TITLE = "Fill the gap: hide part of a picture, let models guess it"
SUMMARY = (
    "**Fill the gap.** Learning without labels: hide part of a photo and predict it; the hidden pixels "
    "are the answer key. Three guessers get the same hidden squares: a **masked autoencoder** trained "
    "on this very game, a **diffusion inpainter**, and OpenCV's **Telea** fill, which learned nothing."
)
# The tab's main controls and result, by elem_id (tests/test_first_screen_browser.py checks them).
FIRST_SCREEN = {"inputs": ["inpaint-photo", "inpaint-kind"], "button": "inpaint-run", "result": "inpaint-mae"}
API_PREFIX = "inpaint"  # every api_name of this tab starts with it (tests/test_contract.py)

DEFAULT_RATIO = 0.75  # what MAE hides during training

ON_GPU = device() == "cuda"
# On a CPU the 865M-parameter UNet takes seconds per step, so sizes stay small there.
MIN_DIFFUSION_SIDE = 128
DEFAULT_DIFFUSION_SIDE, MAX_DIFFUSION_SIDE, DEFAULT_STEPS = (512, 768, 4) if ON_GPU else (256, 512, 2)
MAX_STEPS = 4  # SD-Turbo was distilled for 1-4 steps; more do not help it
MAX_PROMPT_CHARS = 300
TELEA_RADIUS = 3  # pixels around each hidden pixel that Telea's method looks at

_IMAGES = ui.ASSETS / "images"
EXAMPLES = [
    [str(_IMAGES / "astronaut.jpg"), BOTTOM],
    [str(_IMAGES / "chelsea-the-cat.jpg"), RANDOM],
    [str(_IMAGES / "coffee.jpg"), CENTRE],
    [str(_IMAGES / "rocket.jpg"), TOP],
]



# --- the three guessers -------------------------------------------------------------------------
def telea_inpaint(image: Image.Image, hidden: np.ndarray, radius: int = TELEA_RADIUS) -> Image.Image:
    """The non-learned baseline: OpenCV's Telea method fills the hole from its edge inward,
    each pixel a weighted average of known pixels nearby. No training, no notion of objects."""
    import cv2

    pixels = np.array(image.convert("RGB"))  # (H, W, 3) uint8; cv2 treats channels alike
    pixels[hidden] = GREY  # with nothing known at all, cv2 would hand the hidden pixels back
    filled = cv2.inpaint(pixels, hidden.astype(np.uint8) * 255, radius, cv2.INPAINT_TELEA)
    return Image.fromarray(filled)


@dataclass
class MaeResult:
    reconstruction: np.ndarray  # (S, S, 3) float32, pixel values in [0, 1] (not clipped)
    mask: np.ndarray  # (grid, grid) bool: the patches the model actually hid (its own output)
    hidden_error: float  # mean squared error on hidden patches, normalised pixels: the MAE loss
    visible_error: float | None  # the same on visible patches, which training never grades


_MAE_LOCK = threading.Lock()  # mask_ratio lives on the shared, cached model's config


def mae_geometry(mae) -> tuple[int, int]:
    """(input side, patch side) of a ViTMAE model, e.g. (224, 16) -> a 14×14 patch grid."""
    size = mae.config.image_size
    side = size if isinstance(size, int) else size[0]
    return int(side), int(mae.config.patch_size)


def mae_noise(patch_mask: np.ndarray) -> torch.Tensor:
    """The `noise` that makes ViTMAE hide exactly our patches: it keeps the patches with the
    lowest noise, so visible ones get [0, 0.5) and hidden ones [1, 1.5) (a ramp breaks ties)."""
    flat = torch.from_numpy(patch_mask.reshape(1, -1).astype(np.float32))  # (1, L)
    return flat + 0.5 * torch.arange(flat.shape[1], dtype=torch.float32) / flat.shape[1]


def _processor_stats(processor) -> tuple[np.ndarray, np.ndarray]:
    if not getattr(processor, "do_normalize", True):
        return np.zeros(3, np.float32), np.ones(3, np.float32)
    return (
        np.asarray(processor.image_mean, dtype=np.float32),
        np.asarray(processor.image_std, dtype=np.float32),
    )


def mae_reconstruct(mae, processor, image: Image.Image, patch_mask: np.ndarray) -> MaeResult:
    """Ask the masked autoencoder to rebuild `image` with `patch_mask`'s patches hidden.

    The mask goes in through the model's own `noise` argument; the model keeps
    int(L·(1 − config.mask_ratio)) patches, so mask_ratio is set to match our count for the
    call (under a lock: the config belongs to the cached model every visitor shares).
    """
    side, patch = mae_geometry(mae)
    grid = side // patch
    if patch_mask.shape != (grid, grid):
        raise ValueError(f"patch mask {patch_mask.shape} does not match the {grid}×{grid} grid")
    square = image.convert("RGB").resize((side, side), Image.Resampling.BICUBIC)
    pixel_values = processor(images=square, return_tensors="pt").pixel_values  # (1, 3, S, S)
    pixel_values = pixel_values.to(device(), dtype())
    noise = mae_noise(patch_mask).to(device())  # (1, L)
    hidden = int(patch_mask.sum())
    total = grid * grid
    with _MAE_LOCK, torch.inference_mode():
        saved = mae.config.mask_ratio
        mae.config.mask_ratio = (hidden - 0.5) / total  # -0.5: int() then keeps exactly L - hidden
        try:
            out = mae(pixel_values=pixel_values, noise=noise)
        finally:
            mae.config.mask_ratio = saved
        pred = out.logits.float()  # (1, L, patch²·3)
        target = mae.patchify(pixel_values).float()  # (1, L, patch²·3), normalised pixels
        mask = out.mask.float()  # (1, L), 1 = hidden
        if mae.config.norm_pix_loss:
            # This model predicts each patch normalised to mean 0, variance 1. Visible patches
            # get their own statistics back; hidden ones the visible patches' average (their
            # true statistics are exactly what is hidden).
            mean = target.mean(dim=-1, keepdim=True)
            std = (target.var(dim=-1, keepdim=True) + 1.0e-6) ** 0.5
            seen = (mask < 0.5).unsqueeze(-1)
            fill_mean = float(mean[seen].mean()) if seen.any() else 0.0
            fill_std = float(std[seen].mean()) if seen.any() else 1.0
            mean = torch.where(seen, mean, fill_mean)
            std = torch.where(seen, std, fill_std)
            pred = pred * std + mean
        per_patch = ((pred - target) ** 2).mean(dim=-1)  # (1, L)
        hidden_error = float((per_patch * mask).sum() / mask.sum().clamp(min=1))
        visible = 1 - mask
        visible_error = float((per_patch * visible).sum() / visible.sum()) if visible.sum() else None
        recon = mae.unpatchify(pred)[0]  # (3, S, S), normalised pixels
    mean_rgb, std_rgb = _processor_stats(processor)
    pixels = recon.permute(1, 2, 0).cpu().numpy() * std_rgb + mean_rgb  # (S, S, 3) in [0, 1]
    used = out.mask[0].cpu().numpy().reshape(grid, grid) > 0.5
    if not np.array_equal(used, patch_mask):  # would mean the noise trick stopped working
        raise RuntimeError("the MAE hid other patches than the ones asked for")
    return MaeResult(pixels.astype(np.float32), used, hidden_error, visible_error)


def to_image(pixels: np.ndarray) -> Image.Image:
    """(H, W, 3) float in [0, 1] -> RGB PIL (clipped)."""
    return Image.fromarray((np.clip(pixels, 0, 1) * 255 + 0.5).astype(np.uint8))


def diffusion_inpaint(
    pipe, image: Image.Image, hidden: np.ndarray, *, prompt: str, seed: int, steps: int, side: int
) -> Image.Image:
    """Repaint the hidden pixels with a diffusion inpainting pipeline (white mask = repaint).

    SD-Turbo is distilled for 1–4 steps without classifier-free guidance, hence
    guidance_scale=0; strength=1 starts the hidden part from pure noise.
    """
    image = image.convert("RGB")
    if image.size != (side, side):
        image = image.resize((side, side), Image.Resampling.BICUBIC)
    mask = Image.fromarray(hidden.astype(np.uint8) * 255, "L")
    if mask.size != (side, side):
        mask = mask.resize((side, side), Image.Resampling.NEAREST)
    generator = torch.Generator("cpu").manual_seed(seed)  # per call: reproducible, thread-safe
    with torch.inference_mode():
        result = pipe(
            prompt=prompt,
            image=image,
            mask_image=mask,
            height=side,
            width=side,
            num_inference_steps=steps,
            strength=1.0,
            guidance_scale=0.0,
            generator=generator,
        ).images[0]
    return result


# On ZeroGPU these two run in a worker that holds the GPU; arguments and results are pickled, so
# they take the catalogue entry (not the model) and return CPU objects.
# GPU time estimates: one ViT-MAE forward pass; one SD-Turbo inpainting step at 512x512.
GPU_MAE_S = 0.2
GPU_STEP_S = 0.15


@gpu(duration=gpu_seconds(GPU_MAE_S))
def _mae_on_device(entry: catalog.Model, image: Image.Image, patch_mask: np.ndarray) -> MaeResult:
    mae, processor = models.load_mae(entry)
    return mae_reconstruct(mae, processor, image, patch_mask)


@gpu(duration=sized(lambda entry, image, hidden, **kw: 0.5 + GPU_STEP_S * kw["steps"] * (kw["side"] / 512) ** 2))
def _inpaint_on_device(entry: catalog.Model, image: Image.Image, hidden: np.ndarray, *, side: int, **settings) -> tuple[Image.Image, int]:
    """-> (the repainted picture, the side it was painted at). The denoiser's work grows with the
    latent picture, side / the VAE's scale; a VAE that shrinks less than Stable Diffusion's 8 (the
    tiny test model's 2) paints at the side that gives it the same latent size."""
    pipe = models.load_inpaint(entry)
    scale = int(getattr(pipe, "vae_scale_factor", 8) or 8)
    side = max(8 * scale, side * scale // 8 // 8 * 8)
    return diffusion_inpaint(pipe, image, hidden, side=side, **settings), side



# --- handler ------------------------------------------------------------------------------------
def _inpaint_entry(label: str | None, notes: list[str]) -> catalog.Model | None:
    """The diffusion model's entry, loaded; or None with a note: its weights are the largest
    download, and the other five panels still teach the lesson without it."""
    try:
        entry = catalog.by_label("inpaint", label)
        models.load_inpaint(entry)
        return entry
    except ModelUnavailable as error:
        notes.append(f"**Diffusion inpainting:** not shown — {error}")
        return None


@ui.user_errors
def on_run(
    photo,
    kind,
    ratio,
    mask_seed,
    mae_label,
    inpaint_label,
    prompt,
    seed,
    steps,
    diffusion_side,
    progress=gr.Progress(),
):
    """Yields the six panels (original, masked, Telea, MAE, MAE + visible, diffusion) and notes
    as each becomes ready, so the slow diffusion panel does not hold back the others."""
    notes: list[str] = []
    kind = kind or BOTTOM
    ratio = inputs.number(ratio, "The share of hidden patches", 0.0, 1.0, DEFAULT_RATIO, notes)
    mask_seed = inputs.seed(mask_seed, notes, name="The mask seed")
    seed = inputs.seed(seed, notes, name="The seed")
    steps = inputs.number(steps, "Steps", 1, MAX_STEPS, DEFAULT_STEPS, notes, integer=True)
    side_in = inputs.number(
        diffusion_side, "The size", MIN_DIFFUSION_SIDE, MAX_DIFFUSION_SIDE, DEFAULT_DIFFUSION_SIDE, notes
    )
    diffusion_side = int(side_in) // 8 * 8  # the VAE works on multiples of 8 pixels
    prompt = inputs.text(prompt, "prompt", MAX_PROMPT_CHARS, notes, required=False, cut=True)

    if isinstance(photo, inputs.Unreadable):
        raise InputError(photo.reason)
    background, layers = split_editor_value(photo)
    if background is None:
        raise InputError("Please give a photo first (upload one or pick an example).")
    kind = inputs.choice(kind, MASK_KINDS, "mask")
    # The MAE is the subject of this tab, and its patch grid shapes every mask: without it,
    # the visitor gets the loader's plain explanation. The diffusion panel is optional (below).
    progress(0.05, desc="loading the masked autoencoder")
    mae_entry = catalog.by_label("mae", mae_label)
    mae, _ = models.load_mae(mae_entry)
    prepared = prepare(background, layers, kind, ratio, mask_seed, mae_geometry(mae))
    notes = prepared.notes + notes

    square, hidden = prepared.square, prepared.hidden
    panels = [square, masked_view(square, hidden), telea_inpaint(square, hidden), None, None, None]
    yield *panels, inputs.notes_markdown(notes + ["*The MAE is guessing…*"])

    progress(0.2, desc="MAE: rebuilding the hidden patches")
    result = _mae_on_device(mae_entry, square, prepared.patch_mask)
    guess = to_image(result.reconstruction).resize(square.size, Image.Resampling.BICUBIC)
    panels[3], panels[4] = guess, paste_visible(square, guess, hidden)
    errors = f"MAE error on hidden patches {result.hidden_error:.3f}"
    if result.visible_error is not None:
        errors += f", on visible patches {result.visible_error:.3f} (never graded in training)"
    notes.append(errors + " — mean squared error in normalised pixels.")
    yield *panels, inputs.notes_markdown(notes + ["*The diffusion model is painting…*"])

    progress(0.5, desc="diffusion: loading the inpainting pipeline")
    inpaint_entry = _inpaint_entry(inpaint_label, notes)
    if inpaint_entry is not None:
        progress(0.6, desc=f"diffusion: {steps} step(s) at {diffusion_side} px")
        painted, diffusion_side = _inpaint_on_device(
            inpaint_entry, square, hidden, prompt=prompt, seed=seed, steps=steps, side=diffusion_side
        )
        panels[5] = painted.resize(square.size, Image.Resampling.BICUBIC)
        cpu_note = "" if ON_GPU else " (kept small and short because this runs on a CPU)"
        notes.append(
            f"Diffusion: **seed {seed}**, {steps} step(s), {diffusion_side} px{cpu_note}, "
            f"prompt: {('“' + prompt + '”') if prompt else 'none'}."
        )
    progress(1.0, desc="done")
    yield *panels, inputs.notes_markdown(notes)


@ui.user_errors
def on_mask_kind(kind: str):
    """Show the ratio and mask seed only for random patches, and the brush hint only for drawing."""
    return (
        gr.update(visible=kind == RANDOM),
        gr.update(visible=kind == RANDOM),
        gr.update(visible=kind == DRAWN),
    )


# --- layout -------------------------------------------------------------------------------------
def create_demo() -> None:
    # Over the API anything can arrive: bad values reach `on_run`, which clamps or explains them
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
        on_mask_kind, kind, [ratio, mask_seed, brush_hint], api_name="inpaint_mask_options",
        api_visibility="private", queue=False,
    )
    ui.bring_into_view(button.click, "inpaint-mae")
    links.linked(kind, "inpainting", "hide")
    run_inputs = [photo, kind, ratio, mask_seed, mae_model, inpaint_model, prompt, seed, steps, side]
    outputs = [original, masked, telea, mae_raw, mae_pasted, diffusion, notes]
    button.click(on_run, run_inputs, outputs, api_name="inpaint", **ui.heavy())
    if catalog.available("mae"):  # an example shows its answer: computed on its first click, then kept
        ui.answer_examples(examples, on_run, run_inputs, outputs)


if __name__ == "__main__":
    from gallery import server

    server.standalone(create_demo, TITLE)
