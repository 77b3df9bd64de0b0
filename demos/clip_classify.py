"""CLIP, zero-shot and few-shot: a model that learned to match pictures with captions can sort
pictures into classes nobody trained it on (just type the class names), and can learn a new class
from a handful of example pictures (average their embeddings).

The maths mirrors open_clip: image and text embeddings are L2-normalised, their dot product is a
cosine similarity, `logit_scale.exp()` (100 for the trained checkpoints) turns it into a logit,
softmax over the labels gives the bars. A template ensemble is the mean of the normalised
per-template text embeddings, renormalised (`open_clip.build_zero_shot_classifier`).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Hashable, Sequence

import gradio as gr
import numpy as np
import pandas as pd
import torch
from PIL import Image

from gallery import catalog, models, ui
from gallery.device import gpu, sized
from gallery.errors import InputError
from gallery.images import to_rgb

TITLE = "CLIP: name your own classes (zero-shot), or show a few examples (few-shot)"
SUMMARY = (
    "**CLIP** learned from pictures and their web captions to put a picture and a sentence that fits it "
    "close together. So it sorts a picture into classes you just type (**zero-shot**), and learns new "
    "classes from a few example pictures (**few-shot**)."
)
# The tab's main controls and result, by elem_id (tests/test_first_screen_browser.py checks them).
FIRST_SCREEN = {"inputs": ["clip-picture", "clip-labels"], "button": "clip-classify", "result": "clip-softmax"}
ROLE = "clip"
API_PREFIX = "clip"  # every api_name of this tab starts with it (tests/test_contract.py)
ASSETS = Path(__file__).resolve().parent.parent / "assets"
IMAGES = ASSETS / "images"
FEWSHOT = ASSETS / "fewshot"


def _asset(folder: Path, name: str) -> str:
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

PROTOTYPES = "prototypes (mean embedding per class)"
LOGISTIC = "logistic regression (scikit-learn)"
FEW_SHOT_METHODS = [PROTOTYPES, LOGISTIC]
SHORT_METHOD = {PROTOTYPES: "prototypes", LOGISTIC: "logistic regression"}
LOGISTIC_C = 10.0  # inverse regularisation; unit-length features need a weak penalty to say much

MAX_LABELS = 50  # more bars than this cannot be read, and each new label costs text encodings
MAX_LABEL_TEXT = 20_000  # characters in the whole label box (a 5,000-character label still fits)
MAX_CLASSES = 3  # few-shot class slots in the UI (and the API)
MAX_SHOTS = 16  # example pictures per class
MAX_BATCH = 8  # zero-shot requests that may share one forward pass
SHOWN_CHARS = 40  # longer labels are shortened on the bars (never in what the model reads)

EXAMPLES = [  # image, labels, template: one click fills all three
    [_asset(IMAGES, "chelsea-the-cat.jpg"), "cat, dog, fox, stuffed toy", DEFAULT_TEMPLATE],
    [_asset(IMAGES, "coffee.jpg"), "coffee, tea, soup, beer", ENSEMBLE],
    [_asset(IMAGES, "rocket.jpg"), "rocket launch\nairplane\nfireworks\nlighthouse", DEFAULT_TEMPLATE],
    [_asset(IMAGES, "hubble-deep-field.jpg"), "cat, dog, car", DEFAULT_TEMPLATE],  # none of these fits
    [_asset(IMAGES, "camera.jpg"), "photographer, painter, soldier", "a black and white photo of a {}."],
    [_asset(IMAGES, "astronaut.jpg"), "astronaut, pilot, chef, firefighter", BARE],
]

# Few-shot: crops of three CC0 texture photos (see assets/README.md). Training crops come from the
# top of each photo, the test crop from the bottom: the test picture was never among the examples.
_SHOTS = {k: [str(p) for p in sorted(FEWSHOT.glob(f"{k}-train-*.jpg"))] for k in ("brick", "gravel", "grass")}
FEW_SHOT_EXAMPLES = [  # test image, then (name, files) per class slot
    # Made-up class names: words cannot help zero-shot, the examples can.
    [_asset(FEWSHOT, "brick-test.jpg"), "dax", _SHOTS["brick"], "wug", _SHOTS["gravel"], "blicket", _SHOTS["grass"]],
    [_asset(FEWSHOT, "gravel-test.jpg"), "dax", _SHOTS["brick"], "wug", _SHOTS["gravel"], "blicket", _SHOTS["grass"]],
    # The same pictures with real names: now zero-shot has something to go on.
    [_asset(FEWSHOT, "grass-test.jpg"), "brick wall", _SHOTS["brick"], "gravel", _SHOTS["gravel"], "grass", _SHOTS["grass"]],
]
FEW_SHOT_LABELS = [
    "Made-up names (dax, wug, blicket) · test: a brick crop",
    "Made-up names (dax, wug, blicket) · test: a gravel crop",
    "Real names (brick wall, gravel, grass) · test: a grass crop",
]

BIAS_EXAMPLES = [  # image, wording A, wording B, template: only the words of the labels differ
    [_asset(IMAGES, "astronaut.jpg"), "astronaut, pilot, flight attendant",
     "female astronaut, female pilot, flight attendant", DEFAULT_TEMPLATE],
    [_asset(IMAGES, "camera.jpg"), "photographer, tourist, soldier", "cameraman, tourist, soldier", DEFAULT_TEMPLATE],
    [_asset(IMAGES, "chelsea-the-cat.jpg"), "cat, fox, rabbit", "kitty, fox, rabbit", DEFAULT_TEMPLATE],
]


# --- a bounded, thread-safe cache ----------------------------------------------------------------
class EmbeddingCache:
    """A least-recently-used map with a size bound, safe to share between threads.

    Text embeddings: key (model id, template, label) -> (normalised embedding (D,), cut at 77
    tokens?). Image embeddings: key (model id, picture hash) -> normalised embedding (D,).
    Values are CPU float32 tensors, computed in the main process (on ZeroGPU the model runs in a
    forked worker, whose memory is thrown away after each call).
    """

    def __init__(self, max_items: int):
        self.max_items = max_items
        self._items: OrderedDict[Hashable, object] = OrderedDict()
        self._lock = threading.Lock()

    def get_many(self, keys: Sequence[Hashable]) -> dict:
        with self._lock:
            found = {}
            for key in keys:
                if key in self._items:
                    self._items.move_to_end(key)
                    found[key] = self._items[key]
            return found

    def put(self, key: Hashable, value: object) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


TEXT_CACHE = EmbeddingCache(max_items=20_000)  # 512 floats each: ~40 MB at most for ViT-B/32
IMAGE_CACHE = EmbeddingCache(max_items=1_000)  # few-shot examples re-sent on every click


# --- pictures in ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Unreadable:
    """What `picture_input` hands over for an upload that is no picture: the reason, in plain words."""

    reason: str


def picture_input(**kwargs) -> gr.Image:
    """gr.Image whose preprocessing does not fail on a file it cannot open (a text file named
    .png, a cut-off upload): gradio's own would stop with a generic error, and in a batch it would
    stop everyone's request. It hands over `Unreadable` instead, which the handler turns into a
    plain message. (Wrapping the instance's method, not subclassing: gradio writes a .pyi file
    next to any module that defines a component subclass.)"""
    image = gr.Image(type="filepath", image_mode=None, **kwargs)  # image_mode=None: to_rgb converts
    preprocess = image.preprocess

    def tolerant(payload):
        try:
            return preprocess(payload)
        except Exception as error:  # PIL's UnidentifiedImageError, OSError on a cut-off file...
            return Unreadable(f"That file could not be read as a picture ({type(error).__name__}). Try a PNG or JPEG.")

    image.preprocess = tolerant
    return image


def read_picture(image, what: str) -> Image.Image:
    """Any upload -> RGB picture (gallery.images.to_rgb), or InputError in plain words."""
    if isinstance(image, Unreadable):
        raise InputError(image.reason)
    return to_rgb(image, what=what)


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
        notes.append(f"Repeated {what} counted once: {', '.join(_short(r) for r in repeats)}.")
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
    raise InputError(f"Unknown template {_short(str(choice))!r}. Pick one from the list.")


def _short(label: str, n: int = SHOWN_CHARS) -> str:
    return label if len(label) <= n else label[: n - 1] + "…"


def shown_names(labels: Sequence[str]) -> list[str]:
    """Bar names: long labels shortened, and kept distinct (two long labels may start alike)."""
    names, used = [], set()
    for label in labels:
        name, k = _short(label), 2
        while name in used:
            name, k = f"{_short(label, SHOWN_CHARS - 4)} #{k}", k + 1
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


def fit_prototypes(features: torch.Tensor, targets: Sequence[int], n_classes: int) -> torch.Tensor:
    """(N, D) normalised example embeddings, class index per example -> (C, D) prototypes: the
    mean embedding of each class, renormalised, so a prototype is scored by cosine like a label."""
    targets = torch.as_tensor(targets)
    means = torch.stack([features[targets == c].mean(dim=0) for c in range(n_classes)])
    return means / means.norm(dim=-1, keepdim=True)


def predict_prototypes(query: torch.Tensor, prototypes: torch.Tensor, scale: float) -> torch.Tensor:
    """Nearest prototype by cosine, as probabilities: the same softmax(scale * cosine) as zero-shot,
    with class prototypes in place of text embeddings."""
    return zero_shot_probabilities(query, prototypes, scale)


def fit_predict_logistic(features: torch.Tensor, targets: Sequence[int], query: torch.Tensor) -> np.ndarray:
    """A small multinomial logistic regression on the example embeddings (scikit-learn) -> (Q, C)."""
    from sklearn.linear_model import LogisticRegression

    classifier = LogisticRegression(C=LOGISTIC_C, max_iter=1000)
    classifier.fit(features.numpy(), np.asarray(targets))  # classes_ = 0..C-1: every class has examples
    return classifier.predict_proba(np.atleast_2d(query.numpy()))


# --- zero-shot: one or many requests, one forward pass -----------------------------------------------
@dataclass
class Scores:
    labels: list[str]
    probabilities: np.ndarray  # (L,) softmax, sums to 1
    cosine: np.ndarray  # (L,) independent per-label scores
    notes: list[str] = field(default_factory=list)


@dataclass
class _Request:
    entry: catalog.Model
    image: Image.Image
    labels: list[str]
    templates: list[str]
    notes: list[str]


def _check(model_label, image, labels_text, template) -> _Request:
    entry = catalog.by_label(ROLE, model_label)
    templates = templates_for(template)
    labels, notes = parse_labels(labels_text)
    rgb = read_picture(image, what="a picture to classify")
    return _Request(entry, rgb, labels, templates, notes)


def _cut_note(table: dict, labels: Sequence[str], templates: Sequence[str]) -> list[str]:
    cut = [label for label in labels if any(table[(t, label)][1] for t in templates)]
    if not cut:
        return []
    return [
        "CLIP reads at most 77 tokens (about 50–60 words) per sentence; the rest of "
        + ", ".join(f"“{_short(c)}”" for c in cut)
        + " was not read. Labels that only differ after that point get the same score."
    ]


def _score(requests: list[_Request]) -> list[Scores]:
    """Requests for one model -> their scores, with all pictures and missing texts in one pass."""
    entry = requests[0].entry
    pairs = [(t, label) for r in requests for label in r.labels for t in r.templates]
    image_features, table = embed(entry, [r.image for r in requests], pairs)  # (B, D)
    scale = logit_scale(entry)
    results = []
    for r, image_feature in zip(requests, image_features):
        text = class_embeddings(table, r.labels, r.templates)  # (L, D)
        results.append(
            Scores(
                labels=r.labels,
                probabilities=zero_shot_probabilities(image_feature, text, scale).numpy(),
                cosine=cosine_scores(image_feature, text).numpy(),
                notes=r.notes + _cut_note(table, r.labels, r.templates),
            )
        )
    return results


def zero_shot_many(requests: Sequence[tuple]) -> list[Scores | InputError]:
    """[(model label, image, labels text, template), ...] -> Scores, or the InputError of a bad
    request, in order. Requests for the same model share one forward pass (gradio's batching)."""
    checked: list[_Request | InputError] = []
    for request in requests:
        try:
            checked.append(_check(*request))
        except InputError as error:
            checked.append(error)
    results: list[Scores | InputError] = list(checked)
    for entry in dict.fromkeys(r.entry for r in checked if isinstance(r, _Request)):
        index = [i for i, r in enumerate(checked) if isinstance(r, _Request) and r.entry == entry]
        for i, scores in zip(index, _score([checked[i] for i in index])):
            results[i] = scores
    return results


def zero_shot(model_label: str | None, image, labels_text: str, template: str = DEFAULT_TEMPLATE) -> Scores:
    """One picture, labels as typed -> softmax probabilities and cosine scores per label."""
    result = zero_shot_many([(model_label, image, labels_text, template)])[0]
    if isinstance(result, InputError):
        raise result
    return result


def compare_templates(model_label: str | None, image, labels_text: str) -> pd.DataFrame:
    """Softmax probability (%) of each label under every template choice: one row per label."""
    request = _check(model_label, image, labels_text, DEFAULT_TEMPLATE)
    pairs = [(t, label) for label in request.labels for t in TEMPLATES + [BARE]]
    image_features, table = embed(request.entry, [request.image], pairs)
    scale = logit_scale(request.entry)
    frame = pd.DataFrame({"label": shown_names(request.labels)})
    for choice in TEMPLATE_CHOICES:
        text = class_embeddings(table, request.labels, templates_for(choice))
        probabilities = zero_shot_probabilities(image_features[0], text, scale).numpy()
        frame["ensemble" if choice == ENSEMBLE else choice] = _percent(probabilities)
    return frame


# --- few-shot ------------------------------------------------------------------------------------
@dataclass
class FewShot:
    classes: list[str]
    zero_shot: np.ndarray  # (C,) from the class names alone
    few_shot: np.ndarray  # (C,) from the example pictures
    method: str
    notes: list[str]


def _read_classes(classes: Sequence[tuple]) -> tuple[list[str], list[list[Image.Image]]]:
    names, pictures = [], []
    for slot, (name, files) in enumerate(classes, start=1):
        name = " ".join(str(name or "").split())
        if isinstance(files, (str, Path, Image.Image, np.ndarray)):
            files = [files]  # one picture sent without a list (over the API)
        files = [f for f in (files or []) if f is not None]
        if not name and not files:
            continue  # an unused slot
        if not name:
            raise InputError(f"Class slot {slot} has example pictures but no name. Give it a name.")
        if not files:
            raise InputError(
                f"Class “{_short(name)}” has no example pictures. Add at least one, or clear its "
                "name to leave the class out."
            )
        if len(files) > MAX_SHOTS:
            raise InputError(f"Class “{_short(name)}” has {len(files)} pictures; please use at most {MAX_SHOTS}.")
        if name.casefold() in (n.casefold() for n in names):
            raise InputError(f"Two classes are both called “{_short(name)}”. Give each class its own name.")
        loaded = []
        for file in files:
            try:
                loaded.append(to_rgb(file, what=f"example pictures for “{_short(name)}”"))
            except InputError as error:
                shown = Path(file).name if isinstance(file, (str, Path)) else "a picture"
                raise InputError(f"Class “{_short(name)}”, {shown}: {error}") from None
        names.append(name)
        pictures.append(loaded)
    if len(names) < 2:
        raise InputError(
            "Few-shot needs at least two classes, each with a name and at least one example picture."
        )
    return names, pictures


def few_shot(
    model_label: str | None,
    test_image,
    classes: Sequence[tuple],
    method: str = PROTOTYPES,
    template: str = DEFAULT_TEMPLATE,
) -> FewShot:
    """A test picture and [(class name, example pictures), ...] -> zero-shot probabilities from the
    names and few-shot probabilities from the examples' CLIP image embeddings, side by side."""
    entry = catalog.by_label(ROLE, model_label)
    if method not in FEW_SHOT_METHODS:
        raise InputError(f"Unknown few-shot method {_short(str(method))!r}. Pick one from the list.")
    templates = templates_for(template)
    test = read_picture(test_image, what="a test picture")
    names, pictures = _read_classes(classes)

    examples = [p for group in pictures for p in group]
    targets = [c for c, group in enumerate(pictures) for _ in group]
    pairs = [(t, name) for name in names for t in templates]
    features, table = embed(entry, [test, *examples], pairs, cache_images=True)
    query, shots = features[0], features[1:]  # (D,), (N, D)
    scale = logit_scale(entry)

    zero = zero_shot_probabilities(query, class_embeddings(table, names, templates), scale).numpy()
    if method == PROTOTYPES:
        few = predict_prototypes(query, fit_prototypes(shots, targets, len(names)), scale).numpy()
    else:
        few = fit_predict_logistic(shots, targets, query)[0]
    notes = _cut_note(table, names, templates)
    accuracy = _leave_one_out(shots, targets, len(names), method, scale)
    if accuracy:
        notes.append(
            f"Leave-one-out check on your examples: {accuracy[0]} of {accuracy[1]} were put in the "
            "right class when left out of the training set."
        )
    return FewShot(names, zero, few, method, notes)


def _leave_one_out(shots: torch.Tensor, targets: list[int], n_classes: int, method: str, scale: float):
    """(right, tried): each example classified by a classifier fit on all the others. Examples whose
    class would be left empty are skipped. None when nothing can be tried."""
    right = tried = 0
    for i in range(len(targets)):
        rest = [j for j in range(len(targets)) if j != i]
        if targets[i] not in (targets[j] for j in rest):
            continue
        rest_targets = [targets[j] for j in rest]
        if len(set(rest_targets)) < n_classes:
            continue
        if method == PROTOTYPES:
            guess = predict_prototypes(shots[i], fit_prototypes(shots[rest], rest_targets, n_classes), scale)
        else:
            guess = torch.as_tensor(fit_predict_logistic(shots[rest], rest_targets, shots[i])[0])
        right += int(guess.argmax()) == targets[i]
        tried += 1
    return (right, tried) if tried else None


# --- bias probe ---------------------------------------------------------------------------------------
def bias_probe(model_label: str | None, image, labels_a: str, labels_b: str, template: str = DEFAULT_TEMPLATE):
    """The same picture scored with two wordings of the same labels (paired by position)
    -> (Scores A, Scores B)."""
    first = _check(model_label, image, labels_a, template)
    second = _check(model_label, image, labels_b, template)
    if len(first.labels) != len(second.labels):
        raise InputError(
            f"Wording A has {len(first.labels)} labels and wording B has {len(second.labels)}. Give both "
            "the same number, in the same order: label 1 of A is compared with label 1 of B."
        )
    pairs = [(t, label) for label in first.labels + second.labels for t in first.templates]
    image_features, table = embed(first.entry, [first.image], pairs)  # the picture once
    scale = logit_scale(first.entry)
    results = []
    for request in (first, second):
        text = class_embeddings(table, request.labels, request.templates)
        results.append(
            Scores(
                request.labels,
                zero_shot_probabilities(image_features[0], text, scale).numpy(),
                cosine_scores(image_features[0], text).numpy(),
                request.notes + _cut_note(table, request.labels, request.templates),
            )
        )
    return results[0], results[1]


# --- what the page shows --------------------------------------------------------------------------
def _percent(values: np.ndarray) -> np.ndarray:
    return np.round(100 * np.asarray(values, dtype=np.float64), 1)


def _bars(names: Sequence[str], values: Sequence[float], column: str) -> pd.DataFrame:
    return pd.DataFrame({"label": list(names), column: [float(v) for v in values]})


def _empty(column: str) -> pd.DataFrame:
    return pd.DataFrame({"label": [], column: []})  # an empty plot, for a request that failed


def _cosine_plot(names, cosine) -> pd.DataFrame:
    # Only the data: a new y_lim sent with it would make gradio draw the previous request
    # (see ui.bar_plot). The axis is fixed for real CLIP models, where matching captions score
    # about 0.3; the note gives the exact values.
    return _bars(names, cosine, "cosine")


def _zero_shot_note(scores: Scores) -> str:
    names = shown_names(scores.labels)
    top, best = int(np.argmax(scores.probabilities)), int(np.argmax(scores.cosine))
    lines = [
        f"**Softmax picks “{names[top]}”** with {100 * scores.probabilities[top]:.1f}% "
        f"(the bars sum to 100%). **Best cosine: “{names[best]}”**, {scores.cosine[best]:.3f} "
        f"(each label on its own; the lowest is {np.min(scores.cosine):.3f})."
    ]
    return "\n\n".join(lines + [f"ℹ️ {n}" for n in scores.notes])


def _zero_shot_outputs(scores: Scores) -> tuple:
    names = shown_names(scores.labels)
    softmax = {name: float(p) for name, p in zip(names, scores.probabilities)}  # gr.Label's format
    return softmax, _cosine_plot(names, scores.cosine), _zero_shot_note(scores)


@ui.user_errors
def zero_shot_handler(model_label, image, labels_text, template):
    """One request (the unbatched event)."""
    return _zero_shot_outputs(zero_shot(model_label, image, labels_text, template))


@ui.user_errors
def zero_shot_batch_handler(model_labels, images, labels_texts, templates):
    """gradio's batched event: lists in, one list per output back. A lone bad request gets a plain
    error; inside a shared batch a bad request gets its message in the note, so the other
    visitors still get their answers (gradio can only fail a batch as a whole)."""
    results = zero_shot_many(list(zip(model_labels, images, labels_texts, templates)))
    if len(results) == 1 and isinstance(results[0], InputError):
        raise results[0]
    outputs = [
        (None, _empty("cosine"), f"⚠️ {r}") if isinstance(r, InputError) else _zero_shot_outputs(r)
        for r in results
    ]
    return [list(column) for column in zip(*outputs)]


@ui.user_errors
def compare_templates_handler(model_label, image, labels_text):
    return compare_templates(model_label, image, labels_text)


@ui.user_errors
def few_shot_handler(model_label, test_image, method, template, *slots, progress=gr.Progress()):
    classes = [(slots[i], slots[i + 1]) for i in range(0, len(slots), 2)]
    progress(0.1, desc="Encoding the pictures with CLIP")
    result = few_shot(model_label, test_image, classes, method, template)
    names = shown_names(result.classes)
    table = pd.DataFrame(
        {
            "class": names,
            "zero-shot %": _percent(result.zero_shot),
            "few-shot %": _percent(result.few_shot),
            "difference (points)": _percent(result.few_shot - result.zero_shot),
        }
    )
    z, f = int(np.argmax(result.zero_shot)), int(np.argmax(result.few_shot))
    method = SHORT_METHOD[result.method]
    note = f"**Zero-shot (names only) picks “{names[z]}”; few-shot ({method}) picks “{names[f]}”.**"
    note = "\n\n".join([note] + [f"ℹ️ {n}" for n in result.notes])
    return (  # each chart highest first; the table beside lines the classes up
        _bars(names, result.zero_shot, "probability"),
        _bars(names, result.few_shot, "probability"),
        table,
        note,
    )


@ui.user_errors
def bias_probe_handler(model_label, image, labels_a, labels_b, template):
    a, b = bias_probe(model_label, image, labels_a, labels_b, template)
    names_a, names_b = shown_names(a.labels), shown_names(b.labels)
    shift = _percent(b.probabilities - a.probabilities)  # points, per position
    table = pd.DataFrame(
        {
            "wording A": names_a,
            "wording B": names_b,
            "A %": _percent(a.probabilities),
            "B %": _percent(b.probabilities),
            "shift (points)": shift,
        }
    )
    top_a, top_b = int(np.argmax(a.probabilities)), int(np.argmax(b.probabilities))
    biggest = int(np.argmax(np.abs(shift)))
    if top_a != top_b:
        verdict = (
            f"**The answer changed**: wording A picks “{names_a[top_a]}”, wording B picks "
            f"“{names_b[top_b]}” — same picture, only the words differ."
        )
    else:
        verdict = (
            f"**Same top answer** (position {top_a + 1}); the largest shift is "
            f"{shift[biggest]:+.1f} points at position {biggest + 1} "
            f"(“{names_a[biggest]}” → “{names_b[biggest]}”)."
        )
    note = "\n\n".join([verdict] + [f"ℹ️ A: {n}" for n in a.notes] + [f"ℹ️ B: {n}" for n in b.notes])
    return (
        _bars(names_a, a.probabilities, "probability"),
        _bars(names_b, b.probabilities, "probability"),
        table,
        note,
    )


# --- layout --------------------------------------------------------------------------------------
def _probability_plot(label: str, elem_id: str) -> gr.BarPlot:
    return ui.bar_plot(x="label", y="probability", y_lim=[0, 1], label=label, height=300, elem_id=elem_id)


def create_demo(batch: bool = True) -> None:
    """The tab. `batch=False` wires the unbatched zero-shot handler (for the benchmark)."""
    ui.model_banner(ROLE)
    ui.lesson("clip_classify", SUMMARY)
    template_info = "The sentence each label is put into before CLIP reads it."

    with gr.Tabs():
        with gr.Tab("Zero-shot", id="clip-zero-shot"):
            with gr.Row():
                image = picture_input(label="Picture", height=260, elem_id="clip-picture", value=EXAMPLES[0][0])
                with gr.Column():
                    labels = gr.Textbox(
                        label="Labels",
                        lines=2,
                        value=EXAMPLES[0][1],
                        placeholder="cat, dog, fox",
                        info="Any labels you like, separated by commas or one per line.",
                        elem_id="clip-labels",
                    )
                    template = gr.Dropdown(
                        TEMPLATE_CHOICES, value=DEFAULT_TEMPLATE, label="Template", info=template_info, elem_id="clip-template"
                    )
                    run = ui.model_button("Classify", ROLE, elem_id="clip-classify")
                    model = ui.model_dropdown(ROLE, label="CLIP model")
            probabilities = gr.Label(num_top_classes=10, label="Softmax: picks one (sums to 100%)",
                                     elem_id="clip-softmax", render=False)
            cosine = ui.bar_plot(
                x="label", y="cosine", y_lim=[0, 0.4], height=300, render=False,
                label="Cosine similarity: each label on its own", elem_id="clip-cosine-bars",
            )
            note = gr.Markdown(elem_id="clip-note", render=False)
            zero_examples = gr.Examples(
                EXAMPLES, inputs=[image, labels, template], label="Examples",
                example_labels=[f"{Path(path).stem.replace('-', ' ')}: {text.replace(chr(10), ', ')}"
                                for path, text, _ in EXAMPLES],
                cache_examples=False,
            )
            with gr.Row():
                probabilities.render()
                cosine.render()
            note.render()
            with gr.Accordion("Compare every template on this picture", open=False):
                compare = gr.Button("Compare templates")
                table = gr.Dataframe(label="Softmax probability (%) per template", wrap=True)

        with gr.Tab("Few-shot", id="clip-few-shot"):
            gr.Markdown(
                "Give each class a name and a few example pictures. Zero-shot uses only the names; "
                "few-shot uses only the pictures."
            )
            with gr.Row():
                test_image = picture_input(label="Test picture", height=260)
                with gr.Column():
                    method = gr.Radio(FEW_SHOT_METHODS, value=PROTOTYPES, label="Few-shot classifier")
                    few_template = gr.Dropdown(
                        TEMPLATE_CHOICES, value=DEFAULT_TEMPLATE, label="Template for zero-shot", info=template_info
                    )
                    learn = gr.Button("Learn from the examples", variant="primary")
            slots = []
            with gr.Row():
                for n in range(1, MAX_CLASSES + 1):
                    with gr.Column(min_width=200):
                        slots.append(gr.Textbox(label=f"Class {n} name", placeholder=["dax", "wug", "blicket"][n - 1]))
                        slots.append(
                            gr.File(file_count="multiple", file_types=["image"], label=f"Class {n} examples", height=150)
                        )
            with gr.Row():
                zero_plot = _probability_plot("Zero-shot (class names)", "clip-zero-shot-bars")
                few_plot = _probability_plot("Few-shot (example pictures)", "clip-few-shot-bars")
            few_table = gr.Dataframe(label="Side by side")
            few_note = gr.Markdown()
            gr.Examples(
                FEW_SHOT_EXAMPLES, inputs=[test_image, *slots], example_labels=FEW_SHOT_LABELS,
                cache_examples=False, label="Example sets (CC0 texture photos; test crops were never examples)",
            )

        with gr.Tab("Bias probe", id="clip-bias"):
            gr.Markdown(
                "Same picture, same classes, different words. If the bars move, the model's view of "
                "those words moved them — and every model built on this one inherits it."
            )
            with gr.Row():
                probe_image = picture_input(label="Picture", height=260)
                with gr.Column():
                    wording_a = gr.Textbox(label="Wording A", lines=2)
                    wording_b = gr.Textbox(label="Wording B (same classes, same order)", lines=2)
                    probe_template = gr.Dropdown(
                        TEMPLATE_CHOICES, value=DEFAULT_TEMPLATE, label="Template", elem_id="clip-bias-template"
                    )
                    probe = gr.Button("Compare wordings", variant="primary")
            with gr.Row():
                plot_a = _probability_plot("Wording A", "clip-bias-a-bars")
                plot_b = _probability_plot("Wording B", "clip-bias-b-bars")
            probe_table = gr.Dataframe(label="Shift per position")
            probe_note = gr.Markdown()
            gr.Examples(
                BIAS_EXAMPLES, inputs=[probe_image, wording_a, wording_b, probe_template], cache_examples=False
            )

    ui.bring_into_view(run.click, "clip-softmax")
    ui.linked(labels, "clip_classify", "labels")
    ui.linked(template, "clip_classify", "template")
    zero_inputs = [model, image, labels, template]
    if catalog.available(ROLE):  # an example shows its answer: computed on its first click, then kept
        ui.answer_examples(zero_examples, zero_shot_handler, zero_inputs, [probabilities, cosine, note], lane=ui.short())
    if batch:
        run.click(
            zero_shot_batch_handler, zero_inputs, [probabilities, cosine, note], api_name="clip_zero_shot",
            batch=True, max_batch_size=MAX_BATCH, **ui.short(),
        )
    else:
        run.click(zero_shot_handler, zero_inputs, [probabilities, cosine, note], api_name="clip_zero_shot", **ui.short())
    compare.click(compare_templates_handler, [model, image, labels], table, api_name="clip_compare_templates", **ui.heavy())
    learn.click(
        few_shot_handler, [model, test_image, method, few_template, *slots],
        [zero_plot, few_plot, few_table, few_note], api_name="clip_few_shot", **ui.heavy(),
    )
    probe.click(
        bias_probe_handler, [model, probe_image, wording_a, wording_b, probe_template],
        [plot_a, plot_b, probe_table, probe_note], api_name="clip_bias_probe", **ui.heavy(),
    )


if __name__ == "__main__":
    ui.standalone(create_demo, TITLE)
