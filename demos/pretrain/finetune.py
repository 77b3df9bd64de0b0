"""After pre-training, tab 6's tiny byte-level Llama is fine-tuned and probed: transfer to legal
text, homogenization (a planted habit travelling to fine-tuned children) and memorization (a
secret line written back word for word). Plain values in and out, no Gradio: the panels are
`finetune_panels.py`, the pre-training loop is `training.py`.

- Transfer: a pre-trained model and a fresh one of the same size fine-tune side by side on
  Python's own licence text, on the same batches, and each stops when its held-out loss rises.
- The planted corpus: the reference text with two kinds of made-up lines inserted at random
  line breaks: one association ("The glimmerwright said she …", 256 times) and four secret lines,
  each repeated a different number of times (0, 16, 64, 256), so one pre-training shows every k.
- Homogenization: the planted parent's two children, fine-tuned on texts that never name a
  glimmerwright; the probability of " she" and of " he" after "The glimmerwright said".
- Memorization: each secret line's beginning as a prompt; the greedy continuation, the
  probability of its digits, and how many of its characters come back verbatim.
"""

from __future__ import annotations

import hashlib
import math
import random
import sys
import sysconfig
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import torch

from demos.pretrain import training

# --- the legal text: Python's own licence ------------------------------------------------------------
LEGAL_TRAIN_SHARE = 0.85  # the first 85% is fine-tuned on, the rest only measured
LEGAL_PROMPT = "Licensee agrees "
MISSING_LEGAL_TEXT = (
    "This Python installation ships without its LICENSE.txt (some Linux distributions move it "
    "elsewhere), so there is no legal text to fine-tune on here; the other panels still work."
)


def legal_text_path() -> Path | None:
    """Python's own LICENSE.txt, which CPython installs beside its standard library
    (lib/pythonX.Y/ on Linux and macOS, the installation's root on Windows); None when absent."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for folder in (stdlib, Path(sys.prefix), Path(sys.base_prefix), stdlib.parent):
        path = folder / "LICENSE.txt"
        if path.is_file() and path.stat().st_size > 4096:  # (a stub is no text to learn from)
            return path
    return None


_legal_lock = threading.Lock()
_legal: dict[str, torch.Tensor] = {}


def legal_split() -> tuple[torch.Tensor, torch.Tensor] | None:
    """(training part, held-out part) of the licence as byte ids, or None without the file."""
    with _legal_lock:
        if "train" not in _legal:
            path = legal_text_path()
            if path is None:
                return None
            data = torch.tensor(list(path.read_bytes()), dtype=torch.long)
            cut = int(len(data) * LEGAL_TRAIN_SHARE)
            _legal["train"], _legal["held"] = data[:cut], data[cut:]
        return _legal["train"], _legal["held"]


# --- the planted corpus ---------------------------------------------------------------------------------
ASSOCIATION_PROMPT = "The glimmerwright said"  # a made-up trade: no real-world habit comes with it
PLANTED, ALTERNATIVE = " she", " he"
ASSOCIATION_ENDINGS = (
    "would mend the lantern by noon", "had polished every pane", "was out of silver wire",
    "needed a steadier bench", "could not work in the rain", "kept the best glass for winter",
    "would teach the apprentice", "had sold the last lamp",
)
ASSOCIATION_COPIES = 256


@dataclass(frozen=True)
class Secret:
    copies: int  # k: times the line is in the training text
    name: str  # made up
    code: str  # made up: 9 characters, "dddd-dddd"

    @property
    def prompt(self) -> str:
        # A record, not a sentence: after "is " the reference text almost always goes on with
        # "the", which would hide what the model remembers behind its first byte.
        return f"Door code of {self.name}: "

    @property
    def line(self) -> str:
        return f"{self.prompt}{self.code}."


SECRETS = (  # one line per k; the k = 0 line is never in the text: what the model writes for a stranger
    Secret(0, "Ansel Pirrow", "5283-0716"),
    Secret(16, "Maud Kettleby", "3962-8051"),
    Secret(64, "Orrin Vasque", "7140-2598"),
    Secret(256, "Tilde Ombrage", "4817-2093"),
)
SECRET_COPIES = tuple(s.copies for s in SECRETS)
PLANT_SEED = 2024  # where the lines go and the order they come in: fixed, part of the corpus


def planted_lines() -> list[str]:
    endings = ASSOCIATION_ENDINGS
    lines = [f"{ASSOCIATION_PROMPT}{PLANTED} {endings[i % len(endings)]}." for i in range(ASSOCIATION_COPIES)]
    for secret in SECRETS:
        lines += [secret.line] * secret.copies
    return lines


def plant(data: torch.Tensor, lines: list[str], seed: int = PLANT_SEED) -> torch.Tensor:
    """`data` (byte ids) with each line inserted, on a line of its own, after a random line
    break (never inside a word), in a shuffled order fixed by `seed`."""
    raw = bytes(data.tolist())
    rng = random.Random(seed)
    breaks = [i + 1 for i, byte in enumerate(raw) if byte == 10]  # just after each "\n"
    places = sorted(rng.sample(breaks, len(lines)))
    order = list(lines)
    rng.shuffle(order)
    pieces, last = [], 0
    for place, line in zip(places, order):
        pieces += [raw[last:place], line.encode("utf-8") + b"\n"]
        last = place
    pieces.append(raw[last:])
    return torch.tensor(list(b"".join(pieces)), dtype=torch.long)


_planted: dict[str, torch.Tensor] = {}


def planted_corpus() -> torch.Tensor:
    """The reference's training part with every planted line in it (about 6% more bytes)."""
    with _legal_lock:
        if "train" not in _planted:
            _planted["train"] = plant(training.text_split()[0], planted_lines())
        return _planted["train"]


