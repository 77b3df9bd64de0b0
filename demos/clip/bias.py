"""CLIP bias probe: the same picture and classes, two wordings of the labels. If the bars move,
the model's view of those words moved them, and every model built on this one inherits it."""

from __future__ import annotations

import gradio as gr
import numpy as np
import pandas as pd

from demos.clip.model import (
    DEFAULT_TEMPLATE, IMAGES, TEMPLATE_CHOICES, Scores, asset, bars_frame, check_query, class_embeddings,
    cosine_scores, cut_note, embed, logit_scale, percent, probability_plot, shown_names,
    zero_shot_probabilities,
)
from gallery import inputs, ui
from gallery.errors import InputError

BIAS_EXAMPLES = [  # image, wording A, wording B, template: only the words of the labels differ
    [asset(IMAGES, "astronaut.jpg"), "astronaut, pilot, flight attendant",
     "female astronaut, female pilot, flight attendant", DEFAULT_TEMPLATE],
    [asset(IMAGES, "camera.jpg"), "photographer, tourist, soldier", "cameraman, tourist, soldier", DEFAULT_TEMPLATE],
    [asset(IMAGES, "chelsea-the-cat.jpg"), "cat, fox, rabbit", "kitty, fox, rabbit", DEFAULT_TEMPLATE],
]


def bias_probe(model_label: str | None, image, labels_a: str, labels_b: str, template: str = DEFAULT_TEMPLATE):
    """The same picture scored with two wordings of the same labels (paired by position)
    -> (Scores A, Scores B)."""
    first = check_query(model_label, image, labels_a, template)
    second = check_query(model_label, image, labels_b, template)
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
                request.notes + cut_note(table, request.labels, request.templates),
            )
        )
    return results[0], results[1]


@ui.user_errors
def on_probe(model_label, image, labels_a, labels_b, template):
    a, b = bias_probe(model_label, image, labels_a, labels_b, template)
    names_a, names_b = shown_names(a.labels), shown_names(b.labels)
    shift = percent(b.probabilities - a.probabilities)  # points, per position
    table = pd.DataFrame(
        {
            "wording A": names_a,
            "wording B": names_b,
            "A %": percent(a.probabilities),
            "B %": percent(b.probabilities),
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
        bars_frame(names_a, a.probabilities, "probability"),
        bars_frame(names_b, b.probabilities, "probability"),
        table,
        note,
    )


def bias_tab(model: gr.Dropdown) -> None:
    """The bias-probe sub-tab: one picture, wordings A and B, the shift per position."""
    gr.Markdown(
        "Same picture, same classes, different words. If the bars move, the model's view of "
        "those words moved them — and every model built on this one inherits it."
    )
    with gr.Row():
        probe_image = inputs.picture_input(type="filepath", label="Picture", height=260)
        with gr.Column():
            wording_a = gr.Textbox(label="Wording A", lines=2)
            wording_b = gr.Textbox(label="Wording B (same classes, same order)", lines=2)
            probe_template = gr.Dropdown(
                TEMPLATE_CHOICES, value=DEFAULT_TEMPLATE, label="Template", elem_id="clip-bias-template"
            )
            probe = gr.Button("Compare wordings", variant="primary")
    with gr.Row():
        plot_a = probability_plot("Wording A", "clip-bias-a-bars")
        plot_b = probability_plot("Wording B", "clip-bias-b-bars")
    probe_table = gr.Dataframe(label="Shift per position")
    probe_note = gr.Markdown()
    gr.Examples(
        BIAS_EXAMPLES, inputs=[probe_image, wording_a, wording_b, probe_template], cache_examples=False
    )
    probe.click(
        on_probe, [model, probe_image, wording_a, wording_b, probe_template],
        [plot_a, plot_b, probe_table, probe_note], api_name="clip_bias_probe", **ui.heavy(),
    )
