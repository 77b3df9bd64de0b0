"""Same question, five ways of asking: how the shape of a prompt changes what a model can do.

Zero-shot, few-shot (worked examples, answers only), chain-of-thought ("think step by step"),
few-shot chain-of-thought (examples that show their steps) and self-consistency (several sampled
chains of thought, majority answer) run side by side on one model, and can be scored on a whole
problem set. The exact text the model read is shown. Replies stop at the answer (the end of the
line for answer-only prompts, the end of "The answer is …" for reasoning), so scoring a set is quick.

The lesson on two kinds of set: on single-step look-ups (opposites, capitals, plurals…) a few
solved examples make a small model answer in the right form, a large gain; on multi-step sets
(arithmetic, dates, letters) no strategy helps a small model, and chain-of-thought only starts
to pay in bigger models: the chapter's *emergence*.

The parts: `prompting_prompts` (strategies, problem sets, prompt text), `prompting_answers`
(reading and scoring replies), `prompting_run` (one batched, streamed `generate` per request);
this module checks the visitor's values, draws the results and lays out the tab.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from demos.prompting_answers import KINDS, accuracy_frame, extract_answer, guess_kind, guess_verdict, question_frame
from demos.prompting_prompts import (
    DEFAULT_MAX_NEW_TOKENS, FEW_SHOT, FEW_SHOT_COT, SELF_CONSISTENCY, STRATEGIES, STRATEGY_HELP, ProblemSet,
    find_problem, get_problem_set, problem_sets, question_choices, set_description, set_lesson,
)
from demos.prompting_run import StrategyResult, engine_note, run_compare, run_score
from gallery import catalog, inputs, opening, room_ui, ui
from gallery.device import device
from gallery.errors import InputError

TITLE = "Prompting strategies"
SUMMARY = (
    "**Prompting strategies.** Same model, same question, five ways of asking: zero-shot, few-shot, "
    "chain-of-thought, few-shot chain-of-thought and self-consistency. Run them side by side on one "
    "question, or score them over a whole problem set."
)
# The tab's main controls and result, by elem_id (tests/test_first_screen_browser.py checks them).
FIRST_SCREEN = {"inputs": ["prompting-question", "prompting-strategies"], "button": "prompting-run",
                "result": "prompting-results"}
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
DEFAULT_K, MIN_K = 3, 1  # the maximum is the number of worked examples of the set
DEFAULT_SAMPLES, MIN_SAMPLES, MAX_SAMPLES = 5, 1, 10
DEFAULT_TEMPERATURE, DEFAULT_SC_TEMPERATURE, MAX_TEMPERATURE = 0.0, 0.7, 2.0
DEFAULT_SEED = 0
MIN_NEW_TOKENS, MAX_NEW_TOKENS = 16, 512  # the default: DEFAULT_MAX_NEW_TOKENS (prompting_prompts)
MAX_QUESTION_CHARS = 2000
DEFAULT_SCORE_QUESTIONS = 12  # look-up sets: about 1-4 s per question with a bundled model on 2 CPU cores
WEAK_MODEL_NOTE = (
    "**About the bundled models.** SmolLM2-135M-Instruct (135 million parameters, chat-tuned) and "
    "Gemma-3-270M (270 million, pre-trained only) are small. On the look-up sets, a few solved "
    "examples show them the task and the answer format, and the score jumps. On the multi-step "
    "sets (arithmetic, dates, letters) they rarely keep two steps right, whatever the prompt."
)


# --- requests: validation and clamping (pure) ----------------------------------------------------
@dataclass(frozen=True)
class Sampling:
    """How one request samples and prompts (every value already checked)."""
    k: int = DEFAULT_K  # worked examples in the few-shot prompts
    samples: int = DEFAULT_SAMPLES  # self-consistency samples
    temperature: float = DEFAULT_TEMPERATURE  # the four single-answer strategies (0 = greedy)
    sc_temperature: float = DEFAULT_SC_TEMPERATURE  # self-consistency sampling
    seed: int = DEFAULT_SEED
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS


def clean_settings(k=DEFAULT_K, samples=DEFAULT_SAMPLES, temperature=DEFAULT_TEMPERATURE,
                   sc_temperature=DEFAULT_SC_TEMPERATURE, seed=DEFAULT_SEED,
                   max_new_tokens=DEFAULT_MAX_NEW_TOKENS, max_k: int = 5) -> tuple[Sampling, list[str]]:
    notes: list[str] = []
    settings = Sampling(
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
def decoding_summary(strategies: list[str], settings: Sampling, rows: int, set_name: str | None = None,
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
    if label is None or ui.link_values(request, "prompting"):
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
    header = f"Scoring **{count}** of {total} questions of *{problem_set.name}*. " + inputs.notes_markdown(notes, bullet="ℹ️ ")
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


# --- layout --------------------------------------------------------------------------------------
def create_demo() -> None:
    ui.lesson("prompting", SUMMARY)
    ui.model_banner("instruct")
    sets = problem_sets()
    first = next(iter(sets.values()))
    with gr.Row():
        model = ui.model_dropdown("instruct", scale=2, elem_id="prompting-model")
        set_name = gr.Dropdown(list(sets), value=first.name, label="Problem set", scale=1)
        # allow_custom_value: the API may name an item of another set than the one shown at start;
        # on_pick_question checks it.
        picked = gr.Dropdown(question_choices(first), value=first.items[0].id, label="Built-in question",
                             allow_custom_value=True, scale=3)
    with gr.Row():
        question = gr.Textbox(first.items[0].question, label="Question", lines=2, max_lines=8, scale=3,
                              elem_id="prompting-question")
        with gr.Column(scale=1, min_width=240):
            expected = gr.Textbox(first.items[0].answer, label="Expected answer (optional)")
            with gr.Row():
                run = ui.model_button("Run the strategies", "instruct", scale=3, elem_id="prompting-run")
                stop_run = gr.Button("Stop", variant="stop", scale=1, min_width=60)
    with gr.Row():
        strategies = gr.CheckboxGroup(list(STRATEGIES), value=list(STRATEGIES), label="Strategies", scale=3,
                                      elem_id="prompting-strategies")
        guess = gr.Radio([NO_GUESS, *STRATEGIES], value=NO_GUESS, label="Guess first: which one will win?",
                         scale=2,
                         elem_id="prompting-guess")
    weak = gr.Markdown(model_note(model.value), visible=bool(model_note(model.value)),
                       elem_classes=["banner-warning"])
    gr.Examples(EXAMPLES, [question, expected, set_name], label="Or type your own, for example (each "
                "borrows the worked examples of its set)", cache_examples=False,
                example_labels=[(e[0] if len(e[0]) <= 60 else e[0][:57] + "…") for e in EXAMPLES])
    gr.Markdown("**The strategies:** " + "; ".join(f"*{s}*: {h}" for s, h in STRATEGY_HELP.items()) + ".")
    set_info = gr.Markdown(set_description(first))
    with gr.Accordion("Settings: temperature, seed, worked examples, samples, length", open=False,
                      elem_id="prompting-settings"):
        with gr.Row():
            temperature = gr.Slider(0, MAX_TEMPERATURE, value=DEFAULT_TEMPERATURE, step=0.05,
                                    label="Temperature (single-answer strategies; 0 = greedy)")
            sc_temperature = gr.Slider(0, MAX_TEMPERATURE, value=DEFAULT_SC_TEMPERATURE, step=0.05,
                                       label="Self-consistency temperature")
            seed = gr.Number(DEFAULT_SEED, label="Seed", precision=0, minimum=0)
        with gr.Row():
            k = gr.Slider(MIN_K, len(first.exemplars), value=DEFAULT_K, step=1, label="k worked examples",
                          elem_id="prompting-k")
            samples = gr.Slider(MIN_SAMPLES, MAX_SAMPLES, value=DEFAULT_SAMPLES, step=1,
                                label="Self-consistency samples n")
            # Chains of thought need room; a GPU can afford twice the CPU default.
            max_new_tokens = gr.Slider(MIN_NEW_TOKENS, MAX_NEW_TOKENS, step=16, label="Max new tokens",
                                       elem_id="prompting-max-new-tokens",
                                       value=default_new_tokens(first))
    summary = gr.Markdown(elem_id="prompting-summary")
    per_strategy = []
    with gr.Row(equal_height=False, elem_id="prompting-results"):
        for strategy in STRATEGIES:
            slug = strategy.replace(" ", "-")
            with gr.Column(min_width=220) as column:
                header = gr.Markdown(f"### {strategy}", elem_id=f"prompting-header-{slug}")
                text = gr.Textbox(label=f"{strategy} output", lines=10, max_lines=24, interactive=False)
                with gr.Accordion("Exact prompt", open=False, elem_id=f"prompting-prompt-{slug}"):
                    prompt = gr.Textbox(label=f"{strategy} prompt", lines=12, max_lines=30, interactive=False,
                                        buttons=["copy"])
            per_strategy += [column, header, text, prompt]
    verdict = gr.Markdown(elem_id="prompting-verdict")
    with gr.Accordion("Results as data", open=False):
        data = gr.JSON(label="results")
    room_view = room_ui.strategy_view(STRATEGIES)  # the presenter's: the room's votes beside the winner

    gr.Markdown("## Score a whole problem set")
    with gr.Row():
        count = gr.Slider(1, len(first.items), value=min(DEFAULT_SCORE_QUESTIONS, len(first.items)), step=1,
                          label="Questions to score (from the top of the set)", scale=3,
                          elem_id="prompting-count")
        score = gr.Button("Score the set", variant="primary", scale=1)
        stop = gr.Button("Stop", variant="stop", scale=1)
    score_status = gr.Markdown(elem_id="prompting-score-status")
    lesson = gr.Markdown(set_lesson(first), elem_id="prompting-set-lesson")
    score_verdict = gr.Markdown(elem_id="prompting-score-verdict")
    chart = gr.BarPlot(x="strategy", y="accuracy", y_lim=[0, 1], sort=list(STRATEGIES),
                       label="Accuracy per strategy", x_title="strategy", y_title="accuracy",
                       elem_id="prompting-accuracy-bars")
    table = gr.Dataframe(question_frame([], list(STRATEGIES)), label="Per question", wrap=True, interactive=False,
                         elem_id="prompting-table")

    settings_inputs = [k, samples, temperature, sc_temperature, seed, max_new_tokens]
    ui.bring_into_view(run.click, "prompting-results")
    ui.linked(question, "prompting", "question")
    ui.linked(expected, "prompting", "expected")
    ui.loading_notice([run.click], "instruct", model, summary)
    compare_event = run.click(
        on_compare,
        [model, question, expected, strategies, guess, *settings_inputs, set_name],
        [summary, *per_strategy, verdict, data],
        api_name="prompting_compare",
        **ui.heavy(),
    )
    # The opening answers (gallery/opening.py): drawn unless this page has already run its own.
    opening.connect(on_load, [summary, *per_strategy, verdict, data], [run.click], api_name="prompting_opening")
    score_event = score.click(
        on_score,
        [model, set_name, count, strategies, guess, *settings_inputs],
        [score_status, chart, table, score_verdict],
        api_name="prompting_score",
        **ui.heavy(),
    )
    for button in (stop, stop_run):  # cancelling closes the handler's generator, which stops `generate`
        button.click(None, None, None, cancels=[score_event, compare_event], api_visibility="private")
    set_name.change(on_pick_set, [set_name, question], [picked, count, k, set_info, lesson, max_new_tokens],
                    api_name="prompting_problem_set")
    picked.change(on_pick_question, [set_name, picked], [question, expected], api_name="prompting_pick_question")
    question.input(on_type_question, [question, expected], expected, queue=False, api_visibility="private")
    model.change(on_model, model, weak, api_name="prompting_model_note")
    room_ui.count_strategy_votes(guess, STRATEGIES)
    room_ui.connect_strategy_view(room_view, chart, data)
    gr.api(on_extract_answer, api_name="prompting_extract_answer")


if __name__ == "__main__":
    ui.standalone(create_demo, TITLE)
