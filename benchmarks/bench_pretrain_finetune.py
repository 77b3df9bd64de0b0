"""Benchmark of tab 6's panels after pre-training: each panel's default click through its own
handler, on this machine's CPU, from an empty cache, and the size of the effect it shows.

    flock /tmp/gallery-bench.lock python -m benchmarks.bench_pretrain_finetune [--quick]

Two processes, each from an empty run cache:
- "in order", as a visitor goes: the text tab's default (the parent), then fine-tuning on legal text
  (that parent cached), the secrets (the planted parent pre-trains inside the click), the habits
  (the planted parent cached by then; the control parent pre-trains inside the click); each
  clicked twice (the second click is the replay). Without --quick, also the habits at the other
  strengths (both parents cached) and fine-tuning at the largest budget (where the pre-trained
  model stops early).
- "habits from nothing": the habits panel clicked first, so it pre-trains both parents itself.
Prints one table (times and effects) and the effect details, ready for the README.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gallery.settings import OPENMP

ROOT = Path(__file__).resolve().parent.parent

_CHILD = r"""
import json, math, os, sys, time
import torch
torch.set_num_threads(int(os.environ.get("BENCH_THREADS", min(2, torch.get_num_threads()))))
import gradio as gr
from benchmarks.common import peak_rss_mb
from demos import pretrain as tab_package
from demos.pretrain import finetune as ft, finetune_panels as panels, runs as tab, training
from gallery.device import device
with gr.Blocks():
    tab_package.create_demo()  # lends the text panel's runs to the panels, as the app does
# On a shared machine a default run can pass the page's ceiling (it would stop there and keep what it
# learnt): here every run goes to its end, and the report flags the times past the ceiling.
CEILING_S = panels.TIME_CEILING_S
tab.TIME_CEILING_S = panels.TIME_CEILING_S = 3600.0
training.text_corpus(); ft.planted_corpus(); ft.legal_split()  # data ready before the clock starts
mode, quick = {mode!r}, {quick!r}
out = dict(mode=mode, load_start=os.getloadavg()[0], ceiling_s=CEILING_S)

def note(stage):  # what is measured so far, in case a later stage fails
    print(f"@@PARTIAL@@ {{stage}}: " + json.dumps(out)[:3000], file=sys.stderr, flush=True)

def click(handler, *args):
    started = time.perf_counter()
    frames, last = 0, None
    for last in handler(*args):
        frames += 1
    return time.perf_counter() - started, frames, last

def planted():
    return panels.PLANTED_STORE.get(training.config_key(panels.parent_config(), device()))

def control():
    return tab.STORE.get(training.config_key(panels.parent_config(), device()))

def transfer_answer(run_key, steps):  # the panel's cache key, as on_transfer makes it
    return panels.ANSWERS.get(("transfer", tab.STORE.get(run_key).key, panels.transfer_tuning(steps, []), device()))

def habits(strength):
    first, _, _ = click(panels.on_homogenize, panels.NO_GUESS, strength)
    replay, _, _ = click(panels.on_homogenize, panels.NO_GUESS, strength)
    a = panels.ANSWERS.get(("habit", planted().key, control().key, panels.strength_tuning(strength), device()))
    return dict(strength=strength, first_s=first, replay_s=replay, control_s=control().seconds,
                habits=[(h.model, h.planted, h.alternative) for h in a.habits],
                gains=[(c.model, c.loss_before, c.loss_after) for c in a.children])

