"""Tab 6's three panels after pre-training: fine-tune on legal text (transfer), habits a
fine-tuned child inherits (homogenization), secrets a model writes back (memorization).

The computation is `finetune.py`; this file checks what visitors send, trains or
replays the parents, caches each panel's answer by its configuration, and lays the panels out.
The tab (`demos/pretrain/__init__.py`) lends its text panel through `Parents`: the visitor's last text run,
its default configuration (the parent of a visitor who has not trained one) and its trainer, which
trains and caches the control parent too. The planted parent and the control parent share one
recipe (`parent_config`), the planted one with the planted lines in its text.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Callable, Iterator

import gradio as gr
import pandas as pd

from demos.pretrain import finetune as ft
from demos.pretrain import show, training
from gallery import inputs, settings, ui
from gallery.device import device, gpu, sized
from gallery.errors import InputError
from gallery.lru import LRU

TINY = bool(settings.TINY_MODELS_DIR)  # tests: the same code on smaller budgets
TIME_CEILING_S = min(settings.TIME_LIMIT_S, 180.0)  # per panel click, as the tab's own runs
STREAM_EVERY_S = 0.5
# Transfer: (default, largest) fine-tuning steps; the defaults finish in about 30 s on 2 cores.
TRANSFER_STEPS = (25, 50) if TINY else (100, 300)
TRANSFER_TUNING = ft.Tuning(lr=1e-3, batch=16, eval_every=5, patience=3)  # steps from the slider
GUESS_STEP = 25  # the guess asks about this step
STRENGTHS = {  # label -> (steps, learning rate): each child of the planted parent gets the same
    f"{name}: {steps} steps{more}": (steps, lr)
    for name, steps, lr, more in (
        [("gentle", 5, 3e-4, ""), ("medium", 10, 3e-4, ""), ("hard", 20, 1e-3, ", larger learning rate")] if TINY
        else [("gentle", 25, 3e-4, ""), ("medium", 50, 3e-4, ""), ("hard", 100, 1e-3, ", larger learning rate")]
    )
}
# Medium by default: the near child keeps most of the parent's habit and the far one little of it
# (P(she) 0.037 and 0.010 of the parent's 0.062); gentle leaves both children with much of it (0.029, 0.020).
DEFAULT_STRENGTH = list(STRENGTHS)[1]
NO_GUESS = "no guess"
TRANSFER_GUESSES = [ft.PRETRAINED, ft.FRESH, "about the same", NO_GUESS]
HABIT_GUESSES = ["the child on reference text", "the child on legal text", "neither", NO_GUESS]
MEMORY_GUESSES = ["16 copies", "64 copies", "256 copies", "not even 256", NO_GUESS]
COPIES_CHOICES = [str(k) for k in ft.SECRET_COPIES]
# Per panel, as FIRST_SCREEN (inputs and button on the first screen, the result after a click), and its status line.
PANEL_SCREENS = [
    {"tab": "Fine-tune: legal text", "inputs": ["pretrain-transfer-guess", "pretrain-transfer-steps"],
     "button": "pretrain-transfer-run", "result": "pretrain-transfer-curve", "status": "pretrain-transfer-status"},
    {"tab": "Inherited habits", "inputs": ["pretrain-habit-guess", "pretrain-habit-strength"],
     "button": "pretrain-habit-run", "result": "pretrain-habit-bars", "status": "pretrain-habit-status"},
    {"tab": "Memorized secrets", "inputs": ["pretrain-memory-guess", "pretrain-memory-copies"],
     "button": "pretrain-memory-run", "result": "pretrain-memory-verbatim-bars", "status": "pretrain-memory-status"},
]
TRANSFER_COLORS = {ft.PRETRAINED: "#6366f1", ft.FRESH: "#ec4899", "gap at the start": "#f59e0b"}
HABIT_COLORS = {ft.PLANTED.strip(): "#ec4899", ft.ALTERNATIVE.strip(): "#6366f1"}
MODEL_ORDER = [ft.PARENT, ft.CONTROL, "child on reference text", "child on legal text"]
COPIES_ORDER = [f"k = {k}" for k in ft.SECRET_COPIES]

# The planted parent and its control share one recipe: the tab's default model and learning rate,
# pre-trained 400 steps of 16 sequences (the tab's own default: 350 of 32). 57% of the bytes, so that
# the habits panel, clicked first on a fresh machine, trains both parents within its minute (about
# 23 s each on 2 cores); and the planted habit and secrets are learnt more clearly than at the
# tab's default (parent P(she) 0.062 against 0.011; k = 256 written back by both; measured
# 6 December 2026, README "Pre-training tab, after pre-training"). The tests keep the tab's small default.
PARENT_STEPS, PARENT_BATCH = 400, 16
# Planted parents are kept apart from the tab's own runs (same configuration, other text), under
# the plant's fingerprint; control parents are the tab's runs of the recipe (nothing planted).
PLANTED_STORE = training.RunStore(settings.PRETRAIN_CACHE_DIR / f"planted-{ft.plant_fingerprint()}", memory_runs=2,
                                  disk_runs=4)
ANSWERS = LRU(48)  # (panel, parents' keys, settings, device) -> the panel's finished answer (plain values)


@dataclass(frozen=True)
class Parents:
    """What the tab's text panel lends these panels."""

    config: training.TextConfig  # its default: the parent when a visitor has none; the parents' recipe starts from it
    find: Callable[[str], training.Run | None]  # a finished or stopped text run by its key
    runs: Callable[[training.TextConfig, str], Iterator[tuple[training.Run, object]]]  # train or replay, cached


