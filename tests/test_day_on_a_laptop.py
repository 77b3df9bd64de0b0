"""A day on one laptop: two lanes, a temporary folder that stays bounded, a short soak, and the
llama.cpp engine against transformers on the bundled model."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

from gallery import housekeeping, ui

SOAK_SETTINGS = {  # sweep every second, keep swept files 1 s at least, cap them at 50 kB
    "GALLERY_TEMP_SWEEP_S": "1",
    "GALLERY_TEMP_MIN_AGE_S": "1",
    "GALLERY_TEMP_MAX_MB": "0.05",
}
SOAK_CAP_MB = 0.05


# --- lanes -------------------------------------------------------------------------------------
SHORT = {"/next_word_bars", "/next_word_guess", "/clip_zero_shot"}
LONG = {"/next_word_generate", "/text_to_image", "/inpaint", "/prompting_compare", "/prompting_score", "/clip_few_shot"}


def test_short_requests_and_long_work_are_in_separate_lanes(tiny_dir):
    import app as gallery_app

    blocks = gallery_app.build_app()
    lane = {"/" + f.api_name: f.concurrency_id for f in blocks.fns.values() if f.api_name}
    limit = {"/" + f.api_name: f.concurrency_limit for f in blocks.fns.values() if f.api_name}
    assert {lane[name] for name in SHORT} == {ui.SHORT_LANE}
    assert {lane[name] for name in LONG} == {ui.LONG_LANE}
    assert {limit[name] for name in SHORT | LONG} == {1}  # one per lane: two model calls at most


# --- the temporary folder ----------------------------------------------------------------------
def _file(folder: Path, name: str, size: int) -> Path:
    """A file as gradio writes one: in a folder of its own. (Files are aged by ctime, which
    cannot be set, so the tests below move the sweep's age limits instead.)"""
    path = folder / name / "out.png"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"x" * size)
    return path


def test_sweep_removes_the_oldest_files_above_the_cap_and_empty_folders(tmp_path):
    paths = [_file(tmp_path, f"f{i}", 1000) for i in range(5)]
    time.sleep(0.05)
    newest = _file(tmp_path, "newest", 1000)
    # cap 2.5 kB: of 6 kB, the four oldest go (oldest first), the newest two stay
    removed = housekeeping.sweep(tmp_path, max_age_s=3600, max_bytes=2500, min_age_s=0)
    assert removed == 4
    left = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    assert left == sorted([paths[-1], newest])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f4", "newest"]  # empty folders gone


def test_sweep_keeps_young_files_and_files_gradio_keeps(tmp_path):
    young = _file(tmp_path, "young", 10_000)
    kept = _file(tmp_path, "kept", 10_000)

    class Component:
        keep_in_cache = {str(kept)}

    class Blocks:
        blocks = {1: Component()}
        temp_file_sets = [{str(young), str(kept)}]

    assert housekeeping.sweep(tmp_path, max_age_s=3600, max_bytes=0, blocks=Blocks(), min_age_s=60) == 0
    assert housekeeping.sweep(tmp_path, max_age_s=3600, max_bytes=0, blocks=Blocks(), min_age_s=0) == 1
    assert kept.is_file() and not young.exists()


def test_the_app_sets_gradio_delete_cache(tiny_dir):
    import app as gallery_app
    from gallery import settings

    blocks = gallery_app.build_app()
    assert blocks.delete_cache == (settings.TEMP_SWEEP_S, settings.TEMP_MAX_AGE_S)


def test_the_load_test_tells_a_plain_refusal_from_a_crash():
    from benchmarks.load_test import is_plain_refusal

    assert is_plain_refusal("Train a model first (press Train); then ask it.")
    for crash in ("", "None", "The upstream Gradio app has raised an exception but has not enabled verbose error "
                  "reporting. To enable, set show_error=True in launch().", "Traceback (most recent call last): ..."):
        assert not is_plain_refusal(crash), crash


