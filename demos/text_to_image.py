"""Text to image: a prompt becomes a picture in 1-4 denoising steps, and you watch it emerge.

The pipeline has three models in a row. A text encoder (a CLIP text transformer, the same kind of
model as tab 3's) turns the prompt into vectors. A denoiser (a UNet) starts from pure noise in a
small "latent" picture and, at each step, predicts the clean picture hidden in it. A decoder (the
VAE) turns that latent picture into pixels. The strip shows, after every step, the denoiser's
current guess of the clean picture, decoded with the same VAE.
"""

from __future__ import annotations

import gradio as gr
import torch
from PIL import Image

from demos.text_to_image_steps import (
    FLAGGED_NOTE, PASSED_NOTE, Generation, Request, generate, notice_image, safety_flags, stream_generation,
)
from gallery import catalog, inputs, links, models, settings, ui
from gallery.device import device, gpu, sized
from gallery.errors import InputError, ModelUnavailable

TITLE = "Text to image"
SUMMARY = (
    "**Text to image.** A text encoder reads your prompt; a denoiser, steered by it, turns random noise "
    "(chosen by the seed) into a picture in a few steps; a decoder makes the pixels. The strip shows the "
    "model's guess of the finished picture after each step."
)
# The tab's main controls and result, by elem_id (tests/test_first_screen_browser.py checks them).
FIRST_SCREEN = {"inputs": ["t2i-prompt"], "button": "t2i-run", "result": "t2i-image"}
STEPS_RANGE = (1, 4)  # SD-Turbo was distilled to work in 1-4 steps; more steps do not help it
GUIDANCE_MAX = 10.0
MIN_SIDE = 64
MAX_PROMPT_CHARS = 2000  # far beyond the ~75 words the text encoder reads; refuse essays
# (default side, largest side, default steps) per device: a CPU needs seconds per step even at 256 px
SIZES = {"cuda": (512, 768, 4), "cpu": (256, 512, 2)}
CPU_NOTE = (
    "Running on a CPU, so pictures are small by default. Expect roughly 10–20 s for a 256×256 "
    "picture in one step on a small 2-core machine, and several seconds more for each further "
    "step (the step and its preview); 512×512 takes about three times as long. A GPU does a "
    "512×512 step in well under a second."
)
EXAMPLES = [
    ["a watercolor painting of a lighthouse at dawn, soft light"],
    ["a corgi astronaut floating above the earth, digital art"],
    ["a bowl of ramen on a wooden table, studio photo, steam rising"],
    ["a cosy reading nook with a sleeping cat by a rainy window"],
]
COMPARE_EXAMPLES = [
    ["a red apple on a wooden table, photo", "a green apple on a wooden table, photo"],
    ["a castle on a hill, oil painting", "a castle on a hill, pencil sketch"],
    ["a city street at noon", "a city street at night, neon lights"],
]


