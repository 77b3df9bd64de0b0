"""Text to image on the tiny Stable Diffusion: our pictures equal diffusers' own pipeline call,
one preview per step, clamped inputs, the 77-token cut, the safety notice, errors from the worker."""

from __future__ import annotations

import re
import subprocess
import sys

import gradio as gr
import numpy as np
import pytest
import torch
from PIL import Image

from demos.text_to_image import pictures as PIC, steps as TS
from gallery import catalog, inputs, models, settings
from gallery.errors import InputError, ModelUnavailable
from tests.support.pages import ROOT

PROMPT = "a watercolor lighthouse at dawn"


@pytest.fixture(scope="module")
def pipe():
    return models.load_text2image(catalog.by_label("text2image", None))


@pytest.fixture(scope="module")
def reference(tiny_dir):
    """diffusers' own pipeline, loaded separately from the same folder: the independent reference."""
    from diffusers import StableDiffusionPipeline

    ref = StableDiffusionPipeline.from_pretrained(
        tiny_dir / "sd", safety_checker=None, requires_safety_checker=False
    )
    ref.set_progress_bar_config(disable=True)
    return ref


def reference_image(reference, prompt, seed, steps, guidance=0.0, side=64, negative=None) -> np.ndarray:
    out = reference(
        prompt,
        negative_prompt=negative,
        num_inference_steps=steps,
        guidance_scale=guidance,
        height=side,
        width=side,
        generator=torch.Generator("cpu").manual_seed(seed),
    )
    return np.asarray(out.images[0])


def settings_for(prompt=PROMPT, seed=7, steps=2, guidance=0.0, side=64, negative=None) -> TS.ImageSettings:
    s, notes = PIC.clean_settings(prompt, negative, seed, False, steps, guidance, side, side)
    assert notes == []
    return s


def run(pipe, s, **kwargs) -> TS.Denoising:
    with torch.inference_mode():
        return TS.generate(pipe, s, **kwargs)


def drain(handler_call):
    """All yields of a streaming handler."""
    return list(handler_call)


# --- equivalence with the library's own call -----------------------------------------------------
@pytest.mark.parametrize(
    "steps, guidance, negative",
    [(1, 0.0, None), (4, 0.0, None), (2, 4.0, "blurry, dark")],
)
def test_final_picture_equals_a_direct_pipeline_call(pipe, reference, steps, guidance, negative):
    s = settings_for(seed=1234, steps=steps, guidance=guidance, negative=negative)
    ours = np.asarray(run(pipe, s).image)
    expected = reference_image(reference, PROMPT, 1234, steps, guidance, negative=negative)
    # Exactly: the step callback only reads, and the last step is decoded by the pipeline itself.
    assert np.array_equal(ours, expected)


def test_one_preview_per_step_each_the_predicted_clean_picture(pipe, reference):
    s = settings_for(seed=99, steps=4)
    result = run(pipe, s)
    assert len(result.previews) == 4
    assert result.preview_kind == "predicted clean image"
    assert result.previews[-1] is result.image
    # Independent check of "predicted clean picture": SD-Turbo's trailing schedule starts every
    # run at t=999, so step 1's prediction of a 4-step run is what a 1-step run outputs (same seed).
    one_step = reference_image(reference, PROMPT, 99, 1).astype(int)
    assert np.abs(np.asarray(result.previews[0]).astype(int) - one_step).max() <= 1
    # ... and the predictions move: step 2's guess is not step 1's.
    assert not np.array_equal(np.asarray(result.previews[0]), np.asarray(result.previews[1]))


def test_without_previews_the_picture_is_the_same(pipe):
    s = settings_for(seed=3, steps=3)
    steps_seen = []
    plain = run(pipe, s, decode_previews=False, on_step=lambda i, preview: steps_seen.append((i, preview)))
    assert steps_seen == [(0, None), (1, None)] and plain.previews == [plain.image]
    assert np.array_equal(np.asarray(plain.image), np.asarray(run(pipe, s).image))


