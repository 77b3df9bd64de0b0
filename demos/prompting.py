"""Same question, five ways of asking: how the shape of a prompt changes what a model can do.

Zero-shot, few-shot (worked examples, answers only), chain-of-thought ("think step by step"),
few-shot chain-of-thought (examples that show their steps) and self-consistency (several sampled
chains of thought, majority answer) run side by side on one model, and can be scored on a whole
problem set. Every row of one request goes through ONE left-padded `generate` call.

Two prompt styles: an instruct model reads chat turns through its own chat template; a
pre-trained-only model (Gemma-270M offline) reads plain "Q: … A:" blocks, as GPT-3 did. Either
way the exact text the model read is shown. Replies stop at the answer (the end of the line for
answer-only prompts, the end of "The answer is …" for reasoning), so scoring a set is quick.

The lesson on two kinds of set: on single-step look-ups (opposites, capitals, plurals…) a few
solved examples make a small model answer in the right form, a large gain; on multi-step sets
(arithmetic, dates, letters) no strategy helps a small model, and chain-of-thought only starts
to pay in bigger models: the chapter's *emergence*.

How the streaming works (transformers' own streamers only take one sequence): `RowStreamer` is a
`BaseStreamer` that receives the whole batch's new token ids at every decoding step, shape (B,),
and keeps them per row; `generate` runs in a worker thread and the handler yields the decoded
rows a few times a second.
"""

from __future__ import annotations

import json
import math
import queue
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import Iterator

import gradio as gr
import pandas as pd
import torch

from gallery import catalog, models, room_ui, settings as gallery_settings, ui
from gallery.device import device, gpu, sized
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
PROBLEMS_DIR = Path(__file__).resolve().parent.parent / "assets" / "problems"
# The bundled model the default set was chosen for: on it, few-shot beats zero-shot by the most
# (README table; checked by a real-weights test).
DEFAULT_SET_MODEL = catalog.EMBEDDED_GEMMA
# assets/problems/<name>.json; the first is the default. Look-ups first: there a few examples make
# the bundled models answer (measured: benchmarks/prompting_accuracy.py); multi-step sets last.
PROBLEM_SET_FILES = ("french", "word_forms", "units", "sequences", "opposites", "capitals",
                     "arithmetic", "dates", "letters")

ZERO_SHOT, FEW_SHOT, COT, FEW_SHOT_COT, SELF_CONSISTENCY = (
    "zero-shot",
    "few-shot",
    "chain-of-thought",
    "few-shot chain-of-thought",
    "self-consistency",
)
STRATEGIES = (ZERO_SHOT, FEW_SHOT, COT, FEW_SHOT_COT, SELF_CONSISTENCY)
BASIC_STRATEGIES = STRATEGIES[:4]
STRATEGY_HELP = {
    ZERO_SHOT: "the question alone, asking for the answer only",
    FEW_SHOT: "k solved examples first (answers only), then the question",
    COT: "the question, asking the model to think step by step",
    FEW_SHOT_COT: "k solved examples that show their steps, then the question",
    SELF_CONSISTENCY: "the few-shot chain-of-thought prompt sampled n times; the majority answer wins",
}
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

# The two instructions appended to every question (and to every worked example's question).
ANSWER_ONLY = 'Reply with the final answer only, in the form "The answer is ...".'
STEP_BY_STEP = 'Think step by step, then end with "The answer is ...".'
# A pre-trained-only model gets no instructions: "Q: … A:" blocks (GPT-3 style); zero-shot
# chain-of-thought adds the classic trigger after the "A:" (Kojima et al., 2022).
PLAIN_COT_TRIGGER = "Let's think step by step."
ANSWER_ONLY_STRATEGIES = (ZERO_SHOT, FEW_SHOT)  # their reply is one line; the others reason first

# Defaults and limits. Gradio refuses out-of-range slider values sent to the API; every number is
# still clamped here too (direct calls, the seed box, a set with fewer questions than the slider).
DEFAULT_K, MIN_K = 3, 1  # the maximum is the number of worked examples of the set
DEFAULT_SAMPLES, MIN_SAMPLES, MAX_SAMPLES = 5, 1, 10
DEFAULT_TEMPERATURE, DEFAULT_SC_TEMPERATURE, MAX_TEMPERATURE = 0.0, 0.7, 2.0
DEFAULT_SEED = 0
DEFAULT_MAX_NEW_TOKENS, MIN_NEW_TOKENS, MAX_NEW_TOKENS = 128, 16, 512
MAX_QUESTION_CHARS = 2000
DEFAULT_SCORE_QUESTIONS = 12  # look-up sets: about 1-4 s per question with a bundled model on 2 CPU cores
STREAM_EVERY_S = 0.25  # how often the page gets the partial texts
WEAK_MODEL_NOTE = (
    "**About the bundled models.** SmolLM2-135M-Instruct (135 million parameters, chat-tuned) and "
    "Gemma-3-270M (270 million, pre-trained only) are small. On the look-up sets, a few solved "
    "examples show them the task and the answer format, and the score jumps. On the multi-step "
    "sets (arithmetic, dates, letters) they rarely keep two steps right, whatever the prompt."
)
# Beside the results: what to expect from each kind of set (the chapter's *emergence*).
LOOKUP_LESSON = (
    "📈 **Look-ups: the examples define the task.** Asked cold, a small model often replies in the "
    "wrong form or drifts off; three solved examples show it exactly what is wanted. The gain is "
    "largest on the pre-trained-only model, which was never taught to follow a question at all "
    "(the GPT-3 result: few-shot examples turn a text continuer into a task solver)."
)
REASONING_LESSON = (
    "🧗 **Chain-of-thought needs a bigger model.** On multi-step problems every strategy scores "
    "low on the bundled 135M/270M models, and writing out steps does not help them: they cannot "
    "yet do each step reliably. The gain from showing steps appears only past a certain scale — "
    "the chapter's *emergence* (Wei et al., 2022, saw it at around 100B parameters on their "
    "benchmarks; today's small models, trained on worked solutions, get there far sooner). With "
    "the Hub, compare Qwen2.5-0.5B-Instruct with Qwen2.5-1.5B-Instruct here to see where it starts "
    "(not measured on this offline machine)."
)