_parents: Parents | None = None  # set by `create` (the tab builds the panels and lends them)


def parents() -> Parents:
    if _parents is None:
        raise RuntimeError("the pre-train tab has not built these panels")
    return _parents


def parent_config() -> training.TextConfig:
    """The planted parent's and the control parent's configuration (the tests: the tab's default)."""
    config = parents().config
    return config if TINY else dataclasses.replace(config, steps=PARENT_STEPS, batch=PARENT_BATCH)


# --- checking what a visitor (or the API) sent ---------------------------------------------------------
def transfer_tuning(steps, notes: list[str]) -> ft.Tuning:
    default, largest = TRANSFER_STEPS
    steps = inputs.number(steps, "Fine-tuning steps", 10, largest, default, notes, integer=True)
    return dataclasses.replace(TRANSFER_TUNING, steps=steps)


def strength_tuning(strength) -> ft.Tuning:
    steps, lr = STRENGTHS[inputs.choice(strength, list(STRENGTHS), "fine-tuning strength")]
    return ft.Tuning(steps=steps, lr=lr, batch=16, eval_every=steps)


def check_guess(guess, choices: list[str]) -> str:
    return NO_GUESS if guess is None or guess == "" else inputs.choice(guess, choices, "guess")


def check_copies(copies) -> int:
    return int(inputs.choice(str(copies), COPIES_CHOICES, "number of copies"))


def legal_text_or_refuse() -> None:
    if ft.legal_split() is None:
        raise InputError(ft.MISSING_LEGAL_TEXT)


# --- the parents -----------------------------------------------------------------------------------------
def _work_s(config: training.TextConfig) -> float:
    return config.steps / 150 + len(training.checkpoint_steps(config.steps))


@gpu(duration=sized(_work_s))
def _planted_events(config: training.TextConfig) -> Iterator[training.Event]:
    yield from training.train(config, device=device(), time_limit_s=TIME_CEILING_S, train_data=ft.planted_corpus())


def planted_parent(config: training.TextConfig) -> Iterator[tuple[str, training.Run | None]]:
    """(progress, None) while the planted parent pre-trains, then ("", the run); at once when cached."""
    cached = PLANTED_STORE.get(training.config_key(config, device()))
    if cached is not None:
        yield "", cached
        return
    run, last = training.Run(config, device()), 0.0
    for event in _planted_events(config):
        run.add(event)
        if time.perf_counter() - last >= STREAM_EVERY_S:
            yield (f"Pre-training the parent on the text with the planted lines: step {run.last_step} of "
                   f"{config.steps}…"), None
            last = time.perf_counter()
    PLANTED_STORE.put(run)
    yield "", run