def test_same_seed_same_picture_other_seed_another(pipe):
    first = np.asarray(run(pipe, settings_for(seed=5)).image)
    again = np.asarray(run(pipe, settings_for(seed=5)).image)
    other = np.asarray(run(pipe, settings_for(seed=6)).image)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_a_call_leaves_the_cached_pipeline_as_it_was(pipe):
    scheduler, dtype = pipe.scheduler, pipe.unet.dtype
    run(pipe, settings_for(steps=3, guidance=3.0))
    assert pipe.scheduler is scheduler and scheduler.step_index is None  # never stepped by us
    assert pipe.unet.dtype == dtype and getattr(pipe, "guidance_scale", None) != 3.0


# --- inputs ---------------------------------------------------------------------------------------
def test_numbers_are_clamped_with_a_note():
    s, notes = PIC.clean_settings(PROMPT, None, -5, False, 1000, -2, 100, 5000, on="cpu")
    text = " ".join(notes)
    assert (s.seed, s.steps, s.guidance) == (0, 4, 0.0)
    assert (s.width, s.height) == (96, 512)  # 100 -> nearest multiple of 8; 5000 -> CPU limit
    for word in ("Seed -5 is outside 0–4294967295", "Steps 1000", "Guidance -2", "Height 5000", "multiple of 8"):
        assert word in text
    s, notes = PIC.clean_settings(PROMPT, None, 3, False, 0, float("nan"), None, "abc", on="cpu")
    assert s.steps == 1 and s.guidance == 0.0 and (s.width, s.height) == (256, 256)
    assert any("Steps 0" in n for n in notes) and any("not a number" in n for n in notes)
    s, _ = PIC.clean_settings(PROMPT, None, 3, False, 2, 0, 5000, 5000, on="cuda")
    assert s.width == PIC.SIZES["cuda"][1]
    # The limit is on the latent picture: a VAE shrinking 2x per side (the tiny one) allows 4x less.
    s, notes = PIC.clean_settings(PROMPT, None, 3, False, 2, 0, 5000, None, on="cpu", scale=2)
    assert (s.width, s.height) == (128, 128) and any("Width 5000 is outside 64–128" in n for n in notes)


def test_randomize_picks_a_fresh_valid_seed_and_a_fixed_seed_is_kept():
    seeds = {PIC.clean_settings(PROMPT, None, 0, True, 1, 0, 64, 64)[0].seed for _ in range(5)}
    assert len(seeds) > 1 and all(0 <= seed <= inputs.MAX_SEED for seed in seeds)
    assert PIC.clean_settings(PROMPT, None, 2**40, False, 1, 0, 64, 64)[0].seed == inputs.MAX_SEED


@pytest.mark.parametrize("prompt", ["", "   ", None, 42, "x" * (PIC.MAX_PROMPT_CHARS + 1)])
def test_bad_prompts_get_a_clear_message(prompt):
    with pytest.raises(InputError):
        PIC.clean_settings(prompt, None, 0, False, 1, 0, 64, 64)


def test_negative_prompt_only_with_guidance_above_one():
    s, notes = PIC.clean_settings(PROMPT, "blurry", 0, False, 1, 1.0, 64, 64)
    assert s.negative_prompt is None and any("negative prompt was not used" in n for n in notes)
    s, notes = PIC.clean_settings(PROMPT, "blurry", 0, False, 1, 1.5, 64, 64)
    assert s.negative_prompt == "blurry" and notes == []


def test_guidance_at_or_below_one_changes_nothing(pipe):
    # diffusers runs classifier-free guidance only above 1: 0, 0.5 and 1 are the same picture.
    pictures = [np.asarray(run(pipe, settings_for(guidance=g)).image) for g in (0.0, 0.5, 1.0)]
    assert all(np.array_equal(pictures[0], p) for p in pictures[1:])


def test_emoji_and_other_scripts_are_fine(pipe):
    assert run(pipe, settings_for(prompt="🙂🚀 日本語の猫, mañana")).image.size == (64, 64)


