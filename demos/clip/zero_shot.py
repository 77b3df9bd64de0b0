"""Zero-shot: a picture sorted into classes nobody trained CLIP on, named by the visitor. Every
label is put into a sentence (a template, or the mean of five: an ensemble); the softmax over
the labels' scores gives the bars, the cosine says how well each label fits on its own. Requests
for the same model share one forward pass (`on_classify_batch`: gradio's batched event)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from demos.clip.model import (
    BARE, DEFAULT_TEMPLATE, ENSEMBLE, IMAGES, TEMPLATE_CHOICES, TEMPLATES, Query, Scores, asset, bars_frame,
    check_query, class_embeddings, cosine_scores, cut_note, embed, empty_frame, logit_scale, percent,
    shown_names, templates_for, zero_shot_probabilities,
)
from gallery import ui
from gallery.errors import InputError

EXAMPLES = [  # image, labels, template: one click fills all three
    [asset(IMAGES, "chelsea-the-cat.jpg"), "cat, dog, fox, stuffed toy", DEFAULT_TEMPLATE],
    [asset(IMAGES, "coffee.jpg"), "coffee, tea, soup, beer", ENSEMBLE],
    [asset(IMAGES, "rocket.jpg"), "rocket launch\nairplane\nfireworks\nlighthouse", DEFAULT_TEMPLATE],
    [asset(IMAGES, "hubble-deep-field.jpg"), "cat, dog, car", DEFAULT_TEMPLATE],  # none of these fits
    [asset(IMAGES, "camera.jpg"), "photographer, painter, soldier", "a black and white photo of a {}."],
    [asset(IMAGES, "astronaut.jpg"), "astronaut, pilot, chef, firefighter", BARE],
]


# --- zero-shot: one or many requests, one forward pass -----------------------------------------------
def _score(queries: list[Query]) -> list[Scores]:
    """Queries for one model -> their scores, with all pictures and missing texts in one pass."""
    entry = queries[0].entry
    pairs = [(t, label) for q in queries for label in q.labels for t in q.templates]
    image_features, table = embed(entry, [q.image for q in queries], pairs)  # (B, D)
    scale = logit_scale(entry)
    results = []
    for r, image_feature in zip(queries, image_features):
        text = class_embeddings(table, r.labels, r.templates)  # (L, D)
        results.append(
            Scores(
                labels=r.labels,
                probabilities=zero_shot_probabilities(image_feature, text, scale).numpy(),
                cosine=cosine_scores(image_feature, text).numpy(),
                notes=r.notes + cut_note(table, r.labels, r.templates),
            )
        )
    return results


def zero_shot_many(requests: Sequence[tuple]) -> list[Scores | InputError]:
    """[(model label, image, labels text, template), ...] -> Scores, or the InputError of a bad
    request, in order. Requests for the same model share one forward pass (gradio's batching)."""
    checked: list[Query | InputError] = []
    for request in requests:
        try:
            checked.append(check_query(*request))
        except InputError as error:
            checked.append(error)
    results: list[Scores | InputError] = list(checked)
    for entry in dict.fromkeys(r.entry for r in checked if isinstance(r, Query)):
        index = [i for i, r in enumerate(checked) if isinstance(r, Query) and r.entry == entry]
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
    request = check_query(model_label, image, labels_text, DEFAULT_TEMPLATE)
    pairs = [(t, label) for label in request.labels for t in TEMPLATES + [BARE]]
    image_features, table = embed(request.entry, [request.image], pairs)
    scale = logit_scale(request.entry)
    frame = pd.DataFrame({"label": shown_names(request.labels)})
    for choice in TEMPLATE_CHOICES:
        text = class_embeddings(table, request.labels, templates_for(choice))
        probabilities = zero_shot_probabilities(image_features[0], text, scale).numpy()
        frame["ensemble" if choice == ENSEMBLE else choice] = percent(probabilities)
    return frame


# --- what the page shows --------------------------------------------------------------------------
def _cosine_plot(names, cosine) -> pd.DataFrame:
    # Only the data: a new y_lim sent with it would make gradio draw the previous request
    # (see ui.bar_plot). The axis is fixed for real CLIP models, where matching captions score
    # about 0.3; the note gives the exact values.
    return bars_frame(names, cosine, "cosine")


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
def on_classify(model_label, image, labels_text, template):
    """One request (the unbatched event)."""
    return _zero_shot_outputs(zero_shot(model_label, image, labels_text, template))


@ui.user_errors
def on_classify_batch(model_labels, images, labels_texts, templates):
    """The batched event (ui.batch_columns): a bad request in a shared batch gets its message in the note."""
    results = [r if isinstance(r, InputError) else _zero_shot_outputs(r)
               for r in zero_shot_many(list(zip(model_labels, images, labels_texts, templates)))]
    return ui.batch_columns(results, lambda message: (None, empty_frame("cosine"), f"⚠️ {message}"))


@ui.user_errors
def on_compare_templates(model_label, image, labels_text):
    return compare_templates(model_label, image, labels_text)
