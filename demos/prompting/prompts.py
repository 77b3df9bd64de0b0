"""What each prompting strategy asks the model: the strategies, the built-in problem sets with
their worked examples, and the exact prompt text of each row of a batch (pure, no model).

Two prompt styles: an instruct model reads chat turns through its own chat template; a
pre-trained-only model reads plain "Q: … A:" blocks, as GPT-3 did."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache

from gallery import ui
from gallery.errors import InputError

PROBLEMS_DIR = ui.ASSETS / "problems"
# assets/problems/<name>.json; the first is the default. Look-ups first: there a few examples make
# the bundled models answer (measured: benchmarks/prompting_accuracy.py); multi-step sets last.
PROBLEM_SET_FILES = ("french", "word_forms", "units", "sequences", "opposites", "capitals",
                     "arithmetic", "dates", "letters")

ZERO_SHOT, FEW_SHOT, COT, FEW_SHOT_COT, SELF_CONSISTENCY = (
    "zero-shot",
    "few-shot",
    "chain-of-thought",
    "few-shot chain-of-thought",
    "self-consistency",
)
STRATEGIES = (ZERO_SHOT, FEW_SHOT, COT, FEW_SHOT_COT, SELF_CONSISTENCY)
BASIC_STRATEGIES = STRATEGIES[:4]
STRATEGY_HELP = {
    ZERO_SHOT: "the question alone, asking for the answer only",
    FEW_SHOT: "k solved examples first (answers only), then the question",
    COT: "the question, asking the model to think step by step",
    FEW_SHOT_COT: "k solved examples that show their steps, then the question",
    SELF_CONSISTENCY: "the few-shot chain-of-thought prompt sampled n times; the majority answer wins",
}
# The two instructions appended to every question (and to every worked example's question).
ANSWER_ONLY = 'Reply with the final answer only, in the form "The answer is ...".'
STEP_BY_STEP = 'Think step by step, then end with "The answer is ...".'
# A pre-trained-only model gets no instructions: "Q: … A:" blocks (GPT-3 style); zero-shot
# chain-of-thought adds the classic trigger after the "A:" (Kojima et al., 2022).
PLAIN_COT_TRIGGER = "Let's think step by step."
ANSWER_ONLY_STRATEGIES = (ZERO_SHOT, FEW_SHOT)  # their reply is one line; the others reason first
DEFAULT_MAX_NEW_TOKENS = 128  # room a reply gets unless its set asks for more
DEFAULT_K = 3  # worked examples in the few-shot prompts (at most the set's own)
DEFAULT_SAMPLES = 5  # self-consistency's chains of thought
DEFAULT_TEMPERATURE, DEFAULT_SC_TEMPERATURE = 0.0, 0.7  # the single-answer strategies (greedy); self-consistency
DEFAULT_SEED = 0
# Beside the results: what to expect from each kind of set (the chapter's *emergence*).
LOOKUP_LESSON = (
    "📈 **Look-ups: the examples define the task.** Asked cold, a small model often replies in the "
    "wrong form or drifts off; three solved examples show it exactly what is wanted. The gain is "
    "largest on the pre-trained-only model, which was never taught to follow a question at all "
    "(the GPT-3 result: few-shot examples turn a text continuer into a task solver)."
)
REASONING_LESSON = (
    "🧗 **Chain-of-thought needs a bigger model.** On multi-step problems every strategy scores "
    "low on the bundled 135M/270M models, and writing out steps does not help them: they cannot "
    "yet do each step reliably. The gain from showing steps appears only past a certain scale — "
    "the chapter's *emergence* (Wei et al., 2022, saw it at around 100B parameters on their "
    "benchmarks; today's small models, trained on worked solutions, get there far sooner). With "
    "the Hub, compare Qwen2.5-0.5B-Instruct with Qwen2.5-1.5B-Instruct here to see where it starts "
    "(not measured on this offline machine)."
)


# --- problem sets ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Problem:
    id: str
    question: str
    answer: str
    kind: str  # number | time | calendar | word | list | text: how answers are read and compared


@dataclass(frozen=True)
class Example:
    question: str
    reasoning: str
    answer: str


@dataclass(frozen=True)
class ProblemSet:
    key: str
    name: str
    description: str
    default_kind: str
    exemplars: tuple[Example, ...]  # the worked examples; never among the scored items
    items: tuple[Problem, ...]
    multi_step: bool = False  # needs several steps (the emergence lesson) rather than one look-up
    max_new_tokens: int = 128  # room a reply needs here (look-ups stop long before)


@cache
def problem_sets() -> dict[str, ProblemSet]:
    """The built-in sets, by display name (in the order of PROBLEM_SET_FILES)."""
    sets = {}
    for key in PROBLEM_SET_FILES:
        data = json.loads((PROBLEMS_DIR / f"{key}.json").read_text(encoding="utf-8"))
        sets[data["name"]] = ProblemSet(
            key=key,
            name=data["name"],
            description=data["description"],
            default_kind=data["default_kind"],
            exemplars=tuple(Example(e["question"], e["reasoning"], e["answer"]) for e in data["exemplars"]),
            items=tuple(Problem(i["id"], i["question"], i["answer"], i["kind"]) for i in data["items"]),
            multi_step=bool(data.get("multi_step", False)),
            max_new_tokens=int(data.get("max_new_tokens", DEFAULT_MAX_NEW_TOKENS)),
        )
    return sets


def set_description(problem_set: ProblemSet) -> str:
    return (f"*{problem_set.description}* {len(problem_set.items)} questions, "
            f"{len(problem_set.exemplars)} worked examples (the few-shot prompts use these, also for "
            "a question you type).")


def set_lesson(problem_set: ProblemSet) -> str:
    return REASONING_LESSON if problem_set.multi_step else LOOKUP_LESSON


def get_problem_set(name: str | None) -> ProblemSet:
    sets = problem_sets()
    if not name:
        return next(iter(sets.values()))
    for problem_set in sets.values():
        if name in (problem_set.name, problem_set.key):
            return problem_set
    raise InputError(f"Unknown problem set {name!r}. Pick one of: {', '.join(sets)}.")


def question_choices(problem_set: ProblemSet) -> list[tuple[str, str]]:
    """Dropdown entries: (what the page shows, what the API takes: the item id)."""
    return [(f"{p.id} · {p.question}", p.id) for p in problem_set.items]


def find_problem(question: str, problem_set: ProblemSet | None = None) -> Problem | None:
    """The built-in item with exactly this question text, if any (its kind and answer are known);
    only in `problem_set` when given."""
    for candidate in [problem_set] if problem_set else problem_sets().values():
        for problem in candidate.items:
            if problem.question == question.strip():
                return problem
    return None


# --- prompts (pure) -------------------------------------------------------------------------------
def build_messages(strategy: str, question: str, exemplars: tuple[Example, ...], k: int) -> list[dict]:
    """The chat for one strategy. Worked examples are earlier user/assistant turns, so the chat
    template marks them exactly as it marks a real conversation."""
    shots = exemplars[:k]
    if strategy == ZERO_SHOT:
        return [{"role": "user", "content": f"{question}\n{ANSWER_ONLY}"}]
    if strategy == COT:
        return [{"role": "user", "content": f"{question}\n{STEP_BY_STEP}"}]
    if strategy == FEW_SHOT:
        instruction, reply = ANSWER_ONLY, lambda e: f"The answer is {e.answer}."
    elif strategy in (FEW_SHOT_COT, SELF_CONSISTENCY):
        instruction, reply = STEP_BY_STEP, lambda e: f"{e.reasoning} The answer is {e.answer}."
    else:
        raise InputError(f"Unknown strategy {strategy!r}.")
    messages = []
    for example in shots:
        messages.append({"role": "user", "content": f"{example.question}\n{instruction}"})
        messages.append({"role": "assistant", "content": reply(example)})
    messages.append({"role": "user", "content": f"{question}\n{instruction}"})
    return messages


def render_prompt(tokenizer, messages: list[dict]) -> str:
    """The exact text the model reads: the chat template applied, ready for the reply."""
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def build_plain_prompt(strategy: str, question: str, exemplars: tuple[Example, ...], k: int) -> str:
    """The plain-text prompt for a pre-trained-only model: "Q: … A: …" blocks, no instructions.
    Few-shot examples give their answer alone; chain-of-thought ones their steps first."""
    shots = exemplars[:k]
    if strategy == ZERO_SHOT:
        return f"Q: {question}\nA:"
    if strategy == COT:
        return f"Q: {question}\nA: {PLAIN_COT_TRIGGER}"
    if strategy == FEW_SHOT:
        reply = lambda e: e.answer  # noqa: E731
    elif strategy in (FEW_SHOT_COT, SELF_CONSISTENCY):
        reply = lambda e: f"{e.reasoning} The answer is {e.answer}."  # noqa: E731
    else:
        raise InputError(f"Unknown strategy {strategy!r}.")
    blocks = [f"Q: {e.question}\nA: {reply(e)}" for e in shots]
    return "\n\n".join([*blocks, f"Q: {question}\nA:"])


def render_plain(tokenizer, text: str) -> str:
    """The exact text a plain prompt is read as: with the tokenizer's begin-of-text token in front
    when the model expects one (Gemma does; it goes astray without it)."""
    bos = tokenizer.bos_token
    if bos and tokenizer.bos_token_id is not None and tokenizer("x")["input_ids"][:1] == [tokenizer.bos_token_id]:
        return bos + text
    return text


def uses_plain_prompts(entry, tokenizer) -> bool:
    """Pre-trained-only models, and any model without a chat template, read plain text."""
    return bool(getattr(entry, "pretrained_only", False)) or not getattr(tokenizer, "chat_template", None)


@dataclass(frozen=True)
class RunSettings:
    """How one request prompts and samples (every value already checked: `compare.clean_settings`)."""

    k: int = DEFAULT_K  # worked examples in the few-shot prompts
    samples: int = DEFAULT_SAMPLES  # self-consistency samples
    temperature: float = DEFAULT_TEMPERATURE  # the four single-answer strategies (0 = greedy)
    sc_temperature: float = DEFAULT_SC_TEMPERATURE  # self-consistency sampling
    seed: int = DEFAULT_SEED
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS


@dataclass(frozen=True)
class RowPlan:
    strategy: str
    prompt: str
    temperature: float  # 0 = greedy
    style: str = "chat"  # chat | plain: how the prompt was written, and so where the reply ends


def plan_rows(tokenizer, question: str, strategies: list[str], problem_set: ProblemSet,
              settings: RunSettings, plain: bool = False) -> list[RowPlan]:
    """One batch row per single-answer strategy, plus n rows for self-consistency."""
    rows = []
    style = "plain" if plain else "chat"
    for strategy in strategies:
        if plain:
            prompt = render_plain(tokenizer, build_plain_prompt(strategy, question, problem_set.exemplars, settings.k))
        else:
            prompt = render_prompt(tokenizer, build_messages(strategy, question, problem_set.exemplars, settings.k))
        if strategy == SELF_CONSISTENCY:
            rows += [RowPlan(strategy, prompt, settings.sc_temperature, style)] * settings.samples
        else:
            rows.append(RowPlan(strategy, prompt, settings.temperature, style))
    return rows
