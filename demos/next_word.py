"""Next word: a language model learns, from raw text alone, to give every possible next token a
probability. This tab shows that distribution, lets you reshape it the way sampling does
(temperature, top-k, top-p), extend the text one token at a time, and compare model sizes and a
base model with its instruction-tuned sibling.

The maths mirrors transformers' `generate`: the bars after your settings are the model's last
logits passed through the library's own warpers in generate's order (temperature, then top-k,
then top-p) and a softmax; "generate" calls `model.generate` itself, seeded.
"""

from __future__ import annotations

import math
import random
import re
import threading
from dataclasses import dataclass, field
from typing import Sequence

import gradio as gr
import pandas as pd
import torch
from transformers.convert_slow_tokenizer import bytes_to_unicode  # GPT-2's byte -> printable character table

from gallery import catalog, models, room_ui, settings, ui
from gallery.catalog import Model
from gallery.device import gpu, gpu_seconds, sized
from gallery.errors import InputError, ModelUnavailable

TITLE = "Next word: what a language model learns from raw text"
SUMMARY = (
    "**Next word.** From raw text alone, a language model learns to give every possible next token a "
    "probability. Guess the next word, then reveal the model's bets; reshape them the way sampling "
    "does (temperature, top-k, top-p) and extend the text one token at a time."
)
# The tab's main controls and result, by elem_id (tests/test_first_screen_browser.py checks them).
FIRST_SCREEN = {"inputs": ["next-word-prompt", "next-word-guess"], "button": "next-word-reveal",
                "result": "next-word-model-bars"}
ROLE = "next_word"
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
BASE_VS_INSTRUCT_EXAMPLES = [
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "The best way to learn a language is",
]

TOP_BARS = 12  # tokens on each bar chart (the rest of the vocabulary is summed in the note)
CANDIDATE_BUTTONS = 5  # "append this token" buttons under the bars
MAX_PROMPT_TOKENS = 512  # the model reads at most this many (CPU time grows with the length)
MAX_PROMPT_CHARS = 16 * MAX_PROMPT_TOKENS  # cut before tokenizing (text averages ~4 characters a token)
MAX_GUESS_TOKENS = 16
MAX_NEW_TOKENS = 50
MAX_TEMPERATURE = 5.0
MAX_TOP_K = 200  # the slider's end; any k up to the vocabulary is accepted through the API
MAX_BATCH = 8  # next-token requests from different visitors that may share one forward pass
MAX_SEED = 2**32 - 1
NONE = "— (none)"  # an empty slot in the model-size comparison

BASE_LABEL = "SmolLM2-135M (base)"  # the Hub pair for base vs instruct (same size, same data)
INSTRUCT_LABELS = ("SmolLM2-135M-Instruct", catalog.EMBEDDED_LM.label)  # Hub first, then bundled
# Offline, the pre-trained-only bundled Gemma stands in for the base model: a looser pair.
OFFLINE_BASE = catalog.EMBEDDED_GEMMA
LOOSE_PAIR_NOTE = (
    "⚠️ A loose pair: offline, the base model is Google's Gemma-3-270M (pre-trained only) and the "
    "instruct one is Hugging Face's SmolLM2-135M-Instruct, so they also differ in family, size and "
    "training data, not only in the fine-tuning."
)
MIXED_FAMILIES_NOTE = (
    "⚠️ These models come from different families ({families}): different training data, "
    "vocabularies and tuning, so this is only a loose comparison of size. For a clean one, compare "
    "one family in several sizes (SmolLM2 135M / 360M / 1.7B, with the Hub)."
)

MASK_ROLE = "masked_lm"  # the "causal vs masked" panel's model
BLANK = "[MASK]"  # how a visitor marks the blank (replaced by the masked model's own mask token)
DEFAULT_BLANK_TEXT = "The cat sat on the [MASK]."

MODEL_SIDE = "The model's own prediction (temperature 1, nothing cut)"
SAMPLING_SIDE = "What sampling draws from (after your settings)"


# --- readable tokens ---------------------------------------------------------------------------
_BYTE_OF_CHAR = {char: byte for byte, char in bytes_to_unicode().items()}
_WHITESPACE = str.maketrans({" ": "␣", "\n": "↵", "\t": "⇥", "\r": "␍"})


def visible_whitespace(text: str) -> str:
    """' ' -> '␣', newline -> '↵', tab -> '⇥'; other control characters as their hex code."""
    if not text:
        return "∅"
    text = text.translate(_WHITESPACE)
    return "".join(f"⟨{ord(c):02X}⟩" if ord(c) < 32 or ord(c) == 127 else c for c in text)


def token_text(tokenizer, token_id: int) -> str:
    """The text one token adds. SentencePiece vocabularies mark a leading space with '▁', which
    `decode` drops for a lone token; put it back so appending a token never glues two words."""
    text = tokenizer.decode([token_id])
    piece = tokenizer.convert_ids_to_tokens(token_id) or ""
    if piece.startswith("▁") and not text.startswith(" "):
        text = " " + text
    return text


def readable_token(tokenizer, token_id: int) -> str:
    """'␣Paris' for ' Paris', '↵' for a newline; a token that is only part of a multi-byte
    character (an emoji, most CJK) shows its bytes, e.g. '␣⟨E6 97⟩'."""
    text = token_text(tokenizer, token_id)
    if "\ufffd" in text:
        piece = tokenizer.convert_ids_to_tokens(token_id)
        if piece and all(char in _BYTE_OF_CHAR for char in piece):
            raw = bytes(_BYTE_OF_CHAR[char] for char in piece)
            text = visible_whitespace(raw.decode("utf-8", errors="backslashreplace"))
            return re.sub(  # "\\xe6\\x97" -> "⟨E6 97⟩"
                r"(?:\\x[0-9a-f]{2})+",
                lambda m: "⟨" + " ".join(h.upper() for h in m.group(0).split("\\x")[1:]) + "⟩",
                text,
            )
    return visible_whitespace(text)


def _unique(labels: list[str]) -> list[str]:
    """Bar charts need distinct x labels; two tokens can read the same (e.g. two byte pieces)."""
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        out.append(label if seen[label] == 1 else f"{label} ({seen[label]})")
    return out


