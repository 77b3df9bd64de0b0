"""The puzzle of the inpainting tab: which pixels are hidden. Every mask (a preset, random
patches, or the visitor's brush strokes) is built on the MAE's patch grid and upsampled to the
pixels every method gets, so the comparison is fair (1 = hidden, 0 = visible throughout)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from gallery import inputs
from gallery.errors import InputError
from gallery.images import center_square, to_rgb

BOTTOM, TOP, CENTRE, RANDOM, DRAWN = (
    "Bottom half",
    "Top half",
    "Centre box",
    "Random patches",
    "Draw it yourself",
)
MASK_KINDS = [BOTTOM, TOP, CENTRE, RANDOM, DRAWN]
PATCH_RULE = 0.5  # a patch is hidden when at least this share of its pixels is hidden
PANEL_TARGET = 448  # panels are shown at the multiple of the MAE's input size nearest to this
GREY = 128  # what a hidden pixel looks like in the "masked input" panel


# --- masks --------------------------------------------------------------------------------------
def preset_mask(kind: str, grid: int) -> np.ndarray:
    """A preset region on the MAE's patch grid -> (grid, grid) bool, True = hidden.

    Presets are laid out in whole patches so that no patch is half in, half out:
    bottom/top half = the bottom/top grid//2 rows (exactly half the picture on an even grid);
    centre box = a centred square of about half the side (8×8 of 14×14 patches, 33% of the area;
    2×2 of 4×4 for the test model).
    """
    mask = np.zeros((grid, grid), dtype=bool)
    if kind == BOTTOM:
        mask[grid - grid // 2 :, :] = True
    elif kind == TOP:
        mask[: grid // 2, :] = True
    elif kind == CENTRE:
        box = grid // 2 + (grid - grid // 2) % 2  # same parity as the grid, so it sits centred
        lo = (grid - box) // 2
        mask[lo : lo + box, lo : lo + box] = True
    else:
        raise InputError(f"Unknown mask {str(kind)[:40]!r}. Pick one of: {', '.join(MASK_KINDS)}.")
    return mask


def random_patch_mask(grid: int, ratio: float, seed: int) -> np.ndarray:
    """MAE-style mask: round(ratio·grid²) patches chosen at random (seeded) -> (grid, grid) bool."""
    total = grid * grid
    count = int(round(float(np.clip(ratio, 0.0, 1.0)) * total))
    chosen = np.random.default_rng(seed).choice(total, size=count, replace=False)
    mask = np.zeros(total, dtype=bool)
    mask[chosen] = True
    return mask.reshape(grid, grid)  # row-major, the order of the MAE's patch sequence


def drawn_mask(layers: list | None, image_size: tuple[int, int]) -> np.ndarray | None:
    """The strokes of an ImageMask -> (H, W) float coverage in [0, 1] at `image_size` (W, H),
    or None when nothing was painted. A stroke is wherever a layer's alpha is above 0."""
    coverage = None
    for layer in layers or []:  # ImageMask has one layer; the API may send none
        if layer is None:
            continue
        painted = np.asarray(_as_pil(layer).convert("RGBA"))[..., 3] > 0  # (h, w)
        if not painted.any():
            continue
        # Resize the 0/255 strokes like the photo was resized; bilinear keeps partial coverage.
        strokes = Image.fromarray(painted.astype(np.uint8) * 255, "L")
        layer_cov = np.asarray(strokes.resize(image_size, Image.Resampling.BILINEAR), np.float32) / 255
        coverage = layer_cov if coverage is None else np.maximum(coverage, layer_cov)
    return coverage


def to_patch_grid(mask: np.ndarray, grid: int) -> np.ndarray:
    """(S, S) pixel mask (bool or coverage in [0, 1]) -> (grid, grid) bool.

    The rule: a patch is hidden when at least half of its pixels are hidden. S must be a
    multiple of `grid` (the panel side is chosen so).
    """
    side = mask.shape[0]
    if mask.shape != (side, side) or side % grid:
        raise ValueError(f"mask {mask.shape} does not tile into a {grid}×{grid} grid")
    cell = side // grid
    coverage = mask.astype(np.float32).reshape(grid, cell, grid, cell).mean(axis=(1, 3))
    return coverage >= PATCH_RULE


def patch_to_pixels(patch_mask: np.ndarray, side: int) -> np.ndarray:
    """(grid, grid) bool -> (side, side) bool: each patch becomes a side/grid square."""
    cell = side // patch_mask.shape[0]
    return np.kron(patch_mask, np.ones((cell, cell), dtype=bool)).astype(bool)


def masked_view(image: Image.Image, hidden: np.ndarray) -> Image.Image:
    """What every method is given: the picture with the hidden pixels greyed out."""
    pixels = np.array(image.convert("RGB"))
    pixels[hidden] = GREY
    return Image.fromarray(pixels)


