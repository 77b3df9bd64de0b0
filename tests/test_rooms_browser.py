"""Two real browser pages in one workshop room: the presenter opens the room, an attendee joins by
the link and guesses; the guess appears in the presenter's chart (read from the drawn vega bars)."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from tests.conftest import _RECORD_ERROR_TOASTS, open_tab, screenshot, take_error_toasts

pytestmark = pytest.mark.browser
TAB = "1 · Next word"
PROMPT = "The cat sat on the"


def _bars(page, chart_id: str) -> list[str]:
    return page.evaluate(
        """(id) => [...document.querySelectorAll(`#${id} [aria-label]`)]
                 .map(el => el.getAttribute('aria-label')).filter(l => l.startsWith('word: '))""",
        chart_id,
    )


def _wait_for_bar(page, chart_id: str, pattern: str, timeout_s: float) -> tuple[float, list[str]]:
    started = time.monotonic()
    bars: list[str] = []
    while time.monotonic() - started < timeout_s:
        bars = _bars(page, chart_id)
        if any(re.search(pattern, b) for b in bars):
            return time.monotonic() - started, bars
        page.wait_for_timeout(200)
    labels = page.evaluate("(id) => [...document.querySelectorAll(`#${id} [aria-label]`)].map(e => e.getAttribute('aria-label'))", chart_id)
    raise AssertionError(f"no bar matching {pattern!r} within {timeout_s} s; drawn: {bars}; all labels: {labels}; "
                         f"view: {page.locator('#room-word-view').inner_text()[:500]}")


def test_a_guess_on_one_page_appears_in_the_presenter_s_chart_on_the_other(page, browser, app_url):
    presenter = page
    presenter.get_by_text("🏫 Workshop room").click()
    presenter.get_by_role("button", name="Open a new room (presenter)").click()
    status = presenter.locator("#room-status")
    expect(status).to_contain_text("is open", timeout=20_000)
    code = re.search(r"Room ([A-Z]{4}) is open", status.inner_text()).group(1)
    assert f"?room={code}" in status.inner_text()  # the link to share
    open_tab(presenter, TAB)
    presenter.get_by_label("Text so far").fill(PROMPT)
    presenter.get_by_text("🏫 The room's guesses (presenter)").click()
    expect(presenter.locator("#room-word-view")).to_contain_text("no guesses yet", timeout=20_000)

    context = browser.new_context(viewport={"width": 1280, "height": 800})
    attendee = context.new_page()
    attendee.add_init_script(_RECORD_ERROR_TOASTS)
    try:
        attendee.goto(f"{app_url}/?room={code.lower()}")
        attendee.wait_for_selector("button[role=tab]", timeout=30_000)
        attendee.get_by_text("🏫 Workshop room").click()
        expect(attendee.locator("#room-status")).to_contain_text(f"room {code}", timeout=20_000)
        open_tab(attendee, TAB)
        attendee.get_by_label("Text so far").fill(PROMPT)
        attendee.get_by_label("Your guess for the next word").fill("<b>Mat</b>")
        attendee.get_by_role("button", name="Reveal the next word", exact=True).click()
        expect(attendee.get_by_text(re.compile("Your word"))).to_be_visible(timeout=30_000)
        expect(attendee.locator("#room-status")).to_contain_text("is counted", timeout=20_000)
        guessed_at = time.monotonic()

        # The presenter's page redraws by itself (a timer): the attendee's guess, as text.
        waited, bars = _wait_for_bar(presenter, "room-word-bars", r"^word: <b>Mat</b>; share of the room: 1$", 10)
        assert time.monotonic() - guessed_at < 10 and bars == ["word: <b>Mat</b>; share of the room: 1"]
        assert presenter.locator("#room-word-view b", has_text="Mat").count() == 0  # drawn as text, never HTML
        # ... and the model's side for the same word.
        _wait_for_bar(presenter, "room-model-bars", r"^word: <b>Mat</b>; model probability: [0-9.e-]+$", 30)
        expect(presenter.locator("#room-word-view")).to_contain_text("top token", timeout=30_000)

        # The attendee changes their guess: the chart follows; the presenter's own guess counts too.
        attendee.get_by_label("Your guess for the next word").fill("hat")
        attendee.get_by_role("button", name="Reveal the next word", exact=True).click()
        _wait_for_bar(presenter, "room-word-bars", r"^word: hat; share of the room: 1$", 15)
        presenter.get_by_label("Your guess for the next word").fill("HAT ")
        presenter.get_by_role("button", name="Reveal the next word", exact=True).click()
        _, bars = _wait_for_bar(presenter, "room-word-bars", r"^word: hat; share of the room: 1$", 15)
        expect(presenter.locator("#room-word-view")).to_contain_text("**2** pages".replace("**", ""), timeout=15_000)
        screenshot(presenter, "room-presenter")
        assert not take_error_toasts(attendee)
    finally:
        context.close()