# --- checking what a visitor (or an API call) sent ----------------------------------------------
def _number(value, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number (got {value!r}).") from None
    if not math.isfinite(number):
        raise InputError(f"{name} must be a finite number (got {value!r}).")
    return number


@dataclass(frozen=True)
class Settings:
    """Sampling settings, already checked. top_k 0 and top_p 1 mean "off", as in transformers."""

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    notes: tuple[str, ...] = ()

    @property
    def greedy(self) -> bool:  # temperature 0: always the most likely token
        return self.temperature == 0.0

    def describe(self) -> str:
        if self.greedy:
            return "temperature 0 (always the most likely token)"
        parts = [f"temperature {self.temperature:g}"]
        parts.append(f"top-k {self.top_k}" if self.top_k else "top-k off")
        parts.append(f"top-p {self.top_p:g}" if self.top_p < 1 else "top-p off")
        return ", ".join(parts)


def check_settings(temperature, top_k, top_p, vocab_size: int) -> Settings:
    """Plain numbers from the sliders or the API -> Settings. Out-of-range values are clamped with
    a note; values that mean nothing (NaN, text, a negative temperature) are refused."""
    notes = []
    t = _number(temperature, "Temperature")
    if t < 0:
        raise InputError(
            "Temperature can't be negative. Use 0 for 'always the most likely token', 1 for the "
            "model's own odds, or more than 1 for more surprises."
        )
    if t > MAX_TEMPERATURE:
        notes.append(f"Temperature {t:g} is above {MAX_TEMPERATURE:g}; {MAX_TEMPERATURE:g} was used.")
        t = MAX_TEMPERATURE
    k = round(_number(top_k, "Top-k"))
    if k < 0:
        notes.append(f"Top-k can't be negative ({k}); 0 (off) was used.")
        k = 0
    elif k >= vocab_size:
        notes.append(f"Top-k {k} keeps the whole vocabulary ({vocab_size:,} tokens), so it cuts nothing: off.")
        k = 0
    p = _number(top_p, "Top-p")
    if not 0 <= p <= 1:
        clamped = min(max(p, 0.0), 1.0)
        notes.append(f"Top-p must be between 0 and 1 (got {p:g}); {clamped:g} was used.")
        p = clamped
    return Settings(temperature=t, top_k=int(k), top_p=p, notes=tuple(notes))


@dataclass(frozen=True)
class Prompt:
    ids: list[int]  # what the model reads
    note: str = ""  # why that is less than what was typed, if it is


def context_length(lm) -> int:
    config = lm.config
    return int(getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", 1024))


def encode_prompt(tokenizer, text, max_tokens: int = MAX_PROMPT_TOKENS, *, chat: bool = False) -> Prompt:
    """Text -> token ids, keeping the *end* of a long text (that is what the next word depends on).
    `chat=True` wraps the text as a user turn in the model's chat template."""
    if text is None or not isinstance(text, str) or not text.strip():
        raise InputError("Type a few words first (or pick an example below).")
    typed_chars = len(text)
    text = text[-MAX_PROMPT_CHARS:]  # a huge paste is not tokenized whole; the end has enough tokens
    if chat:
        if not getattr(tokenizer, "chat_template", None):
            raise InputError("This model has no chat template, so it has no 'instruct' format.")
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": text}], add_generation_prompt=True, tokenize=False
        )
    ids = tokenizer(text, add_special_tokens=not chat, verbose=False)["input_ids"]  # (no length warning)
    note = ""
    if len(ids) > max_tokens or typed_chars > MAX_PROMPT_CHARS:
        ids = ids[-max_tokens:]
        note = (
            f"Your text is {typed_chars:,} characters long; the model reads at most {max_tokens} "
            f"tokens here, so only the last {len(ids)} tokens (about the last "
            f"{len(tokenizer.decode(ids)):,} characters) were used."
        )
    if not ids:
        raise InputError("That text gives no tokens at all; type a few words.")
    return Prompt(ids=list(ids), note=note)


def tokenization(tokenizer, ids: Sequence[int]) -> list[tuple[str, str]]:
    """(readable piece, its id) per token, for gr.HighlightedText."""
    return [(readable_token(tokenizer, i), str(i)) for i in ids]


# --- the model's distribution -------------------------------------------------------------------
def sampling_probabilities(input_ids, logits: torch.Tensor, s: Settings) -> torch.Tensor:
    """(B, V) logits -> (B, V) probabilities that sampling with `s` draws from: transformers' own
    warpers, in the order `generate` applies them, then softmax. Temperature 0 = greedy (one-hot)."""
    logits = logits.float()
    if s.greedy:
        return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).float()
    from transformers import (
        LogitsProcessorList,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    warpers = LogitsProcessorList()
    if s.temperature != 1.0:
        warpers.append(TemperatureLogitsWarper(s.temperature))
    if s.top_k:
        warpers.append(TopKLogitsWarper(top_k=s.top_k))
    if s.top_p < 1.0:
        warpers.append(TopPLogitsWarper(top_p=s.top_p))
    return warpers(input_ids, logits).softmax(-1)


@dataclass
class Distribution:
    """The top tokens of one next-token distribution, before and after the sampling settings."""

    prompt: Prompt
    settings: Settings
    token_ids: list[int]  # the TOP_BARS most likely, most likely first
    tokens: list[str]  # readable
    model_probs: list[float]  # softmax(logits): the model's own prediction
    sampling_probs: list[float]  # after temperature / top-k / top-p
    kept: int  # tokens sampling can still draw (probability > 0 after the settings)
    vocab_size: int
    pieces: list[tuple[str, str]]  # how the prompt was tokenized: (readable piece, id)
    engine: str = ""  # what computed the logits, e.g. "llama.cpp, Q4_1 weights"


def _last_logits(lm, id_lists: list[list[int]], pad_id: int) -> torch.Tensor:
    """One forward pass over several prompts -> (B, V) logits of each prompt's last token.

    Left padding puts every prompt's last token in the last column; the attention mask hides the
    padding and the position ids count real tokens only, so each row equals its unpadded run."""
    width = max(len(ids) for ids in id_lists)
    input_ids = torch.full((len(id_lists), width), pad_id, dtype=torch.long)  # (B, T)
    mask = torch.zeros((len(id_lists), width), dtype=torch.long)  # 1 = real token, 0 = padding
    for row, ids in enumerate(id_lists):
        input_ids[row, width - len(ids) :] = torch.tensor(ids)
        mask[row, width - len(ids) :] = 1
    position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
    device = lm.device
    with torch.inference_mode():
        out = lm(
            input_ids=input_ids.to(device),
            attention_mask=mask.to(device),
            position_ids=position_ids.to(device),
            logits_to_keep=1,  # the LM head only for the last position: (B, 1, V)
            use_cache=False,  # a single pass: no key/value cache to build
        )
    return out.logits[:, -1].float().cpu()


def engine_name(lm, engine=None) -> str:
    """What computes a model's logits, as the page names it."""
    if engine is not None:
        return engine.name
    kind = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}.get(lm.dtype, str(lm.dtype))
    return f"transformers, {kind}"


