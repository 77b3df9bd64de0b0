"""A real browser on the inpainting tab: an example photo with a preset mask, random patches,
then a mask drawn with the brush."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from demos.inpainting import masks as IM
from tests.support.pages import open_tab, screenshot, take_error_toasts

pytestmark = pytest.mark.browser

PANELS = ["original", "masked", "telea", "mae", "mae-pasted", "diffusion"]


def _run_and_expect_panels(page, hidden_text: str) -> None:
    notes = page.locator("#inpaint-notes")
    page.evaluate("() => { window.__lastNotes = document.querySelector('#inpaint-notes').innerText; }")
    page.get_by_role("button", name="Hide and guess", exact=True).click()
    # A new result replaces the notes: wait for that before reading them.
    page.wait_for_function(
        "() => document.querySelector('#inpaint-notes').innerText !== window.__lastNotes", timeout=60_000
    )
    # The notes gain the diffusion line only when the last panel is ready.
    expect(notes).to_contain_text("Diffusion: seed", timeout=60_000)
    expect(notes).to_contain_text(hidden_text, timeout=60_000)  # a busy machine: the run may still be going
    for panel in PANELS:
        expect(page.locator(f"#inpaint-{panel} img")).to_be_visible(timeout=10_000)


def _wait_for_the_example_photo(page) -> None:
    """The photo reaches the editor a moment after the radio (slowly on a loaded machine): ask
    until the tab stops answering "give a photo first" (that toast is expected while it loads)."""
    notes = page.locator("#inpaint-notes")
    for _ in range(30):
        page.get_by_role("button", name="Hide and guess", exact=True).click()
        expect(notes).not_to_have_text(re.compile(r"^\s*$"), timeout=60_000)
        page.wait_for_timeout(300)
        toasts = take_error_toasts(page)
        if not any("photo first" in t for t in toasts):
            assert not toasts, toasts
            return
        page.wait_for_timeout(1000)
    raise AssertionError("the example photo never reached the editor")


def test_preset_random_and_drawn_masks_on_an_example_photo(page):
    open_tab(page, "Fill the gap")
    # The first example is the astronaut with "Bottom half"; clicking it fills photo and mask.
    examples = page.locator(".gallery-item, tr.tr-body, button.gallery-item").filter(has_text="Bottom half")
    examples.first.click()
    expect(page.get_by_label(IM.BOTTOM, exact=True)).to_be_checked()
    _wait_for_the_example_photo(page)
    _run_and_expect_panels(page, "8 of 16 patches (50%)")  # tiny MAE: 4×4 patches, bottom 2 rows
    screenshot(page, "inpainting-bottom-half")

    page.get_by_label(IM.RANDOM, exact=True).check()
    slider = page.get_by_label("Share of patches hidden").first
    expect(slider).to_be_visible()
    _run_and_expect_panels(page, "12 of 16 patches (75%)")
    assert re.search(r"seed 0", page.locator("#inpaint-notes").inner_text())
    screenshot(page, "inpainting-random-patches")

    # Draw by hand: pick the brush and scribble densely over the middle of the canvas, where the
    # photo is shown. The tiny test MAE sees 4×4 patches, so the central ones end up hidden.
    page.get_by_label(IM.DRAWN, exact=True).check()
    page.get_by_role("button", name="Brush", exact=True).click()
    box = page.locator("canvas").first.bounding_box()
    cx, cy, reach = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, box["height"] * 0.3
    page.mouse.move(cx - reach, cy - reach)
    page.mouse.down()
    for i in range(8):  # a zigzag; each move redraws the canvas, slow in headless Chromium
        page.mouse.move(cx + reach if i % 2 == 0 else cx - reach, cy - reach + (i + 1) * reach / 4, steps=2)
    page.mouse.up()
    _run_and_expect_panels(page, "snapped to the patch grid")
    expect(page.locator("#inpaint-notes")).to_contain_text("4 of 16 patches")  # the central 2×2
    screenshot(page, "inpainting-drawn")


def test_an_example_shows_its_answer_without_a_click_on_the_button(page):
    open_tab(page, "Fill the gap")
    page.locator(".gallery-item, tr.tr-body, button.gallery-item").filter(has_text="Centre").first.click()
    expect(page.get_by_label(IM.CENTRE, exact=True)).to_be_checked()
    expect(page.locator("#inpaint-notes")).to_contain_text("Diffusion: seed", timeout=60_000)
    for panel in PANELS:
        expect(page.locator(f"#inpaint-{panel} img")).to_be_visible(timeout=10_000)
    screenshot(page, "inpainting-example")
