"""llama.cpp as the CPU engine for the bundled GGUF language models.

The text tabs ask an engine three things, always in token ids (the tokenizer stays transformers',
so both engines read exactly the same ids):

- `logits(ids)` -> (V,) the next-token logits after `ids` (full vocabulary);
  `logits_batch(id_lists)` -> (B, V); `logits_at(ids, n)` -> (n, V) for the last n positions
  (row i predicts the token after ids[:len(ids) - n + i + 1]).
- `generate(ids, n, pick, ...)`: one token at a time; `pick(step, logits)` chooses each token from
  the engine's raw logits (the tabs do temperature -> top-k -> top-p themselves), and every step
  yields (token, logits), so the history can show what each token was chosen from.
- `generate_batch(id_lists, n, pick, ...)`: several rows decoded together, one llama.cpp batch
  per step (set scoring and the prompting strategies).

Transformers stays the engine for Hub models, on GPU, and the reference in tests; this module
is used only where `engines.load_text_engine` finds a GGUF file and a working `llama_cpp`.
The third engine, an OpenAI-compatible server (`text_server.ServerEngine`, GALLERY_TEXT_SERVER),
answers the same three things; its rows list only the server's top N tokens (`top_n`; None here:
every token), so the tabs read probabilities through `probabilities`, and its `generate_batch`
lets the server sample each row as `draws` says (this engine ignores `draws`: `pick` chooses).

One llama.cpp context serves every visitor: each request gets its own sequence in the shared
key/value cache, and the context is taken one decode step at a time through a first-come,
first-served lock, so a long generation lets the next-token bars of another visitor in between
two of its tokens instead of holding the engine for its whole run.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import logging
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

log = logging.getLogger("gallery")

N_CTX = 8192  # key/value cache shared by every sequence (tokens, all sequences together)
N_SEQ = 32  # sequences at once: one per short request, one per generated row
N_BATCH = 512  # tokens per decode call while reading a prompt
# What idle sequences may keep for the next request (tokens, all together). Every decode step
# attends over the cache cells in use, other sequences' included (masked), so a full cache
# slows every token: measured, 4 rows a step took 34 ms with an empty cache, 51 ms beside 7 100
# idle cells. The least recently used idle sequences are dropped beyond this.
IDLE_KEEP = 2048


def threads() -> int:
    """Threads for one token at a time: half the cores (one on 2 cores), at most 4.

    Measured here on 2 cores (llama.cpp built with OpenMP, OMP_WAIT_POLICY=PASSIVE): one
    token's step is too short to share, 1 thread 86-94 tok/s, 2 threads 30-34 tok/s, and a
    thread that waits for one that is not running (the other lane, the web server) is lost
    time. GALLERY_LLAMA_THREADS overrides this."""
    asked = int(os.environ.get("GALLERY_LLAMA_THREADS", "0") or 0)
    return max(1, asked or min(4, (os.cpu_count() or 2) // 2))


def batch_threads() -> int:
    """Threads for many tokens at once (reading a prompt, a step of several rows): every core,
    at most 4. Measured here on 2 cores: prompts read at 277-344 tok/s with 2 threads against
    191-206 with 1, and no slower than 1 thread while another process keeps a core busy."""
    asked = int(os.environ.get("GALLERY_LLAMA_THREADS", "0") or 0)
    return max(1, asked or min(4, os.cpu_count() or 2))


def weights_name(gguf_path: Path) -> str:
    """'Q4_1' for a GGUF whose file type is MOSTLY_Q4_1 (what the page names)."""
    try:
        import gguf

        reader = gguf.GGUFReader(str(gguf_path))
        field = reader.fields["general.file_type"]
        name = gguf.LlamaFileType(int(field.parts[field.data[0]][0])).name
        return name.removeprefix("MOSTLY_")
    except Exception:  # noqa: BLE001 - a label only
        return "GGUF"


# --- is llama.cpp usable here? -------------------------------------------------------------------
_CHECK = """
import sys, llama_cpp
from llama_cpp import Llama
llm = Llama(model_path=sys.argv[1], n_ctx=64, n_threads=1, verbose=False)
llm.eval([1, 2, 3])
print("ok")
"""
_checked: dict[str, str | None] = {}
_check_lock = threading.Lock()


def why_unusable(gguf_path: Path) -> str | None:
    """None when llama.cpp can load and run this file here; else the reason in plain words.

    Checked once per file in a child process: a llama.cpp binary built for another CPU dies of
    an illegal instruction, which must not take the server with it."""
    key = str(gguf_path)
    with _check_lock:
        if key in _checked:
            return _checked[key]
        try:
            import importlib.util

            if importlib.util.find_spec("llama_cpp") is None:
                reason = "llama-cpp-python is not installed"
            else:
                done = subprocess.run([sys.executable, "-c", _CHECK, key], capture_output=True, text=True,
                                      timeout=180)
                reason = None if done.returncode == 0 and "ok" in done.stdout else (
                    f"llama.cpp failed its start-up check (exit code {done.returncode}): "
                    f"{(done.stderr or done.stdout).strip()[-300:]}"
                )
        except Exception as error:  # noqa: BLE001 - a timeout, no interpreter...
            reason = f"llama.cpp failed its start-up check: {type(error).__name__}: {error}"
        if reason:
            log.warning("%s: transformers is used for %s instead", reason, gguf_path.name)
        _checked[key] = reason
        return reason


# --- a first-come, first-served lock ----------------------------------------------------------
class FairLock:
    """A lock granted in the order it was asked for (threading.Lock lets a thread that has just
    released it take it straight back, which would starve the bars behind a generation)."""

    def __init__(self):
        self._mutex = threading.Lock()
        self._waiting: collections.deque[threading.Event] = collections.deque()
        self._held = False

    def __enter__(self):
        with self._mutex:
            if not self._held and not self._waiting:
                self._held = True
                return self
            turn = threading.Event()
            self._waiting.append(turn)
        turn.wait()
        return self

    def __exit__(self, *exc):
        with self._mutex:
            if self._waiting:
                self._waiting.popleft().set()  # handed over: stays held
            else:
                self._held = False


@dataclass(frozen=True)
class Draw:
    """How an engine that samples on its own side (a server) draws one row's tokens: temperature
    (0 = always the top token), then top-k (0 = off), then top-p (1 = off), transformers' order,
    with the row's own seed."""

    temperature: float = 0.0
    top_k: int = 0
    top_p: float = 1.0
    seed: int = 0


