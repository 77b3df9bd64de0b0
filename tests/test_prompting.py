"""The prompting tab: answer reading, prompts, votes and tables (pure), batched generation on the
tiny checkpoint against one-prompt-at-a-time `generate`, and the launched app's API."""

from __future__ import annotations

import math
import re
import threading
import time

import pandas as pd
import pytest
import torch
from gradio_client.exceptions import AppError

from demos.prompting import answers as PA, compare as PC, prompts as PP, run as PR
from gallery import catalog, engines, models
from gallery.errors import InputError
from tests.support.tiny_models import CHAT_TEMPLATE


# --- answer extraction ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, kind, expected",
    [
        # numbers: markers, commas, units, money, negatives, decimals
        ("The answer is 18.", "number", "18"),
        ("Answer: 42", "number", "42"),
        ("answer = 7", "number", "7"),
        ("Final answer: 1,485 books.", "number", "1485"),
        ("The answer is 15,000 bottles.", "number", "15000"),
        ("The answer is $3.60.", "number", "3.6"),
        ("The answer is 8.5 hours", "number", "8.5"),
        ("The answer is -16.", "number", "-16"),
        ("so 3 − 7 = −4. The answer is −4.", "number", "-4"),  # unicode minus
        ("The answer is 250g", "number", "250"),
        ("The answer is 45%.", "number", "45"),
        ("The answer is 3 × 12 − 9 = 27.", "number", "27"),  # the part after the last "="
        ("The answer is: 36", "number", "36"),
        ("**The answer is 9**", "number", "9"),
        ("So the total is \\boxed{164}.", "number", "164"),
        ("The answer is 10. Earlier I said the answer is 12, but the answer is 14.", "number", "14"),
        ("The answer is five.", "number", "5"),
        ("The answer is 1,2,3", "number", "1"),  # not a thousands comma
        ("First 12, then 30, so we get 42", "number", "42"),  # last-number fallback
        ("He has 24 - 6 = 18 marbles left.\n#### 18", "number", "18"),
        ("no digits at all", "number", None),
        ("", "number", None),
        ("The answer is 1250.0", "number", "1250"),
        ("The answer is 0.75 dollars.", "number", "0.75"),
        # clock times, 24-hour canonical
        ("The answer is 21:15.", "time", "21:15"),
        ("The answer is 9:15 pm.", "time", "21:15"),
        ("The answer is 12:30 a.m.", "time", "00:30"),
        ("It lands at 01:40", "time", "01:40"),
        ("The answer is 7 pm", "time", "19:00"),
        ("It starts at 10:40, so it ends at 11.30", "time", "11:30"),
        # weekday and month names
        ("The answer is Monday.", "calendar", "Monday"),
        ("Friday plus 3 days is monday", "calendar", "Monday"),
        ("The answer is february", "calendar", "February"),
        ("The answer is Tuesday, not Sunday.", "calendar", "Tuesday"),
        # words
        ("The answer is 'reward'.", "word", "reward"),
        ('The answer is "nte".', "word", "nte"),
        ("The answer is the letter r.", "word", "r"),
        ("Answer: Lake", "word", "lake"),
        ("The word backwards is desserts", "word", "desserts"),  # last-word fallback
        ("sunflower", "word", "sunflower"),
        # lists
        ("The answer is: fish, dog and cat.", "list", "fish, dog, cat"),
        ("The answer is four, three, two, one.", "list", "four, three, two, one"),
        ("Sorted: 3, 7, 19, 42", "list", "3, 7, 19, 42"),
        ("The answer is [Oslo, Rome, Paris]", "list", "oslo, rome, paris"),
        ("bread milk eggs", "list", "bread, milk, eggs"),
        ("Emoji 🙂 with no answer 🚀", "word", "answer"),
        # free phrases
        ("The answer is New York.", "text", "new york"),
        ("It is the capital:\nNew  York", "text", "new york"),
    ],
)
def test_extract_answer(text, kind, expected):
    assert PA.extract_answer(text, kind) == expected


@pytest.mark.parametrize(
    "predicted, expected, kind, verdict",
    [
        ("15000", "15,000", "number", True),
        ("3.6", "3.60", "number", True),
        ("-4", "−4", "number", True),
        ("17", "18", "number", False),
        ("21:15", "9:15 pm", "time", True),
        ("Monday", "monday", "calendar", True),
        ("lake", "Lake", "word", True),
        ("oslo, rome, paris", "Oslo, Rome, Paris", "list", True),
        ("rome, oslo, paris", "Oslo, Rome, Paris", "list", False),
        (None, "18", "number", False),
        ("18", None, "number", None),
        ("18", "  ", "number", None),
    ],
)
def test_is_correct(predicted, expected, kind, verdict):
    assert PA.is_correct(predicted, expected, kind) is verdict


