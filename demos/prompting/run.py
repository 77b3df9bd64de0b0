"""Running the strategies on a model: every row of one request (each strategy, n samples for
self-consistency) goes through ONE left-padded `generate` call, streamed per row; then the rows
are grouped back into strategies and their answers read.

How the streaming works (transformers' own streamers only take one sequence): `RowStreamer` is a
`BaseStreamer` that receives the whole batch's new token ids at every decoding step, shape (B,),
and keeps them per row; `generate` runs in a worker thread and the handler yields the decoded
rows a few times a second."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Iterator

import torch

from demos.prompting.answers import extract_answer, is_correct, majority_vote, reply_end
from demos.prompting.prompts import (
    SELF_CONSISTENCY, ProblemSet, RowPlan, RunSettings, get_problem_set, plan_rows, uses_plain_prompts,
)
from gallery import catalog, engines, generation, models, settings as gallery_settings, text_server
from gallery.generation import eos_token_ids
from gallery.text_engine import Draw
from gallery.device import gpu, sized

STREAM_EVERY_S = 0.25  # how often the page gets the partial texts
# A batched generation step (all strategies' rows at once) takes ~50 ms on a GPU, so a call asks
# for the GPU for about max_new_tokens steps; on ZeroGPU the small models skip the GPU (role=).
GPU_STEP_S = 0.05


# --- batched generation with per-row streaming ---------------------------------------------------
def make_row_sampler(temperatures: list[float], seed: int):
    """A logits processor that samples the rows with temperature > 0 itself, with its own seeded
    torch.Generator (never the global RNG), and turns their scores into a one-hot; `generate`
    runs in greedy mode, so rows at temperature 0 stay exactly greedy and the others take the
    drawn token. Pure temperature sampling: no top-k or top-p."""
    from transformers import LogitsProcessor

    class RowSampler(LogitsProcessor):
        def __init__(self):
            self.rows = [i for i, t in enumerate(temperatures) if t > 0]
            self.generator = None

        def __call__(self, input_ids, scores):  # scores: (B, vocab)
            if not self.rows:
                return scores
            if self.generator is None:
                self.generator = torch.Generator(device=scores.device).manual_seed(seed)
            rows = torch.tensor(self.rows, device=scores.device)
            temps = torch.tensor([temperatures[i] for i in self.rows], device=scores.device, dtype=scores.dtype)
            probs = torch.softmax(scores[rows] / temps[:, None], dim=-1)  # (R, vocab)
            picks = torch.multinomial(probs, 1, generator=self.generator)  # (R, 1)
            out = scores.clone()
            out[rows] = -math.inf
            out[rows, picks[:, 0]] = 0.0
            return out

    return RowSampler()


def _make_stop_criterion(stop: threading.Event):
    from transformers import StoppingCriteria

    class StopWhenAsked(StoppingCriteria):
        """Ends every row at the next step once `stop` is set (Stop button, closed page)."""

        def __call__(self, input_ids, scores, **kwargs):
            return torch.full((input_ids.shape[0],), stop.is_set(), dtype=torch.bool, device=input_ids.device)

    return StopWhenAsked()


def _make_answer_criterion(plan_strategies: list[str], styles: list[str], tokenizer, prompt_length: int,
                           streamer: "RowStreamer"):
    from transformers import StoppingCriteria

    class StopAtAnswer(StoppingCriteria):
        """Ends each row once its reply has said the answer (`reply_end`); the streamer keeps the
        row's tokens up to that step and ignores the padding that follows."""

        def __call__(self, input_ids, scores, **kwargs):
            done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
            for row, ids in enumerate(input_ids[:, prompt_length:].tolist()):
                done[row] = streamer.stop_length[row] is not None or _said_answer(
                    streamer, row, ids, tokenizer, plan_strategies[row], styles[row])
            return done

    return StopAtAnswer()


def _said_answer(streamer: "RowStreamer", row: int, ids: list[int], tokenizer, strategy: str, style: str) -> bool:
    """True once a row's reply `ids` has said its answer (`reply_end`); the streamer then keeps
    the row's tokens up to here and ends it (both engines stop the row at this step)."""
    if reply_end(tokenizer.decode(ids, skip_special_tokens=True), strategy, style) is None:
        return False
    streamer.stop_length[row] = len(ids)
    return True


@dataclass
class BatchState:
    """What the batch has produced so far. tokens[i]: row i's new token ids, end token excluded."""

    tokens: list[list[int]]
    finished_s: list[float | None]  # seconds from the start until row i ended
    done: bool = False


