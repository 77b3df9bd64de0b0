"""The training loop behind "Pre-train it yourself": tiny models trained from random weights
by self-supervision, on data that ships with Python and scikit-learn. Pure torch/transformers.

- Text: a byte-level `LlamaForCausalLM` learns to predict the next byte of Python's language
  reference (`pydoc_data.topics`).
- Images: a `ViTMAEForPreTraining` learns to fill hidden patches of scikit-learn's 8×8 digits.

`train(config)` is a generator of `Event`s (a few loss points, a checkpoint, the end), so the
same loop streams to a page, runs inside a ZeroGPU worker (only small picklable events cross)
or is simply consumed by a test. Every run is seeded: the same configuration on the same device
gives the same curve, bit for bit, which is what lets `RunStore` replay a finished run to the
next visitor instead of training it again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from gallery.lru import LRU

log = logging.getLogger("gallery")

CHECKPOINT_STEPS = (0, 50, 200, 500, 1000, 2000, 5000)  # plus the last step of every run
VOCAB_SIZE = 256  # one token per byte: any text, any language, no tokenizer to train
IMAGE_SIDE = 16  # the 8×8 digits, upscaled
PATCH = 4  # 16×16 picture = 4×4 grid of 4×4-pixel patches
GRID = IMAGE_SIDE // PATCH
HELD_OUT_DIGITS = 197  # the last 197 of 1797 digits are never trained on
TEXT_HELD_OUT_FRACTION = 0.05  # the last 5% of the text is never trained on


# --- configurations: everything that decides a run (and so its cache key) ---------------------
@dataclass(frozen=True)
class TextConfig:
    """A byte-level decoder-only transformer (Llama architecture) and how it is trained."""

    layers: int = 4
    width: int = 128
    heads: int = 4
    context: int = 64  # bytes the model reads at once
    batch: int = 32  # sequences per step
    steps: int = 500
    lr: float = 3e-3
    seed: int = 0
    kind: str = "text"

    @property
    def tokens_per_step(self) -> int:
        return self.batch * self.context


@dataclass(frozen=True)
class ImageConfig:
    """A ViT masked autoencoder on 16×16 digits and how it is trained."""

    layers: int = 3
    width: int = 64
    heads: int = 4
    decoder_layers: int = 2
    decoder_width: int = 64
    mask_ratio: float = 0.5  # share of the 16 patches hidden; 0.5 = 8 patches, e.g. a half
    half_masks: float = 0.5  # share of training pictures hidden by a half (top/bottom/left/right)
    batch: int = 64
    steps: int = 1200
    lr: float = 2e-3
    seed: int = 0
    kind: str = "image"


Config = TextConfig | ImageConfig


def config_key(config: Config, device: str) -> str:
    """A short stable name for (configuration, device): floating-point results differ by device."""
    blob = json.dumps({**dataclasses.asdict(config), "device": device, "v": 1}, sort_keys=True)
    return f"{config.kind}-{hashlib.sha256(blob.encode()).hexdigest()[:16]}"


def config_from_dict(values: dict) -> Config:
    cls = TextConfig if values.get("kind") == "text" else ImageConfig
    return cls(**values)


# --- data ----------------------------------------------------------------------------------------
_data_lock = threading.Lock()
_data: dict[str, torch.Tensor] = {}


def text_corpus() -> torch.Tensor:
    """Python's language reference as bytes, (N,) int64, in a fixed order (~466 000 bytes)."""
    with _data_lock:
        if "text" not in _data:
            from pydoc_data.topics import topics

            text = "\n\n".join(topics[name] for name in sorted(topics))
            _data["text"] = torch.tensor(list(text.encode("utf-8")), dtype=torch.long)
        return _data["text"]


def text_split() -> tuple[torch.Tensor, torch.Tensor]:
    data = text_corpus()
    cut = int(len(data) * (1 - TEXT_HELD_OUT_FRACTION))
    return data[:cut], data[cut:]


def digits() -> torch.Tensor:
    """scikit-learn's 1797 handwritten digits as (N, 1, 16, 16) float in [0, 1], ink = 1."""
    with _data_lock:
        if "digits" not in _data:
            from sklearn.datasets import load_digits

            eights = torch.tensor(load_digits().images, dtype=torch.float32) / 16.0  # (N, 8, 8)
            _data["digits"] = upscale(eights[:, None])
        return _data["digits"]