@pytest.mark.parametrize(
    "expected, kind",
    [("18", "number"), ("-3.5", "number"), ("1,250", "number"), ("21:15", "time"), ("9:15 pm", "time"),
     ("Monday", "calendar"), ("reward", "word"), ("a, b, c", "list"), ("New York", "text"), ("", "calendar")],
)
def test_guess_kind(expected, kind):
    assert PA.guess_kind(expected, default="calendar") == kind


# --- the problem sets ----------------------------------------------------------------------------
def test_problem_sets_are_complete_and_exemplars_are_kept_apart():
    sets = PP.problem_sets()
    assert len(sets) >= 3
    ids = set()
    for problem_set in sets.values():
        assert len(problem_set.items) >= 30 and len(problem_set.exemplars) >= 4
        questions = {p.question for p in problem_set.items}
        assert len(questions) == len(problem_set.items)
        assert not questions & {e.question for e in problem_set.exemplars}
        for problem in problem_set.items:
            assert problem.kind in PA.KINDS
            assert problem.id not in ids
            ids.add(problem.id)


def test_every_answer_reads_back_as_itself():
    # A model that writes exactly the expected answer must be scored right, for every item.
    for problem_set in PP.problem_sets().values():
        for problem in problem_set.items:
            reply = f"Let me see. The answer is {problem.answer}."
            assert PA.is_correct(PA.extract_answer(reply, problem.kind), problem.answer, problem.kind), problem
        for example in problem_set.exemplars:
            assert PA.extract_answer(f"{example.reasoning} The answer is {example.answer}.", "number" if
                                    re.fullmatch(r"-?\d+", example.answer) else "word") is not None


def test_letter_and_date_answers_match_an_independent_computation():
    """Recompute the answers of the templated questions (reversals, counts, sorting, clock sums)."""
    checked = 0
    for problem in PP.get_problem_set("letters").items:
        q = problem.question
        if m := re.fullmatch(r"Spell the word '(\w+)' backwards\.", q):
            assert problem.answer == m[1][::-1]
        elif m := re.fullmatch(r"How many times does the letter (\w) appear in '(.+)'\?", q):
            assert int(problem.answer) == m[2].count(m[1])
        elif m := re.fullmatch(r"How many letters are in the word '(\w+)'\?", q):
            assert int(problem.answer) == len(m[1])
        elif m := re.fullmatch(r"Sort these words alphabetically: (.+)", q):
            assert problem.answer == ", ".join(sorted(m[1].split(", ")))
        elif m := re.fullmatch(r"Take the (first|last) letter of each word in '(.+)' and join.*", q):
            assert problem.answer == "".join(w[0 if m[1] == "first" else -1] for w in m[2].split())
        else:
            continue
        checked += 1
    for problem in PP.get_problem_set("dates").items:
        m = re.search(r"at (\d\d):(\d\d) and (?:lasts|the trip takes) (\d+) minutes", problem.question)
        if m:
            total = int(m[1]) * 60 + int(m[2]) + int(m[3])
            assert problem.answer == f"{total // 60 % 24:02d}:{total % 60:02d}"
            checked += 1
    assert checked >= 10


# --- votes, tables, guesses ----------------------------------------------------------------------
def test_majority_vote():
    assert PA.majority_vote(["7", None, "18", "18"]) == ("18", {"7": 1, "18": 2})
    assert PA.majority_vote(["18", "7", "7", "18"])[0] == "18"  # a tie goes to the first seen
    assert PA.majority_vote(["3", "5", "5", "5", "3"]) == ("5", {"3": 2, "5": 3})
    assert PA.majority_vote([None, None]) == (None, {})
    assert PA.majority_vote([]) == (None, {})


def _records():
    rows = [("q1", "zero-shot", "5", True), ("q1", "chain-of-thought", "4", False),
            ("q2", "zero-shot", None, False), ("q2", "chain-of-thought", "9", True),
            ("q3", "zero-shot", "1", True), ("q3", "chain-of-thought", "2", True)]
    return [{"id": i, "question": f"question {i}", "expected": "x", "strategy": s, "answer": a, "correct": c}
            for i, s, a, c in rows]


def test_accuracy_and_question_tables_from_known_outputs():
    strategies = ["zero-shot", "chain-of-thought"]
    accuracy = PA.accuracy_frame(_records(), strategies)
    assert accuracy["strategy"].tolist() == strategies
    assert accuracy["correct"].tolist() == [2, 2] and accuracy["questions"].tolist() == [3, 3]
    assert accuracy["accuracy"].tolist() == pytest.approx([2 / 3, 2 / 3])
    table = PA.question_frame(_records(), strategies)
    assert table["id"].tolist() == ["q1", "q2", "q3"]
    assert table.loc[0, "zero-shot"] == "5 ✓" and table.loc[0, "chain-of-thought"] == "4 ✗"
    assert table.loc[1, "zero-shot"] == "— ✗"
    empty = PA.accuracy_frame([], strategies)
    assert empty["accuracy"].tolist() == [0.0, 0.0]