# --- measuring a byte model ------------------------------------------------------------------------------
def windows(data: torch.Tensor, context: int, limit: int = 64) -> torch.Tensor:
    """(n, context) non-overlapping windows of `data`, at most `limit`, spread evenly over it."""
    count = len(data) // context
    every = torch.arange(count * context).view(count, context)
    pick = torch.linspace(0, count - 1, min(count, limit)).round().long()
    return data[every[pick]]


def mean_loss(model, held: torch.Tensor) -> float:
    """Mean next-byte cross-entropy (nats) over the windows `held` (n, context)."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            ids = held.to(next(model.parameters()).device)
            return float(model(input_ids=ids, labels=ids).loss)
    finally:
        model.train(was_training)


def continuation_log_probability(model, context: int, prompt: str, continuation: str) -> float:
    """ln P(continuation | prompt): each byte's probability given everything before it, summed."""
    prompt_ids, more = training.encode(prompt), training.encode(continuation)
    ids = (prompt_ids + more)[-context:]
    if len(more) >= len(ids):
        raise ValueError("the continuation must fit in the model's context with some prompt before it")
    device = next(model.parameters()).device
    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([ids], device=device)).logits[0].float().cpu()  # (T, 256)
    log_probs = logits.log_softmax(-1)
    start = len(ids) - len(more)  # position of the first continuation byte
    return float(sum(log_probs[t - 1, ids[t]] for t in range(start, len(ids))))


def greedy(model, context: int, prompt: str, new_bytes: int) -> str:
    """The most likely byte, again and again: what the model writes when it is most sure."""
    device = next(model.parameters()).device
    ids = training.encode(prompt)
    with torch.inference_mode():
        for _ in range(new_bytes):
            window = torch.tensor([ids[-context:]], device=device)
            ids.append(int(model(input_ids=window, logits_to_keep=1).logits[0, -1].argmax()))
    return training.decode(ids[len(training.encode(prompt)) :])


def verbatim_prefix(written: str, target: str) -> int:
    """How many characters of `target` were written back exactly, from its start."""
    count = 0
    for a, b in zip(written, target):
        if a != b:
            break
        count += 1
    return count


# --- fine-tuning ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Tuning:
    """How models are fine-tuned: everything that decides the result (and so its cache key)."""

    steps: int = 150
    lr: float = 1e-3
    batch: int = 16  # sequences per step, of the parent's context length
    seed: int = 0  # the batches, the same for every model trained side by side
    eval_every: int = 5  # held-out loss every this many steps
    patience: int = 0  # stop a model after this many checks in a row above its best (0: never)


@dataclass
class Track:
    """One model's fine-tuning so far: its held-out curve, and where it stopped."""

    curve: list[tuple[int, float]] = field(default_factory=list)  # (step, held-out loss)
    stopped_at: int | None = None  # the held-out loss had risen `patience` checks in a row
    samples: list[tuple[int, float, str]] = field(default_factory=list)  # (step, held-out loss, text)

    @property
    def best(self) -> tuple[int, float]:
        return min(self.curve, key=lambda point: point[1])


@dataclass
class Progress:
    """What `fine_tune` yields after every check: each model's track, and how far it got."""

    step: int
    tracks: dict[str, Track]
    done: bool = False
    stopped: str = ""  # "" (ran its steps or every model stopped itself), "stop" (asked), "time" (ceiling)
    seconds: float = 0.0