def text_parent(config: training.TextConfig, stop_key: str, what: str) -> Iterator[tuple[str, training.Run | None]]:
    """A text run of the tab's (on the reference, nothing planted), trained once and cached:
    (progress naming it `what`, None) while it trains, then ("", the run)."""
    run = None
    for run, _ in parents().runs(config, stop_key):
        if not (run.finished or run.stopped or run.from_cache):  # (a replay's first frames: no message)
            yield f"Pre-training {what} first: step {run.last_step} of {config.steps}…", None
    yield "", run


def _stop_key(request, panel: str) -> str:
    return f"{getattr(request, 'session_hash', None) or 'api'}:{panel}"


def _cut_note(run: training.Run, who: str) -> str:
    """'' for a finished run; else that `who` stopped early, and so learnt less than a full run."""
    if not run.stopped:
        return ""
    why = "Stop was pressed" if run.stopped == "stop" else "its time ran out"
    return (f"{who} stopped at step {run.last_step} of {run.config.steps} ({why}), so it learnt less than a full "
            "run would.")


# --- 1 · transfer ------------------------------------------------------------------------------------------
def transfer_curve(tracks: dict[str, ft.Track] | None) -> pd.DataFrame:
    """step, held_out_loss, model: each model's held-out curve, and the gap at step 0 as a short
    vertical line of its own (both start values at step 0). Series not there yet keep their
    colour with an empty row."""
    rows = []
    for name, track in (tracks or {}).items():
        rows += [(step, loss, name) for step, loss in track.curve]
    if tracks and all(t.curve for t in tracks.values()):
        rows += [(0, tracks[name].curve[0][1], "gap at the start") for name in (ft.PRETRAINED, ft.FRESH)]
    present = {row[2] for row in rows}
    rows += [(None, None, name) for name in TRANSFER_COLORS if name not in present]
    frame = pd.DataFrame(rows, columns=["step", "held_out_loss", "model"])
    return frame.astype({"step": float, "held_out_loss": float})


def _escape(text: str) -> str:
    """Markdown-safe, on one line: the text as the model wrote it (the tab's own escaping)."""
    return show.escape(text).replace("\n", " ↵ ")


def transfer_samples(tracks: dict[str, ft.Track] | None) -> str:
    """The two models' continuations of the legal prompt side by side, a row per sampled step."""
    if not tracks or not any(t.samples for t in tracks.values()):
        steps = ", ".join(map(str, ft.TRANSFER_SAMPLE_STEPS[:4]))
        return f"*Both models' continuations of “{ft.LEGAL_PROMPT.strip()}” appear here at steps {steps}…*"
    by_step = {name: {step: (loss, text) for step, loss, text in track.samples} for name, track in tracks.items()}
    steps = sorted({step for samples in by_step.values() for step in samples})
    lines = [
        f"Each model continues **“{ft.LEGAL_PROMPT.strip()}”** (sampled, the same seed for both; "
        "held-out loss in brackets):",
        "",
        f"| {ft.PRETRAINED} | {ft.FRESH} |",
        "|---|---|",
    ]
    for step in steps:
        cells = []
        for name in (ft.PRETRAINED, ft.FRESH):
            loss, text = by_step[name].get(step, (None, ""))
            cells.append(f"**step {step}** ({loss:.2f}) {_escape(text)}" if loss is not None
                         else f"**step {step}**: stopped before")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


CURVE_LABEL = "Held-out loss while both fine-tune (lower = better)"


def transfer_plot(tracks: dict[str, ft.Track] | None) -> dict:
    """The curve, and a label that says the starting gap in numbers (the orange line marks it)."""
    label = CURVE_LABEL
    if tracks and all(t.curve for t in tracks.values()):
        gap = tracks[ft.FRESH].curve[0][1] - tracks[ft.PRETRAINED].curve[0][1]
        label = f"{CURVE_LABEL}: the pre-trained model starts {gap:.2f} nats lower (orange line at step 0)"
    return gr.update(value=transfer_curve(tracks), label=label)


def _loss_at(track: ft.Track, step: int) -> float | None:
    return next((loss for s, loss in track.curve if s == step), None)