def test_a_long_prompt_says_where_it_was_cut(pipe):
    words = "red green blue yellow purple orange black white pink brown".split()
    prompt = " ".join(words[i % 10] + " cat" for i in range(60))  # 120 words
    note = PIC.cut_report(pipe.tokenizer, prompt)
    dropped = re.search(r"Ignored: “(.*)”", note).group(1)
    assert prompt.endswith(dropped)
    kept = prompt[: len(prompt) - len(dropped)]
    # What the note calls kept is exactly what fits: 77 tokens minus the start and end tokens.
    assert len(pipe.tokenizer(kept, add_special_tokens=False)["input_ids"]) == 75
    assert PIC.cut_report(pipe.tokenizer, PROMPT) is None


# --- streaming and errors -------------------------------------------------------------------------
def test_stream_yields_each_step_then_the_result(pipe):
    events = list(TS.stream_generation(pipe, settings_for(steps=3)))
    assert [e[0] for e in events[:-1]] == [0, 1]
    assert isinstance(events[-1], TS.Denoising) and len(events[-1].previews) == 3


def test_an_out_of_memory_in_the_worker_reaches_the_visitor_and_memory_is_freed(pipe, monkeypatch):
    import gallery.device

    freed = []
    monkeypatch.setattr(gallery.device, "free_memory", lambda: freed.append(True))

    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(pipe.unet, "forward", out_of_memory)  # runs in the worker thread
    monkeypatch.setattr(settings, "SAFETY_CHECKER", False)
    with pytest.raises(torch.OutOfMemoryError):
        list(TS.stream_generation(pipe, settings_for()))
    with pytest.raises(gr.Error, match="ran out of memory"):
        drain(PIC.on_generate(None, PROMPT, "", 1, False, 2, 0, 64, 64))
    assert freed


def test_a_time_limit_stops_a_long_generation(pipe):
    with pytest.raises(InputError, match="longer than"):
        run(pipe, settings_for(steps=3), time_limit_s=1e-9)


# --- the handlers and the safety check ------------------------------------------------------------
def test_handler_streams_previews_and_returns_the_seed_it_used(pipe, reference, monkeypatch):
    monkeypatch.setattr(settings, "SAFETY_CHECKER", True)
    outputs = drain(PIC.on_generate(None, PROMPT, "", 0, True, 3, 0, 64, 64))
    image, strip, seed, status = outputs[-1]
    assert [len(o[1]) for o in outputs] == [0, 1, 2, 3]  # the strip fills one step at a time
    assert f"Seed {seed}" in status
    assert np.array_equal(np.asarray(image), reference_image(reference, PROMPT, seed, 3))
    assert strip[-1][1] == "step 3/3 (final)"


def flagging_checker(tiny_dir):
    """The tiny checker with every concept threshold below any similarity: it flags everything."""
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPImageProcessor

    checker = StableDiffusionSafetyChecker.from_pretrained(tiny_dir / "safety").eval()
    checker.concept_embeds_weights.data.fill_(-2.0)
    return checker, CLIPImageProcessor.from_pretrained(tiny_dir / "safety")


def test_safety_flags_follow_the_checker(tiny_dir):
    picture = Image.new("RGB", (64, 64), "teal")
    passing = models.load_safety_checker(catalog.all_models("safety")[0])
    assert TS.safety_flags([picture], *passing) == [False]
    assert TS.safety_flags([picture, picture], *flagging_checker(tiny_dir)) == [True, True]


def test_a_flagged_picture_becomes_a_notice_not_a_black_square(tiny_dir, monkeypatch):
    monkeypatch.setattr(settings, "SAFETY_CHECKER", True)
    monkeypatch.setattr(models, "load_safety_checker", lambda model: flagging_checker(tiny_dir))
    image, strip, _, status = drain(PIC.on_generate(None, PROMPT, "", 3, False, 3, 0, 64, 64))[-1]
    notice = np.asarray(TS.notice_image(64, 64))
    assert np.array_equal(np.asarray(image), notice) and np.asarray(image).max() > 200
    assert all(np.array_equal(np.asarray(picture), notice) for picture, _ in strip)
    assert "flagged" in status
    left, right, _, status = PIC.on_compare(None, PROMPT, "a cat", 1, 1, 0, 0, "", 3, False, 64, 64)
    assert np.array_equal(np.asarray(left), notice) and status.count("flagged") == 2