# --- problem sets ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Problem:
    id: str
    question: str
    answer: str
    kind: str  # number | time | calendar | word | list | text: how answers are read and compared


@dataclass(frozen=True)
class Example:
    question: str
    reasoning: str
    answer: str


@dataclass(frozen=True)
class ProblemSet:
    key: str
    name: str
    description: str
    default_kind: str
    exemplars: tuple[Example, ...]  # the worked examples; never among the scored items
    items: tuple[Problem, ...]
    multi_step: bool = False  # needs several steps (the emergence lesson) rather than one look-up
    max_new_tokens: int = 128  # room a reply needs here (look-ups stop long before)


@cache
def problem_sets() -> dict[str, ProblemSet]:
    """The built-in sets, by display name (in the order of PROBLEM_SET_FILES)."""
    sets = {}
    for key in PROBLEM_SET_FILES:
        data = json.loads((PROBLEMS_DIR / f"{key}.json").read_text(encoding="utf-8"))
        sets[data["name"]] = ProblemSet(
            key=key,
            name=data["name"],
            description=data["description"],
            default_kind=data["default_kind"],
            exemplars=tuple(Example(e["question"], e["reasoning"], e["answer"]) for e in data["exemplars"]),
            items=tuple(Problem(i["id"], i["question"], i["answer"], i["kind"]) for i in data["items"]),
            multi_step=bool(data.get("multi_step", False)),
            max_new_tokens=int(data.get("max_new_tokens", DEFAULT_MAX_NEW_TOKENS)),
        )
    return sets


def set_description(problem_set: ProblemSet) -> str:
    return (f"*{problem_set.description}* {len(problem_set.items)} questions, "
            f"{len(problem_set.exemplars)} worked examples (the few-shot prompts use these, also for "
            "a question you type).")


def set_lesson(problem_set: ProblemSet) -> str:
    return REASONING_LESSON if problem_set.multi_step else LOOKUP_LESSON


def get_problem_set(name: str | None) -> ProblemSet:
    sets = problem_sets()
    if not name:
        return next(iter(sets.values()))
    for problem_set in sets.values():
        if name in (problem_set.name, problem_set.key):
            return problem_set
    raise InputError(f"Unknown problem set {name!r}. Pick one of: {', '.join(sets)}.")


def question_choices(problem_set: ProblemSet) -> list[tuple[str, str]]:
    """Dropdown entries: (what the page shows, what the API takes: the item id)."""
    return [(f"{p.id} · {p.question}", p.id) for p in problem_set.items]


def find_problem(question: str, problem_set: ProblemSet | None = None) -> Problem | None:
    """The built-in item with exactly this question text, if any (its kind and answer are known);
    only in `problem_set` when given."""
    for candidate in [problem_set] if problem_set else problem_sets().values():
        for problem in candidate.items:
            if problem.question == question.strip():
                return problem
    return None


# --- answer extraction: text -> canonical answer (pure, no model) ----------------------------------
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")
KINDS = ("number", "time", "calendar", "word", "list", "text")
NUMBER_WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty".split())}

# "The answer is 18", "Answer: 18", "final answer = 18", "\boxed{18}" (case-insensitive).
_MARKER = re.compile(r"(?:the\s+)?(?:final\s+)?answer\s*(?:is|:|=)\s*:?", re.I)
_BOXED = re.compile(r"\\boxed\{(?P<rest>[^{}]*)\}")
_SENTENCE_END = re.compile(r"\.(?=\s|$)|[!?;]")
# 1,250 · -3 · 2.5 · $12.50 · 15kg; a thousands comma needs exactly 3 digits after it.
_NUMBER = re.compile(r"(?<![\w.])([-−]?)\$?(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?!\d)")
_TIME = re.compile(r"\b(\d{1,2})\s*[:.h]\s*(\d{2})\s*([ap])?\.?\s*(?:m\b\.?)?|\b(\d{1,2})\s*([ap])\.?\s*m\b", re.I)
_CALENDAR = re.compile(r"\b(" + "|".join(WEEKDAYS + MONTHS) + r")\b", re.I)
_FILLER = re.compile(  # "the letter r" -> "r"
    r"^(?:the\s+)?(?:letters?|words?|string|result|day|month|item|list)\b\s*(?:is\s+)?:?\s*", re.I
)
_QUOTES = "\"'“”‘’`*[]()"


def answer_span(text: str) -> str | None:
    """The words after the last "The answer is" / "Answer:" / "\\boxed{...}", up to the end of
    that sentence; None when the text has no such marker."""
    text = text.replace("**", "")
    matches = [(m.start(), text[m.end() :].split("\n", 1)[0], False) for m in _MARKER.finditer(text)]
    matches += [(m.start(), m.group("rest"), True) for m in _BOXED.finditer(text)]
    if not matches:
        return None
    _, rest, boxed = max(matches, key=lambda m: m[0])  # the last one in the text
    if not boxed:
        end = _SENTENCE_END.search(rest)
        rest = rest[: end.start()] if end else rest
    return rest.strip()


def _canonical_number(sign: str, whole: str, fraction: str | None) -> str:
    value = Decimal(whole.replace(",", "") + (fraction or ""))
    if sign:
        value = -value
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def _numbers(text: str) -> list[str]:
    return [_canonical_number(*m.groups()) for m in _NUMBER.finditer(text)]


def _times(text: str) -> list[str]:
    found = []
    for m in _TIME.finditer(text):
        hours, minutes, half = (int(m[1]), int(m[2]), m[3]) if m[1] else (int(m[4]), 0, m[5])
        if hours > 24 or minutes > 59:
            continue
        if half and half.lower() == "p" and hours < 12:
            hours += 12
        elif half and half.lower() == "a" and hours == 12:
            hours = 0
        found.append(f"{hours % 24:02d}:{minutes:02d}")
    return found


