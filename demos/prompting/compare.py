"""Comparing the strategies for a visitor: the values checked and clamped, the results drawn as
they stream in, and the handlers of the tab (one question run side by side, a whole set scored,
a set or a question picked, the opening answer every page gets). The prompts are `prompts`, the
reading of replies `answers`, the generation `run`."""

from __future__ import annotations

import gradio as gr

from demos.prompting.answers import KINDS, accuracy_frame, extract_answer, guess_kind, guess_verdict, question_frame
from demos.prompting.prompts import (
    DEFAULT_K, DEFAULT_MAX_NEW_TOKENS, DEFAULT_SAMPLES, DEFAULT_SC_TEMPERATURE, DEFAULT_SEED, DEFAULT_TEMPERATURE,
    FEW_SHOT, FEW_SHOT_COT, SELF_CONSISTENCY, STRATEGIES, ProblemSet, RunSettings, find_problem, get_problem_set,
    problem_sets, question_choices, set_description, set_lesson,
)
from demos.prompting.run import StrategyResult, engine_note, run_compare, run_score
from gallery import catalog, inputs, links, opening, ui
from gallery.device import device
from gallery.errors import InputError

# The bundled model the default set was chosen for: on it, few-shot beats zero-shot by the most
# (README table; checked by a real-weights test).
DEFAULT_SET_MODEL = catalog.EMBEDDED_GEMMA
NO_GUESS = "no guess"
EXAMPLES = [  # typed questions, not in the built-in sets, each with the set whose worked examples
    # it borrows (the last one has no expected answer)
    ["What is the opposite of 'tall'?", "short", "Opposites"],
    ["What is the French word for 'rain'?", "pluie", "English to French"],
    ["A shelf holds 4 rows of 12 books. 9 books are lent out and 5 come back. How many books are on "
     "the shelf now?", "44", "Arithmetic word problems"],
    ["What day of the week is 12 days after a Wednesday?", "Monday", "Dates and times"],
    ["Spell the word 'parts' backwards.", "strap", "Letters and lists"],
    ["Which planet is closest to the Sun?", "", "Capital cities"],
]


# Defaults and limits. Gradio refuses out-of-range slider values sent to the API; every number is
# still clamped here too (direct calls, the seed box, a set with fewer questions than the slider).
MIN_K = 1  # the maximum is the number of worked examples of the set
MIN_SAMPLES, MAX_SAMPLES = 1, 10
MAX_TEMPERATURE = 2.0
MIN_NEW_TOKENS, MAX_NEW_TOKENS = 16, 512  # the default: DEFAULT_MAX_NEW_TOKENS (prompts)
MAX_QUESTION_CHARS = 2000
DEFAULT_SCORE_QUESTIONS = 12  # look-up sets: about 1-4 s per question with a bundled model on 2 CPU cores
WEAK_MODEL_NOTE = (
    "**About the bundled models.** SmolLM2-135M-Instruct (135 million parameters, chat-tuned) and "
    "Gemma-3-270M (270 million, pre-trained only) are small. On the look-up sets, a few solved "
    "examples show them the task and the answer format, and the score jumps. On the multi-step "
    "sets (arithmetic, dates, letters) they rarely keep two steps right, whatever the prompt."
)


# --- requests: validation and clamping (pure) ----------------------------------------------------
def clean_settings(k=DEFAULT_K, samples=DEFAULT_SAMPLES, temperature=DEFAULT_TEMPERATURE,
                   sc_temperature=DEFAULT_SC_TEMPERATURE, seed=DEFAULT_SEED,
                   max_new_tokens=DEFAULT_MAX_NEW_TOKENS, max_k: int = 5) -> tuple[RunSettings, list[str]]:
    notes: list[str] = []
    settings = RunSettings(
        k=inputs.number(k, "k (worked examples)", MIN_K, max_k, min(DEFAULT_K, max_k), notes, integer=True),
        samples=inputs.number(samples, "Samples n", MIN_SAMPLES, MAX_SAMPLES, DEFAULT_SAMPLES, notes, integer=True),
        temperature=inputs.number(temperature, "Temperature", 0.0, MAX_TEMPERATURE, DEFAULT_TEMPERATURE, notes),
        sc_temperature=inputs.number(sc_temperature, "Self-consistency temperature", 0.0, MAX_TEMPERATURE,
                                     DEFAULT_SC_TEMPERATURE, notes),
        seed=inputs.seed(seed, notes, default=DEFAULT_SEED),
        max_new_tokens=inputs.number(max_new_tokens, "Max new tokens", MIN_NEW_TOKENS, MAX_NEW_TOKENS,
                                     DEFAULT_MAX_NEW_TOKENS, notes, integer=True),
    )
    if settings.sc_temperature == 0:
        notes.append("Self-consistency at temperature 0 draws the same chain every time, so the vote is trivial.")
    return settings, notes


