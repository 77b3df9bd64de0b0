"""A visitor's picture: the settings checked (sizes and steps by device), the prompt's cut
reported, the pipeline run step by step (`steps`) with each step's guess streamed into the strip,
and diffusers' safety check on every picture shown. The handlers of the tab: one picture, two
pictures from the same noise, an example's picture."""

from __future__ import annotations

import gradio as gr
import torch
from PIL import Image

from demos.text_to_image.steps import (
    FLAGGED_NOTE, PASSED_NOTE, Denoising, ImageSettings, generate, notice_image, safety_flags, stream_generation,
)
from gallery import catalog, inputs, models, settings, ui
from gallery.device import device, gpu, sized
from gallery.errors import InputError, ModelUnavailable

STEPS_RANGE = (1, 4)  # SD-Turbo was distilled to work in 1-4 steps; more steps do not help it
GUIDANCE_MAX = 10.0
MIN_SIDE = 64
MAX_PROMPT_CHARS = 2000  # far beyond the ~75 words the text encoder reads; refuse essays
# (default side, largest side, default steps) per device: a CPU needs seconds per step even at 256 px
SIZES = {"cuda": (512, 768, 4), "cpu": (256, 512, 2)}
EXAMPLES = [
    ["a watercolor painting of a lighthouse at dawn, soft light"],
    ["a corgi astronaut floating above the earth, digital art"],
    ["a bowl of ramen on a wooden table, studio photo, steam rising"],
    ["a cosy reading nook with a sleeping cat by a rainy window"],
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
) -> tuple[ImageSettings, list[str]]:
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
    return ImageSettings(prompt, negative or None, seed, steps, float(guidance), width, height), notes


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
def safety_checker():
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


def _safety_checked(picture: Image.Image, s: ImageSettings, notes: list[str],
                    checker) -> tuple[Image.Image, list[str], bool]:
    """The picture, or the safety notice in its place; the notes with the checker's verdict first;
    whether it was flagged. Without a checker: unchanged."""
    if not checker:
        return picture, notes, False
    if safety_flags([picture], *checker)[0]:
        return notice_image(s.width, s.height), [FLAGGED_NOTE, *notes], True
    return picture, [PASSED_NOTE, *notes], False


def _summary(s: ImageSettings, seconds: float | None, notes: list[str], label: str = "") -> str:
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
    checker = safety_checker()
    s, notes = _prepared(pipe, prompt, negative_prompt, seed, randomize, steps, guidance, width, height)
    strip: list[tuple[Image.Image, str]] = []
    progress((0, s.steps), desc="reading the prompt")
    yield None, [], s.seed, _summary(s, None, notes + ["Generating…"])
    for event in stream_generation(pipe, s, settings.TIME_LIMIT_S):
        if isinstance(event, Denoising):
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
                    2 * GPU_CHECK_S
                    + GPU_STEP_S * (float(steps_a) + float(steps_b)) * float(width) * float(height) / 512**2))
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
    checker = safety_checker()
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
def on_negative_box(guidance):
    active = isinstance(guidance, (int, float)) and guidance > 1
    return gr.update(
        interactive=active,
        placeholder="what to steer away from, e.g. blurry, text"
        if active
        else "used only when guidance is above 1",
    )
