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
import pandas as pd

from demos import next_word_panels as panels
from demos.next_word_distribution import (
    ROLE, Distribution, bars, check_settings, distributions_for, encode_prompt, load, probability_chart,
    room_model_view, token_text, visible_whitespace, vocab_size, word_for,
)
from demos.next_word_extend import (
    HISTORY_COLUMNS, Step, add_steps, on_clear_history, generate_for, history_outputs, on_inspect_step,
)
from gallery import catalog, inputs, models, opening, room_ui, text_server, ui
from gallery.catalog import Model
from gallery.errors import InputError, ModelUnavailable

TITLE = "Next word: what a language model learns from raw text"
SUMMARY = (
    "**Next word.** Trained on raw text alone, a language model gives every possible next token a "
    "probability. Guess the next word, then reveal the model's bets."
)
# The tab's main controls and result, by elem_id (tests/test_first_screen_browser.py checks them).
FIRST_SCREEN = {"inputs": ["next-word-prompt", "next-word-guess"], "button": "next-word-reveal",
                "result": "next-word-model-bars"}
DEFAULT_PROMPT = "The capital of France is"

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

CANDIDATE_BUTTONS = 5  # "append this token" buttons under the bars
MAX_NEW_TOKENS = 50
MAX_TOP_K = 200  # the slider's end; any k up to the vocabulary is accepted through the API
MAX_BATCH = 8  # next-token requests from different visitors that may share one forward pass

MODEL_SIDE = "The model's own prediction (temperature 1, nothing cut)"
SAMPLING_SIDE = "What sampling draws from (after your settings)"



# --- what the components show --------------------------------------------------------------------
# Outputs are `gr.update(...)` dicts rather than new components: building a component object per
# request costs about a millisecond each, and this runs on every slider move.


def _table(d: Distribution) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "rank": range(1, len(d.token_ids) + 1),
            "token": d.tokens,
            "id": d.token_ids,
            "model p": [round(p, 4) for p in d.model_probs],
            "p after settings": [round(p, 4) for p in d.sampling_probs],
        }
    )


def _summary(d: Distribution, entry: Model) -> str:
    lines = [
        f"**{entry.label}** ({d.engine}) read {len(d.prompt.ids)} token{'s' if len(d.prompt.ids) != 1 else ''} and gave each of its "
        f"{d.vocab_size:,} possible next tokens a probability; the top {len(d.tokens)} hold "
        f"{sum(d.model_probs):.0%} of it.",
        f"Sampling with {d.settings.describe()} can draw from **{d.kept:,}** "
        f"token{'s' if d.kept != 1 else ''}.",
    ]
    if d.top_n:
        lines.append(
            f"The text server sends its top {d.top_n} next tokens with their probabilities; the bars after "
            f"your settings are those {d.top_n} renormalised, and sampling here draws from them only."
        )
    problem = models.text_engine_problem(entry)
    if problem:
        problem = f"This bundled model's bars come from transformers here, more slowly: {problem}."
    lines += [f"⚠️ {note}" for note in (d.prompt.note, *d.settings.notes, problem, text_server.notice(entry)) if note]
    return "\n\n".join(lines)


def _candidate_buttons(d: Distribution | None) -> list[dict]:
    shown = list(zip(d.tokens, d.model_probs))[:CANDIDATE_BUTTONS] if d else []
    buttons = [gr.update(value=f"+ {token}  ({p:.0%})", visible=True) for token, p in shown]
    return buttons + [gr.update(visible=False)] * (CANDIDATE_BUTTONS - len(buttons))


def _distribution_outputs(d: Distribution, entry: Model) -> list:
    """[model bars, sampling bars, table, tokenization, note, *candidate buttons]"""
    return [
        bars(d.tokens, d.model_probs),
        bars(d.tokens, d.sampling_probs),
        _table(d),
        d.pieces,
        _summary(d, entry),
        *_candidate_buttons(d),
    ]


def _error_outputs(message: str) -> list:
    return [None, None, None, None, f"⚠️ {message}", *_candidate_buttons(None)]