def test_guess_verdicts():
    scores = {"zero-shot": 0.2, "chain-of-thought": 0.6, "few-shot": 0.6}
    assert "it won with 60%" in PA.guess_verdict("chain-of-thought", scores, what="set")
    assert "tied with few-shot" in PA.guess_verdict("chain-of-thought", scores, what="set")
    assert "rank 3 of 3" in PA.guess_verdict("zero-shot", scores, what="set")
    assert "not among" in PA.guess_verdict("self-consistency", scores, what="set")
    assert "nobody won" in PA.guess_verdict("few-shot", {"few-shot": 0.0, "zero-shot": 0.0}, what="set")
    assert PA.guess_verdict(None, scores) == ""
    one = {"zero-shot": 0.0, "chain-of-thought": 1.0}
    assert "got the right answer" in PA.guess_verdict("chain-of-thought", one)
    assert "it missed; chain-of-thought" in PA.guess_verdict("zero-shot", one)
    assert "no strategy" in PA.guess_verdict("zero-shot", {"zero-shot": 0.0})


# --- bad input: clamps with notes, clear errors --------------------------------------------------
def test_settings_are_clamped_with_a_note():
    settings, notes = PC.clean_settings(k=99, samples=0, temperature=-1, sc_temperature=float("nan"),
                                       seed="abc", max_new_tokens=10**9, max_k=5)
    assert settings == PP.RunSettings(k=5, samples=1, temperature=0.0, sc_temperature=PP.DEFAULT_SC_TEMPERATURE,
                                  seed=PP.DEFAULT_SEED, max_new_tokens=PC.MAX_NEW_TOKENS)
    assert len(notes) == 6, notes
    assert PC.clean_settings(samples=1000)[0].samples == PC.MAX_SAMPLES
    assert PC.clean_settings(samples=100)[0].samples == PC.MAX_SAMPLES
    assert PC.clean_settings(k=0, max_k=5)[0].k == 1
    assert PC.clean_settings(temperature=float("inf"))[0].temperature == PC.MAX_TEMPERATURE
    assert PC.clean_settings(sc_temperature=0)[1]  # a note: the vote is trivial at temperature 0
    assert PC.clean_settings() == (PP.RunSettings(), [])


@pytest.mark.parametrize("question", ["", "   \n", None, "x" * 20_000])
def test_bad_questions_are_refused_in_plain_words(question):
    with pytest.raises(InputError, match="question"):
        PC.clean_question(question)


def test_a_number_sent_as_the_question_is_read_as_text():
    assert PC.clean_question(12345) == "12345"
    assert PC.on_extract_answer(12345, "number") == "12345"


def test_odd_but_fine_questions_pass():
    assert PC.clean_question("  🙂🚀 how many rockets? 日本語 ") == "🙂🚀 how many rockets? 日本語"


def test_strategy_choice():
    with pytest.raises(InputError, match="at least one"):
        PC.clean_strategies([])
    with pytest.raises(InputError, match="Unknown strategy"):
        PC.clean_strategies(["magic"])
    assert PC.clean_strategies(["SELF-CONSISTENCY", "zero-shot", "zero-shot"]) == ["zero-shot", "self-consistency"]
    assert PC.clean_strategies("few-shot") == ["few-shot"]
    with pytest.raises(InputError, match="Unknown strategy"):
        PC.clean_strategies(12345)
    with pytest.raises(InputError, match="at least one"):
        PC.clean_strategies(None)


# --- prompts -------------------------------------------------------------------------------------
def test_prompts_match_their_templates_exactly():
    examples = (PP.Example("Q1?", "Step 1.", "1"), PP.Example("Q2?", "Step 2.", "2"), PP.Example("Q3?", "S3.", "3"))
    q = "What is 2 + 2?"
    A, C = PP.ANSWER_ONLY, PP.STEP_BY_STEP
    expected = {
        PP.ZERO_SHOT: [("user", f"{q}\n{A}")],
        PP.COT: [("user", f"{q}\n{C}")],
        PP.FEW_SHOT: [("user", f"Q1?\n{A}"), ("assistant", "The answer is 1."),
                     ("user", f"Q2?\n{A}"), ("assistant", "The answer is 2."), ("user", f"{q}\n{A}")],
        PP.FEW_SHOT_COT: [("user", f"Q1?\n{C}"), ("assistant", "Step 1. The answer is 1."),
                         ("user", f"Q2?\n{C}"), ("assistant", "Step 2. The answer is 2."), ("user", f"{q}\n{C}")],
    }
    expected[PP.SELF_CONSISTENCY] = expected[PP.FEW_SHOT_COT]
    for strategy, turns in expected.items():
        messages = PP.build_messages(strategy, q, examples, k=2)
        assert [(m["role"], m["content"]) for m in messages] == turns, strategy