if mode == "in order":
    text_s, _, last = click(tab.on_train_text, tab.DEFAULT_TEXT_SIZE, tab.TEXT_STEPS[0], 0, tab.DEFAULT_PROMPT)
    run_key = last[-1]
    out["text_s"] = text_s
    note("text")
    first, frames, _ = click(panels.on_transfer, panels.NO_GUESS, panels.TRANSFER_STEPS[0], run_key)
    replay, _, _ = click(panels.on_transfer, panels.NO_GUESS, panels.TRANSFER_STEPS[0], run_key)
    tracks, seconds = transfer_answer(run_key, panels.TRANSFER_STEPS[0])
    out["transfer"] = dict(first_s=first, replay_s=replay, frames=frames, steps=panels.TRANSFER_STEPS[0],
                           curves={{n: t.curve for n, t in tracks.items()}},
                           stopped={{n: t.stopped_at for n, t in tracks.items()}},
                           samples={{n: t.samples for n, t in tracks.items()}})
    out["load_transfer"] = os.getloadavg()[0]
    note("transfer")
    first, _, _ = click(panels.on_memorize, panels.NO_GUESS, "256")
    replay, _, _ = click(panels.on_memorize, panels.NO_GUESS, "256")
    rows = panels.ANSWERS.get(("memory", planted().key, device()))
    out["memory"] = dict(first_s=first, replay_s=replay, parent_s=planted().seconds, parent_steps=planted().last_step,
                         rows=[(r.copies, r.log10_probability, r.verbatim, r.written) for r in rows])
    out["load_memory"] = os.getloadavg()[0]
    note("memory")
    out["habits"] = [habits(panels.DEFAULT_STRENGTH)]
    if not quick:
        out["habits"] += [habits(s) for s in panels.STRENGTHS if s != panels.DEFAULT_STRENGTH]
        largest = panels.TRANSFER_STEPS[1]
        first, _, _ = click(panels.on_transfer, panels.NO_GUESS, largest, run_key)
        tracks, _ = transfer_answer(run_key, largest)
        out["transfer_largest"] = dict(first_s=first, steps=largest, curves={{n: t.curve for n, t in tracks.items()}},
                                       stopped={{n: t.stopped_at for n, t in tracks.items()}})
else:
    out["habits"] = [habits(panels.DEFAULT_STRENGTH)]