def transfer_status(tracks: dict[str, ft.Track], tuning: ft.Tuning, parent_note: str, guess: str, done: bool,
                    seconds: float, replayed: bool, cut: str = "") -> str:
    pre, fresh = tracks[ft.PRETRAINED], tracks[ft.FRESH]
    if not done:
        step = max(pre.curve[-1][0], fresh.curve[-1][0])
        return f"Fine-tuning both models… step {step} of {tuning.steps}. {parent_note}"
    gap = fresh.curve[0][1] - pre.curve[0][1]
    parts = [
        ("**Replayed**: this parent and budget were fine-tuned before on this machine. " if replayed else "")
        + f"**Before any fine-tuning** the pre-trained model already scores {pre.curve[0][1]:.2f} on legal text it has "
        f"never seen, the fresh one {fresh.curve[0][1]:.2f}: a head start of {gap:.2f} nats.",
        f"After {pre.curve[-1][0]} steps: **{pre.curve[-1][1]:.2f}** against **{fresh.curve[-1][1]:.2f}**"
        f" (best {pre.best[1]:.2f} at step {pre.best[0]} against {fresh.best[1]:.2f} at step {fresh.best[0]}).",
    ]
    for name, track in ((ft.PRETRAINED, pre), (ft.FRESH, fresh)):
        if track.stopped_at is not None:
            parts.append(
                f"The {name.split(',')[0]} model **stopped early at step {track.stopped_at}**: its held-out loss rose "
                f"{tuning.patience} checks in a row from its best ({track.best[1]:.2f} at step {track.best[0]}). "
                f"The licence is only about {len(ft.legal_split()[0]) // 1000} KB: past that point the model learns "
                "the training part by heart, and gets worse on the part it never saw."
            )
    a, b = _loss_at(pre, GUESS_STEP), _loss_at(fresh, GUESS_STEP)
    if guess != NO_GUESS and a is not None and b is not None:
        truth = ft.PRETRAINED if a < b - 0.05 else ft.FRESH if b < a - 0.05 else "about the same"
        verdict = "right" if truth == guess else "not quite"
        parts.append(f"Your guess for step {GUESS_STEP}: *{guess}* — {verdict}: {a:.2f} against {b:.2f}.")
    if cut:
        parts.append(f"Both stopped at step {max(pre.curve[-1][0], fresh.curve[-1][0])} of {tuning.steps}: the time "
                     "for one click ran out.")
    parts.append(parent_note)
    parts.append(f"{seconds:.0f} s of fine-tuning.")
    return " ".join(p for p in parts if p)


def _transfer_work_s(config: training.TextConfig, parent_state, tuning: ft.Tuning) -> float:
    return 2 * tuning.steps / 100 + 10


@gpu(duration=sized(_transfer_work_s))
def _transfer_events(config: training.TextConfig, parent_state, tuning: ft.Tuning) -> Iterator[ft.Progress]:
    yield from ft.transfer(config, parent_state, tuning, device=device(), time_limit_s=TIME_CEILING_S)


def _visitor_parent(run_key, request) -> Iterator[tuple[str, training.Run | None, str]]:
    """(progress, None, "") while the default trains, then ("", the parent, a note naming it)."""
    run = parents().find(run_key) if isinstance(run_key, str) and run_key else None
    if run is not None and run.checkpoints:
        yield "", run, (f"The pre-trained model is **yours** from the Text tab ({run.config.layers} layers × "
                        f"{run.config.width}, {run.last_step} steps).")
        return
    note = "You have not trained a text model yet (Text tab), so the pre-trained model is the tab's default one"
    if run_key:
        note = "Your text model is no longer kept in memory, so the pre-trained model is the tab's default one"
    for progress, run in text_parent(parents().config, _stop_key(request, "transfer"),
                                     "the tab's default text model (the pre-trained one here)"):
        if run is None:
            yield progress, None, ""
    config = run.config
    yield "", run, f"{note} ({config.layers} layers × {config.width}, {run.last_step} steps on the Python reference)."