class RowStreamer:
    """A `generate` streamer for a whole batch (transformers' own streamers take one row).

    `generate` calls put() first with the prompt ids (B, T), then once per step with the new
    token of every row (B,); rows that have ended get the pad token, which is ignored here.
    Each call hands a snapshot to `emit` (gallery.generation.from_worker: to the page's thread)."""

    def __init__(self, batch_size: int, eos_ids: set[int], emit=lambda state: None):
        self.eos_ids, self.emit = eos_ids, emit
        self.tokens: list[list[int]] = [[] for _ in range(batch_size)]
        self.finished_s: list[float | None] = [None] * batch_size
        self.stop_length: list[int | None] = [None] * batch_size  # set when a row has said its answer
        self.started = time.perf_counter()
        self.prompt_seen = False

    def _snapshot(self, done: bool) -> BatchState:
        return BatchState([list(t) for t in self.tokens], list(self.finished_s), done)

    def put(self, value: torch.Tensor) -> None:
        if not self.prompt_seen:  # the first call carries the prompts, not new tokens
            self.prompt_seen = True
            return
        now = time.perf_counter() - self.started
        for row, token in enumerate(value.reshape(-1).tolist()):
            if self.finished_s[row] is not None:
                continue
            if token in self.eos_ids:
                self.finished_s[row] = now
                continue
            self.tokens[row].append(token)
            limit = self.stop_length[row]
            if limit is not None and len(self.tokens[row]) >= limit:
                self.finished_s[row] = now
        self.emit(self._snapshot(False))

    def end(self) -> None:
        now = time.perf_counter() - self.started
        self.finished_s = [now if s is None else s for s in self.finished_s]  # ran out of tokens
        self.emit(self._snapshot(True))


def _stream_with_engine(engine, lm, tokenizer, prompts: list[str], temperatures: list[float], seed: int,
                        max_new_tokens: int, stop: threading.Event, every_s: float,
                        stop_at_answer: list[tuple[str, str]] | None) -> Iterator[BatchState]:
    """stream_generate on a text engine (llama.cpp): every row decoded together, one engine batch
    per step; rows at temperature 0 take the top token, the others sample softmax(logits / t)
    with one seeded generator, as RowSampler does; a row ends once it has said its answer.
    A text server samples the rows itself, each with its `Draw` (the same temperature, its own
    seed: seed + row, so self-consistency's samples differ)."""
    generator = torch.Generator().manual_seed(seed)

    def pick(row: int, step: int, logits: torch.Tensor) -> int:
        t = temperatures[row]
        if t <= 0:
            return int(logits.argmax())
        return int(torch.multinomial(torch.softmax(logits.float() / t, dim=-1), 1, generator=generator))

    ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    streamer = RowStreamer(len(prompts), eos_token_ids(lm, tokenizer))  # snapshots read directly
    streamer.prompt_seen = True  # the engine hands over new tokens only
    read_upto = [0] * len(prompts)  # tokens of each row already looked at for its answer

    def ended(row: int) -> bool:  # asked twice per step: after put (for the snapshot) and by the engine
        if stop_at_answer is None:
            return False
        if streamer.stop_length[row] is not None:
            return True
        if streamer.finished_s[row] is not None or len(streamer.tokens[row]) == read_upto[row]:
            return False  # an end token, or nothing new since the last look
        read_upto[row] = len(streamer.tokens[row])
        if not _said_answer(streamer, row, streamer.tokens[row], tokenizer, *stop_at_answer[row]):
            return False
        streamer.finished_s[row] = time.perf_counter() - streamer.started
        return True

    last_sent = 0.0
    try:
        draws = [Draw(temperature=t, seed=seed + row) for row, t in enumerate(temperatures)]
        for tokens, _ in engine.generate_batch(ids, max_new_tokens, pick, streamer.eos_ids,
                                               max_time=gallery_settings.TIME_LIMIT_S, stop=stop, ended=ended,
                                               draws=draws):
            streamer.put(torch.tensor([-1 if t is None else t for t in tokens]))  # ended rows: ignored
            for row in range(len(prompts)):
                ended(row)
            if time.perf_counter() - last_sent >= every_s:
                last_sent = time.perf_counter()
                yield streamer._snapshot(False)
        streamer.end()
        yield streamer._snapshot(True)
    finally:
        stop.set()


