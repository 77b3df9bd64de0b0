"""The text tabs on a text server (gallery/text_server.py), against llama.cpp's own `llama-server`
on loopback serving the bundled SmolLM2 GGUF, with the in-process llama.cpp engine as the
reference: the same bars within 1e-3, the visitor's word, generation, the prompting rows streamed
at once, and each fault (down at start, dying mid-request, slow, a model not on the list, a
wrong key). The server is built by `bash scripts/setup.sh dev`; without it these tests fail and
say how to build it (they do not skip)."""

from __future__ import annotations

import logging
import threading
import time

import pytest
import torch


from demos.next_word import reveal as NWR
from demos.next_word import distribution as NWD
from demos.next_word import extend as NWE
from demos.prompting import compare as PC, prompts as PP, run as PR
from gallery import catalog, engines, models, settings, text_server
from gallery.errors import ModelUnavailable
from gallery.text_engine import LlamaCppEngine, why_unusable
from tests.support import llama_server
from tests.support.llama_server import LlamaServer

pytestmark = pytest.mark.real_weights

ENTRY = catalog.EMBEDDED_LM
LABEL = ENTRY.label
FILE_NAME = catalog.bundled_file(ENTRY).file_name  # what llama-server lists without an alias
PROMPTS = [  # the fixed prompt set: words, numbers, code, a multi-byte script and an emoji
    "The capital of France is", "The cat sat on the", "Once upon a time, there was a little",
    "The opposite of hot is", "2 + 2 =", "def add(a, b):\n    return", "東京は日本の", "I love pizza 🍕 and",
    "Monday, Tuesday,", "The chemical symbol for water is",
]
TOLERANCE = 1e-3


def _server_or_fail(**kw) -> LlamaServer:
    reason = llama_server.missing_reason()
    if reason:
        pytest.fail(reason)  # a missing server is a broken dev set-up, not a feature to skip
    return LlamaServer(**kw)


@pytest.fixture(scope="module")
def server():
    with _server_or_fail() as running:
        yield running


@pytest.fixture
def using(server):
    """The text tabs pointed at the shared server for one test, and back to in-process after."""
    line = text_server.start(url=server.url, model=FILE_NAME)
    assert "on the text server" in line, line
    yield server
    text_server.start(url="")


@pytest.fixture
def own_server():
    """A server of this test's own (it gets killed or frozen)."""
    running = _server_or_fail(parallel=4, ctx=4096)
    yield running
    running.stop()
    text_server.start(url="")


@pytest.fixture
def in_process():
    """(model, tokenizer, the reference): a llama.cpp engine of this test's own, fresh. (The
    app's shared engine is not the reference: after some other requests its numbers for a text
    moved by up to 0.045 from a fresh engine's here, which is the in-process engine's own matter.)"""
    lm, tokenizer = models.load_causal_lm(ENTRY)
    problem = why_unusable(catalog.gguf_file(ENTRY))
    assert problem is None, problem
    engine = LlamaCppEngine(catalog.gguf_file(ENTRY), n_ctx=4096, n_seq=8)
    yield lm, tokenizer, engine
    engine.close()


def _server_engine():
    engine = engines.load_text_engine(ENTRY)
    assert isinstance(engine, text_server.ServerEngine), text_server.status_line()
    return engine


# --- the numbers: the same as the in-process engine's --------------------------------------------
def test_the_server_is_the_one_the_dev_set_up_built_and_takes_the_engines_flags():
    import subprocess

    reason = llama_server.missing_reason()
    assert reason is None, reason
    helped = subprocess.run([str(llama_server.binary()), "--help"], capture_output=True, text=True, timeout=60)
    for flag in ("--flash-attn", "--no-repack", "--no-kv-unified", "--parallel", "--alias", "--api-key"):
        assert flag in helped.stdout, f"this llama-server has no {flag}"