def clean_question(question: str | None) -> str:
    return inputs.text(question, "question", MAX_QUESTION_CHARS, example=EXAMPLES[0][0])


def clean_strategies(strategies) -> list[str]:
    if strategies is None:
        strategies = []
    elif not isinstance(strategies, (list, tuple)):  # one name sent on its own
        strategies = [strategies]
    chosen = []
    for name in strategies:
        match = next((s for s in STRATEGIES if s.lower() == str(name).strip().lower()), None)
        if match is None:
            raise InputError(f"Unknown strategy {name!r}. Choose from: {', '.join(STRATEGIES)}.")
        chosen.append(match)
    if not chosen:
        raise InputError("Pick at least one prompting strategy.")
    return [s for s in STRATEGIES if s in chosen]  # the fixed order, duplicates dropped


def clean_guess(guess: str | None, notes: list[str]) -> str | None:
    if guess in (None, "", NO_GUESS):
        return None
    match = next((s for s in STRATEGIES if s.lower() == str(guess).strip().lower()), None)
    if match is None:
        notes.append(f"The guess {guess!r} is not a strategy; it was ignored.")
    return match


# --- what the page shows -------------------------------------------------------------------------
def decoding_summary(strategies: list[str], settings: RunSettings, rows: int, set_name: str | None = None,
                     plain: bool = False) -> str:
    single = [s for s in strategies if s != SELF_CONSISTENCY]
    parts = ["**plain “Q: … A:” text, no chat template** (a pre-trained-only model)" if plain
             else "**chat template** (an instruct model)"]
    if single:
        t = settings.temperature
        how = "greedy (temperature 0)" if t == 0 else f"sampled at temperature {t:g}"
        parts.append(f"**{how}** for {', '.join(single)}")
    if SELF_CONSISTENCY in strategies:
        n, t = settings.samples, settings.sc_temperature
        parts.append(f"**self-consistency: {n} samples at temperature {t:g}**")
    uses_examples = {FEW_SHOT, FEW_SHOT_COT, SELF_CONSISTENCY} & set(strategies)
    shots = f"k = {settings.k} worked examples" if uses_examples else ""
    if shots and set_name:
        shots += f" from *{set_name}*"
    tail = [f"**seed {settings.seed}**", shots, f"up to {settings.max_new_tokens} new tokens",
            f"one batched `generate` call of {rows} row{'s' * (rows != 1)} (each time below runs from "
            "the start of that shared call until the strategy's answer ended)"]
    return "🎛️ " + " · ".join(parts + [t for t in tail if t])


def result_header(result: StrategyResult, has_expected: bool) -> str:
    title = f"### {result.strategy}"
    if not result.finished:
        return f"{title} …\n{result.tokens} tokens so far"
    mark = "" if not has_expected else (" ✓" if result.correct else " ✗")
    answer = result.answer if result.answer is not None else "(none found)"
    line = f"**Answer: {answer}**"
    if result.strategy == SELF_CONSISTENCY and result.votes:
        line += " · votes " + ", ".join(f"{a}: {v}" for a, v in result.votes.items())
    samples = f" in {len(result.texts)} samples" if result.strategy == SELF_CONSISTENCY else ""
    return f"{title}{mark}\n{line}\n\n{result.tokens} tokens{samples} · {result.seconds:.1f} s"


def result_body(result: StrategyResult) -> str:
    if result.strategy != SELF_CONSISTENCY:
        return result.texts[0] if result.texts else ""
    return "\n\n".join(
        f"── sample {i + 1}" + (f" → {a}" if a is not None else "") + f" ──\n{text}"
        for i, (text, a) in enumerate(zip(result.texts, result.answers))
    )


def results_json(results: list[StrategyResult]) -> list[dict]:
    return [{"strategy": r.strategy, "answer": r.answer, "correct": r.correct, "tokens": r.tokens,
             "seconds": round(r.seconds, 3), "temperature": r.temperature, "votes": r.votes,
             "texts": r.texts, "prompt": r.prompt} for r in results]


def _entry(model_label: str | None):
    try:
        return catalog.by_label("instruct", model_label)
    except Exception:  # unknown label or no model at all: the load will say why
        return None


