"""CLIP, zero-shot and few-shot: a model that learned to match pictures with captions can sort
pictures into classes nobody trained it on (just type the class names), and can learn a new class
from a handful of example pictures (average their embeddings).

The maths mirrors open_clip: image and text embeddings are L2-normalised, their dot product is a
cosine similarity, `logit_scale.exp()` (100 for the trained checkpoints) turns it into a logit,
softmax over the labels gives the bars. A template ensemble is the mean of the normalised
per-template text embeddings, renormalised (`open_clip.build_zero_shot_classifier`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import gradio as gr
import numpy as np
import pandas as pd

from demos.clip_bias import bias_tab
from demos.clip_fewshot import few_shot_tab
from demos.clip_model import (
    BARE, DEFAULT_TEMPLATE, ENSEMBLE, IMAGES, ROLE, TEMPLATE_CHOICES, TEMPLATES, Request, Scores, asset, bars_frame,
    check_request, class_embeddings, cosine_scores, cut_note, embed, empty_frame, logit_scale, percent,
    shown_names, templates_for, zero_shot_probabilities,
)
from gallery import catalog, inputs, links, ui
from gallery.errors import InputError

TITLE = "CLIP: name your own classes (zero-shot), or show a few examples (few-shot)"
SUMMARY = (
    "**CLIP** learned from pictures and their web captions to put a picture and a sentence that fits it "
    "close together. So it sorts a picture into classes you just type (**zero-shot**), and learns new "
    "classes from a few example pictures (**few-shot**)."
)
# The tab's main controls and result, by elem_id (tests/test_first_screen_browser.py checks them).
FIRST_SCREEN = {"inputs": ["clip-picture", "clip-labels"], "button": "clip-classify", "result": "clip-softmax"}
API_PREFIX = "clip"  # every api_name of this tab starts with it (tests/test_contract.py)
MAX_BATCH = 8  # zero-shot requests that may share one forward pass

EXAMPLES = [  # image, labels, template: one click fills all three
    [asset(IMAGES, "chelsea-the-cat.jpg"), "cat, dog, fox, stuffed toy", DEFAULT_TEMPLATE],
    [asset(IMAGES, "coffee.jpg"), "coffee, tea, soup, beer", ENSEMBLE],
    [asset(IMAGES, "rocket.jpg"), "rocket launch\nairplane\nfireworks\nlighthouse", DEFAULT_TEMPLATE],
    [asset(IMAGES, "hubble-deep-field.jpg"), "cat, dog, car", DEFAULT_TEMPLATE],  # none of these fits
    [asset(IMAGES, "camera.jpg"), "photographer, painter, soldier", "a black and white photo of a {}."],
    [asset(IMAGES, "astronaut.jpg"), "astronaut, pilot, chef, firefighter", BARE],
]


# --- zero-shot: one or many requests, one forward pass -----------------------------------------------
def _score(requests: list[Request]) -> list[Scores]:
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
                notes=r.notes + cut_note(table, r.labels, r.templates),
            )
        )
    return results


def zero_shot_many(requests: Sequence[tuple]) -> list[Scores | InputError]:
    """[(model label, image, labels text, template), ...] -> Scores, or the InputError of a bad
    request, in order. Requests for the same model share one forward pass (gradio's batching)."""
    checked: list[Request | InputError] = []
    for request in requests:
        try:
            checked.append(check_request(*request))
        except InputError as error:
            checked.append(error)
    results: list[Scores | InputError] = list(checked)
    for entry in dict.fromkeys(r.entry for r in checked if isinstance(r, Request)):
        index = [i for i, r in enumerate(checked) if isinstance(r, Request) and r.entry == entry]
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
    request = check_request(model_label, image, labels_text, DEFAULT_TEMPLATE)
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



# --- layout --------------------------------------------------------------------------------------
def probability_plot(label: str, elem_id: str) -> gr.BarPlot:
    return ui.bar_plot(x="label", y="probability", y_lim=[0, 1], label=label, height=300, elem_id=elem_id)


def create_demo(batch: bool = True) -> None:
    """The tab. `batch=False` wires the unbatched zero-shot handler (for the benchmark)."""
    ui.model_banner(ROLE)
    ui.lesson("clip_classify", SUMMARY)
    template_info = "The sentence each label is put into before CLIP reads it."

    with gr.Tabs():
        with gr.Tab("Zero-shot", id="clip-zero-shot"):
            with gr.Row():
                image = inputs.picture_input(type="filepath", label="Picture", height=260, elem_id="clip-picture", value=EXAMPLES[0][0])
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
            few_shot_tab(model, template_info)

        with gr.Tab("Bias probe", id="clip-bias"):
            bias_tab(model)

    ui.bring_into_view(run.click, "clip-softmax")
    links.linked(labels, "clip_classify", "labels")
    links.linked(template, "clip_classify", "template")
    zero_inputs = [model, image, labels, template]
    if catalog.available(ROLE):  # an example shows its answer: computed on its first click, then kept
        ui.answer_examples(zero_examples, on_classify, zero_inputs, [probabilities, cosine, note], lane=ui.short())
    if batch:
        run.click(
            on_classify_batch, zero_inputs, [probabilities, cosine, note], api_name="clip_zero_shot",
            batch=True, max_batch_size=MAX_BATCH, **ui.short(),
        )
    else:
        run.click(on_classify, zero_inputs, [probabilities, cosine, note], api_name="clip_zero_shot", **ui.short())
    compare.click(on_compare_templates, [model, image, labels], table, api_name="clip_compare_templates", **ui.heavy())


if __name__ == "__main__":
    from gallery import server

    server.standalone(create_demo, TITLE)
