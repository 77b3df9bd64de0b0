"""The llama.cpp engine (`gallery/text_engine.py`) on the bundled models: against transformers,
the same numbers however a prompt was read, rows that share a prompt, and a request finding the
sequence that already holds its start."""

from __future__ import annotations

import pytest
import torch

pytestmark = [pytest.mark.real_weights, pytest.mark.no_models]  # the bundled models, no tiny one

CLOZE = [
    "The capital of France is",
    "The opposite of hot is",
    "One, two, three,",
    "The sun rises in the",
    "The Eiffel Tower is in",
    "Two plus two equals",
]


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


@pytest.mark.parametrize("which", ["EMBEDDED_LM", "EMBEDDED_GEMMA"])
def test_llama_cpp_gives_a_prompt_the_same_numbers_however_it_was_read(which):
    """The bars must not move when the same prompt is asked again: one piece, after another
    prompt that shares only its first token (the cached prefix is cut back), in two pieces, and
    beside other rows in one batch. (Repacked Q4_K weights made Gemma's differ by 0.010.)"""
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (scripts/setup.sh builds it)")

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
        fresh = LlamaCppEngine(catalog.gguf_file(entry), n_ctx=512, n_seq=1)  # one sequence, empty
        try:  # read in two decode calls: its first two tokens, then the rest after them
            fresh.logits(prompt[:2])
            in_two = fresh.logits(prompt)
        finally:
            fresh.close()
        first_step = next(iter(engine.generate_batch([other, prompt, other], 1, lambda row, step, logits: 0, set())))
        in_a_batch = first_step[1][1]
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


def test_a_request_gets_the_sequence_that_already_holds_its_start():
    """The next question of a set finds its worked examples already read: only the new end is decoded."""
    _, tokenizer, engine = _bundled_engine("EMBEDDED_LM")
    examples = tokenizer("Q: the opposite of hot? A: cold\nQ: the opposite of up? A: down\n")["input_ids"]
    question = tokenizer("Q: the opposite of big? A:", add_special_tokens=False)["input_ids"]
    try:
        for other in ("The cat sat on the", "One, two, three,", "Paris is in"):
            engine.logits(tokenizer(other)["input_ids"])  # other sequences hold other prompts
            engine.logits_batch([tokenizer(other)["input_ids"]])
        list(engine.generate_batch([tokenizer("Hello")["input_ids"], examples], 1, lambda row, step, logits: 0, set()))
        decoded = []
        real = engine._decode
        engine._decode = lambda entries, reading=False: (decoded.append(len(entries)), real(entries, reading))  # noqa: SLF001
        list(engine.generate_batch([tokenizer("Paris is in")["input_ids"], examples + question], 1,
                                   lambda row, step, logits: 0, set()))
        assert decoded == [1, len(question)], decoded  # the last token of the first; the question only
    finally:
        engine.close()