def probabilities(logits: torch.Tensor, engine=None) -> torch.Tensor:
    """(..., V) rows from an engine -> the model's next-token probabilities. Full-vocabulary logits
    (llama.cpp here, transformers) go through a softmax. A server engine's rows (`top_n` set) are
    already the server's log-probabilities over the whole vocabulary, -inf where it sent none, so
    they are only exponentiated: the page shows the server's own figures for its top N, not those
    N renormalised (the sampling settings, applied to the rows, do renormalise them)."""
    if getattr(engine, "top_n", None):
        return logits.float().exp()
    return logits.float().softmax(-1)


# --- the engine -------------------------------------------------------------------------------
class LlamaCppEngine:
    """One GGUF file in llama.cpp, shared by every request (see the module docstring)."""

    top_n = None  # its rows hold every token's logit

    def __init__(self, gguf_path: Path, n_ctx: int = N_CTX, n_seq: int = N_SEQ):
        import llama_cpp
        from llama_cpp import _internals
        from llama_cpp._logger import set_verbose

        set_verbose(False)  # llama.cpp logs every context it makes; errors only (as Llama(verbose=False))
        self._c = llama_cpp
        self.path = Path(gguf_path)
        self.weights = weights_name(self.path)
        self.name = f"llama.cpp, {self.weights} weights"
        model_params = llama_cpp.llama_model_default_params()
        # No repacked weights: llama.cpp's CPU repacking multiplies groups of 4 rows one way and
        # the rest another, so a token's numbers would depend on how its prompt was cut into
        # decode calls and on what else shared the batch. With Gemma's Q4_K weights the same
        # prompt read in one piece or after a cached prefix gave probabilities 0.010 apart; on
        # the plain path they agree within 1e-5 however the prompt is read (tests/test_text_engine.py).
        model_params.use_extra_bufts = False
        self._model = _internals.LlamaModel(path_model=str(self.path), params=model_params, verbose=False)
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = n_ctx
        params.n_batch = params.n_ubatch = N_BATCH
        params.n_seq_max = n_seq
        params.kv_unified = True  # every sequence may use the whole cache
        # Sliding-window models (Gemma 3): a full-size window cache, so that a cached prefix can
        # be cut back and read on from anywhere (a pruned window could not).
        params.swa_full = True
        # No flash attention: its CPU kernel takes one path for a single new token and another
        # (tiled) for many, which round differently; Gemma's numbers for the same prompt came out
        # up to 0.007 apart depending on how much of it was already cached. With plain attention
        # they agree within 1e-5 however a prompt is read (tests/test_text_engine.py; the raw
        # logits of very unlikely tokens can still differ slightly, as cache cells move); measured
        # here, generation is as fast, and prompts are read about 20% slower.
        params.flash_attn_type = 0  # LLAMA_FLASH_ATTN_TYPE_DISABLED
        params.n_threads = params.n_threads_batch = self._threads_now = threads()
        self._ctx = _internals.LlamaContext(model=self._model, params=params, verbose=False)
        self._batch = _internals.LlamaBatch(n_tokens=N_BATCH, embd=0, n_seq_max=1, verbose=False)
        self.vocab_size = int(self._model.n_vocab())
        self.n_ctx = n_ctx
        self._lock = FairLock()
        self.n_seq = n_seq
        self._free = list(range(n_seq))
        self._reserved: dict[int, int] = {}  # borrowed sequence -> tokens it may hold
        self._free_ready = threading.Condition(threading.Lock())
        self._cached: dict[int, list[int]] = {}  # sequence -> the tokens its cache holds
        self._last_used: dict[int, int] = {}  # sequence -> when a request last gave it back
        self._uses = itertools.count()

    def close(self) -> None:
        self._ctx.close()
        self._model.close()

    # -- sequences ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def _sequences(self, id_lists: Sequence[Sequence[int]], tokens: int) -> Iterator[list[int]]:
        """Borrow one sequence of the shared cache per id list, with room for `tokens` tokens in all.

        Each list gets the free sequence whose cache shares the longest start with it: the next
        question of a set finds its worked examples already read. Free sequences keep what they
        read until the room is needed; then their caches are dropped. Waits while others hold the room."""
        count = len(id_lists)
        if count > self.n_seq or tokens > self.n_ctx:
            raise ValueError(
                f"{count} rows of {tokens} tokens in all do not fit the engine "
                f"({self.n_seq} rows, {self.n_ctx} tokens)"
            )
        with self._free_ready:
            while True:
                in_use = sum(self._reserved.values())
                if len(self._free) >= count and in_use + tokens <= self.n_ctx:
                    break
                self._free_ready.wait()
            # Longest shared starts first: a short prompt must not take, on a tie over the chat
            # template's header, the sequence that holds the worked examples of another row. On
            # a tie, the sequence that holds least (what it drops is the least lost).
            pairs = sorted(((_common(self._cached.get(seq, []), ids), -len(self._cached.get(seq, [])), row, seq)
                            for row, ids in enumerate(id_lists) for seq in self._free), reverse=True)
            given: dict[int, int] = {}
            for _, _, row, seq in pairs:
                if row not in given and seq not in given.values():
                    given[row] = seq
            taken = [given[row] for row in range(count)]
            for seq in taken:
                self._free.remove(seq)
            for seq in taken:
                self._reserved[seq] = tokens // count + 1
            kept = sum(len(self._cached.get(seq, [])) for seq in self._free)
            if in_use + tokens + kept > self.n_ctx:  # make room: drop what idle sequences hold
                with self._lock:
                    for seq in self._free:
                        self._forget(seq)
        try:
            yield taken
        finally:
            with self._free_ready:
                for seq in taken:
                    del self._reserved[seq]
                    self._last_used[seq] = next(self._uses)
                self._free.extend(taken)
                idle = sorted(self._free, key=lambda seq: self._last_used.get(seq, -1))  # oldest first
                held = sum(len(self._cached.get(seq, [])) for seq in idle)
                if held > IDLE_KEEP:
                    with self._lock:
                        for seq in idle:
                            if held <= IDLE_KEEP:
                                break
                            held -= len(self._cached.get(seq, []))
                            self._forget(seq)
                self._free_ready.notify_all()

    def _forget(self, seq: int, keep: int = 0) -> int:
        """Drop what sequence `seq` holds after its first `keep` tokens; -> tokens kept."""
        if not self._c.llama_memory_seq_rm(self._memory(), seq, keep, -1):
            keep = 0  # this cache cannot cut a sequence part-way: drop all of it
            self._c.llama_memory_seq_rm(self._memory(), seq, 0, -1)
        self._cached[seq] = self._cached.get(seq, [])[:keep]
        return keep

    def _memory(self):
        return self._c.llama_get_memory(self._ctx.ctx)

    def _row(self, i: int) -> np.ndarray:
        return np.ctypeslib.as_array(self._c.llama_get_logits_ith(self._ctx.ctx, i), shape=(self.vocab_size,)).copy()

    def _decode(self, entries: Sequence[tuple[int, int, int, bool]], reading: bool = False) -> None:
        """One llama_decode of (token, position, sequence, wants logits) entries. A prompt being
        read shares the cores (`batch_threads`); one step of a few rows does not (`threads`)."""
        wanted = batch_threads() if reading else threads()
        if wanted != self._threads_now:
            self._c.llama_set_n_threads(self._ctx.ctx, threads(), wanted)
            self._threads_now = wanted
        batch = self._batch.batch
        batch.n_tokens = len(entries)
        for i, (token, pos, seq, wants) in enumerate(entries):
            batch.token[i] = token
            batch.pos[i] = pos
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = seq
            batch.logits[i] = wants
        self._ctx.decode(self._batch)

    def _read(self, seq: int, ids: Sequence[int], keep_last: int = 1) -> np.ndarray:
        """Bring sequence `seq` to hold `ids` (reusing the common prefix already cached) and
        return the logits of its last `keep_last` positions: (keep_last, V). Caller holds the lock."""
        ids = [int(i) for i in ids]
        if not ids:
            raise ValueError("no tokens to read")
        if len(ids) > self.n_ctx:
            raise ValueError(f"{len(ids)} tokens do not fit the engine's {self.n_ctx}-token context")
        # The positions whose logits we need are decoded again, even when cached.
        common = min(_common(self._cached.get(seq, []), ids), len(ids) - keep_last)
        common = self._forget(seq, common)
        rows: list[np.ndarray] = []
        first_wanted = len(ids) - keep_last
        for start in range(common, len(ids), N_BATCH):
            chunk = range(start, min(len(ids), start + N_BATCH))
            self._decode([(ids[p], p, seq, p >= first_wanted) for p in chunk], reading=len(chunk) > 1)
            rows += [self._row(i) for i, p in enumerate(chunk) if p >= first_wanted]
        self._cached[seq] = ids
        return np.stack(rows)

    def read_gap(self, id_lists: Sequence[Sequence[int]]) -> float:
        """The largest difference between the next-token probabilities of each prompt read whole
        into an empty sequence and read again after its first token alone. Zero where llama.cpp
        gives a prompt the same numbers however its cache was filled; on some CPUs Gemma's Q4_K
        weights gave 0.011 (engines.distribution_engine then reads the bars with transformers)."""
        gap = 0.0
        with self._sequences(id_lists[:1], max(len(ids) for ids in id_lists)) as (seq,):
            for ids in id_lists:
                with self._lock:
                    self._forget(seq)
                    whole = torch.from_numpy(self._read(seq, ids)[0]).softmax(-1)
                    self._forget(seq)
                    self._read(seq, ids[:1])
                    after_first = torch.from_numpy(self._read(seq, ids)[0]).softmax(-1)
                gap = max(gap, float((whole - after_first).abs().max()))
        return gap

    # -- the interface ------------------------------------------------------------------------
    def logits(self, ids: Sequence[int]) -> torch.Tensor:
        return self.logits_batch([ids])[0]

    def logits_batch(self, id_lists: Sequence[Sequence[int]]) -> torch.Tensor:
        """-> (B, V) next-token logits for each id list, read one after another in one borrowed
        sequence of the cache: each reuses the start it shares with the list read before it (the
        probabilities agree within 1e-5 however a prompt was read)."""
        with self._sequences(id_lists[:1], max(len(ids) for ids in id_lists)) as (seq,):
            rows = []
            for ids in id_lists:
                with self._lock:
                    rows.append(self._read(seq, ids)[0])
            return torch.from_numpy(np.stack(rows))

    def logits_at(self, ids: Sequence[int], last: int) -> torch.Tensor:
        """-> (last, V): the logits at the last `last` positions of `ids`."""
        with self._sequences([ids], len(ids)) as (seq,), self._lock:
            return torch.from_numpy(self._read(seq, ids, keep_last=last))

    def generate(self, ids: Sequence[int], max_new_tokens: int, pick: Callable[[int, torch.Tensor], int],
                 eos_ids: set[int], max_time: float | None = None,
                 stop: threading.Event | None = None) -> Iterator[tuple[int, torch.Tensor]]:
        """Yield (token, (V,) raw logits it was chosen from) per step; ends after an end token,
        max_new_tokens, max_time seconds, or `stop`."""
        for tokens, rows in self.generate_batch([ids], max_new_tokens, lambda row, step, logits: pick(step, logits),
                                                eos_ids, max_time, stop):
            if tokens[0] is None:
                return
            yield tokens[0], rows[0]

    def generate_batch(self, id_lists: Sequence[Sequence[int]], max_new_tokens: int,
                       pick: Callable[[int, int, torch.Tensor], int], eos_ids: set[int],
                       max_time: float | None = None, stop: threading.Event | None = None,
                       ended: Callable[[int], bool] | None = None, draws=None,
                       ) -> Iterator[tuple[list[int | None], list[torch.Tensor | None]]]:
        """Decode several rows together: each step yields two lists of the caller's own, every
        row's new token (None once the row has ended) and the (V,) logits it was picked from. `pick(row, step, logits)`;
        `ended(row)`, asked after each step's yield, ends a row early (it has said its answer).
        Rows with the same prompt (self-consistency's samples) read it once and share its cache.
        `draws` (how a server engine samples each row) is not used here: `pick` chooses."""
        started = time.perf_counter()
        lengths = [len(ids) for ids in id_lists]
        room = sum(lengths) + (max_new_tokens + 1) * len(id_lists)
        with self._sequences(id_lists, room) as seqs:
            logits: list[torch.Tensor | None] = []
            for row, (seq, ids) in enumerate(zip(seqs, id_lists)):  # one prompt per step of the lock
                same = next((r for r in range(row) if list(id_lists[r]) == list(ids)), None)
                with self._lock:
                    if same is None:
                        logits.append(torch.from_numpy(self._read(seq, ids)[0]))
                    else:  # the cache cells are shared, not copied (a unified cache)
                        self._forget(seq)
                        self._c.llama_memory_seq_cp(self._memory(), seqs[same], seq, 0, -1)
                        self._cached[seq] = list(self._cached[seqs[same]])
                        logits.append(logits[same].clone())
            positions = list(lengths)
            alive = [True] * len(id_lists)
            for step in range(max_new_tokens):
                tokens: list[int | None] = []
                for row, row_logits in enumerate(logits):
                    if not alive[row]:
                        tokens.append(None)
                        continue
                    token = int(pick(row, step, row_logits))
                    tokens.append(token)
                    if token in eos_ids:
                        alive[row] = False
                yield tokens, list(logits)  # a list of its own: `logits` is refilled for the next step
                if ended is not None:
                    alive = [a and not ended(row) for row, a in enumerate(alive)]
                out_of_time = max_time is not None and time.perf_counter() - started > max_time
                last_step = step == max_new_tokens - 1  # its logits would never be used
                if last_step or not any(alive) or out_of_time or (stop is not None and stop.is_set()):
                    return
                entries = [(tokens[r], positions[r], seqs[r], True) for r in range(len(seqs)) if alive[r]]
                with self._lock:
                    self._decode(entries)
                    rows = iter(self._row(i) for i in range(len(entries)))
                    for r in range(len(seqs)):
                        if alive[r]:
                            self._cached[seqs[r]].append(tokens[r])
                            positions[r] += 1
                            logits[r] = torch.from_numpy(next(rows))
                        else:
                            logits[r] = None


def _common(a: Sequence[int], b: Sequence[int]) -> int:
    """How many tokens two id lists share at their start."""
    common = 0
    for x, y in zip(a, b):
        if x != y:
            break
        common += 1
    return common
