"""Time from `python app.py` to the first page served, in a fresh process (median of a few starts),
and the first paint a visitor sees: from opening the page in Chromium (1280×800) until its tabs
and the first tab's inputs are drawn, while the page's opening answers are still being computed.

    python -m benchmarks.startup [--repeats 3] [--tiny DIR]

Models load lazily on a tab's first use, so the first figure is imports + building the page +
serving; the second is what the browser needs (the page's scripts, its config, drawing).
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


def first_paint_s(url: str, loads: int) -> list[float]:
    """Seconds from `goto` until the tabs and the first tab's prompt box are visible, per load."""
    from playwright.sync_api import sync_playwright

    times = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"])
        for _ in range(loads):
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            page = context.new_page()
            started = time.perf_counter()
            page.goto(url)
            page.locator("#next-word-prompt textarea").wait_for(state="visible", timeout=60_000)
            times.append(time.perf_counter() - started)
            context.close()
        browser.close()
    return times


def time_to_first_page(env: dict[str, str], timeout_s: float = 120.0, paint_loads: int = 0):
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
                        served = time.perf_counter() - started
                        if not paint_loads:
                            return served
                        return served, first_paint_s(f"http://127.0.0.1:{port}/", paint_loads)
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


def paints(tiny_dir: str | None = None, loads: int = 3) -> list[float]:
    env = {k: v for k, v in os.environ.items()}
    env.setdefault("HF_HUB_OFFLINE", "1")
    env["GRADIO_ANALYTICS_ENABLED"] = "False"
    if tiny_dir:
        env["GALLERY_TINY_MODELS"] = tiny_dir
    return time_to_first_page(env, paint_loads=loads)[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tiny", default=None, help="serve tiny checkpoints from this folder")
    args = parser.parse_args()
    times = run(args.repeats, args.tiny)
    print(f"first page served after start: median {statistics.median(times):.2f} s "
          f"(runs: {', '.join(f'{t:.2f}' for t in times)})")
    painted = paints(args.tiny)  # the first load also starts the opening answers; later loads wait for them too
    print(f"first paint in Chromium at 1280x800 (tabs and the first inputs drawn): median "
          f"{statistics.median(painted):.2f} s (loads: {', '.join(f'{t:.2f}' for t in painted)})")


if __name__ == "__main__":
    main()