def is_bundled(model_label: str | None) -> bool:
    """Whether this dropdown value means a bundled model (also when it is the default)."""
    return _entry(model_label) in catalog.EMBEDDED_MODELS


def is_pretrained_only(model_label: str | None) -> bool:
    entry = _entry(model_label)
    return bool(entry and entry.pretrained_only)


def model_note(model_label: str | None) -> str:
    note = WEAK_MODEL_NOTE if is_bundled(model_label) else ""
    if is_pretrained_only(model_label):
        note += ("\n\n**This model is pre-trained only**: it never learned to chat, so it reads plain "
                 "“Q: … A:” text, in the style of GPT-3 (open *Exact prompt* under a column).")
    return note.strip()


# --- handlers ------------------------------------------------------------------------------------
def _compare_outputs(summary, results: dict[str, StrategyResult], has_expected, verdict, data, full: bool):
    """Flatten into the page's outputs: summary, then per strategy (column, header, text,
    prompt), then the verdict and the JSON. Between the first and the last update only the
    growing parts are sent (`full=False`): the prompts do not change while tokens stream in."""
    same = gr.skip()
    values = [summary if full else same]
    for strategy in STRATEGIES:
        r = results.get(strategy)
        values += [gr.update(visible=r is not None) if full else same,
                   result_header(r, has_expected) if r else "", result_body(r) if r else "",
                   (r.prompt if r else "") if full else same]
    return [*values, verdict, data]


@ui.user_errors
def on_compare(model_label, question, expected, strategies, guess, k, samples, temperature,
               sc_temperature, seed, max_new_tokens, set_name):
    question = clean_question(question)
    strategies = clean_strategies(strategies)
    problem_set = get_problem_set(set_name)
    settings, notes = clean_settings(k, samples, temperature, sc_temperature, seed, max_new_tokens,
                                     max_k=len(problem_set.exemplars))
    guess = clean_guess(guess, notes)
    expected = inputs.as_text(expected).strip() or None
    builtin = find_problem(question)
    if builtin and expected == builtin.answer:
        kind = builtin.kind
    else:
        kind = guess_kind(expected, problem_set.default_kind)
    if expected is None:
        notes.append("No expected answer given, so there is no ✓/✗ — just the outputs.")
    rows = sum(settings.samples if s == SELF_CONSISTENCY else 1 for s in strategies)
    summary = (decoding_summary(strategies, settings, rows, problem_set.name, is_pretrained_only(model_label))
               + "\n\n" + inputs.notes_markdown(notes, bullet="ℹ️ "))
    server_note = engine_note(model_label)  # a text server (GALLERY_TEXT_SERVER): which, or why not
    if server_note:
        summary += "\n\n" + server_note
    first = True
    for results in run_compare(model_label, question, expected, kind, strategies, problem_set.name, settings):
        done = all(r.finished for r in results)
        verdict = ""
        if done and guess and expected is None:
            verdict = f"🎯 You guessed **{guess}**; with no expected answer there is no winner to compare."
        elif done and expected is not None:
            verdict = guess_verdict(guess, {r.strategy: float(bool(r.correct)) for r in results})
        yield _compare_outputs(summary, {r.strategy: r for r in results}, expected is not None, verdict,
                               results_json(results) if done else None, full=first or done)
        first = False


def _opening_answer(label: str) -> list:
    """Every strategy's answer to the first question of the first set, from `label`."""
    first = next(iter(problem_sets().values()))
    outputs = None
    for outputs in on_compare(
        label, first.items[0].question, first.items[0].answer, list(STRATEGIES), NO_GUESS, DEFAULT_K,
        DEFAULT_SAMPLES, DEFAULT_TEMPERATURE, DEFAULT_SC_TEMPERATURE, DEFAULT_SEED,
        default_new_tokens(first), first.name,
    ):
        pass
    return outputs


def _default_label() -> str | None:
    ready = catalog.available("instruct")
    return ready[0].label if ready else None  # the model dropdown's first choice


OPENING = opening.Opening("prompting", _opening_answer, _default_label)


@ui.user_errors
def on_load(request: gr.Request = None):
    """The page opens alive: every strategy's answer to the default question, from the default
    model (`OPENING`: worked out once, at start, and each page gets its own copy). A shared link
    fills in its own question; it gets no opening answers."""
    label = _default_label()
    if label is None or links.values(request, "prompting"):
        return [gr.skip()] * (3 + 4 * len(STRATEGIES))
    return OPENING.get(label)


