"""Time from `python app.py` to the first page served, in a fresh process (median of a few starts).

    python -m benchmarks.startup [--repeats 3] [--tiny DIR]

Models load lazily on a tab's first use, so this measures imports + building the page + serving.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from benchmarks.common import free_port

ROOT = Path(__file__).resolve().parent.parent


def time_to_first_page(env: dict[str, str], timeout_s: float = 120.0) -> float:
    port = free_port()
    env = {**env, "GALLERY_PORT": str(port), "GALLERY_HOST": "127.0.0.1", "PYTHONUNBUFFERED": "1"}
    started = time.perf_counter()
    server = subprocess.Popen(
        [sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        while time.perf_counter() - started < timeout_s:
            if server.poll() is not None:
                raise RuntimeError(f"app.py exited with code {server.returncode}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as reply:
                    if reply.status == 200 and b"gradio" in reply.read().lower():
                        return time.perf_counter() - started
            except OSError:
                time.sleep(0.05)
        raise TimeoutError("no page within the time limit")
    finally:
        server.terminate()
        server.wait(timeout=30)


def run(repeats: int = 3, tiny_dir: str | None = None) -> list[float]:
    env = {k: v for k, v in os.environ.items()}
    env.setdefault("HF_HUB_OFFLINE", "1")
    env["GRADIO_ANALYTICS_ENABLED"] = "False"
    if tiny_dir:
        env["GALLERY_TINY_MODELS"] = tiny_dir
    return [time_to_first_page(env) for _ in range(repeats)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tiny", default=None, help="serve tiny checkpoints from this folder")
    args = parser.parse_args()
    times = run(args.repeats, args.tiny)
    print(f"first page served after start: median {statistics.median(times):.2f} s "
          f"(runs: {', '.join(f'{t:.2f}' for t in times)})")


if __name__ == "__main__":
    main()