def _pad_id(tokenizer) -> int:
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return int(pad or 0)


def _distribution(tokenizer, prompt: Prompt, logits: torch.Tensor, s: Settings, top: int, engine: str = "") -> Distribution:
    """(1, V) last-token logits -> Distribution."""
    model = logits.softmax(-1)[0]  # (V,)
    sampled = sampling_probabilities(torch.tensor([prompt.ids]), logits, s)[0]
    values, ids = model.topk(min(top, model.shape[-1]))
    token_ids = [int(i) for i in ids]
    return Distribution(
        prompt=prompt,
        settings=s,
        token_ids=token_ids,
        tokens=[readable_token(tokenizer, i) for i in token_ids],
        model_probs=[float(v) for v in values],
        sampling_probs=[float(sampled[i]) for i in token_ids],
        kept=int((sampled > 0).sum()),
        vocab_size=int(model.shape[-1]),
        pieces=tokenization(tokenizer, prompt.ids),
        engine=engine,
    )


def next_token_distributions(
    lm, tokenizer, texts: Sequence[str], settings_list: Sequence[Settings], *, chat: bool = False,
    top: int = TOP_BARS, engine=None,
) -> list[Distribution]:
    """Several prompts for one model -> one Distribution each, from a single forward pass
    (transformers), or from `engine` (llama.cpp) when given."""
    max_tokens = min(MAX_PROMPT_TOKENS, context_length(lm))
    prompts = [encode_prompt(tokenizer, text, max_tokens, chat=chat) for text in texts]
    if engine is not None:
        logits = engine.logits_batch([p.ids for p in prompts]).float()  # (B, V)
    else:
        logits = _last_logits(lm, [p.ids for p in prompts], _pad_id(tokenizer))  # (B, V)
    name = engine_name(lm, engine)
    return [
        _distribution(tokenizer, prompt, logits[row : row + 1], s, top, name)
        for row, (prompt, s) in enumerate(zip(prompts, settings_list))
    ]


def next_token_distribution(lm, tokenizer, text: str, s: Settings = Settings(), **kw) -> Distribution:
    return next_token_distributions(lm, tokenizer, [text], [s], **kw)[0]


# --- your guess ----------------------------------------------------------------------------------
def _is_cjk(char: str) -> bool:
    return "\u2e80" <= char <= "\u9fff" or "\uac00" <= char <= "\ud7af" or "\uf900" <= char <= "\ufaff"


def guess_continuation(text: str, word: str) -> str:
    """The text a guess adds after the prompt: a space before a word, as a writer would put one,
    unless the prompt already ends in a space or the guess is punctuation or CJK."""
    if not word or not text or text[-1].isspace() or word[0].isspace():
        return word
    if word[0] in ",.;:!?)]}'\"…" or _is_cjk(word[0]) or _is_cjk(text[-1]):
        return word
    return " " + word


@dataclass
class WordGuess:
    continuation: str  # what the guess appends, e.g. " Paris"
    pieces: list[tuple[str, int, float, int, float]]  # (readable, id, model p, rank, p after settings)
    probability: float  # product over the pieces: the model's own odds of the whole word
    sampling_probability: float  # the same under the sampling settings
    rank: int  # rank of the first piece among all next tokens (1 = the model's top choice)
    prompt: Prompt


def word_probability(lm, tokenizer, text: str, word: str, s: Settings = Settings(), engine=None) -> WordGuess:
    """P(word | text) = P(piece 1 | text) · P(piece 2 | text, piece 1) · ..., from one forward pass
    over text + word (the logits at position j predict token j + 1)."""
    if word is None or not isinstance(word, str) or not word.strip():
        raise InputError("Type your guess for the next word first.")
    word = word.rstrip()
    continuation = guess_continuation(text if isinstance(text, str) else "", word)
    word_ids = tokenizer(continuation, add_special_tokens=False)["input_ids"]
    if len(word_ids) > MAX_GUESS_TOKENS:
        raise InputError(f"That guess is {len(word_ids)} tokens long; guess one word (or a few).")
    prompt = encode_prompt(tokenizer, text, min(MAX_PROMPT_TOKENS, context_length(lm) - len(word_ids)))
    read = prompt.ids + word_ids[:-1]  # the last piece is only predicted, never read
    if engine is not None:
        logits = engine.logits_at(read, len(word_ids)).float()  # (pieces, V)
    else:
        with torch.inference_mode():
            logits = lm(input_ids=torch.tensor([read]).to(lm.device), logits_to_keep=len(word_ids), use_cache=False).logits
        logits = logits[0].float().cpu()  # (pieces, V): row i predicts piece i
    model = logits.softmax(-1)
    pieces = []
    p_model = p_sampling = 1.0
    for i, token_id in enumerate(word_ids):
        prefix = torch.tensor([prompt.ids + word_ids[:i]])
        sampled = sampling_probabilities(prefix, logits[i : i + 1], s)[0]
        p = float(model[i, token_id])
        rank = 1 + int((model[i] > model[i, token_id]).sum())
        pieces.append((readable_token(tokenizer, token_id), token_id, p, rank, float(sampled[token_id])))
        p_model *= p
        p_sampling *= float(sampled[token_id])
    return WordGuess(continuation, pieces, p_model, p_sampling, pieces[0][3], prompt)


# --- causal vs masked: one blank, read one way or both ways ---------------------------------------
@dataclass
class BlankFill:
    """A masked LM's guesses for one blank, from the words on both sides of it."""

    before: str  # the text before the blank: all a causal model reads
    after: str  # the text after it: what only the masked model also reads
    tokens: list[str]  # readable, most likely first
    probs: list[float]
    note: str = ""