def test_next_token_bars_agree_with_the_in_process_engine(using, in_process):
    lm, tokenizer, reference = in_process
    engine = _server_engine()
    assert engine.top_n == text_server.TOP_N  # llama.cpp accepts all the gallery asks for
    settings_list = [NWD.Sampling()] * len(PROMPTS)
    served = NWD.next_token_distributions(lm, tokenizer, PROMPTS, settings_list, engine=engine)
    local = NWD.next_token_distributions(lm, tokenizer, PROMPTS, settings_list, engine=reference)
    for text, a, b in zip(PROMPTS, served, local):
        assert a.engine.startswith("llama.cpp server at 127.0.0.1:") and FILE_NAME in a.engine
        assert a.top_n == text_server.TOP_N and b.top_n is None
        assert a.kept == text_server.TOP_N  # sampling draws from the server's top N, as the page says
        mine, theirs = dict(zip(a.token_ids, a.model_probs)), dict(zip(b.token_ids, b.model_probs))
        for token in set(mine) | set(theirs):  # every bar of either side, on the other side too
            p_server = mine.get(token)
            p_local = theirs.get(token)
            if p_server is None or p_local is None:  # only a near-tie at the twelfth bar may differ
                lowest_listed = min(a.model_probs[-1], b.model_probs[-1])
                assert min(x for x in (p_server, p_local) if x is not None) <= lowest_listed + TOLERANCE
                continue
            assert abs(p_server - p_local) <= TOLERANCE, (text, token, p_server, p_local)
    paris = served[0]
    assert paris.tokens[0] == "␣Paris" and abs(paris.model_probs[0] - 0.7678) < 5e-3  # the hand measurement


def test_every_token_the_server_lists_has_the_in_process_probability(using, in_process):
    lm, tokenizer, reference = in_process
    engine = _server_engine()
    for text in PROMPTS:
        ids = tokenizer(text)["input_ids"]
        server_p = engine.logits(ids).exp()
        local_p = reference.logits(ids).float().softmax(-1)
        listed = torch.isfinite(engine.logits(ids)).nonzero()[:, 0]
        assert len(listed) >= text_server.TOP_N
        gap = float((server_p[listed] - local_p[listed]).abs().max())
        assert gap <= TOLERANCE, (text, gap)
        # and they are the top N of the in-process distribution
        top_local = set(local_p.topk(text_server.TOP_N - 5).indices.tolist())
        assert top_local <= set(listed.tolist()), text


def test_top_k_inside_the_servers_list_reshapes_the_bars_as_in_process(using, in_process):
    lm, tokenizer, reference = in_process
    s = NWD.check_settings(0.8, 5, 0.9, NWD.vocab_size(lm))
    served = NWD.next_token_distribution(lm, tokenizer, "The cat sat on the", s, engine=_server_engine())
    local = NWD.next_token_distribution(lm, tokenizer, "The cat sat on the", s, engine=reference)
    assert served.token_ids[:5] == local.token_ids[:5]
    for a, b in zip(served.sampling_probs, local.sampling_probs):
        assert abs(a - b) <= TOLERANCE
    assert served.kept == local.kept


def test_the_visitors_word_piece_by_piece_and_beyond_the_top_n(using, in_process):
    lm, tokenizer, reference = in_process
    engine = _server_engine()
    text = "The capital of France is"
    for word in ("Paris", "Marseille", "the city of Paris"):  # one piece; three pieces; four words
        served = NWD.word_probability(lm, tokenizer, text, word, engine=engine)
        local = NWD.word_probability(lm, tokenizer, text, word, engine=reference)
        assert [p[1] for p in served.pieces] == [p[1] for p in local.pieces]
        assert not served.at_most
        assert abs(served.probability - local.probability) <= TOLERANCE
        assert [p[3] for p in served.pieces] == [p[3] for p in local.pieces]  # exact ranks inside the top N
    far = "Parisienne"  # ' Paris' first, then 'ienne' at rank 2,436 in-process
    served = NWD.word_probability(lm, tokenizer, text, far, engine=engine)
    local = NWD.word_probability(lm, tokenizer, text, far, engine=reference)
    assert local.pieces[1][3] > text_server.TOP_N  # the in-process engine puts its 2nd piece beyond the top N too
    assert served.pieces[1][3] > served.top_n == text_server.TOP_N and served.at_most
    assert local.probability <= served.probability  # the server's figure is a true upper bound
    assert abs(served.pieces[0][2] - local.pieces[0][2]) <= TOLERANCE  # the first piece is still exact
    text_shown, prob, rank, _ = NWR.on_guess(text, LABEL, far, 1.0, 0, 1.0)
    assert "at most" in text_shown and f"beyond its top {text_server.TOP_N} tokens" in text_shown and rank == "1"
    assert prob.startswith("at most ")
    first_beyond = "xylophone"  # its first piece is beyond the list: no rank, in words
    text_shown, prob, rank, _ = NWR.on_guess(text, LABEL, first_beyond, 1.0, 0, 1.0)
    assert (f"beyond the text server's top {text_server.TOP_N}" in text_shown
            and rank == f"beyond the top {text_server.TOP_N}")
    local = NWD.word_probability(lm, tokenizer, text, first_beyond, engine=reference)
    assert local.rank > text_server.TOP_N and local.probability <= float(prob.removeprefix("at most "))