def _words(text: str) -> list[str]:
    return re.findall(r"[^\W_]+(?:['-][^\W_]+)*", text)


def _list_items(text: str) -> list[str]:
    text = re.sub(r"\s+and\s+", ", ", text.strip().strip(_QUOTES + ".:"), flags=re.I)
    parts = text.split(",") if "," in text else text.split()
    items = [p.strip().strip(_QUOTES + ".:").strip().lower() for p in parts]
    return [item for item in items if item]


def extract_answer(text: str, kind: str = "number") -> str | None:
    """The model's final answer in canonical form, or None if none can be read.

    1. If the text says "The answer is …", "Answer: …" or "\\boxed{…}", read the last such span.
    2. Otherwise fall back to the last thing of the right kind (last number, last time...).
    Canonical forms: numbers "1250", "-3", "2.5"; times "21:15" (24-hour clock); weekday and
    month names capitalised; a word or a phrase in lower case; lists "a, b, c" in lower case.
    """
    if not text or not text.strip():
        return None
    text = text.replace("**", "")
    span = answer_span(text)
    if kind == "number":
        if span is not None:
            after_equals = span.rsplit("=", 1)[-1]  # "3 × 12 − 9 = 27" -> "27"
            numbers = _numbers(after_equals) or _numbers(span)
            if numbers:
                return numbers[0]
            for word in _words(span.lower()):
                if word in NUMBER_WORDS:
                    return str(NUMBER_WORDS[word])
        numbers = _numbers(text)
        return numbers[-1] if numbers else None
    if kind == "time":
        times = _times(span) if span is not None else []
        if times:
            return times[0]
        times = _times(text)
        return times[-1] if times else None
    if kind == "calendar":
        names = _CALENDAR.findall(span) if span is not None else []
        if names:
            return names[0].capitalize()
        names = _CALENDAR.findall(text)
        return names[-1].capitalize() if names else None
    if kind == "list":
        if span is None:
            lines = [line for line in text.strip().splitlines() if line.strip()]
            span = lines[-1].rsplit(":", 1)[-1] if lines else ""
        items = _list_items(span)
        return ", ".join(items) if items else None
    if kind == "text":  # a free phrase ("New York"): every word of the span, lower case
        if span is None:
            lines = [line for line in text.strip().splitlines() if line.strip()]
            span = lines[-1].rsplit(":", 1)[-1] if lines else ""
        words = _words(span)
        return " ".join(words).lower() if words else None
    if kind == "word":
        if span is not None:
            words = _words(_FILLER.sub("", span.strip(_QUOTES + " ")))
            return words[0].lower() if words else None
        lines = [line for line in text.strip().splitlines() if line.strip()]
        words = _words(lines[-1]) if lines else []
        return words[-1].lower() if words else None
    raise ValueError(f"unknown answer kind {kind!r}")


def normalize(value: str, kind: str) -> str | None:
    """An expected answer in the same canonical form as `extract_answer` gives."""
    if kind == "word":
        words = _words(value)
        return words[0].lower() if len(words) == 1 else " ".join(w.lower() for w in words) or None
    return extract_answer(value, kind)


def is_correct(predicted: str | None, expected: str | None, kind: str) -> bool | None:
    """True/False against the expected answer; None when there is no expected answer."""
    if expected is None or not str(expected).strip():
        return None
    target = normalize(str(expected), kind)
    if predicted is None or target is None:
        return False
    if kind == "number":
        try:
            return Decimal(predicted) == Decimal(target)
        except InvalidOperation:
            return False
    return predicted.lower() == target.lower()


def guess_kind(expected: str | None, default: str = "number") -> str:
    """How to read answers to a typed question, from the shape of its expected answer."""
    value = (expected or "").strip()
    if not value:
        return default
    if re.fullmatch(r"\d{1,2}:\d{2}\s*(?:[ap]\.?m\.?)?", value, re.I):
        return "time"
    if re.fullmatch(r"[-−]?\$?[\d,]*\d(?:\.\d+)?\s*%?", value):
        return "number"
    if re.fullmatch(_CALENDAR.pattern, value, re.I):
        return "calendar"
    if "," in value:
        return "list"
    return "word" if len(_words(value)) <= 1 else "text"


def majority_vote(answers: list[str | None]) -> tuple[str | None, dict[str, int]]:
    """The most frequent answer (unreadable ones do not vote); a tie goes to the answer that
    appeared first. -> (winner, {answer: votes} in order of first appearance)."""
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return None, {}
    order = list(dict.fromkeys(a for a in answers if a is not None))
    best = max(order, key=lambda a: (counts[a], -order.index(a)))
    return best, {a: counts[a] for a in order}


# --- requests: validation and clamping (pure) ----------------------------------------------------
@dataclass(frozen=True)
class Settings:
    k: int = DEFAULT_K  # worked examples in the few-shot prompts
    samples: int = DEFAULT_SAMPLES  # self-consistency samples
    temperature: float = DEFAULT_TEMPERATURE  # the four single-answer strategies (0 = greedy)
    sc_temperature: float = DEFAULT_SC_TEMPERATURE  # self-consistency sampling
    seed: int = DEFAULT_SEED
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS


