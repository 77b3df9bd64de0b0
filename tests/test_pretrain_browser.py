"""Tab 6 in a real browser: train the text default and watch the drawn curve grow while it
trains, the checkpoint samples change, then the digits (with a drawn digit) and the scale plot."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from demos import pretrain as tab
from demos.pretrain import runs as RUNS
from tests.support.browser_charts import expect_bars, expect_points, plot_frame
from tests.support.pages import open_tab, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.serial]  # timing: polls a page while it works
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
    RUNS.STORE.clear()  # the app runs in this process: start from an empty cache, so it really trains
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
    assert seen_lengths[0] < len(final) and max(final) == RUNS.TEXT_STEPS[0]

    samples = page.get_by_text("Continuations of").locator("..")
    text = samples.inner_text()
    first = re.search(r"step 0 \(held-out loss [\d.]+\): (.*)", text).group(1)
    last = re.search(rf"step {RUNS.TEXT_STEPS[0]} \(held-out loss [\d.]+\): (.*)", text).group(1)
    assert first != last
    screenshot(page, "pretrain-text")

    # Asking with another prompt redraws the next-byte bars for it (the chart follows the click).
    bars_before = page.evaluate(
        "() => [...document.querySelectorAll('[aria-roledescription=\"bar\"]')].map(b => b.getAttribute('aria-label'))"
        ".join('|')")
    page.get_by_label("Prompt (samples and next-byte bars)").fill("x = 1 +")
    page.get_by_role("button", name="Ask again with this prompt").click()
    page.wait_for_function(
        "(before) => [...document.querySelectorAll('[aria-roledescription=\"bar\"]')]"
        ".map(b => b.getAttribute('aria-label')).join('|') !== before",
        arg=bars_before, timeout=60_000,
    )
    expect(page.get_by_text("Continuations of").first).to_contain_text("x = 1")


def test_digits_train_then_complete_a_drawn_digit(page):
    open_tab(page, TAB)
    page.get_by_role("tab", name="Pictures: fill the hidden half").click()
    page.get_by_role("button", name="▶ Train").filter(visible=True).click()
    trained = page.get_by_text(re.compile(r"Trained \d+ steps|Replayed from the cache")).filter(visible=True)
    expect(trained.first).to_be_visible(timeout=TRAIN_TIMEOUT_MS)
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


# --- every chart of the tab follows every run (the check tests/test_charts_browser.py asks for) ----
# Two runs with different seeds, then a settings change (more steps): after each, the points drawn
# equal those the API returns for the same inputs (a replay from the cache: training is seeded).
CURVE = dict(x="step", y="loss", colour="series", titles=("step", "loss (nats)", "series"))
BYTES = dict(x="next byte", y="probability")
RUN_TIMEOUT_S = 180


def _set_number(page, elem_id: str, value) -> None:
    box = page.locator(f"#{elem_id} input[type=number]").first
    box.fill(str(value))
    box.press("Tab")


def _runs(steps: int) -> list[tuple[int, int]]:
    return [(0, steps), (1, steps), (1, steps + 10)]  # (seed, steps): two requests, then a setting


def test_text_charts_follow_each_run_and_checkpoint(page, client):
    open_tab(page, TAB)
    for i, (seed, steps) in enumerate(_runs(RUNS.TEXT_STEPS[0])):
        _set_number(page, "pretrain-text-seed", seed)
        _set_number(page, "pretrain-text-steps", steps)
        page.locator("#pretrain-text-train").click()
        out = client.predict(RUNS.DEFAULT_TEXT_SIZE, steps, seed, RUNS.DEFAULT_PROMPT, api_name="/pretrain_text")
        what = f"after run {i + 1} (seed {seed}, {steps} steps)"
        expect_points(page, "pretrain-curve", out[0], **CURVE, timeout_s=RUN_TIMEOUT_S, what=what)
        expect_bars(page, "pretrain-byte-bars", plot_frame(out[2], **BYTES), **BYTES, what=what)
        if i == 1:
            screenshot(page, "charts-pretrain-text-2nd-run")
    # Another checkpoint, then another prompt: the bars are that checkpoint's, for that prompt.
    page.locator("#pretrain-text-step").get_by_label("0", exact=True).check()
    out = client.predict(RUNS.DEFAULT_PROMPT, 0, api_name="/pretrain_ask_text")
    expect_bars(page, "pretrain-byte-bars", plot_frame(out[1], **BYTES), **BYTES, what="at checkpoint 0")
    page.get_by_label("Prompt (samples and next-byte bars)").fill("def f(x):")
    page.get_by_role("button", name="Ask again with this prompt").click()
    out = client.predict("def f(x):", 0, api_name="/pretrain_ask_text")
    expect_bars(page, "pretrain-byte-bars", plot_frame(out[1], **BYTES), **BYTES, what="for another prompt")


def test_digit_curve_follows_each_run(page, client):
    open_tab(page, TAB)
    page.get_by_role("tab", name="Pictures: fill the hidden half").click()
    for i, (seed, steps) in enumerate(_runs(RUNS.IMAGE_STEPS[0])):
        _set_number(page, "pretrain-image-seed", seed)
        _set_number(page, "pretrain-image-steps", steps)
        page.locator("#pretrain-image-train").click()
        out = client.predict(steps, seed, "bottom half", api_name="/pretrain_image")
        expect_points(page, "pretrain-image-curve", out[0], **CURVE, timeout_s=RUN_TIMEOUT_S,
                      what=f"after run {i + 1} (seed {seed}, {steps} steps)")


def test_scale_charts_follow_each_run(page, client):
    open_tab(page, TAB)
    page.get_by_role("tab", name="Scale: four sizes, same steps").click()
    charts = {  # elem_id -> (x, y, colour, titles), as built in demos/pretrain/__init__.py
        "pretrain-scale-curves": ("log10_flops", "log10_loss", "model",
                                  (tab.FLOPS_TITLE, "log₁₀ training loss", "model")),
        "pretrain-scale-params": ("log10_params", "held_out_loss", "model",
                                  ("log₁₀ parameters (outside the embedding)", "held-out loss", "model")),
        "pretrain-scale-compute": ("log10_flops", "held_out_loss", "model",
                                   (tab.FLOPS_TITLE, "held-out loss", "model")),
    }
    for i, (seed, steps) in enumerate(_runs(RUNS.SCALE_STEPS[0])):
        _set_number(page, "pretrain-scale-seed", seed)
        _set_number(page, "pretrain-scale-steps", steps)
        page.locator("#pretrain-scale-train").click()
        out = client.predict(steps, seed, api_name="/pretrain_scale")
        for index, (elem_id, (x, y, colour, titles)) in enumerate(charts.items()):
            expect_points(page, elem_id, out[index], x=x, y=y, colour=colour, titles=titles,
                          timeout_s=RUN_TIMEOUT_S, what=f"after run {i + 1} (seed {seed}, {steps} steps)")
        if i == 1:
            screenshot(page, "charts-pretrain-scale-2nd-run")