def test_greedy_generation_takes_the_in_process_tokens_and_sampling_repeats_with_its_seed(using, in_process):
    lm, tokenizer, reference = in_process
    engine = _server_engine()
    greedy = NWD.Sampling(temperature=0.0)
    served = NWE.generate_tokens(lm, tokenizer, "The capital of France is", greedy, 12, 0, engine=engine)
    local = NWE.generate_tokens(lm, tokenizer, "The capital of France is", greedy, 12, 0, engine=reference)
    assert [s.token_id for s in served.steps] == [s.token_id for s in local.steps]
    for a, b in zip(served.steps, local.steps):
        assert abs(a.model_prob - b.model_prob) <= TOLERANCE
    assert served.engine.startswith("llama.cpp server")
    sampled = NWD.Sampling(temperature=1.0)
    first = NWE.generate_tokens(lm, tokenizer, "Once upon a time", sampled, 10, 7, engine=engine)
    again = NWE.generate_tokens(lm, tokenizer, "Once upon a time", sampled, 10, 7, engine=engine)
    assert first.text == again.text and len(first.steps) >= 1


def _slots_busy(server: LlamaServer) -> int:
    import httpx

    slots = httpx.get(f"http://127.0.0.1:{server.port}/slots", timeout=5).json()
    return sum(1 for slot in slots if slot.get("is_processing"))


def test_prompting_rows_stream_at_once_and_read_as_in_process(using, in_process):
    lm, tokenizer, reference = in_process
    engine = _server_engine()
    problem_set = PP.problem_sets()["Capital cities"]
    problem = problem_set.items[0]
    strategies = list(PP.BASIC_STRATEGIES)
    greedy = PP.RunSettings(temperature=0.0, max_new_tokens=48)
    busy = []
    watching = threading.Event()

    def watch():
        while not watching.is_set():
            busy.append(_slots_busy(using))
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        served = list(PR.compare_strategies(lm, tokenizer, problem.question, problem.answer, problem.kind,
                                            strategies, problem_set, greedy, engine=engine))[-1]
    finally:
        watching.set()
        watcher.join()
    local = list(PR.compare_strategies(lm, tokenizer, problem.question, problem.answer, problem.kind,
                                       strategies, problem_set, greedy, engine=reference))[-1]
    assert max(busy) >= 2, f"the rows never ran at once on the server (busy slots seen: {sorted(set(busy))})"
    for a, b in zip(served, local):
        assert a.finished and a.strategy == b.strategy
        assert a.texts == b.texts, a.strategy  # greedy: the same replies, stopped at the answer
        assert a.answer == b.answer


def test_streamed_rows_keep_bytes_the_server_holds_back_inside_a_character(using, in_process):
    """llama-server sends a token that ends inside a UTF-8 character with the next one; the row
    must still read as the in-process engine's (the same text, whole characters)."""
    lm, tokenizer, reference = in_process
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Write the Japanese word for Tokyo, 東京, three times."}],
        add_generation_prompt=True, tokenize=False)

    def reply(engine) -> list[int]:
        return list(PR.stream_generate(lm, tokenizer, [prompt], [0.0], 0, 24, engine=engine))[-1].tokens[0]

    served, local = reply(_server_engine()), reply(reference)
    halves = [t for t in local[:-1] if "\ufffd" in tokenizer.decode([t])]
    assert halves, tokenizer.decode(local)  # the check needs tokens that end inside a character
    # The same text; only a character the token budget cut in two at the very end is missing
    # (llama-server never sends its first bytes), where the in-process reply shows it as '�'.
    assert tokenizer.decode(served) == tokenizer.decode(local).removesuffix("\ufffd")
    assert "\ufffd" not in tokenizer.decode(served)


def test_self_consistency_samples_differ_and_repeat_with_the_seed(using, in_process):
    lm, tokenizer, _ = in_process
    engine = _server_engine()
    problem_set = PP.problem_sets()["Capital cities"]
    problem = problem_set.items[1]
    sampling = PP.RunSettings(samples=4, sc_temperature=1.0, seed=3, max_new_tokens=32)

    def run():
        return list(PR.compare_strategies(lm, tokenizer, problem.question, problem.answer, problem.kind,
                                          [PP.SELF_CONSISTENCY], problem_set, sampling, engine=engine))[-1][0]

    first, again = run(), run()
    assert len(first.texts) == 4 and len(set(first.texts)) > 1
    assert first.texts == again.texts


# --- faults ------------------------------------------------------------------------------------
def _note(outputs) -> str:
    return outputs[4]  # on_reveal: [model bars, sampling bars, table, tokens, note, *buttons]


