"""Helpers shared by the benchmark scripts: timing, memory, and a launched app to call.

Each `benchmarks/bench_<demo>.py` has `run(repeats) -> list[Row]` and a `__main__` that prints
its rows; `python -m benchmarks.run_all` prints every demo's rows as one table.
"""

from __future__ import annotations

import os
import resource
import socket
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


@dataclass
class Row:
    demo: str
    case: str  # what was timed, e.g. "next-token distribution, 20-token prompt"
    raw_s: float  # median seconds of the plain library call
    app_s: float  # median seconds of the same work through the app
    peak_mb: float = field(default_factory=lambda: peak_rss_mb())
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.app_s / self.raw_s if self.raw_s else float("nan")


def median_time(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time of `fn()` over `repeats` runs, after `warmup` untimed runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def paired_medians(raw_fn: Callable[[], object], app_fn: Callable[[], object],
                   repeats: int) -> tuple[float, float, float]:
    """-> (raw median s, app median s, app/raw CPU-time ratio).

    After one warm-up of each, the two are timed alternately (raw, app, raw, ...) so that load
    from other processes on a shared machine hits both alike; CPU seconds of this process (the
    in-process server included) move less than wall time when the cores are shared.
    """
    raw_fn(), app_fn()
    wall: dict[str, list[float]] = {"raw": [], "app": []}
    cpu: dict[str, list[float]] = {"raw": [], "app": []}
    for _ in range(repeats):
        for name, fn in (("raw", raw_fn), ("app", app_fn)):
            wall_start, cpu_start = time.perf_counter(), time.process_time()
            fn()
            wall[name].append(time.perf_counter() - wall_start)
            cpu[name].append(time.process_time() - cpu_start)
    cpu_ratio = statistics.median(cpu["app"]) / statistics.median(cpu["raw"])
    return statistics.median(wall["raw"]), statistics.median(wall["app"]), cpu_ratio


def paired(raw_fn: Callable[[], object], app_fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """-> (raw median s, app median s), timed alternately as in `paired_medians`."""
    return paired_medians(raw_fn, app_fn, repeats)[:2]


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_app():
    """Build and serve the whole gallery in this process; -> (blocks, gradio_client.Client).

    Set GALLERY_TINY_MODELS (or not) before importing anything from `gallery`.
    """
    import app as gallery_app
    from gallery import server
    from gradio_client import Client

    blocks = gallery_app.build_app()
    _, url, _ = server.launch(blocks, server_port=free_port(), prevent_thread_lock=True, quiet=True)
    return blocks, Client(url, verbose=False, download_files=False)


def print_rows(rows: list[Row]) -> None:
    header = f"{'demo':<14} {'case':<46} {'raw s':>8} {'app s':>8} {'ratio':>6} {'peak MB':>8}  note"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r.demo:<14} {r.case[:46]:<46} {r.raw_s:>8.4f} {r.app_s:>8.4f} {r.ratio:>6.2f} "
            f"{r.peak_mb:>8.0f}  {r.note}"
        )