# --- handlers ------------------------------------------------------------------------------------
def _distribution_requests(prompts, labels, temperatures, top_ks, top_ps) -> list:
    """Each request's outputs, in order; requests for the same model share one forward pass. A bad
    request gets its InputError (or ModelUnavailable) in its own slot instead."""
    results: list = [None] * len(prompts)
    groups: dict[str | None, list[int]] = {}
    for i, label in enumerate(labels):
        groups.setdefault(label or None, []).append(i)
    for label, rows in groups.items():
        try:
            lm, tokenizer, entry = load(label)
        except (InputError, ModelUnavailable) as error:
            for i in rows:
                results[i] = error
            continue
        good, checked = [], []
        for i in rows:
            try:  # refuse bad values before the shared pass, so they cannot sink the others
                checked.append(check_settings(temperatures[i], top_ks[i], top_ps[i], vocab_size(lm)))
                encode_prompt(tokenizer, prompts[i])
                good.append(i)
            except InputError as error:
                results[i] = error
        if good:
            # (entry: the model that answered, a CPU stand-in when ZeroGPU refused the GPU)
            dists, entry = distributions_for(label, [prompts[i] for i in good], checked)
            for i, d in zip(good, dists):
                results[i] = _distribution_outputs(d, entry)
    return results


@ui.user_errors
def on_reveal(prompt, model_label, temperature, top_k, top_p):
    """The next-token distribution for one request (the unbatched event)."""
    [result] = _distribution_requests([prompt], [model_label], [temperature], [top_k], [top_p])
    if isinstance(result, Exception):
        raise result
    return tuple(result)


@ui.user_errors
def on_reveal_batch(prompt, model_label, temperature, top_k, top_p):
    """The batched event (ui.batch_columns): a bad request in a shared batch gets its message in the note."""
    return ui.batch_columns(_distribution_requests(prompt, model_label, temperature, top_k, top_p), _error_outputs)


GUESS_PROMPT = "*Type a guess, then press Reveal: your word's probability and rank show here.*"
NO_GUESS_YET = "—"  # what the probability and rank boxes read until there is a guess

def _default_label() -> str | None:
    ready = catalog.available(ROLE)
    return ready[0].label if ready else None


# The default prompt's bars from the default model, worked out once (at start) for every page.
OPENING = opening.Opening("next word", lambda label: on_reveal(DEFAULT_PROMPT, label, 1.0, 0, 1.0), _default_label)


@ui.user_errors
def on_load(request: gr.Request):
    """The page opens alive: the default prompt's bars from the default model (`OPENING`, the
    same answer for every page, each its own copy). The load event runs after the page is drawn,
    so it never delays it. A shared link's text gets its own bars."""
    label = _default_label()
    if label is None:
        return tuple(gr.skip() for _ in range(5 + CANDIDATE_BUTTONS))
    link = ui.link_values(request, "next_word")
    if link.get("text"):
        defaults = {"temperature": 1.0, "top_k": 0, "top_p": 1.0}
        return on_reveal(link["text"], label, *(link.get(k, v) for k, v in defaults.items()))
    return OPENING.get(label)


@ui.user_errors
def on_guess(prompt, model_label, guess, temperature, top_k, top_p):
    """The model's probability and rank for the visitor's own next word."""
    if guess is None or not str(guess).strip():
        return GUESS_PROMPT, NO_GUESS_YET, NO_GUESS_YET, None
    lm, _, _ = load(model_label)
    s = check_settings(temperature, top_k, top_p, vocab_size(lm))
    g = word_for(model_label, prompt, str(guess), s)
    pieces = pd.DataFrame(g.pieces, columns=["piece", "id", "model p", "rank", "p after settings"])
    n = len(g.pieces)
    how = "one token" if n == 1 else f"{n} tokens, so its probability is the product of the pieces' (chained)"
    beyond = bool(g.top_n) and g.rank > g.top_n
    if g.rank == 1:
        verdict = "🎯 the model's top choice" + (" for the first piece" if n > 1 else "")
    elif beyond:
        verdict = f"beyond the text server's top {g.top_n}" + (" for the first piece" if n > 1 else "")
    else:
        verdict = f"rank {g.rank:,} among all next tokens" + (" for the first piece" if n > 1 else "")
    odds = f"at most **{g.probability:.2%}**" if g.at_most else f"**{g.probability:.2%}**"
    text = (
        f"Your word **{visible_whitespace(g.continuation)}** is {how}. The model gives it "
        f"{odds} ({verdict}). Under your sampling settings: {g.sampling_probability:.2%}."
    )
    if g.at_most:
        text += (f" (The text server sends no figures beyond its top {g.top_n} tokens, so for a piece beyond "
                 "them only a bound is known: the probability of its last listed token.)")
    shown_p = ("at most " if g.at_most else "") + probability_text(g.probability)
    return text, shown_p, f"beyond the top {g.top_n}" if beyond else f"{g.rank:,}", pieces