def test_missing_safety_weights_refuse_pictures_unless_switched_off(pipe, monkeypatch):
    hub_safety = catalog.ROLES["safety"].hub
    real_all_models = catalog.all_models
    monkeypatch.setattr(
        catalog, "all_models", lambda role: list(hub_safety) if role == "safety" else real_all_models(role)
    )
    monkeypatch.setattr(settings, "SAFETY_CHECKER", True)
    with pytest.raises(gr.Error) as caught:
        drain(PIC.on_generate(None, PROMPT, "", 1, False, 1, 0, 64, 64))
    message = str(caught.value)
    assert settings.PREFETCH_COMMAND in message and "GALLERY_SAFETY_CHECKER=0" in message
    with pytest.raises(ModelUnavailable):
        PIC.safety_checker()
    monkeypatch.setattr(settings, "SAFETY_CHECKER", False)
    image, _, _, status = drain(PIC.on_generate(None, PROMPT, "", 1, False, 1, 0, 64, 64))[-1]
    assert image.size == (64, 64) and "Safety check is off" in status


def test_compare_uses_one_seed_for_both_sides(pipe, reference, monkeypatch):
    monkeypatch.setattr(settings, "SAFETY_CHECKER", True)
    left, right, seed, status = PIC.on_compare(
        None, PROMPT, "a red apple", 2, 1, 0, 0, "", 0, True, 64, 64
    )
    assert status.count(f"Seed {seed}") == 2
    assert np.array_equal(np.asarray(left), reference_image(reference, PROMPT, seed, 2))
    assert np.array_equal(np.asarray(right), reference_image(reference, "a red apple", seed, 1))


# --- through the launched app's API ---------------------------------------------------------------
def api_image(value) -> np.ndarray:
    return np.asarray(Image.open(value["path"] if isinstance(value, dict) else value).convert("RGB"))


def test_api_clamps_what_sliders_would_prevent(client, reference):
    label = catalog.by_label("text2image", None).label
    image, strip, seed, status = client.predict(
        label, PROMPT, "ignored without guidance", 11, False, 1000, -3, 70, 66,
        api_name="/text_to_image",
    )
    assert seed == 11 and len(strip) == 4
    for word in ("Steps 1000", "Guidance -3", "Width 70 is not a multiple of 8; 72 was used",
                 "Height 66 is not a multiple of 8; 64 was used", "negative prompt was not used"):
        assert word in status
    expected = np.asarray(
        reference(PROMPT, num_inference_steps=4, guidance_scale=0.0, height=64, width=72,
                  generator=torch.Generator("cpu").manual_seed(11)).images[0]
    )
    assert np.array_equal(api_image(image), expected)  # PNG: lossless


def test_api_refuses_an_empty_prompt_and_fills_in_missing_numbers(client):
    from gradio_client.exceptions import AppError

    label = catalog.by_label("text2image", None).label
    with pytest.raises(AppError, match="Type a prompt first"):
        client.predict(label, "  ", "", 0, True, 1, 0, 64, 64, api_name="/text_to_image")
    # Missing numbers (None) fall back to the defaults, with a note; nothing crashes.
    _, strip, _, status = client.predict(
        label, PROMPT, None, 3, False, None, None, 64, None, api_name="/text_to_image"
    )
    assert len(strip) == PIC.size_limits("cpu")[2] and "Guidance None is not a number" in status
    left, right, seed, _ = client.predict(
        label, PROMPT, PROMPT, 1, 1, 0, 0, "", 0, True, 64, 64, api_name="/text_to_image_compare"
    )
    assert np.array_equal(api_image(left), api_image(right))  # same seed, same settings


@pytest.mark.slow  # a fresh interpreter importing the tab
def test_the_module_imports_no_heavy_library_at_top_level():
    code = (
        "import sys, demos.text_to_image; "
        "print([m for m in ('diffusers', 'transformers', 'open_clip', 'sklearn', 'cv2') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stderr[-2000:]
