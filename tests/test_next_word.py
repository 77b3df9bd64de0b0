"""Next-word tab: the bars equal the library's own computation, generation equals a seeded
`model.generate`, batching changes nothing, and bad input gets plain words (tiny models; the
`real_weights` tests use the bundled SmolLM2 through the launched app's API)."""

from __future__ import annotations

import re
import time

import httpx
import pytest
import torch
from gradio_client.exceptions import AppError

from demos import next_word

from demos.next_word import reveal as NWR

from demos.next_word import distribution as NWD, extend as NWE, panels as NWP
from gallery import catalog, inputs, models
from gallery.errors import InputError

LLAMA = "Tiny Llama (test)"
GPT2 = "Tiny GPT-2 (test)"
BUNDLED = catalog.EMBEDDED_LM.label


def _load(label):
    lm, tokenizer = models.load_causal_lm(catalog.by_label("next_word", label))
    return lm, tokenizer


def _reference_last_logits(lm, tokenizer, text: str) -> torch.Tensor:
    """A plain full forward pass (no batching, no logits_to_keep): the last position's logits."""
    ids = tokenizer(text, return_tensors="pt").input_ids
    with torch.no_grad():
        return lm(ids).logits[0, -1].double()


def _reference_sampling(logits: torch.Tensor, t: float, k: int, p: float) -> torch.Tensor:
    """softmax(logits / T) after top-k and top-p filtering, written out by hand (float64)."""
    x = logits.double() / t
    if k:
        x = x.masked_fill(x < x.topk(k).values[-1], float("-inf"))
    if p < 1:
        probs = x.softmax(-1)
        order = probs.argsort(descending=True)
        before = probs[order].cumsum(0) - probs[order]  # mass of the tokens ranked above each one
        drop = order[before >= p]
        drop = drop[drop != order[0]]  # the top token always stays
        x[drop] = float("-inf")
    return x.softmax(-1)


# --- the distribution --------------------------------------------------------------------------
@pytest.mark.parametrize("label", [LLAMA, GPT2])
@pytest.mark.parametrize("t,k,p", [(1.0, 0, 1.0), (0.5, 0, 1.0), (1.7, 20, 1.0), (0.3, 0, 0.5), (0.8, 50, 0.3)])
def test_bars_equal_softmax_of_tempered_logits_after_top_k_and_top_p(label, t, k, p):
    lm, tokenizer = _load(label)
    text = "The cat sat on the"
    d = NWD.next_token_distribution(lm, tokenizer, text, NWD.check_settings(t, k, p, NWD.vocab_size(lm)))
    logits = _reference_last_logits(lm, tokenizer, text)
    model = logits.softmax(-1)
    sampling = _reference_sampling(logits, t, k, p)
    assert d.token_ids == model.topk(NWD.TOP_BARS).indices.tolist()
    assert torch.allclose(torch.tensor(d.model_probs, dtype=torch.float64), model[d.token_ids], atol=1e-6)
    assert torch.allclose(torch.tensor(d.sampling_probs, dtype=torch.float64), sampling[d.token_ids], atol=1e-6)
    assert d.kept == int((sampling > 0).sum())
    if k:
        assert d.kept <= k


def test_temperature_zero_puts_everything_on_the_top_token():
    lm, tokenizer = _load(LLAMA)
    d = NWD.next_token_distribution(lm, tokenizer, "Once upon a time", NWD.check_settings(0, 0, 1, 400))
    assert d.sampling_probs[0] == 1.0 and sum(d.sampling_probs) == 1.0 and d.kept == 1
    assert d.token_ids[0] == int(_reference_last_logits(lm, tokenizer, "Once upon a time").argmax())