def test_rendered_prompt_is_the_chat_template_and_tokenizes_like_apply_chat_template(tiny_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_dir / "llama")
    messages = PP.build_messages(PP.FEW_SHOT, "Why?", (PP.Example("Q?", "R.", "7"),), k=1)
    text = PP.render_prompt(tok, messages)
    assert tok.chat_template == CHAT_TEMPLATE
    assert text == (f"<|im_start|>user\nQ?\n{PP.ANSWER_ONLY}<|im_end|>\n<|im_start|>assistant\nThe answer is 7."
                    f"<|im_end|>\n<|im_start|>user\nWhy?\n{PP.ANSWER_ONLY}<|im_end|>\n<|im_start|>assistant\n")
    # What stream_generate feeds the model == what apply_chat_template(tokenize=True) gives.
    reference = tok.apply_chat_template(messages, add_generation_prompt=True)["input_ids"]
    assert tok(text, add_special_tokens=False)["input_ids"] == reference


# --- generation on the tiny checkpoint -----------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_lm():
    return models.load_causal_lm(catalog.by_label("instruct", "Tiny Llama chat (test)"))


def _strip_at_eos(ids: list[int], eos: set[int]) -> list[int]:
    out = []
    for token in ids:
        if token in eos:
            break
        out.append(token)
    return out


def test_batched_greedy_equals_one_prompt_at_a_time(tiny_lm):
    """All five strategies in one call (self-consistency rows sampled beside the greedy ones):
    each greedy row gives exactly what `generate` gives for its prompt alone, unpadded."""
    lm, tok = tiny_lm
    problem_set = PP.get_problem_set("arithmetic")
    plan = PP.plan_rows(tok, problem_set.items[0].question, list(PP.STRATEGIES), problem_set,
                       PP.RunSettings(k=2, samples=2, sc_temperature=1.0))
    assert [p.temperature for p in plan] == [0.0] * 4 + [1.0] * 2
    lengths = [len(tok(p.prompt, add_special_tokens=False)["input_ids"]) for p in plan[:4]]
    assert len(set(lengths)) == 4  # really different lengths: the batch is left-padded
    final = list(PR.stream_generate(lm, tok, [p.prompt for p in plan], [p.temperature for p in plan], seed=0,
                                   max_new_tokens=24))[-1]
    eos = PR.eos_token_ids(lm, tok)
    for row, item in enumerate(plan[:4]):
        alone = tok(item.prompt, return_tensors="pt", add_special_tokens=False)  # no padding at all
        with torch.inference_mode():
            out = lm.generate(**alone, max_new_tokens=24, do_sample=False, pad_token_id=tok.pad_token_id)
        reference = _strip_at_eos(out[0, alone["input_ids"].shape[1]:].tolist(), eos)
        assert final.tokens[row] == reference, item.strategy


def test_row_sampler_draws_like_torch_multinomial_with_our_generator():
    torch.manual_seed(123)
    scores = torch.randn(3, 50)
    sampler = PR.make_row_sampler([0.0, 0.7, 1.5], seed=42)
    out = sampler(None, scores)
    assert torch.equal(out[0], scores[0])  # greedy row untouched
    generator = torch.Generator().manual_seed(42)
    probs = torch.softmax(scores[1:] / torch.tensor([[0.7], [1.5]]), dim=-1)
    picks = torch.multinomial(probs, 1, generator=generator)[:, 0]
    assert out[1:].argmax(-1).tolist() == picks.tolist()
    assert torch.isinf(out[1:]).sum().item() == 2 * 49  # one-hot: every other token -inf


def test_self_consistency_samples_are_seeded_and_batched(tiny_lm):
    lm, tok = tiny_lm
    prompts, temps = ["<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"] * 4, [1.0] * 4

    def run(seed):
        return list(PR.stream_generate(lm, tok, prompts, temps, seed=seed, max_new_tokens=12))[-1].tokens

    first = run(7)
    assert run(7) == first  # same seed, same samples
    assert run(8) != first
    assert len({tuple(t) for t in first}) > 1  # the rows of one call differ from each other