# --- a short soak --------------------------------------------------------------------------------
def test_short_soak_has_no_failures_and_a_bounded_temporary_folder(tiny_dir):
    from benchmarks.load_test import report, run

    stats = run(users=6, duration_s=20, tiny_dir=str(tiny_dir), every_s=5, settle_s=4,
                server_settings=SOAK_SETTINGS)
    print(report(stats))
    assert stats["server_alive"]
    assert stats["failures"] == [] and stats["refusals"] == {}  # good values: nothing to refuse
    assert stats["done"] >= len(stats["endpoints"])
    assert len(stats["timeline"]) >= 5  # a memory and disk line every 5 s, and one when idle
    start, idle = stats["timeline"][0], stats["timeline"][-1]
    assert idle["label"] == "idle"
    # Uploads and results come and go; once idle, what stays is what gradio keeps (there at
    # the start) plus at most the cap. (Without the sweep every upload stays: several MB.)
    assert idle["temp_mb"] <= start["temp_mb"] + SOAK_CAP_MB, stats["timeline"]


# --- llama.cpp against transformers on the bundled model ---------------------------------------
CLOZE = [
    "The capital of France is",
    "The opposite of hot is",
    "One, two, three,",
    "The sun rises in the",
    "The Eiffel Tower is in",
    "Two plus two equals",
]


@pytest.mark.real_weights
@pytest.mark.parametrize("which", ["EMBEDDED_LM", "EMBEDDED_GEMMA"])
def test_llama_cpp_and_transformers_agree_on_the_top_token_of_the_bundled_model(which):
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (scripts/setup.sh builds it)")
    import torch

    from gallery import catalog, models
    from gallery.text_engine import LlamaCppEngine

    entry = getattr(catalog, which)
    lm, tokenizer = models.load_causal_lm(entry)  # transformers, fp32 dequantised (joins Gemma's chunks first)
    path = catalog.gguf_file(entry)
    assert path is not None and path.suffix == ".gguf", f"{entry.label} has no GGUF for llama.cpp"
    engine = LlamaCppEngine(path, n_ctx=512, n_seq=2)
    checked = 0
    try:
        for prompt in CLOZE:
            ids = tokenizer(prompt)["input_ids"]
            with torch.inference_mode():
                reference = lm(input_ids=torch.tensor([ids])).logits[0, -1]
            ours = engine.logits(ids)
            assert ours.shape == reference.shape
            p = reference.softmax(-1)
            first, second = p.topk(2).values.tolist()
            if first - second > 0.05:  # a clear winner (Q4_1 rounding can swap a near tie)
                checked += 1
                assert int(ours.argmax()) == int(reference.argmax()), prompt
            log_q = ours.float().log_softmax(-1)
            assert float((p * (p.log() - log_q)).sum()) < 0.1, prompt  # KL(transformers || llama.cpp)
        assert checked >= 4
    finally:
        engine.close()


@pytest.mark.real_weights
@pytest.mark.parametrize("which", ["EMBEDDED_LM", "EMBEDDED_GEMMA"])
def test_llama_cpp_gives_a_prompt_the_same_numbers_however_it_was_read(which):
    """The bars must not move when the same prompt is asked again: one piece, after another
    prompt that shares only its first token (the cached prefix is cut back), in two pieces, and
    beside other rows in one batch. (Repacked Q4_K weights made Gemma's differ by 0.010.)"""
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (scripts/setup.sh builds it)")
    import torch

    from gallery import catalog, models
    from gallery.text_engine import LlamaCppEngine

    entry = getattr(catalog, which)
    _, tokenizer = models.load_causal_lm(entry)  # joins Gemma's chunks before llama.cpp reads the file
    engine = LlamaCppEngine(catalog.gguf_file(entry), n_ctx=512, n_seq=4)
    prompt = tokenizer("The capital of France is")["input_ids"]
    other = tokenizer("Monday, Tuesday,")["input_ids"]
    try:
        whole = engine.logits(prompt)
        engine.logits(other)
        after_other = engine.logits(prompt)
        with engine._lock:  # noqa: SLF001 - read in two decode calls on a fresh sequence
            engine._forget(0)
            engine._read(0, prompt[:2])
            in_two = torch.from_numpy(engine._read(0, prompt)[0])
        in_a_batch = next(iter(engine.generate_batch([other, prompt, other], 1, lambda r, s, l: 0, set())))[1][1]
        for name, again in {"after another prompt": after_other, "in two pieces": in_two,
                            "beside other rows": in_a_batch}.items():
            gap = float((again.softmax(-1) - whole.softmax(-1)).abs().max())
            assert gap < 1e-5, f"{entry.label}, {name}: probabilities {gap:.4f} apart"
    finally:
        engine.close()