def test_down_at_start_the_tabs_fall_back_and_the_page_says_so(in_process):
    nowhere = f"http://127.0.0.1:{llama_server.free_port()}/v1"
    try:
        line = text_server.start(url=nowhere, model=FILE_NAME)
        assert "set aside" in line and "cannot be reached" in line
        assert isinstance(engines.load_text_engine(ENTRY), LlamaCppEngine)
        note = _note(NWR.on_reveal("The capital of France is", LABEL, 1.0, 0, 1.0))
        assert "llama.cpp, " in note  # the in-process engine answered
        assert f"The text server at {nowhere.removeprefix('http://').removesuffix('/v1')} is not answering" in note
        assert "own engine" in note
        summary = list(PC.on_compare(LABEL, "What is the capital of Italy?", "Rome", ["zero-shot"], PC.NO_GUESS,
                                    1, 1, 0.0, 0.7, 0, 16, "Capital cities"))[-1][0]
        assert "is not answering" in summary
    finally:
        text_server.start(url="")


def test_dying_mid_request_is_a_plain_sentence_and_the_next_request_falls_back(own_server, in_process):
    import gradio as gr

    text_server.start(url=own_server.url, model=FILE_NAME)
    assert isinstance(engines.load_text_engine(ENTRY), text_server.ServerEngine)
    problem_set = PP.problem_sets()["Arithmetic word problems"]
    problem = problem_set.items[0]
    ask = (LABEL, problem.question, problem.answer, [PP.STRATEGIES[2]], PC.NO_GUESS, 1, 1, 0.0, 0.7, 0, 400,
           problem_set.name)
    shown_first = None
    with pytest.raises(gr.Error) as shown:  # what the visitor sees: the handler's plain words
        for step, outputs in enumerate(PC.on_compare(*ask)):
            shown_first = shown_first or outputs
            if step == 3:  # tokens are streaming in
                own_server.kill()
    message = str(shown.value)
    assert "failed during this request" in message and "next request runs on the gallery's own engine" in message
    assert "Traceback" not in message and "Error:" not in message
    assert shown_first is not None and "Run by the **llama.cpp server" in shown_first[0]  # it was the server's
    # the next request runs in-process, and the page says why
    assert isinstance(engines.load_text_engine(ENTRY), LlamaCppEngine)
    summary = list(PC.on_compare(*ask[:10], 24, ask[11]))[-1][0]
    assert "is not answering" in summary
    note = _note(NWR.on_reveal("The capital of France is", LABEL, 1.0, 0, 1.0))
    assert "llama.cpp, " in note and "is not answering" in note


def test_dying_between_next_word_steps_is_a_plain_sentence(own_server, in_process):
    text_server.start(url=own_server.url, model=FILE_NAME)
    lm, tokenizer, _ = in_process
    engine = _server_engine()
    killer = threading.Timer(0.3, own_server.kill)
    killer.start()
    with pytest.raises(ModelUnavailable, match="failed during this request"):
        NWE.generate_tokens(lm, tokenizer, "Once upon a time", NWD.Sampling(temperature=1.0), 50, 1, engine=engine)
        NWE.generate_tokens(lm, tokenizer, "Once upon a time", NWD.Sampling(temperature=1.0), 50, 2, engine=engine)
    killer.join()
    assert isinstance(engines.load_text_engine(ENTRY), LlamaCppEngine)


def test_a_slow_server_cannot_stretch_the_time_limit_and_is_used_again_once_it_answers(own_server, in_process,
                                                                                        monkeypatch):
    monkeypatch.setattr(settings, "TEXT_SERVER_TIMEOUT_S", 2.0)
    text_server.start(url=own_server.url, model=FILE_NAME)
    lm, tokenizer, _ = in_process
    engine = _server_engine()
    own_server.pause()  # accepts connections, answers nothing
    try:
        started = time.monotonic()
        with pytest.raises(ModelUnavailable, match="no answer within 2 s"):
            NWD.next_token_distribution(lm, tokenizer, "The cat sat on the", engine=engine)
        waited = time.monotonic() - started
        assert waited < 2.0 + 3.0, f"the request waited {waited:.1f} s with a 2 s limit"
        assert isinstance(engines.load_text_engine(ENTRY), LlamaCppEngine)  # set aside meanwhile
    finally:
        own_server.resume()
    monkeypatch.setattr(text_server, "RECHECK_S", 0.0)
    assert isinstance(engines.load_text_engine(ENTRY), text_server.ServerEngine)  # asked again: it answers