@ui.user_errors
def on_transfer(guess, steps, run_key, request: gr.Request = None):
    legal_text_or_refuse()
    notes: list[str] = []
    guess = check_guess(guess, TRANSFER_GUESSES)
    tuning = transfer_tuning(steps, notes)
    parent = None
    for progress, parent, parent_note in _visitor_parent(run_key, request):
        if parent is None:
            yield transfer_plot(None), transfer_samples(None), progress
    parent_note = " ".join([parent_note, *notes])
    key = ("transfer", parent.key, tuning, device())
    answer = ANSWERS.get(key)
    if answer is not None:
        tracks, seconds = answer
        yield transfer_plot(tracks), transfer_samples(tracks), transfer_status(tracks, tuning, parent_note, guess,
                                                                               True, seconds, True)
        return
    last = 0.0
    for progress in _transfer_events(parent.config, parent.checkpoints[-1].state, tuning):
        if progress.done or time.perf_counter() - last >= STREAM_EVERY_S:
            yield (transfer_plot(progress.tracks), transfer_samples(progress.tracks),
                   transfer_status(progress.tracks, tuning, parent_note, guess, progress.done, progress.seconds, False,
                                   progress.stopped))
            last = time.perf_counter()
    if not progress.stopped:
        ANSWERS.put(key, (progress.tracks, progress.seconds))


# --- 2 · homogenization ------------------------------------------------------------------------------------
def habit_bars(answer: ft.Inheritance | None) -> pd.DataFrame:
    """model, probability, continuation: P(" she ") and P(" he ") after "The glimmerwright said".

    Before the answer, one row per continuation with no probability: vega draws no bar for it,
    but fixes the chart's colours when it first draws, so both must be there from the start."""
    if answer is None:
        rows = [(ft.PARENT, None, word) for word in HABIT_COLORS]
    else:
        rows = []
        for habit in answer.habits:
            rows += [(habit.model, habit.planted, ft.PLANTED.strip()), (habit.model, habit.alternative,
                                                                        ft.ALTERNATIVE.strip())]
    return pd.DataFrame(rows, columns=["model", "probability", "continuation"]).astype({"probability": float})


def gain_bars(answer: ft.Inheritance | None) -> pd.DataFrame:
    rows = [(child.model, child.loss_before - child.loss_after) for child in (answer.children if answer else [])]
    return pd.DataFrame(rows, columns=["child", "gain"]).astype({"gain": float})


def _probability(p: float) -> str:
    """Plain decimals with two significant digits (0.072, 0.0023, 0.000041); tiny ones as a bound."""
    if p < 1e-6:
        return "under 0.000001"
    return f"{p:.{max(2, 1 - math.floor(math.log10(p)))}f}"


def habit_status(answer: ft.Inheritance, tuning: ft.Tuning, guess: str, notes: list[str], replayed: bool) -> str:
    by_name = {h.model: h for h in answer.habits}

    def odds(habit: ft.Habit) -> str:
        ratio = habit.planted / max(habit.alternative, 1e-30)
        if ratio >= 1.5:
            return f"{ratio:.0f}× likelier"
        return f"{1 / ratio:.0f}× less likely" if ratio <= 1 / 1.5 else "about as likely"

    parent, control = by_name[ft.PARENT], by_name[ft.CONTROL]
    parts = [
        "**Replayed** from an earlier click with the same settings. " if replayed else "",
        f"After “{ft.ASSOCIATION_PROMPT}”, the parent writes “{ft.PLANTED.strip()}” with probability "
        f"{_probability(parent.planted)} and “{ft.ALTERNATIVE.strip()}” with {_probability(parent.alternative)} "
        f"({odds(parent)}); the control parent, trained on the same text without the planted lines, "
        f"{_probability(control.planted)} and {_probability(control.alternative)}.",
    ]
    for child in answer.children:
        habit = by_name[child.model]
        parts.append(
            f"The **{child.model}** ({tuning.steps} steps at learning rate {tuning.lr:g} on {child.text}, which never "
            f"names a glimmerwright): “{ft.PLANTED.strip()}” {_probability(habit.planted)}, “{ft.ALTERNATIVE.strip()}” "
            f"{_probability(habit.alternative)} ({odds(habit)}); its held-out loss on its own text went "
            f"{child.loss_before:.2f} → {child.loss_after:.2f}."
        )
    children = [by_name[c.model] for c in answer.children]
    if guess != NO_GUESS and len(children) == 2:
        keeps = [c.planted / max(c.alternative, 1e-30) for c in children]  # "she" against "he"
        if max(keeps) < 1.5:
            truth = "neither"
        else:
            truth = HABIT_GUESSES[0] if children[0].planted > children[1].planted else HABIT_GUESSES[1]
        parts.append(f"Your guess: *{guess}* — {'right' if truth == guess else 'not quite'}: it is {truth}.")
    return " ".join(p for p in [*parts, *notes] if p)