def split_blank(text) -> tuple[str, str, str]:
    """'The cat sat on the [MASK].' -> ('The cat sat on the', '.', note). No blank: it goes at the
    end (the causal model's only place); more than one is refused."""
    if text is None or not isinstance(text, str) or not text.strip():
        raise InputError(f"Type a sentence with one {BLANK} where the missing word goes.")
    text = text[:MAX_PROMPT_CHARS]
    count = text.count(BLANK)
    if count > 1:
        raise InputError(f"Put one {BLANK} in the sentence (there are {count}): both models fill one blank.")
    if count == 0:
        return text.rstrip(), "", f"There was no {BLANK} in the text, so the blank is at its end."
    before, after = text.split(BLANK)
    if not before.strip():
        raise InputError(f"Put a few words before the {BLANK}: the causal model reads only what comes before it.")
    return before.rstrip(), after, ""


def fill_blank(mlm, tokenizer, text: str, top: int = TOP_BARS) -> BlankFill:
    """The masked model's probabilities for the blank: softmax over the logits at its mask token
    (what transformers' fill-mask pipeline computes), reading the words on both sides."""
    before, after, note = split_blank(text)
    sentence = f"{before} {tokenizer.mask_token}{after}"
    encoded = tokenizer(sentence, truncation=True, max_length=min(MAX_PROMPT_TOKENS, tokenizer.model_max_length),
                        return_tensors="pt")
    where = (encoded["input_ids"][0] == tokenizer.mask_token_id).nonzero()
    if len(where) != 1:  # cut off by the length limit
        raise InputError("The sentence is too long for the masked model to see its blank; shorten it.")
    with torch.inference_mode():
        logits = mlm(**{k: v.to(mlm.device) for k, v in encoded.items()}).logits  # (1, T, V)
    probs = logits[0, int(where[0, 0])].float().softmax(-1).cpu()  # (V,)
    values, ids = probs.topk(min(top, probs.shape[-1]))
    tokens = [visible_whitespace(tokenizer.decode([int(i)]).strip() or tokenizer.convert_ids_to_tokens(int(i))) for i in ids]
    return BlankFill(before, after, tokens, [float(v) for v in values], note)


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


_sampling_lock = threading.Lock()


def _engine_tokens(engine, ids: list[int], s: Settings, n: int, seed: int, eos_ids: set[int]):
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


def generate_tokens(lm, tokenizer, text: str, s: Settings, n: int, seed: int, engine=None) -> Generation:
    """Append n tokens with `model.generate` (sampling with `s`; greedy at temperature 0), or with
    `engine` (llama.cpp) when given.

    `generate` takes no per-call random generator, so the global RNG is seeded inside a lock and
    restored afterwards (`fork_rng`): two visitors sampling at once cannot mix their seeds."""
    prompt = encode_prompt(tokenizer, text, min(MAX_PROMPT_TOKENS, context_length(lm) - n))
    eos = lm.generation_config.eos_token_id
    eos_ids = set(eos if isinstance(eos, list) else [] if eos is None else [eos])
    if engine is not None:
        new_ids, raws, afters = _engine_tokens(engine, prompt.ids, s, n, seed, eos_ids)
    else:
        input_ids = torch.tensor([prompt.ids], device=lm.device)  # (1, T)
        options = dict(
            max_new_tokens=n,
            pad_token_id=_pad_id(tokenizer),
            return_dict_in_generate=True,
            output_scores=True,  # per step: the logits after the warpers (what was sampled from)
            output_logits=True,  # per step: the raw logits
            max_time=settings.TIME_LIMIT_S,
        )
        if s.greedy:
            options.update(do_sample=False)
        else:  # top_k=0 / top_p=1 switch those warpers off (generate's default top_k is 50)
            options.update(do_sample=True, temperature=s.temperature, top_k=s.top_k, top_p=s.top_p)
        # Only the model's own device's RNG: a CPU model on ZeroGPU must not wake CUDA (it is not there).
        rng_devices = [lm.device] if lm.device.type == "cuda" else []
        with _sampling_lock, torch.random.fork_rng(devices=rng_devices), torch.inference_mode():
            torch.manual_seed(seed)
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
        model = raws[i].softmax(-1)[0]
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


# --- models --------------------------------------------------------------------------------------
def load(label: str | None):
    """Dropdown label -> (model, tokenizer, catalogue entry); only catalogue entries ever load."""
    entry = catalog.by_label(ROLE, label)
    lm, tokenizer = models.load_causal_lm(entry)
    return lm, tokenizer, entry


def vocab_size(lm) -> int:
    return int(lm.get_output_embeddings().weight.shape[0])


def base_and_instruct() -> tuple[Model | None, Model | None]:
    """The base model and its instruction-tuned sibling, where each can be loaded here; offline
    the bundled pre-trained-only Gemma is the base (see LOOSE_PAIR_NOTE)."""
    ready = {m.label: m for m in catalog.available(ROLE)}
    instruct = next((ready[label] for label in INSTRUCT_LABELS if label in ready), None)
    return ready.get(BASE_LABEL) or ready.get(OFFLINE_BASE.label), instruct


def model_family(label: str) -> str:
    """'SmolLM2-135M (base)' -> 'SmolLM2', 'Gemma-3-270M (…)' -> 'Gemma', 'GPT-2 (…)' -> 'GPT'."""
    return re.split(r"[-\s]", label.strip(), maxsplit=1)[0]


def families_note(labels: list[str]) -> str:
    families = list(dict.fromkeys(model_family(label) for label in labels))
    return MIXED_FAMILIES_NOTE.format(families=", ".join(families)) if len(families) > 1 else ""


# The functions that run a model take plain values (ZeroGPU pickles the arguments of a GPU call).
# On ZeroGPU the small models skip the GPU (role=ROLE; see gallery.device.gpu); the others ask for
# a duration sized to the call: one forward pass takes ~50 ms on a GPU, a generated token ~50 ms.
GPU_FORWARD_S = 0.05
GPU_TOKEN_S = 0.05