def test_streaming_yields_growing_rows_and_stops_when_asked(tiny_lm):
    lm, tok = tiny_lm
    prompts = ["<|im_start|>user\nThe cat<|im_end|>\n<|im_start|>assistant\n", "The dog sat"]
    states = list(PR.stream_generate(lm, tok, prompts, [0.0, 0.0], seed=0, max_new_tokens=20, every_s=0))
    assert len(states) > 5 and states[-1].done and not states[0].done
    for before, after in zip(states, states[1:]):
        assert all(len(a) >= len(b) for a, b in zip(after.tokens, before.tokens))
    stop = threading.Event()
    stream = PR.stream_generate(lm, tok, prompts, [0.0, 0.0], seed=0, max_new_tokens=200, stop=stop, every_s=0)
    next(stream)
    stop.set()
    last = list(stream)[-1]
    assert last.done and max(len(t) for t in last.tokens) < 200


def test_compare_strategies_end_to_end_on_the_tiny_model(tiny_lm):
    lm, tok = tiny_lm
    problem_set = PP.get_problem_set("dates")
    problem = problem_set.items[0]
    settings = PP.RunSettings(k=2, samples=3, max_new_tokens=16, seed=3)
    updates = list(PR.compare_strategies(lm, tok, problem.question, problem.answer, problem.kind,
                                        list(PP.STRATEGIES), problem_set, settings))
    first, final = updates[0], updates[-1]
    assert [r.strategy for r in final] == list(PP.STRATEGIES)
    assert all(not r.texts for r in first) and all(r.prompt for r in first)  # prompts shown before any token
    for result in final:
        assert result.finished and result.correct in (True, False)
        expected_prompt = PP.render_prompt(tok, PP.build_messages(result.strategy, problem.question,
                                                                problem_set.exemplars, 2))
        assert result.prompt == expected_prompt
        assert result.answers == [PA.extract_answer(t, problem.kind) for t in result.texts]
    sc = final[-1]
    assert len(sc.texts) == 3 and sc.temperature == settings.sc_temperature
    assert (sc.answer, sc.votes) == PA.majority_vote(sc.answers)
    assert sc.correct == PA.is_correct(sc.answer, problem.answer, problem.kind)


# --- the launched app's API ----------------------------------------------------------------------
TINY = "Tiny Llama chat (test)"
SET = "Arithmetic word problems"


def _compare(client, question="What is 2 + 2?", expected="4", strategies=("zero-shot", "chain-of-thought"),
             guess="chain-of-thought", k=2, n=3, temperature=0.0, sc_temperature=0.7, seed=0, max_new_tokens=16):
    return client.predict(TINY, question, expected, list(strategies), guess, k, n, temperature, sc_temperature,
                          seed, max_new_tokens, SET, api_name="/prompting_compare")


def test_api_compare_returns_answers_marks_prompts_and_the_guess(client):
    out = _compare(client)
    summary, data, verdict = out[0], out[-1], out[-2]
    assert "greedy (temperature 0)" in summary and "seed 0" in summary
    assert [d["strategy"] for d in data] == ["zero-shot", "chain-of-thought"]
    for d in data:
        assert d["correct"] == PA.is_correct(d["answer"], "4", "number")
        assert d["prompt"].endswith("<|im_start|>assistant\n") and "What is 2 + 2?" in d["prompt"]
    assert "You guessed **chain-of-thought**" in verdict
    # Per strategy: header, text, prompt (the columns are layout, not part of the API reply).
    assert len(out) == 1 + 3 * 5 + 2
    assert ("✓" in out[1]) != ("✗" in out[1]) and "tokens" in out[1]
    assert out[3] == data[0]["prompt"] and out[2] == data[0]["texts"][0]
    assert out[1 + 3 * 4] == ""  # self-consistency was not chosen


def test_api_compare_without_expected_answer_has_no_marks(client):
    out = _compare(client, expected="")
    assert all(d["correct"] is None for d in out[-1])
    assert "✓" not in out[1] and "✗" not in out[1] and "Answer:" in out[1]
    assert "No expected answer" in out[0]


def test_api_refuses_or_clamps_numbers_and_says_so(client):
    # Gradio checks slider ranges itself and answers in plain words...
    with pytest.raises(AppError, match="greater than maximum value 10"):
        _compare(client, strategies=("self-consistency",), n=100)
    with pytest.raises(AppError, match="less than minimum value 1"):
        _compare(client, strategies=("self-consistency",), n=0)
    # ...and what passes through is clamped by us, with a note.
    out = _compare(client, strategies=("self-consistency",), n=2.6, sc_temperature=0, max_new_tokens=16)
    assert len(out[-1][0]["texts"]) == 3 and "the vote is trivial" in out[0]
    assert len(set(out[-1][0]["texts"])) == 1  # temperature 0: three identical greedy chains


