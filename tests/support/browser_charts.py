"""What a gradio 6 bar chart has DRAWN in the browser, and a wait until it shows a given request.

gradio's BarPlot renders vega as SVG inside `.vega-embed`. Every bar is a
`<path aria-roledescription="bar" aria-label="token: ␣Paris; probability: 0.7725">`, and the x
axis carries `aria-label="X-axis titled 'token' for a discrete scale with 12 values: ␣Paris, …,
ending with ␣a"` (vega lists the first five values and the last one when there are more than
seven). These helpers read the bars, the axis's value count and its tick labels (in drawn order)
and compare them with the values of the same request, taken from somewhere else (the API, or a
table beside the chart): a chart that still shows an earlier request, or bars out of probability
order, fail the check.

Every chart of the app has an `elem_id`; `tests/test_charts_browser.py` drives each one through
two different requests and one settings change and calls `expect_bars` after each.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass

READ_CHART_JS = r"""
(id) => {
  const root = document.getElementById(id);
  if (!root) return {found: false, bars: [], axis: null};
  const svg = root.querySelector('.vega-embed svg');
  if (!svg) return {found: true, bars: [], axis: null};
  const bars = [...svg.querySelectorAll('path[aria-roledescription="bar"]')].map((el) => {
    const box = el.getBoundingClientRect();
    return {label: el.getAttribute('aria-label') || '', x: box.x + box.width / 2};
  });
  bars.sort((a, b) => a.x - b.x);  // left to right, as drawn
  const axis = svg.querySelector('g[aria-roledescription="axis"][aria-label^="X-axis"]');
  const ticks = axis ? [...axis.querySelectorAll('.role-axis-label text')].map((el) => {
    // A rotated label's box centre drifts with its length; its anchor (the translate in its
    // transform, all in one axis group) is where its tick is.
    const anchor = /translate\(\s*([-\d.e]+)/.exec(el.getAttribute('transform') || '');
    const box = el.getBoundingClientRect();
    return {text: el.textContent, x: anchor ? parseFloat(anchor[1]) : box.x + box.width / 2};
  }) : [];
  ticks.sort((a, b) => a.x - b.x);
  return {found: true, bars: bars.map((b) => b.label), axis: axis ? axis.getAttribute('aria-label') : null,
          ticks: ticks.map((t) => t.text)};
}
"""


@dataclass
class Drawn:
    """A chart as drawn: its bars left to right, and the x axis's list of values."""

    found: bool
    bars: list[tuple[str, float]]  # (x value, y value), left to right
    axis_values: list[str]  # from the axis aria-label (vega shortens long lists: see axis_complete)
    axis_count: int  # how many values the axis says it has
    axis_complete: bool  # False when vega wrote "…, ending with <last>"
    ticks: list[str]  # the x axis's tick labels as drawn, left to right (long ones end in "…")


def _parse_bar(label: str, x: str, y: str, colour: str | None = None) -> tuple[str, float]:
    # "token: ␣Paris; probability: 0.7725" -> ("␣Paris", 0.7725); the x value may itself hold "; ".
    # With a colour field, a stacked bar: "model: parent; probability: 0.07; continuation: she"
    # -> ("parent · she", 0.07).
    if colour:
        label, marker, series = label.rpartition(f"; {colour}: ")
        if not marker:
            return label, math.nan
        name, value = _parse_bar(label, x, y)
        return f"{name} · {series}", value
    prefix, separator = f"{x}: ", f"; {y}: "
    if not label.startswith(prefix) or separator not in label:
        return label, math.nan
    head, _, value = label[len(prefix):].rpartition(separator)
    try:
        return head, float(value.replace(",", "").replace("\u2212", "-"))  # vega writes a real minus sign
    except ValueError:
        return head, math.nan


def _parse_axis(label: str | None) -> tuple[list[str], int, bool]:
    if not label:
        return [], 0, False
    match = re.search(r"with (\d+) values?: (.*)$", label, re.S)
    if not match:
        return [], 0, False
    count, listed = int(match.group(1)), match.group(2)
    head, ending, last = listed.partition(", ending with ")
    values = head.split(", ") + ([last] if ending else [])
    return values, count, not ending


def _same_label(tick: str, value: str) -> bool:
    """vega shortens a long tick label with a trailing '…'."""
    return tick == value or (tick.endswith("…") and value.startswith(tick[:-1]))


def read_chart(page, elem_id: str, x: str, y: str, colour: str | None = None) -> Drawn:
    raw = page.evaluate(READ_CHART_JS, elem_id)
    values, count, complete = _parse_axis(raw["axis"])
    bars = [_parse_bar(b, x, y, colour) for b in raw["bars"]]
    return Drawn(raw["found"], bars, values, count, complete, raw.get("ticks", []))


def bar_problems(drawn: Drawn, expected: list[tuple[str, float]], order: str, tolerance: float,
              stacked: bool = False) -> list[str]:
    """What differs between the chart and the expectation ([] when it matches). `stacked`: the
    bars' names are "x · colour", several to an x value; the axis and the order are the x values'."""
    if not drawn.found:
        return ["the chart is not on the page"]
    if not drawn.bars:
        return ["no bars are drawn"]
    problems = []
    want = dict(expected)
    got = dict(drawn.bars)
    if sorted(got) != sorted(want):
        problems.append(f"bars {sorted(got)} != expected {sorted(want)}")
    else:
        wrong = [f"{k}: {got[k]} (expected {want[k]:.6g})" for k in want if not abs(got[k] - want[k]) <= tolerance]
        if wrong:
            problems.append("values differ: " + "; ".join(wrong))
    shown = list(dict.fromkeys(k.split(" · ")[0] for k, _ in drawn.bars)) if stacked else [k for k, _ in drawn.bars]
    if order == "desc":
        heights = [v for _, v in drawn.bars]
        if any(b > a + tolerance for a, b in zip(heights, heights[1:])):
            problems.append(f"bars are not in probability order (left to right: {drawn.bars})")
    elif order == "given" and shown != (
            want_order := list(dict.fromkeys(k.split(" · ")[0] if stacked else k for k, _ in expected))):
        problems.append(f"bar order {shown} != expected {want_order}")
    # The x axis must say as many values as there are bars, and its tick labels must run in the
    # bars' order. (Its aria-label's value list is not compared: vega leaves it as it was when
    # only the order of the same values changes, while the ticks and bars are redrawn.)
    if drawn.axis_count != len(shown):
        problems.append(f"the x axis says {drawn.axis_count} values, {len(shown)} bars are drawn")
    elif len(drawn.ticks) != len(shown) or not all(map(_same_label, drawn.ticks, shown)):
        problems.append(f"x axis ticks {drawn.ticks} != bars {shown}")
    return problems


def expect_bars(
    page, elem_id: str, expected, *, x: str, y: str, order: str = "desc", tolerance: float = 1e-4,
    timeout_s: float = 20.0, what: str = "", colour: str | None = None,
) -> Drawn:
    """Wait until the chart `#elem_id` draws exactly `expected` ([(x value, y value)] or a
    DataFrame with columns x, y), and its bars run in `order` ("desc": highest first, as a
    probability chart should; "given": the expected order; None: any). Fails with what is drawn.
    A chart whose bars are stacked by a `colour` field takes a DataFrame with that column too;
    each bar is then named "x · colour" (and `order` is about the x values)."""
    if hasattr(expected, "itertuples"):
        names = expected[x].astype(str)
        if colour:
            names = names + " · " + expected[colour].astype(str)
        expected = list(zip(names, expected[y].astype(float)))
    expected = [(str(k), float(v)) for k, v in expected]
    deadline = time.monotonic() + timeout_s
    while True:
        drawn = read_chart(page, elem_id, x, y, colour)
        problems = bar_problems(drawn, expected, order, tolerance, stacked=bool(colour))
        if not problems:
            return drawn
        if time.monotonic() > deadline:
            raise AssertionError(f"chart #{elem_id} {what}: " + " | ".join(problems) + f" | ticks {drawn.ticks}")
        page.wait_for_timeout(150)


def plot_frame(value, x: str, y: str, *more: str):
    """A BarPlot value as gradio_client returns it (PlotData dict, an update dict holding one, or
    a DataFrame) -> a DataFrame with columns x, y (and `more`, e.g. a colour column)."""
    import pandas as pd

    columns = [x, y, *more]
    if isinstance(value, dict) and value.get("__type__") == "update":
        value = value.get("value")
    if value is None:
        return pd.DataFrame({c: [] for c in columns})
    if isinstance(value, pd.DataFrame):
        return value[columns]
    frame = pd.DataFrame(value["data"], columns=value["columns"])
    return frame[columns]


# --- line and scatter charts: their points --------------------------------------------------------
# vega gives every drawn point an aria-label "<x title>: <x>; <y title>: <y>; <colour field>: <name>"
# (a LinePlot draws a point mark on each datum too). Rows with no values (a series' colour held in
# reserve) draw nothing.
READ_POINTS_JS = """
(id) => {
  const root = document.getElementById(id);
  if (!root) return null;
  return [...root.querySelectorAll('.vega-embed svg [aria-roledescription="point"]')]
    .map((el) => el.getAttribute('aria-label') || '');
}
"""


def _parse_point(label: str) -> dict[str, str]:
    fields = {}
    for part in label.split("; "):
        key, _, value = part.rpartition(": ")
        fields[key] = value
    return fields


def _number(text: str) -> float:
    try:
        return float(str(text).replace(",", "").replace("\u2212", "-"))
    except ValueError:
        return math.nan


def read_points(page, elem_id: str) -> list[dict[str, str]] | None:
    """The drawn points of chart `#elem_id`, each as {axis or legend title: shown value}."""
    labels = page.evaluate(READ_POINTS_JS, elem_id)
    return None if labels is None else [_parse_point(label) for label in labels]


def point_problems(drawn, expected, titles, tolerance) -> list[str]:
    if drawn is None:
        return ["the chart is not on the page"]
    x_title, y_title, colour_title = titles
    try:
        got = sorted((p[colour_title], _number(p[x_title]), _number(p[y_title])) for p in drawn)
    except KeyError as missing:
        return [f"a drawn point has no {missing} field: {drawn[:2]}"]
    want = sorted(expected)
    if len(got) != len(want):
        return [f"{len(got)} points drawn, {len(want)} expected"]
    close = lambda a, b: math.isclose(a, b, rel_tol=tolerance, abs_tol=tolerance)  # noqa: E731
    wrong = [f"{g} != {w}" for g, w in zip(got, want) if g[0] != w[0] or not close(g[1], w[1]) or not close(g[2], w[2])]
    if not wrong:
        return []
    return [f"{len(wrong)} of {len(want)} points differ, e.g. " + "; ".join(wrong[:3]) + f" (drawn: {drawn[:1]})"]


def expect_points(
    page, elem_id: str, value, *, x: str, y: str, colour: str, titles: tuple[str, str, str],
    tolerance: float = 0.006, timeout_s: float = 20.0, what: str = "",
) -> list[dict[str, str]]:
    """Wait until the line or scatter chart `#elem_id` draws exactly the points of `value` (the
    plot value the API returned for the same request, with columns x, y and colour; rows without
    values are left out, as vega draws nothing for them). `titles` are the chart's (x title,
    y title, colour field) as they appear in the points' aria-labels. Values match to `tolerance`
    (vega rounds what it shows)."""
    import pandas as pd

    if isinstance(value, dict) and value.get("__type__") == "update":
        value = value.get("value")
    frame = value if isinstance(value, pd.DataFrame) else pd.DataFrame(value["data"], columns=value["columns"])
    frame = frame[[x, y, colour]].dropna()
    expected = [(str(c), float(a), float(b)) for a, b, c in zip(frame[x], frame[y], frame[colour])]
    deadline = time.monotonic() + timeout_s
    while True:
        drawn = read_points(page, elem_id)
        problems = point_problems(drawn, expected, titles, tolerance)
        if not problems:
            return drawn
        if time.monotonic() > deadline:
            raise AssertionError(f"chart #{elem_id} {what}: " + " | ".join(problems))
        page.wait_for_timeout(150)
