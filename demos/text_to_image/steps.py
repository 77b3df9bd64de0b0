"""Text to image, step by step: the diffusers pipeline run in a worker thread, with the
denoiser's guess of the clean picture after every step decoded for the strip, and diffusers'
safety checker turned into a readable notice instead of a black square."""

from __future__ import annotations

import functools
import inspect
import time
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from gallery import generation
from gallery.errors import InputError


@dataclass(frozen=True)
class ImageSettings:
    """What to draw and how, every value already checked (`pictures.clean_settings`)."""

    prompt: str
    negative_prompt: str | None  # only used when guidance > 1
    seed: int
    steps: int
    guidance: float
    width: int
    height: int


@dataclass
class Denoising:
    """One run of the pipeline: the final picture, the denoiser's guess after each step, the time."""

    image: Image.Image  # the final picture, before any safety check
    previews: list[Image.Image]  # one per step: the predicted clean picture after that step
    settings: ImageSettings
    seconds: float
    preview_kind: str  # "predicted clean image" or "current latents"


def _x0_keeping_scheduler(scheduler):
    """A fresh copy of the pipeline's scheduler whose `step` also keeps the predicted clean latents.

    Fresh, because a scheduler counts its steps: two requests must never share one. The pipeline
    keeps only the noisy latents for the next step and drops `pred_original_sample` (x0), the
    clean picture the denoiser believes is hidden in the noise — the picture worth showing.
    """
    fresh = type(scheduler).from_config(scheduler.config)
    fresh.last_x0 = None
    plain_step = fresh.step

    @functools.wraps(plain_step)  # keeps the signature: the pipeline inspects it for `generator`
    def step(*args, return_dict: bool = True, **kwargs):
        out = plain_step(*args, return_dict=True, **kwargs)
        fresh.last_x0 = getattr(out, "pred_original_sample", None)
        return out if return_dict else out.to_tuple()

    fresh.step = step
    return fresh


def _pipeline_view(pipe, scheduler):
    """The cached pipeline's modules (shared, not copied) with this call's own scheduler, so the
    call's state (step counter, guidance scale...) is never shared between requests.

    (diffusers' `from_pipe` builds the same view but also casts every shared module to float32,
    which would undo fp16 on a GPU for everybody.)
    """
    accepted = inspect.signature(type(pipe).__init__).parameters
    options = {k: v for k, v in pipe.config.items() if k in accepted and k not in pipe.components}
    view = type(pipe)(**{**pipe.components, "scheduler": scheduler}, **options)
    view.set_progress_bar_config(disable=True)
    return view


def decode_latents(pipe, latents: torch.Tensor) -> Image.Image:
    """(1, 4, h/f, w/f) latents (f = the VAE's scale factor, 8 for SD) -> VAE decoder ->
    (1, 3, h, w) in [-1, 1] -> RGB PIL image."""
    scaled = latents.to(pipe.vae.dtype) / pipe.vae.config.scaling_factor
    pixels = pipe.vae.decode(scaled, return_dict=False)[0]
    return pipe.image_processor.postprocess(pixels, output_type="pil")[0]


