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

import gradio as gr

from demos.clip import zero_shot
from demos.clip.bias import bias_tab
from demos.clip.few_shot import few_shot_tab
from demos.clip.model import DEFAULT_TEMPLATE, ROLE, TEMPLATE_CHOICES
from demos.clip.zero_shot import EXAMPLES
from gallery import catalog, inputs, links, ui

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


def create_demo(batch: bool = True) -> None:
    """The tab. `batch=False` wires the unbatched zero-shot handler (for the benchmark)."""
    ui.model_banner(ROLE)
    ui.lesson("clip", SUMMARY)
    template_info = "The sentence each label is put into before CLIP reads it."

    with gr.Tabs():
        with gr.Tab("Zero-shot", id="clip-zero-shot"):
            with gr.Row():
                image = inputs.picture_input(type="filepath", label="Picture", height=260, elem_id="clip-picture",
                                             value=EXAMPLES[0][0])
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
                        TEMPLATE_CHOICES, value=DEFAULT_TEMPLATE, label="Template", info=template_info,
                        elem_id="clip-template",
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
    links.linked(labels, "clip", "labels")
    links.linked(template, "clip", "template")
    zero_inputs = [model, image, labels, template]
    if catalog.available(ROLE):  # an example shows its answer: computed on its first click, then kept
        ui.answer_examples(zero_examples, zero_shot.on_classify, zero_inputs, [probabilities, cosine, note],
                           lane=ui.short())
    if batch:
        run.click(
            zero_shot.on_classify_batch, zero_inputs, [probabilities, cosine, note], api_name="clip_zero_shot",
            batch=True, max_batch_size=MAX_BATCH, **ui.short(),
        )
    else:
        run.click(zero_shot.on_classify, zero_inputs, [probabilities, cosine, note], api_name="clip_zero_shot",
                  **ui.short())
    compare.click(zero_shot.on_compare_templates, [model, image, labels], table, api_name="clip_compare_templates",
                  **ui.heavy())