def upscale(eights: torch.Tensor) -> torch.Tensor:
    """(N, 1, 8, 8) -> (N, 1, 16, 16), smooth (bilinear), the way drawn digits are prepared too."""
    big = torch.nn.functional.interpolate(eights, size=(IMAGE_SIDE, IMAGE_SIDE), mode="bilinear", align_corners=False)
    return big.clamp(0, 1)


def digit_split() -> tuple[torch.Tensor, torch.Tensor]:
    data = digits()
    return data[:-HELD_OUT_DIGITS], data[-HELD_OUT_DIGITS:]


# --- models ----------------------------------------------------------------------------------------
def build_model(config: Config, seed: int | None = None) -> torch.nn.Module:
    """Random weights from `seed` (the config's own by default), without touching the global RNG."""
    from gallery.models import one_build_at_a_time

    # (one_build_at_a_time: a model built while another visitor's model loads can be left with
    # weights on transformers' "meta" device)
    with one_build_at_a_time(), torch.random.fork_rng(devices=[]):
        from transformers import LlamaConfig, LlamaForCausalLM, ViTMAEConfig, ViTMAEForPreTraining

        torch.manual_seed(config.seed if seed is None else seed)
        if config.kind == "text":
            model_config = LlamaConfig(
                vocab_size=VOCAB_SIZE,
                hidden_size=config.width,
                intermediate_size=round(config.width * 8 / 3 / 8) * 8,  # Llama's MLP ratio
                num_hidden_layers=config.layers,
                num_attention_heads=config.heads,
                num_key_value_heads=config.heads,
                max_position_embeddings=config.context,
                tie_word_embeddings=True,
                bos_token_id=None,
                eos_token_id=None,
                pad_token_id=None,
            )
            model_config._attn_implementation = "sdpa"
            model = LlamaForCausalLM(model_config)
        else:
            model_config = ViTMAEConfig(
                image_size=IMAGE_SIDE,
                patch_size=PATCH,
                num_channels=1,
                hidden_size=config.width,
                num_hidden_layers=config.layers,
                num_attention_heads=config.heads,
                intermediate_size=config.width * 2,
                decoder_hidden_size=config.decoder_width,
                decoder_num_hidden_layers=config.decoder_layers,
                decoder_num_attention_heads=config.heads,
                decoder_intermediate_size=config.decoder_width * 2,
                mask_ratio=config.mask_ratio,
                norm_pix_loss=False,  # predict the pixels themselves, so a reconstruction is a picture
            )
            model_config._attn_implementation = "sdpa"
            model = ViTMAEForPreTraining(model_config)
    return model


def count_parameters(model: torch.nn.Module, *, without_embeddings: bool = False) -> int:
    """All weights; or, for compute estimates, without the token embedding (Kaplan et al. 2020)."""
    total = sum(p.numel() for p in model.parameters())
    if without_embeddings and getattr(model.config, "vocab_size", None) == VOCAB_SIZE:
        total -= model.get_input_embeddings().weight.numel()
    return total


def compute_estimate(non_embedding_params: int, tokens: int) -> float:
    """Training FLOPs ≈ 6 · N · D: 2 per weight per token forward, 4 backward (an estimate)."""
    return 6.0 * non_embedding_params * tokens


def load_weights(config: Config, state: dict[str, torch.Tensor], device: str = "cpu") -> torch.nn.Module:
    model = build_model(config)
    model.load_state_dict(state)
    return model.to(device).eval()


# --- batches: drawn from the run's own generator ------------------------------------------------
def text_batch(data: torch.Tensor, config: TextConfig, generator: torch.Generator) -> torch.Tensor:
    """(batch, context) byte windows at random places; the labels are the same ids (the model
    shifts them by one inside: position t predicts byte t+1)."""
    starts = torch.randint(0, len(data) - config.context, (config.batch,), generator=generator)
    return torch.stack([data[s : s + config.context] for s in starts.tolist()])


def half_noise(which: str, batch: int = 1) -> torch.Tensor:
    """ViT-MAE keeps the patches with the *lowest* noise. (batch, 16) noise that keeps one half:
    'bottom' hides the bottom half (keeps the top), and so on."""
    rows = torch.arange(GRID).repeat_interleave(GRID).float()  # patch index -> its row
    cols = torch.arange(GRID).repeat(GRID).float()
    half = GRID // 2
    hidden = {"bottom": rows >= half, "top": rows < half, "right": cols >= half, "left": cols < half}[which]
    # hidden patches get high noise; a small ramp keeps argsort's order stable and well defined
    noise = hidden.float() + torch.arange(GRID * GRID) * 1e-3
    return noise.expand(batch, -1).clone()


HALVES = ("bottom", "top", "left", "right")


