"""Next word: a language model learns, from raw text alone, to give every possible next token a
probability. This tab shows that distribution, lets you reshape it the way sampling does
(temperature, top-k, top-p), extend the text one token at a time, and compare model sizes and a
base model with its instruction-tuned sibling.

The maths mirrors transformers' `generate`: the bars after your settings are the model's last
logits passed through the library's own warpers in generate's order (temperature, then top-k,
then top-p) and a softmax; "generate" calls `model.generate` itself, seeded.
"""

from __future__ import annotations

import gradio as gr

from demos.next_word import distribution, extend, panels, reveal
from demos.next_word.distribution import ROLE
from demos.next_word.reveal import CANDIDATE_BUTTONS, DEFAULT_PROMPT, GUESS_PROMPT, NO_GUESS_YET, probability_chart
from gallery import catalog, links, opening, room_ui, ui

TITLE = "Next word: what a language model learns from raw text"
SUMMARY = (
    "**Next word.** Trained on raw text alone, a language model gives every possible next token a "
    "probability. Guess the next word, then reveal the model's bets."
)
# The tab's main controls and result, by elem_id (tests/test_first_screen_browser.py checks them).
FIRST_SCREEN = {"inputs": ["next-word-prompt", "next-word-guess"], "button": "next-word-reveal",
                "result": "next-word-model-bars"}
API_PREFIX = "next_word"  # every api_name of this tab starts with it (tests/test_contract.py)

EXAMPLES = [  # prompt, your guess: one click fills both
    ["The capital of France is", "Paris"],
    ["The cat sat on the", "mat"],
    ["Once upon a time, there was a little", "girl"],
    ["The opposite of hot is", "cold"],
    ["2 + 2 =", "4"],
    ["def add(a, b):\n    return", "a"],
    ["東京は日本の", "首都"],
    ["I love pizza 🍕 and", "pasta"],
]

MAX_TOP_K = 200  # the slider's end; any k up to the vocabulary is accepted through the API
MAX_BATCH = 8  # next-token requests from different visitors that may share one forward pass
MODEL_SIDE = "The model's own prediction (temperature 1, nothing cut)"
SAMPLING_SIDE = "What sampling draws from (after your settings)"


