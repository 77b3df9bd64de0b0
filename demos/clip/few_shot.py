"""CLIP few-shot: learn a new class from a handful of example pictures. The examples' image
embeddings make the classifier (their mean per class, "prototypes", or a logistic regression);
beside it, zero-shot from the class names alone, on the same test picture."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import gradio as gr
import numpy as np
import pandas as pd
import torch
from PIL import Image

from demos.clip.model import (
    DEFAULT_TEMPLATE, ROLE, TEMPLATE_CHOICES, asset, bars_frame, class_embeddings, cut_note, embed, logit_scale,
    percent, probability_plot, shortened, shown_names, templates_for,
    zero_shot_probabilities,
)
from gallery import catalog, inputs, ui
from gallery.errors import InputError
from gallery.images import to_rgb

FEWSHOT = ui.ASSETS / "fewshot"
PROTOTYPES = "prototypes (mean embedding per class)"
LOGISTIC = "logistic regression (scikit-learn)"
FEW_SHOT_METHODS = [PROTOTYPES, LOGISTIC]
SHORT_METHOD = {PROTOTYPES: "prototypes", LOGISTIC: "logistic regression"}
LOGISTIC_C = 10.0  # inverse regularisation; unit-length features need a weak penalty to say much
MAX_CLASSES = 3  # few-shot class slots in the UI (and the API)
MAX_SHOTS = 16  # example pictures per class

# Few-shot: crops of three CC0 texture photos (see assets/README.md). Training crops come from the
# top of each photo, the test crop from the bottom: the test picture was never among the examples.
EXAMPLE_SHOTS = {k: [str(p) for p in sorted(FEWSHOT.glob(f"{k}-train-*.jpg"))] for k in ("brick", "gravel", "grass")}
FEW_SHOT_EXAMPLES = [  # test image, then (name, files) per class slot
    # Made-up class names: words cannot help zero-shot, the examples can.
    [asset(FEWSHOT, "brick-test.jpg"),
     "dax", EXAMPLE_SHOTS["brick"], "wug", EXAMPLE_SHOTS["gravel"], "blicket", EXAMPLE_SHOTS["grass"]],
    [asset(FEWSHOT, "gravel-test.jpg"),
     "dax", EXAMPLE_SHOTS["brick"], "wug", EXAMPLE_SHOTS["gravel"], "blicket", EXAMPLE_SHOTS["grass"]],
    # The same pictures with real names: now zero-shot has something to go on.
    [asset(FEWSHOT, "grass-test.jpg"),
     "brick wall", EXAMPLE_SHOTS["brick"], "gravel", EXAMPLE_SHOTS["gravel"], "grass", EXAMPLE_SHOTS["grass"]],
]
FEW_SHOT_LABELS = [
    "Made-up names (dax, wug, blicket) · test: a brick crop",
    "Made-up names (dax, wug, blicket) · test: a gravel crop",
    "Real names (brick wall, gravel, grass) · test: a grass crop",
]


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
                f"Class “{shortened(name)}” has no example pictures. Add at least one, or clear its "
                "name to leave the class out."
            )
        if len(files) > MAX_SHOTS:
            raise InputError(f"Class “{shortened(name)}” has {len(files)} pictures; please use at most {MAX_SHOTS}.")
        if name.casefold() in (n.casefold() for n in names):
            raise InputError(f"Two classes are both called “{shortened(name)}”. Give each class its own name.")
        loaded = []
        for file in files:
            try:
                loaded.append(to_rgb(file, what=f"example pictures for “{shortened(name)}”"))
            except InputError as error:
                shown = Path(file).name if isinstance(file, (str, Path)) else "a picture"
                raise InputError(f"Class “{shortened(name)}”, {shown}: {error}") from None
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
        raise InputError(f"Unknown few-shot method {shortened(str(method))!r}. Pick one from the list.")
    templates = templates_for(template)
    test = inputs.picture(test_image, what="a test picture")
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
    notes = cut_note(table, names, templates)
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


@ui.user_errors
def on_learn(model_label, test_image, method, template, *slots, progress=gr.Progress()):
    classes = [(slots[i], slots[i + 1]) for i in range(0, len(slots), 2)]
    progress(0.1, desc="Encoding the pictures with CLIP")
    result = few_shot(model_label, test_image, classes, method, template)
    names = shown_names(result.classes)
    table = pd.DataFrame(
        {
            "class": names,
            "zero-shot %": percent(result.zero_shot),
            "few-shot %": percent(result.few_shot),
            "difference (points)": percent(result.few_shot - result.zero_shot),
        }
    )
    z, f = int(np.argmax(result.zero_shot)), int(np.argmax(result.few_shot))
    method = SHORT_METHOD[result.method]
    note = f"**Zero-shot (names only) picks “{names[z]}”; few-shot ({method}) picks “{names[f]}”.**"
    note = "\n\n".join([note] + [f"ℹ️ {n}" for n in result.notes])
    return (  # each chart highest first; the table beside lines the classes up
        bars_frame(names, result.zero_shot, "probability"),
        bars_frame(names, result.few_shot, "probability"),
        table,
        note,
    )


def few_shot_tab(model: gr.Dropdown, template_info: str) -> None:
    """The few-shot sub-tab: class names and example pictures in, two charts side by side."""
    gr.Markdown(
        "Give each class a name and a few example pictures. Zero-shot uses only the names; "
        "few-shot uses only the pictures."
    )
    with gr.Row():
        test_image = inputs.picture_input(type="filepath", label="Test picture", height=260)
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
        zero_plot = probability_plot("Zero-shot (class names)", "clip-zero-shot-bars")
        few_plot = probability_plot("Few-shot (example pictures)", "clip-few-shot-bars")
    few_table = gr.Dataframe(label="Side by side")
    few_note = gr.Markdown()
    gr.Examples(
        FEW_SHOT_EXAMPLES, inputs=[test_image, *slots], example_labels=FEW_SHOT_LABELS,
        cache_examples=False, label="Example sets (CC0 texture photos; test crops were never examples)",
    )
    learn.click(
        on_learn, [model, test_image, method, few_template, *slots],
        [zero_plot, few_plot, few_table, few_note], api_name="clip_few_shot", **ui.heavy(),
    )