def test_a_slow_stream_cannot_stretch_the_time_limit(own_server, in_process, monkeypatch):
    monkeypatch.setattr(settings, "TEXT_SERVER_TIMEOUT_S", 2.0)
    text_server.start(url=own_server.url, model=FILE_NAME)
    lm, tokenizer, _ = in_process
    engine = _server_engine()
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "Tell me a long story."}],
                                           add_generation_prompt=True, tokenize=False)
    rows = PR.stream_generate(lm, tokenizer, [prompt, prompt], [0.0, 0.8], 0, 300, engine=engine, every_s=0.0)
    started = None
    with pytest.raises(ModelUnavailable, match="no answer within 2 s"):
        for step, _ in enumerate(rows):
            if step == 2:
                own_server.pause()
                started = time.monotonic()
    own_server.resume()
    assert started is not None and time.monotonic() - started < 2.0 + 3.0


def test_a_model_not_on_the_allow_list_is_refused_at_start_in_words(in_process):
    with _server_or_fail(alias="my-private-finetune", parallel=2, ctx=2048) as stranger:
        try:
            line = text_server.start(url=stranger.url, model="")
            assert "not used" in line and "'my-private-finetune' is not on the gallery's list" in line
            assert isinstance(engines.load_text_engine(ENTRY), LlamaCppEngine)
            note = _note(NWR.on_reveal("The capital of France is", LABEL, 1.0, 0, 1.0))
            assert "is not used" in note and "my-private-finetune" in note and "llama.cpp, " in note
            line = text_server.start(url=stranger.url, model="gpt-4o")  # named, not on the list: never asked
            assert "'gpt-4o' is not on the gallery's list" in line
            line = text_server.start(url=stranger.url, model=FILE_NAME)  # on the list, not what it serves
            assert "does not serve" in line
        finally:
            text_server.start(url="")


def test_the_key_is_sent_and_never_logged(in_process, caplog):
    key = "sk-gallery-test-0d9f"
    with _server_or_fail(parallel=2, ctx=2048, api_key=key) as guarded:
        try:
            with caplog.at_level(logging.DEBUG):
                wrong = text_server.start(url=guarded.url, model=FILE_NAME, key="not-the-key")
                right = text_server.start(url=guarded.url, model=FILE_NAME, key=key)
                engine = _server_engine()
                NWD.next_token_distribution(*in_process[:2], "The cat sat on the", engine=engine)
                guarded.kill()
                with pytest.raises(ModelUnavailable) as failure:
                    NWD.next_token_distribution(*in_process[:2], "The cat sat on the", engine=engine)
            assert "API key" in wrong and "on the text server" in right
            said = [r.getMessage() for r in caplog.records]
            said += [wrong, right, str(failure.value), text_server.status_line()]
            assert not any(key in line or "not-the-key" in line for line in said)
        finally:
            text_server.start(url="")


def test_unset_nothing_changes(in_process):
    text_server.start(url="")
    assert isinstance(engines.load_text_engine(ENTRY), LlamaCppEngine)
    assert text_server.notice(ENTRY) is None
    d = NWD.next_token_distribution(*in_process[:2], "The capital of France is", engine=in_process[2])
    assert d.top_n is None
    note = _note(NWR.on_reveal("The capital of France is", LABEL, 1.0, 0, 1.0))
    assert "text server" not in note


def test_both_shapes_of_completions_log_probabilities_are_read():
    """llama.cpp's shape is read live above; OpenAI's legacy shape (what vLLM sends, with token
    ids as 'token_id:<id>' when asked) is read the same way, and one without ids is refused."""
    llama = {"choices": [{"logprobs": {"content": [
        {"id": 7, "logprob": -0.5, "bytes": [32, 80],
         "top_logprobs": [{"id": 7, "logprob": -0.5}, {"id": 9, "logprob": -1.5}]}]}}]}
    openai = {"choices": [{"logprobs": {"tokens": ["token_id:7"], "token_logprobs": [-0.5],
                                        "top_logprobs": [{"token_id:7": -0.5, "token_id:9": -1.5}]}}]}
    for answer in (llama, openai):
        [step] = text_server.logprob_steps(answer)
        assert (step.token, step.logprob, sorted(step.listed)) == (7, -0.5, [(7, -0.5), (9, -1.5)])
    with pytest.raises(ModelUnavailable, match="names its tokens by text"):
        text_server.logprob_steps({"choices": [{"logprobs": {"tokens": [" Paris"], "token_logprobs": [-0.5],
                                                              "top_logprobs": [{" Paris": -0.5}]}}]})