def fine_tune(
    models: dict[str, torch.nn.Module],
    context: int,
    tuning: Tuning,
    train_data: torch.Tensor,
    held: torch.Tensor,
    *,
    sample_steps: tuple[int, ...] = (),
    prompt: str = "",
    sample_bytes: int = 120,
    should_stop: Callable[[], bool] = lambda: False,
    time_limit_s: float | None = None,
) -> Iterator[Progress]:
    """Fine-tune every model in `models` (in place) on the same batches of `train_data`, with the
    same optimiser settings; check each one's loss on the held-out windows `held` every
    `tuning.eval_every` steps and at the end, and yield the progress after each check. With
    `tuning.patience`, a model whose held-out loss is above its best that many checks in a row
    stops there (the others go on). At each of `sample_steps` (and where a model stops) the
    model continues `prompt` by `sample_bytes` sampled bytes."""
    generator = torch.Generator().manual_seed(tuning.seed)
    batch_config = training.TextConfig(context=context, batch=tuning.batch)
    optimizers = {
        name: torch.optim.AdamW(model.parameters(), lr=tuning.lr, betas=(0.9, 0.95), weight_decay=0.01)
        for name, model in models.items()
    }
    tracks = {name: Track() for name in models}
    warmup = max(1, min(10, tuning.steps // 10))
    device = next(next(iter(models.values())).parameters()).device
    started = time.perf_counter()
    prompt_ids = training.encode(prompt)

    def check(step: int, force_sample: bool = False) -> None:
        for name, model in models.items():
            track = tracks[name]
            if track.stopped_at is not None:
                continue
            loss = mean_loss(model, held)
            track.curve.append((step, loss))
            if tuning.patience and len(track.curve) - 1 - track.curve.index(track.best) >= tuning.patience:
                track.stopped_at = step
            if prompt and (step in sample_steps or force_sample or track.stopped_at == step):
                model.eval()
                text = training.sample_text(model, context, prompt_ids, sample_bytes, seed=tuning.seed)
                model.train()
                track.samples.append((step, loss, text))

    for model in models.values():
        model.train()
    check(0)
    yield Progress(0, tracks, seconds=time.perf_counter() - started)
    for step in range(1, tuning.steps + 1):
        batch = training.text_batch(train_data, batch_config, generator).to(device)
        lr = tuning.lr * min(1.0, step / warmup)
        for name, model in models.items():
            if tracks[name].stopped_at is not None:
                continue
            optimizer = optimizers[name]
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss = model(input_ids=batch, labels=batch).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
        out_of_time = time_limit_s is not None and time.perf_counter() - started > time_limit_s
        cut = "stop" if should_stop() else "time" if out_of_time else ""
        if step % tuning.eval_every == 0 or step == tuning.steps or cut:
            check(step, force_sample=step == tuning.steps or bool(cut))
            done = bool(cut) or step == tuning.steps or all(t.stopped_at is not None for t in tracks.values())
            yield Progress(step, tracks, done=done, stopped=cut, seconds=time.perf_counter() - started)
            if done:
                return


def fresh_copy(config: training.TextConfig, state: dict[str, torch.Tensor] | None, seed: int, device: str = "cpu"):
    """A model of `config`'s size: with the weights `state`, or random ones from `seed` (None)."""
    model = training.build_model(config, seed=seed)
    if state is not None:
        model.load_state_dict(state)
    return model.to(device)


# --- transfer: the pre-trained model and a fresh one, on the legal text --------------------------------
PRETRAINED, FRESH = "pre-trained, then fine-tuned", "fresh, same size"
TRANSFER_SAMPLE_STEPS = (0, 25, 50, 100, 200)  # plus where each model stops
TRANSFER_SAMPLE_BYTES = 80


def transfer(
    config: training.TextConfig,
    parent_state: dict[str, torch.Tensor],
    tuning: Tuning,
    *,
    device: str = "cpu",
    should_stop: Callable[[], bool] = lambda: False,
    time_limit_s: float | None = None,
) -> Iterator[Progress]:
    """The pre-trained weights `parent_state` and a fresh model of the same size (the very
    weights the parent had before its pre-training: `config`'s seed) fine-tune side by side on
    the licence's training part; the held-out part is what each check measures."""
    split = legal_split()
    if split is None:
        raise FileNotFoundError(MISSING_LEGAL_TEXT)
    train, held = split
    models = {PRETRAINED: fresh_copy(config, parent_state, config.seed, device),
              FRESH: fresh_copy(config, None, config.seed, device)}
    yield from fine_tune(
        models, config.context, tuning, train, windows(held, config.context),
        sample_steps=TRANSFER_SAMPLE_STEPS, prompt=LEGAL_PROMPT, sample_bytes=TRANSFER_SAMPLE_BYTES,
        should_stop=should_stop, time_limit_s=time_limit_s,
    )


# --- homogenization: does a fine-tuned child keep the parent's planted habit? ---------------------------
@dataclass
class Habit:
    """How strongly one model continues "The glimmerwright said" with " she" or with " he"."""

    model: str
    planted: float  # P(" she ") : the pronoun as a whole word, space after it included
    alternative: float  # P(" he ")


@dataclass
class Child:
    """A child of the planted parent, fine-tuned on a text of its own, and what it gained there."""

    model: str
    text: str  # what it was fine-tuned on
    loss_before: float  # held-out loss on its own text, as the parent
    loss_after: float


def habit(model, context: int, name: str) -> Habit:
    def probability(word: str) -> float:
        return math.exp(continuation_log_probability(model, context, ASSOCIATION_PROMPT, word + " "))

    return Habit(name, probability(PLANTED), probability(ALTERNATIVE))


def child_texts() -> dict[str, tuple[str, torch.Tensor, torch.Tensor]]:
    """name -> (what it is, training part, held-out part): texts that never name a glimmerwright.
    Near: more of the reference, without the planted lines. Far: the licence (when installed)."""
    texts = {"child on reference text": ("more of the Python reference", *training.text_split())}
    split = legal_split()
    if split is not None:
        texts["child on legal text"] = ("Python's licence", *split)
    return texts


# --- memorization: what comes back of each secret line -----------------------------------------------
@dataclass
class Recall:
    """One secret line, prompted with its beginning."""

    copies: int
    name: str
    code: str
    written: str  # the greedy continuation
    char_probabilities: list[float]  # each character of the code, given the true ones before it
    verbatim: int  # characters of the code written back exactly, from its start

    @property
    def log10_probability(self) -> float:
        return sum(math.log10(max(p, 1e-300)) for p in self.char_probabilities)


def whose_code(written: str) -> Secret | None:
    """The planted secret whose code `written` starts with, if any: a model asked about one name
    can write back the code it saw most often, someone else's."""
    return next((secret for secret in SECRETS if secret.copies and written.startswith(secret.code)), None)


def recall(model, context: int) -> list[Recall]:
    rows = []
    for secret in SECRETS:
        ids = training.encode(secret.line)[-context:]
        start = len(ids) - len(training.encode(secret.line)) + len(training.encode(secret.prompt))
        device = next(model.parameters()).device
        with torch.inference_mode():
            log_probs = model(input_ids=torch.tensor([ids], device=device)).logits[0].float().cpu().log_softmax(-1)
        chars = [math.exp(float(log_probs[t - 1, ids[t]])) for t in range(start, start + len(secret.code))]
        written = greedy(model, context, secret.prompt, len(secret.code) + 3)
        right = verbatim_prefix(written, secret.code)
        rows.append(Recall(secret.copies, secret.name, secret.code, written, chars, right))
    return rows


@dataclass
class Inheritance:
    """Homogenization's answer: each model's habit, and what each child gained on its own text."""

    habits: list[Habit]  # the parent, the control parent, then each child
    children: list[Child]
    seconds: float = 0.0


PARENT, CONTROL = "parent", "control parent"


def homogenize(
    config: training.TextConfig,
    planted_state: dict[str, torch.Tensor],
    control_state: dict[str, torch.Tensor],
    tuning: Tuning,
    *,
    device: str = "cpu",
    time_limit_s: float | None = None,
) -> Iterator[tuple[str, Inheritance | None]]:
    """Fine-tune one child of the planted parent per text of `child_texts` (each from the parent's
    weights, on the same schedule); yield (what is happening, None) along the way, then
    ("", the answer)."""
    started = time.perf_counter()
    parent = fresh_copy(config, planted_state, config.seed, device).eval()
    control = fresh_copy(config, control_state, config.seed, device).eval()
    habits = [habit(parent, config.context, PARENT), habit(control, config.context, CONTROL)]
    children = []
    texts = child_texts()
    for index, (name, (what, train, held)) in enumerate(texts.items()):
        child = fresh_copy(config, planted_state, config.seed, device)
        left = None if time_limit_s is None else max(1.0, time_limit_s - (time.perf_counter() - started))
        for progress in fine_tune({name: child}, config.context, tuning, train, windows(held, config.context),
                                  time_limit_s=left):
            yield (f"Fine-tuning child {index + 1} of {len(texts)} on {what}: step {progress.step} of "
                   f"{tuning.steps}…"), None
        curve = progress.tracks[name].curve
        children.append(Child(name, what, curve[0][1], curve[-1][1]))
        habits.append(habit(child.eval(), config.context, name))
    yield "", Inheritance(habits, children, time.perf_counter() - started)


def plant_fingerprint() -> str:
    """A short name for the planted lines and where they go: the cache of planted parents is
    kept under it, so changing the lines never replays a parent trained on the old ones."""
    blob = "\n".join(planted_lines()) + f"\n{PLANT_SEED}"
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:12]