def _clamp(value, low, high, default, name: str, notes: list[str], integer: bool = False):
    """A number from the page or the API, forced into [low, high]; every change gets a note."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if math.isnan(number):
        if value not in (None, ""):
            notes.append(f"{name} {value!r} is not a number; using {default}.")
        return default
    clamped = min(max(number, low), high)
    if clamped != number:
        notes.append(f"{name} {number:g} is outside {low}–{high}; using {clamped:g}.")
    return int(round(clamped)) if integer else clamped


def clean_settings(k=DEFAULT_K, samples=DEFAULT_SAMPLES, temperature=DEFAULT_TEMPERATURE,
                   sc_temperature=DEFAULT_SC_TEMPERATURE, seed=DEFAULT_SEED,
                   max_new_tokens=DEFAULT_MAX_NEW_TOKENS, max_k: int = 5) -> tuple[Settings, list[str]]:
    notes: list[str] = []
    settings = Settings(
        k=_clamp(k, MIN_K, max_k, min(DEFAULT_K, max_k), "k (worked examples)", notes, integer=True),
        samples=_clamp(samples, MIN_SAMPLES, MAX_SAMPLES, DEFAULT_SAMPLES, "Samples n", notes, integer=True),
        temperature=_clamp(temperature, 0.0, MAX_TEMPERATURE, DEFAULT_TEMPERATURE, "Temperature", notes),
        sc_temperature=_clamp(
            sc_temperature, 0.0, MAX_TEMPERATURE, DEFAULT_SC_TEMPERATURE, "Self-consistency temperature", notes
        ),
        seed=_clamp(seed, 0, 2**31 - 1, DEFAULT_SEED, "Seed", notes, integer=True),
        max_new_tokens=_clamp(
            max_new_tokens, MIN_NEW_TOKENS, MAX_NEW_TOKENS, DEFAULT_MAX_NEW_TOKENS, "Max new tokens", notes,
            integer=True,
        ),
    )
    if settings.sc_temperature == 0:
        notes.append("Self-consistency at temperature 0 draws the same chain every time, so the vote is trivial.")
    return settings, notes


def as_text(value) -> str:
    """Whatever the API sent for a text field, as a string (None -> "")."""
    return "" if value is None else value if isinstance(value, str) else str(value)


def clean_question(question: str | None) -> str:
    text = as_text(question).strip()
    if not text:
        raise InputError("Type a question, or pick one from the built-in set.")
    if len(text) > MAX_QUESTION_CHARS:
        raise InputError(
            f"That question is {len(text):,} characters long; this demo takes up to "
            f"{MAX_QUESTION_CHARS:,}. Please shorten it."
        )
    return text


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


# --- prompts (pure) -------------------------------------------------------------------------------
def build_messages(strategy: str, question: str, exemplars: tuple[Example, ...], k: int) -> list[dict]:
    """The chat for one strategy. Worked examples are earlier user/assistant turns, so the chat
    template marks them exactly as it marks a real conversation."""
    shots = exemplars[:k]
    if strategy == ZERO_SHOT:
        return [{"role": "user", "content": f"{question}\n{ANSWER_ONLY}"}]
    if strategy == COT:
        return [{"role": "user", "content": f"{question}\n{STEP_BY_STEP}"}]
    if strategy == FEW_SHOT:
        instruction, reply = ANSWER_ONLY, lambda e: f"The answer is {e.answer}."
    elif strategy in (FEW_SHOT_COT, SELF_CONSISTENCY):
        instruction, reply = STEP_BY_STEP, lambda e: f"{e.reasoning} The answer is {e.answer}."
    else:
        raise InputError(f"Unknown strategy {strategy!r}.")
    messages = []
    for example in shots:
        messages.append({"role": "user", "content": f"{example.question}\n{instruction}"})
        messages.append({"role": "assistant", "content": reply(example)})
    messages.append({"role": "user", "content": f"{question}\n{instruction}"})
    return messages


def render_prompt(tokenizer, messages: list[dict]) -> str:
    """The exact text the model reads: the chat template applied, ready for the reply."""
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def build_plain_prompt(strategy: str, question: str, exemplars: tuple[Example, ...], k: int) -> str:
    """The plain-text prompt for a pre-trained-only model: "Q: … A: …" blocks, no instructions.
    Few-shot examples give their answer alone; chain-of-thought ones their steps first."""
    shots = exemplars[:k]
    if strategy == ZERO_SHOT:
        return f"Q: {question}\nA:"
    if strategy == COT:
        return f"Q: {question}\nA: {PLAIN_COT_TRIGGER}"
    if strategy == FEW_SHOT:
        reply = lambda e: e.answer  # noqa: E731
    elif strategy in (FEW_SHOT_COT, SELF_CONSISTENCY):
        reply = lambda e: f"{e.reasoning} The answer is {e.answer}."  # noqa: E731
    else:
        raise InputError(f"Unknown strategy {strategy!r}.")
    blocks = [f"Q: {e.question}\nA: {reply(e)}" for e in shots]
    return "\n\n".join([*blocks, f"Q: {question}\nA:"])


def render_plain(tokenizer, text: str) -> str:
    """The exact text a plain prompt is read as: with the tokenizer's begin-of-text token in front
    when the model expects one (Gemma does; it goes astray without it)."""
    bos = tokenizer.bos_token
    if bos and tokenizer.bos_token_id is not None and tokenizer("x")["input_ids"][:1] == [tokenizer.bos_token_id]:
        return bos + text
    return text


def uses_plain_prompts(entry, tokenizer) -> bool:
    """Pre-trained-only models, and any model without a chat template, read plain text."""
    return bool(getattr(entry, "pretrained_only", False)) or not getattr(tokenizer, "chat_template", None)


@dataclass(frozen=True)
class RowPlan:
    strategy: str
    prompt: str
    temperature: float  # 0 = greedy
    style: str = "chat"  # chat | plain: how the prompt was written, and so where the reply ends


def plan_rows(tokenizer, question: str, strategies: list[str], problem_set: ProblemSet,
              settings: Settings, plain: bool = False) -> list[RowPlan]:
    """One batch row per single-answer strategy, plus n rows for self-consistency."""
    rows = []
    style = "plain" if plain else "chat"
    for strategy in strategies:
        if plain:
            prompt = render_plain(tokenizer, build_plain_prompt(strategy, question, problem_set.exemplars, settings.k))
        else:
            prompt = render_prompt(tokenizer, build_messages(strategy, question, problem_set.exemplars, settings.k))
        if strategy == SELF_CONSISTENCY:
            rows += [RowPlan(strategy, prompt, settings.sc_temperature, style)] * settings.samples
        else:
            rows.append(RowPlan(strategy, prompt, settings.temperature, style))
    return rows


# --- where a reply ends (pure) --------------------------------------------------------------------
# After "The answer is …": a sentence end followed by a space or a line break, or a line break
# ("3.5" does not end it: the dot must be followed by white space).
_ANSWER_SAID = re.compile(r"\S[^\n]*?(?:[.!?](?=\s)|\n)")


def reply_end(text: str, strategy: str, style: str) -> int | None:
    """Where the reply has said its answer (an index into `text`; the rest is dropped), or None
    while it has not. Answer-only strategies end at their first line break after some text;
    reasoning ends with the sentence that follows "The answer is". In plain "Q: … A:" text, a
    blank line or a new "Q:" starts the next block, so the reply ends there too."""
    if strategy in ANSWER_ONLY_STRATEGIES:
        start = len(text) - len(text.lstrip())
        newline = text.find("\n", start)
        if newline != -1:
            return newline
    if style == "plain":
        # A new "Q:" block (maybe before any answer at all), or a blank line after some text.
        next_block = text.find("Q:") if text.lstrip().startswith("Q:") else text.find("\nQ:")
        blank = text.find("\n\n")
        ends = [at for at in (next_block, blank if blank != -1 and text[:blank].strip() else -1) if at != -1]
        if ends:
            return min(ends)
    markers = list(_MARKER.finditer(text))
    if markers:
        said = _ANSWER_SAID.search(text, markers[-1].end())
        if said:
            return said.end()
    return None


# --- batched generation with per-row streaming ---------------------------------------------------
def _make_row_sampler(temperatures: list[float], seed: int):
    """A logits processor that samples the rows with temperature > 0 itself, with its own seeded
    torch.Generator (never the global RNG), and turns their scores into a one-hot; `generate`
    runs in greedy mode, so rows at temperature 0 stay exactly greedy and the others take the
    drawn token. Pure temperature sampling: no top-k or top-p."""
    from transformers import LogitsProcessor

    class RowSampler(LogitsProcessor):
        def __init__(self):
            self.rows = [i for i, t in enumerate(temperatures) if t > 0]
            self.generator = None

        def __call__(self, input_ids, scores):  # scores: (B, vocab)
            if not self.rows:
                return scores
            if self.generator is None:
                self.generator = torch.Generator(device=scores.device).manual_seed(seed)
            rows = torch.tensor(self.rows, device=scores.device)
            temps = torch.tensor([temperatures[i] for i in self.rows], device=scores.device, dtype=scores.dtype)
            probs = torch.softmax(scores[rows] / temps[:, None], dim=-1)  # (R, vocab)
            picks = torch.multinomial(probs, 1, generator=self.generator)  # (R, 1)
            out = scores.clone()
            out[rows] = -math.inf
            out[rows, picks[:, 0]] = 0.0
            return out

    return RowSampler()


def _make_stop_criterion(stop: threading.Event):
    from transformers import StoppingCriteria

    class StopWhenAsked(StoppingCriteria):
        """Ends every row at the next step once `stop` is set (Stop button, closed page)."""

        def __call__(self, input_ids, scores, **kwargs):
            return torch.full((input_ids.shape[0],), stop.is_set(), dtype=torch.bool, device=input_ids.device)

    return StopWhenAsked()


def _make_answer_criterion(plan_strategies: list[str], styles: list[str], tokenizer, prompt_length: int,
                           streamer: "RowStreamer"):
    from transformers import StoppingCriteria

    class StopAtAnswer(StoppingCriteria):
        """Ends each row once its reply has said the answer (`reply_end`); the streamer keeps the
        row's tokens up to that step and ignores the padding that follows."""

        def __call__(self, input_ids, scores, **kwargs):
            done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
            new = input_ids[:, prompt_length:].tolist()
            for row, ids in enumerate(new):
                if streamer.stop_length[row] is not None:
                    done[row] = True
                    continue
                text = tokenizer.decode(ids, skip_special_tokens=True)
                if reply_end(text, plan_strategies[row], styles[row]) is not None:
                    streamer.stop_length[row] = len(ids)
                    done[row] = True
            return done

    return StopAtAnswer()