def stream_generate(lm, tokenizer, prompts: list[str], temperatures: list[float], seed: int,
                    max_new_tokens: int, stop: threading.Event | None = None,
                    every_s: float = STREAM_EVERY_S, engine=None,
                    stop_at_answer: list[tuple[str, str]] | None = None) -> Iterator[BatchState]:
    """Run every prompt in ONE left-padded `generate` call (or one engine batch per step, with
    `engine`); yield the batch's progress at most every `every_s` seconds, and the finished
    batch last. Closing the iterator stops generation.
    stop_at_answer: per row (strategy, style); each row then ends once it has said its answer."""
    from transformers import LogitsProcessorList, StoppingCriteriaList

    if engine is not None:
        yield from _stream_with_engine(engine, lm, tokenizer, prompts, temperatures, seed, max_new_tokens,
                                       stop or threading.Event(), every_s, stop_at_answer)
        return

    # Left padding (generation.left_padded): every row's last prompt token sits in the last column,
    # where the next token is predicted; generate derives the positions from the mask.
    ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    padded = generation.left_padded(ids, tokenizer.pad_token_id)
    batch = {name: padded[name].to(lm.device) for name in ("input_ids", "attention_mask")}  # (B, T)
    stop = stop or threading.Event()
    streamer = RowStreamer(len(prompts), eos_token_ids(lm, tokenizer))
    criteria = [_make_stop_criterion(stop)]
    if stop_at_answer:
        criteria.append(_make_answer_criterion([s for s, _ in stop_at_answer], [t for _, t in stop_at_answer],
                                               tokenizer, batch["input_ids"].shape[1], streamer))

    def work(emit, stop) -> None:
        streamer.emit = emit
        lm.generate(
            **batch,
            max_new_tokens=max_new_tokens,
            do_sample=False,  # greedy; RowSampler does the sampling for rows that want it
            temperature=1.0, top_p=1.0, top_k=50,  # neutral: a model's own sampling defaults stay off
            repetition_penalty=1.0,
            max_time=gallery_settings.TIME_LIMIT_S,  # a bound on one request's generation
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=sorted(streamer.eos_ids),
            logits_processor=LogitsProcessorList([make_row_sampler(temperatures, seed)]),
            stopping_criteria=StoppingCriteriaList(criteria),
            streamer=streamer,
        )

    last_sent = 0.0
    # Closing this iterator (Stop, page closed) sets `stop`: the worker ends at its next step.
    for state in generation.from_worker(work, "prompting-generate", stop=stop):
        if state.done or time.perf_counter() - last_sent >= every_s:
            last_sent = time.perf_counter()
            yield state  # the page only needs the latest snapshot
        if state.done:
            return
    raise RuntimeError("the generation thread ended without a result")


# --- one question, every chosen strategy ---------------------------------------------------------
@dataclass
class StrategyResult:
    strategy: str
    prompt: str
    texts: list[str] = field(default_factory=list)  # one per sample (one for single-answer strategies)
    answers: list[str | None] = field(default_factory=list)
    answer: str | None = None  # the final answer (the majority for self-consistency)
    votes: dict[str, int] = field(default_factory=dict)
    correct: bool | None = None
    tokens: int = 0  # new tokens, all samples together
    seconds: float = 0.0  # from the batch's start until this strategy's last row ended
    finished: bool = False
    temperature: float = 0.0


def collect_results(plan: list[RowPlan], state: BatchState | None, tokenizer, expected: str | None,
                    kind: str) -> list[StrategyResult]:
    """Group the batch rows back into strategies, decode, read answers, vote, compare."""
    results: dict[str, StrategyResult] = {}
    for row, item in enumerate(plan):
        result = results.setdefault(
            item.strategy, StrategyResult(item.strategy, item.prompt, temperature=item.temperature)
        )
        if state is None:
            continue
        ids = state.tokens[row]
        text = tokenizer.decode(ids, skip_special_tokens=True)
        end = reply_end(text, item.strategy, item.style) if state.finished_s[row] is not None else None
        text = text[:end].rstrip() if end is not None else text  # what followed the answer is not shown
        result.texts.append(text)
        result.tokens += len(ids)
        ended = state.finished_s[row]
        result.answers.append(extract_answer(text, kind) if ended is not None else None)
        rows_of_strategy = [state.finished_s[i] for i, p in enumerate(plan) if p.strategy == item.strategy]
        result.finished = all(s is not None for s in rows_of_strategy)
        result.seconds = max((s for s in rows_of_strategy if s is not None), default=0.0)
    for result in results.values():
        if not result.finished:
            continue
        if result.strategy == SELF_CONSISTENCY:
            result.answer, result.votes = majority_vote(result.answers)
        else:
            result.answer = result.answers[0] if result.answers else None
        result.correct = is_correct(result.answer, expected, kind)
    return list(results.values())


