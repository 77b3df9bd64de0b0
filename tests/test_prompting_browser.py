"""The prompting tab in a real browser: two strategies on one built-in question, then a short
scored run, then a run that is stopped (tiny random model, so answers are nonsense: ✗)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.support.pages import open_tab, screenshot

pytestmark = pytest.mark.browser

TAB = "5 · Prompting strategies"


def _choose(page, label: str, option: str) -> None:
    page.get_by_label(label, exact=True).click()
    page.get_by_role("option", name=option, exact=True).click()


def test_two_strategies_on_one_builtin_question_then_score_and_stop(page):
    open_tab(page, TAB)
    # 1. A built-in question from another set fills the question and its expected answer.
    _choose(page, "Problem set", "Dates and times")
    expect(page.get_by_label("Question", exact=True)).to_have_value(re.compile("3 days after Friday"))
    expect(page.get_by_label("Expected answer (optional)")).to_have_value("Monday")

    # 2. Two strategies, a guess first.
    strategies = page.locator("#prompting-strategies")
    for name in ("few-shot", "few-shot chain-of-thought", "self-consistency"):
        strategies.get_by_label(name, exact=True).uncheck()
    page.locator("#prompting-guess").get_by_label("chain-of-thought", exact=True).check()
    page.get_by_role("button", name="Run the strategies", exact=True).click()

    for slug in ("zero-shot", "chain-of-thought"):
        header = page.locator(f"#prompting-header-{slug}")
        expect(header).to_contain_text("Answer:", timeout=60_000)
        expect(header).to_contain_text(re.compile("[✓✗]"))
        expect(header).to_contain_text("tokens")
    expect(page.locator("#prompting-summary")).to_contain_text("greedy (temperature 0)")
    expect(page.locator("#prompting-summary")).to_contain_text("seed 0")
    expect(page.locator("#prompting-verdict")).to_contain_text("You guessed chain-of-thought")
    expect(page.locator("#prompting-header-self-consistency")).to_be_hidden()  # not chosen
    page.locator("#prompting-prompt-chain-of-thought").get_by_text("Exact prompt").click()
    expect(page.locator("#prompting-prompt-chain-of-thought textarea")).to_have_value(
        re.compile(r"<\|im_start\|>user\nWhat day of the week is 3 days after Friday\?\nThink step by step")
    )
    screenshot(page, "prompting-compare")

    # 3. Score the first two questions of the set with the same two strategies.
    count = page.locator("#prompting-count input[type=number]")
    count.fill("2")
    count.press("Enter")
    page.get_by_role("button", name="Score the set", exact=True).click()
    expect(page.locator("#prompting-score-status")).to_contain_text("✅", timeout=60_000)
    expect(page.locator("#prompting-score-status")).to_contain_text("Scoring 2 of 34")
    expect(page.locator("#prompting-table")).to_contain_text("dates-02")
    expect(page.locator("#prompting-score-verdict")).to_contain_text("You guessed chain-of-thought")
    screenshot(page, "prompting-score")

    # 4. A long run can be stopped, and the tab works afterwards.
    count.fill("34")
    count.press("Enter")
    strategies.get_by_label("self-consistency", exact=True).check()
    page.get_by_role("button", name="Score the set", exact=True).click()
    expect(page.locator("#prompting-score-status")).to_contain_text(re.compile(r"Question \d+ of 34"),
                                                                    timeout=30_000)
    page.get_by_role("button", name="Stop", exact=True).last.click()
    strategies.get_by_label("self-consistency", exact=True).uncheck()
    page.get_by_label("Question", exact=True).fill("What is 2 + 3?")
    page.locator("#prompting-prompt-zero-shot").get_by_text("Exact prompt").click()
    page.get_by_role("button", name="Run the strategies", exact=True).click()
    expect(page.locator("#prompting-prompt-zero-shot textarea")).to_have_value(re.compile(r"What is 2 \+ 3\?"),
                                                                           timeout=60_000)
    expect(page.locator("#prompting-header-zero-shot")).to_contain_text("Answer:", timeout=60_000)
    expect(page.locator("#prompting-score-status")).not_to_contain_text("✅")


def test_the_tab_opens_with_every_strategy_s_answer_to_the_default_question(page, client):
    """No click: the default question's answers are there on open, and they are the answers the
    tab gives when the default inputs are run (the same request through the API)."""
    open_tab(page, TAB)
    question = page.get_by_label("Question", exact=True).input_value()
    expected = page.get_by_label("Expected answer (optional)").input_value()
    for slug in ("zero-shot", "few-shot", "chain-of-thought", "few-shot-chain-of-thought", "self-consistency"):
        expect(page.locator(f"#prompting-header-{slug}")).to_contain_text("Answer:", timeout=60_000)
    from demos.prompting import compare as PC, prompts as PP

    first = next(iter(PP.problem_sets().values()))
    model = page.locator("#prompting-model input").input_value()
    out = client.predict(model, question, expected, list(PP.STRATEGIES), PC.NO_GUESS, PP.DEFAULT_K,
                         PP.DEFAULT_SAMPLES, PP.DEFAULT_TEMPERATURE, PP.DEFAULT_SC_TEMPERATURE,
                         PP.DEFAULT_SEED, PC.default_new_tokens(first), first.name, api_name="/prompting_compare")
    # Each column's output box holds what the API gave (outputs: summary, then header, text and
    # prompt per strategy). Compared on letters and digits: the tiny random model writes control
    # characters and broken bytes, which the page and the JSON reply render differently.
    words = lambda text: re.sub(r"[\W_]+", "", text)  # noqa: E731
    for i, strategy in enumerate(PP.STRATEGIES):
        shown = page.get_by_label(f"{strategy} output", exact=True).input_value()
        assert words(shown) == words(out[2 + 3 * i]) and words(shown), strategy
    screenshot(page, "prompting-on-open")