@ui.user_errors
def on_score(model_label, set_name, count, strategies, guess, k, samples, temperature, sc_temperature,
             seed, max_new_tokens, progress=gr.Progress()):
    strategies = clean_strategies(strategies)
    problem_set = get_problem_set(set_name)
    settings, notes = clean_settings(k, samples, temperature, sc_temperature, seed, max_new_tokens,
                                     max_k=len(problem_set.exemplars))
    guess = clean_guess(guess, notes)
    total = len(problem_set.items)
    count = inputs.number(count, "Number of questions", 1, total, min(DEFAULT_SCORE_QUESTIONS, total), notes,
                          integer=True)
    header = (f"Scoring **{count}** of {total} questions of *{problem_set.name}*. "
              + inputs.notes_markdown(notes, bullet="ℹ️ "))
    progress((0, count), desc="Scoring")
    accuracy, table, status = accuracy_frame([], strategies), question_frame([], strategies), ""
    updates = run_score(model_label, problem_set.name, count, strategies, settings)
    for done, records, status, question_done in updates:
        progress((done, count), desc=status)
        if not question_done:  # live status only; the chart and table change once per question
            yield f"{header}\n\n⏳ {status}", gr.skip(), gr.skip(), gr.skip()
            continue
        accuracy, table = accuracy_frame(records, strategies), question_frame(records, strategies)
        yield f"{header}\n\n⏳ {status}", accuracy, table, ""
    # The last update says it is finished and how the guess fared.
    scores = dict(zip(accuracy["strategy"], accuracy["accuracy"]))
    verdict = guess_verdict(guess, scores, what="set") if len(table) else ""
    yield f"{header}\n\n✅ {status}", accuracy, table, verdict


def default_new_tokens(problem_set: ProblemSet) -> int:
    """The set's room for a reply; chains of thought on a GPU can afford twice the CPU default."""
    double = problem_set.multi_step and device() == "cuda"
    return min(MAX_NEW_TOKENS, problem_set.max_new_tokens * (2 if double else 1))


@ui.user_errors
def on_pick_set(set_name, question=None):
    """A new set: its questions, limits and lesson. The question box keeps a typed question (it
    now borrows this set's worked examples); a built-in question of another set is replaced by
    this set's first one."""
    problem_set = get_problem_set(set_name)
    total = len(problem_set.items)
    typed = inputs.as_text(question).strip()
    own = find_problem(typed, problem_set) if typed else None
    if own is not None:
        picked = own.id
    elif typed and find_problem(typed) is None:
        picked = None  # a typed question stays; on_pick_question leaves it alone
    else:
        picked = problem_set.items[0].id
    return (
        gr.update(choices=question_choices(problem_set), value=picked),
        gr.update(maximum=total, value=min(DEFAULT_SCORE_QUESTIONS, total)),
        gr.update(maximum=len(problem_set.exemplars)),
        set_description(problem_set),
        set_lesson(problem_set),
        gr.update(value=default_new_tokens(problem_set)),
    )


@ui.user_errors
def on_type_question(question, expected):
    """A question typed by the visitor keeps no expected answer from the built-in question that
    was in the box before (its ✓/✗ would be about another question); a built-in question typed
    or pasted back gets its own answer."""
    builtin = find_problem(question) if isinstance(question, str) else None
    if builtin is not None:
        return builtin.answer
    return gr.skip() if not expected or find_problem_by_answer(expected) is None else ""


def find_problem_by_answer(answer: str):
    """Is this the answer of a built-in question (one the box was filled with, not typed)?"""
    return next((p for s in problem_sets().values() for p in s.items if p.answer == answer), None)


@ui.user_errors
def on_pick_question(set_name, choice):
    if choice in (None, ""):  # no built-in question picked (a typed one is in the box)
        return gr.skip(), gr.skip()
    problem_set = get_problem_set(set_name)
    for problem in problem_set.items:
        if choice == problem.id:
            return problem.question, problem.answer
    raise InputError(f"Unknown question {choice!r}; pick one from the list.")


@ui.user_errors
def on_model(model_label):
    note = model_note(model_label)
    return gr.update(value=note, visible=bool(note))


@ui.user_errors
def on_extract_answer(text: str, kind: str = "number") -> str | None:
    """Read the final answer from a model's reply (kind: number, time, calendar, word, list, text)."""
    if kind not in KINDS:
        raise InputError(f"kind must be one of: {', '.join(KINDS)}.")
    return extract_answer(inputs.as_text(text)[:20_000], kind)
