"""The next-token distribution, from text to numbers (plain values, no Gradio): how a causal language model
reads a text (its tokens), the probability it gives each possible next token, what sampling
settings leave of it, and the probability of a visitor's own next word.

The maths mirrors transformers' `generate`: the bars after the settings are the model's last
logits passed through the library's own warpers in generate's order (temperature, then top-k,
then top-p) and a softmax."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import torch
from transformers.convert_slow_tokenizer import bytes_to_unicode  # GPT-2's byte -> printable character table

from gallery import catalog, engines, generation, inputs, models, text_engine
from gallery.device import gpu, gpu_seconds, sized
from gallery.errors import InputError

ROLE = "next_word"
TOP_BARS = 12  # tokens on each bar chart (the rest of the vocabulary is summed in the note)
MAX_PROMPT_TOKENS = 512  # the model reads at most this many (CPU time grows with the length)
MAX_PROMPT_CHARS = 16 * MAX_PROMPT_TOKENS  # cut before tokenizing (text averages ~4 characters a token)
MAX_GUESS_TOKENS = 16
MAX_TEMPERATURE = 5.0


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


def unique_labels(labels: list[str]) -> list[str]:
    """Bar charts need distinct x labels; two tokens can read the same (e.g. two byte pieces)."""
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        out.append(label if seen[label] == 1 else f"{label} ({seen[label]})")
    return out


# --- checking what a visitor (or an API call) sent ----------------------------------------------
@dataclass(frozen=True)
class Sampling:
    """How the next token is drawn (every value already checked). top_k 0 and top_p 1 mean "off", as in transformers."""

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


def check_settings(temperature, top_k, top_p, vocab_size: int) -> Sampling:
    """Plain numbers from the sliders or the API -> Sampling. Out-of-range values are clamped with
    a note; values that mean nothing (NaN, text, a negative temperature) are refused."""
    notes = []
    t = inputs.finite(temperature, "Temperature")
    if t < 0:
        raise InputError(
            "Temperature can't be negative. Use 0 for 'always the most likely token', 1 for the "
            "model's own odds, or more than 1 for more surprises."
        )
    t = inputs.number(t, "Temperature", 0.0, MAX_TEMPERATURE, 1.0, notes)
    k = round(inputs.finite(top_k, "Top-k"))
    if k >= vocab_size:  # not out of range: it means "off", said in the tab's own words
        notes.append(f"Top-k {k} keeps the whole vocabulary ({vocab_size:,} tokens), so it cuts nothing: off.")
        k = 0
    k = inputs.number(k, "Top-k", 0, vocab_size, 0, notes, integer=True, why="0 is off")
    p = inputs.number(inputs.finite(top_p, "Top-p"), "Top-p", 0.0, 1.0, 1.0, notes)
    return Sampling(temperature=t, top_k=int(k), top_p=p, notes=tuple(notes))


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
def sampling_probabilities(input_ids, logits: torch.Tensor, s: Sampling) -> torch.Tensor:
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
    settings: Sampling
    token_ids: list[int]  # the TOP_BARS most likely, most likely first
    tokens: list[str]  # readable
    model_probs: list[float]  # softmax(logits): the model's own prediction
    sampling_probs: list[float]  # after temperature / top-k / top-p
    kept: int  # tokens sampling can still draw (probability > 0 after the settings)
    vocab_size: int
    pieces: list[tuple[str, str]]  # how the prompt was tokenized: (readable piece, id)
    engine: str = ""  # what computed the logits, e.g. "llama.cpp, Q4_1 weights"
    top_n: int | None = None  # a text server's: it sent its top N tokens only (None: every token)


def last_logits(lm, id_lists: list[list[int]], pad_id: int) -> torch.Tensor:
    """One forward pass over several prompts -> (B, V) logits of each prompt's last token.

    Left padding puts every prompt's last token in the last column; the attention mask hides the
    padding and the position ids count real tokens only, so each row equals its unpadded run."""
    batch = generation.left_padded(id_lists, pad_id)  # input_ids, attention_mask, position_ids: (B, T)
    device = lm.device
    with torch.inference_mode():
        out = lm(
            **{name: tensor.to(device) for name, tensor in batch.items()},
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


def pad_id(tokenizer) -> int:
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return int(pad or 0)


def _distribution(tokenizer, prompt: Prompt, logits: torch.Tensor, s: Sampling, top: int, engine: str = "",
                  source=None) -> Distribution:
    """(1, V) last-token logits (from the engine `source`, if any) -> Distribution."""
    model = text_engine.probabilities(logits, source)[0]  # (V,)
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
        top_n=getattr(source, "top_n", None),
    )


def next_token_distributions(
    lm, tokenizer, texts: Sequence[str], settings_list: Sequence[Sampling], *, chat: bool = False,
    top: int = TOP_BARS, engine=None,
) -> list[Distribution]:
    """Several prompts for one model -> one Distribution each, from a single forward pass
    (transformers), or from `engine` (llama.cpp) when given."""
    max_tokens = min(MAX_PROMPT_TOKENS, context_length(lm))
    prompts = [encode_prompt(tokenizer, text, max_tokens, chat=chat) for text in texts]
    if engine is not None:
        logits = engine.logits_batch([p.ids for p in prompts]).float()  # (B, V)
    else:
        logits = last_logits(lm, [p.ids for p in prompts], pad_id(tokenizer))  # (B, V)
    name = engine_name(lm, engine)
    return [
        _distribution(tokenizer, prompt, logits[row : row + 1], s, top, name, engine)
        for row, (prompt, s) in enumerate(zip(prompts, settings_list))
    ]


def next_token_distribution(lm, tokenizer, text: str, s: Sampling = Sampling(), **kw) -> Distribution:
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
    # A text server lists its top N next tokens only (None: every token). A piece beyond them has
    # rank > top_n, and its probability is only known to be at most the N-th's: `probability`
    # is then that bound ("at most"), and `at_most` is True.
    top_n: int | None = None
    at_most: bool = False


def word_probability(lm, tokenizer, text: str, word: str, s: Sampling = Sampling(), engine=None) -> WordGuess:
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
            logits = lm(input_ids=torch.tensor([read]).to(lm.device), logits_to_keep=len(word_ids),
                        use_cache=False).logits
        logits = logits[0].float().cpu()  # (pieces, V): row i predicts piece i
    model = text_engine.probabilities(logits, engine)
    top_n = getattr(engine, "top_n", None)
    pieces = []
    p_model = p_sampling = 1.0
    at_most = False
    for i, token_id in enumerate(word_ids):
        prefix = torch.tensor([prompt.ids + word_ids[:i]])
        sampled = sampling_probabilities(prefix, logits[i : i + 1], s)[0]
        p = float(model[i, token_id])
        rank = 1 + int((model[i] > model[i, token_id]).sum())
        if top_n and p == 0.0:  # not in the server's list: at most the N-th listed token's probability
            p = float(model[i].topk(top_n).values[-1])
            at_most = True
        pieces.append((readable_token(tokenizer, token_id), token_id, p, rank, float(sampled[token_id])))
        p_model *= p
        p_sampling *= float(sampled[token_id])
    return WordGuess(continuation, pieces, p_model, p_sampling, pieces[0][3], prompt, top_n, at_most)


# --- models --------------------------------------------------------------------------------------
def load(label: str | None):
    """Dropdown label -> (model, tokenizer, catalogue entry); only catalogue entries ever load."""
    entry = catalog.by_label(ROLE, label)
    lm, tokenizer = models.load_causal_lm(entry)
    return lm, tokenizer, entry


def vocab_size(lm) -> int:
    return int(lm.get_output_embeddings().weight.shape[0])


# The functions that run a model take plain values (ZeroGPU pickles the arguments of a GPU call).
# On ZeroGPU the small models skip the GPU (role=ROLE; see gallery.device.gpu); the others ask for
# a duration sized to the call: one forward pass takes ~50 ms on a GPU, a generated token ~50 ms.
GPU_FORWARD_S = 0.05
GPU_TOKEN_S = 0.05


@gpu(duration=sized(lambda label, texts, *_, **__: GPU_FORWARD_S * len(texts)), role=ROLE)
def distributions_for(label, texts: list[str], settings_list: list[Sampling], chat: bool = False):
    lm, tokenizer, entry = load(label)
    engine = engines.distribution_engine(entry, tokenizer)  # llama.cpp for a bundled GGUF on CPU, else None
    return next_token_distributions(lm, tokenizer, texts, settings_list, chat=chat, engine=engine), entry


@gpu(duration=gpu_seconds(GPU_FORWARD_S), role=ROLE)
def word_for(label, text, word, s: Sampling) -> WordGuess:
    lm, tokenizer, entry = load(label)
    return word_probability(lm, tokenizer, text, word, s, engine=engines.distribution_engine(entry, tokenizer))


@gpu(duration=sized(lambda label, text, words: GPU_FORWARD_S * (1 + len(words))), role=ROLE)
def room_model_view(label, text, words: list[str]) -> tuple[str, list[tuple[float, int | None]], str]:
    """For the presenter's room view, in one call: the model's top next token after `text`, its
    probability and rank for each of the room's words (rank None: too long to score), its name."""
    lm, tokenizer, entry = load(label)
    engine = engines.distribution_engine(entry, tokenizer)
    top = next_token_distribution(lm, tokenizer, text, engine=engine).tokens[0]
    scores = []
    for word in words:
        try:
            g = word_probability(lm, tokenizer, text, word, engine=engine)
            scores.append((g.probability, g.rank))
        except InputError:  # e.g. more tokens than a guess may have
            scores.append((0.0, None))
    return top, scores, entry.label