# --- the tab -------------------------------------------------------------------------------------
def create_demo(batch: bool = True) -> None:
    """The tab. `batch=False` wires the unbatched next-token handler (for the benchmark)."""
    ui.model_banner(ROLE)
    ui.lesson("next_word", SUMMARY)
    ready = [m.label for m in catalog.available(ROLE)]

    # The first screen holds the text, the guess, Reveal and the top of the bars (at 1280×800);
    # on a phone the columns stack, the inputs first. The sliders sit under the bars they reshape.
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=300):
            prompt = gr.Textbox(label="Text so far", value=DEFAULT_PROMPT, lines=2, max_lines=12,
                                elem_id="next-word-prompt")
            links.linked(prompt, "next_word", "text")
            with gr.Row(equal_height=True, elem_classes=["keep-together"]):
                guess = gr.Textbox(
                    label="Your guess for the next word", placeholder="type it before you reveal, e.g. Paris",
                    scale=2, min_width=150,
                    elem_id="next-word-guess",
                )
                with gr.Column(scale=1, min_width=120):
                    reveal_button = ui.model_button("Reveal the next word", ROLE, elem_id="next-word-reveal")
        with gr.Column(scale=1, min_width=300):
            model = ui.model_dropdown(ROLE)
            if len(ready) == 1:
                gr.Markdown(f"*Only **{ready[0]}** can be loaded on this machine, so it is the only choice.*")
            gr.Examples(
                EXAMPLES, [prompt, guess], label="Examples (a text and a guess)", cache_examples=False,
                example_labels=[f"{text.splitlines()[0]} … {word}" for text, word in EXAMPLES],
                elem_id="next-word-examples",
            )

    with gr.Row():
        model_bars = probability_chart(MODEL_SIDE, elem_id="next-word-model-bars")
        sampling_bars = probability_chart(SAMPLING_SIDE, elem_id="next-word-sampling-bars")
    with gr.Row():
        guess_text = gr.Markdown(GUESS_PROMPT)
        # Text boxes, not gr.Number: a Number with no value shows "0", which reads as an answer.
        guess_prob = gr.Textbox(NO_GUESS_YET, label="Probability of your word (model)", interactive=False,
                                elem_id="next-word-guess-probability")
        guess_rank = gr.Textbox(NO_GUESS_YET, label="Its rank", interactive=False, elem_id="next-word-guess-rank")
    note = gr.Markdown(elem_id="next-word-note")
    with gr.Row():
        temperature = gr.Slider(
            0, 2, value=1.0, step=0.05, label="Temperature", elem_id="next-word-temperature",
            info="1 = the model's own odds · lower = safer · 0 = always the top token · higher = wilder",
        )
        top_k = gr.Slider(0, MAX_TOP_K, value=0, step=1, label="Top-k", elem_id="next-word-top-k",
                          info="keep only the k most likely tokens (0 = off)")
        top_p = gr.Slider(
            0, 1, value=1.0, step=0.01, label="Top-p", elem_id="next-word-top-p",
            info="keep the fewest top tokens that together reach p (1 = off)",
        )
    with gr.Accordion("Your word, piece by piece", open=False):
        guess_pieces = gr.Dataframe(label="Pieces of your word", interactive=False)
    room_view = room_ui.word_view()  # the presenter's: the room's guesses beside the model's

    gr.Markdown("**Extend the text:** click a candidate to append it, or let the model pick.")
    with gr.Row():
        candidates = [gr.Button(visible=False, size="sm", elem_id=f"next-word-candidate-{i + 1}")
                      for i in range(CANDIDATE_BUTTONS)]
    with gr.Row():
        # While a new seed is drawn each click the box only shows the seed that was used.
        seed = gr.Number(value=42, label="Seed", precision=0, interactive=False, elem_id="next-word-seed")
        new_seed = gr.Checkbox(value=True, label="New seed each click", elem_id="next-word-new-seed")
        n_tokens = gr.Slider(1, extend.MAX_NEW_TOKENS, value=10, step=1, label="N tokens")
    with gr.Row():
        sample_next = gr.Button("🎲 Sample next token")
        generate_n = gr.Button("Generate N tokens")
    gen_note = gr.Markdown()
    tokens = gr.HighlightedText(
        label="How the model reads your text: one piece per token, with its id",
        show_legend=False, combine_adjacent=False,
    )
    with gr.Accordion("Exact numbers", open=False):
        table = gr.Dataframe(label="Top tokens", interactive=False)

    history = gr.State([])
    with gr.Accordion("History: every token added so far, and what else was likely", open=False):
        history_table = gr.Dataframe(headers=extend.HISTORY_COLUMNS, label="Steps", interactive=False, wrap=True)
        with gr.Row():
            inspect_step = gr.Dropdown(label="Show a step's distribution", choices=[], scale=3)
            clear = gr.Button("Clear history", scale=1)
        inspect_bars = probability_chart("The distribution at that step", elem_id="next-word-step-bars")
        inspect_table = gr.Dataframe(label="That step's top tokens", interactive=False)

    panels.scale_panel(prompt, ready)
    panels.base_vs_instruct_panel()
    panels.causal_vs_masked_panel(ready)

    for component, key in ((guess, "guess"), (temperature, "temperature"), (top_k, "top_k"), (top_p, "top_p")):
        links.linked(component, "next_word", key)

    # --- wiring ---
    # preprocess=False on model events: the raw values reach our own checks (plain words for any
    # bad value), and no component-level check can fail a shared batch for one visitor.
    settings_inputs = [temperature, top_k, top_p]
    dist_outputs = [model_bars, sampling_bars, table, tokens, note, *candidates]
    if batch:
        batching = dict(fn=reveal.on_reveal_batch, batch=True, max_batch_size=MAX_BATCH)
    else:
        batching = dict(fn=reveal.on_reveal)
    # Sliders: `.input` fires on a drag, on arrow keys and on a number typed in the box (`.release`
    # only on a mouse release); `always_last` so the value the slider stops at is always drawn.
    triggers = [reveal_button.click, guess.submit, model.change, *(s.input for s in settings_inputs)]
    # The opening bars (gallery/opening.py): drawn unless this page has already asked for its own.
    # Wired before the handlers of these clicks, so that a click is counted the moment it is made.
    own_answers = [*triggers, *(b.click for b in candidates), sample_next.click, generate_n.click]
    opening.connect(reveal.on_load, dist_outputs, own_answers, api_name="next_word_opening")
    ui.loading_notice(triggers, ROLE, model, note)
    shown = gr.on(
        triggers, inputs=[prompt, model, *settings_inputs], outputs=dist_outputs, api_name="next_word_bars",
        preprocess=False, trigger_mode="always_last", **batching, **ui.short(),
    )
    ui.bring_into_view(reveal_button.click, "next-word-model-bars")
    shown.success(
        reveal.on_guess, [prompt, model, guess, *settings_inputs], [guess_text, guess_prob, guess_rank, guess_pieces],
        api_name="next_word_guess", preprocess=False, **ui.short(),
    )
    room_ui.count_word_guesses(shown, prompt, guess)
    room_ui.connect_word_view(room_view, prompt, model, distribution.room_model_view)
    history_outputs = [history, history_table, inspect_step]
    for i, button in enumerate(candidates):
        button.click(
            extend.on_candidate(i), [prompt, model, *settings_inputs, table, history],
            [prompt, *history_outputs, *dist_outputs], api_name=f"next_word_append_candidate_{i + 1}", **ui.short(),
        )
    gen_outputs = [prompt, seed, gen_note, *history_outputs, *dist_outputs]
    sample_next.click(
        extend.on_sample_next, [prompt, model, *settings_inputs, seed, new_seed, history], gen_outputs,
        api_name="next_word_sample", preprocess=False, **ui.short(),  # one token: short
    )
    generate_n.click(
        extend.on_generate, [prompt, model, *settings_inputs, n_tokens, seed, new_seed, history], gen_outputs,
        api_name="next_word_generate", preprocess=False, **ui.heavy(),
    )
    new_seed.change(ui.user_errors(lambda on: gr.update(interactive=not on)), new_seed, seed, queue=False,
                    api_visibility="private")
    inspect_step.change(extend.on_inspect_step, [history, inspect_step], [inspect_bars, inspect_table],
                        api_name="next_word_inspect_step")
    clear.click(extend.on_clear_history, None, history_outputs, api_name="next_word_clear_history")
