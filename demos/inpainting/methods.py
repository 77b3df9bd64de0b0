"""The three guessers of the inpainting tab, each given the same square picture and the same hidden
pixels (1 = hidden, 0 = visible): OpenCV's Telea fill, which learned nothing; a masked autoencoder
(ViT-MAE), trained on exactly this game; and a diffusion inpainter (SD-Turbo). Plain values in and
out, no Gradio."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from demos.inpainting.masks import GREY
from gallery.device import device, dtype

TELEA_RADIUS = 3  # pixels around each hidden pixel that Telea's method looks at


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