@gpu(duration=sized(lambda label, texts, *_, **__: GPU_FORWARD_S * len(texts)), role=ROLE)
def _distributions_for(label, texts: list[str], settings_list: list[Settings], chat: bool = False):
    lm, tokenizer, entry = load(label)
    engine = models.load_text_engine(entry)  # llama.cpp for a bundled GGUF on CPU, else None
    return next_token_distributions(lm, tokenizer, texts, settings_list, chat=chat, engine=engine), entry


@gpu(duration=gpu_seconds(GPU_FORWARD_S), role=ROLE)
def _word_for(label, text, word, s: Settings) -> WordGuess:
    lm, tokenizer, entry = load(label)
    return word_probability(lm, tokenizer, text, word, s, engine=models.load_text_engine(entry))


@gpu(duration=sized(lambda label, text, s, n, *_: GPU_TOKEN_S * n), role=ROLE)
def _generate_for(label, text, s: Settings, n: int, seed: int) -> Generation:
    lm, tokenizer, entry = load(label)
    return generate_tokens(lm, tokenizer, text, s, n, seed, engine=models.load_text_engine(entry))


@gpu(duration=sized(lambda label, text, words: GPU_FORWARD_S * (1 + len(words))), role=ROLE)
def room_model_view(label, text, words: list[str]) -> tuple[str, list[tuple[float, int | None]], str]:
    """For the presenter's room view, in one call: the model's top next token after `text`, its
    probability and rank for each of the room's words (rank None: too long to score), its name."""
    lm, tokenizer, entry = load(label)
    engine = models.load_text_engine(entry)
    top = next_token_distribution(lm, tokenizer, text, engine=engine).tokens[0]
    scores = []
    for word in words:
        try:
            g = word_probability(lm, tokenizer, text, word, engine=engine)
            scores.append((g.probability, g.rank))
        except InputError:  # e.g. more tokens than a guess may have
            scores.append((0.0, None))
    return top, scores, entry.label


@gpu(duration=gpu_seconds(GPU_FORWARD_S), role=MASK_ROLE)
def _blank_for(label, text: str) -> tuple[BlankFill, Model]:
    entry = catalog.by_label(MASK_ROLE, label)
    mlm, tokenizer = models.load_masked_lm(entry)
    return fill_blank(mlm, tokenizer, text), entry


# --- what the components show --------------------------------------------------------------------
# Outputs are `gr.update(...)` dicts rather than new components: building a component object per
# request costs about a millisecond each, and this runs on every slider move.
def _bars(tokens: list[str], probs: list[float], title: str | None = None) -> dict:
    """New bars for a chart. Only the data (and the label) change: the order is the chart's fixed
    `sort="-y"`. Never send `sort`, `y_lim` or another drawing option with a new value: gradio 6.31
    would then draw the previous value (see `ui.bar_plot`)."""
    frame = pd.DataFrame({"token": _unique(tokens), "probability": probs})
    return gr.update(value=frame, visible=True, **({"label": title} if title else {}))


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
    problem = models.text_engine_problem(entry)
    if problem:
        problem = f"This bundled model runs on transformers here, more slowly: {problem}."
    lines += [f"⚠️ {note}" for note in (d.prompt.note, *d.settings.notes, problem) if note]
    return "\n\n".join(lines)


def _candidate_buttons(d: Distribution | None) -> list[dict]:
    shown = list(zip(d.tokens, d.model_probs))[:CANDIDATE_BUTTONS] if d else []
    buttons = [gr.update(value=f"+ {token}  ({p:.0%})", visible=True) for token, p in shown]
    return buttons + [gr.update(visible=False)] * (CANDIDATE_BUTTONS - len(buttons))