# --- pure functions: plain inputs -> plain outputs, no Gradio ----------------------------------
def size_limits(on: str | None = None, scale: int = 8) -> tuple[int, int, int]:
    """(default side, largest side, default steps) for the device we run on.

    The denoiser's work grows with the *latent* picture, 1/scale of the output per side (8 for
    Stable Diffusion's VAE); a VAE that shrinks less (the tiny test model's: 2) gets smaller sides.
    """
    default_side, largest, default_steps = SIZES["cuda" if (on or device()) == "cuda" else "cpu"]
    largest = max(MIN_SIDE, largest * scale // 8)
    return min(default_side, largest), largest, default_steps


def _side(value, name: str, default: int, largest: int, notes: list[str]) -> int:
    # the VAE shrinks pictures 8× into latents: sides must divide
    return inputs.number(value, name, MIN_SIDE, largest, default, notes, integer=True, multiple=8,
                         why="what this machine can make in reasonable time")


def clean_prompt(prompt, what: str = "prompt") -> str:
    # The text encoder reads only about 75 words: a longer prompt is refused, not cut. A number
    # sent as the prompt is refused too (tests/test_text_to_image.py), not read as text.
    if prompt is not None and not isinstance(prompt, str):
        prompt = None
    return inputs.text(prompt, what, MAX_PROMPT_CHARS, example=EXAMPLES[0][0])


def clean_settings(
    prompt,
    negative_prompt,
    seed,
    randomize,
    steps,
    guidance,
    width,
    height,
    *,
    on: str | None = None,
    scale: int = 8,
) -> tuple[Request, list[str]]:
    """Validate and clamp everything a visitor or an API caller can send; notes say what changed.

    Raises InputError for an empty or absurdly long prompt; every number is clamped instead.
    """
    notes: list[str] = []
    prompt = clean_prompt(prompt)
    default_side, largest, default_steps = size_limits(on, scale)

    seed = inputs.seed(seed, notes, draw=bool(randomize))
    steps = inputs.number(steps, "Steps", *STEPS_RANGE, default_steps, notes, integer=True,
                          why="SD-Turbo is made for 1–4")
    guidance = inputs.number(guidance, "Guidance", 0.0, GUIDANCE_MAX, 0.0, notes, why="it is a strength")

    negative = negative_prompt.strip() if isinstance(negative_prompt, str) else ""
    if negative and guidance <= 1:
        notes.append(
            "The negative prompt was not used: it only acts through guidance, which is off at ≤ 1."
        )
        negative = ""
    if len(negative) > MAX_PROMPT_CHARS:
        raise InputError("That negative prompt is too long; keep it to a few words.")

    width = _side(width, "Width", default_side, largest, notes)
    height = _side(height, "Height", default_side, largest, notes)
    return Request(prompt, negative or None, seed, steps, float(guidance), width, height), notes


def cut_report(tokenizer, text: str, what: str = "prompt") -> str | None:
    """A note naming the words the text encoder never sees, or None when everything fits.

    CLIP's text encoder reads 77 tokens: a start token, 75 pieces of text and an end token.
    The pipeline silently drops the rest; we say where the cut falls.
    """
    room = tokenizer.model_max_length - 2
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    if len(encoded["input_ids"]) <= room:
        return None
    cut_at = encoded["offset_mapping"][room][0]  # character where the first dropped token starts
    kept_tail, dropped = text[:cut_at].rstrip()[-40:], text[cut_at:].strip()
    if len(dropped) > 300:
        dropped = dropped[:300] + "…"
    return (
        f"The {what} is {len(encoded['input_ids'])} tokens long but the text encoder reads only "
        f"{room}: it was cut after “…{kept_tail}”. Ignored: “{dropped}”."
    )


# --- handlers: thin, Gradio-facing --------------------------------------------------------------
def _safety_checker():
    """(checker, processor), or None when the settings switch is off.

    With the switch on and the checker's weights missing we refuse to show pictures at all: the
    tab promises a check on every image, and showing unchecked ones in a workshop room would
    break that promise silently.
    """
    if not settings.SAFETY_CHECKER:
        return None
    model = catalog.all_models("safety")[0]
    try:
        return models.load_safety_checker(model)
    except ModelUnavailable as error:
        raise ModelUnavailable(
            f"Pictures are not shown because the safety checker cannot be loaded. {error} "
            "For private use only, the check can be switched off with GALLERY_SAFETY_CHECKER=0."
        ) from None


def _pipeline(model_label):
    return models.load_text2image(catalog.by_label("text2image", model_label))


def _prepared(pipe, prompt, negative_prompt, seed, randomize, steps, guidance, width, height):
    s, notes = clean_settings(
        prompt, negative_prompt, seed, randomize, steps, guidance, width, height, scale=pipe.vae_scale_factor
    )
    for text, what in ((s.prompt, "prompt"), (s.negative_prompt, "negative prompt")):
        if text and (note := cut_report(pipe.tokenizer, text, what)):
            notes.append(note)
    return s, notes


def _safety_checked(picture: Image.Image, s: Request, notes: list[str], checker) -> tuple[Image.Image, list[str], bool]:
    """The picture, or the safety notice in its place; the notes with the checker's verdict first;
    whether it was flagged. Without a checker: unchanged."""
    if not checker:
        return picture, notes, False
    if safety_flags([picture], *checker)[0]:
        return notice_image(s.width, s.height), [FLAGGED_NOTE, *notes], True
    return picture, [PASSED_NOTE, *notes], False


def _summary(s: Request, seconds: float | None, notes: list[str], label: str = "") -> str:
    guidance = f"guidance {s.guidance:g}" + (" (off: ≤ 1)" if s.guidance <= 1 else "")
    timing = f" · {seconds:.1f} s on {device()}" if seconds is not None else ""
    head = (
        f"{label}**Seed {s.seed}** · {s.steps} step{'s' * (s.steps > 1)} · {guidance} · "
        f"{s.width}×{s.height}{timing}"
    )
    if not settings.SAFETY_CHECKER:
        notes = notes + ["Safety check is off (GALLERY_SAFETY_CHECKER=0): for private use only."]
    return "\n".join([head, *(f"- {note}" for note in notes)])


# GPU time per denoising step at 512x512, with the preview decoded for the strip (estimate).
GPU_STEP_S = 0.15
GPU_CHECK_S = 0.5  # text encoding, safety check, the final decode


@ui.user_errors
@gpu(duration=sized(lambda model_label, prompt, negative, seed, randomize, steps, guidance, width, height, **_:
                    GPU_CHECK_S + GPU_STEP_S * float(steps) * float(width) * float(height) / 512**2))
def on_generate(
    model_label,
    prompt,
    negative_prompt,
    seed,
    randomize,
    steps,
    guidance,
    width,
    height,
    progress=gr.Progress(),
):
    """Stream each step's prediction into the strip, then show the final picture."""
    pipe = _pipeline(model_label)
    checker = _safety_checker()
    s, notes = _prepared(pipe, prompt, negative_prompt, seed, randomize, steps, guidance, width, height)
    strip: list[tuple[Image.Image, str]] = []
    progress((0, s.steps), desc="reading the prompt")
    yield None, [], s.seed, _summary(s, None, notes + ["Generating…"])
    for event in stream_generation(pipe, s, settings.TIME_LIMIT_S):
        if isinstance(event, Generation):
            break
        i, preview = event
        if checker and safety_flags([preview], *checker)[0]:
            preview = notice_image(s.width, s.height)
        strip.append((preview, f"step {i + 1}/{s.steps}"))
        progress((i + 1, s.steps), desc=f"denoising, step {i + 1} of {s.steps}")
        yield preview, list(strip), s.seed, _summary(s, None, notes + ["Generating…"])
    result = event
    final, notes, flagged = _safety_checked(result.image, s, notes, checker)
    if flagged:  # earlier predictions head for the same picture: hide them all
        strip = [(final, caption) for _, caption in strip]
    strip.append((final, f"step {s.steps}/{s.steps} (final)"))
    yield final, strip, s.seed, _summary(s, result.seconds, notes)


@ui.user_errors
@gpu(duration=sized(lambda model_label, prompt_a, prompt_b, steps_a, steps_b, guidance_a, guidance_b, negative,
                    seed, randomize, width, height, **_:
                    2 * GPU_CHECK_S + GPU_STEP_S * (float(steps_a) + float(steps_b)) * float(width) * float(height) / 512**2))
def on_compare(
    model_label,
    prompt_a,
    prompt_b,
    steps_a,
    steps_b,
    guidance_a,
    guidance_b,
    negative_prompt,
    seed,
    randomize,
    width,
    height,
    progress=gr.Progress(),
):
    """Two pictures from the same starting noise (same seed): only what you changed differs."""
    pipe = _pipeline(model_label)
    checker = _safety_checker()
    s_a, notes_a = _prepared(pipe, prompt_a, negative_prompt, seed, randomize, steps_a, guidance_a, width, height)
    s_b, notes_b = _prepared(pipe, prompt_b, negative_prompt, s_a.seed, False, steps_b, guidance_b, width, height)
    total = s_a.steps + s_b.steps
    pictures, summaries = [], []
    for offset, s, notes, label in ((0, s_a, notes_a, "Left: "), (s_a.steps, s_b, notes_b, "Right: ")):
        def on_step(i, _preview, offset=offset):
            progress((offset + i + 1, total), desc="denoising")

        progress((offset, total), desc=f"{label.strip(': ').lower()} picture")
        with torch.inference_mode():
            result = generate(pipe, s, on_step, settings.TIME_LIMIT_S, decode_previews=False)
        image, notes, _ = _safety_checked(result.image, s, notes, checker)
        pictures.append(image)
        summaries.append(_summary(s, result.seconds, notes, label))
    return pictures[0], pictures[1], s_a.seed, "\n\n".join(summaries)


def on_example(model_label, prompt, steps, guidance, width, height):
    """An example prompt's picture, from seed 0 and no negative prompt, so it can be kept and
    shown again to everyone who clicks it (see `ui.answer_examples`)."""
    yield from on_generate(model_label, prompt, "", 0, False, steps, guidance, width, height)


@ui.user_errors
def _negative_box(guidance):
    active = isinstance(guidance, (int, float)) and guidance > 1
    return gr.update(
        interactive=active,
        placeholder="what to steer away from, e.g. blurry, text"
        if active
        else "used only when guidance is above 1",
    )


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
        on_generate,
        inputs,
        [image, strip, seed, status],
        api_name="text_to_image",
        preprocess=False,
        **ui.heavy(),
    )
    if catalog.available("text2image"):  # an example shows its answer: computed on its first click, then kept
        ui.answer_examples(examples, on_example, [model, prompt, steps, guidance, width, height], [image, strip, seed, status])
    randomize.change(ui.user_errors(lambda on: gr.update(interactive=not on)), randomize, seed, queue=False, api_visibility="private")
    guidance.change(
        _negative_box, guidance, negative, api_name="text_to_image_negative_box",
        api_visibility="private", queue=False,
    )
    compare.click(
        on_compare,
        [model, prompt_a, prompt_b, steps_a, steps_b, guidance_a, guidance_b, negative, seed, randomize, width, height],
        [image_a, image_b, seed, compare_status],
        api_name="text_to_image_compare",
        preprocess=False,
        **ui.heavy(),
    )


if __name__ == "__main__":
    from gallery import server

    server.standalone(create_demo, TITLE)