@pytest.mark.parametrize("label", [LLAMA, GPT2])  # GPT-2 has absolute positions: padding must not shift them
def test_one_batched_pass_equals_one_pass_per_prompt(label):
    lm, tokenizer = _load(label)
    texts = ["The cat", "The capital of France is Paris. The capital of Italy is", "🙂 日本語 mañana", "2 + 3 ="]
    ids = [tokenizer(t).input_ids for t in texts]
    batched = NWD.last_logits(lm, ids, NWD.pad_id(tokenizer))
    for row, text in enumerate(texts):
        assert torch.allclose(batched[row].double(), _reference_last_logits(lm, tokenizer, text), atol=1e-5)
    settings = [NWD.Sampling(), NWD.check_settings(0.7, 10, 0.9, 400), NWD.Sampling(0.0), NWD.Sampling(1.3)]
    together = NWD.next_token_distributions(lm, tokenizer, texts, settings)
    for text, s, d in zip(texts, settings, together):
        alone = NWD.next_token_distribution(lm, tokenizer, text, s)
        assert torch.allclose(torch.tensor(d.model_probs), torch.tensor(alone.model_probs), atol=1e-6)
        assert d.kept == alone.kept and d.pieces == alone.pieces


def test_the_batch_handler_gives_a_bad_request_its_own_note_and_serves_the_others():
    columns = NWR.on_reveal_batch(
        ["The cat sat", "", "Once upon", "x"], [LLAMA, LLAMA, GPT2, "no such model"], [1, 1, 0, 1], [0, 0, 0, 0],
        [1, 1, 1, 1],
    )
    notes = columns[4]
    assert "Tiny Llama" in notes[0] and "Tiny GPT-2" in notes[2]
    assert "Type a few words" in notes[1] and "Unknown model" in notes[3]
    alone = NWD.next_token_distribution(*_load(LLAMA), "The cat sat")
    assert columns[2][1] is None and list(columns[2][0]["id"]) == alone.token_ids
    with pytest.raises(Exception, match="Type a few words"):  # alone, a bad request is a plain error
        NWR.on_reveal_batch([""], [LLAMA], [1], [0], [1])


# --- readable tokens and the tokenization view ---------------------------------------------------
def test_tokens_are_shown_readably():
    _, tokenizer = _load(LLAMA)
    pieces = NWD.tokenization(tokenizer, tokenizer("The cat\nsat  🙂").input_ids)
    shown = "".join(piece for piece, _ in pieces)
    outside_bytes = re.sub(r"⟨[0-9A-F ]+⟩", "", shown)
    assert "␣cat" in shown and "↵" in shown and " " not in outside_bytes and "\n" not in shown
    assert "⟨F0 9F⟩" in shown or "🙂" in shown  # a partial emoji shows its bytes, never '�'
    assert "\ufffd" not in shown
    assert [int(i) for _, i in pieces] == tokenizer("The cat\nsat  🙂").input_ids
    assert NWD.visible_whitespace("\t\x07") == "⇥⟨07⟩" and NWD.visible_whitespace("") == "∅"


# --- your guess ----------------------------------------------------------------------------------
def test_guess_gets_a_space_like_a_written_word():
    assert NWD.guess_continuation("The capital of France is", "Paris") == " Paris"
    assert NWD.guess_continuation("The capital of France is ", "Paris") == "Paris"
    assert NWD.guess_continuation("Hello", ",") == ","
    assert NWD.guess_continuation("東京は日本の", "首都") == "首都"


@pytest.mark.parametrize("label", [LLAMA, GPT2])
def test_word_probability_chains_the_pieces(label):
    lm, tokenizer = _load(label)
    text, word = "Once upon a time there was a", "zebracorn"
    g = NWD.word_probability(lm, tokenizer, text, word, NWD.check_settings(0.7, 0, 1, 400))
    pieces = tokenizer(" " + word).input_ids
    assert len(pieces) > 1 and [p[1] for p in g.pieces] == pieces
    expected, context = 1.0, text
    for i, piece in enumerate(pieces):  # one full forward pass per piece, growing the text
        probs = _reference_last_logits(lm, tokenizer, context).softmax(-1)
        assert g.pieces[i][2] == pytest.approx(float(probs[piece]), rel=1e-4)
        assert g.pieces[i][3] == 1 + int((probs > probs[piece]).sum())
        expected *= float(probs[piece])
        context += tokenizer.decode([piece])
    assert g.probability == pytest.approx(expected, rel=1e-4)