def _distribution_outputs(d: Distribution, entry: Model) -> list:
    """[model bars, sampling bars, table, tokenization, note, *candidate buttons]"""
    return [
        _bars(d.tokens, d.model_probs),
        _bars(d.tokens, d.sampling_probs),
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
            dists, entry = _distributions_for(label, [prompts[i] for i in good], checked)
            for i, d in zip(good, dists):
                results[i] = _distribution_outputs(d, entry)
    return results


@ui.user_errors
def next_token_handler(prompt, model_label, temperature, top_k, top_p):
    """The next-token distribution for one request (the unbatched event)."""
    [result] = _distribution_requests([prompt], [model_label], [temperature], [top_k], [top_p])
    if isinstance(result, Exception):
        raise result
    return tuple(result)


@ui.user_errors
def next_token_batch_handler(prompt, model_label, temperature, top_k, top_p):
    """gradio's batched event: each argument is a list (one value per request), and one list per
    output comes back. A lone bad request gets a plain error; inside a shared batch a bad request
    gets its message in the note, so the other visitors still get their answers (gradio can only
    fail a batch as a whole)."""
    results = _distribution_requests(prompt, model_label, temperature, top_k, top_p)
    if len(results) == 1 and isinstance(results[0], Exception):
        raise results[0]
    rows = [_error_outputs(str(r)) if isinstance(r, Exception) else r for r in results]
    return [list(column) for column in zip(*rows)]


GUESS_PROMPT = "*Type a guess, then press Reveal: your word's probability and rank show here.*"

_opening: dict[str, tuple] = {}  # model label -> the default prompt's outputs, computed once
_opening_lock = threading.Lock()


@ui.user_errors
def on_load(request: gr.Request):
    """The page opens alive: the default prompt's bars from the default model, computed by the
    first visitor's page and served from memory to everyone after (the load event runs after the
    page is drawn, so it never delays it). A shared link's text gets its own bars."""
    ready = catalog.available(ROLE)
    if not ready:
        return tuple(gr.skip() for _ in range(5 + CANDIDATE_BUTTONS))
    label = ready[0].label
    link = ui.link_values(request, "next_word")
    if link.get("text"):
        defaults = {"temperature": 1.0, "top_k": 0, "top_p": 1.0}
        return next_token_handler(link["text"], label, *(link.get(k, v) for k, v in defaults.items()))
    with _opening_lock:
        if label not in _opening:
            _opening[label] = next_token_handler(DEFAULT_PROMPT, label, 1.0, 0, 1.0)
        return _opening[label]


@ui.user_errors
def guess_handler(prompt, model_label, guess, temperature, top_k, top_p):
    """The model's probability and rank for the visitor's own next word."""
    if guess is None or not str(guess).strip():
        return GUESS_PROMPT, None, None, None
    lm, _, _ = load(model_label)
    s = check_settings(temperature, top_k, top_p, vocab_size(lm))
    g = _word_for(model_label, prompt, str(guess), s)
    pieces = pd.DataFrame(g.pieces, columns=["piece", "id", "model p", "rank", "p after settings"])
    n = len(g.pieces)
    how = "one token" if n == 1 else f"{n} tokens, so its probability is the product of the pieces' (chained)"
    if g.rank == 1:
        verdict = "🎯 the model's top choice" + (" for the first piece" if n > 1 else "")
    else:
        verdict = f"rank {g.rank:,} among all next tokens" + (" for the first piece" if n > 1 else "")
    text = (
        f"Your word **{visible_whitespace(g.continuation)}** is {how}. The model gives it "
        f"**{g.probability:.2%}** ({verdict}). Under your sampling settings: "
        f"{g.sampling_probability:.2%}."
    )
    return text, g.probability, g.rank, pieces


HISTORY_COLUMNS = ["step", "text before", "token", "how", "model p", "p after settings", "top 3 then"]


def _history_outputs(history: list[dict]) -> list:
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
    return [history, pd.DataFrame(rows, columns=HISTORY_COLUMNS), gr.update(choices=choices, value=choices[-1] if choices else None)]


def _add_steps(history: list[dict] | None, steps: list[Step]) -> list[dict]:
    history = list(history or [])
    for step in steps:
        history.append({"step": len(history) + 1, **step.__dict__})
    return history


def _refresh(label, text, temperature, top_k, top_p) -> list:
    """The distribution outputs for the text after a step (same settings)."""
    return list(next_token_handler(text, label, temperature, top_k, top_p))


def _candidate_handler(index: int):
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
        history = _add_steps(history, [step])
        return (text, *_history_outputs(history), *_refresh(model_label, text, temperature, top_k, top_p))

    append_candidate.__name__ = f"append_candidate_{index + 1}"
    return append_candidate


def _resolve_seed(seed, new_seed) -> tuple[int, str]:
    if new_seed:
        return random.randrange(MAX_SEED), ""
    try:
        value = _number(seed, "Seed")
    except InputError:
        return random.randrange(MAX_SEED), f"The seed {seed!r} is not a number; a new one was drawn."
    used = int(min(max(round(value), 0), MAX_SEED))
    return used, "" if used == value else f"Seeds are whole numbers from 0 to {MAX_SEED}; {used} was used."


@ui.user_errors
def generate_handler(prompt, model_label, temperature, top_k, top_p, n, seed, new_seed, history):
    """Append N tokens with model.generate; the seed used is returned (and shown)."""
    lm, _, _ = load(model_label)
    s = check_settings(temperature, top_k, top_p, vocab_size(lm))
    asked = round(_number(n, "The number of tokens"))
    count = min(max(asked, 1), MAX_NEW_TOKENS)
    notes = list(s.notes)
    if count != asked:
        notes.append(f"From 1 to {MAX_NEW_TOKENS} tokens per click; {count} were generated.")
    seed_used, seed_note = _resolve_seed(seed, new_seed)
    g = _generate_for(model_label, prompt, s, count, seed_used)
    history = _add_steps(history, g.steps)
    how = "greedily (temperature 0: no randomness, the seed plays no part)" if s.greedy else (
        f"by sampling with {s.describe()} and **seed {seed_used}** (same seed, settings and text: same tokens)"
    )
    lines = [f"Added {len(g.steps)} token{'s' if len(g.steps) != 1 else ''} {how} ({g.engine}): “{g.new_text}”"]
    lines += [f"⚠️ {x}" for x in (*notes, seed_note, g.note) if x]
    return (
        g.text, seed_used, "\n\n".join(lines), *_history_outputs(history),
        *_refresh(model_label, g.text, temperature, top_k, top_p),
    )


@ui.user_errors
def sample_next_handler(prompt, model_label, temperature, top_k, top_p, seed, new_seed, history):
    """One sampled token (generate with N = 1)."""
    return generate_handler(prompt, model_label, temperature, top_k, top_p, 1, seed, new_seed, history)


@ui.user_errors
def inspect_handler(history, choice):
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
    return _bars(tokens, [p for _, p, _ in h["top"]], title), table


@ui.user_errors
def clear_history_handler():
    return tuple(_history_outputs([]))


@ui.user_errors
def compare_handler(prompt, label_a, label_b, label_c):
    """The same text on up to three models, each one's own distribution (temperature 1)."""
    labels = [label if label and label != NONE else None for label in (label_a, label_b, label_c)]
    if not any(labels):
        raise InputError("Pick at least one model to compare.")
    plots, notes = [], []
    for label in labels:
        if label is None:
            plots.append(gr.update(value=None, visible=False))
            continue
        try:
            [d], entry = _distributions_for(label, [prompt], [Settings()])
        except ModelUnavailable as error:  # one missing model should not hide the others
            plots.append(gr.update(value=None, visible=False))
            notes.append(f"⚠️ {label}: {error}")
            continue
        top = f"top {d.tokens[0]} ({d.model_probs[0]:.0%})"
        plots.append(_bars(d.tokens, d.model_probs, f"{entry.label}: {top}"))
        notes.append(f"**{entry.label}**: {top}; the top {len(d.tokens)} hold {sum(d.model_probs):.0%}.")
    caveat = families_note([label for label in labels if label])
    return (*plots, "\n\n".join(notes + ([caveat] if caveat else [])))


@ui.user_errors
def base_vs_instruct_handler(prompt):
    """Base model on the plain text | instruct model on the plain text | instruct model with its
    chat template. Offline the base model is missing and the first panel says so."""
    base, instruct = base_and_instruct()
    if instruct is None:
        raise ModelUnavailable("No instruction-tuned model can be loaded here.")
    plots, notes = [], []
    if base is None:
        plots.append(gr.update(value=None, visible=False))
        notes.append(
            f"⚠️ No base model ({BASE_LABEL}, or the bundled {OFFLINE_BASE.label}) is on this machine, so there is no base panel. "
            "Offline, the two panels show the *same* instruct model reading your words as plain "
            "text, and as a chat message in the format it was fine-tuned on (a stand-in for the "
            f"base-vs-instruct comparison). Run `{settings.PREFETCH_COMMAND}` on a connected "
            "machine to get the base model."
        )
    else:
        [d], entry = _distributions_for(base.label, [prompt], [Settings()])
        plots.append(_bars(d.tokens, d.model_probs, f"Base ({entry.label}), plain text"))
        notes.append(f"**Base** ({entry.label}) just continues the text: top {d.tokens[0]} ({d.model_probs[0]:.0%}).")
        if base.label != BASE_LABEL:
            notes.append(LOOSE_PAIR_NOTE)
    [plain], entry = _distributions_for(instruct.label, [prompt], [Settings()])
    [chat], _ = _distributions_for(instruct.label, [prompt], [Settings()], True)
    plots.append(_bars(plain.tokens, plain.model_probs, f"Instruct ({entry.label}), plain text"))
    plots.append(_bars(chat.tokens, chat.model_probs, f"Instruct ({entry.label}), as a chat message"))
    notes.append(
        f"**Instruct** ({entry.label}) on the plain text: top {plain.tokens[0]} "
        f"({plain.model_probs[0]:.0%}). Wrapped in its chat template ({len(chat.prompt.ids)} tokens "
        f"with the template) it starts an answer instead: top {chat.tokens[0]} ({chat.model_probs[0]:.0%})."
    )
    return (*plots, "\n\n".join(notes))


@ui.user_errors
def causal_vs_masked_handler(text, causal_label, masked_label):
    """One blank, two readers: the causal model's next-token odds from the words before it, the
    masked model's odds for it from the words on both sides."""
    before, after, _ = split_blank(text)
    blank, masked = _blank_for(masked_label, text)
    [d], causal = _distributions_for(causal_label, [before], [Settings()])
    notes = [
        f"**Causal** ({causal.label}) reads only “{visible_whitespace(before[-40:])}” and bets on "
        f"{d.tokens[0]} ({d.model_probs[0]:.0%}).",
        f"**Masked** ({masked.label}) also reads what follows the blank"
        + (f" (“{visible_whitespace(after[:40])}”)" if after.strip() else " (here: nothing but the end)")
        + f" and bets on {blank.tokens[0]} ({blank.probs[0]:.0%}).",
        "The two vocabularies differ, so compare the words, not the token ids.",
    ]
    if blank.note:
        notes.append(f"⚠️ {blank.note}")
    return (
        _bars(d.tokens, d.model_probs, f"Causal ({causal.label}): the words before the blank"),
        _bars(blank.tokens, blank.probs, f"Masked ({masked.label}): both sides of the blank"),
        "\n\n".join(notes),
    )


# --- the tab -------------------------------------------------------------------------------------
def _bar_plot(label: str, **kw) -> gr.BarPlot:
    return ui.bar_plot(x="token", y="probability", y_lim=[0, 1], label=label, x_label_angle=-45, height=300, **kw)


def create_demo(batch: bool = True) -> None:
    """The tab. `batch=False` wires the unbatched next-token handler (for the benchmark)."""
    ui.model_banner(ROLE)
    ui.lesson("next_word", SUMMARY)
    ready = [m.label for m in catalog.available(ROLE)]

    with gr.Row():
        with gr.Column(scale=3):
            prompt = gr.Textbox(label="Text so far", value=DEFAULT_PROMPT, lines=2, max_lines=12, elem_id="next-word-prompt")
            ui.linked(prompt, "next_word", "text")
            with gr.Row(equal_height=True):
                guess = gr.Textbox(
                    label="Your guess for the next word (type it before you reveal)",
                    placeholder="e.g. Paris", scale=2, elem_id="next-word-guess",
                )
                with gr.Column(scale=1, min_width=160):
                    reveal = ui.model_button("Reveal the next word", ROLE, elem_id="next-word-reveal")
            gr.Examples(
                EXAMPLES, [prompt, guess], label="Examples (a text and a guess)", cache_examples=False,
                example_labels=[f"{text.splitlines()[0]} … {word}" for text, word in EXAMPLES],
            )
        with gr.Column(scale=2):
            model = ui.model_dropdown(ROLE)
            if len(ready) == 1:
                gr.Markdown(f"*Only **{ready[0]}** can be loaded on this machine, so it is the only choice.*")
            temperature = gr.Slider(
                0, 2, value=1.0, step=0.05, label="Temperature", elem_id="next-word-temperature",
                info="1 = the model's own odds · lower = safer · 0 = always the top token · higher = wilder",
            )
            top_k = gr.Slider(0, MAX_TOP_K, value=0, step=1, label="Top-k", elem_id="next-word-top-k", info="keep only the k most likely tokens (0 = off)")
            top_p = gr.Slider(
                0, 1, value=1.0, step=0.01, label="Top-p", elem_id="next-word-top-p",
                info="keep the fewest top tokens that together reach p (1 = off)",
            )

    note = gr.Markdown(elem_id="next-word-note")
    with gr.Row():
        model_bars = _bar_plot(MODEL_SIDE, elem_id="next-word-model-bars")
        sampling_bars = _bar_plot(SAMPLING_SIDE, elem_id="next-word-sampling-bars")
    with gr.Row():
        guess_text = gr.Markdown(GUESS_PROMPT)
        guess_prob = gr.Number(label="Probability of your word (model)", interactive=False, precision=6, placeholder="—")
        guess_rank = gr.Number(label="Its rank", interactive=False, precision=0, placeholder="—")
    with gr.Accordion("Your word, piece by piece", open=False):
        guess_pieces = gr.Dataframe(label="Pieces of your word", interactive=False)
    room_view = room_ui.word_view()  # the presenter's: the room's guesses beside the model's

    gr.Markdown("**Extend the text:** click a candidate to append it, or let the model pick.")
    with gr.Row():
        candidates = [gr.Button(visible=False, size="sm") for _ in range(CANDIDATE_BUTTONS)]
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
        inspect_bars = _bar_plot("The distribution at that step", elem_id="next-word-step-bars")
        inspect_table = gr.Dataframe(label="That step's top tokens", interactive=False)

    with gr.Accordion("Scale: the same text on models of different sizes", open=False):
        if families_note(ready[:3]):  # what the three dropdowns start with
            gr.Markdown(families_note(ready[:3]))
        if len(ready) == 1:
            gr.Markdown(
                f"Only **{ready[0]}** is available on this machine, so there is nothing to compare it "
                "with here. With the Hugging Face Hub, pick SmolLM2 135M / 360M / 1.7B (base models) "
                f"or GPT-2; run `{settings.PREFETCH_COMMAND}` once on a connected machine."
            )
        with gr.Row():
            sizes = [
                gr.Dropdown(ready + [NONE], value=ready[i] if i < len(ready) else NONE, label=f"Model {i + 1}")
                for i in range(3)
            ]
        compare = gr.Button("Compare the models")
        with gr.Row():
            size_bars = [_bar_plot(f"Model {i + 1}", elem_id=f"next-word-size-bars-{i + 1}") for i in range(3)]
        size_note = gr.Markdown()

    with gr.Accordion("Base vs instruct: what fine-tuning changes", open=False):
        gr.Markdown(
            "A *base* model only learned to continue text. Its *instruct* sibling was then tuned "
            "on conversations and expects your words wrapped in its chat format."
        )
        bi_prompt = gr.Textbox(label="Question or text", value=BASE_VS_INSTRUCT_EXAMPLES[0])
        gr.Examples([[x] for x in BASE_VS_INSTRUCT_EXAMPLES], [bi_prompt], cache_examples=False)
        bi_run = gr.Button("Compare base and instruct")
        with gr.Row():
            bi_bars = [
                _bar_plot("Base model, plain text", elem_id="next-word-base-bars"),
                _bar_plot("Instruct model, plain text", elem_id="next-word-instruct-plain-bars"),
                _bar_plot("Instruct model, as a chat message", elem_id="next-word-instruct-chat-bars"),
            ]
        bi_note = gr.Markdown()

    with gr.Accordion("Causal vs masked: one blank, read one way or both ways", open=False):
        gr.Markdown(
            "A *causal* model (like the ones above) learned to predict the next token from the words "
            f"before it. A *masked* model (BERT's kind) learned to fill a hidden word, {BLANK}, from the "
            "words on **both** sides. Move the blank, or add words after it, and watch only one of them change."
        )
        ui.model_banner(MASK_ROLE)
        blank_text = gr.Textbox(label=f"A sentence with one {BLANK}", value=DEFAULT_BLANK_TEXT, elem_id="next-word-blank-text")
        with gr.Row():
            blank_causal = gr.Dropdown(ready, value=ready[0] if ready else None, label="Causal model")
            blank_masked = ui.model_dropdown(MASK_ROLE, label="Masked model")
        blank_run = ui.model_button("Fill the blank both ways", MASK_ROLE, elem_id="next-word-blank-run")
        with gr.Row():
            blank_bars = [
                _bar_plot("Causal model: the words before the blank", elem_id="next-word-causal-blank-bars"),
                _bar_plot("Masked model: both sides of the blank", elem_id="next-word-masked-blank-bars"),
            ]
        blank_note = gr.Markdown()

    for component, key in ((guess, "guess"), (temperature, "temperature"), (top_k, "top_k"), (top_p, "top_p")):
        ui.linked(component, "next_word", key)

    # --- wiring ---
    # preprocess=False on model events: the raw values reach our own checks (plain words for any
    # bad value), and no component-level check can fail a shared batch for one visitor.
    settings_inputs = [temperature, top_k, top_p]
    dist_outputs = [model_bars, sampling_bars, table, tokens, note, *candidates]
    batching = dict(fn=next_token_batch_handler, batch=True, max_batch_size=MAX_BATCH) if batch else dict(fn=next_token_handler)
    # Sliders: `.input` fires on a drag, on arrow keys and on a number typed in the box (`.release`
    # only on a mouse release); `always_last` so the value the slider stops at is always drawn.
    shown = gr.on(
        [reveal.click, guess.submit, model.change, *(s.input for s in settings_inputs)],
        inputs=[prompt, model, *settings_inputs], outputs=dist_outputs, api_name="next_word_bars",
        preprocess=False, trigger_mode="always_last", **batching, **ui.short(),
    )
    ui.bring_into_view(reveal.click, "next-word-model-bars")
    gr.on(None, on_load, [], dist_outputs, api_name="next_word_opening", **ui.heavy())
    shown.success(
        guess_handler, [prompt, model, guess, *settings_inputs], [guess_text, guess_prob, guess_rank, guess_pieces],
        api_name="next_word_guess", preprocess=False, **ui.short(),
    )
    room_ui.count_word_guesses(shown, prompt, guess)
    room_ui.connect_word_view(room_view, prompt, model, room_model_view)
    history_outputs = [history, history_table, inspect_step]
    for i, button in enumerate(candidates):
        button.click(
            _candidate_handler(i), [prompt, model, *settings_inputs, table, history],
            [prompt, *history_outputs, *dist_outputs], api_name=f"next_word_append_candidate_{i + 1}", **ui.short(),
        )
    gen_outputs = [prompt, seed, gen_note, *history_outputs, *dist_outputs]
    sample_next.click(
        sample_next_handler, [prompt, model, *settings_inputs, seed, new_seed, history], gen_outputs,
        api_name="next_word_sample", preprocess=False, **ui.short(),  # one token: short
    )
    generate_n.click(
        generate_handler, [prompt, model, *settings_inputs, n_tokens, seed, new_seed, history], gen_outputs,
        api_name="next_word_generate", preprocess=False, **ui.heavy(),
    )
    new_seed.change(lambda on: gr.update(interactive=not on), new_seed, seed, queue=False, api_visibility="private")
    inspect_step.change(inspect_handler, [history, inspect_step], [inspect_bars, inspect_table], api_name="next_word_inspect_step")
    clear.click(clear_history_handler, None, history_outputs, api_name="next_word_clear_history")
    compare.click(
        compare_handler, [prompt, *sizes], [*size_bars, size_note], api_name="next_word_compare_models",
        preprocess=False, **ui.heavy(),
    )
    bi_run.click(
        base_vs_instruct_handler, [bi_prompt], [*bi_bars, bi_note], api_name="next_word_base_vs_instruct",
        preprocess=False, **ui.heavy(),
    )
    blank_run.click(
        causal_vs_masked_handler, [blank_text, blank_causal, blank_masked], [*blank_bars, blank_note],
        api_name="next_word_causal_vs_masked", preprocess=False, **ui.short(),
    )


if __name__ == "__main__":
    ui.standalone(create_demo, TITLE)
