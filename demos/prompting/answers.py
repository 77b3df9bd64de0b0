"""Reading a model's reply: where it has said its answer, the canonical answer in it, whether it
is right, the self-consistency vote, and the score tables of a whole set (pure, no model)."""

from __future__ import annotations

import re
from collections import Counter
from decimal import Decimal, InvalidOperation

import pandas as pd

from demos.prompting.prompts import ANSWER_ONLY_STRATEGIES

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