def test_a_one_token_word_has_the_probability_and_rank_of_its_bar():
    lm, tokenizer = _load(LLAMA)
    d = NWD.next_token_distribution(lm, tokenizer, "The cat sat on the")
    top_text = tokenizer.decode([d.token_ids[0]])
    g = NWD.word_probability(lm, tokenizer, "The cat sat on the", top_text)
    assert [p[1] for p in g.pieces] == [d.token_ids[0]]
    assert g.probability == pytest.approx(d.model_probs[0], rel=1e-5) and g.rank == 1


# --- generation ----------------------------------------------------------------------------------
@pytest.mark.parametrize("t,k,p", [(1.0, 0, 1.0), (0.7, 20, 0.9), (1.5, 5, 1.0)])
def test_seeded_generation_equals_seeded_model_generate(t, k, p):
    lm, tokenizer = _load(LLAMA)
    text, seed, n = "The cat sat on the", 1234, 8
    s = NWD.check_settings(t, k, p, NWD.vocab_size(lm))
    rng_before = torch.get_rng_state()
    g = NWE.generate_tokens(lm, tokenizer, text, s, n, seed)
    assert torch.equal(torch.get_rng_state(), rng_before)  # the global RNG is left as it was
    ids = tokenizer(text, return_tensors="pt").input_ids
    torch.manual_seed(seed)
    with torch.no_grad():
        reference = lm.generate(
            ids, attention_mask=torch.ones_like(ids), do_sample=True, temperature=t, top_k=k, top_p=p,
            max_new_tokens=n, pad_token_id=tokenizer.pad_token_id,
        )
    assert [step.token_id for step in g.steps] == reference[0, ids.shape[1] :].tolist()
    assert g.seed == seed and NWE.generate_tokens(lm, tokenizer, text, s, n, seed).text == g.text
    # What the first step sampled from is what the bars showed for the same text and settings.
    d = NWD.next_token_distribution(lm, tokenizer, text, s)
    assert [tok for tok, _, _ in g.steps[0].top] == d.tokens
    assert torch.allclose(torch.tensor([q for _, _, q in g.steps[0].top]), torch.tensor(d.sampling_probs), atol=1e-5)


def test_temperature_zero_generation_is_greedy():
    lm, tokenizer = _load(GPT2)
    text = "Question: what is 2 + 3? Answer:"
    g = NWE.generate_tokens(lm, tokenizer, text, NWD.Sampling(0.0), 6, seed=1)
    ids = tokenizer(text, return_tensors="pt").input_ids
    with torch.no_grad():
        reference = lm.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=6,
                                pad_token_id=tokenizer.pad_token_id)
    assert [s.token_id for s in g.steps] == reference[0, ids.shape[1] :].tolist()
    assert all(s.sampling_prob == 1.0 for s in g.steps)


# --- bad input -----------------------------------------------------------------------------------
def test_settings_are_checked_and_clamped_with_a_note():
    for bad in [float("nan"), float("inf"), "warm", None]:
        with pytest.raises(InputError, match="Temperature must be"):
            NWD.check_settings(bad, 0, 1, 400)
    with pytest.raises(InputError, match="can't be negative"):
        NWD.check_settings(-0.5, 0, 1, 400)
    with pytest.raises(InputError, match="Top-p must be a finite"):
        NWD.check_settings(1, 0, float("nan"), 400)
    s = NWD.check_settings(99, 10**6, 7, 400)
    assert (s.temperature, s.top_k, s.top_p) == (NWD.MAX_TEMPERATURE, 0, 1.0) and len(s.notes) == 3
    s = NWD.check_settings(1, -3, -1, 400)
    assert (s.top_k, s.top_p) == (0, 0.0) and len(s.notes) == 2
    assert NWD.check_settings(1, 0, 1, 400).notes == ()  # 0 and 1 simply mean "off"


def test_a_huge_prompt_keeps_its_end_and_says_so():
    lm, tokenizer = _load(LLAMA)
    text = "The cat sat on the mat. " * 900 + "The dog sat on the"  # ~21,600 characters
    d = NWD.next_token_distribution(lm, tokenizer, text)
    assert len(d.prompt.ids) == min(NWD.MAX_PROMPT_TOKENS, NWD.context_length(lm))
    assert d.prompt.ids == tokenizer(text[-NWD.MAX_PROMPT_CHARS :]).input_ids[-len(d.prompt.ids) :]
    assert "characters long" in d.prompt.note and "last" in d.prompt.note
    for empty in ["", "   ", None]:
        with pytest.raises(InputError, match="Type a few words"):
            NWD.encode_prompt(tokenizer, empty)