@pytest.mark.parametrize(
    "kwargs, message",
    [(dict(question=""), "Type a question"), (dict(question="x" * 20_000), "20,000 characters"),
     (dict(strategies=()), "at least one")],
)
def test_api_bad_input_gets_a_clear_message(client, kwargs, message):
    with pytest.raises(AppError, match=message):
        _compare(client, **kwargs)


def test_api_emoji_question_runs(client):
    assert _compare(client, question="🙂🚀 combien? 日本語", expected="")[-1]


def test_api_score_builds_the_chart_table_and_guess(client):
    status, chart, table, verdict = client.predict(
        TINY, SET, 2, ["zero-shot", "few-shot"], "few-shot", 2, 3, 0.0, 0.7, 0, 16, api_name="/prompting_score"
    )
    assert "Scoring **2** of 36" in status and "✅" in status
    accuracy = pd.DataFrame(chart["data"], columns=chart["columns"])
    assert accuracy["strategy"].tolist() == ["zero-shot", "few-shot"]
    rows = pd.DataFrame(table["data"], columns=table["headers"])
    assert rows["id"].tolist() == ["arith-01", "arith-02"]
    for strategy in ("zero-shot", "few-shot"):  # the chart is the table's ✓ count
        right = rows[strategy].str.endswith("✓").sum()
        assert accuracy.set_index("strategy").loc[strategy, "accuracy"] == pytest.approx(right / 2)
    assert "You guessed **few-shot**" in verdict
    # The questions slider's range on the server is the first set's (36); a smaller set clamps it.
    status, _, table, _ = client.predict(TINY, "Letters and lists", 36, ["zero-shot"], "no guess", 2, 3, 0.0,
                                         0.7, 0, 16, api_name="/prompting_score")
    assert "Scoring **32** of 32" in status and "Number of questions 36 is outside 1–32" in status
    assert len(table["data"]) == 32


def test_a_stopped_score_run_leaves_the_app_usable(client):
    job = client.submit(TINY, SET, 36, list(PP.STRATEGIES), "no guess", 5, 10, 0.0, 0.7, 0, 256,
                        api_name="/prompting_score")
    for _ in job:  # wait for the first live update, then stop
        break
    job.cancel()
    # The server (in this process) really stops generating: its worker thread ends within
    # seconds, where the whole run would take a minute or more.

    def generating() -> bool:
        return any(t.name == "prompting-generate" for t in threading.enumerate())

    deadline = time.perf_counter() + 20
    while generating():
        assert time.perf_counter() < deadline, "generation kept running after Stop"
        time.sleep(0.05)
    for _ in range(30):  # and no next question starts (a live run starts one within milliseconds)
        time.sleep(0.05)
        assert not generating(), "the scoring loop went on after Stop"
    out = _compare(client)  # and the next request is served
    assert len(out[-1]) == 2


def test_api_extract_answer_and_question_picker(client):
    assert client.predict("so it is 1,250 dollars", "number", api_name="/prompting_extract_answer") == "1250"
    question, expected = client.predict(SET, "arith-14", api_name="/prompting_pick_question")
    assert expected == "15000" and "2,500 bottles" in question
    with pytest.raises(AppError, match="Unknown question"):
        client.predict(SET, "../../etc/passwd", api_name="/prompting_pick_question")


def test_no_nan_leaks_into_settings():
    settings, _ = PC.clean_settings(temperature=float("nan"), sc_temperature=float("-inf"))
    assert not math.isnan(settings.temperature) and settings.sc_temperature == 0.0


@pytest.mark.real_weights
def test_bundled_model_batched_greedy_equals_one_at_a_time_and_follows_the_format():
    lm, tok = models.load_causal_lm(catalog.EMBEDDED_LM)
    problem_set = PP.get_problem_set("arithmetic")
    plan = PP.plan_rows(tok, problem_set.items[0].question, [PP.ZERO_SHOT, PP.FEW_SHOT], problem_set,
                        PP.RunSettings(k=2))
    final = list(PR.stream_generate(lm, tok, [p.prompt for p in plan], [0.0, 0.0], seed=0, max_new_tokens=12))[-1]
    eos = PR.eos_token_ids(lm, tok)
    for row, item in enumerate(plan):
        alone = tok(item.prompt, return_tensors="pt", add_special_tokens=False)
        with torch.inference_mode():
            out = lm.generate(**alone, max_new_tokens=12, do_sample=False, pad_token_id=tok.pad_token_id)
        assert final.tokens[row] == _strip_at_eos(out[0, alone["input_ids"].shape[1]:].tolist(), eos)
    # With answer-only examples in front, the real model copies the format: "The answer is …".
    assert tok.decode(final.tokens[1], skip_special_tokens=True).startswith("The answer is")