def eos_token_ids(lm, tokenizer) -> set[int]:
    ids = lm.generation_config.eos_token_id
    ids = set(ids if isinstance(ids, (list, tuple)) else [ids] if ids is not None else [])
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return ids


@dataclass
class BatchState:
    """What the batch has produced so far. tokens[i]: row i's new token ids, end token excluded."""

    tokens: list[list[int]]
    finished_s: list[float | None]  # seconds from the start until row i ended
    done: bool = False


class RowStreamer:
    """A `generate` streamer for a whole batch (transformers' own streamers take one row).

    `generate` calls put() first with the prompt ids (B, T), then once per step with the new
    token of every row (B,); rows that have ended get the pad token, which is ignored here.
    Each call pushes a snapshot onto a queue for the thread that serves the page."""

    def __init__(self, batch_size: int, eos_ids: set[int], out: queue.Queue):
        self.eos_ids, self.out = eos_ids, out
        self.tokens: list[list[int]] = [[] for _ in range(batch_size)]
        self.finished_s: list[float | None] = [None] * batch_size
        self.stop_length: list[int | None] = [None] * batch_size  # set when a row has said its answer
        self.started = time.perf_counter()
        self.prompt_seen = False

    def _snapshot(self, done: bool) -> BatchState:
        return BatchState([list(t) for t in self.tokens], list(self.finished_s), done)

    def put(self, value: torch.Tensor) -> None:
        if not self.prompt_seen:  # the first call carries the prompts, not new tokens
            self.prompt_seen = True
            return
        now = time.perf_counter() - self.started
        for row, token in enumerate(value.reshape(-1).tolist()):
            if self.finished_s[row] is not None:
                continue
            if token in self.eos_ids:
                self.finished_s[row] = now
                continue
            self.tokens[row].append(token)
            limit = self.stop_length[row]
            if limit is not None and len(self.tokens[row]) >= limit:
                self.finished_s[row] = now
        self.out.put(self._snapshot(False))

    def end(self) -> None:
        now = time.perf_counter() - self.started
        self.finished_s = [now if s is None else s for s in self.finished_s]  # ran out of tokens
        self.out.put(self._snapshot(True))


