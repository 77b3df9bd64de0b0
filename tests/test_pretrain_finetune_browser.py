"""Tab 6's panels after pre-training in a real browser: every chart follows every request (what
vega DRAWS equals what the API returns for the same inputs: two requests and a settings change per
panel), the fine-tuning is on the visitor's own text model once they have one, and the panels on
a phone's screen."""

from __future__ import annotations

import re

import pytest
from gradio_client import Client
from playwright.sync_api import expect

from demos import pretrain as tab
from demos.pretrain import finetune as ft, finetune_panels as panels
from tests.support.browser_charts import expect_bars, expect_points, plot_frame
from tests.support.pages import ARTIFACTS, open_tab, screenshot

pytestmark = pytest.mark.browser
TAB = "6 · Pre-train it yourself"
TIMEOUT_S = 180
CURVE = dict(x="step", y="held_out_loss", colour="model",
             titles=("step", "held-out loss on the licence (nats)", "model"))
HABIT = dict(x="model", y="probability", colour="continuation", order="given")
GAIN = dict(x="child", y="gain", order="given")
VERBATIM = dict(x="copies", y="characters", order="given")
CHARS = dict(x="character", y="probability", order="given")


@pytest.fixture
def own_client(app_url):
    """A session of its own: its text run (the State the panels read) is nobody else's."""
    client = Client(app_url, verbose=False, download_files=False)
    yield client
    client.close()


def _open(page, panel: str) -> None:
    open_tab(page, TAB)
    page.get_by_role("tab", name=panel, exact=True).click()


def _set_number(page, elem_id: str, value) -> None:
    box = page.locator(f"#{elem_id} input[type=number]").first
    box.fill(str(value))
    box.press("Tab")


def _done(page, elem_id: str, pattern: str) -> None:
    expect(page.locator(f"#{elem_id}")).to_contain_text(re.compile(pattern), timeout=TIMEOUT_S * 1000)


DONE = {  # a panel's status line once its answer is there
    "pretrain-transfer-status": "s of fine-tuning",
    "pretrain-habit-status": "on its own text went",
    "pretrain-memory-status": "gives back whole|No code comes back",
}


def test_transfer_curve_follows_each_run_and_the_visitors_own_model(page, own_client):
    _open(page, "Fine-tune: legal text")
    first, largest = panels.TRANSFER_STEPS
    for i, steps in enumerate([first, largest]):
        _set_number(page, "pretrain-transfer-steps", steps)
        page.locator("#pretrain-transfer-run").click()
        out = own_client.predict(panels.NO_GUESS, steps, api_name="/pretrain_transfer")
        expect_points(page, "pretrain-transfer-curve", out[0], **CURVE, timeout_s=TIMEOUT_S,
                      what=f"after run {i + 1} ({steps} steps)")
        _done(page, "pretrain-transfer-status", "Before any fine-tuning")
        expect(page.locator("#pretrain-transfer-status")).to_contain_text("the tab's default one")
    screenshot(page, "pretrain-transfer-default-parent")
    # The settings change: the visitor trains a text model of their own (seed 1); the next
    # fine-tuning starts from it (the API's session does the same, so both compare one parent).
    page.get_by_role("tab", name="Text: predict the next byte", exact=True).click()
    _set_number(page, "pretrain-text-seed", 1)
    page.locator("#pretrain-text-train").click()
    trained = page.get_by_text(re.compile(r"Trained \d+ steps|Replayed from the cache"))
    expect(trained.first).to_be_visible(timeout=TIMEOUT_S * 1000)
    own_client.predict(tab.DEFAULT_TEXT_SIZE, tab.TEXT_STEPS[0], 1, tab.DEFAULT_PROMPT, api_name="/pretrain_text")
    page.get_by_role("tab", name="Fine-tune: legal text", exact=True).click()
    page.locator("#pretrain-transfer-run").click()
    out = own_client.predict(panels.NO_GUESS, largest, api_name="/pretrain_transfer")
    assert "**yours**" in out[2]
    expect_points(page, "pretrain-transfer-curve", out[0], **CURVE, timeout_s=TIMEOUT_S,
                  what="from the visitor's own model")
    _done(page, "pretrain-transfer-status", "is yours")
    expect(page.locator("#pretrain-transfer-samples")).to_contain_text(ft.LEGAL_PROMPT.strip())
    screenshot(page, "pretrain-transfer-own-parent")


