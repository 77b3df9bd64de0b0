"""A room at once, measured: a freshly started gallery (offline, bundled models), then N browser
pages opened within a second of each other (half 1280×800, half 390×844), each pressing Reveal
once with a text of its own. Printed: time to the opening bars and to each Reveal's bars (p50 /
p95), lost clicks, empty or wrong charts, and the same for one page alone in the same run.

    python -m benchmarks.classroom                 # 30 pages
    python -m benchmarks.classroom --visitors 12

Times come from each page's own clock (performance.now(), from its navigation): when the page,
drawn, asked for its opening answer (this is the browser's work: N pages on this machine's cores,
not N attendees' own phones), how long that answer took to come back, and the Reveal time from
the click to its answer. A chart
counts as right only when what vega drew (each bar's aria-label, read after scrolling it into
view) equals the API's answer for that page's text.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from playwright.sync_api import sync_playwright

from tests.support.browser_charts import bar_problems, plot_frame, read_chart
from tests.support.classroom import Classroom, fresh_gallery

BARS = "next-word-model-bars"
SHOWN = ("token", "probability")
OPENING_PROMPT = "The capital of France is"
WORDS = ["city", "river", "song", "garden", "teacher", "planet", "window", "letter", "train", "island"]


def _texts(n: int) -> list[str]:
    return [f"My favourite {WORDS[i % len(WORDS)]} number {i} is" for i in range(n)]


def _p(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))] if values else float("nan")


def _drawn_right(page, expected) -> bool:
    page.locator(f"#{BARS}").scroll_into_view_if_needed()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if not bar_problems(read_chart(page, BARS, *SHOWN), expected, "desc", 1e-4):
            return True
        page.wait_for_timeout(200)
    return False


def measure(browser, url: str, api, n: int) -> dict:
    """Open n pages at once, read each one's opening, then each presses Reveal once."""
    room = Classroom(browser, url, n)
    opening_expected = plot_frame(api.predict(OPENING_PROMPT, None, 1, 0, 1, api_name="/next_word_bars")[0], *SHOWN)
    opening_expected = list(zip(opening_expected[SHOWN[0]].astype(str), opening_expected[SHOWN[1]].astype(float)))
    texts = _texts(n)
    result = {"opening_s": [], "page_s": [], "reveal_s": [], "lost": 0, "wrong_opening": 0, "wrong_reveal": 0}
    try:
        spread = room.open(timeout_s=600)
        for visitor in room.visitors:
            visitor.wait_for_event("next_word_opening", timeout_s=600)
            visitor.settle(timeout_s=600)
            [event] = visitor.events("next_word_opening") or [None]
            if event is None or event["state"] != "ok":
                result["wrong_opening"] += 1
                note = f"{visitor}: opening events {visitor.events('next_word_opening')}"
                result.setdefault("notes", []).append(note)
                continue
            result["opening_s"].append((event["answered"] - event["sent"]) / 1000)  # asked -> answered
            result["page_s"].append(event["sent"] / 1000)  # navigation -> the page asks (browser-bound)
            if not _drawn_right(visitor.page, opening_expected):
                result["wrong_opening"] += 1
                drawn = read_chart(visitor.page, BARS, *SHOWN)
                result.setdefault("notes", []).append(f"{visitor}: opening drawn {drawn.bars[:3]}")
        for visitor, text in zip(room.visitors, texts):  # everyone presses Reveal, one after another
            visitor.page.locator("#next-word-prompt textarea").fill(text)
            visitor.page.locator("#next-word-reveal").click()
        for visitor, text in zip(room.visitors, texts):
            visitor.settle(timeout_s=600)
            events = visitor.events("next_word_bars")
            answered = [e for e in events if e["state"] == "ok"]
            if len(answered) != 1:
                result["lost"] += 1
                continue
            result["reveal_s"].append((answered[0]["answered"] - answered[0]["sent"]) / 1000)
            expected = plot_frame(api.predict(text, None, 1, 0, 1, api_name="/next_word_bars")[0], *SHOWN)
            want = list(zip(expected[SHOWN[0]].astype(str), expected[SHOWN[1]].astype(float)))
            if not _drawn_right(visitor.page, want):
                result["wrong_reveal"] += 1
        result["spread_s"] = spread
        result["errors"] = room.errors()
    finally:
        room.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--visitors", type=int, default=30)
    args = parser.parse_args()
    from gradio_client import Client

    with fresh_gallery("bench-classroom") as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True,
            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--disable-background-networking"],
        )
        api = Client(url, verbose=False, download_files=False, httpx_kwargs={"timeout": 600})
        started = time.monotonic()
        crowd = measure(browser, url, api, args.visitors)  # the room arrives just after the start
        crowd_s = time.monotonic() - started
        alone = measure(browser, url, api, 1)  # then one more page, alone, in the same run
        browser.close()
    load = os.getloadavg()
    print(f"\nA room at once: {args.visitors} pages (half 1280x800, half 390x844) asked for within "
          f"{crowd['spread_s']:.2f} s of a fresh start; whole room {crowd_s:.0f} s; load average {load[0]:.1f}")
    print("| | pages | page drawn, asks for its opening (s, p50 / p95) | opening answer after it asked | "
          "Reveal's bars after the click | lost clicks | wrong or empty charts |")
    print("|---|---|---|---|---|---|---|")
    for name, r, n in (("the room", crowd, args.visitors), ("one page alone, after", alone, 1)):
        print(f"| {name} | {n} | {_p(r['page_s'], .5):.1f} / {_p(r['page_s'], .95):.1f} | "
              f"{_p(r['opening_s'], .5):.2f} / {_p(r['opening_s'], .95):.2f} | "
              f"{_p(r['reveal_s'], .5):.2f} / {_p(r['reveal_s'], .95):.2f} | {r['lost']} | "
              f"{r['wrong_opening']} opening, {r['wrong_reveal']} Reveal |")
    if crowd["reveal_s"] and alone["reveal_s"]:
        ratio = statistics.median(crowd["reveal_s"]) / statistics.median(alone["reveal_s"])
        print(f"Reveal p50, room / alone: {ratio:.1f}x")
    for note in crowd.get("notes", []) + alone.get("notes", []):
        print("  ", note)
    if crowd["errors"] or alone["errors"]:
        print("page errors:", crowd["errors"] + alone["errors"])


if __name__ == "__main__":
    main()