def paste_visible(original: Image.Image, guess: Image.Image, hidden: np.ndarray) -> Image.Image:
    """Keep the original where it was visible and the guess only where it was hidden."""
    merged = np.array(original.convert("RGB"))
    guess_px = np.asarray(guess.convert("RGB").resize(original.size, Image.Resampling.BICUBIC))
    merged[hidden] = guess_px[hidden]
    return Image.fromarray(merged)


# --- the photo and the mask every method shares -------------------------------------------------
def _as_pil(image) -> Image.Image:
    if isinstance(image, Image.Image):
        return image
    if isinstance(image, np.ndarray):
        return Image.fromarray(image)
    return Image.open(image)


def split_editor_value(value) -> tuple[object, list]:
    """An ImageMask value {"background", "layers", "composite"} -> (photo, stroke layers).
    A plain image (path, PIL, array), as an API caller may send, counts as a photo without strokes."""
    if isinstance(value, dict):
        return value.get("background"), list(value.get("layers") or [])
    return value, []


def panel_side(mae_side: int) -> int:
    """Panels are a whole multiple of the MAE's input so patches map to whole pixel squares."""
    return mae_side * max(1, round(PANEL_TARGET / mae_side))


@dataclass
class Prepared:
    square: Image.Image  # (side, side) RGB: the photo every panel uses
    patch_mask: np.ndarray  # (grid, grid) bool, 1 = hidden
    hidden: np.ndarray  # (side, side) bool: patch_mask upsampled, what every method gets
    notes: list[str]


def prepare(
    photo, layers: list, kind: str, ratio: float, mask_seed: int, geometry: tuple[int, int]
) -> Prepared:
    """Photo + mask choice -> the square picture and the patch mask every method shares."""
    kind = inputs.choice(kind, MASK_KINDS, "mask")
    notes: list[str] = []
    rgb = to_rgb(photo, what="a photo")
    raw_size = _size_of(photo) or rgb.size
    mae_side, patch = geometry
    grid = mae_side // patch
    side = panel_side(mae_side)
    square = center_square(rgb, side)
    if min(raw_size) < 8:
        notes.append(f"The picture is only {raw_size[0]}×{raw_size[1]} pixels; it was blown up.")
    if abs(rgb.width / rgb.height - 1) > 0.01:
        notes.append(
            f"The photo ({raw_size[0]}×{raw_size[1]}) was centre-cropped to a square: the MAE reads "
            "square pictures, so every panel uses the same square."
        )
    if kind == RANDOM:
        patch_mask = random_patch_mask(grid, ratio, mask_seed)
        if not patch_mask.any():
            raise InputError("Nothing is hidden: raise the share of patches to hide above 0.")
    elif kind == DRAWN:
        coverage = drawn_mask(layers, rgb.size)
        if coverage is None:
            raise InputError(
                "Nothing is painted yet: brush over the part of the photo to hide, or pick a "
                "preset mask."
            )
        # Crop the strokes exactly as the photo was cropped (same ImageOps.fit geometry).
        strokes = Image.fromarray((coverage * 255).astype(np.uint8), "L")
        fitted = np.asarray(center_square(strokes, side), dtype=np.float32) / 255
        patch_mask = to_patch_grid(fitted, grid)
        notes.append(
            "Your strokes were snapped to the patch grid: a patch is hidden when the strokes "
            "cover at least half of it."
        )
        if not patch_mask.any():
            raise InputError(
                f"Your strokes cover less than half of every {patch}×{patch}-pixel patch the "
                "model sees, so nothing would be hidden. Paint a larger area."
            )
    else:
        patch_mask = preset_mask(kind, grid)
        if layers and any(drawn_mask([layer], rgb.size) is not None for layer in layers):
            notes.append(f"Your brush strokes are ignored: choose “{DRAWN}” to use them.")
    count = int(patch_mask.sum())
    notes.insert(
        0,
        f"Hidden: **{count} of {grid * grid} patches ({count / (grid * grid):.0%})** of "
        f"{patch}×{patch} pixels at the MAE's {mae_side} px; every method gets exactly these "
        "patches (grey in the masked input).",
    )
    if patch_mask.all():
        notes.append(
            "Everything is hidden, so there is nothing to go on: the MAE guesses from its position "
            "codes alone, Telea has no edge to copy from (flat grey), and the diffusion model "
            "paints a new picture from scratch."
        )
    return Prepared(square, patch_mask, patch_to_pixels(patch_mask, side), notes)


def _size_of(photo) -> tuple[int, int] | None:
    try:
        return _as_pil(photo).size if photo is not None else None
    except Exception:  # unreadable: to_rgb says so in plain words
        return None
