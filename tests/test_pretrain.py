"""Tab 6, pre-training: the engine learns (loss falls, hidden patches get better), is
deterministic, its cache is bounded and replays; the page's checks; the API end to end."""

from __future__ import annotations

import math
import re
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from PIL import Image

from demos.pretrain import runs as RUNS, show, training
from gallery.errors import InputError

TINY_TEXT = training.TextConfig(layers=2, width=64, heads=2, steps=40)
TINY_IMAGE = training.ImageConfig(steps=60)


@pytest.fixture(scope="module")
def text_run():
    return training.train_run(TINY_TEXT)


@pytest.fixture(scope="module")
def image_run():
    return training.train_run(TINY_IMAGE)


# --- the engine learns ----------------------------------------------------------------------------
def test_random_text_model_starts_near_uniform_and_loss_falls_30_percent(text_run):
    first = text_run.points[0].loss
    # Random weights know nothing: every byte about equally likely, loss ≈ ln 256 = 5.55 nats.
    assert abs(first - math.log(256)) < 0.3
    last = np.mean([p.loss for p in text_run.points[-5:]])
    assert last <= 0.7 * first, (first, last)
    held = [c.held_out_loss for c in text_run.checkpoints]
    assert held[-1] <= 0.7 * held[0], held  # also on text it never trained on
    assert [c.step for c in text_run.checkpoints] == [0, TINY_TEXT.steps]


def test_samples_come_from_the_checkpoint_weights(text_run):
    prompt = training.encode("The ")
    early = show.checkpoint_sample(text_run, 0, prompt)
    late = show.checkpoint_sample(text_run, TINY_TEXT.steps, prompt)
    assert early != late
    # After training, spaces and lowercase letters dominate, as in English; the random model
    # spreads over all 256 bytes, most of them not even ASCII letters.

    def plain_share(text: str) -> float:
        return sum(c.islower() or c == " " for c in text) / max(1, len(text))

    assert plain_share(late) > 0.6 > plain_share(early)


def test_same_configuration_and_seed_give_the_same_curve():
    config = training.TextConfig(layers=1, width=32, heads=1, steps=12, batch=8)
    first = [p.loss for p in training.train_run(config).points]
    second = [p.loss for p in training.train_run(config).points]
    other_seed = [p.loss for p in training.train_run(training.TextConfig(**{**config.__dict__, "seed": 1})).points]
    assert first == second
    assert first != other_seed


def test_hidden_patch_error_falls(image_run):
    errors = [c.held_out_loss for c in image_run.checkpoints]
    assert errors[-1] < 0.8 * errors[0], errors
    pictures = show.held_out_pictures()
    noise = show.hide_noise("random patches", len(pictures))
    _, early = show.reconstruction_strip(image_run.model_at(0), pictures, noise)
    _, late = show.reconstruction_strip(image_run.model_at(), pictures, noise)
    assert late < 0.8 * early


def test_bottom_half_mask_hides_exactly_the_bottom_half_and_keeps_the_rest(image_run):
    pictures = show.held_out_pictures(4)
    completed, mask, _ = training.reconstruct(image_run.model_at(), pictures, training.half_noise("bottom", 4))
    assert mask[:, :, :8].sum() == 0 and mask[:, :, 8:].min() == 1
    assert torch.equal(completed[:, :, :8], pictures[:, :, :8])  # the visible half is the input itself


def test_stop_keeps_what_was_learnt():
    config = training.TextConfig(layers=1, width=32, heads=1, steps=200, batch=8)
    calls = {"n": 0}

    def stop_after_ten() -> bool:
        calls["n"] += 1
        return calls["n"] > 10

    run = training.train_run(config, should_stop=stop_after_ten)
    assert run.stopped == "stop" and not run.finished
    assert run.checkpoints[-1].step == run.last_step == 10
    before = run.checkpoints[0].state["model.embed_tokens.weight"]
    assert not torch.equal(before, run.checkpoints[-1].state["model.embed_tokens.weight"])


def test_compute_estimate_is_six_n_d():
    model = training.build_model(TINY_TEXT)
    n = training.count_parameters(model, without_embeddings=True)
    assert n == training.count_parameters(model) - 256 * TINY_TEXT.width  # tied embedding counted once
    assert training.compute_estimate(n, 1000) == 6 * n * 1000


# --- the cache ----------------------------------------------------------------------------------
def test_run_store_replays_from_disk_and_stays_bounded(tmp_path, text_run):
    store = training.RunStore(tmp_path, memory_runs=2, disk_runs=2)
    store.put(text_run)
    fresh = training.RunStore(tmp_path)  # a new process: only the disk copy
    again = fresh.get(text_run.key)
    assert again is not None and again.from_cache
    assert [p.loss for p in again.points] == [p.loss for p in text_run.points]
    for name, value in text_run.checkpoints[-1].state.items():
        assert torch.equal(value, again.checkpoints[-1].state[name])
    for seed in (5, 6, 7):
        store.put(training.Run(training.TextConfig(seed=seed), "cpu", finished=True))
    assert len(list(tmp_path.glob("*.pt"))) == 2
    assert len(store.in_memory()) == 2
    unfinished = training.Run(training.TextConfig(seed=9), "cpu", stopped="stop")
    store.put(unfinished)
    assert not (tmp_path / f"{unfinished.key}.pt").exists()  # a stopped run is not "the" run of its config


