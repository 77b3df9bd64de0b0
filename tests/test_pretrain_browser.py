"""Tab 6 in a real browser: train the text default and watch the drawn curve grow while it
trains, the checkpoint samples change, then the digits (with a drawn digit) and the scale plot."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from demos import pretrain as tab
from tests.conftest import open_tab, screenshot

pytestmark = pytest.mark.browser
TAB = "6 · Pre-train it yourself"
TRAIN_TIMEOUT_MS = 180_000

# The training-loss points the first loss chart has drawn: vega gives each point an aria-label
# "step: 12; loss (nats): 3.41; series: training loss".
_DRAWN_STEPS = """(index) => {
  const charts = [...document.querySelectorAll('.vega-embed')].filter(e => e.offsetParent !== null);
  const chart = charts[index];
  if (!chart) return [];
  return [...chart.querySelectorAll('[aria-roledescription="point"]')]
    .map(p => p.getAttribute('aria-label') || '')
    .filter(l => l.includes('training loss'))
    .map(l => Number(/step: ([0-9.]+)/.exec(l)[1]));
}"""


def _status_done(page) -> bool:
    return page.get_by_text(re.compile(r"Trained \d+ steps|Replayed from the cache")).first.is_visible()


def test_text_curve_grows_while_training_and_samples_change(page):
    tab.STORE.clear()  # the app runs in this process: start from an empty cache, so it really trains
    open_tab(page, TAB)
    page.get_by_role("button", name="▶ Train").first.click()

    seen_lengths: list[int] = []
    while not _status_done(page):
        drawn = page.evaluate(_DRAWN_STEPS, 0)
        if drawn and (not seen_lengths or len(drawn) != seen_lengths[-1]):
            seen_lengths.append(len(drawn))
        page.wait_for_timeout(150)
        assert len(seen_lengths) < 10_000
    final = page.evaluate(_DRAWN_STEPS, 0)
    # Drawn in at least three states before the end: the curve grew during training, not at once.
    assert len(seen_lengths) >= 3 and seen_lengths == sorted(seen_lengths), seen_lengths
    assert seen_lengths[0] < len(final) and max(final) == tab.TEXT_STEPS[0]

    samples = page.get_by_text("Continuations of").locator("..")
    text = samples.inner_text()
    first = re.search(r"step 0 \(held-out loss [\d.]+\): (.*)", text).group(1)
    last = re.search(rf"step {tab.TEXT_STEPS[0]} \(held-out loss [\d.]+\): (.*)", text).group(1)
    assert first != last
    screenshot(page, "pretrain-text")

    # Asking with another prompt redraws the next-byte bars for it (the chart follows the click).
    bars_before = page.evaluate("() => [...document.querySelectorAll('[aria-roledescription=\"bar\"]')].map(b => b.getAttribute('aria-label')).join('|')")
    page.get_by_label("Prompt (samples and next-byte bars)").fill("x = 1 +")
    page.get_by_role("button", name="Ask again with this prompt").click()
    page.wait_for_function(
        "(before) => [...document.querySelectorAll('[aria-roledescription=\"bar\"]')].map(b => b.getAttribute('aria-label')).join('|') !== before",
        arg=bars_before, timeout=60_000,
    )
    expect(page.get_by_text("Continuations of").first).to_contain_text("x = 1")


def test_digits_train_then_complete_a_drawn_digit(page):
    open_tab(page, TAB)
    page.get_by_role("tab", name="Pictures: fill the hidden half").click()
    page.get_by_role("button", name="▶ Train").filter(visible=True).click()
    expect(page.get_by_text(re.compile(r"Trained \d+ steps|Replayed from the cache")).filter(visible=True).first).to_be_visible(timeout=TRAIN_TIMEOUT_MS)
    expect(page.get_by_text(re.compile(r"step 0: error on hidden pixels")).first).to_be_attached()

    page.get_by_role("button", name="Brush", exact=True).click()  # the sketchpad starts with no tool
    canvas = page.locator("canvas").filter(visible=True).first
    box = canvas.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x, box["y"] + box["height"] * 0.8, steps=12)  # a "1"
    page.mouse.up()
    page.get_by_role("button", name="Hide part of my digit and ask the model").click()
    expect(page.get_by_text(re.compile(r"the model's completion after \d+ steps"))).to_be_visible(timeout=60_000)
    screenshot(page, "pretrain-digits")


def test_scale_plots_four_sizes(page):
    open_tab(page, TAB)
    page.get_by_role("tab", name="Scale: four sizes, same steps").click()
    page.get_by_role("button", name="▶ Train").filter(visible=True).click()
    expect(page.get_by_text(re.compile(r"Trained 4 sizes"))).to_be_visible(timeout=TRAIN_TIMEOUT_MS)
    legend = page.evaluate(
        "() => [...document.querySelectorAll('.vega-embed')].filter(e => e.offsetParent !== null)"
        ".map(e => (e.querySelector('[aria-roledescription=\"legend\"]') || {}).getAttribute?.('aria-label') || '')"
    )
    assert any("4 values" in label for label in legend), legend
    screenshot(page, "pretrain-scale")
