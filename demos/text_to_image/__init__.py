"""Text to image: a prompt becomes a picture in 1-4 denoising steps, and you watch it emerge.

The pipeline has three models in a row. A text encoder (a CLIP text transformer, the same kind of
model as tab 3's) turns the prompt into vectors. A denoiser (a UNet) starts from pure noise in a
small "latent" picture and, at each step, predicts the clean picture hidden in it. A decoder (the
VAE) turns that latent picture into pixels. The strip shows, after every step, the denoiser's
current guess of the clean picture, decoded with the same VAE.
"""

from __future__ import annotations

import gradio as gr

from demos.text_to_image import pictures
from demos.text_to_image.pictures import EXAMPLES, GUIDANCE_MAX, MIN_SIDE, STEPS_RANGE, size_limits
from gallery import catalog, links, settings, ui
from gallery.device import device

TITLE = "Text to image"
SUMMARY = (
    "**Text to image.** A text encoder reads your prompt; a denoiser, steered by it, turns random noise "
    "(chosen by the seed) into a picture in a few steps; a decoder makes the pixels. The strip shows the "
    "model's guess of the finished picture after each step."
)
# The tab's main controls and result, by elem_id (tests/test_first_screen_browser.py checks them).
FIRST_SCREEN = {"inputs": ["t2i-prompt"], "button": "t2i-run", "result": "t2i-image"}
API_PREFIX = "text_to_image"  # every api_name of this tab starts with it (tests/test_contract.py)
CPU_NOTE = (
    "Running on a CPU, so pictures are small by default. Expect roughly 10–20 s for a 256×256 "
    "picture in one step on a small 2-core machine, and several seconds more for each further "
    "step (the step and its preview); 512×512 takes about three times as long. A GPU does a "
    "512×512 step in well under a second."
)
COMPARE_EXAMPLES = [
    ["a red apple on a wooden table, photo", "a green apple on a wooden table, photo"],
    ["a castle on a hill, oil painting", "a castle on a hill, pencil sketch"],
    ["a city street at noon", "a city street at night, neon lights"],
]


# --- layout -------------------------------------------------------------------------------------
def create_demo() -> None:
    default_side, largest, default_steps = size_limits()
    with gr.Column(elem_id="text-to-image"):  # one handle for the whole tab (browser tests)
        ui.lesson("text_to_image", SUMMARY)
        ui.model_banner("text2image", *(["safety"] if settings.SAFETY_CHECKER else []))
        if device() != "cuda":
            gr.Markdown(f"*{CPU_NOTE}*")
        with gr.Row():
            with gr.Column(scale=2):
                prompt = gr.Textbox(label="Prompt", lines=2, value=EXAMPLES[0][0], elem_id="t2i-prompt")
                run = ui.model_button("Generate", "text2image", elem_id="t2i-run")
                examples = gr.Examples(EXAMPLES, inputs=[prompt], cache_examples=False, label="Try a prompt")
                with gr.Accordion("Settings", open=True):
                    model = ui.model_dropdown(
                        "text2image",
                        info="SD-Turbo: Stable Diffusion 2.1 distilled to make a picture in 1–4 steps.",
                    )
                    with gr.Row():
                        # While randomizing, the box only shows the seed that was used.
                        seed = gr.Number(label="Seed", value=0, precision=0, interactive=False, elem_id="t2i-seed")
                        randomize = gr.Checkbox(label="Randomize seed", value=True, elem_id="t2i-randomize")
                    steps = gr.Slider(*STEPS_RANGE, value=default_steps, step=1, label="Steps")
                    guidance = gr.Slider(
                        0,
                        GUIDANCE_MAX,
                        value=0,
                        step=0.5,
                        label="Guidance scale",
                        info="SD-Turbo was trained to work without guidance: any value ≤ 1 means off. "
                        "Above 1 each step runs twice (with and without the prompt) and colours get harsh.",
                    )
                    negative = gr.Textbox(
                        label="Negative prompt",
                        interactive=False,
                        placeholder="used only when guidance is above 1",
                    )
                    with gr.Row():
                        width = gr.Slider(MIN_SIDE, largest, value=default_side, step=8, label="Width")
                        height = gr.Slider(MIN_SIDE, largest, value=default_side, step=8, label="Height")
            with gr.Column(scale=3):
                image = gr.Image(label="Picture", format="png", type="pil", interactive=False, elem_id="t2i-image")
                strip = gr.Gallery(
                    label="Denoising, step by step: the model's guess of the clean picture after each step",
                    columns=STEPS_RANGE[1],
                    height="auto",
                    object_fit="contain",
                    interactive=False,
                )
                status = gr.Markdown()

        with gr.Accordion("Compare two prompts or two settings, same seed", open=True):
            gr.Markdown(
                "Both pictures start from the same noise (the seed and size above). Change one thing — "
                "a word, the steps, the guidance — and see what it alone does."
            )
            with gr.Row():
                with gr.Column():
                    prompt_a = gr.Textbox(label="Left prompt", lines=2)
                    with gr.Row():
                        steps_a = gr.Slider(*STEPS_RANGE, value=default_steps, step=1, label="Left steps")
                        guidance_a = gr.Slider(0, GUIDANCE_MAX, value=0, step=0.5, label="Left guidance")
                    image_a = gr.Image(label="Left", format="png", type="pil", interactive=False)
                with gr.Column():
                    prompt_b = gr.Textbox(label="Right prompt", lines=2)
                    with gr.Row():
                        steps_b = gr.Slider(*STEPS_RANGE, value=default_steps, step=1, label="Right steps")
                        guidance_b = gr.Slider(0, GUIDANCE_MAX, value=0, step=0.5, label="Right guidance")
                    image_b = gr.Image(label="Right", format="png", type="pil", interactive=False)
            gr.Examples(COMPARE_EXAMPLES, inputs=[prompt_a, prompt_b], cache_examples=False)
            compare = gr.Button("Compare", variant="primary")
            compare_status = gr.Markdown()

    # preprocess=False: every input (all plain values) reaches the handler exactly as sent, so
    # `clean_settings` clamps out-of-range, missing or NaN numbers with a note, for the UI and the
    # API alike (Gradio's own slider check would refuse them with a message naming no field).
    ui.bring_into_view(run.click, "t2i-image")
    links.linked(prompt, "text_to_image", "prompt")
    inputs = [model, prompt, negative, seed, randomize, steps, guidance, width, height]
    gr.on(
        [run.click, prompt.submit],
        pictures.on_generate,
        inputs,
        [image, strip, seed, status],
        api_name="text_to_image",
        preprocess=False,
        **ui.heavy(),
    )
    if catalog.available("text2image"):  # an example shows its answer: computed on its first click, then kept
        ui.answer_examples(examples, pictures.on_example, [model, prompt, steps, guidance, width, height],
                           [image, strip, seed, status])
    randomize.change(ui.user_errors(lambda on: gr.update(interactive=not on)), randomize, seed, queue=False,
                     api_visibility="private")
    guidance.change(
        pictures.on_negative_box, guidance, negative, api_name="text_to_image_negative_box",
        api_visibility="private", queue=False,
    )
    compare.click(
        pictures.on_compare,
        [model, prompt_a, prompt_b, steps_a, steps_b, guidance_a, guidance_b, negative, seed, randomize, width, height],
        [image_a, image_b, seed, compare_status],
        api_name="text_to_image_compare",
        preprocess=False,
        **ui.heavy(),
    )
