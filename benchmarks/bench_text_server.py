"""The text tabs' engine under a crowd, in one run: the in-process llama.cpp engine vs llama.cpp's
own server (`llama-server`, continuous batching) on loopback, both on the bundled
SmolLM2-135M-Instruct GGUF and the same flags (no flash attention, no repacked weights); the
server twice, with its own thread defaults and set as the in-process engine runs (SERVERS).

CLIENTS threads at once, each doing ROUNDS rounds of what a visitor of the next-word tab asks:
the next-token bars of a text (`next_token_distributions`), then a short generation
(`generate_tokens`, GEN_TOKENS tokens, sampled with a seed), through the tab's own functions.
Every engine runs PASSES times, alternated. Per engine: p50 / p95 seconds per request of each
kind, generated tokens per second (all clients together, over the passes' wall time), failures;
and each server ÷ the in-process engine.

    python -m benchmarks.bench_text_server [--clients 20] [--rounds 3] [--passes 2]

llama-server is built by `bash scripts/setup.sh dev` (tests/support/llama_server.py finds it).
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import tempfile
import threading
import time

os.environ.setdefault("GALLERY_TINY_MODELS", tempfile.mkdtemp(prefix="bench-text-server-"))  # off the Hub
os.environ.setdefault("HF_HUB_OFFLINE", "1")
from gallery import settings as _app_settings  # noqa: E402,F401  (the app's OpenMP settings, set before torch loads)

CLIENTS = 20
ROUNDS = 3
PASSES = 2
GEN_TOKENS = 16
PROMPTS = [
    "The capital of France is", "The cat sat on the", "Once upon a time, there was a little",
    "The opposite of hot is", "Monday, Tuesday,", "The chemical symbol for water is",
    "Birds can fly because they have", "To open a door you need a",
]


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def crowd(lm, tokenizer, engine, clients: int, rounds: int) -> dict:
    """`clients` threads at once, each `rounds` × (bars, then a short generation) -> timings."""
    from demos.next_word import distribution as NWD, extend as NWE

    bars: list[float] = []
    gens: list[float] = []
    tokens = [0]
    failures: list[str] = []
    lock = threading.Lock()
    go = threading.Event()

    def client(c: int) -> None:
        go.wait()
        for r in range(rounds):
            text = f"Note {c}.{r}: {PROMPTS[(c + r) % len(PROMPTS)]}"  # every request its own text
            for kind in ("bars", "generation"):
                started = time.perf_counter()
                try:
                    if kind == "bars":
                        NWD.next_token_distributions(lm, tokenizer, [text], [NWD.Sampling()], engine=engine)
                    else:
                        g = NWE.generate_tokens(lm, tokenizer, text, NWD.Sampling(temperature=1.0), GEN_TOKENS,
                                                seed=1000 * c + r, engine=engine)
                except Exception as error:  # noqa: BLE001 - counted, and the client goes on
                    with lock:
                        failures.append(f"{kind}: {type(error).__name__}: {error}")
                    continue
                took = time.perf_counter() - started
                with lock:
                    (bars if kind == "bars" else gens).append(took)
                    if kind == "generation":
                        tokens[0] += len(g.steps)

    threads = [threading.Thread(target=client, args=(c,), daemon=True) for c in range(clients)]
    for thread in threads:
        thread.start()
    started = time.perf_counter()
    go.set()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    return dict(bars=bars, gens=gens, tokens=tokens[0], failures=failures, wall=wall)


# The servers, by name: llama-server's own defaults for 2 cores (2 threads that poll for work),
# and as the in-process engine runs (one thread per token, both for a batch; waiting threads
# sleep after a short spin, as gallery/settings.py's OpenMP settings make them in-process: on 2
# shared cores a polling thread takes the core from one that has work).
SERVERS = {
    "llama-server -t 2": dict(threads=2),
    "llama-server -t 1 --poll 0": dict(threads=1, extra_args=("-tb", "2", "--poll", "0")),
}


def run(clients: int = CLIENTS, rounds: int = ROUNDS, passes: int = PASSES) -> dict:
    """Every engine `passes` times, alternated (in-process, each server, again...), so that load
    from other processes on a shared machine hits all alike; the passes' timings are pooled."""
    import contextlib

    import torch

    from gallery import catalog, engines, models, text_server
    from tests.support.llama_server import LlamaServer, missing_reason

    torch.set_num_threads(2)
    reason = missing_reason()
    if reason:
        raise SystemExit(reason)
    entry = catalog.EMBEDDED_LM
    lm, tokenizer = models.load_causal_lm(entry)
    load_before = os.getloadavg()
    text_server.start(url="")
    local = engines.load_text_engine(entry)
    assert local is not None and local.top_n is None, engines.text_engine_problem(entry)
    with contextlib.ExitStack() as servers:
        urls = {name: servers.enter_context(LlamaServer(entry, parallel=clients, ctx=512 * clients, **options)).url
                for name, options in SERVERS.items()}

        def engine(name: str):
            if name not in urls:
                text_server.start(url="")
                return local
            line = text_server.start(url=urls[name], model=catalog.bundled_file(entry).file_name)
            remote = engines.load_text_engine(entry)
            assert isinstance(remote, text_server.ServerEngine), line
            return remote

        names = ["in-process llama.cpp", *SERVERS]
        for name in names:
            crowd(lm, tokenizer, engine(name), 2, 1)  # warm-up: models loaded, caches touched
        results: dict[str, dict] = {}
        for _ in range(passes):
            for name in names:
                got = crowd(lm, tokenizer, engine(name), clients, rounds)
                pooled = results.setdefault(name, dict(bars=[], gens=[], tokens=0, failures=[], wall=0.0))
                for key in ("bars", "gens", "failures"):
                    pooled[key] += got[key]
                pooled["tokens"] += got["tokens"]
                pooled["wall"] += got["wall"]
        top_n = engine(names[-1]).top_n
        text_server.start(url="")
    return dict(results=results, clients=clients, rounds=rounds, passes=passes, load_before=load_before,
                load_after=os.getloadavg(), when=datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
                top_n=top_n)