# --- what visitors send ----------------------------------------------------------------------------
def test_budgets_and_seeds_are_clamped_with_a_note_and_unknown_choices_refused():
    """The gallery's one policy (gallery/inputs.py): its wording, and a choice off the list is refused."""
    notes: list[str] = []
    config = RUNS.text_config(RUNS.DEFAULT_TEXT_SIZE, 1e9, -5, notes)
    assert config.steps == RUNS.TEXT_STEPS[1] and config.seed == 0
    assert notes[0] == f"Steps 1000000000 is outside 10–{RUNS.TEXT_STEPS[1]}; {RUNS.TEXT_STEPS[1]} was used."
    assert notes[1].startswith("Seed -5 is outside 0–4294967295 or not whole; 0 was used.") and len(notes) == 2
    notes = []
    assert RUNS.image_config("abc", 3, notes).steps == RUNS.IMAGE_STEPS[0]
    assert notes == [f"Steps was not a number ('abc'); {RUNS.IMAGE_STEPS[0]} was used."]
    notes = []
    drawn = RUNS.image_config(RUNS.IMAGE_STEPS[0], None, notes).seed  # no seed box shows it: the note does
    assert notes == [f"No seed was given; {drawn} was drawn."]
    with pytest.raises(InputError, match="Unknown model size 'a very large model'. Pick one of: 2 layers"):
        RUNS.text_config("a very large model", 40, 0, [])
    with pytest.raises(InputError, match="Unknown choice of what to hide 'sideways'"):
        RUNS.check_hide("sideways")


def test_prompts_are_checked():
    with pytest.raises(InputError):
        show.clean_prompt("   ", 64)
    with pytest.raises(InputError):
        show.clean_prompt("x" * 5000, 64)
    ids, note = show.clean_prompt("é🙂" + "a" * 100, 64)
    assert len(ids) == 64 and "only the end" in note


@pytest.mark.parametrize(
    "make",
    [
        lambda: np.zeros((1, 1, 4), np.uint8),  # one transparent pixel: empty
        lambda: Image.new("L", (3000, 200), 255),  # blank wide page: empty
    ],
)
def test_empty_drawings_are_refused_in_plain_words(make):
    with pytest.raises(InputError, match="empty|Draw"):
        show.drawing_to_digit(make())


@pytest.mark.parametrize("mode", ["RGBA", "RGB", "L", "P", "1", "I;16"])
def test_a_drawn_digit_of_any_size_and_mode_becomes_a_centred_16x16(mode):
    canvas = Image.new("L", (300, 180), 255)
    canvas.paste(0, (140, 20, 160, 160))  # a dark vertical bar: a "1"
    digit = show.drawing_to_digit(canvas.convert(mode))
    assert digit.shape == (1, 1, 16, 16)
    ink_columns = digit[0, 0].sum(0)
    assert ink_columns[6:10].sum() > 0.8 * ink_columns.sum()  # centred like the dataset's digits
    assert float(digit.max()) == pytest.approx(1.0, abs=0.05)


def test_sketchpad_value_with_layers_only():
    layer = np.zeros((200, 200, 4), np.uint8)
    layer[40:160, 90:110] = (0, 0, 0, 255)  # strokes on a transparent layer, no background
    digit = show.drawing_to_digit({"background": None, "layers": [layer], "composite": None})
    assert digit.shape == (1, 1, 16, 16) and digit.sum() > 0


# --- through the app's API ---------------------------------------------------------------------------
def test_api_trains_then_replays_the_default_from_the_cache(client):
    # A seed no other test (nor the bad-input suite's defaults) uses: the run cache is shared by the session.
    first = client.predict(RUNS.DEFAULT_TEXT_SIZE, RUNS.TEXT_STEPS[0], 101, RUNS.DEFAULT_PROMPT,
                           api_name="/pretrain_text")
    curve, samples, bars, _, status = first[:5]
    assert "Trained" in status and f"step {RUNS.TEXT_STEPS[0]}" in samples
    steps = [row[0] for row in curve["data"]]
    assert max(steps) == RUNS.TEXT_STEPS[0]

    # (how fast a replay is, is measured in benchmarks/bench_pretrain.py, not here)
    again = client.predict(RUNS.DEFAULT_TEXT_SIZE, RUNS.TEXT_STEPS[0], 101, RUNS.DEFAULT_PROMPT,
                           api_name="/pretrain_text")
    assert "Replayed from the cache" in again[4]
    assert again[0]["data"] == curve["data"]  # the same curve, not a new run
    assert again[1] == samples

    # the same session can ask its model about another prompt, without training again
    samples2, bars2, _, _ = client.predict("import ", RUNS.TEXT_STEPS[0], api_name="/pretrain_ask_text")
    assert "import" in samples2 and bars2["data"] != bars["data"]