def _bundled_engine(which: str):
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (scripts/setup.sh builds it)")
    from gallery import catalog, models
    from gallery.text_engine import LlamaCppEngine

    entry = getattr(catalog, which)
    lm, tokenizer = models.load_causal_lm(entry)
    return lm, tokenizer, LlamaCppEngine(catalog.gguf_file(entry), n_ctx=1024, n_seq=6)


@pytest.mark.real_weights
def test_rows_with_the_same_prompt_share_its_cache_and_decode_as_one_row_alone():
    """Self-consistency's samples read their prompt once (the cache cells are shared): each copy
    must then decode exactly as the prompt does on its own, step for step."""
    _, tokenizer, engine = _bundled_engine("EMBEDDED_LM")
    prompt = tokenizer("Once upon a time, in a small village by the sea,")["input_ids"]
    greedy = lambda row, step, logits: int(logits.argmax())  # noqa: E731
    try:
        alone = [(tokens[0], rows[0]) for tokens, rows in engine.generate_batch([prompt], 12, greedy, set())]
        decoded = []
        real = engine._decode
        engine._decode = lambda entries, reading=False: (decoded.append(len(entries)), real(entries, reading))  # noqa: SLF001
        together = [(list(t), list(r)) for t, r in engine.generate_batch([prompt, prompt, prompt], 12, greedy, set())]
        for step, (tokens, rows) in enumerate(together):
            for row in range(3):
                assert tokens[row] == alone[step][0], (step, row)
                assert torch.allclose(rows[row], alone[step][1], atol=1e-4), (step, row)
        assert len(decoded) == 1 + 11  # the prompt read once (not three times), then one batch per step
    finally:
        engine.close()


@pytest.mark.real_weights
def test_a_request_gets_the_sequence_that_already_holds_its_start():
    """The next question of a set finds its worked examples already read: only the new end is decoded."""
    _, tokenizer, engine = _bundled_engine("EMBEDDED_LM")
    examples = tokenizer("Q: the opposite of hot? A: cold\nQ: the opposite of up? A: down\n")["input_ids"]
    question = tokenizer("Q: the opposite of big? A:", add_special_tokens=False)["input_ids"]
    try:
        for other in ("The cat sat on the", "One, two, three,", "Paris is in"):
            engine.logits(tokenizer(other)["input_ids"])  # other sequences hold other prompts
            engine.logits_batch([tokenizer(other)["input_ids"]])
        list(engine.generate_batch([tokenizer("Hello")["input_ids"], examples], 1, lambda r, s, l: 0, set()))
        decoded = []
        real = engine._decode
        engine._decode = lambda entries, reading=False: (decoded.append(len(entries)), real(entries, reading))  # noqa: SLF001
        list(engine.generate_batch([tokenizer("Paris is in")["input_ids"], examples + question], 1,
                                   lambda r, s, l: 0, set()))
        assert decoded == [1, len(question)], decoded  # the last token of the first; the question only
    finally:
        engine.close()