def report(r: dict) -> str:
    lines = [
        f"{r['when']}, {os.cpu_count()} CPUs, load average before {r['load_before'][0]:.2f} / "
        f"{r['load_before'][1]:.2f} / {r['load_before'][2]:.2f} (1/5/15 min), after {r['load_after'][0]:.2f}",
        f"{r['clients']} clients at once × {r['rounds']} rounds of (next-token bars, then {GEN_TOKENS} sampled "
        f"tokens), each engine {r['passes']} times, alternated; the server lists its top {r['top_n']}; "
        f"wall s and tokens/s over all passes",
        f"{'engine':<28}{'bars p50':>10}{'p95':>8}{'gen p50':>10}{'p95':>8}{'tokens/s':>10}"
        f"{'failures':>10}{'wall s':>8}",
    ]
    figures = {}
    for name, x in r["results"].items():
        row = (statistics.median(x["bars"]) if x["bars"] else float("nan"), _percentile(x["bars"], 0.95),
               statistics.median(x["gens"]) if x["gens"] else float("nan"), _percentile(x["gens"], 0.95),
               x["tokens"] / x["wall"], len(x["failures"]), x["wall"])
        figures[name] = row
        lines.append(f"{name:<28}{row[0]:>10.2f}{row[1]:>8.2f}{row[2]:>10.2f}{row[3]:>8.2f}{row[4]:>10.1f}"
                     f"{row[5]:>10d}{row[6]:>8.1f}")
    (_, x), *servers = figures.items()
    for name, y in servers:
        lines.append(f"{'÷ in-process':>28}{y[0] / x[0]:>10.2f}{y[1] / x[1]:>8.2f}{y[2] / x[2]:>10.2f}"
                     f"{y[3] / x[3]:>8.2f}{y[4] / x[4]:>10.2f}{'':>10}{y[6] / x[6]:>8.2f}   ({name})")
    for name, x in r["results"].items():
        for failure in x["failures"][:5]:
            lines.append(f"  {name} failure: {failure}")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=CLIENTS)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--passes", type=int, default=PASSES)
    args = parser.parse_args()
    print(report(run(args.clients, args.rounds, args.passes)))
