"""CLIP tab in a real browser: zero-shot, few-shot and the bias probe, each from a ready example."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from gradio_client import handle_file

from demos import clip as cc

from demos.clip import model as CM, zero_shot as ZS
from tests.support.browser_charts import expect_bars, plot_frame
from tests.support.pages import open_tab, screenshot, take_error_toasts

pytestmark = pytest.mark.browser

TAB = "3 · CLIP zero- & few-shot"


def _open(page, sub_tab: str):
    open_tab(page, TAB)
    page.get_by_role("tab", name=sub_tab, exact=True).click()


def test_zero_shot_from_an_example(page):
    _open(page, "Zero-shot")
    page.get_by_text("cat, dog, fox, stuffed toy").first.click()  # fills picture, labels, template
    expect(page.get_by_label("Labels")).to_have_value("cat, dog, fox, stuffed toy")
    page.get_by_role("button", name="Classify", exact=True).click()
    expect(page.get_by_text("Softmax picks")).to_be_visible(timeout=30_000)
    # The softmax label bars and the cosine bar chart were drawn.
    expect(page.locator("[data-testid='label-output-value']")).to_be_visible()
    expect(page.locator("#clip-cosine-bars .vega-embed")).to_be_visible()
    page.get_by_text("Compare every template on this picture").click()
    page.get_by_role("button", name="Compare templates", exact=True).click()
    expect(page.get_by_text("a blurry photo of a {}.").last).to_be_visible(timeout=30_000)
    screenshot(page, "clip-zero-shot")


def test_zero_shot_without_a_picture_says_so(page):
    _open(page, "Zero-shot")
    page.locator("#clip-picture").get_by_role("button", name="Remove Image").click()  # the tab opens with a picture
    page.get_by_label("Labels").fill("cat, dog")
    page.get_by_role("button", name="Classify", exact=True).click()
    page.wait_for_function("() => (window.__errorToasts || []).length > 0", timeout=30_000)
    toasts = take_error_toasts(page)
    assert any("picture" in t for t in toasts), toasts


def test_few_shot_from_an_example_set(page):
    _open(page, "Few-shot")
    page.get_by_text("Made-up names").first.click()  # the first example set: dax / wug / blicket
    expect(page.get_by_label("Class 3 name")).to_have_value("blicket")
    page.get_by_role("button", name="Learn from the examples", exact=True).click()
    expect(page.get_by_text("Zero-shot (names only) picks")).to_be_visible(timeout=30_000)
    expect(page.get_by_text("of 12 were put in the right class")).to_be_visible()  # all 4 x 3 pictures arrived
    expect(page.get_by_text("difference (points)")).to_be_visible()
    screenshot(page, "clip-few-shot")


def test_bias_probe_from_an_example(page):
    _open(page, "Bias probe")
    page.get_by_text("kitty, fox, rabbit").first.click()
    expect(page.get_by_label("Wording B (same classes, same order)")).to_have_value("kitty, fox, rabbit")
    page.get_by_role("button", name="Compare wordings", exact=True).click()
    expect(page.get_by_text("shift (points)")).to_be_visible(timeout=30_000)
    screenshot(page, "clip-bias-probe")


def test_an_example_shows_its_answer_bars_included_without_a_click_on_classify(page, client):
    """An example's click shows its softmax and its cosine bars (kept after the first click), and
    the bars drawn are the ones the API gives for the example's picture, labels and template."""
    _open(page, "Zero-shot")
    model = cc.catalog.available(CM.ROLE)[0].label
    for path, labels, template in (ZS.EXAMPLES[1], ZS.EXAMPLES[0], ZS.EXAMPLES[1]):
        page.get_by_text(labels.replace("\n", ", ")).first.click()
        expect(page.get_by_label("Labels")).to_have_value(labels)
        out = client.predict(model, handle_file(path), labels, template, api_name="/clip_zero_shot")
        expect_bars(page, "clip-cosine-bars", plot_frame(out[1], "label", "cosine"), x="label", y="cosine",
                    timeout_s=30, what=f"after the example {labels!r}")
        top = max(out[0]["confidences"], key=lambda c: c["confidence"])["label"]
        expect(page.locator("#clip-softmax")).to_contain_text(top)