out["peak_mb"] = peak_rss_mb()
out["load_end"] = os.getloadavg()[0]
print("@@RESULT@@" + json.dumps(out))
"""


def run_child(mode: str, quick: bool) -> dict:
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "HF_HUB_OFFLINE": "1",
        "GALLERY_PRETRAIN_CACHE": tempfile.mkdtemp(prefix="bench-pretrain-finetune-"),  # an empty cache
        # as the app runs (gallery/settings.py), set before torch loads
        **{name: os.environ.get(name, value) for name, value in OPENMP.items()},
    }
    env.pop("GALLERY_TINY_MODELS", None)  # the real defaults, not the tests' small ones
    result = subprocess.run([sys.executable, "-c", _CHILD.format(mode=mode, quick=quick)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=7200)
    for line in result.stdout.splitlines():
        if line.startswith("@@RESULT@@"):
            return json.loads(line[len("@@RESULT@@"):])
    raise RuntimeError(f"{mode} failed:\n{result.stderr[-3000:]}")


def _at(curve, step):
    return next((loss for s, loss in curve if s == step), float("nan"))


def report(order: dict, cold: dict) -> str:
    from demos.pretrain import finetune as ft

    t = order["transfer"]
    pre, fresh = t["curves"][ft.PRETRAINED], t["curves"][ft.FRESH]
    m = order["memory"]
    h = order["habits"][0]
    habit = {name: (p, q) for name, p, q in h["habits"]}
    gains = {name: before - after for name, before, after in h["gains"]}
    secrets = ", ".join(f"k={k}: 10^{lp:.1f} ({v}/9)" for k, lp, v, _ in m["rows"])
    lines = [
        "| Panel (default) | Time to the answer | Replay | Effect shown |",
        "|---|---|---|---|",
        f"| Text tab's default (fine-tuning's parent: 350 steps) | {order['text_s']:.0f} s | — | "
        "(the tab's own benchmark: bench_pretrain) |",
        f"| Fine-tune on legal text, {t['steps']} steps × 2 models (parent cached) | **{t['first_s']:.0f} s** | "
        f"{t['replay_s']:.2f} s | "
        f"held-out loss pre-trained / fresh: step 0 {pre[0][1]:.2f} / {fresh[0][1]:.2f}, step 25 {_at(pre, 25):.2f} / "
        f"{_at(fresh, 25):.2f}, "
        f"step {pre[-1][0]} {pre[-1][1]:.2f} / {fresh[-1][1]:.2f} |",
        f"| Memorized secrets (pre-trains the planted parent: {m['parent_steps']} steps, {m['parent_s']:.0f} s) | "
        f"**{m['first_s']:.0f} s** | "
        f"{m['replay_s']:.2f} s | log10 P(code) and characters written back: {secrets} |",
        f"| Inherited habits, {h['strength']} (planted parent cached; trains the control parent, "
        f"{h['control_s']:.0f} s) | "
        f"**{h['first_s']:.0f} s** | "
        f"{h['replay_s']:.2f} s | "
        + "; ".join(f"{name} {p:.4f} / {q:.5f}" for name, (p, q) in habit.items())
        + " (P(“she”) / P(“he”)); gain on own text: " + ", ".join(f"{n} {g:.2f}" for n, g in gains.items()) + " |",
    ]
    ch = cold["habits"][0]
    lines.append(f"| Inherited habits from nothing (pre-trains both parents) | **{ch['first_s']:.0f} s** | "
                 f"{ch['replay_s']:.2f} s | same answer |")
    out = ["\n".join(lines), ""]
    for more in order["habits"][1:]:
        out.append(f"- habits, {more['strength']}: {more['first_s']:.0f} s; " + "; ".join(
            f"{name} {p:.4f} / {q:.5f}" for name, p, q in more["habits"][2:]) + "; gains " + ", ".join(
            f"{n} {b - a:.2f}" for n, b, a in more["gains"]))
    if "transfer_largest" in order:
        big = order["transfer_largest"]
        stops = ", ".join(f"{n}: {'stopped at ' + str(s) if s is not None else 'ran all ' + str(big['steps'])}"
                          for n, s in big["stopped"].items())
        bests = ", ".join(f"{n} best {min(loss for _, loss in c):.2f}" for n, c in big["curves"].items())
        out.append(f"- fine-tuning at the largest budget ({big['steps']} steps): {big['first_s']:.0f} s; {stops}; "
                   f"{bests}")
    for name, samples in t["samples"].items():
        for step, loss, text in samples:
            out.append(f"    {name} step {step} ({loss:.2f}): {text[:80]!r}")
    for k, lp, v, written in m["rows"]:
        whose = ft.whose_code(written)
        leak = f" (the k={whose.copies} line's code)" if whose and whose.copies != k else ""
        out.append(f"    k={k}: greedy {written!r}{leak}")
    runs = (("the text parent", order["text_s"]), ("the planted parent", m["parent_s"]),
            ("the control parent", h["control_s"]),
            ("fine-tuning on legal text", t["first_s"]))
    past = [name for name, seconds in runs if seconds > order["ceiling_s"]]
    if past:  # each training run has the page's ceiling; on the page these would stop there and keep what they learnt
        out.append(f"PAST THE PAGE'S {order['ceiling_s']:.0f} s CEILING PER RUN: {', '.join(past)}")
    out.append(f"load average (1 min) at start / after transfer / after secrets / end: {order['load_start']:.1f} / "
               f"{order['load_transfer']:.1f} / {order['load_memory']:.1f} / {order['load_end']:.1f}; "
               f"habits from nothing: {cold['load_start']:.1f} → {cold['load_end']:.1f}; peak memory "
               f"{order['peak_mb']:.0f} MB")
    return "\n".join(out)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="the defaults only")
    args = parser.parse_args()
    started = time.strftime("%Y-%m-%d %H:%M")
    order = run_child("in order", args.quick)
    print(json.dumps(order)[:2000], file=sys.stderr)
    cold = run_child("habits from nothing", args.quick)
    print(f"bench_pretrain_finetune, started {started}, {os.cpu_count()} CPUs")
    print(report(order, cold))