@pytest.mark.real_weights
def test_on_llama_cpp_each_reply_stops_where_it_has_said_its_answer():
    """The engine path ends a row at the step its reply first says the answer (as transformers'
    StopAtAnswer does): same greedy answers as letting every row run on, in fewer tokens."""
    entry = catalog.EMBEDDED_GEMMA  # a base model: left alone, it runs on into new "Q:" blocks
    lm, tok = models.load_causal_lm(entry)
    engine = engines.load_text_engine(entry)
    assert engine is not None, "llama.cpp is not usable here"
    problem_set = PP.get_problem_set("opposites")
    strategies = [PP.ZERO_SHOT, PP.FEW_SHOT, PP.COT]
    runs = {}
    for stop in (True, False):
        runs[stop] = list(PR.compare_strategies(lm, tok, problem_set.items[0].question, problem_set.items[0].answer,
                                                problem_set.items[0].kind, strategies, problem_set,
                                                PP.RunSettings(k=3, max_new_tokens=48), engine=engine, plain=True,
                                                stop_at_answer=stop))[-1]
    for stopped, ran_on in zip(runs[True], runs[False]):
        assert stopped.answer == ran_on.answer, stopped.strategy
        assert ran_on.texts[0].startswith(stopped.texts[0]), stopped.strategy
    assert sum(r.tokens for r in runs[True]) < sum(r.tokens for r in runs[False]) / 2, \
        [(r.strategy, r.tokens) for r in runs[True] + runs[False]]


# --- plain "Q: … A:" prompts for a pre-trained-only model, and replies that stop at the answer ---
def test_plain_prompts_are_gpt3_style_question_answer_blocks():
    examples = (PP.Example("Q1?", "Step 1.", "1"), PP.Example("Q2?", "Step 2.", "2"), PP.Example("Q3?", "S3.", "3"))
    q = "What is 2 + 2?"
    assert PP.build_plain_prompt(PP.ZERO_SHOT, q, examples, 2) == "Q: What is 2 + 2?\nA:"
    assert PP.build_plain_prompt(PP.COT, q, examples, 2) == "Q: What is 2 + 2?\nA: Let's think step by step."
    assert PP.build_plain_prompt(PP.FEW_SHOT, q, examples, 2) == "Q: Q1?\nA: 1\n\nQ: Q2?\nA: 2\n\nQ: What is 2 + 2?\nA:"
    assert PP.build_plain_prompt(PP.FEW_SHOT_COT, q, examples, 1) == (
        "Q: Q1?\nA: Step 1. The answer is 1.\n\nQ: What is 2 + 2?\nA:")
    assert (PP.build_plain_prompt(PP.SELF_CONSISTENCY, q, examples, 1)
            == PP.build_plain_prompt(PP.FEW_SHOT_COT, q, examples, 1))


@pytest.mark.parametrize(
    "text, strategy, style, end",
    [
        (" cold\nQ: next", PP.ZERO_SHOT, "plain", 5),  # answer-only: the first line break after text
        ("\n cold\n", PP.FEW_SHOT, "chat", 6),  # a leading line break is not the end
        (" cold", PP.FEW_SHOT, "plain", None),  # still going
        ("\n\nQ: What is", PP.COT, "plain", 2),  # a base model that starts the next block answered nothing
        (" Hot is warm.\n\nQ:", PP.COT, "plain", 13),  # a blank line ends a plain block
        (" 3 × 100 = 300. The answer is 300. Next", PP.FEW_SHOT_COT, "chat", 34),
        (" The answer is 3.5", PP.COT, "chat", None),  # "3." is not the end of "3.5"
        ("Step one.\n\nStep two.", PP.COT, "chat", None),  # chat reasoning may have blank lines
        ("So the answer is Paris\nmore", PP.SELF_CONSISTENCY, "chat", 23),
    ],
)
def test_reply_end(text, strategy, style, end):
    assert PA.reply_end(text, strategy, style) == end


def test_rows_stop_exactly_where_the_reply_rule_says(tiny_lm, monkeypatch):
    """The plumbing: each row ends at the first step where `reply_end` fires on its decoded text
    (here a rule that fires after a row-specific number of characters), and keeps exactly the
    tokens unstopped greedy generation made up to then; the padding after is ignored."""
    lm, tok = tiny_lm
    limits = {PP.ZERO_SHOT: 3, PP.FEW_SHOT: 12}
    monkeypatch.setattr(PR, "reply_end",
                        lambda text, strategy, style: limits[strategy] if len(text) >= limits[strategy] else None)
    prompts = ["The cat sat on the", "Once upon a time there was"]
    final = list(PR.stream_generate(lm, tok, prompts, [0.0, 0.0], seed=0, max_new_tokens=30,
                                   stop_at_answer=[(PP.ZERO_SHOT, "plain"), (PP.FEW_SHOT, "plain")]))[-1]
    eos = PR.eos_token_ids(lm, tok)
    for row, (prompt, strategy) in enumerate(zip(prompts, limits)):
        alone = tok(prompt, return_tensors="pt", add_special_tokens=False)
        with torch.inference_mode():
            out = lm.generate(**alone, max_new_tokens=30, do_sample=False, pad_token_id=tok.pad_token_id)
        reference = _strip_at_eos(out[0, alone["input_ids"].shape[1]:].tolist(), eos)
        cut = next((k for k in range(1, len(reference) + 1)
                    if len(tok.decode(reference[:k], skip_special_tokens=True)) >= limits[strategy]), len(reference))
        assert final.tokens[row] == reference[:cut], strategy
    assert final.tokens[0] != final.tokens[1][: len(final.tokens[0])] or len(final.tokens[0]) < len(final.tokens[1])


