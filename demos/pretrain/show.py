"""What tab 6 shows, computed from a run: curves as tables for the plots, checkpoint samples,
next-byte bars, digit reconstructions, the scaling tables. Plain values in and out, no Gradio."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch
from PIL import Image

from demos.pretrain import training
from gallery.errors import InputError

SAMPLE_BYTES = 120  # bytes sampled after the prompt at each checkpoint
TOP_BYTES = 10  # bars in the next-byte chart
MAX_PROMPT_CHARS = 2000  # longer prompts are refused (only the last `context` bytes are read anyway)
SHOWN_DIGITS = 8  # held-out digits in each reconstruction strip
ZOOM = 4  # 16×16 pixels drawn as 64×64
MAX_CURVE_POINTS = 400  # a streamed curve is thinned to about this many points (the browser draws them all)
HIDE_CHOICES = {  # label -> how the patches are hidden
    "bottom half": "bottom",
    "top half": "top",
    "left half": "left",
    "right half": "right",
    "random patches": "random",
}


# --- curves ---------------------------------------------------------------------------------------
def thin(points: list, limit: int = MAX_CURVE_POINTS) -> list:
    """Every k-th point, always with the first and the last, so a long curve stays light."""
    if len(points) <= limit:
        return points
    stride = math.ceil(len(points) / limit)
    kept = points[::stride]
    return kept if kept[-1] is points[-1] else kept + [points[-1]]


def loss_curve(run: training.Run, series: str = "training loss") -> pd.DataFrame:
    """step, loss, series: the training loss at every (thinned) step, plus the held-out loss at
    each checkpoint as its own series."""
    rows = [(p.step, p.loss, series) for p in thin(run.points)]
    rows += [(c.step, c.held_out_loss, "held-out loss") for c in run.checkpoints]
    if not run.checkpoints:  # reserve the series' colour (see `scaling_tables`)
        rows.append((None, None, "held-out loss"))
    return _numeric(pd.DataFrame(rows, columns=["step", "loss", "series"]), "loss").astype({"step": "Int64"})


def _numeric(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    """Float columns (None -> NaN). A column holding a None is of object dtype, which gradio
    sends to vega as *nominal*: every value its own category, the axis a list of labels."""
    return frame.astype({column: float for column in columns})


def empty_curve() -> pd.DataFrame:
    return pd.DataFrame({"step": pd.Series(dtype=float), "loss": pd.Series(dtype=float),
                         "series": pd.Series(dtype=str)})


# --- text ----------------------------------------------------------------------------------------
def clean_prompt(prompt, context: int) -> tuple[list[int], str]:
    """A visitor's prompt -> (byte ids the model reads, a note when some were dropped)."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise InputError("Type a few words for the model to continue, e.g. “The return value of”.")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise InputError(
            f"That prompt is {len(prompt):,} characters long; this model reads only its last "
            f"{context} bytes. Please paste at most {MAX_PROMPT_CHARS:,} characters."
        )
    ids = training.encode(prompt)
    note = ""
    if len(ids) > context:
        note = (f"The model reads {context} bytes at a time, so only the end of your prompt was used: "
                f"“…{training.decode(ids[-context:])}”.")
        ids = ids[-context:]
    return ids, note


def visible_byte(byte: int) -> str:
    """'␣' for a space, '↵' newline, printable ASCII as itself, anything else as its hex code
    (a byte can be a piece of a multi-byte character such as é or an emoji)."""
    named = {32: "␣", 10: "↵", 9: "⇥", 13: "␍"}
    if byte in named:
        return named[byte]
    if 33 <= byte < 127:
        return chr(byte)
    return f"⟨{byte:02X}⟩"


def next_byte_bars(probs: torch.Tensor, top: int = TOP_BYTES) -> pd.DataFrame:
    values, ids = probs.topk(top)
    return pd.DataFrame({"next byte": [visible_byte(int(i)) for i in ids], "probability": [float(v) for v in values]})


def checkpoint_sample(run: training.Run, step: int, prompt_ids: list[int]) -> str:
    model = run.model_at(step)
    return training.sample_text(model, run.config.context, prompt_ids, SAMPLE_BYTES, seed=run.config.seed)