def test_a_chip_tapped_before_a_new_reveal_records_the_distribution_of_its_own_text():
    """The chips may still show an earlier text's candidates when one is tapped (a new Reveal not
    yet answered). The step must record the distribution the model gives the text the token was
    appended to, not the chips' (it recorded the chips', and the history drew another text's bars);
    a chip whose token is not among that text's candidates is refused in words."""
    import gradio as gr
    import pandas as pd

    earlier, now = "Once upon a time there was a", "The cat sat on the"
    s = NWD.check_settings(1.0, 0, 1.0, 400)
    shown = NWD.next_token_distribution(*_load(GPT2), earlier, s)  # the chips on the page
    truth = NWD.next_token_distribution(*_load(GPT2), now, s)  # what the model gives the text now
    chips = pd.DataFrame({"token": shown.tokens, "id": shown.token_ids, "model p": shown.model_probs,
                          "p after settings": shown.sampling_probs})
    chips.loc[0, "id"] = truth.token_ids[3]  # a chip whose token the new text also has among its candidates
    chips.loc[1, "id"] = next(i for i in range(400) if i not in truth.token_ids)  # one it has not
    out = NWE.on_candidate(0)(now, GPT2, 1.0, 0, 1.0, chips, [])
    step = out[1][-1]
    assert step["context"] == now and step["token_id"] == truth.token_ids[3]
    assert [t for t, _, _ in step["top"]] == truth.tokens
    assert [p for _, p, _ in step["top"]] == pytest.approx(truth.model_probs, abs=1e-6)
    assert step["model_prob"] == pytest.approx(truth.model_probs[3], abs=1e-6)
    with pytest.raises(gr.Error, match="earlier text"):
        NWE.on_candidate(1)(now, GPT2, 1.0, 0, 1.0, chips, [])


# --- through the launched app's API -------------------------------------------------------------
def test_every_event_is_an_api_endpoint(client):
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert {"/next_word_bars", "/next_word_guess", "/next_word_append_candidate_1", "/next_word_sample",
            "/next_word_generate", "/next_word_inspect_step", "/next_word_clear_history",
            "/next_word_compare_models", "/next_word_base_vs_instruct", "/next_word_causal_vs_masked"} <= names


def test_api_distribution_equals_the_pure_function(client):
    text = "Once upon a time there was a little"
    result = client.predict(text, GPT2, 0.6, 30, 0.8, api_name="/next_word_bars")
    table, pieces, note = result[2], result[3], result[4]
    d = NWD.next_token_distribution(*_load(GPT2), text, NWD.check_settings(0.6, 30, 0.8, 400))
    assert [row[2] for row in table["data"]] == d.token_ids
    assert [row[4] for row in table["data"]] == [round(p, 4) for p in d.sampling_probs]
    assert [x["token"] for x in pieces] == [p for p, _ in d.pieces]
    assert "Tiny GPT-2" in note and f"{d.kept}" in note


@pytest.mark.parametrize(
    "args,expected",
    [
        (("", LLAMA, 1, 0, 1), "Type a few words"),
        (("x", LLAMA, -1, 0, 1), "can't be negative"),
        (("x", LLAMA, "hot", 0, 1), "Temperature must be a number"),
        (("x", "../../etc/passwd", 1, 0, 1), "Unknown model"),
    ],
)
def test_api_refuses_bad_input_in_plain_words(client, args, expected):
    with pytest.raises(AppError, match=expected):
        client.predict(*args, api_name="/next_word_bars")


def test_api_clamps_odd_values_with_a_visible_note(client):
    note = client.predict("x" * 20_000, LLAMA, 0, 10**6, 3, api_name="/next_word_bars")[4]
    assert "20,000 characters long" in note and "cuts nothing" in note and "Top-p 3 is outside 0–1; 1 was used" in note
    assert "temperature 0" in note
    note = client.predict("🙂 日本語 mañana", None, 1, 0, 1, api_name="/next_word_bars")[4]  # no model: the default
    assert "read" in note