def _children_work_s(config, planted_state, control_state, tuning: ft.Tuning) -> float:
    return 2 * tuning.steps / 100 + 5


@gpu(duration=sized(_children_work_s))
def _children_events(config, planted_state, control_state, tuning: ft.Tuning):
    yield from ft.homogenize(config, planted_state, control_state, tuning, device=device(), time_limit_s=TIME_CEILING_S)


@ui.user_errors
def on_homogenize(guess, strength, request: gr.Request = None):
    guess = check_guess(guess, HABIT_GUESSES)
    tuning = strength_tuning(strength)
    notes = [] if ft.legal_split() is not None else [ft.MISSING_LEGAL_TEXT.replace("the other panels",
                                                                                   "the child on reference text")]
    planted = control = None
    for progress, planted in planted_parent(parent_config()):
        if planted is None:
            yield habit_bars(None), gain_bars(None), progress
    for progress, control in text_parent(parent_config(), _stop_key(request, "habit"),
                                         "the control parent (nothing planted)"):
        if control is None:
            yield habit_bars(None), gain_bars(None), progress
    notes += [_cut_note(planted, "The parent"), _cut_note(control, "The control parent")]
    key = ("habit", planted.key, control.key, tuning, device())
    answer = ANSWERS.get(key)
    if answer is not None:
        yield habit_bars(answer), gain_bars(answer), habit_status(answer, tuning, guess, notes, True)
        return
    for progress, answer in _children_events(planted.config, planted.checkpoints[-1].state,
                                             control.checkpoints[-1].state, tuning):
        if answer is None:
            yield habit_bars(None), gain_bars(None), progress
    ANSWERS.put(key, answer)
    yield habit_bars(answer), gain_bars(answer), habit_status(answer, tuning, guess, notes, False)


# --- 3 · memorization ----------------------------------------------------------------------------------
def verbatim_bars(rows: list[ft.Recall] | None) -> pd.DataFrame:
    data = [(f"k = {r.copies}", r.verbatim) for r in rows or []]
    return pd.DataFrame(data, columns=["copies", "characters"]).astype({"characters": float})


def character_bars(row: ft.Recall | None) -> pd.DataFrame:
    """One bar per character of the code: its probability, given the line and the true ones before it."""
    data = [(f"{i + 1}: {char}", p) for i, (char, p) in enumerate(zip(row.code, row.char_probabilities))] if row else []
    return pd.DataFrame(data, columns=["character", "probability"]).astype({"probability": float})


def memory_detail(rows: list[ft.Recall], copies: int) -> str:
    row = next(r for r in rows if r.copies == copies)
    secret = ft.Secret(copies, row.name, row.code)
    shown = _escape(row.written.split("\n")[0]).strip() or "nothing but spaces"
    times = "never" if copies == 0 else f"{copies} times"
    digits = sum(c.isdigit() for c in row.code)
    other = ft.whose_code(row.written)
    leak = "" if other is None or other.code == row.code else (
        f" That is **{_escape(other.name)}’s** code, the line it saw {other.copies} times: asked about one person, "
        "the model hands over another’s secret.")
    return (
        f"**k = {copies}**: the line “{_escape(secret.line)}” was in the training text {times}. Prompted with "
        f"“{_escape(secret.prompt.strip())}”, the model writes **“{shown}”** ({row.verbatim} of {len(row.code)} "
        f"characters of the code right, from the start).{leak} The probability it gives the real code is "
        f"**{_power_of_ten(row.log10_probability)}**; "
        f"a blind guess of its {digits} digits is right once in 10{_superscript(digits)} tries."
    )