def compare_strategies(lm, tokenizer, question: str, expected: str | None, kind: str,
                       strategies: list[str], problem_set: ProblemSet, settings: RunSettings,
                       stop: threading.Event | None = None, engine=None, plain: bool = False,
                       stop_at_answer: bool = True) -> Iterator[list[StrategyResult]]:
    """Yield the results of every strategy as they grow: first the prompts alone, then partial
    texts, last the finished answers (the last yield has every `finished` True).
    plain: "Q: … A:" text for a pre-trained-only model instead of the chat template.
    stop_at_answer=False lets every row run to its end token (the benchmark's "before")."""
    plan = plan_rows(tokenizer, question, strategies, problem_set, settings, plain=plain)
    yield collect_results(plan, None, tokenizer, expected, kind)
    for state in stream_generate(
        lm, tokenizer, [p.prompt for p in plan], [p.temperature for p in plan], settings.seed,
        settings.max_new_tokens, stop, engine=engine,
        stop_at_answer=[(p.strategy, p.style) for p in plan] if stop_at_answer else None,
    ):
        yield collect_results(plan, state, tokenizer, expected, kind)


# --- the model side (ZeroGPU runs these in its GPU worker) ---------------------------------------
def load_model(model_label: str | None):
    """-> (model, tokenizer, plain): plain is True for a model that reads "Q: … A:" text."""
    entry = catalog.by_label("instruct", model_label)
    lm, tokenizer = models.load_causal_lm(entry)
    return lm, tokenizer, uses_plain_prompts(entry, tokenizer)


def load_engine(model_label: str | None):
    """The text server when it serves this model (GALLERY_TEXT_SERVER), llama.cpp for a bundled
    GGUF model on CPU, else None (transformers' generate)."""
    return engines.load_text_engine(catalog.by_label("instruct", model_label))


def engine_note(model_label: str | None) -> str:
    """What the page says about a text server: the one that runs this model's rows, or why it
    does not ("" when no server is set)."""
    entry = catalog.by_label("instruct", model_label)
    server = text_server.engine_for(entry)
    if server is not None:
        return (f"⚙️ Run by the **{server.name}**: every row is one streamed request, all sent at once, "
                "and the server batches them and samples each row itself.")
    note = text_server.notice(entry)
    return f"⚠️ {note}" if note else ""


@gpu(duration=sized(lambda model_label, question, expected, kind, strategies, set_name, settings:
                    GPU_STEP_S * settings.max_new_tokens), role="instruct")
def run_compare(model_label, question, expected, kind, strategies, set_name, settings):
    """-> iterator of result lists (see compare_strategies); loads the model on first use."""
    lm, tokenizer, plain = load_model(model_label)
    yield from compare_strategies(lm, tokenizer, question, expected, kind, strategies,
                                  get_problem_set(set_name), settings, engine=load_engine(model_label),
                                  plain=plain)


def run_score(model_label, set_name, count, strategies, settings):
    """-> iterator of (questions done, records so far, status, a question just finished?).
    One short GPU call per question (`run_compare`), never one long call for the whole set: a
    visitor with little GPU quota left can still score, and the queue moves between questions.
    Stops early, saying so, once the run has taken longer than the gallery's time limit per request."""
    problem_set = get_problem_set(set_name)
    records: list[dict] = []
    started = time.perf_counter()
    for index, problem in enumerate(problem_set.items[:count]):
        if time.perf_counter() - started > gallery_settings.TIME_LIMIT_S:
            yield index, records, f"Stopped after {index} questions: the time limit was reached.", True
            return
        results = None
        for results in run_compare(model_label, problem.question, problem.answer, problem.kind,
                                   strategies, problem_set.name, settings):
            made = sum(r.tokens for r in results)
            yield index, records, f"Question {index + 1} of {count}: {made} tokens so far…", False
        for result in results or []:
            records.append({"id": problem.id, "question": problem.question, "expected": problem.answer,
                            "strategy": result.strategy, "answer": result.answer,
                            "correct": bool(result.correct)})
        yield index + 1, records, f"{index + 1} of {count} questions scored.", True