def test_api_refuses_nan_sent_as_raw_json(app_url):
    # gradio_client cannot send NaN (strict JSON); a raw request can: it gets plain words too.
    body = '{"data": ["The cat", "%s", NaN, 0, 1]}' % LLAMA
    with httpx.Client(base_url=app_url, timeout=60) as http:
        event = http.post("/gradio_api/call/next_word_bars", content=body, headers={"content-type": "application/json"})
        assert event.status_code == 200, event.text
        stream = http.get(f"/gradio_api/call/next_word_bars/{event.json()['event_id']}").text
    assert "event: error" in stream and "Temperature must be a finite number" in stream


def test_api_guess(client):
    text = "The capital of France is Paris. The capital of Italy is"
    _, prob, rank, pieces = client.predict(text, LLAMA, "Rome", 1, 0, 1, api_name="/next_word_guess")
    g = NWD.word_probability(*_load(LLAMA), text, "Rome")
    # shown to 6 decimals (or 3 significant digits below 1e-5)
    assert float(prob) == pytest.approx(g.probability, abs=1e-6, rel=5e-3) and int(rank.replace(",", "")) == g.rank
    assert [row[1] for row in pieces["data"]] == [p[1] for p in g.pieces]
    # no guess: the boxes read "—", not a number that looks like an answer
    assert client.predict(text, LLAMA, "", 1, 0, 1, api_name="/next_word_guess")[1:3] == ("—", "—")


def test_api_generation_is_reproducible_with_the_seed_shown(client):
    text = "Once upon a time"
    first = client.predict(text, LLAMA, 0.9, 40, 0.95, 6, 77, False, api_name="/next_word_generate")
    again = client.predict(text, LLAMA, 0.9, 40, 0.95, 6, 77, False, api_name="/next_word_generate")
    g = NWE.generate_tokens(*_load(LLAMA), text, NWD.check_settings(0.9, 40, 0.95, 400), 6, 77)
    assert first[0] == again[0] == g.text and first[1] == 77 and "seed 77" in first[2]
    drawn = client.predict(text, LLAMA, 0.9, 40, 0.95, 2, 77, True, api_name="/next_word_generate")[1]
    assert isinstance(drawn, int) and 0 <= drawn <= inputs.MAX_SEED  # "new seed": the drawn one is returned
    clamped = client.predict(text, LLAMA, 1, 0, 1, 500, -5, False, api_name="/next_word_generate")
    assert ("N tokens 500 is outside 1–50; 50 was used" in clamped[2] and clamped[1] == 0
            and "Seeds are whole numbers" in clamped[2])


def test_api_compare_models_side_by_side(client):
    plot_a, plot_b, plot_c, note = client.predict("The cat sat on the", LLAMA, GPT2, NWP.NONE,
                                                  api_name="/next_word_compare_models")
    assert "Tiny Llama" in note and "Tiny GPT-2" in note
    assert plot_a["value"]["data"] != plot_b["value"]["data"] and plot_c["visible"] is False
    with pytest.raises(AppError, match="at least one model"):
        client.predict("The cat", NWP.NONE, NWP.NONE, NWP.NONE, api_name="/next_word_compare_models")


def test_concurrent_requests_are_batched_and_get_their_own_answers(client, monkeypatch):
    sizes: list[int] = []
    real = NWD.last_logits

    def recording(lm, id_lists, pad_id):
        sizes.append(len(id_lists))
        return real(lm, id_lists, pad_id)

    real_generate = NWE.generate_for

    def slow_generate(*args):
        time.sleep(1.5)
        return real_generate(*args)

    monkeypatch.setattr(NWD, "last_logits", recording)  # the app runs in this process
    monkeypatch.setattr(NWE, "generate_for", slow_generate)
    texts = ["The cat", "The dog sat", "A bird sang in the", "Once upon", "The capital of", "2 + 3 =", "mañana 🙂"]
    # A (slowed-down) generation holds the shared model slot while the next-token requests queue up.
    busy = client.submit("Once upon a time", LLAMA, 1, 0, 1, 2, 1, False, api_name="/next_word_generate")
    time.sleep(0.3)
    jobs = [client.submit(text, LLAMA, 1, 0, 1, api_name="/next_word_bars") for text in texts]
    results = [job.result(timeout=120) for job in jobs]
    busy.result(timeout=120)
    assert max(sizes) > 1, sizes  # at least two visitors shared a forward pass
    lm, tokenizer = _load(LLAMA)
    for text, result in zip(texts, results):
        alone = NWD.next_token_distribution(lm, tokenizer, text)
        assert [row[2] for row in result[2]["data"]] == alone.token_ids