def samples_markdown(rows: list[tuple[int, float, str]], prompt: str) -> str:
    """rows of (step, held-out loss, sampled continuation) -> a readable list."""
    if not rows:
        return "*Samples appear here at steps 0, 50, 200, 500… while the model trains.*"
    lines = [f"Continuations of **“{escape(prompt[-60:])}”** sampled from the weights at each checkpoint:"]
    for step, loss, text in rows:
        shown = escape(text).replace("\n", " ↵ ")
        lines.append(f"- **step {step}** (held-out loss {loss:.2f}): {shown}")
    return "\n".join(lines)


def escape(text: str) -> str:
    """Markdown-safe: the sample is shown as typed, not rendered."""
    out = []
    for char in text:
        if char in "\\`*_{}[]()#+-.!|<>~$&":
            out.append("\\" + char if char not in "<>&" else {"<": "&lt;", ">": "&gt;", "&": "&amp;"}[char])
        elif char == "\ufffd" or (ord(char) < 32 and char not in "\n"):
            out.append("·")
        else:
            out.append(char)
    return "".join(out)


# --- pictures --------------------------------------------------------------------------------------
def hide_noise(choice: str, count: int, seed: int = 0) -> torch.Tensor:
    """(count, 16) masking noise for a hide choice; 'random' is seeded, so it repeats."""
    which = HIDE_CHOICES.get(choice, choice)
    if which == "random":
        return torch.rand(count, training.GRID * training.GRID, generator=torch.Generator().manual_seed(seed))
    if which not in training.HALVES:
        raise InputError(f"Choose what to hide: {', '.join(HIDE_CHOICES)}.")
    return training.half_noise(which, count)


def _zoom(array: np.ndarray) -> np.ndarray:
    return array.repeat(ZOOM, 0).repeat(ZOOM, 1)


def _masked_view(pictures: torch.Tensor, pixel_mask: torch.Tensor) -> np.ndarray:
    """(B,1,16,16) -> RGB strip where hidden pixels are grey: what the model was given."""
    gray = training.as_image(pictures)  # (16, 16B)
    hidden = training.as_image(1 - pixel_mask) == 0  # True where hidden
    rgb = np.stack([gray] * 3, -1)
    rgb[hidden] = (170, 190, 235)
    return rgb


def reconstruction_strip(model, pictures: torch.Tensor, noise: torch.Tensor) -> tuple[np.ndarray, float]:
    """Three rows (the pictures, what the model sees, its completion) as one RGB image, and the
    mean squared error on the hidden pixels."""
    completed, pixel_mask, error = training.reconstruct(model, pictures, noise)
    rows = [
        np.stack([training.as_image(pictures)] * 3, -1),
        _masked_view(pictures, pixel_mask),
        np.stack([training.as_image(completed)] * 3, -1),
    ]
    gap = np.full((2, rows[0].shape[1], 3), 255, np.uint8)
    strip = np.concatenate([rows[0], gap, rows[1], gap, rows[2]], 0)
    return _zoom(strip), error


def held_out_pictures(count: int = SHOWN_DIGITS) -> torch.Tensor:
    _, held = training.digit_split()
    return held[:count]


def checkpoint_gallery(run: training.Run, choice: str) -> list[tuple[np.ndarray, str]]:
    """One strip per checkpoint: held-out digits, hidden as chosen, completed by that step's weights."""
    pictures = held_out_pictures()
    noise = hide_noise(choice, len(pictures), seed=run.config.seed)
    items = []
    for checkpoint in run.checkpoints:
        strip, error = reconstruction_strip(run.model_at(checkpoint.step), pictures, noise)
        items.append((strip, f"step {checkpoint.step}: error on hidden pixels {error:.3f}"))
    return items


def drawing_to_digit(value) -> torch.Tensor:
    """Whatever a sketchpad, an upload or the API sends -> (1, 1, 16, 16) in [0, 1], ink = 1,
    prepared like the training digits: cropped to the ink, centred in a square, shrunk to 8×8
    (the digits' own resolution), then upscaled to 16×16."""
    image = _as_pil(value)
    if image is None:
        raise InputError("Draw a digit first (or upload a picture of one).")
    image.thumbnail((512, 512))  # a huge upload is shrunk first: the model sees 8×8 anyway
    rgba = image.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    gray = np.asarray(Image.alpha_composite(white, rgba).convert("L"), dtype=np.float32) / 255.0
    ink = 1.0 - gray  # dark strokes on a light page -> ink 1
    if ink.mean() > 0.5:  # light strokes on a dark page: already ink = bright
        ink = gray
    rows, cols = np.nonzero(ink > 0.2)
    if len(rows) == 0:
        raise InputError("The drawing is empty: draw a digit with the brush, large and dark.")
    top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    side = int(max(bottom - top, right - left) * 1.25) + 1  # the training digits have a margin
    square = np.zeros((side, side), np.float32)
    y0, x0 = (side - (bottom - top)) // 2, (side - (right - left)) // 2
    square[y0 : y0 + bottom - top, x0 : x0 + right - left] = ink[top:bottom, left:right]
    eight = Image.fromarray((square * 255).astype(np.uint8)).resize((8, 8), Image.Resampling.BOX)
    tensor = torch.tensor(np.asarray(eight, dtype=np.float32) / 255.0)[None, None]
    tensor = tensor / max(float(tensor.max()), 1e-6)  # strokes as bold as the dataset's
    return training.upscale(tensor)


