"""Pre-training tab benchmark: each panel's default run through the tab's own handler, from an
empty cache, on this machine's CPU (or GPU). Prints per panel: training steps per second, time
to the finished default (training + checkpoints + samples + streaming), the loss at start and
end, the replay time of the same click from the cache, and the process's peak memory.

    flock /tmp/gallery-bench.lock python -m benchmarks.bench_pretrain [--only text,image,scale]

Each panel runs in its own process, so its peak memory is its own. Row columns: raw s = seconds
spent in optimiser steps (the loop alone), app s = the whole click as a visitor waits for it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import Row, print_rows
from gallery.settings import OPENMP

ROOT = Path(__file__).resolve().parent.parent
DEMO = "pretrain"
PANELS = ["text", "image", "scale"]

_CHILD = r"""
import json, os, time
import torch
torch.set_num_threads(int(os.environ.get("BENCH_THREADS", min(2, torch.get_num_threads()))))
from benchmarks.common import peak_rss_mb
from demos.pretrain import runs as RUNS, training
training.text_corpus(); training.digits()  # data loaded before the clock starts, as after the first click
panel = {panel!r}
handlers = {{
    "text": lambda: RUNS.on_train_text(RUNS.DEFAULT_TEXT_SIZE, RUNS.TEXT_STEPS[0], 0, RUNS.DEFAULT_PROMPT),
    "image": lambda: RUNS.on_train_image(RUNS.IMAGE_STEPS[0], 0, "bottom half"),
    "scale": lambda: RUNS.on_train_scale(RUNS.SCALE_STEPS[0], 0),
}}
base_mb = peak_rss_mb()
last = None
def click():
    global last
    started = time.perf_counter()
    frames = 0
    for last in handlers[panel]():
        frames += 1
    return time.perf_counter() - started, frames
first_s, frames = click()
shown = last[1] if panel == "text" else ""  # the samples as the page shows them, one line per checkpoint
replay_s, _ = click()
runs = RUNS.STORE.in_memory()
steps = sum(r.last_step for r in runs)
train_s = sum(r.seconds for r in runs)
out = dict(
    first_s=first_s, replay_s=replay_s, frames=frames, steps=steps, train_s=train_s,
    start_loss=runs[0].points[0].loss, end_loss=runs[-1].points[-1].loss,
    held_start=runs[-1].checkpoints[0].held_out_loss, held_end=runs[-1].checkpoints[-1].held_out_loss,
    params=[r.parameters for r in runs], peak_mb=peak_rss_mb(), base_mb=base_mb, device=runs[0].device,
    cut=[r.stopped for r in runs if r.stopped],
    # "time": the run hit the wall-clock ceiling (a loaded machine)
    samples=[line for line in str(shown).splitlines() if line.startswith("- **step")],
)
print("@@RESULT@@" + json.dumps(out))
"""


def run_panel(panel: str) -> dict:
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "HF_HUB_OFFLINE": "1",
        "GALLERY_PRETRAIN_CACHE": tempfile.mkdtemp(prefix="bench-pretrain-"),  # an empty cache
        # as the app runs (gallery/settings.py); the child imports torch first, so set here
        **{name: os.environ.get(name, value) for name, value in OPENMP.items()},
    }
    env.pop("GALLERY_TINY_MODELS", None)  # the real defaults, not the tests' small ones
    result = subprocess.run(
        [sys.executable, "-c", _CHILD.format(panel=panel)], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=3600,
    )
    for line in result.stdout.splitlines():
        if line.startswith("@@RESULT@@"):
            return json.loads(line[len("@@RESULT@@") :])
    raise RuntimeError(f"{panel} failed:\n{result.stderr[-3000:]}")


def run(repeats: int = 1, panels: list[str] = PANELS) -> list[Row]:
    rows = []
    for panel in panels:
        r = run_panel(panel)
        loss = f"loss {r['start_loss']:.2f}→{r['end_loss']:.2f}, held-out {r['held_start']:.3f}→{r['held_end']:.3f}"
        rows.append(
            Row(
                DEMO,
                f"{panel} default: {r['steps']} steps, {r['device']}",
                raw_s=r["train_s"],
                app_s=r["first_s"],
                peak_mb=r["peak_mb"],
                note=(
                    ("CUT BY THE TIME CEILING (machine too loaded); " if r["cut"] else "")
                    + f"{r['steps'] / r['train_s']:.1f} steps/s; replay {r['replay_s']:.2f} s; {loss}; "
                    f"+{r['peak_mb'] - r['base_mb']:.0f} MB over the imports; "
                    f"params {','.join(f'{p:,}' for p in r['params'])}"
                ),
            )
        )
        print_rows(rows[-1:])
        for line in r.get("samples", []):  # what the attendee reads at each checkpoint
            print(f"    {line[:160]}")
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default=",".join(PANELS))
    args = parser.parse_args()
    print_rows(run(panels=[p for p in args.only.split(",") if p in PANELS]))
