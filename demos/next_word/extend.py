"""Extending the text one token at a time: `model.generate` (or the llama.cpp engine) appends
tokens drawn with the visitor's settings and seed, and every step keeps the distribution it was
drawn from (the history the tab shows)."""

from __future__ import annotations

from dataclasses import dataclass, field

import gradio as gr
import pandas as pd
import torch

from demos.next_word import reveal
from demos.next_word.distribution import (
    ROLE, MAX_PROMPT_TOKENS, TOP_BARS, Sampling, check_settings, context_length, distributions_for, encode_prompt,
    engine_name, load,
    readable_token, sampling_probabilities, token_text, visible_whitespace, pad_id, vocab_size,
)
from gallery import engines, generation, inputs, settings, text_engine, ui
from gallery.device import gpu, sized
from gallery.errors import InputError

GPU_TOKEN_S = 0.05  # a generated token takes ~50 ms on a GPU
MAX_NEW_TOKENS = 50  # the "N tokens" slider's end
HISTORY_COLUMNS = ["step", "text before", "token", "how", "model p", "p after settings", "top 3 then"]


# --- extending the text --------------------------------------------------------------------------
@dataclass
class Step:
    """One appended token and the distribution it was chosen from (kept in the history)."""

    context: str  # the end of the text before this token
    token_id: int
    token: str  # readable
    how: str  # "clicked", "sampled (seed 7)", "greedy"
    model_prob: float
    sampling_prob: float
    top: list[tuple[str, float, float]] = field(default_factory=list)  # (token, model p, p after settings)


@dataclass
class Generation:
    text: str  # the whole text, new tokens appended
    new_text: str
    steps: list[Step]
    seed: int
    stopped: bool  # the model produced its end-of-text token
    note: str = ""
    engine: str = ""  # what computed the logits the tokens were drawn from


def _engine_tokens(engine, ids: list[int], s: Sampling, n: int, seed: int, eos_ids: set[int]):
    """n tokens from a text engine: -> (new ids, raw logits per step, probabilities after the
    settings per step). Each token is drawn from the engine's logits passed through the same
    warpers as the bars (temperature, then top-k, then top-p), with a generator of its own."""
    generator = torch.Generator().manual_seed(seed)
    afters: list[torch.Tensor] = []

    def pick(step: int, logits: torch.Tensor) -> int:
        after = sampling_probabilities(None, logits[None].float(), s)[0]  # (V,)
        afters.append(after)
        if s.greedy:
            return int(after.argmax())
        return int(torch.multinomial(after, 1, generator=generator))

    new_ids, raws = [], []
    for token, logits in engine.generate(ids, n, pick, eos_ids, max_time=settings.TIME_LIMIT_S):
        new_ids.append(token)
        raws.append(logits[None].float())  # (1, V)
    return new_ids, raws, afters


def generate_tokens(lm, tokenizer, text: str, s: Sampling, n: int, seed: int, engine=None) -> Generation:
    """Append n tokens with `model.generate` (sampling with `s`; greedy at temperature 0), or with
    `engine` (llama.cpp) when given.

    `generate` takes no per-call random generator: the global RNG is seeded for this call alone
    (generation.global_rng_seeded), so two visitors sampling at once cannot mix their seeds."""
    prompt = encode_prompt(tokenizer, text, min(MAX_PROMPT_TOKENS, context_length(lm) - n))
    eos_ids = generation.eos_token_ids(lm, tokenizer)
    if engine is not None:
        new_ids, raws, afters = _engine_tokens(engine, prompt.ids, s, n, seed, eos_ids)
    else:
        input_ids = torch.tensor([prompt.ids], device=lm.device)  # (1, T)
        options = dict(
            max_new_tokens=n,
            pad_token_id=pad_id(tokenizer),
            eos_token_id=sorted(eos_ids),  # the same ids this function stops at below
            return_dict_in_generate=True,
            output_scores=True,  # per step: the logits after the warpers (what was sampled from)
            output_logits=True,  # per step: the raw logits
            max_time=settings.TIME_LIMIT_S,
        )
        if s.greedy:
            options.update(do_sample=False)
        else:  # top_k=0 / top_p=1 switch those warpers off (generate's default top_k is 50)
            options.update(do_sample=True, temperature=s.temperature, top_k=s.top_k, top_p=s.top_p)
        with generation.global_rng_seeded(seed, lm.device), torch.inference_mode():
            out = lm.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), **options)
        new_ids = out.sequences[0, input_ids.shape[1] :].tolist()
        raws = [logits.float().cpu() for logits in out.logits]  # each (1, V)
        afters = [
            out.scores[i].float().cpu().softmax(-1)[0] if not s.greedy else sampling_probabilities(None, raws[i], s)[0]
            for i in range(len(new_ids))
        ]
    how = "greedy" if s.greedy else f"sampled (seed {seed})"
    steps, context = [], text
    for i, token_id in enumerate(new_ids):
        model = text_engine.probabilities(raws[i], engine)[0]
        after = afters[i]
        values, ids = model.topk(min(TOP_BARS, model.shape[-1]))
        top = [(readable_token(tokenizer, int(j)), float(v), float(after[int(j)])) for v, j in zip(values, ids)]
        steps.append(
            Step(context[-40:], token_id, readable_token(tokenizer, token_id), how,
                 float(model[token_id]), float(after[token_id]), top)
        )
        if token_id in eos_ids:
            break
        context += token_text(tokenizer, token_id)
    stopped = bool(new_ids) and new_ids[-1] in eos_ids
    new_text = tokenizer.decode([i for i in new_ids if i not in eos_ids])
    notes = [prompt.note, "The model chose its end-of-text token, so it stopped there." if stopped else ""]
    return Generation(text + new_text, new_text, steps, seed, stopped, " ".join(x for x in notes if x),
                      engine_name(lm, engine))