def test_habit_bars_follow_each_strength(page, own_client):
    _open(page, "Inherited habits")
    strengths = list(panels.STRENGTHS)
    for i, strength in enumerate([strengths[0], strengths[2], strengths[1]]):
        page.locator("#pretrain-habit-strength").get_by_label(strength, exact=True).check()
        page.locator("#pretrain-habit-run").click()
        bars, gains, _ = own_client.predict(panels.NO_GUESS, strength, api_name="/pretrain_homogenize")
        what = f"after run {i + 1} ({strength})"
        expect_bars(page, "pretrain-habit-bars", plot_frame(bars, "model", "probability", "continuation"), **HABIT,
                    timeout_s=TIMEOUT_S, what=what)
        expect_bars(page, "pretrain-habit-gain-bars", plot_frame(gains, "child", "gain"), **GAIN, what=what)
        # Each bar in its continuation's colour (a chart first drawn without both would draw them without a fill)
        fills = page.evaluate("""() =>
            [...document.querySelectorAll('#pretrain-habit-bars path[aria-roledescription="bar"]')]
            .map(b => [(b.getAttribute('aria-label').match(/continuation: (\\w+)/) || [])[1],
                       getComputedStyle(b).fill])""")
        wanted = {word: tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))
                  for word, colour in panels.HABIT_COLORS.items()}
        assert fills and all(fill == "rgb({}, {}, {})".format(*wanted[word]) for word, fill in fills), fills
        if i == 0:
            screenshot(page, "pretrain-habit")


def test_memory_bars_follow_each_line_and_run(page, own_client):
    _open(page, "Memorized secrets")
    page.locator("#pretrain-memory-run").click()
    for i, copies in enumerate(["256", "16", "64"]):
        if i == 1:  # another line: its characters, from the answer already computed
            page.locator("#pretrain-memory-copies").get_by_label(copies, exact=True).check()
        elif i == 2:  # a run with another line chosen and a guess
            page.locator("#pretrain-memory-copies").get_by_label(copies, exact=True).check()
            page.locator("#pretrain-memory-guess").get_by_label("64 copies", exact=True).check()
            page.locator("#pretrain-memory-run").click()
        verbatim, chars, detail, _ = own_client.predict("64 copies", copies, api_name="/pretrain_memorize")
        what = f"for k = {copies}"
        expect_bars(page, "pretrain-memory-verbatim-bars", plot_frame(verbatim, "copies", "characters"), **VERBATIM,
                    timeout_s=TIMEOUT_S, what=what)
        expect_bars(page, "pretrain-memory-char-bars", plot_frame(chars, "character", "probability"), **CHARS,
                    what=what)
        name = next(s.name for s in ft.SECRETS if str(s.copies) == copies)
        expect(page.locator("#pretrain-memory-detail")).to_contain_text(name)
    _done(page, "pretrain-memory-status", "Your guess")
    screenshot(page, "pretrain-memory")


def _phone_tab(page, name: str) -> None:
    """A tab of the pre-train tab, on a screen too narrow for all of them (the rest are behind "More tabs")."""
    tab_button = page.locator("#pretrain-tabs").get_by_role("tab", name=name, exact=True)
    if not tab_button.is_visible():
        page.locator("#pretrain-tabs").get_by_role("button", name="More tabs").first.click()
        tab_button = page.locator("#pretrain-tabs .overflow-dropdown button", has_text=name).first
    tab_button.click()


def test_the_panels_on_a_phone(browser, app_url):
    """390×844: the controls stack above the chart; after a click the chart comes into view."""
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        page.goto(f"{app_url}?tab=pretrain")
        page.wait_for_selector("#pretrain-tabs", timeout=30_000)
        for spec in panels.PANEL_SCREENS:
            _phone_tab(page, spec["tab"])
            page.locator(f"#{spec['button']}").click()
            _done(page, spec["status"], DONE[spec["status"]])
            page.wait_for_timeout(1500)
            box = page.evaluate(
                "(id) => { const r = document.getElementById(id).getBoundingClientRect(); return [r.top, r.bottom, "
                "innerHeight]; }",
                spec["result"],
            )
            assert box[0] < box[2] and box[1] > 0, f"{spec['result']} is not on screen after the click: {box}"
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"phone-{spec['button']}.png"), full_page=True)
    finally:
        context.close()
