"""The next-word tab in a real browser: guess first, reveal, click a candidate to extend the text,
sample with a visible seed, and look back at the history (tiny models)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.support.pages import open_tab, screenshot, take_error_toasts

pytestmark = pytest.mark.browser
TAB = "1 · Next word"


def test_guess_reveal_click_a_candidate_and_sample(page):
    open_tab(page, TAB)
    prompt = page.get_by_label("Text so far")
    prompt.fill("The cat sat on the")
    page.get_by_label("Your guess for the next word").fill("mat")
    page.get_by_role("button", name="Reveal the next word", exact=True).click()

    expect(page.get_by_text(re.compile(r"Your word ␣mat is one token"))).to_be_visible(timeout=30_000)
    expect(page.get_by_text(re.compile(r"read 5 tokens"))).to_be_visible()
    candidates = page.get_by_role("button", name=re.compile(r"^\+ "))
    expect(candidates).to_have_count(5)
    first = candidates.first.inner_text()  # e.g. "+ ␣of  (0%)"
    token = re.match(r"\+ (.*?)\s+\(", first).group(1).replace("␣", " ")
    candidates.first.click()
    expect(prompt).to_have_value("The cat sat on the" + token, timeout=30_000)
    expect(page.get_by_text(re.compile(r"read 6 tokens"))).to_be_visible(timeout=30_000)

    page.get_by_role("button", name="🎲 Sample next token", exact=True).click()
    expect(page.get_by_text(re.compile(r"Added 1 token by sampling .* seed \d+"))).to_be_visible(timeout=30_000)
    seed_box = page.get_by_role("spinbutton", name="Seed")
    seed = seed_box.input_value()
    assert seed.isdigit()
    expect(seed_box).to_be_disabled()  # "New seed each click" is on: the box shows the seed used
    page.get_by_label("New seed each click", exact=True).uncheck()
    expect(seed_box).to_be_editable()
    page.get_by_label("New seed each click", exact=True).check()

    page.get_by_text("History: every token added so far").click()
    history = page.get_by_label("Steps")
    expect(history.get_by_text("clicked").filter(visible=True).first).to_be_visible(timeout=10_000)
    expect(history.get_by_text(f"sampled (seed {seed})").filter(visible=True).first).to_be_visible()
    screenshot(page, "next-word")


def test_empty_text_gets_a_plain_error(page):
    open_tab(page, TAB)
    page.get_by_label("Text so far").fill("")
    page.get_by_role("button", name="Reveal the next word", exact=True).click()
    page.wait_for_function("() => (window.__errorToasts || []).length > 0", timeout=30_000)
    assert any("Type a few words" in t for t in take_error_toasts(page))
