"""Filling the gap for a visitor: the values checked, the photo cropped and its mask built on the
MAE's patch grid (`masks`), the three guessers run (`methods`; the MAE and diffusion on the GPU
where there is one), and the six panels yielded as each becomes ready, so the slow diffusion panel
does not hold back the others."""

from __future__ import annotations

import gradio as gr
import numpy as np
from PIL import Image

from demos.inpainting.masks import (
    BOTTOM, DRAWN, MASK_KINDS, RANDOM, masked_view, paste_visible, prepare, split_editor_value,
)
from demos.inpainting.methods import (
    MaeResult, diffusion_inpaint, mae_geometry, mae_reconstruct, telea_inpaint, to_image,
)
from gallery import catalog, inputs, models, ui
from gallery.device import device, gpu, gpu_seconds, sized
from gallery.errors import InputError, ModelUnavailable

DEFAULT_RATIO = 0.75  # what MAE hides during training

ON_GPU = device() == "cuda"
# On a CPU the 865M-parameter UNet takes seconds per step, so sizes stay small there.
MIN_DIFFUSION_SIDE = 128
DEFAULT_DIFFUSION_SIDE, MAX_DIFFUSION_SIDE, DEFAULT_STEPS = (512, 768, 4) if ON_GPU else (256, 512, 2)
MAX_STEPS = 4  # SD-Turbo was distilled for 1-4 steps; more do not help it
MAX_PROMPT_CHARS = 300


GPU_MAE_S = 0.2
GPU_STEP_S = 0.15


@gpu(duration=gpu_seconds(GPU_MAE_S))
def _mae_on_device(entry: catalog.Model, image: Image.Image, patch_mask: np.ndarray) -> MaeResult:
    mae, processor = models.load_mae(entry)
    return mae_reconstruct(mae, processor, image, patch_mask)


@gpu(duration=sized(lambda entry, image, hidden, **kw: 0.5 + GPU_STEP_S * kw["steps"] * (kw["side"] / 512) ** 2))
def _inpaint_on_device(entry: catalog.Model, image: Image.Image, hidden: np.ndarray, *, side: int,
                       **settings) -> tuple[Image.Image, int]:
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