def _as_pil(value) -> Image.Image | None:
    """An ImageEditor dict (composite, else background + layers), a PIL image, an array or a path."""
    if value is None:
        return None
    if isinstance(value, dict):
        composite = _as_pil(value.get("composite"))
        if composite is not None:
            return composite
        background = _as_pil(value.get("background"))
        layers = [layer for layer in (_as_pil(x) for x in value.get("layers") or []) if layer is not None]
        if background is None and not layers:
            return None
        base = (background or Image.new("RGBA", layers[0].size, (255, 255, 255, 255))).convert("RGBA")
        for layer in layers:
            base = Image.alpha_composite(base, layer.convert("RGBA").resize(base.size))
        return base
    if isinstance(value, Image.Image):
        return value
    if isinstance(value, np.ndarray):
        array = value
        if array.dtype != np.uint8:
            array = np.clip(array, 0, 255).astype(np.uint8)
        return Image.fromarray(array)
    if isinstance(value, str):
        try:
            with Image.open(value) as opened:
                opened.seek(0)
                return opened.copy()
        except Exception:
            raise InputError("That file is not a picture this page can read; send a PNG or JPEG.") from None
    raise InputError("Draw a digit first (or upload a picture of one).")


# --- scale -----------------------------------------------------------------------------------------
def scaling_tables(runs: list[training.Run], names: list[str] = ()) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """-> (per-size training loss vs estimated compute, log10 axes; final held-out loss vs
    parameters; final held-out loss vs compute).

    gradio's plot fixes its colour scale to the series present when it first draws, and later
    series would stay invisible; so each size in `names` not trained yet gets one row with no
    values (vega skips empty points: nothing is drawn for it, its colour is reserved)."""
    curve_rows, final_rows = [], []
    missing = [name for name in names if name not in {size_name(run) for run in runs if run.points}]
    curve_rows += [(None, None, name) for name in missing]
    for run in runs:
        n = run.non_embedding_parameters or _non_embedding(run)
        name = size_name(run)
        for point in thin(run.points, 150):
            if point.step == 0:
                continue  # no compute spent yet: log(0) has no place on a log axis
            flops = training.compute_estimate(n, point.examples)
            curve_rows.append((math.log10(flops), math.log10(point.loss), name))
        if run.checkpoints:
            total = training.compute_estimate(n, run.last_step * run.config.tokens_per_step)
            final_rows.append((math.log10(max(n, 1)), math.log10(max(total, 1.0)), run.checkpoints[-1].held_out_loss,
                               name))
    done = {row[3] for row in final_rows}
    final_rows += [(None, None, None, name) for name in names if name not in done]
    # plain column names: vega reads some punctuation in field names as paths
    curves = _numeric(pd.DataFrame(curve_rows, columns=["log10_flops", "log10_loss", "model"]),
                      "log10_flops", "log10_loss")
    finals = _numeric(pd.DataFrame(final_rows, columns=["log10_params", "log10_flops", "held_out_loss", "model"]),
                      "log10_params", "log10_flops", "held_out_loss")
    by_params = finals[["log10_params", "held_out_loss", "model"]]
    by_compute = finals[["log10_flops", "held_out_loss", "model"]]
    return curves, by_params, by_compute


def _non_embedding(run: training.Run) -> int:
    return training.count_parameters(training.build_model(run.config), without_embeddings=True)


def size_name(run: training.Run) -> str:
    return size_label(run.config.layers, run.config.width)


def size_label(layers: int, width: int) -> str:
    return f"{layers} layer{'s' if layers > 1 else ''}, {width} wide"


def _short(n: float) -> str:
    return f"{n / 1e6:.2f} M" if n >= 1e6 else f"{n / 1e3:.0f} k"
