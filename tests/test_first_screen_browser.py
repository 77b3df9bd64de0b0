"""Every tab works on a laptop screen (1280×800, the `page` fixture's viewport) without scrolling:
its main inputs and main button sit in the first screen, the lesson is a short summary with the
full text folded away, and after a click the main result is on screen (the page brings it into
view if it has to).

Data-driven over `app.DEMOS`: each demo module declares `FIRST_SCREEN`, a dict of `elem_id`s —
    "inputs": the main inputs, "button": the main button, "result": the main result (what changes
    after the click; a chart, an image, a text) —
so a new tab is covered as soon as it is listed in `app.DEMOS` (and fails until it declares them).
"""

from __future__ import annotations

import importlib

import pytest

import app as gallery_app
from tests.support.pages import ARTIFACTS, VIEWPORT, open_tab

pytestmark = pytest.mark.browser

BOX_JS = """(id) => {
  const el = document.getElementById(id);
  if (!el) return null;
  const r = el.getBoundingClientRect();
  return {top: r.top, bottom: r.bottom, height: r.height, visible: !!(el.offsetWidth || el.offsetHeight)};
}"""


def _box(page, elem_id):
    return page.evaluate(BOX_JS, elem_id)


def _on_first_screen(box) -> bool:
    return box is not None and box["visible"] and box["top"] >= 0 and box["bottom"] <= VIEWPORT["height"]


def _result_on_screen(box) -> bool:
    """At least 150 px of the result (or all of it, if it is smaller) is inside the window."""
    if box is None or not box["visible"]:
        return False
    shown = min(box["bottom"], VIEWPORT["height"]) - max(box["top"], 0)
    return shown >= min(150, box["height"] - 1)


@pytest.mark.parametrize("title, module_name", gallery_app.DEMOS, ids=[m for _, m in gallery_app.DEMOS])
def test_first_screen(page, title, module_name):
    module = importlib.import_module(module_name)
    spec = getattr(module, "FIRST_SCREEN", None)
    assert spec, f"{module_name} must declare FIRST_SCREEN = {{'inputs': [...], 'button': ..., 'result': ...}}"
    open_tab(page, title)
    page.evaluate("() => window.scrollTo(0, 0)")
    page.wait_for_timeout(500)

    # The lesson: a summary of at most three lines above the demo; the full text folded away.
    name = module_name.split(".")[-1]
    summary = _box(page, f"{name}-lesson-summary")
    assert _on_first_screen(summary), f"{name}: the lesson summary (ui.lesson) is not on the first screen"
    assert summary["height"] <= 3 * 26 + 20, f"{name}: the lesson summary is longer than three lines"
    assert page.locator(f"#{name}-lesson").count() == 1, f"{name}: no folded full lesson"
    assert not page.locator(f"#{name}-lesson-text").is_visible(), f"{name}: the full lesson is open"
    for elem_id in [*spec["inputs"], spec["button"]]:
        box = _box(page, elem_id)
        assert _on_first_screen(box), f"{module_name}: #{elem_id} is not in the first screen: {box}"

    shown_js = """([id, h]) => {
          const el = document.getElementById(id);
          if (!el || !(el.offsetWidth || el.offsetHeight)) return false;
          const r = el.getBoundingClientRect();
          const shown = Math.min(r.bottom, h) - Math.max(r.top, 0);
          return shown >= Math.min(150, r.height - 1);
        }"""
    # One click, answered: the first click after the page opened must never be lost.
    page.locator(f"#{spec['button']}").click()
    page.wait_for_function(shown_js, arg=[spec["result"], VIEWPORT["height"]], timeout=40_000)
    page.wait_for_timeout(1500)  # let the result arrive before the picture
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"first-screen-{name}.png"))  # the window only, as seen


# A tab may hold more panels, each on a tab of its own (`PANEL_SCREENS`, each like FIRST_SCREEN plus
# the title of its tab): after opening it, its inputs and button are on the first screen too, and
# its result comes into view after a click.
PANELS = [
    (title, module_name, spec)
    for title, module_name in gallery_app.DEMOS
    for spec in getattr(importlib.import_module(module_name), "PANEL_SCREENS", [])
]


@pytest.mark.parametrize("title, module_name, spec", PANELS, ids=[s["button"] for _, _, s in PANELS])
def test_panel_first_screen(page, title, module_name, spec):
    open_tab(page, title)
    page.get_by_role("tab", name=spec["tab"], exact=True).click()
    page.evaluate("() => window.scrollTo(0, 0)")
    page.wait_for_timeout(500)
    for elem_id in [*spec["inputs"], spec["button"]]:
        box = _box(page, elem_id)
        assert _on_first_screen(box), f"{spec['tab']}: #{elem_id} is not in the first screen: {box}"
    page.locator(f"#{spec['button']}").click()
    page.wait_for_function(
        """([id, h]) => {
          const el = document.getElementById(id);
          if (!el || !(el.offsetWidth || el.offsetHeight) || !el.querySelector('.vega-embed svg')) return false;
          const r = el.getBoundingClientRect();
          return Math.min(r.bottom, h) - Math.max(r.top, 0) >= Math.min(150, r.height - 1);
        }""",
        arg=[spec["result"], VIEWPORT["height"]], timeout=120_000,
    )
    page.wait_for_timeout(1500)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"first-screen-{spec['button']}.png"))
