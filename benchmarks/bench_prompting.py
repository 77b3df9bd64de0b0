"""Prompting tab benchmark with the bundled SmolLM2-135M-Instruct (real weights) on this machine.

    python -m benchmarks.bench_prompting              # timing rows
    python -m benchmarks.bench_prompting --accuracy   # accuracy per strategy on one built-in set

Timing rows: the four basic strategies on one question, one left-padded batched `generate` call
vs four calls one after the other; our `compare_strategies` (templates, worker thread, per-row
streamer, decoding, answer reading) vs the same batched raw call; and the launched app's API.
Greedy decoding; each row ends at its end token or after NEW_TOKENS, as in the tab, and both
sides produce the same tokens (checked), so they do equal work. Every timed call runs in a worker
thread, as gradio runs handlers and as our function runs `generate`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time

# The gallery reads GALLERY_TINY_MODELS once, at import. No tiny checkpoint is needed (the bundled
# LM is offered in that mode too); the setting only keeps everything off the Hub.
_OWN_ROOT = "GALLERY_TINY_MODELS" not in os.environ
ROOT = os.environ.setdefault("GALLERY_TINY_MODELS", tempfile.mkdtemp(prefix="bench-prompting-"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmarks.common import paired, Row, launch_app, print_rows  # noqa: E402

DEMO = "prompting"
SET = "arithmetic"
NEW_TOKENS = 64  # per row; the tab's CPU default is 128 (halved here to keep the run short)
SC_SAMPLES = 5  # the tab's default n


def in_worker_thread(fn):
    """fn, wrapped to run in a fresh thread. On this shared CPU, `generate` in the main thread was
    measured several times slower than the same call in a worker thread, so both sides of every
    comparison run the way the app runs them."""

    def call():
        result = []
        worker = threading.Thread(target=lambda: result.append(fn()))
        worker.start()
        worker.join()
        return result[0] if result else None

    return call


def run(repeats: int = 5, threads: int = 2) -> list[Row]:
    import torch

    torch.set_num_threads(threads)
    try:
        return _run(max(1, repeats // 2))  # each repeat is several generations; half is plenty
    finally:
        if _OWN_ROOT:
            shutil.rmtree(ROOT, ignore_errors=True)


def _run(repeats: int) -> list[Row]:
    import torch

    from demos.prompting import compare as PC, prompts as PP, run as PR
    from gallery import catalog
    from gallery.device import device

    label = catalog.EMBEDDED_LM.label
    lm, tok = PR.load_model(label)
    problem_set = PP.get_problem_set(SET)
    problem = problem_set.items[0]
    strategies = list(PP.BASIC_STRATEGIES)
    settings = PP.RunSettings(max_new_tokens=NEW_TOKENS)
    plan = PP.plan_rows(tok, problem.question, strategies, problem_set, settings)
    prompts = [p.prompt for p in plan]
    lengths = [len(tok(p, add_special_tokens=False)["input_ids"]) for p in prompts]
    eos = PR.eos_token_ids(lm, tok)
    # Greedy, each row ending at its end token or after NEW_TOKENS: the way the tab runs.
    options = dict(max_new_tokens=NEW_TOKENS, do_sample=False, pad_token_id=tok.pad_token_id,
                   eos_token_id=sorted(eos))

    def new_tokens(row: list[int]) -> list[int]:  # up to the end token
        cut = next((i for i, t in enumerate(row) if t in eos), len(row))
        return row[:cut]

    def sequential():  # four calls, one prompt each, no padding
        outs = []
        for prompt in prompts:
            ids = tok(prompt, return_tensors="pt", add_special_tokens=False).to(device())
            with torch.inference_mode():
                outs.append(new_tokens(lm.generate(**ids, **options)[0, ids["input_ids"].shape[1] :].tolist()))
        return outs

    def batched():  # one call, left-padded: it runs until the longest row ends
        ids = tok(prompts, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False)
        ids = ids.to(device())
        with torch.inference_mode():
            out = lm.generate(**ids, **options)
        return [new_tokens(row) for row in out[:, ids["input_ids"].shape[1] :].tolist()]

    sequential, batched = in_worker_thread(sequential), in_worker_thread(batched)
    reference = sequential()
    same = reference == batched()
    made = [len(r) for r in reference]
    seq_s, bat_s = paired(sequential, batched, repeats)

    # Self-consistency: n rows of one prompt. Fixed length (no early end) so both sides do the
    # same work whatever the samples say.
    sc_prompt = PP.render_prompt(tok, PP.build_messages(PP.SELF_CONSISTENCY, problem.question, problem_set.exemplars,
                                                      settings.k))
    fixed = dict(max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, do_sample=False,
                 pad_token_id=tok.pad_token_id)

    @in_worker_thread
    def sc_sequential():
        ids = tok(sc_prompt, return_tensors="pt", add_special_tokens=False).to(device())
        with torch.inference_mode():
            return [lm.generate(**ids, **fixed) for _ in range(SC_SAMPLES)]

    @in_worker_thread
    def sc_batched():
        ids = tok([sc_prompt] * SC_SAMPLES, return_tensors="pt", add_special_tokens=False).to(device())
        with torch.inference_mode():
            return lm.generate(**ids, **fixed)

    sc_seq_s, sc_bat_s = paired(sc_sequential, sc_batched, repeats)

    @in_worker_thread
    def ours():  # the tab's own function on the same prompts: the same greedy tokens
        return list(PR.compare_strategies(lm, tok, problem.question, problem.answer, problem.kind, strategies,
                                          problem_set, settings, stop_at_answer=False))[-1]

    ours_same = [r.tokens for r in ours()] == [len(r) for r in batched()]
    raw_s, app_s = paired(batched, ours, repeats)

    load = os.getloadavg()[0]  # the CPU is shared: say how busy it was
    where = f"bundled SmolLM2-135M (real weights), {device()}, {torch.get_num_threads()} threads, load {load:.1f}"
    rows = [
        Row(DEMO, f"4 strategies x {NEW_TOKENS} tok: sequential vs batched", seq_s, bat_s,
            note=f"ratio = batched/sequential; prompt/new tokens {lengths}/{made}; "
            f"same greedy tokens: {same}; {where}"),
        Row(DEMO, f"self-consistency {SC_SAMPLES} x {NEW_TOKENS} tok: seq vs batched", sc_seq_s, sc_bat_s,
            note=f"one {len(tok(sc_prompt)['input_ids'])}-token prompt; fixed length; ratio = batched/sequential"),
        Row(DEMO, "4 strategies: raw batched generate vs ours", raw_s, app_s,
            note=f"ours = compare_strategies: templates, thread, per-row streamer, decode, answers; "
            f"same token counts: {ours_same}"),
    ]

    try:
        blocks, client = launch_app()
    except Exception as error:  # keep the rows measured so far
        rows.append(Row(DEMO, "4 strategies: app API", float("nan"), float("nan"),
                        note=f"the app did not start: {type(error).__name__}: {error}"))
        return rows
    try:
        args = (label, problem.question, problem.answer, strategies, PC.NO_GUESS, settings.k, 1, 0.0, 0.7, 0,
                NEW_TOKENS, problem_set.name)

        def api():
            return client.predict(*args, api_name="/prompting_compare")

        api_raw_s, api_s = paired(batched, api, max(1, repeats // 2))
        rows.append(Row(DEMO, "4 strategies: raw batched generate vs app API", api_raw_s, api_s,
                        note="gradio_client -> queue -> streamed updates; rows end at the end token"))
    finally:
        client.close()
        blocks.close()
    return rows


def score_speed(questions: int = 12, threads: int = 2, baseline: bool = True, only: str | None = None) -> list[Row]:
    """Scoring the tab's default set (the first `questions` items x the four single-answer
    strategies, greedy, the set's own max new tokens) with each bundled model: replies that run to
    their end token vs replies stopped at the answer (what the tab does), side by side."""
    os.environ.setdefault("GALLERY_TIME_LIMIT_S", "86400")
    import torch

    from demos.prompting import prompts as PP, run as PR
    from gallery import catalog

    torch.set_num_threads(threads)
    problem_set = next(iter(PP.problem_sets().values()))
    strategies = list(PP.BASIC_STRATEGIES)
    settings = PP.RunSettings(max_new_tokens=problem_set.max_new_tokens)
    rows = []
    for model in catalog.EMBEDDED_MODELS:
        if only and only.lower() not in model.label.lower():
            continue
        lm, tok, plain = PR.load_model(model.label)

        def score(stop_at_answer: bool, count: int = questions):
            @in_worker_thread
            def run():
                made, right = 0, 0
                for problem in problem_set.items[:count]:
                    final = list(PR.compare_strategies(lm, tok, problem.question, problem.answer, problem.kind,
                                                      strategies, problem_set, settings, plain=plain,
                                                      stop_at_answer=stop_at_answer))[-1]
                    made += sum(r.tokens for r in final)
                    right += sum(1 for r in final if r.correct)
                return made, right
            return run

        score(True, 1)()  # warm-up (first-call allocations), then one timed run of each, alternately
        wall, cpu, counts = {}, {}, {}
        wall["full"] = cpu["full"] = float("nan")
        counts["full"] = (0, 0)
        for key, stop_at_answer in (("full", False), ("stop", True)) if baseline else (("stop", True),):
            wall_start, cpu_start = time.perf_counter(), time.process_time()
            counts[key] = score(stop_at_answer)()
            wall[key], cpu[key] = time.perf_counter() - wall_start, time.process_time() - cpu_start
        rows.append(Row(DEMO, f"score {questions} q x 4 strategies, {model.label.split(' (')[0]}: to end token "
                        "vs stopped at the answer", wall["full"], wall["stop"],
                        note=f"{problem_set.name}; CPU s {cpu['full']:.0f} vs {cpu['stop']:.0f}; new tokens "
                        f"{counts['full'][0]} vs {counts['stop'][0]}; correct {counts['full'][1]} vs "
                        f"{counts['stop'][1]} of {questions * 4}; {'plain Q/A' if plain else 'chat template'}; "
                        f"{threads} threads, load {os.getloadavg()[0]:.1f}"))
        print(rows[-1], flush=True)
    return rows


def accuracy(set_name: str = SET, questions: int = 20, samples: int = 5, max_new_tokens: int = 128,
             threads: int = 2) -> None:
    """The bundled LM's accuracy per strategy on the first `questions` items of a built-in set,
    through the tab's own scoring loop (greedy; self-consistency at temperature 0.7, seed 0)."""
    # The tab stops a scoring run after the gallery's time limit per request; this run may be longer.
    os.environ.setdefault("GALLERY_TIME_LIMIT_S", "86400")
    import torch

    from demos.prompting import answers as PA, prompts as PP, run as PR
    from gallery import catalog

    # Results do not depend on the thread count; on a CPU shared with other jobs 1 thread can be
    # faster than 2 (no threads spinning while they wait for each other).
    torch.set_num_threads(threads)
    problem_set = PP.get_problem_set(set_name)
    settings = PP.RunSettings(samples=samples, max_new_tokens=max_new_tokens)
    strategies = list(PP.STRATEGIES)
    started = time.perf_counter()
    records: list[dict] = []
    for done, records, _, question_done in PR.run_score(catalog.EMBEDDED_LM.label, problem_set.name, questions,
                                                       strategies, settings):
        if question_done:
            print(f"  {done}/{questions} questions, {time.perf_counter() - started:.0f} s", flush=True)
    table = PA.accuracy_frame(records, strategies)
    print(f"\nSmolLM2-135M-Instruct (bundled), {problem_set.name}: first {questions} of "
          f"{len(problem_set.items)} questions, k={settings.k}, n={samples}, max_new_tokens={max_new_tokens}, "
          f"{time.perf_counter() - started:.0f} s with {threads} thread(s), load {os.getloadavg()[0]:.1f}")
    print(table.to_string(index=False, formatters={"accuracy": "{:.0%}".format}))
    print()
    print(PA.question_frame(records, strategies).drop(columns=["question"]).to_string(index=False))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accuracy", action="store_true", help="score the bundled LM on a built-in set")
    parser.add_argument("--score-speed", action="store_true",
                        help="time scoring the default set (12 questions x 4 strategies) with each bundled model")
    parser.add_argument("--set", default=SET, help="arithmetic | dates | letters")
    parser.add_argument("--questions", type=int, default=20)
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--no-baseline", action="store_true", help="--score-speed: time only the tab's way")
    parser.add_argument("--model", help="--score-speed: only the bundled model whose name contains this")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (1 can be faster on a busy CPU)")
    parser.add_argument("--repeats", type=int, default=5)
    options = parser.parse_args()
    try:
        if options.score_speed:
            print_rows(score_speed(threads=options.threads, baseline=not options.no_baseline, only=options.model))
        elif options.accuracy:
            accuracy(options.set, options.questions, options.samples, threads=options.threads)
        else:
            print_rows(run(options.repeats, options.threads))
    finally:
        if _OWN_ROOT:
            shutil.rmtree(ROOT, ignore_errors=True)
    sys.exit(0)