class _Discard:
    """A queue that keeps nothing (the engine path reads the streamer's snapshots directly)."""

    def put(self, item) -> None:
        pass


def _stream_with_engine(engine, lm, tokenizer, prompts: list[str], temperatures: list[float], seed: int,
                        max_new_tokens: int, stop: threading.Event, every_s: float) -> Iterator[BatchState]:
    """stream_generate on a text engine (llama.cpp): every row decoded together, one engine batch
    per step; rows at temperature 0 take the top token, the others sample softmax(logits / t)
    with one seeded generator, as RowSampler does."""
    generator = torch.Generator().manual_seed(seed)

    def pick(row: int, step: int, logits: torch.Tensor) -> int:
        t = temperatures[row]
        if t <= 0:
            return int(logits.argmax())
        return int(torch.multinomial(torch.softmax(logits.float() / t, dim=-1), 1, generator=generator))

    ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    streamer = RowStreamer(len(prompts), eos_token_ids(lm, tokenizer), _Discard())
    streamer.prompt_seen = True  # the engine hands over new tokens only
    last_sent = 0.0
    try:
        for tokens, _ in engine.generate_batch(ids, max_new_tokens, pick, streamer.eos_ids,
                                               max_time=gallery_settings.TIME_LIMIT_S, stop=stop):
            streamer.put(torch.tensor([-1 if t is None else t for t in tokens]))  # ended rows: ignored
            state = streamer._snapshot(False)
            if time.perf_counter() - last_sent >= every_s:
                last_sent = time.perf_counter()
                yield state
        streamer.end()
        yield streamer._snapshot(True)
    finally:
        stop.set()


def stream_generate(lm, tokenizer, prompts: list[str], temperatures: list[float], seed: int,
                    max_new_tokens: int, stop: threading.Event | None = None,
                    every_s: float = STREAM_EVERY_S, engine=None,
                    stop_at_answer: list[tuple[str, str]] | None = None) -> Iterator[BatchState]:
    """Run every prompt in ONE left-padded `generate` call (or one engine batch per step, with
    `engine`); yield the batch's progress at most every `every_s` seconds, and the finished
    batch last. Closing the iterator stops generation.
    stop_at_answer: per row (strategy, style); each row then ends once it has said its answer
    (transformers path; the llama.cpp engine path runs rows to their end token)."""
    from transformers import LogitsProcessorList, StoppingCriteriaList

    if engine is not None:
        yield from _stream_with_engine(engine, lm, tokenizer, prompts, temperatures, seed, max_new_tokens,
                                       stop or threading.Event(), every_s)
        return

    # Left padding: every row's last prompt token sits in the last column, where the next token
    # is predicted. padding_side is passed per call because the tokenizer is shared.
    batch = tokenizer(prompts, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False)
    batch = {name: tensor.to(lm.device) for name, tensor in batch.items()}  # input_ids, attention_mask: (B, T)
    stop = stop or threading.Event()
    updates: queue.Queue = queue.Queue()
    streamer = RowStreamer(len(prompts), eos_token_ids(lm, tokenizer), updates)
    criteria = [_make_stop_criterion(stop)]
    if stop_at_answer:
        criteria.append(_make_answer_criterion([s for s, _ in stop_at_answer], [t for _, t in stop_at_answer],
                                               tokenizer, batch["input_ids"].shape[1], streamer))

    def work() -> None:
        try:
            with torch.inference_mode():
                lm.generate(
                    **batch,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,  # greedy; RowSampler does the sampling for rows that want it
                    temperature=1.0, top_p=1.0, top_k=50,  # neutral: a model's own sampling defaults stay off
                    repetition_penalty=1.0,
                    max_time=gallery_settings.TIME_LIMIT_S,  # a bound on one request's generation
                    pad_token_id=tokenizer.pad_token_id,
                    eos_token_id=sorted(streamer.eos_ids),
                    logits_processor=LogitsProcessorList([_make_row_sampler(temperatures, seed)]),
                    stopping_criteria=StoppingCriteriaList(criteria),
                    streamer=streamer,
                )
        except BaseException as error:  # reaches the page through the queue
            updates.put(error)

    worker = threading.Thread(target=work, name="prompting-generate", daemon=True)
    worker.start()
    last_sent = 0.0
    try:
        while True:
            try:
                state = updates.get(timeout=1.0)
            except queue.Empty:
                if worker.is_alive():
                    continue
                raise RuntimeError("the generation thread ended without a result") from None
            while not isinstance(state, BaseException) and not state.done and not updates.empty():
                state = updates.get()  # the page only needs the latest snapshot
            if isinstance(state, BaseException):
                raise state
            if state.done or time.perf_counter() - last_sent >= every_s:
                last_sent = time.perf_counter()
                yield state
            if state.done:
                return
    finally:
        stop.set()  # a closed iterator (Stop, page closed) ends the worker at its next step


# --- one question, every chosen strategy ---------------------------------------------------------
@dataclass
class StrategyResult:
    strategy: str
    prompt: str
    texts: list[str] = field(default_factory=list)  # one per sample (one for single-answer strategies)
    answers: list[str | None] = field(default_factory=list)
    answer: str | None = None  # the final answer (the majority for self-consistency)
    votes: dict[str, int] = field(default_factory=dict)
    correct: bool | None = None
    tokens: int = 0  # new tokens, all samples together
    seconds: float = 0.0  # from the batch's start until this strategy's last row ended
    finished: bool = False
    temperature: float = 0.0