def probability_text(p: float) -> str:
    """0.767659 (six decimals, as the table beside it), or 3.14e-07 where six decimals would read 0."""
    return f"{p:.6f}" if p >= 1e-5 else f"{p:.2e}"


def _refresh(label, text, temperature, top_k, top_p) -> list:
    """The distribution outputs for the text after a step (same settings)."""
    return list(on_reveal(text, label, temperature, top_k, top_p))


def _on_candidate(index: int):
    @ui.user_errors
    def append_candidate(prompt, model_label, temperature, top_k, top_p, table, history):
        if table is None or len(table) <= index or "id" not in table:
            raise InputError("Press Reveal first: the candidates come from the bars.")
        row = table.iloc[index]
        _, tokenizer, _ = load(model_label)
        token_id = int(row["id"])
        top = [(str(r["token"]), float(r["model p"]), float(r["p after settings"])) for _, r in table.iterrows()]
        step = Step(str(prompt)[-40:], token_id, str(row["token"]), "clicked", float(row["model p"]), float(row["p after settings"]), top)
        text = str(prompt) + token_text(tokenizer, token_id)
        history = add_steps(history, [step])
        return (text, *history_outputs(history), *_refresh(model_label, text, temperature, top_k, top_p))

    append_candidate.__name__ = f"append_candidate_{index + 1}"
    return append_candidate


@ui.user_errors
def on_generate(prompt, model_label, temperature, top_k, top_p, n, seed, new_seed, history):
    """Append N tokens with model.generate; the seed used is returned (and shown)."""
    lm, _, _ = load(model_label)
    s = check_settings(temperature, top_k, top_p, vocab_size(lm))
    notes = list(s.notes)
    count = inputs.number(inputs.finite(n, "The number of tokens"), "N tokens", 1, MAX_NEW_TOKENS, 1, notes,
                          integer=True)
    seed_used = inputs.seed(seed, notes, draw=bool(new_seed))
    g = generate_for(model_label, prompt, s, count, seed_used)
    history = add_steps(history, g.steps)
    how = "greedily (temperature 0: no randomness, the seed plays no part)" if s.greedy else (
        f"by sampling with {s.describe()} and **seed {seed_used}** (same seed, settings and text: same tokens)"
    )
    lines = [f"Added {len(g.steps)} token{'s' if len(g.steps) != 1 else ''} {how} ({g.engine}): “{g.new_text}”"]
    lines += [f"⚠️ {x}" for x in (*notes, g.note) if x]
    return (
        g.text, seed_used, "\n\n".join(lines), *history_outputs(history),
        *_refresh(model_label, g.text, temperature, top_k, top_p),
    )


