"""A room at once: one freshly started gallery, and N independent browser contexts that open it
within a second of each other, half at a laptop's 1280×800 and half at a phone's 390×844.

What a workshop does in its first minute, and what a one-page test cannot see: the second and
thirtieth visitor, pages that arrive while the opening answers are still being worked out, clicks
made before those answers arrive. Each `Visitor` records every event its page sends and every
answer it gets (`page_events.js`), so a test can wait until a page has had all its answers
(`Visitor.settle`) and count how many times an endpoint answered it (`Visitor.answers`): a click
answered once, not lost and not answered twice.

`fresh_gallery()` starts `python app.py` in a process of its own, as an organiser does: offline,
on the bundled models (SmolLM2 for the next word, Gemma for prompting, on llama.cpp).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from tests.support.pages import RECORD_ERROR_TOASTS, take_error_toasts

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
RECORD_EVENTS_JS = (Path(__file__).with_name("page_events.js")).read_text(encoding="utf-8")
BOX_JS = """(id) => {
  const el = document.getElementById(id);
  if (!el || !(el.offsetWidth || el.offsetHeight)) return null;
  const r = el.getBoundingClientRect();
  return {top: r.top, bottom: r.bottom, left: r.left, right: r.right, height: r.height, width: r.width};
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def fresh_gallery(name: str = "classroom", env: dict[str, str] | None = None,
                  start_timeout_s: float = 180) -> Iterator[str]:
    """`python app.py`, started now in its own process (nothing worked out or loaded yet), offline
    on the bundled models; yields its address and stops it afterwards. Its log goes to
    artifacts/<name>-server.log."""
    port = free_port()
    child_env = {k: v for k, v in os.environ.items() if k != "GALLERY_TINY_MODELS"}  # the real bundled models
    child_env.update(
        HF_HUB_OFFLINE="1", GALLERY_HOST="127.0.0.1", GALLERY_PORT=str(port), GRADIO_ANALYTICS_ENABLED="False",
        GRADIO_TEMP_DIR=tempfile.mkdtemp(prefix="gallery-classroom-"), PYTHONUNBUFFERED="1",
    )
    child_env.update(env or {})
    ARTIFACTS.mkdir(exist_ok=True)
    log = open(ARTIFACTS / f"{name}-server.log", "w", encoding="utf-8")
    process = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=child_env, stdout=log,
                               stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_timeout_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the gallery stopped at start (exit {process.returncode}); see {log.name}")
            try:
                with urllib.request.urlopen(url, timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the gallery did not answer within {start_timeout_s:.0f} s; see {log.name}")
            time.sleep(0.25)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def open_tab(page, name: str) -> None:
    """Click the tab whose title holds `name`; on a phone gradio folds the tabs that do not fit
    into its "More tabs" (⋯) menu, so look there too."""
    tab = page.get_by_role("tab", name=name)
    if tab.count() and tab.first.is_visible():
        tab.first.click()
        return
    page.get_by_label("More tabs").click()
    page.locator(".overflow-dropdown button", has_text=name).first.click()


def endpoint_ids(url: str) -> dict[str, int]:
    """api_name -> the fn id a page sends for it (from the page's own config)."""
    with urllib.request.urlopen(f"{url}/config", timeout=30) as reply:
        config = json.load(reply)
    return {d["api_name"]: d["id"] for d in config["dependencies"] if d.get("api_name")}


@dataclass
class Visitor:
    """One attendee: a browser context of its own (no shared cookies or storage), one page."""

    number: int
    size: str  # "laptop" or "phone"
    context: object
    page: object
    ids: dict[str, int]
    opened_at: float = 0.0  # time.monotonic() when its page was asked for
    errors: list[str] = field(default_factory=list)

    @property
    def viewport(self) -> dict:
        return PHONE if self.size == "phone" else LAPTOP

    def __str__(self) -> str:
        return f"visitor {self.number} ({self.size})"

    def events(self, api_name: str) -> list[dict]:
        """Every event of this page for `api_name`, in the order sent: {state, sent, answered}
        (state: pending, ok, failed or cancelled; times in ms since the page opened)."""
        fn = self.ids[api_name]
        recorded = self.page.evaluate("() => Object.values(window.__gradioEvents || {})")
        return sorted((e for e in recorded if e["fn"] == fn), key=lambda e: e["sent"])

    def answers(self, api_name: str) -> int:
        """How many of this page's `api_name` events were answered (not cancelled, not failed)."""
        return sum(e["state"] == "ok" for e in self.events(api_name))

    def wait_for_event(self, api_name: str, timeout_s: float = 120) -> None:
        """Wait until this page has sent an `api_name` event (a page sends its load events a
        moment after it is drawn, later still on a busy machine)."""
        self.page.wait_for_function(
            "(fn) => Object.values(window.__gradioEvents || {}).some((e) => e.fn === fn)",
            arg=self.ids[api_name], timeout=timeout_s * 1000,
        )

    def settle(self, timeout_s: float = 120) -> None:
        """Wait until every event this page sent has its answer (or was cancelled), and the
        answer is drawn."""
        self.page.wait_for_function(
            "() => Object.values(window.__gradioEvents || {}).every((e) => e.state !== 'pending')",
            timeout=timeout_s * 1000,
        )
        # gradio applies an answer in the frames after it arrives
        self.page.evaluate("() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")
        self.page.wait_for_timeout(300)

    def box(self, elem_id: str) -> dict | None:
        return self.page.evaluate(BOX_JS, elem_id)

    def on_first_screen(self, elem_id: str) -> bool:
        """The element is wholly inside the window as the page opens (scrolled to the top)."""
        box = self.box(elem_id)
        height, width = self.viewport["height"], self.viewport["width"]
        return (box is not None and box["top"] >= 0 and box["bottom"] <= height
                and box["left"] >= 0 and box["right"] <= width + 1)

    def shows(self, elem_id: str, at_least_px: float = 150) -> bool:
        """At least `at_least_px` of the element (or all of it, if smaller) is inside the window."""
        box = self.box(elem_id)
        if box is None:
            return False
        shown = min(box["bottom"], self.viewport["height"]) - max(box["top"], 0)
        return shown >= min(at_least_px, box["height"] - 1)

    def scroll_width(self) -> int:
        return self.page.evaluate("() => document.documentElement.scrollWidth")

    def take_errors(self) -> list[str]:
        toasts = take_error_toasts(self.page)
        found, self.errors = self.errors + [f"error toast: {t}" for t in toasts], []
        return found

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}-{self.size}-{self.number}.png"
        self.page.screenshot(path=str(path))  # the window, as the attendee sees it
        return path


class Classroom:
    """N visitors on one gallery, sizes alternating laptop / phone, their pages asked for within
    a second of each other (`open`)."""

    def __init__(self, browser, url: str, n: int):
        self.url = url
        self.ids = endpoint_ids(url)
        self.visitors: list[Visitor] = []
        for number in range(n):
            size = "laptop" if number % 2 == 0 else "phone"
            phone = size == "phone"
            context = browser.new_context(viewport=PHONE if phone else LAPTOP, is_mobile=phone, has_touch=phone)
            page = context.new_page()
            page.add_init_script(RECORD_EVENTS_JS)
            page.add_init_script(RECORD_ERROR_TOASTS)
            visitor = Visitor(number, size, context, page, self.ids)
            page.on("pageerror", lambda exc, v=visitor: v.errors.append(f"page error: {exc}"))
            self.visitors.append(visitor)

    def open(self, query: str = "", timeout_s: float = 120) -> float:
        """Every page asks for the gallery at once (each navigation is started without waiting
        for the server's reply); then wait until each has drawn its tabs. -> the spread in
        seconds between the first and the last request."""
        for visitor in self.visitors:
            visitor.opened_at = time.monotonic()
            visitor.page.evaluate("(url) => { window.location.href = url; }", self.url + query)
        spread = self.visitors[-1].opened_at - self.visitors[0].opened_at
        for visitor in self.visitors:
            visitor.page.wait_for_selector("button[role=tab]", timeout=timeout_s * 1000)
        return spread

    def errors(self) -> list[str]:
        return [f"{v}: {e}" for v in self.visitors for e in v.take_errors()]

    def close(self) -> None:
        for visitor in self.visitors:
            with contextlib.suppress(Exception):
                visitor.context.close()