def collect_results(plan: list[RowPlan], state: BatchState | None, tokenizer, expected: str | None,
                    kind: str) -> list[StrategyResult]:
    """Group the batch rows back into strategies, decode, read answers, vote, compare."""
    results: dict[str, StrategyResult] = {}
    for row, item in enumerate(plan):
        result = results.setdefault(
            item.strategy, StrategyResult(item.strategy, item.prompt, temperature=item.temperature)
        )
        if state is None:
            continue
        ids = state.tokens[row]
        text = tokenizer.decode(ids, skip_special_tokens=True)
        end = reply_end(text, item.strategy, item.style) if state.finished_s[row] is not None else None
        text = text[:end].rstrip() if end is not None else text  # what followed the answer is not shown
        result.texts.append(text)
        result.tokens += len(ids)
        ended = state.finished_s[row]
        result.answers.append(extract_answer(text, kind) if ended is not None else None)
        rows_of_strategy = [state.finished_s[i] for i, p in enumerate(plan) if p.strategy == item.strategy]
        result.finished = all(s is not None for s in rows_of_strategy)
        result.seconds = max((s for s in rows_of_strategy if s is not None), default=0.0)
    for result in results.values():
        if not result.finished:
            continue
        if result.strategy == SELF_CONSISTENCY:
            result.answer, result.votes = majority_vote(result.answers)
        else:
            result.answer = result.answers[0] if result.answers else None
        result.correct = is_correct(result.answer, expected, kind)
    return list(results.values())


def compare_strategies(lm, tokenizer, question: str, expected: str | None, kind: str,
                       strategies: list[str], problem_set: ProblemSet, settings: Settings,
                       stop: threading.Event | None = None, engine=None, plain: bool = False,
                       stop_at_answer: bool = True) -> Iterator[list[StrategyResult]]:
    """Yield the results of every strategy as they grow: first the prompts alone, then partial
    texts, last the finished answers (the last yield has every `finished` True).
    plain: "Q: … A:" text for a pre-trained-only model instead of the chat template.
    stop_at_answer=False lets every row run to its end token (the benchmark's "before")."""
    plan = plan_rows(tokenizer, question, strategies, problem_set, settings, plain=plain)
    yield collect_results(plan, None, tokenizer, expected, kind)
    for state in stream_generate(
        lm, tokenizer, [p.prompt for p in plan], [p.temperature for p in plan], settings.seed,
        settings.max_new_tokens, stop, engine=engine,
        stop_at_answer=[(p.strategy, p.style) for p in plan] if stop_at_answer else None,
    ):
        yield collect_results(plan, state, tokenizer, expected, kind)


# --- scoring a whole set (pure tables) -----------------------------------------------------------
def accuracy_frame(records: list[dict], strategies: list[str]) -> pd.DataFrame:
    """records: one dict per (question, strategy) with key 'correct' (bool). -> one row per strategy."""
    rows = []
    for strategy in strategies:
        marks = [r["correct"] for r in records if r["strategy"] == strategy]
        right = sum(1 for m in marks if m)
        rows.append({"strategy": strategy, "accuracy": right / len(marks) if marks else 0.0,
                     "correct": right, "questions": len(marks)})
    return pd.DataFrame(rows, columns=["strategy", "accuracy", "correct", "questions"])


def question_frame(records: list[dict], strategies: list[str]) -> pd.DataFrame:
    """One row per question: the expected answer, then each strategy's answer with ✓ or ✗."""
    table: dict[str, dict] = {}
    for r in records:
        row = table.setdefault(r["id"], {"id": r["id"], "question": r["question"], "expected": r["expected"]})
        mark = "✓" if r["correct"] else "✗"
        row[r["strategy"]] = f"{r['answer'] if r['answer'] is not None else '—'} {mark}"
    columns = ["id", "question", "expected", *strategies]
    return pd.DataFrame(list(table.values()), columns=columns).fillna("")


def guess_verdict(guess: str | None, scores: dict[str, float], what: str = "question") -> str:
    """How the attendee's pick fared against the others' scores (0..1)."""
    if guess is None:
        return ""
    if guess not in scores:
        return f"🎯 You guessed **{guess}**, but it was not among the strategies run."
    best = max(scores.values())
    winners = [s for s, v in scores.items() if v == best]
    rank = 1 + sum(1 for v in scores.values() if v > scores[guess])
    if what == "question":
        if scores[guess] == 1.0:
            others = [s for s in winners if s != guess]
            also = f" So did {', '.join(others)}." if others else " It was the only one!"
            return f"🎯 You guessed **{guess}** — it got the right answer.{also}"
        if best == 0.0:
            return f"🎯 You guessed **{guess}** — no strategy got this one right."
        return f"🎯 You guessed **{guess}** — it missed; {', '.join(winners)} got it right."
    shown = f"{scores[guess]:.0%}"
    if best == 0.0:
        return f"🎯 You guessed **{guess}** — no strategy got any question right, so nobody won."
    if scores[guess] == best:
        tie = f" (tied with {', '.join(s for s in winners if s != guess)})" if len(winners) > 1 else ""
        return f"🎯 You guessed **{guess}** — it won with {shown}{tie}."
    return (
        f"🎯 You guessed **{guess}** — {shown}, rank {rank} of {len(scores)}. "
        f"Best: {', '.join(winners)} with {best:.0%}."
    )


# --- the model side (ZeroGPU runs these in its GPU worker) ---------------------------------------
def load_model(model_label: str | None):
    """-> (model, tokenizer, plain): plain is True for a model that reads "Q: … A:" text."""
    entry = catalog.by_label("instruct", model_label)
    lm, tokenizer = models.load_causal_lm(entry)
    return lm, tokenizer, uses_plain_prompts(entry, tokenizer)


def load_engine(model_label: str | None):
    """llama.cpp for a bundled GGUF model on CPU, else None (transformers' generate)."""
    return models.load_text_engine(catalog.by_label("instruct", model_label))


# A batched generation step (all strategies' rows at once) takes ~50 ms on a GPU, so a call asks
# for the GPU for about max_new_tokens steps; on ZeroGPU the small models skip the GPU (role=).
GPU_STEP_S = 0.05


@gpu(duration=sized(lambda model_label, question, expected, kind, strategies, set_name, settings:
                    GPU_STEP_S * settings.max_new_tokens), role="instruct")
