"""Turn whatever a visitor uploads into a plain RGB picture the models can read.

Phones and the web give us RGBA, CMYK JPEGs, 16-bit PNGs, palette images with transparency,
animated GIFs and the odd 1x1 or 10000x200 file; every tab goes through `to_rgb`.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

from gallery.errors import InputError

MAX_PIXELS = 80_000_000  # beyond this we refuse rather than risk the server's memory
WORKING_SIDE = 1024  # larger pictures are shrunk first: every model here works far below this
MIN_SIDE = 8


def _flatten(image: Image.Image) -> Image.Image:
    """Any mode -> RGB; transparent areas become white (what a viewer shows)."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16/32-bit grey: scale to 8 bit
        values = np.asarray(image, dtype=np.float64)
        top = values.max() if values.size and values.max() > 0 else 1.0
        return Image.fromarray((values / top * 255).astype(np.uint8), "L").convert("RGB")
    if image.mode == "F":
        values = np.nan_to_num(np.asarray(image, dtype=np.float64))
        lo, hi = values.min(), values.max()
        scaled = (values - lo) / (hi - lo) if hi > lo else np.zeros_like(values)
        return Image.fromarray((scaled * 255).astype(np.uint8), "L").convert("RGB")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa"):
        image = image.convert("RGBA")
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, image).convert("RGB")
    return image.convert("RGB")  # RGB, L, 1, CMYK, YCbCr, LAB, HSV, P


def to_rgb(image, *, max_side: int = WORKING_SIDE, what: str = "an image") -> Image.Image:
    """PIL image / numpy array / file path -> RGB PIL image no larger than `max_side` per side.

    Raises InputError with a plain message for no image, an unreadable file, or an absurd size.
    """
    if image is None:
        raise InputError(f"Please give {what} first (upload one or pick an example).")
    if isinstance(image, np.ndarray):
        array = image
        if array.dtype != np.uint8:
            array = np.clip(np.nan_to_num(array.astype(np.float64)), 0, 255).astype(np.uint8)
        image = Image.fromarray(array)
    elif not isinstance(image, Image.Image):
        try:
            image = Image.open(image)
        except Exception as error:  # not an image, truncated, unknown format
            raise InputError(
                f"That file could not be read as a picture ({type(error).__name__}). "
                "Try a PNG or JPEG."
            ) from None
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise InputError(
            f"That picture is {width}×{height} pixels — too large for this demo. "
            f"Please use one under {MAX_PIXELS // 1_000_000} megapixels."
        )
    if min(width, height) < 1:
        raise InputError("That picture is empty (0 pixels wide or high).")
    try:
        image.seek(0)  # animated GIF / multi-page TIFF: the first frame
    except (EOFError, AttributeError, ValueError):
        pass
    try:
        image = ImageOps.exif_transpose(image) or image  # phone photos stored sideways
        image.load()
        rgb = _flatten(image)
    except InputError:
        raise
    except Exception as error:
        raise InputError(
            f"That picture could not be decoded ({type(error).__name__}); it may be damaged."
        ) from None
    if max(rgb.size) > max_side:
        rgb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    if min(rgb.size) < MIN_SIDE:  # a 1x1 image: blow it up so models have something to read
        scale = MIN_SIDE / min(rgb.size)
        rgb = rgb.resize(
            (max(MIN_SIDE, round(rgb.width * scale)), max(MIN_SIDE, round(rgb.height * scale))),
            Image.Resampling.NEAREST,
        )
    return rgb


def center_square(image: Image.Image, side: int) -> Image.Image:
    """Centre-crop to a square and resize to side×side (what square-input models expect)."""
    return ImageOps.fit(image, (side, side), Image.Resampling.BICUBIC)