# --- the bundled SmolLM2 (real weights) through the app's API -------------------------------------
@pytest.mark.real_weights
def test_real_model_says_paris_and_the_guess_matches_the_top_bar(client):
    model_bars, _, table, _, note = client.predict("The capital of France is", BUNDLED, 1, 0, 1,
                                                   api_name="/next_word_bars")
    top = table["data"][0]
    assert top[0] == 1 and top[1] == "␣Paris", table["data"][:3]
    text, prob, rank, _ = client.predict("The capital of France is", BUNDLED, "Paris", 1, 0, 1,
                                         api_name="/next_word_guess")
    prob = float(prob)
    assert rank == "1" and "␣Paris" in text
    bar_token, bar_value = model_bars["value"]["data"][0]
    assert bar_token == "␣Paris" and prob == pytest.approx(bar_value, abs=1e-6)
    assert prob == pytest.approx(top[3], abs=5e-5)


@pytest.mark.real_weights
def test_real_instruct_model_with_and_without_its_chat_template(client):
    base, plain, chat, note = client.predict("What is the capital of France?", api_name="/next_word_base_vs_instruct")
    # Offline the pre-trained-only bundled Gemma is the base panel, with the one-line caveat.
    assert f"**Base** ({catalog.EMBEDDED_GEMMA.label})" in note and "loose pair" in note.lower()
    assert base["value"]["data"] != plain["value"]["data"]
    assert plain["value"]["data"] != chat["value"]["data"] and "chat" in note


def test_size_comparison_of_two_families_says_it_is_loose():
    assert "different families (SmolLM2, Gemma)" in NWP.families_note([catalog.EMBEDDED_LM.label,
                                                                        catalog.EMBEDDED_GEMMA.label])
    assert NWP.families_note(["SmolLM2-135M (base)", "SmolLM2-360M (base)", "SmolLM2-1.7B (base)"]) == ""
    assert NWP.families_note([catalog.EMBEDDED_LM.label]) == ""


@pytest.mark.real_weights
def test_real_model_batched_pass_equals_one_pass_per_prompt():
    lm, tokenizer = _load(BUNDLED)
    texts = ["The capital of France is", "Once upon a time, in a land far away, there lived a", "🙂 日本語"]
    together = NWD.next_token_distributions(lm, tokenizer, texts, [NWD.Sampling()] * 3)
    for text, d in zip(texts, together):
        alone = NWD.next_token_distribution(lm, tokenizer, text)
        assert d.token_ids[:3] == alone.token_ids[:3]
        assert torch.allclose(torch.tensor(d.model_probs), torch.tensor(alone.model_probs), atol=1e-5)


# --- causal vs masked ------------------------------------------------------------------------------
TINY_BERT = "Tiny BERT (test)"


def _load_mlm():
    return models.load_masked_lm(catalog.by_label(NWP.MASK_ROLE, TINY_BERT))


@pytest.mark.parametrize("text", ["The cat sat on the [MASK].", "A bird [MASK] in the tree.",
                                  "The capital of France is [MASK]"])
def test_blank_equals_the_fill_mask_pipeline(text):
    from transformers import pipeline

    mlm, tokenizer = _load_mlm()
    blank = NWP.fill_blank(mlm, tokenizer, text)
    reference = pipeline("fill-mask", model=mlm, tokenizer=tokenizer, top_k=NWD.TOP_BARS)(text)
    assert blank.tokens == [NWD.visible_whitespace(r["token_str"].strip()) for r in reference]
    assert blank.probs == pytest.approx([r["score"] for r in reference], abs=1e-6)
    assert blank.probs == sorted(blank.probs, reverse=True) and 0 < sum(blank.probs) <= 1 + 1e-6