BASE_TINY = "Tiny GPT-2 base (test)"


def test_api_a_pretrained_only_model_reads_plain_text_and_the_prompt_shown_is_what_it_read(client):
    out = client.predict(BASE_TINY, "What is the opposite of 'up'?", "down", ["zero-shot", "few-shot"], "few-shot",
                         2, 3, 0.0, 0.7, 0, 16, "Opposites", api_name="/prompting_compare")
    summary, data = out[0], out[-1]
    assert "no chat template" in summary and "from *Opposites*" in summary
    exemplars = PP.get_problem_set("opposites").exemplars
    assert data[0]["prompt"] == "Q: What is the opposite of 'up'?\nA:"
    assert data[1]["prompt"] == (f"Q: {exemplars[0].question}\nA: {exemplars[0].answer}\n\n"
                                 f"Q: {exemplars[1].question}\nA: {exemplars[1].answer}\n\n"
                                 "Q: What is the opposite of 'up'?\nA:")
    assert "<|im_start|>" not in data[0]["prompt"] + data[1]["prompt"]
    for d in data:  # the reply shown never runs on into a new line or a new "Q:" block
        assert "\n" not in d["texts"][0].strip() and d["tokens"] <= 16


def test_api_a_typed_question_borrows_the_chosen_sets_examples(client):
    for set_name in ("Capital cities", "Arithmetic word problems"):
        out = client.predict(TINY, "What is the capital of Germany?", "Berlin", ["few-shot"], "few-shot",
                             2, 3, 0.0, 0.7, 0, 16, set_name, api_name="/prompting_compare")
        prompt = out[-1][0]["prompt"]
        first = PP.get_problem_set(set_name).exemplars[0].question
        assert first in prompt, set_name


def test_api_score_a_lookup_set_with_the_plain_model(client):
    status, chart, table, verdict = client.predict(BASE_TINY, "Units", 2, ["zero-shot", "few-shot"], "few-shot",
                                                   3, 3, 0.0, 0.7, 0, 64, api_name="/prompting_score")
    assert "✅" in status and "Scoring **2** of 31" in status
    accuracy = pd.DataFrame(chart["data"], columns=chart["columns"])
    assert accuracy["strategy"].tolist() == ["zero-shot", "few-shot"]
    assert accuracy["accuracy"].between(0, 1).all() and len(table["data"]) == 2


@pytest.mark.real_weights
def test_few_shot_beats_zero_shot_on_the_default_set_with_the_model_it_was_chosen_for():
    """The tab's own scoring loop, offline, on the default set's first questions."""
    problem_set = next(iter(PP.problem_sets().values()))
    settings = PP.RunSettings(max_new_tokens=problem_set.max_new_tokens)
    records = []
    for _, records, _, _ in PR.run_score(PC.DEFAULT_SET_MODEL.label, problem_set.name, 12, [PP.ZERO_SHOT, PP.FEW_SHOT],
                                        settings):
        pass
    right = {s: sum(1 for r in records if r["strategy"] == s and r["correct"]) for s in (PP.ZERO_SHOT, PP.FEW_SHOT)}
    assert len(records) == 24 and right[PP.FEW_SHOT] > right[PP.ZERO_SHOT], right


def test_a_typed_question_drops_the_expected_answer_of_the_built_in_one_it_replaced():
    """The box held the default question and its answer ("chien"); a visitor types their own
    question: the old answer must go, or "pluie" for rain would be marked wrong and "chien" right."""
    first = next(iter(PP.problem_sets().values())).items[0]
    typed = "What is the French word for 'rain'?"
    assert PP.find_problem(typed) is None
    assert PC.on_type_question(typed, first.answer) == ""
    assert PC.on_type_question(first.question, "") == first.answer  # a built-in question gets its answer back
    kept = PC.on_type_question(typed, "pluie")  # the visitor's own expected answer stays
    assert isinstance(kept, dict) and kept.get("__type__") == "update" and "value" not in kept
