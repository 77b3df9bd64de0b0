"""CLIP's side of the tab: pictures and typed labels in, L2-normalised embeddings and scores out.
One forward pass serves a whole batch of pictures and every label sentence not cached yet; text
embeddings are kept in a bounded cache (labels repeat across visitors).

The maths mirrors open_clip: image and text embeddings are L2-normalised, their dot product is a
cosine similarity, `logit_scale.exp()` (100 for the trained checkpoints) turns it into a logit,
softmax over the labels gives the bars. A template ensemble is the mean of the normalised
per-template text embeddings, renormalised (`open_clip.build_zero_shot_classifier`)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import gradio as gr
import numpy as np
import pandas as pd
import torch
from PIL import Image

from gallery import catalog, inputs, models, ui
from gallery.device import gpu, sized
from gallery.errors import InputError
from gallery.lru import LRU

ROLE = "clip"
IMAGES = ui.ASSETS / "images"


def asset(folder: Path, name: str) -> str:
    return str(folder / name)  # gradio's examples want plain strings, not Path objects


# Prompt templates; "{}" is replaced by the label. The five sentences are from the set OpenAI
# used for ImageNet; the ensemble averages their text embeddings (the bare label stays out).
TEMPLATES = [
    "a photo of a {}.",
    "a drawing of a {}.",
    "a close-up photo of a {}.",
    "a blurry photo of a {}.",
    "a black and white photo of a {}.",
]
BARE = "{}"
ENSEMBLE = "ensemble: average of the 5 sentences above"
TEMPLATE_CHOICES = TEMPLATES + [BARE, ENSEMBLE]
DEFAULT_TEMPLATE = TEMPLATES[0]

MAX_LABELS = 50  # more bars than this cannot be read, and each new label costs text encodings
MAX_LABEL_TEXT = 20_000  # characters in the whole label box (a 5,000-character label still fits)
SHOWN_CHARS = 40  # longer labels are shortened on the bars (never in what the model reads)


# --- caches (gallery.lru) --------------------------------------------------------------------------
# Text embeddings: key (model id, template, label) -> (normalised embedding (D,), cut at 77 tokens?).
# Image embeddings: key (model id, picture hash) -> normalised embedding (D,). Values are CPU float32
# tensors, computed in the main process (on ZeroGPU the model runs in a forked worker, whose memory
# is thrown away after each call).
TEXT_CACHE = LRU(max_items=20_000)  # 512 floats each: ~40 MB at most for ViT-B/32
IMAGE_CACHE = LRU(max_items=1_000)  # few-shot examples re-sent on every click


# --- parsing and checking what people type --------------------------------------------------------
def parse_labels(text: str | None, what: str = "labels") -> tuple[list[str], list[str]]:
    """'cat, dog' or one label per line -> (labels, notes). Blank entries are dropped, repeats
    (ignoring case and spacing) removed with a note; no labels or too many raise InputError."""
    if text is None:
        text = ""
    if not isinstance(text, str):
        raise InputError(f"The {what} must be text, e.g. 'cat, dog'.")
    if len(text) > MAX_LABEL_TEXT:
        raise InputError(f"The {what} are {len(text):,} characters long; please keep them under {MAX_LABEL_TEXT:,}.")
    parts = re.split(r"[,\n\r]", text)  # commas and line breaks both separate labels
    labels, seen, repeats = [], set(), []
    for part in parts:
        label = " ".join(part.split())  # trim and collapse runs of spaces, tabs...
        if not label:
            continue
        key = label.casefold()
        if key in seen:
            repeats.append(label)
            continue
        seen.add(key)
        labels.append(label)
    if not labels:
        raise InputError(f"Type at least two {what}, separated by commas or one per line, e.g. 'cat, dog'.")
    if len(labels) > MAX_LABELS:
        raise InputError(
            f"You gave {len(labels)} {what}; this demo takes at most {MAX_LABELS} (more bars can't be "
            "read, and each new label costs the model some work). Keep the ones you care about."
        )
    notes = []
    if repeats:
        notes.append(f"Repeated {what} counted once: {', '.join(shortened(r) for r in repeats)}.")
    if len(labels) == 1:
        notes.append(
            "With a single label, softmax always gives it 100% — it has nothing to compare with. "
            "The cosine score still says how well it fits; add a second label to compare."
        )
    return labels, notes


def templates_for(choice: str | None) -> list[str]:
    """A template choice (one of TEMPLATE_CHOICES) -> the sentences whose embeddings are averaged."""
    if choice is None or choice == "":
        choice = DEFAULT_TEMPLATE
    if choice == ENSEMBLE:
        return list(TEMPLATES)
    if choice in TEMPLATE_CHOICES:
        return [choice]
    raise InputError(f"Unknown template {shortened(str(choice))!r}. Pick one from the list.")


def shortened(label: str, n: int = SHOWN_CHARS) -> str:
    return label if len(label) <= n else label[: n - 1] + "…"


def shown_names(labels: Sequence[str]) -> list[str]:
    """Bar names: long labels shortened, and kept distinct (two long labels may start alike)."""
    names, used = [], set()
    for label in labels:
        name, k = shortened(label), 2
        while name in used:
            name, k = f"{shortened(label, SHOWN_CHARS - 4)} #{k}", k + 1
        used.add(name)
        names.append(name)
    return names


# --- the model: one forward pass for pictures and the texts not cached yet -------------------------
# GPU time per picture and per 16 label sentences through ViT-B/32 (estimate).
GPU_ITEM_S = 0.02


@gpu(duration=sized(lambda entry, pixels, tokens: GPU_ITEM_S * (len(pixels if pixels is not None else [])
                                                              + len(tokens if tokens is not None else []) / 16)))
def _encode(entry: catalog.Model, pixels: torch.Tensor | None, tokens: torch.Tensor | None):
    """pixels (B, 3, H, W), token ids (N, 77) -> normalised features, float32 on the CPU:
    (B, D) and (N, D), and exp(logit_scale). The only function that touches the model's weights
    (on ZeroGPU it runs in a worker that holds the GPU; the weights are not readable outside)."""
    clip, _, _ = models.load_clip(entry)
    weight = next(clip.parameters())
    with torch.inference_mode():
        images = texts = None
        if pixels is not None and len(pixels):
            images = clip.encode_image(pixels.to(weight.device, weight.dtype), normalize=True).float().cpu()
        if tokens is not None and len(tokens):
            texts = clip.encode_text(tokens.to(weight.device), normalize=True).float().cpu()
        scale = float(clip.logit_scale.exp())
    return images, texts, scale


_SCALES: dict[str, float] = {}  # model id -> exp(logit_scale), noted on every forward pass


def logit_scale(entry: catalog.Model) -> float:
    """CLIP's learned temperature, exp(logit_scale): 100 for the trained checkpoints."""
    if entry.model_id not in _SCALES:
        models.load_clip(entry)  # load in this process, then ask the model
        _SCALES[entry.model_id] = _encode(entry, None, None)[2]
    return _SCALES[entry.model_id]


