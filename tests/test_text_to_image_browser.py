"""A real browser generates on the text-to-image tab (tiny model) and watches the step strip fill."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from demos.text_to_image import pictures as PIC, steps as TS
from tests.support.pages import open_tab, screenshot

pytestmark = pytest.mark.browser

TAB = "4 · Text to image"


def tab(page):
    """This tab's content only (other tabs have their own "Seed" or "Steps")."""
    return page.locator("#text-to-image")


def set_slider(page, label: str, value: int) -> None:
    box = tab(page).get_by_label(f"number input for {label}", exact=True)
    box.fill(str(value))
    box.press("Enter")


def test_the_step_strip_fills_as_the_picture_is_made(page, monkeypatch):
    # Slow each preview down (same process as the launched app) so the page can be seen filling.
    plain_decode = TS.decode_latents

    def slow_decode(pipe, latents):
        time.sleep(0.8)
        return plain_decode(pipe, latents)

    monkeypatch.setattr(TS, "decode_latents", slow_decode)
    open_tab(page, TAB)
    tab(page).get_by_label("Prompt", exact=True).fill("a red apple on a wooden table")
    set_slider(page, "Steps", 4)
    set_slider(page, "Width", 64)
    set_slider(page, "Height", 64)
    tab(page).get_by_role("button", name="Generate", exact=True).click()

    captions = tab(page).locator(".caption-label")
    seen: list[int] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        count = captions.count()
        if not seen or seen[-1] != count:
            seen.append(count)
        if tab(page).get_by_text("step 4/4 (final)").is_visible():
            break
        page.wait_for_timeout(100)
    expect(tab(page).get_by_text("step 4/4 (final)")).to_be_visible()
    assert captions.all_inner_texts() == ["step 1/4", "step 2/4", "step 3/4", "step 4/4 (final)"]
    # The strip grew while the picture was being made, not all at once at the end (polling may
    # miss the last preview, which the final picture follows closely).
    growing = [n for n in seen if 0 < n < 4]
    assert len(growing) >= 2 and growing == sorted(growing) and growing[0] == 1, seen

    # "Randomize" was on: the seed box now holds the seed that was used, also named in the status.
    seed = tab(page).get_by_label("Seed", exact=True).input_value()
    assert seed not in ("", "0")
    expect(tab(page).get_by_text(f"Seed {seed}", exact=False).first).to_be_visible()
    # The safety check says what it found, also when it found nothing.
    expect(tab(page).get_by_text(re.compile(r"Safety check passed|safety check flagged")).first).to_be_visible()
    # While a new seed is drawn each click the box cannot be typed in; turning that off frees it.
    seed_box = tab(page).get_by_label("Seed", exact=True)
    expect(seed_box).to_be_disabled()
    tab(page).get_by_label("Randomize seed", exact=True).uncheck()
    expect(seed_box).to_be_editable()
    screenshot(page, "text_to_image-strip")


def test_compare_shows_two_pictures_from_one_seed(page):
    open_tab(page, TAB)
    set_slider(page, "Width", 64)
    set_slider(page, "Height", 64)
    tab(page).get_by_label("Left prompt", exact=True).fill("a castle on a hill, oil painting")
    tab(page).get_by_label("Right prompt", exact=True).fill("a castle on a hill, pencil sketch")
    negative = tab(page).get_by_label("Negative prompt", exact=True)
    expect(negative).to_be_disabled()  # guidance is off by default: a negative prompt does nothing
    set_slider(page, "Guidance scale", 2)
    expect(negative).to_be_editable()
    set_slider(page, "Guidance scale", 0)
    tab(page).get_by_role("button", name="Compare", exact=True).click()
    expect(tab(page).get_by_text("Right: Seed")).to_be_visible(timeout=30_000)
    seed = tab(page).get_by_label("Seed", exact=True).input_value()
    expect(tab(page).get_by_text(f"Left: Seed {seed}")).to_be_visible()
    expect(tab(page).get_by_text(f"Right: Seed {seed}")).to_be_visible()
    for side in ("Left", "Right"):
        picture = tab(page).get_by_test_id("block-label").filter(has_text=side).locator("xpath=..").locator("img")
        expect(picture.first).to_be_visible()
    screenshot(page, "text_to_image-compare")


def test_an_example_shows_its_picture_and_a_second_click_is_served_from_memory(page, monkeypatch):
    calls: list[str] = []
    plain = PIC.on_generate

    def counting(model_label, prompt, *args, **kwargs):
        calls.append(prompt)
        yield from plain(model_label, prompt, *args, **kwargs)

    monkeypatch.setattr(PIC, "on_generate", counting)
    open_tab(page, TAB)
    status = tab(page).get_by_text(re.compile(r"Seed 0 · \d+ step"))
    first, second = PIC.EXAMPLES[0][0], PIC.EXAMPLES[1][0]
    for prompt in (first, second):  # one click on an example: no Generate needed
        tab(page).get_by_text(prompt, exact=True).first.click()
        expect(tab(page).get_by_label("Prompt", exact=True)).to_have_value(prompt)
        expect(tab(page).locator("#t2i-image img")).to_be_visible(timeout=60_000)
        expect(status.first).to_be_visible(timeout=60_000)
        page.wait_for_timeout(500)
    made = len(calls)
    assert set(calls) <= {first, second}
    tab(page).get_by_text(first, exact=True).first.click()  # again: kept, nothing is generated
    expect(tab(page).get_by_label("Prompt", exact=True)).to_have_value(first)
    expect(status.first).to_be_visible(timeout=30_000)
    page.wait_for_timeout(1500)
    assert len(calls) == made, f"the repeated example was generated again: {calls}"
    screenshot(page, "text_to_image-example")