def training_noise(config: ImageConfig, batch: int, generator: torch.Generator) -> torch.Tensor:
    """(batch, 16) masking noise: random patches for some pictures, a random half for the rest
    (so the model practises the demo's 'hide the bottom half' as well as scattered holes)."""
    noise = torch.rand(batch, GRID * GRID, generator=generator)
    use_half = torch.rand(batch, generator=generator) < config.half_masks
    which = torch.randint(0, len(HALVES), (batch,), generator=generator)
    for row in torch.nonzero(use_half).flatten().tolist():
        noise[row] = half_noise(HALVES[which[row]])[0]
    return noise


def reconstruct(model, pictures: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
    """(B, 1, 16, 16) pictures + (B, 16) noise -> (completed pictures: visible patches kept,
    hidden ones predicted, clamped to [0, 1]; the hidden-pixel mask (B, 1, 16, 16), 1 = hidden;
    mean squared error on the hidden pixels)."""
    device = next(model.parameters()).device
    with torch.inference_mode():
        out = model(pixel_values=pictures.to(device), noise=noise.to(device))
        predicted = model.unpatchify(out.logits).cpu()  # (B, 1, 16, 16)
        patch_mask = out.mask.cpu()  # (B, 16): 1 = hidden
    pixel_mask = patch_mask.reshape(-1, 1, GRID, GRID).repeat_interleave(PATCH, 2).repeat_interleave(PATCH, 3)
    completed = torch.where(pixel_mask.bool(), predicted.clamp(0, 1), pictures)
    error = float(((predicted - pictures) ** 2 * pixel_mask).sum() / pixel_mask.sum() / 1)
    return completed, pixel_mask, error


def held_out_loss(model, config: Config, generator_seed: int = 1234) -> float:
    """Loss on data the model never trained on: for text the mean next-byte cross-entropy on 16
    fixed windows of the held-out text; for digits the hidden-pixel error with the bottom half
    hidden, on every held-out digit."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        if config.kind == "text":
            _, held = text_split()
            generator = torch.Generator().manual_seed(generator_seed)
            batch = text_batch(held, dataclasses.replace(config, batch=16), generator).to(device)
            with torch.inference_mode():
                return float(model(input_ids=batch, labels=batch).loss)
        _, held = digit_split()
        _, _, error = reconstruct(model, held, half_noise("bottom", len(held)))
        return error
    finally:
        model.train(was_training)


# --- the training loop ----------------------------------------------------------------------------
@dataclass
class Point:
    step: int  # optimizer steps done (0 = the random model)
    loss: float  # training loss of the batch at this step
    seconds: float  # since training started
    examples: int  # tokens (text) or pictures (images) seen so far


@dataclass
class Checkpoint:
    step: int
    held_out_loss: float
    state: dict[str, torch.Tensor]  # the weights at this step, on the CPU


@dataclass
class Event:
    """What `train` yields: new loss points, or a checkpoint, or the end ("done")."""

    kind: str  # "points" | "checkpoint" | "done"
    points: list[Point] = field(default_factory=list)
    checkpoint: Checkpoint | None = None
    stopped: str = ""  # why it ended early: "" (finished), "stop" (asked), "time" (ceiling)
    parameters: int = 0
    non_embedding_parameters: int = 0


def checkpoint_steps(total_steps: int) -> list[int]:
    return sorted({s for s in CHECKPOINT_STEPS if s < total_steps} | {total_steps})


def _learning_rate(config: Config, step: int) -> float:
    """Linear warm-up over the first 5% (at most 50 steps), then cosine decay to a tenth."""
    warmup = max(1, min(50, config.steps // 20))
    if step < warmup:
        return config.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, config.steps - warmup)
    return config.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def _snapshot(model) -> dict[str, torch.Tensor]:
    return {name: value.detach().to("cpu", copy=True) for name, value in model.state_dict().items()}


def train(
    config: Config,
    *,
    device: str = "cpu",
    should_stop: Callable[[], bool] = lambda: False,
    time_limit_s: float | None = None,
    report_every_s: float = 0.25,
    train_data: torch.Tensor | None = None,
) -> Iterator[Event]:
    """Train `config` from random weights; yield loss points (batched, at most every
    `report_every_s`), a checkpoint at each of `checkpoint_steps`, then "done".

    Stops early, keeping the weights so far as a last checkpoint, when `should_stop()` turns
    true or `time_limit_s` passes. `train_data` (text only) replaces the reference's training
    part, e.g. by a copy with planted lines; the held-out part stays the reference's. Such a
    run is not the run of its configuration: keep it apart from the runs cached by `config_key`."""
    model = build_model(config).to(device).train()
    parameters = count_parameters(model)
    generator = torch.Generator().manual_seed(config.seed + 1)  # batches and masks, CPU: same on any device
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, betas=(0.9, 0.95), weight_decay=0.01)
    if config.kind == "text":
        train_data = text_split()[0] if train_data is None else train_data
        per_step = config.tokens_per_step
    else:
        train_data, _ = digit_split()
        per_step = config.batch
    saves = checkpoint_steps(config.steps)
    started = time.perf_counter()
    pending: list[Point] = []
    last_report = started
    stopped = ""

    def save(step: int) -> Event:
        return Event("checkpoint", checkpoint=Checkpoint(step, held_out_loss(model, config), _snapshot(model)))

    for step in range(config.steps + 1):
        if config.kind == "text":
            batch = text_batch(train_data, config, generator).to(device)
            outputs = model(input_ids=batch, labels=batch)
        else:
            rows = torch.randint(0, len(train_data), (config.batch,), generator=generator)
            noise = training_noise(config, config.batch, generator)
            outputs = model(pixel_values=train_data[rows].to(device), noise=noise.to(device))
        loss = outputs.loss
        # The point at step s is the loss of the model *before* its s-th update: step 0 is the
        # random model. The last iteration only measures; it does not update.
        pending.append(Point(step, loss.item(), time.perf_counter() - started, step * per_step))
        if step in saves:
            yield Event("points", points=pending)
            pending, last_report = [], time.perf_counter()
            yield save(step)
        if step == config.steps:
            break
        if should_stop() or (time_limit_s is not None and time.perf_counter() - started > time_limit_s):
            stopped = "stop" if should_stop() else "time"
            if pending:
                yield Event("points", points=pending)
                pending = []
            if step not in saves:  # (a checkpoint at this very step was just saved)
                yield save(step)
            break
        for group in optimizer.param_groups:
            group["lr"] = _learning_rate(config, step)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        now = time.perf_counter()
        if now - last_report >= report_every_s and pending:
            yield Event("points", points=pending)
            pending, last_report = [], now
    yield Event(
        "done",
        stopped=stopped,
        parameters=parameters,
        non_embedding_parameters=count_parameters(model, without_embeddings=True),
    )


@dataclass
class Run:
    """A run as the page sees it, assembled from `train`'s events."""

    config: Config
    device: str
    points: list[Point] = field(default_factory=list)
    checkpoints: list[Checkpoint] = field(default_factory=list)
    finished: bool = False  # trained every step of the config
    stopped: str = ""
    parameters: int = 0
    non_embedding_parameters: int = 0
    from_cache: bool = False

    @property
    def key(self) -> str:
        key = config_key(self.config, self.device)
        return key if self.finished else f"{key}-{self.stopped or 'running'}-{self.last_step}"

    @property
    def last_step(self) -> int:
        return self.points[-1].step if self.points else 0

    @property
    def seconds(self) -> float:
        return self.points[-1].seconds if self.points else 0.0

    def add(self, event: Event) -> None:
        if event.kind == "points":
            self.points.extend(event.points)
        elif event.kind == "checkpoint":
            self.checkpoints.append(event.checkpoint)
        elif event.kind == "done":
            self.stopped = event.stopped
            self.finished = not event.stopped
            self.parameters = event.parameters
            self.non_embedding_parameters = event.non_embedding_parameters

    def model_at(self, step: int | None = None, device: str = "cpu") -> torch.nn.Module:
        """The trained model at a checkpoint (the last one by default)."""
        checkpoint = self.checkpoints[-1] if step is None else next(c for c in self.checkpoints if c.step == step)
        return load_weights(self.config, checkpoint.state, device)

    def to_dict(self) -> dict:
        return {
            "config": dataclasses.asdict(self.config),
            "device": self.device,
            "points": [dataclasses.astuple(p) for p in self.points],
            "checkpoints": [{"step": c.step, "held_out_loss": c.held_out_loss, "state": c.state}
                            for c in self.checkpoints],
            "finished": self.finished,
            "stopped": self.stopped,
            "parameters": self.parameters,
            "non_embedding_parameters": self.non_embedding_parameters,
        }

    @classmethod
    def from_dict(cls, values: dict) -> "Run":
        return cls(
            config=config_from_dict(values["config"]),
            device=values["device"],
            points=[Point(int(step), float(loss), float(seconds), int(examples))
                    for step, loss, seconds, examples in values["points"]],
            checkpoints=[Checkpoint(int(c["step"]), float(c["held_out_loss"]), c["state"])
                         for c in values["checkpoints"]],
            finished=bool(values["finished"]),
            stopped=values["stopped"],
            parameters=int(values["parameters"]),
            non_embedding_parameters=int(values["non_embedding_parameters"]),
        )


def train_run(config: Config, device: str = "cpu", **kwargs) -> Run:
    """Train to the end (tests, benchmarks): the assembled Run."""
    run = Run(config, device)
    for event in train(config, device=device, **kwargs):
        run.add(event)
    return run


# --- text from a byte model ------------------------------------------------------------------------
def encode(text: str) -> list[int]:
    return list(text.encode("utf-8"))


def decode(ids: list[int]) -> str:
    return bytes(ids).decode("utf-8", errors="replace")


def next_byte_probabilities(model, context: int, prompt_ids: list[int]) -> torch.Tensor:
    """(256,) probabilities of the next byte after the last `context` bytes of the prompt."""
    device = next(model.parameters()).device
    ids = torch.tensor([prompt_ids[-context:]], device=device)
    with torch.inference_mode():
        logits = model(input_ids=ids, logits_to_keep=1).logits[0, -1]  # (256,)
    return logits.float().softmax(-1).cpu()


def sample_text(model, context: int, prompt_ids: list[int], new_bytes: int, seed: int, temperature: float = 0.8) -> str:
    """Continue the prompt by `new_bytes` bytes, sampled at `temperature` with a seeded generator
    (the model reads a sliding window of its last `context` bytes: it never saw longer ones)."""
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    ids = list(prompt_ids)
    with torch.inference_mode():
        for _ in range(new_bytes):
            window = torch.tensor([ids[-context:]], device=device)
            logits = model(input_ids=window, logits_to_keep=1).logits[0, -1].float().cpu()
            probs = (logits / temperature).softmax(-1)
            ids.append(int(torch.multinomial(probs, 1, generator=generator)))
    return decode(ids[len(prompt_ids) :])


# --- the cache of finished runs: bounded in memory and on disk ----------------------------------
class RunStore:
    """Finished runs by key: the newest `memory_runs` in memory, the newest `disk_runs` on disk
    (weights included), so a room training the defaults trains once. Unfinished runs (stopped,
    cut by the time ceiling) live in memory only, so a visitor can still ask their model."""

    def __init__(self, folder: Path | None, memory_runs: int = 8, disk_runs: int = 24):
        self.folder = folder
        self.memory_runs = memory_runs
        self.disk_runs = disk_runs
        self._runs = LRU(memory_runs)

    def _path(self, key: str) -> Path | None:
        return self.folder / f"{key}.pt" if self.folder else None

    def get(self, key: str) -> Run | None:
        run = self._runs.get(key)
        if run is not None:
            return run
        path = self._path(key)
        if path is None or not path.is_file():
            return None
        try:
            run = Run.from_dict(torch.load(path, weights_only=True))
        except Exception:  # a half-written or old file: forget it, train again
            log.warning("pre-training cache file %s unreadable; ignored", path.name)
            path.unlink(missing_ok=True)
            return None
        run.from_cache = True
        path.touch()  # newest use: last to be evicted
        self._runs.put(key, run)
        return run

    def put(self, run: Run) -> str:
        key = run.key
        self._runs.put(key, run)
        path = self._path(key)
        if run.finished and path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                partial = path.with_suffix(".part")
                torch.save(run.to_dict(), partial)
                partial.replace(path)  # atomic: a reader never sees half a file
                self._trim_disk()
            except OSError as error:  # a full or read-only disk: the memory copy still works
                log.warning("could not cache a pre-training run on disk: %s", error)
        return key

    def _trim_disk(self) -> None:
        files = sorted(self.folder.glob("*.pt"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in files[self.disk_runs :]:
            old.unlink(missing_ok=True)

    def in_memory(self) -> list[Run]:
        """The runs kept in memory now (at most `memory_runs`), the oldest first."""
        return self._runs.values()

    def clear(self) -> None:
        self._runs.clear()
        if self.folder and self.folder.is_dir():
            for path in self.folder.glob("*.pt"):
                path.unlink(missing_ok=True)


def as_image(pictures: torch.Tensor) -> np.ndarray:
    """(B, 1, 16, 16) in [0, 1] -> (16, 16·B) uint8, ink dark on white as people draw."""
    row = torch.cat(list(pictures[:, 0]), dim=1)
    return (255 * (1 - row.clamp(0, 1))).round().to(torch.uint8).numpy()