@ui.user_errors
def on_sample_next(prompt, model_label, temperature, top_k, top_p, seed, new_seed, history):
    """One sampled token (generate with N = 1)."""
    return on_generate(prompt, model_label, temperature, top_k, top_p, 1, seed, new_seed, history)



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
            prompt = gr.Textbox(label="Text so far", value=DEFAULT_PROMPT, lines=2, max_lines=12, elem_id="next-word-prompt")
            ui.linked(prompt, "next_word", "text")
            with gr.Row(equal_height=True, elem_classes=["keep-together"]):
                guess = gr.Textbox(
                    label="Your guess for the next word", placeholder="type it before you reveal, e.g. Paris", scale=2, min_width=150,
                    elem_id="next-word-guess",
                )
                with gr.Column(scale=1, min_width=120):
                    reveal = ui.model_button("Reveal the next word", ROLE, elem_id="next-word-reveal")
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
        top_k = gr.Slider(0, MAX_TOP_K, value=0, step=1, label="Top-k", elem_id="next-word-top-k", info="keep only the k most likely tokens (0 = off)")
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
        n_tokens = gr.Slider(1, MAX_NEW_TOKENS, value=10, step=1, label="N tokens")
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
        history_table = gr.Dataframe(headers=HISTORY_COLUMNS, label="Steps", interactive=False, wrap=True)
        with gr.Row():
            inspect_step = gr.Dropdown(label="Show a step's distribution", choices=[], scale=3)
            clear = gr.Button("Clear history", scale=1)
        inspect_bars = probability_chart("The distribution at that step", elem_id="next-word-step-bars")
        inspect_table = gr.Dataframe(label="That step's top tokens", interactive=False)

    panels.scale_panel(prompt, ready)
    panels.base_vs_instruct_panel()
    panels.causal_vs_masked_panel(ready)

    for component, key in ((guess, "guess"), (temperature, "temperature"), (top_k, "top_k"), (top_p, "top_p")):
        ui.linked(component, "next_word", key)

    # --- wiring ---
    # preprocess=False on model events: the raw values reach our own checks (plain words for any
    # bad value), and no component-level check can fail a shared batch for one visitor.
    settings_inputs = [temperature, top_k, top_p]
    dist_outputs = [model_bars, sampling_bars, table, tokens, note, *candidates]
    batching = dict(fn=on_reveal_batch, batch=True, max_batch_size=MAX_BATCH) if batch else dict(fn=on_reveal)
    # Sliders: `.input` fires on a drag, on arrow keys and on a number typed in the box (`.release`
    # only on a mouse release); `always_last` so the value the slider stops at is always drawn.
    triggers = [reveal.click, guess.submit, model.change, *(s.input for s in settings_inputs)]
    ui.loading_notice(triggers, ROLE, model, note)
    shown = gr.on(
        triggers, inputs=[prompt, model, *settings_inputs], outputs=dist_outputs, api_name="next_word_bars",
        preprocess=False, trigger_mode="always_last", **batching, **ui.short(),
    )
    ui.bring_into_view(reveal.click, "next-word-model-bars")
    shown.success(
        on_guess, [prompt, model, guess, *settings_inputs], [guess_text, guess_prob, guess_rank, guess_pieces],
        api_name="next_word_guess", preprocess=False, **ui.short(),
    )
    room_ui.count_word_guesses(shown, prompt, guess)
    room_ui.connect_word_view(room_view, prompt, model, room_model_view)
    history_outputs = [history, history_table, inspect_step]
    for i, button in enumerate(candidates):
        button.click(
            _on_candidate(i), [prompt, model, *settings_inputs, table, history],
            [prompt, *history_outputs, *dist_outputs], api_name=f"next_word_append_candidate_{i + 1}", **ui.short(),
        )
    gen_outputs = [prompt, seed, gen_note, *history_outputs, *dist_outputs]
    sample_next.click(
        on_sample_next, [prompt, model, *settings_inputs, seed, new_seed, history], gen_outputs,
        api_name="next_word_sample", preprocess=False, **ui.short(),  # one token: short
    )
    generate_n.click(
        on_generate, [prompt, model, *settings_inputs, n_tokens, seed, new_seed, history], gen_outputs,
        api_name="next_word_generate", preprocess=False, **ui.heavy(),
    )
    # The opening bars (gallery/opening.py): drawn unless this page has already asked for its own.
    own_answers = [*triggers, *(b.click for b in candidates), sample_next.click, generate_n.click]
    opening.connect(on_load, dist_outputs, own_answers, api_name="next_word_opening")
    new_seed.change(ui.user_errors(lambda on: gr.update(interactive=not on)), new_seed, seed, queue=False, api_visibility="private")
    inspect_step.change(on_inspect_step, [history, inspect_step], [inspect_bars, inspect_table], api_name="next_word_inspect_step")
    clear.click(on_clear_history, None, history_outputs, api_name="next_word_clear_history")


if __name__ == "__main__":
    ui.standalone(create_demo, TITLE)

