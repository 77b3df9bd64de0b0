"""The text engine on CPU, side by side in one run, on the bundled SmolLM2-135M-Instruct GGUF:

1. generation (greedy, NEW_TOKENS tokens, 2 threads): raw llama.cpp (`Llama.generate`, the peer)
   vs ours (the next-word tab's `generate_tokens` on the llama.cpp engine, with the per-step
   distributions for the history) vs transformers fp32 (`generate_tokens` on the dequantised
   model, what the tab used before): tok/s and ours / llama.cpp;
2. fidelity on CLOZE (>= 20 prompts): top-1 agreement and mean KL(transformers fp32 || llama.cpp)
   of the next-token distribution;
3. set scoring: the prompting tab's four basic strategies on SET_QUESTIONS questions, llama.cpp
   engine vs transformers, and the speed-up.

    python -m benchmarks.bench_text_engine [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("GALLERY_TINY_MODELS", tempfile.mkdtemp(prefix="bench-text-engine-"))  # off the Hub
os.environ.setdefault("HF_HUB_OFFLINE", "1")
from gallery import settings as _app_settings  # noqa: E402,F401  (the app's OpenMP settings, set before torch loads)

NEW_TOKENS = 60
PROMPT = "Once upon a time, in a small village by the sea, there lived"
CLOZE = [
    "The capital of France is", "The capital of Japan is", "The opposite of hot is",
    "The opposite of up is", "One, two, three, four,", "Monday, Tuesday,", "January, February,",
    "The cat sat on the", "The sun rises in the", "Water freezes at zero degrees",
    "A week has seven", "The largest planet in our solar system is", "Bread is made from",
    "The color of the sky is", "Cows give us", "The first letter of the alphabet is",
    "Ice cream is cold and", "Birds can fly because they have", "To open a door you need a",
    "The Eiffel Tower is in", "Two plus two equals", "Shakespeare wrote Romeo and",
    "The chemical symbol for water is", "Apples grow on",
]
SET_NAME = "Arithmetic word problems"
SET_QUESTIONS = 12  # what the tab scores by default
SET_NEW_TOKENS = 48


def _tok_s(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        started = time.perf_counter()
        n = fn()
        out.append(n / (time.perf_counter() - started))
    return out


def run(repeats: int = 3, questions: int = SET_QUESTIONS) -> dict:
    import torch
    from llama_cpp import Llama

    from demos.next_word import distribution as NWD, extend as NWE
    from demos.prompting import prompts as PP, run as PR
    from gallery import catalog, engines, models, text_engine

    torch.set_num_threads(2)
    entry = catalog.EMBEDDED_LM
    path = catalog.gguf_file(entry)
    lm, tokenizer = models.load_causal_lm(entry)
    engine = engines.load_text_engine(entry)
    assert engine is not None, engines.text_engine_problem(entry)
    raw = Llama(model_path=str(path), n_ctx=2048, n_threads=text_engine.threads(),
                n_threads_batch=text_engine.batch_threads(), verbose=False)
    ids = tokenizer(PROMPT)["input_ids"]
    greedy = NWD.Sampling(temperature=0.0)

    def raw_llama() -> int:
        n = 0
        for _ in raw.generate(ids, top_k=1, temp=0.0, reset=True):
            n += 1
            if n >= NEW_TOKENS:
                break
        return n

    def ours() -> int:
        return len(NWE.generate_tokens(lm, tokenizer, PROMPT, greedy, NEW_TOKENS, 0, engine=engine).steps)

    def transformers_fp32() -> int:
        return len(NWE.generate_tokens(lm, tokenizer, PROMPT, greedy, NEW_TOKENS, 0).steps)

    raw_llama(), ours(), transformers_fp32()  # warm-up
    speeds: dict[str, list[float]] = {"llama.cpp (raw)": [], "ours (llama.cpp engine)": [], "transformers fp32": []}
    for _ in range(repeats):  # alternated, so that other load on the machine hits all alike
        speeds["llama.cpp (raw)"] += _tok_s(raw_llama, 1)
        speeds["ours (llama.cpp engine)"] += _tok_s(ours, 1)
        speeds["transformers fp32"] += _tok_s(transformers_fp32, 1)

    agree, kls = 0, []
    for prompt in CLOZE:
        prompt_ids = tokenizer(prompt)["input_ids"]
        with torch.inference_mode():
            reference = lm(input_ids=torch.tensor([prompt_ids])).logits[0, -1].float()
        mine = engine.logits(prompt_ids).float()
        agree += int(reference.argmax()) == int(mine.argmax())
        p, log_p, log_q = reference.softmax(-1), reference.log_softmax(-1), mine.log_softmax(-1)
        kls.append(float((p * (log_p - log_q)).sum()))

    sets = PP.problem_sets()
    problem_set = sets[SET_NAME] if SET_NAME in sets else next(iter(sets.values()))
    settings = PP.RunSettings(temperature=0.0, max_new_tokens=SET_NEW_TOKENS)

    def score(use_engine) -> float:
        started = time.perf_counter()
        for problem in problem_set.items[:questions]:
            for _ in PR.compare_strategies(lm, tokenizer, problem.question, problem.answer, problem.kind,
                                          list(PP.BASIC_STRATEGIES), problem_set, settings, engine=use_engine):
                pass
        return time.perf_counter() - started

    score(engine)  # warm-up (the transformers side warmed up above)
    set_times = {"llama.cpp": score(engine), "transformers": score(None)}
    raw.close()
    return dict(speeds=speeds, agree=agree, cloze=len(CLOZE), kl=statistics.mean(kls), kl_max=max(kls),
                set_times=set_times, set_name=problem_set.name, engine=engine.name, questions=questions,
                threads=text_engine.threads())


def report(r: dict) -> str:
    med = {k: statistics.median(v) for k, v in r["speeds"].items()}
    peer = med["llama.cpp (raw)"]
    lines = [f"Bundled SmolLM2-135M-Instruct, greedy, {NEW_TOKENS} new tokens, {os.cpu_count()} CPUs, "
             f"llama.cpp with {r['threads']} thread(s) on both sides "
             f"(median of {len(r['speeds']['llama.cpp (raw)'])}, alternated):"]
    for name, value in med.items():
        runs = ", ".join(f"{v:.1f}" for v in r["speeds"][name])
        lines.append(f"  {name:<26} {value:7.1f} tok/s  ({runs})   ÷ llama.cpp: {value / peer:.2f}")
    lines.append(f"Fidelity on {r['cloze']} cloze prompts ({r['engine']} vs transformers fp32, dequantised): "
                 f"top-1 agreement {r['agree']}/{r['cloze']}, mean KL {r['kl']:.4f} (max {r['kl_max']:.4f}) nats")
    slow, fast = r["set_times"]["transformers"], r["set_times"]["llama.cpp"]
    lines.append(f"Set scoring ({r['questions']} questions of '{r['set_name']}', 4 strategies, greedy, "
                 f"{SET_NEW_TOKENS} tokens): transformers {slow:.1f} s, llama.cpp {fast:.1f} s, "
                 f"speed-up {slow / fast:.1f}×")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--questions", type=int, default=SET_QUESTIONS, help="set-scoring questions")
    args = parser.parse_args()
    print(report(run(args.repeats, args.questions)))
