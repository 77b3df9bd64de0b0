"""Two real browser pages in one workshop room: the presenter opens the room, an attendee joins by
the link and guesses; the guess appears in the presenter's chart (read from the drawn vega bars)."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from tests.support.pages import RECORD_ERROR_TOASTS, open_tab, screenshot, take_error_toasts

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
    labels = page.evaluate(
        "(id) => [...document.querySelectorAll(`#${id} [aria-label]`)].map(e => e.getAttribute('aria-label'))",
        chart_id)
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
    attendee.add_init_script(RECORD_ERROR_TOASTS)
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
        # ... and, once the presenter reveals the model's bets, the model's side for the same word.
        presenter.get_by_role("button", name="🎲 Reveal the model's bets").click()
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


def test_a_room_of_phones_and_laptops_joins_by_qr_link_or_typed_code(browser, app_url):
    """The presenter opens a room: a large code and a QR code of the room's link go on the
    projector. Three attendees join, two by the link (one phone, one laptop), one by typing the
    code on a phone, and guess; the presenter's chart counts them, and the model's bets stay
    hidden until the presenter reveals them."""
    import cv2
    import numpy as np

    from tests.support.classroom import Classroom, open_tab as open_any_tab

    room = Classroom(browser, app_url, 4)  # 0: the presenter (laptop); 1, 3: phones; 2: laptop
    try:
        room.open()
        presenter, *attendees = room.visitors
        page = presenter.page
        page.get_by_text("🏫 Workshop room").click()
        page.get_by_role("button", name="Open a new room (presenter)").click()
        expect(page.locator("#room-projector .room-code")).to_be_visible(timeout=20_000)
        code = page.locator("#room-projector .room-code").inner_text().strip()
        assert re.fullmatch(r"[A-Z]{4}", code), code
        code_size = page.locator("#room-projector .room-code").evaluate(
            "(el) => parseFloat(getComputedStyle(el).fontSize)")
        assert code_size >= 48
        # The QR code, read back from what is drawn, is the room's link.
        picture = page.locator("#room-projector .room-qr").screenshot()
        read = cv2.imdecode(np.frombuffer(picture, np.uint8), cv2.IMREAD_COLOR)
        found, _, _ = cv2.QRCodeDetector().detectAndDecode(read)
        assert found == f"{app_url}/?room={code}", found
        presenter.screenshot("room-projector")

        open_tab(page, TAB)
        page.get_by_label("Text so far").fill(PROMPT)
        page.get_by_text("🏫 The room's guesses (presenter)").click()
        expect(page.locator("#room-word-view")).to_contain_text("no guesses yet", timeout=20_000)

        guesses = {1: "mat", 2: "Mat ", 3: "sofa"}
        for attendee in attendees:
            if attendee.number == 3:  # types the code on the phone
                attendee.page.get_by_text("🏫 Workshop room").click()
                attendee.page.locator("#room-code input").fill(code.lower())
                attendee.page.get_by_role("button", name="Join", exact=True).click()
            else:  # follows the link (the QR code)
                attendee.page.goto(found)
                attendee.page.wait_for_selector("button[role=tab]", timeout=30_000)
                attendee.page.get_by_text("🏫 Workshop room").click()
            expect(attendee.page.locator("#room-status")).to_contain_text(f"room {code}", timeout=20_000)
            assert attendee.scroll_width() <= attendee.viewport["width"], f"{attendee}: the page scrolls sideways"
            open_any_tab(attendee.page, "Next word")
            attendee.page.get_by_label("Text so far").fill(PROMPT)
            attendee.page.get_by_label("Your guess for the next word").fill(guesses[attendee.number])
            attendee.page.locator("#next-word-reveal").click()
            expect(attendee.page.locator("#room-status")).to_contain_text("is counted", timeout=30_000)
        attendees[-1].screenshot("room-attendee")

        _wait_for_bar(page, "room-word-bars", r"^word: mat; share of the room: 0\.66+7$", 15)
        _wait_for_bar(page, "room-word-bars", r"^word: sofa; share of the room: 0\.33+$", 15)
        # The gate: no model bars until the presenter reveals them.
        expect(page.locator("#room-model-note")).to_contain_text("stay hidden", timeout=10_000)
        assert not page.locator("#room-model-bars").is_visible()
        page.get_by_role("button", name="🎲 Reveal the model's bets").click()
        _wait_for_bar(page, "room-model-bars", r"^word: mat; model probability: [0-9.e-]+$", 30)
        expect(page.locator("#room-model-note")).to_contain_text("top token", timeout=30_000)
        presenter.screenshot("room-presenter-revealed")
        assert not room.errors()
    finally:
        room.close()
