"""Device and dtype, chosen once; the ZeroGPU decorator, or a no-op where `spaces` is absent.

`spaces` must be imported before anything initialises CUDA, so this module imports it first and
torch only when `device()` is first asked (torch takes seconds to import; the page should not wait).
"""

from __future__ import annotations

import functools
import gc

try:  # On a Hugging Face Space the `spaces` package is preinstalled.
    import spaces as _spaces
except ImportError:  # pragma: no cover - depends on the machine
    _spaces = None


def gpu(duration: int = 60):
    """`@gpu(duration=...)`: `spaces.GPU` on ZeroGPU (a no-op elsewhere), else the function itself."""

    def decorate(fn):
        if _spaces is None:
            return fn
        return _spaces.GPU(duration=duration)(fn)

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
