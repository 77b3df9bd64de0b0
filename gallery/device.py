"""Device and dtype, chosen once; the ZeroGPU decorator (a no-op where `spaces` is absent), which
keeps small text models on the CPU and falls back to the CPU when the GPU quota is used up.

`spaces` must be imported before anything initialises CUDA, so this module imports it first and
torch only when `device()` is first asked (torch takes seconds to import; the page should not wait).

Why the routing: on a ZeroGPU Space, GPU time is metered per visitor IP, and a workshop room behind
one Wi-Fi router is one IP with a few minutes a day. So a text model that answers quickly on a CPU
(`catalog.runs_on_cpu`) is called directly there and never touches the quota; only image models and
larger LMs ask for the GPU, each call for a `duration` sized to its work (`gpu_seconds`).
"""

from __future__ import annotations

import functools
import gc
import inspect
import logging
import math
import re
from typing import Callable

try:  # On a Hugging Face Space the `spaces` package is preinstalled.
    import spaces as _spaces
except ImportError:  # pragma: no cover - depends on the machine
    _spaces = None

from gallery import catalog, settings

log = logging.getLogger("gallery")

# --- how long to ask the GPU for ------------------------------------------------------------------
# Estimates for one ZeroGPU slice (an H200 MIG, fp16), to be replaced by measured figures from
# `bash benchmarks/gpu_check.sh`. A call that asks for less waits less in the queue and is still
# granted when the visitor's quota is nearly used up ("60s requested vs. 12s left" is refused).
GPU_CALL_START_S = 4.0  # a fresh worker: weights onto the GPU, CUDA context
GPU_MARGIN = 1.5  # headroom over the estimate; a call that overruns its duration is aborted
GPU_MIN_S, GPU_MAX_S = 5, 120


def gpu_seconds(work_s: float) -> int:
    """The `duration` to ask for a call whose model work is estimated at `work_s` seconds."""
    return int(min(GPU_MAX_S, max(GPU_MIN_S, math.ceil(GPU_CALL_START_S + GPU_MARGIN * work_s))))


def sized(work_s: Callable[..., float]) -> Callable[..., int]:
    """A `duration=` for `gpu`: from the call's own arguments, the estimated work in seconds ->
    the duration to ask for. Arguments it cannot read get the default 60 s (the call itself then
    refuses them with a plain message)."""

    def duration(*args, **kwargs) -> int:
        try:
            return gpu_seconds(float(work_s(*args, **kwargs)))
        except Exception:
            return 60

    return duration


# --- when ZeroGPU says no ------------------------------------------------------------------------
# The `spaces` package (0.51.3, spaces/zero/client.py `schedule`) raises a plain `gr.Error` whose
# *title* says why; the message is for people, e.g. "You have exceeded your free ZeroGPU quota
# (60s requested vs. 12s left). Try again in 0:03:12." or "Space app has reached its GPU limit. ..."
QUOTA_TITLES = {"ZeroGPU quota exceeded", "ZeroGPU pending credits exceeded", "ZeroGPU illegal duration"}
BUSY_TITLES = {"ZeroGPU queue timeout"}  # "No GPU was available after 60s"
_RETRY_IN = re.compile(r"Try again in (?:(\d+) days?, )?(\d+):(\d{2}):(\d{2})")


def gpu_refusal(error: BaseException) -> str | None:
    """'quota' or 'busy' when this is ZeroGPU refusing to start a GPU call, else None."""
    title = str(getattr(error, "title", "") or "")
    if title in QUOTA_TITLES:
        return "quota"
    if title in BUSY_TITLES:
        return "busy"
    return None