def generate(
    pipe,
    s: ImageSettings,
    on_step: Callable[[int, Image.Image | None], None] | None = None,
    time_limit_s: float | None = None,
    decode_previews: bool = True,
) -> Denoising:
    """One picture from `s`, with the decoded prediction of every step.

    `on_step(i, preview)` is called as soon as step i's preview is decoded (i < steps - 1; the
    preview is None with decode_previews=False). The last step's prediction *is* the final
    picture (no noise is left), so it is decoded once, by the pipeline itself, exactly as a plain
    pipeline call would. Runs the model: call it under torch.inference_mode().
    """
    scheduler = _x0_keeping_scheduler(pipe.scheduler)
    call = _pipeline_view(pipe, scheduler)
    previews: list[Image.Image] = []
    kinds: set[str] = set()
    started = time.perf_counter()

    def after_step(p, i: int, t, tensors: dict) -> dict:
        if time_limit_s and time.perf_counter() - started > time_limit_s:
            raise InputError(
                f"This picture took longer than {time_limit_s:.0f} s and was stopped. "
                "Try fewer steps or a smaller size."
            )
        if i < s.steps - 1:
            preview = None
            if decode_previews:
                if scheduler.last_x0 is not None:
                    latents, kind = scheduler.last_x0, "predicted clean image"
                else:  # a scheduler that does not report x0: show where the noisy sample stands
                    latents, kind = tensors["latents"], "current latents"
                kinds.add(kind)
                preview = decode_latents(p, latents)
                previews.append(preview)
            if on_step is not None:
                on_step(i, preview)
        return tensors

    image = call(
        prompt=s.prompt,
        negative_prompt=s.negative_prompt if s.guidance > 1 else None,
        num_inference_steps=s.steps,
        guidance_scale=s.guidance,  # diffusers applies guidance only above 1
        width=s.width,
        height=s.height,
        # A CPU generator: the same seed gives the same starting noise on any device.
        generator=torch.Generator("cpu").manual_seed(s.seed),
        callback_on_step_end=after_step,
        callback_on_step_end_tensor_inputs=["latents"],
    ).images[0]
    previews.append(image)
    kind = "current latents" if "current latents" in kinds else "predicted clean image"
    return Denoising(image, previews, s, time.perf_counter() - started, kind)


class _Stopped(Exception):
    """The reader went away (the visitor left or pressed stop): end the worker at its next step."""


def stream_generation(
    pipe, s: ImageSettings, time_limit_s: float | None = None
) -> Iterator[tuple[int, Image.Image] | Denoising]:
    """Run `generate` in a worker thread; yield (step, preview) as each step is decoded, then the
    finished Denoising.

    The pipeline only offers a callback (gallery.generation.from_worker): an exception in the
    worker (an out-of-memory error, say) is raised again here, in the caller's thread, where
    `ui.user_errors` turns it into plain words and frees memory.
    """
    def work(emit, stop) -> None:
        def on_step(i: int, preview: Image.Image) -> None:
            if stop.is_set():
                raise _Stopped()
            emit((i, preview))

        emit(generate(pipe, s, on_step, time_limit_s))

    yield from generation.from_worker(work, "text-to-image")


def safety_flags(images: list[Image.Image], checker, processor) -> list[bool]:
    """True for each picture that diffusers' safety checker flags.

    The checker embeds the picture with a CLIP vision model and compares it with fixed embeddings
    of unwanted concepts. It only blacks out the array it is given; we pass placeholders and keep
    the flags, so a flagged picture becomes a readable notice instead of a black square.
    """
    inputs = processor(images=images, return_tensors="pt")
    clip_input = inputs["pixel_values"].to(checker.device, checker.dtype)
    placeholders = np.zeros((len(images), 1, 1, 3))
    with torch.inference_mode():
        _, flags = checker(clip_input=clip_input, images=placeholders)
    return [bool(flag) for flag in flags]


@functools.lru_cache(maxsize=16)
def notice_image(width: int, height: int) -> Image.Image:
    """What is shown in place of a flagged picture: words, not a black square."""
    image = Image.new("RGB", (width, height), (245, 240, 225))
    draw = ImageDraw.Draw(image)
    border = max(2, min(width, height) // 40)
    draw.rectangle([0, 0, width - 1, height - 1], outline=(217, 119, 6), width=border)
    text = "Hidden by the\nsafety check.\n\nIt sometimes flags\nharmless pictures:\ntry another seed."
    font = ImageFont.load_default(size=max(8, min(width, height) // 14))
    draw.multiline_text(
        (width / 2, height / 2), text, fill=(60, 40, 20), font=font, anchor="mm", align="center"
    )
    return image


FLAGGED_NOTE = (
    "⚠️ The safety check flagged this picture, so a notice is shown instead. The checker is "
    "cautious and sometimes flags harmless pictures: try another seed or reword the prompt."
)
PASSED_NOTE = "✅ Safety check passed: the checker flagged nothing in this picture."