@gpu(duration=sized(lambda label, text, s, n, *_: GPU_TOKEN_S * n), role=ROLE)
def generate_for(label, text, s: Sampling, n: int, seed: int) -> Generation:
    lm, tokenizer, entry = load(label)
    return generate_tokens(lm, tokenizer, text, s, n, seed, engine=engines.load_text_engine(entry))


def history_outputs(history: list[dict]) -> list:
    rows = [
        [
            h["step"],
            "…" + visible_whitespace(h["context"][-25:]),
            h["token"],
            h["how"],
            round(h["model_prob"], 4),
            round(h["sampling_prob"], 4),
            " · ".join(f"{t} {p:.0%}" for t, p, _ in h["top"][:3]),
        ]
        for h in history
    ]
    choices = [f"{h['step']}: {h['token']}" for h in history]
    return [history, pd.DataFrame(rows, columns=HISTORY_COLUMNS),
            gr.update(choices=choices, value=choices[-1] if choices else None)]


def add_steps(history: list[dict] | None, steps: list[Step]) -> list[dict]:
    history = list(history or [])
    for step in steps:
        history.append({"step": len(history) + 1, **step.__dict__})
    return history


@ui.user_errors
def on_inspect_step(history, choice):
    """Redraw the distribution a past step was chosen from."""
    if not history or not choice:
        return None, None
    try:
        step = int(str(choice).split(":")[0])
        h = history[step - 1]
    except (ValueError, IndexError):
        raise InputError("Pick a step from the list.") from None
    tokens = [t for t, _, _ in h["top"]]
    title = f"Step {step}: after “…{visible_whitespace(h['context'][-25:])}” → {h['token']} ({h['how']})"
    table = pd.DataFrame(h["top"], columns=["token", "model p", "p after settings"]).round(4)
    return reveal.bars(tokens, [p for _, p, _ in h["top"]], title), table


@ui.user_errors
def on_clear_history():
    return tuple(history_outputs([]))


# --- handlers ------------------------------------------------------------------------------------
def _refresh(label, text, temperature, top_k, top_p) -> list:
    """The distribution outputs for the text after a step (same settings)."""
    return list(reveal.on_reveal(text, label, temperature, top_k, top_p))


def on_candidate(index: int):
    @ui.user_errors
    def append_candidate(prompt, model_label, temperature, top_k, top_p, table, history):
        if table is None or len(table) <= index or "id" not in table:
            raise InputError("Press Reveal first: the candidates come from the bars.")
        token_id = int(table.iloc[index]["id"])
        lm, tokenizer, _ = load(model_label)
        # The step records the distribution of the text it was appended to, read now: the chips
        # on the page may still be an earlier text's (a chip tapped before a new Reveal answered).
        settings_now = check_settings(temperature, top_k, top_p, vocab_size(lm))
        [d], _ = distributions_for(model_label, [str(prompt)], [settings_now])
        if token_id not in d.token_ids:
            raise InputError("That candidate was for an earlier text: press Reveal to see this text's candidates.")
        at = d.token_ids.index(token_id)
        top = list(zip(d.tokens, d.model_probs, d.sampling_probs))
        step = Step(str(prompt)[-40:], token_id, d.tokens[at], "clicked", d.model_probs[at], d.sampling_probs[at], top)
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