def _image_key(entry: catalog.Model, image: Image.Image) -> tuple:
    digest = hashlib.sha1(image.tobytes()).hexdigest()
    return (entry.model_id, f"{image.width}x{image.height}", digest)


def embed(
    entry: catalog.Model,
    images: Sequence[Image.Image],
    texts: Sequence[tuple[str, str]],
    cache_images: bool = False,
) -> tuple[torch.Tensor, dict]:
    """RGB pictures and (template, label) pairs -> ((B, D) image features, {pair: (feature, cut)}).

    Text features come from TEXT_CACHE when there; only the missing ones are tokenised and
    encoded, in the same forward call as the pictures. `cut` says the sentence filled CLIP's
    77-token window (the rest was not read). With `cache_images`, pictures are cached by content
    too (few-shot examples come back with every click).
    """
    _, preprocess, tokenizer = models.load_clip(entry)  # load here, not in the GPU worker
    keys = [(entry.model_id, template, label) for template, label in dict.fromkeys(texts)]
    table = TEXT_CACHE.get_many(keys)
    missing = [k for k in keys if k not in table]
    image_keys = [_image_key(entry, im) if cache_images else None for im in images]
    known = IMAGE_CACHE.get_many([k for k in image_keys if k is not None])
    to_encode = [i for i, k in enumerate(image_keys) if k not in known]

    pixels = torch.stack([preprocess(images[i]) for i in to_encode]) if to_encode else None  # (B', 3, H, W)
    tokens = tokenizer([template.format(label) for _, template, label in missing]) if missing else None  # (N, 77)
    new_images, new_texts = None, None
    if to_encode or missing:
        new_images, new_texts, _SCALES[entry.model_id] = _encode(entry, pixels, tokens)

    for n, key in enumerate(missing):
        # Padding is 0: a non-zero last position means the sentence filled all 77 tokens.
        table[key] = (new_texts[n].clone(), bool(tokens[n, -1] != 0))  # clone: don't pin the batch
        TEXT_CACHE.put(key, table[key])
    fresh = {i: new_images[n].clone() for n, i in enumerate(to_encode)}
    for i, feature in fresh.items():
        if image_keys[i] is not None:
            IMAGE_CACHE.put(image_keys[i], feature)
    features = [fresh[i] if i in fresh else known[image_keys[i]] for i in range(len(images))]
    image_features = torch.stack(features) if features else torch.empty(0)
    return image_features, {(t, label): v for (_, t, label), v in table.items()}