def run_compare(model_label, question, expected, kind, strategies, set_name, settings):
    """-> iterator of result lists (see compare_strategies); loads the model on first use."""
    lm, tokenizer, plain = load_model(model_label)
    yield from compare_strategies(lm, tokenizer, question, expected, kind, strategies,
                                  get_problem_set(set_name), settings, engine=load_engine(model_label),
                                  plain=plain)


def run_score(model_label, set_name, count, strategies, settings):
    """-> iterator of (questions done, records so far, status, a question just finished?).
    One short GPU call per question (`run_compare`), never one long call for the whole set: a
    visitor with little GPU quota left can still score, and the queue moves between questions.
    Stops early, saying so, once the run has taken longer than the gallery's time limit per request."""
    problem_set = get_problem_set(set_name)
    records: list[dict] = []
    started = time.perf_counter()
    for index, problem in enumerate(problem_set.items[:count]):
        if time.perf_counter() - started > gallery_settings.TIME_LIMIT_S:
            yield index, records, f"Stopped after {index} questions: the time limit was reached.", True
            return
        results = None
        for results in run_compare(model_label, problem.question, problem.answer, problem.kind,
                                   strategies, problem_set.name, settings):
            made = sum(r.tokens for r in results)
            yield index, records, f"Question {index + 1} of {count}: {made} tokens so far…", False
        for result in results or []:
            records.append({"id": problem.id, "question": problem.question, "expected": problem.answer,
                            "strategy": result.strategy, "answer": result.answer,
                            "correct": bool(result.correct)})
        yield index + 1, records, f"{index + 1} of {count} questions scored.", True


# --- what the page shows -------------------------------------------------------------------------
def decoding_summary(strategies: list[str], settings: Settings, rows: int, set_name: str | None = None,
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


def notes_markdown(notes: list[str]) -> str:
    return "\n".join(f"ℹ️ {n}" for n in notes)


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
    expected = as_text(expected).strip() or None
    builtin = find_problem(question)
    if builtin and expected == builtin.answer:
        kind = builtin.kind
    else:
        kind = guess_kind(expected, problem_set.default_kind)
    if expected is None:
        notes.append("No expected answer given, so there is no ✓/✗ — just the outputs.")
    rows = sum(settings.samples if s == SELF_CONSISTENCY else 1 for s in strategies)
    summary = (decoding_summary(strategies, settings, rows, problem_set.name, is_pretrained_only(model_label))
               + "\n\n" + notes_markdown(notes))
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


_opening: dict[str, list] = {}  # model label -> the default question's outputs, computed once
_opening_lock = threading.Lock()


@ui.user_errors
def on_load(request: gr.Request = None):
    """The page opens alive: every strategy's answer to the default question, from the default
    model, computed by the first visitor's page after it is drawn and served from memory to
    everyone after. (A shared link fills in its own question; it gets no opening answers.)"""
    ready = catalog.available("instruct")
    first = next(iter(problem_sets().values()))
    if not ready or ui.link_values(request, "prompting"):
        return [gr.skip()] * (3 + 4 * len(STRATEGIES))
    label = ready[0].label  # the model dropdown's first choice
    with _opening_lock:
        if label not in _opening:
            for outputs in on_compare(
                label, first.items[0].question, first.items[0].answer, list(STRATEGIES), NO_GUESS, DEFAULT_K,
                DEFAULT_SAMPLES, DEFAULT_TEMPERATURE, DEFAULT_SC_TEMPERATURE, DEFAULT_SEED,
                default_new_tokens(first), first.name,
            ):
                pass
            _opening[label] = outputs
        return _opening[label]


@ui.user_errors
def on_score(model_label, set_name, count, strategies, guess, k, samples, temperature, sc_temperature,
             seed, max_new_tokens, progress=gr.Progress()):
    strategies = clean_strategies(strategies)
    problem_set = get_problem_set(set_name)
    settings, notes = clean_settings(k, samples, temperature, sc_temperature, seed, max_new_tokens,
                                     max_k=len(problem_set.exemplars))
    guess = clean_guess(guess, notes)
    total = len(problem_set.items)
    count = _clamp(count, 1, total, min(DEFAULT_SCORE_QUESTIONS, total), "Number of questions", notes,
                   integer=True)
    header = f"Scoring **{count}** of {total} questions of *{problem_set.name}*. " + notes_markdown(notes)
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
    typed = as_text(question).strip()
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
def api_extract_answer(text: str, kind: str = "number") -> str | None:
    """Read the final answer from a model's reply (kind: number, time, calendar, word, list, text)."""
    if kind not in KINDS:
        raise InputError(f"kind must be one of: {', '.join(KINDS)}.")
    return extract_answer(as_text(text)[:20_000], kind)


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
    compare_event = run.click(
        on_compare,
        [model, question, expected, strategies, guess, *settings_inputs, set_name],
        [summary, *per_strategy, verdict, data],
        api_name="prompting_compare",
        **ui.heavy(),
    )
    score_event = score.click(
        on_score,
        [model, set_name, count, strategies, guess, *settings_inputs],
        [score_status, chart, table, score_verdict],
        api_name="prompting_score",
        **ui.heavy(),
    )
    gr.on(None, on_load, [], [summary, *per_strategy, verdict, data], api_name="prompting_opening", **ui.heavy())
    for button in (stop, stop_run):  # cancelling closes the handler's generator, which stops `generate`
        button.click(None, None, None, cancels=[score_event, compare_event], api_visibility="private")
    set_name.change(on_pick_set, [set_name, question], [picked, count, k, set_info, lesson, max_new_tokens],
                    api_name="prompting_problem_set")
    picked.change(on_pick_question, [set_name, picked], [question, expected], api_name="prompting_pick_question")
    model.change(on_model, model, weak, api_name="prompting_model_note")
    room_ui.count_strategy_votes(guess, STRATEGIES)
    room_ui.connect_strategy_view(room_view, chart, data)
    gr.api(api_extract_answer, api_name="prompting_extract_answer")


if __name__ == "__main__":
    with gr.Blocks(title=TITLE) as demo:
        create_demo()
    demo.launch(theme=ui.THEME, css=ui.CSS, ssr_mode=False)
