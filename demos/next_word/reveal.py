"""What Reveal answers, and what every page opens with: the next-token bars (the model's own, and
after the sampling settings), the token table and the tokenization, the candidate buttons, and
the probability and rank of the visitor's own guess. Requests for the same model share one
forward pass (`on_reveal_batch`: gradio's batched event).
"""

from __future__ import annotations

import gradio as gr
import pandas as pd

from demos.next_word.distribution import (
    ROLE, Distribution, check_settings, distributions_for, encode_prompt, load, unique_labels, visible_whitespace,
    vocab_size, word_for,
)
from gallery import catalog, engines, links, opening, text_server, ui
from gallery.catalog import Model
from gallery.errors import InputError, ModelUnavailable

DEFAULT_PROMPT = "The capital of France is"
CANDIDATE_BUTTONS = 5  # "append this token" buttons under the bars
GUESS_PROMPT = "*Type a guess, then press Reveal: your word's probability and rank show here.*"
NO_GUESS_YET = "—"  # what the probability and rank boxes read until there is a guess


# --- what the components show --------------------------------------------------------------------
# Outputs are `gr.update(...)` dicts rather than new components: building a component object per
# request costs about a millisecond each, and this runs on every slider move.
def bars(tokens: list[str], probs: list[float], title: str | None = None) -> dict:
    """New bars for a chart. Only the data (and the label) change: the order is the chart's fixed
    `sort="-y"`. Never send `sort`, `y_lim` or another drawing option with a new value: gradio 6.31
    would then draw the previous value (see `ui.bar_plot`)."""
    frame = pd.DataFrame({"token": unique_labels(tokens), "probability": probs})
    return gr.update(value=frame, visible=True, **({"label": title} if title else {}))


def probability_chart(label: str, **kw) -> gr.BarPlot:
    """A chart of next-token probabilities (0 to 1), highest first; `bars()` fills it."""
    return ui.bar_plot(x="token", y="probability", y_lim=[0, 1], label=label, x_label_angle=-45, height=300, **kw)


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
        f"**{entry.label}** ({d.engine}) read {len(d.prompt.ids)} token{'s' if len(d.prompt.ids) != 1 else ''} "
        f"and gave each of its "
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
    problem = engines.text_engine_problem(entry)
    if problem:
        problem = f"This bundled model's bars come from transformers here, more slowly: {problem}."
    lines += [f"⚠️ {note}" for note in (d.prompt.note, *d.settings.notes, problem, text_server.notice(entry)) if note]
    return "\n\n".join(lines)


def _candidate_buttons(d: Distribution | None) -> list[dict]:
    shown = list(zip(d.tokens, d.model_probs))[:CANDIDATE_BUTTONS] if d else []
    buttons = [gr.update(value=f"+ {token}  ({p:.0%})", visible=True) for token, p in shown]
    return buttons + [gr.update(visible=False)] * (CANDIDATE_BUTTONS - len(buttons))


def distribution_outputs(d: Distribution, entry: Model) -> list:
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
                results[i] = distribution_outputs(d, entry)
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
    link = links.values(request, "next_word")
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
