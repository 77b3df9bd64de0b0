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

The parts: `prompts` (strategies, problem sets, prompt text), `answers` (reading and scoring
replies), `run` (one batched, streamed `generate` per request), `compare` (the visitor's values
checked, the results drawn: the handlers); this module declares the tab and lays it out.
"""

from __future__ import annotations

import gradio as gr

from demos.prompting import compare
from demos.prompting.compare import (
    DEFAULT_SCORE_QUESTIONS, EXAMPLES, MAX_NEW_TOKENS, MAX_SAMPLES, MAX_TEMPERATURE, MIN_K, MIN_NEW_TOKENS,
    MIN_SAMPLES, NO_GUESS,
)
from demos.prompting.prompts import (
    DEFAULT_K, DEFAULT_SAMPLES, DEFAULT_SC_TEMPERATURE, DEFAULT_SEED, DEFAULT_TEMPERATURE, STRATEGIES, STRATEGY_HELP,
    problem_sets, question_choices, set_description, set_lesson,
)
from demos.prompting.answers import question_frame
from gallery import links, opening, room_ui, ui

TITLE = "Prompting strategies"
SUMMARY = (
    "**Prompting strategies.** Same model, same question, five ways of asking: zero-shot, few-shot, "
    "chain-of-thought, few-shot chain-of-thought and self-consistency. Run them side by side on one "
    "question, or score them over a whole problem set."
)
# The tab's main controls and result, by elem_id (tests/test_first_screen_browser.py checks them).
FIRST_SCREEN = {"inputs": ["prompting-question", "prompting-strategies"], "button": "prompting-run",
                "result": "prompting-results"}
API_PREFIX = "prompting"  # every api_name of this tab starts with it (tests/test_contract.py)


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
        # compare.on_pick_question checks it.
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
    weak = gr.Markdown(compare.model_note(model.value), visible=bool(compare.model_note(model.value)),
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
                                       value=compare.default_new_tokens(first))
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
    # The opening answers (gallery/opening.py), wired before Run's own handlers: a click counts at once.
    opening.connect(compare.on_load, [summary, *per_strategy, verdict, data], [run.click], api_name="prompting_opening")
    ui.bring_into_view(run.click, "prompting-results")
    links.linked(question, "prompting", "question")
    links.linked(expected, "prompting", "expected")
    ui.loading_notice([run.click], "instruct", model, summary)
    compare_event = run.click(
        compare.on_compare,
        [model, question, expected, strategies, guess, *settings_inputs, set_name],
        [summary, *per_strategy, verdict, data],
        api_name="prompting_compare",
        **ui.heavy(),
    )
    # The opening answers (gallery/opening.py): drawn unless this page has already run its own.
    score_event = score.click(
        compare.on_score,
        [model, set_name, count, strategies, guess, *settings_inputs],
        [score_status, chart, table, score_verdict],
        api_name="prompting_score",
        **ui.heavy(),
    )
    for button in (stop, stop_run):  # cancelling closes the handler's generator, which stops `generate`
        button.click(None, None, None, cancels=[score_event, compare_event], api_visibility="private")
    set_name.change(compare.on_pick_set, [set_name, question], [picked, count, k, set_info, lesson, max_new_tokens],
                    api_name="prompting_problem_set")
    picked.change(compare.on_pick_question, [set_name, picked], [question, expected],
                  api_name="prompting_pick_question")
    question.input(compare.on_type_question, [question, expected], expected, queue=False, api_visibility="private")
    model.change(compare.on_model, model, weak, api_name="prompting_model_note")
    room_ui.count_strategy_votes(guess, STRATEGIES)
    room_ui.connect_strategy_view(room_view, chart, data)
    gr.api(compare.on_extract_answer, api_name="prompting_extract_answer")