@pytest.mark.slow  # two trainings at once through the API
def test_two_visitors_training_different_configurations_each_get_their_own_curve(app_url):
    from gradio_client import Client

    def train(steps: int):
        own = Client(app_url, verbose=False, download_files=False)  # its own session
        try:
            result = own.predict(RUNS.DEFAULT_TEXT_SIZE, steps, 7, "The ", api_name="/pretrain_text")
        finally:
            own.close()
        return max(row[0] for row in result[0]["data"]), result[4]

    with ThreadPoolExecutor(2) as pool:
        a, b = pool.map(train, [20, 30])
    assert a[0] == 20 and b[0] == 30, (a, b)
    assert "Trained" in a[1] and "Trained" in b[1]


@pytest.mark.slow  # a digits model trained through the API
def test_api_pictures_and_drawing(client, tmp_path):
    from gradio_client import handle_file

    result = client.predict(RUNS.IMAGE_STEPS[0], 102, "bottom half", api_name="/pretrain_image")  # an unshared seed
    curve, strips, status = result
    assert "Trained" in status and len(strips) == len(training.checkpoint_steps(RUNS.IMAGE_STEPS[0]))
    drawn = tmp_path / "three.png"
    canvas = Image.new("RGB", (120, 160), "white")
    canvas.paste((0, 0, 0), (30, 20, 90, 35))
    canvas.paste((0, 0, 0), (75, 20, 90, 140))
    canvas.paste((0, 0, 0), (30, 125, 90, 140))
    canvas.save(drawn)
    editor = {"background": handle_file(str(drawn)), "layers": [], "composite": handle_file(str(drawn))}
    image, note = client.predict(editor, "bottom half", api_name="/pretrain_ask_drawing")
    assert image and "completion" in note


@pytest.mark.slow  # four trainings, one per size
def test_api_scale_plots_four_sizes(client):
    curves, by_params, by_compute, status = client.predict(RUNS.SCALE_STEPS[0], 0, api_name="/pretrain_scale")
    finals = by_params["data"]
    assert len(finals) == len(RUNS.SCALE_SIZES) and "4 sizes" in status
    params = [row[0] for row in finals]
    assert params == sorted(params)  # smallest first, as trained
    assert len({row[2] for row in curves["data"]}) == len(RUNS.SCALE_SIZES)


def test_stop_button_through_the_api_keeps_the_model_and_says_so(client):
    job = client.submit(RUNS.DEFAULT_TEXT_SIZE, RUNS.TEXT_STEPS[1], 11, "The ", api_name="/pretrain_text")
    deadline = time.monotonic() + 300
    # until it has learnt a little
    while not any(re.search(r"Training… step [1-9]", str(frame[4])) for frame in job.outputs()):
        assert time.monotonic() < deadline and not job.done(), job.outputs()[-1:] or "no frame"
        time.sleep(0.1)
    client.predict(api_name="/pretrain_stop_text")  # same client = same session: stops this visitor's run only
    curve, samples, _, _, status = job.result(timeout=300)[:5]
    last_step = max(row[0] for row in curve["data"])
    assert "Stopped at step" in status and last_step < RUNS.TEXT_STEPS[1], status
    assert f"**step {last_step}** (held-out loss" in samples  # the weights at the stop were kept and sampled
    # ... and the stopped model answers questions
    _, bars, _, _ = client.predict("The ", last_step, api_name="/pretrain_ask_text")
    assert len(bars["data"]) == show.TOP_BYTES


def test_stop_at_once_keeps_one_checkpoint_per_step():
    config = training.TextConfig(layers=1, width=32, heads=1, steps=50, batch=4)
    run = training.train_run(config, should_stop=lambda: True)
    assert run.stopped == "stop" and [c.step for c in run.checkpoints] == [0]


def test_every_plotted_number_reaches_vega_as_a_number(text_run):
    """gradio tells vega a column's type from its dtype; a numeric column holding a reserved
    None (a series' colour kept for later) must still be 'quantitative', or the axis becomes a
    list of labels and the line draws nothing (seen on the scale panel)."""
    import gradio as gr

    untrained = training.Run(text_run.config, text_run.device)  # no checkpoint yet: reserved rows
    frames = {"curve, untrained": (show.loss_curve(untrained), "step", "loss"),
              "curve": (show.loss_curve(text_run), "step", "loss")}
    curves, by_params, by_compute = show.scaling_tables([text_run], ["a", "b", text_run and show.size_name(text_run)])
    frames.update({"scale curves": (curves, "log10_flops", "log10_loss"),
                   "by parameters": (by_params, "log10_params", "held_out_loss"),
                   "by compute": (by_compute, "log10_flops", "held_out_loss")})
    for name, (frame, x, y) in frames.items():
        types = gr.LinePlot(x=x, y=y).postprocess(frame).datatypes
        assert types[x] == types[y] == "quantitative", (name, types)