def class_embeddings(table: dict, labels: Sequence[str], templates: Sequence[str]) -> torch.Tensor:
    """(L, D): per label, the mean of its normalised per-template embeddings, renormalised
    (with one template that is just the template's embedding)."""
    per_template = torch.stack([torch.stack([table[(t, label)][0] for t in templates]) for label in labels])
    mean = per_template.mean(dim=1)  # (L, T, D) -> (L, D)
    return mean / mean.norm(dim=-1, keepdim=True)


def text_embeddings(entry: catalog.Model, labels: Sequence[str], templates: Sequence[str]) -> torch.Tensor:
    """(L, D) class embeddings for labels under templates, through the cache."""
    _, table = embed(entry, [], [(t, label) for label in labels for t in templates])
    return class_embeddings(table, labels, templates)


# --- the scores (pure maths, no model) ----------------------------------------------------------------
def cosine_scores(image_features: torch.Tensor, text_features: torch.Tensor) -> torch.Tensor:
    """(D,) or (B, D) and (L, D), all unit length -> cosine similarity per label. Each label is
    scored on its own: the numbers do not sum to one, so "none of these fits" shows as all low."""
    return image_features @ text_features.T


def zero_shot_probabilities(image_features: torch.Tensor, text_features: torch.Tensor, scale: float) -> torch.Tensor:
    """Softmax over the labels of scale * cosine (open_clip: 100 * image @ text.T). Sums to one:
    it must pick among the labels given, even when none fits."""
    return (scale * cosine_scores(image_features, text_features)).softmax(dim=-1)


@dataclass
class Scores:
    labels: list[str]
    probabilities: np.ndarray  # (L,) softmax, sums to 1
    cosine: np.ndarray  # (L,) independent per-label scores
    notes: list[str] = field(default_factory=list)


@dataclass
class Query:
    """One zero-shot question, checked: a picture and the labels (in their templates) to score it against."""

    entry: catalog.Model
    image: Image.Image
    labels: list[str]
    templates: list[str]
    notes: list[str]


def check_query(model_label, image, labels_text, template) -> Query:
    entry = catalog.by_label(ROLE, model_label)
    templates = templates_for(template)
    labels, notes = parse_labels(labels_text)
    rgb = inputs.picture(image, what="a picture to classify")
    return Query(entry, rgb, labels, templates, notes)


def cut_note(table: dict, labels: Sequence[str], templates: Sequence[str]) -> list[str]:
    cut = [label for label in labels if any(table[(t, label)][1] for t in templates)]
    if not cut:
        return []
    return [
        "CLIP reads at most 77 tokens (about 50–60 words) per sentence; the rest of "
        + ", ".join(f"“{shortened(c)}”" for c in cut)
        + " was not read. Labels that only differ after that point get the same score."
    ]


def percent(values: np.ndarray) -> np.ndarray:
    return np.round(100 * np.asarray(values, dtype=np.float64), 1)


def bars_frame(names: Sequence[str], values: Sequence[float], column: str) -> pd.DataFrame:
    return pd.DataFrame({"label": list(names), column: [float(v) for v in values]})


def empty_frame(column: str) -> pd.DataFrame:
    return pd.DataFrame({"label": [], column: []})  # an empty plot, for a request that failed


def probability_plot(label: str, elem_id: str) -> gr.BarPlot:
    """A chart of softmax probabilities (0 to 1) per label, highest first."""
    return ui.bar_plot(x="label", y="probability", y_lim=[0, 1], label=label, height=300, elem_id=elem_id)
