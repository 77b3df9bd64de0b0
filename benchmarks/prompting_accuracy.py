"""The prompting tab's accuracy table: strategies × problem sets × bundled models, scored by the
tab's own scoring loop (`demos.prompting.run.run_score`: its prompts, its answer reading), offline.

    python -m benchmarks.prompting_accuracy                      # every set, both bundled models, 12 questions
    python -m benchmarks.prompting_accuracy -n 30 --sets opposites capitals
    python -m benchmarks.prompting_accuracy --models gemma --strategies zero-shot few-shot

Greedy decoding (temperature 0), seed 0, k = 3 worked examples, the set's own max-new-tokens (as
the tab sets it when the set is picked); the first n questions of each set. Each cell is
correct/n; the last columns are the seconds the whole (set, model) run took and the few-shot gain
over zero-shot in points. Prints a markdown table (paste it into the README).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

# Stay off the Hub and offer only the bundled models: an empty tiny-models folder makes the
# catalogue's Hub entries unavailable while the bundled ones stay listed.
_OWN_ROOT = "GALLERY_TINY_MODELS" not in os.environ
ROOT = os.environ.setdefault("GALLERY_TINY_MODELS", tempfile.mkdtemp(prefix="bench-accuracy-"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GALLERY_TIME_LIMIT_S", "86400")  # the tab's per-request limit would cut long runs

MODEL_KEYS = {"smollm2": "SmolLM2-135M-Instruct", "gemma": "Gemma-3-270M"}


def score(model, set_name: str, n: int, strategies: list[str], seed: int, threads: int) -> tuple[dict, float]:
    """-> ({strategy: correct count}, seconds) for the first n questions of one set."""
    from demos.prompting import prompts as PP, run as PR

    problem_set = PP.get_problem_set(set_name)
    settings = PP.RunSettings(temperature=0.0, seed=seed, max_new_tokens=problem_set.max_new_tokens)
    started = time.perf_counter()
    records: list[dict] = []
    for _, records, _, _ in PR.run_score(model.label, problem_set.name, n, strategies, settings):
        pass
    seconds = time.perf_counter() - started
    correct = {s: sum(1 for r in records if r["strategy"] == s and r["correct"]) for s in strategies}
    return correct, seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--questions", type=int, default=12, help="questions per set (from the top)")
    parser.add_argument("--sets", nargs="*", help="set keys (default: all, in the tab's order)")
    parser.add_argument("--models", nargs="*", choices=list(MODEL_KEYS), help="default: both bundled models")
    parser.add_argument("--strategies", nargs="*", help="default: the four single-answer strategies")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    options = parser.parse_args(argv)

    import torch

    from demos.prompting import compare as PC, prompts as PP
    from gallery import catalog, models

    torch.set_num_threads(options.threads)
    sets = [PP.get_problem_set(key) for key in (options.sets or PP.PROBLEM_SET_FILES)]
    chosen = options.models or list(MODEL_KEYS)
    bundled = {"smollm2": catalog.EMBEDDED_LM, "gemma": catalog.EMBEDDED_GEMMA}
    strategies = PC.clean_strategies(options.strategies or list(PP.BASIC_STRATEGIES))
    header = ["model", "set", "n", *strategies, "seconds", "few-shot gain"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    print(f"# seed {options.seed}, greedy, k = {PP.DEFAULT_K}, first {options.questions} questions of each set, "
          f"{options.threads} torch threads, load {os.getloadavg()[0]:.1f}", flush=True)
    for key in chosen:
        model = bundled[key]
        started = time.perf_counter()
        models.load_causal_lm(model)  # loading (and a first conversion) is not part of the timings
        print(f"# {model.label}: loaded in {time.perf_counter() - started:.1f} s", flush=True)
        for problem_set in sets:
            n = min(options.questions, len(problem_set.items))
            correct, seconds = score(model, problem_set.name, n, strategies, options.seed, options.threads)
            cells = [f"{correct[s]}/{n}" for s in strategies]
            gain = ""
            if PP.ZERO_SHOT in correct and PP.FEW_SHOT in correct:
                gain = f"{100 * (correct[PP.FEW_SHOT] - correct[PP.ZERO_SHOT]) / n:+.0f}"
            row = [MODEL_KEYS[key], problem_set.name, str(n), *cells, f"{seconds:.0f}", gain]
            lines.append("| " + " | ".join(row) + " |")
            print(lines[-1], flush=True)
    print()
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    try:
        code = main()
    finally:
        if _OWN_ROOT:
            shutil.rmtree(ROOT, ignore_errors=True)
    sys.exit(code)