def retry_after_s(message: str) -> int | None:
    """Seconds until the quota comes back, when ZeroGPU's message says ("Try again in 0:03:12")."""
    found = _RETRY_IN.search(message)
    if not found:
        return None
    days, hours, minutes, seconds = (int(x or 0) for x in found.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def _in_words(seconds: int) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    if minutes < 90:
        return f"about {minutes} minute{'s' * (minutes != 1)}"
    return f"about {round(minutes / 60)} hours"


def refusal_sentence(error: BaseException, stand_in: str | None = None) -> str:
    """One plain sentence for the visitor: what happened, when it resets (if ZeroGPU said), that
    the text tabs still work, and what gives more GPU time."""
    message = str(getattr(error, "message", "") or error)
    if gpu_refusal(error) == "busy":
        what = "Every GPU of this Space was busy for a minute, so this request could not get one"
    else:
        what = ("The free GPU time of this Space for your network has run out (ZeroGPU counts it per "
                "internet address, so everyone on one Wi-Fi shares it)")
        wait = retry_after_s(message)
        if wait is not None:
            what += f"; it comes back in {_in_words(wait)}"
    text_tabs = "the text tabs keep working on the CPU"
    if stand_in:
        text_tabs += f" (this answer comes from {stand_in} there)"
    return (f"{what}: {text_tabs}, an image tab's examples still show the answers already made for "
            "them, and signing in to Hugging Face, or the organiser running the gallery on their "
            "own GPU, gives more GPU time.")


# --- the decorator -------------------------------------------------------------------------------
def skips_gpu(model: catalog.Model) -> bool:
    """On ZeroGPU, a small text model is called directly, on the CPU: no GPU call, no quota."""
    return settings.ZERO_GPU and catalog.runs_on_cpu(model)


def placement(model: catalog.Model) -> str:
    """Where this model runs: the CPU for small text models on ZeroGPU, else the gallery's device."""
    return "cpu" if skips_gpu(model) else device()


def dtype_for(model: catalog.Model):
    import torch

    return torch.float32 if placement(model) == "cpu" else dtype()


def _entry(role: str, first) -> catalog.Model | None:
    if isinstance(first, catalog.Model):
        return first
    try:
        return catalog.by_label(role, first)
    except Exception:  # an unknown label: the function itself refuses it, without a GPU call
        return None


def gpu(duration: int | Callable[..., int] = 60, *, role: str | None = None):
    """`@gpu(duration=...)`: `spaces.GPU` on ZeroGPU (a no-op elsewhere). `duration` is seconds,
    or a function of the call's own arguments that returns them (sized to the call).

    With `role`, the first argument names the model (a dropdown label or a `catalog.Model` of that
    role), and on ZeroGPU:
    - a model that runs well on the CPU is called directly: no GPU call, no quota spent;
    - when ZeroGPU refuses a text model's call (quota used up, no GPU free), the same call runs
      on the role's CPU model instead and a warning says so in one plain sentence.
    Any other refusal reaches `ui.user_errors`, which shows the same sentence as the error.

    The GPU path is the attribute `gpu_call` of the returned function (tests put a simulated
    ZeroGPU refusal there)."""

    def decorate(fn):
        on_gpu = _spaces.GPU(duration=duration)(fn) if _spaces is not None else fn
        if role is None:
            return on_gpu

        def stand_in_for(entry, error) -> catalog.Model | None:
            if entry is None or entry.family != "causal_lm" or gpu_refusal(error) is None:
                return None
            stand_in = catalog.cpu_stand_in(role)
            return stand_in if stand_in is not None and stand_in != entry else None

        def swap(args, entry, stand_in, error):
            first = stand_in if isinstance(args[0], catalog.Model) else stand_in.label
            log.warning("ZeroGPU refused %s; answering on the CPU with %s", entry.label, stand_in.label)
            import gradio as gr

            gr.Warning(refusal_sentence(error, stand_in.label), duration=15)
            return (first, *args[1:])

        if inspect.isgeneratorfunction(fn):

            @functools.wraps(fn)
            def route_stream(*args, **kwargs):
                entry = _entry(role, args[0]) if args else None
                if entry is None or skips_gpu(entry):
                    yield from fn(*args, **kwargs)
                    return
                stream = route_stream.gpu_call(*args, **kwargs)
                try:
                    first = next(stream)  # ZeroGPU decides when the call starts
                except StopIteration:
                    return
                except Exception as error:
                    stand_in = stand_in_for(entry, error)
                    if stand_in is None:
                        raise
                    yield from fn(*swap(args, entry, stand_in, error), **kwargs)
                    return
                yield first
                yield from stream

            route_stream.gpu_call, route_stream.gpu_duration = on_gpu, duration
            return route_stream

        @functools.wraps(fn)
        def route(*args, **kwargs):
            entry = _entry(role, args[0]) if args else None
            if entry is None or skips_gpu(entry):
                return fn(*args, **kwargs)
            try:
                return route.gpu_call(*args, **kwargs)
            except Exception as error:
                stand_in = stand_in_for(entry, error)
                if stand_in is None:
                    raise
                return fn(*swap(args, entry, stand_in, error), **kwargs)

        route.gpu_call, route.gpu_duration = on_gpu, duration
        return route

    return decorate


@functools.cache
def device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@functools.cache
def dtype():
    """fp16 on CUDA (half the memory, tensor cores), fp32 on CPU (fp16 matmuls are slow there)."""
    import torch

    return torch.float16 if device() == "cuda" else torch.float32


def free_memory() -> None:
    """Give back what a failed call left behind (after an out-of-memory error, say)."""
    gc.collect()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def is_out_of_memory(error: BaseException) -> bool:
    import torch

    if isinstance(error, torch.OutOfMemoryError):
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()