def test_blank_reads_both_sides_and_the_causal_side_only_what_comes_before():
    mlm, tokenizer = _load_mlm()
    assert NWP.split_blank("The cat sat on the [MASK] today.") == ("The cat sat on the", " today.", "")
    one, two = (NWP.fill_blank(mlm, tokenizer, t)
                for t in ("The cat sat on the [MASK].", "The cat sat on the [MASK] mat."))
    assert one.probs != two.probs  # the words after the blank change the masked model's odds
    no_blank = NWP.fill_blank(mlm, tokenizer, "The cat sat on the")
    assert no_blank.before == "The cat sat on the" and "at its end" in no_blank.note
    for bad, message in (("[MASK] sat on the mat", "before the"), ("a [MASK] b [MASK]", "one [MASK]"),
                         ("  ", "Type a sentence")):
        with pytest.raises(InputError, match=re.escape(message)):
            NWP.split_blank(bad)


def test_api_causal_vs_masked_matches_both_models_own_paths(client):
    text = "The cat sat on the [MASK]."
    causal_plot, masked_plot, note = client.predict(text, LLAMA, TINY_BERT, api_name="/next_word_causal_vs_masked")
    bars = client.predict("The cat sat on the", LLAMA, 1.0, 0, 1.0, api_name="/next_word_bars")[0]
    assert causal_plot["value"]["data"] == bars["value"]["data"]  # the causal side = the tab's own bars
    mlm, tokenizer = _load_mlm()
    blank = NWP.fill_blank(mlm, tokenizer, text)
    assert [row[0] for row in masked_plot["value"]["data"]] == NWD.unique_labels(blank.tokens)
    assert "Causal" in note and "Masked" in note
    with pytest.raises(AppError, match=re.escape("one [MASK]")):
        client.predict("a [MASK] b [MASK]", LLAMA, TINY_BERT, api_name="/next_word_causal_vs_masked")


def test_without_its_weights_the_masked_panel_says_so_and_names_the_fetch_command(monkeypatch):
    import gradio as gr

    from gallery import settings

    monkeypatch.setattr(settings, "TINY_MODELS_DIR", "")  # the real catalogue: DistilBERT from the Hub
    monkeypatch.setattr(settings, "OFFLINE", True)
    monkeypatch.setattr(catalog, "_in_hub_cache", lambda repo: False)  # its weights are not on this machine
    reason = catalog.missing_reason(catalog.all_models(NWP.MASK_ROLE)[0])
    assert "distilbert/distilbert-base-uncased" in reason and settings.PREFETCH_COMMAND in reason
    with gr.Blocks() as blocks:
        next_word.create_demo()
    button = next(b for b in blocks.blocks.values() if getattr(b, "elem_id", None) == "next-word-blank-run")
    assert button.interactive is False
    texts = [b.value for b in blocks.blocks.values() if isinstance(b, gr.Markdown) and isinstance(b.value, str)]
    assert any("distilbert/distilbert-base-uncased" in t and settings.PREFETCH_COMMAND in t for t in texts)
    with pytest.raises(gr.Error, match=re.escape(settings.PREFETCH_COMMAND)):
        NWP.on_causal_vs_masked("The cat sat on the [MASK].", None, None)


@pytest.mark.real_weights
@pytest.mark.parametrize("which", ["EMBEDDED_LM", "EMBEDDED_GEMMA"])
def test_the_same_text_draws_the_same_bars_whatever_was_asked_before(which):
    """Reveal the same text twice, with other texts asked in between: the bars must not move.
    (On some CPUs llama.cpp gave Gemma's "What is the capital of France?" probabilities 0.017
    apart the second time; the gallery then reads that model's bars with transformers.)"""
    label = getattr(catalog, which).label
    text = "What is the capital of France?"
    [first], _ = NWD.distributions_for(label, [text], [NWD.Sampling()])
    NWD.distributions_for(label, ["Write a haiku about the sea.", "The capital of France is"], [NWD.Sampling()] * 2)
    [again], _ = NWD.distributions_for(label, [text], [NWD.Sampling()])
    assert first.tokens == again.tokens
    gap = max(abs(a - b) for a, b in zip(first.model_probs, again.model_probs))
    assert gap < 1e-5, f"{label} ({first.engine}): the same text's bars moved by {gap:.4f}"
