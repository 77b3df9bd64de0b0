"""What the generating tabs share: a model's end-of-text ids, left-padded batches, and one way to
stream a generation that runs in a worker thread (text generation and diffusion alike).

Why a worker thread: `generate` and a diffusers pipeline only offer callbacks, and a Gradio
generator must `yield` from its own thread; the callback hands each partial result to the
handler's thread through a queue.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import traceback
from typing import Callable, Iterator

import torch


def eos_token_ids(lm, tokenizer) -> set[int]:
    """Every id that ends a reply: the model's generation config (one id or a list) and the tokenizer's."""
    ids = lm.generation_config.eos_token_id
    ids = set(ids if isinstance(ids, (list, tuple)) else [ids] if ids is not None else [])
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return ids


def left_padded(id_lists: list[list[int]], pad_id: int) -> dict[str, torch.Tensor]:
    """Several prompts as one batch, padded on the left: every prompt's last token sits in the last
    column, where the next token is predicted. -> input_ids, attention_mask (1 = real token,
    0 = padding) and position_ids that count real tokens only, each (B, T): each row then equals
    its unpadded run (`generate` derives the same positions from the mask itself)."""
    width = max(len(ids) for ids in id_lists)
    input_ids = torch.full((len(id_lists), width), pad_id, dtype=torch.long)  # (B, T)
    mask = torch.zeros((len(id_lists), width), dtype=torch.long)
    for row, ids in enumerate(id_lists):
        input_ids[row, width - len(ids):] = torch.tensor(ids, dtype=torch.long)
        mask[row, width - len(ids):] = 1
    return {"input_ids": input_ids, "attention_mask": mask, "position_ids": (mask.cumsum(-1) - 1).clamp(min=0)}


# Seeding, one policy for concurrent visitors: a private `torch.Generator(seed)` wherever the call
# takes one (prompting's row sampler, the engines, diffusion); `global_rng_seeded` where it does not.
_GLOBAL_RNG_LOCK = threading.Lock()


@contextlib.contextmanager
def global_rng_seeded(seed: int, device: torch.device):
    """For a call that takes no generator of its own (`model.generate` with do_sample): the global
    RNG seeded inside one lock and restored afterwards (`fork_rng`), so two visitors sampling at
    once cannot mix their seeds. Only the model's own device's RNG: a CPU model on ZeroGPU must
    not wake CUDA (it is not there)."""
    devices = [device] if device.type == "cuda" else []
    with _GLOBAL_RNG_LOCK, torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


class _Failed:
    def __init__(self, error: BaseException):
        self.error = error


_FINISHED = object()


def from_worker(work: Callable[[Callable[[object], None], threading.Event], None], name: str,
                stop: threading.Event | None = None) -> Iterator:
    """Run `work(emit, stop)` in a daemon thread (under `torch.inference_mode`) and yield, in the
    caller's thread, every value it passes to `emit`, until it returns.

    An exception in the worker (out of memory, say) is raised again here, where the handler's
    error path turns it into plain words; its frames are cleared first, so the worker's tensors
    can be freed. Closing the iterator (the visitor left or pressed stop) sets `stop`: `work`
    checks it at each step and ends there."""
    events: queue.Queue = queue.Queue()
    stop = stop or threading.Event()

    def run() -> None:
        try:
            with torch.inference_mode():
                work(events.put, stop)
        except BaseException as error:  # noqa: BLE001 - every failure must reach the reader
            events.put(_Failed(error))
        finally:
            events.put(_FINISHED)

    threading.Thread(target=run, name=name, daemon=True).start()
    try:
        while True:
            item = events.get()
            if item is _FINISHED:
                return
            if isinstance(item, _Failed):
                traceback.clear_frames(item.error.__traceback__)
                raise item.error
            yield item
    finally:
        stop.set()