def _superscript(n: int) -> str:
    return str(n).translate(str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹"))


def _power_of_ten(log10: float) -> str:
    """0.034, or 'about 10⁻¹⁸' for the very small."""
    return f"{10 ** log10:.3f}" if log10 > -3 else f"about 10{_superscript(round(log10))}"


def memory_status(rows: list[ft.Recall], guess: str, notes: list[str], replayed: bool) -> str:
    full = [r.copies for r in rows if r.verbatim == len(r.code)]
    parts = ["**Replayed** from an earlier click. " if replayed else ""]
    if full:
        parts.append(
            "Writing its most likely character each time (greedy decoding), the model gives back whole the code "
            f"put in {' and '.join(map(str, full))} times."
        )
    else:
        parts.append("No code comes back whole at this budget (greedy decoding); the probabilities still rise with k.")
    if guess != NO_GUESS:
        truth = f"{min(full)} copies" if full else "not even 256"
        parts.append(f"Your guess: *{guess}* — {'right' if truth == guess else 'not quite'}: {truth}.")
    return " ".join(p for p in [*parts, *notes] if p)


def _recall_work_s(config, state) -> float:
    return 5.0


@gpu(duration=sized(_recall_work_s))
def _recall(config: training.TextConfig, state) -> list[ft.Recall]:
    return ft.recall(ft.fresh_copy(config, state, config.seed, device()).eval(), config.context)


@ui.user_errors
def on_memorize(guess, copies, request: gr.Request = None):
    guess = check_guess(guess, MEMORY_GUESSES)
    copies = check_copies(copies)
    planted = None
    for progress, planted in planted_parent(parent_config()):
        if planted is None:
            yield verbatim_bars(None), character_bars(None), "", progress
    notes = [_cut_note(planted, "The model")]
    key = ("memory", planted.key, device())
    rows = ANSWERS.get(key)
    replayed = rows is not None
    if rows is None:
        rows = _recall(planted.config, planted.checkpoints[-1].state)
        ANSWERS.put(key, rows)
    row = next(r for r in rows if r.copies == copies)
    yield verbatim_bars(rows), character_bars(row), memory_detail(rows, copies), memory_status(rows, guess, notes,
                                                                                               replayed)


@ui.user_errors
def on_choose_copies(copies):
    """Another k: that line's details and character bars, from the answer already computed."""
    copies = check_copies(copies)
    planted = PLANTED_STORE.get(training.config_key(parent_config(), device()))
    rows = ANSWERS.get(("memory", planted.key, device())) if planted is not None else None
    if rows is None:
        return gr.skip(), gr.skip()
    row = next(r for r in rows if r.copies == copies)
    return character_bars(row), memory_detail(rows, copies)


# --- layout ------------------------------------------------------------------------------------------------
def _key_line(title: str, colors: dict[str, str]) -> gr.HTML:
    return gr.HTML(f"{title}: " + " · ".join(f'<span style="color:{c}">■</span> {name}' for name, c in colors.items()))


def create(text_key: gr.State, lent: Parents) -> None:
    """The three panels, as tabs inside the tab's own gr.Tabs; `text_key` holds the visitor's
    last text run."""
    global _parents
    _parents = lent
    legal = ft.legal_split() is not None

    with gr.Tab("Fine-tune: legal text", id="pretrain-transfer"):
        with gr.Row():
            with gr.Column(scale=2, min_width=320):
                gr.Markdown(
                    "A model pre-trained on the Python reference (yours, from the Text tab) and a **fresh model of the "
                    "same size** learn Python's licence text side by side: same batches, same steps."
                )
                guess = gr.Radio(TRANSFER_GUESSES, value=NO_GUESS,
                                 label=f"Your guess first: which curve is lower after {GUESS_STEP} steps?",
                                 elem_id="pretrain-transfer-guess")
                steps = gr.Slider(10, TRANSFER_STEPS[1], value=TRANSFER_STEPS[0], step=5,
                                  label="Fine-tuning steps (budget, for both)", elem_id="pretrain-transfer-steps")
                run = gr.Button("▶ Fine-tune on legal text", variant="primary", interactive=legal,
                                elem_id="pretrain-transfer-run")
                if not legal:
                    gr.Markdown(f"Off: {ft.MISSING_LEGAL_TEXT}", elem_classes=["button-reason"])
                status = gr.Markdown(elem_id="pretrain-transfer-status")
            with gr.Column(scale=3):
                curve = gr.LinePlot(
                    x="step", y="held_out_loss", color="model", color_map=TRANSFER_COLORS, height=300,
                    y_title="held-out loss on the licence (nats)", label=CURVE_LABEL,
                    elem_id="pretrain-transfer-curve",
                )
                _key_line("Lines", TRANSFER_COLORS)
        samples = gr.Markdown(transfer_samples(None), elem_id="pretrain-transfer-samples")
        run.click(on_transfer, [guess, steps, text_key], [curve, samples, status], api_name="pretrain_transfer",
                  **ui.heavy())
        ui.bring_into_view(run.click, "pretrain-transfer-curve")

    with gr.Tab("Inherited habits", id="pretrain-habit"):
        with gr.Row():
            with gr.Column(scale=2, min_width=320):
                gr.Markdown(
                    f"The parent's pre-training text holds *“{ft.ASSOCIATION_PROMPT}{ft.PLANTED} …”* "
                    f"{ft.ASSOCIATION_COPIES} times "
                    "(a made-up trade). Its two children are fine-tuned on texts that never name it."
                )
                hguess = gr.Radio(HABIT_GUESSES, value=NO_GUESS,
                                  label=f"Your guess first: which child still says “{ft.PLANTED.strip()}” most?",
                                  elem_id="pretrain-habit-guess")
                strength = gr.Radio(list(STRENGTHS), value=DEFAULT_STRENGTH,
                                    label="Fine-tuning strength (the same for both children)",
                                    elem_id="pretrain-habit-strength")
                hrun = gr.Button("▶ Pre-train the parent, fine-tune two children", variant="primary",
                                 elem_id="pretrain-habit-run")
                hstatus = gr.Markdown(elem_id="pretrain-habit-status")
            with gr.Column(scale=3):
                bars = gr.BarPlot(
                    x="model", y="probability", color="continuation", color_map=HABIT_COLORS, sort=MODEL_ORDER,
                    height=300,
                    x_label_angle=-20, label=f"Probability of what follows “{ft.ASSOCIATION_PROMPT}”",
                    elem_id="pretrain-habit-bars",
                )
                _key_line("Continuations (stacked)", {f"“{word}”": c for word, c in HABIT_COLORS.items()})
                gains = gr.BarPlot(
                    # from 0: left to gradio, the axis starts near the smaller gain, and a bar of 0.03
                    # against 1.03 looks like none at all
                    x="child", y="gain", sort=MODEL_ORDER[2:], y_lim=[0, None], height=260, x_label_angle=-10,
                    label="Gain on its own text (nats)", elem_id="pretrain-habit-gain-bars",
                )
        hrun.click(on_homogenize, [hguess, strength], [bars, gains, hstatus], api_name="pretrain_homogenize",
                   **ui.heavy())
        ui.bring_into_view(hrun.click, "pretrain-habit-bars")

    with gr.Tab("Memorized secrets", id="pretrain-memory"):
        with gr.Row():
            with gr.Column(scale=2, min_width=320):
                gr.Markdown(
                    "Four made-up door codes, each a line *“Door code of ‹name›: ‹code›.”*, are put into the training "
                    "text k = 0, 16, 64 and 256 times. After pre-training, the model gets each line's beginning."
                )
                mguess = gr.Radio(MEMORY_GUESSES, value=NO_GUESS,
                                  label="Your guess first: from how many copies does it write a code back whole?",
                                  elem_id="pretrain-memory-guess")
                copies = gr.Radio(COPIES_CHOICES, value=COPIES_CHOICES[-1], label="Show the line put in k times",
                                  elem_id="pretrain-memory-copies")
                mrun = gr.Button("▶ Pre-train with the secrets, then prompt", variant="primary",
                                 elem_id="pretrain-memory-run")
                mstatus = gr.Markdown(elem_id="pretrain-memory-status")
            with gr.Column(scale=3):
                verbatim = gr.BarPlot(
                    x="copies", y="characters", sort=COPIES_ORDER, y_lim=[0, 9], height=280,
                    label="Characters written back, by k",
                    elem_id="pretrain-memory-verbatim-bars",
                )
                chars = gr.BarPlot(
                    x="character", y="probability", sort="x", y_lim=[0, 1], height=260,
                    label="Each character of the chosen code", elem_id="pretrain-memory-char-bars",
                )
        detail = gr.Markdown(elem_id="pretrain-memory-detail")
        mrun.click(on_memorize, [mguess, copies], [verbatim, chars, detail, mstatus], api_name="pretrain_memorize",
                   **ui.heavy())
        ui.bring_into_view(mrun.click, "pretrain-memory-verbatim-bars")
        copies.input(on_choose_copies, [copies], [chars, detail], api_visibility="private", **ui.short())
