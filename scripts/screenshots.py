"""Take the README's screenshots: the gallery as an attendee sees it at 1280×800 and on a phone
(390×844), offline, with the bundled models (real weights), and a presenter's room. Run from the
repository root: `python scripts/screenshots.py` (`--only pretrain`: the pre-train tab and its
panels after pre-training, nothing else). Writes small PNGs into docs/screenshots/."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OUT = ROOT / "docs" / "screenshots"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _save(page, name: str) -> None:
    from PIL import Image

    path = OUT / f"{name}.png"
    page.screenshot(path=str(path))
    Image.open(path).convert("RGB").quantize(colors=128).save(path, optimize=True)  # small PNGs
    print(path, path.stat().st_size // 1024, "KB")


def _save_full(page, name: str) -> None:
    from PIL import Image

    path = OUT / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    Image.open(path).convert("RGB").quantize(colors=128).save(path, optimize=True)
    print(path, path.stat().st_size // 1024, "KB")


def pretrain_panels(page) -> None:
    """The panels after pre-training, each after its default click (the default text model is
    trained by then; the planted parent trains in the first panel that needs it)."""
    for tab_name, button, done, name in [
        ("Fine-tune: legal text", "#pretrain-transfer-run", "s of fine-tuning", "pretrain-transfer"),
        ("Memorized secrets", "#pretrain-memory-run", "gives back whole|No code comes back", "pretrain-memory"),
        ("Inherited habits", "#pretrain-habit-run", "on its own text went", "pretrain-habits"),
    ]:
        page.get_by_role("tab", name=tab_name, exact=True).click()
        page.locator(button).click()
        status = button.replace("-run", "-status")
        page.wait_for_function(
            "([id, pattern]) => new RegExp(pattern).test((document.querySelector(id) || {}).innerText || '')",
            arg=[status, done], timeout=900_000,
        )
        page.wait_for_timeout(2000)
        _save_full(page, name)


def pretrain_trained(page, url: str) -> None:
    """The pre-train tab after its default text model is trained from random weights, then its
    fine-tuning panels."""
    page.goto(f"{url}?tab=pretrain")
    page.locator("#pretrain-text-train").click(timeout=30_000)
    trained = page.get_by_text("Trained 350 steps").or_(page.get_by_text("Replayed from the cache"))
    trained.first.wait_for(timeout=600_000)
    page.wait_for_timeout(1500)
    _save_full(page, "pretrain-trained")
    pretrain_panels(page)


def main(only: str = "all") -> None:
    from playwright.sync_api import sync_playwright

    import app as gallery_app
    from gallery import server

    OUT.mkdir(parents=True, exist_ok=True)
    blocks = gallery_app.build_app()
    _, url, _ = server.launch(blocks, server_port=_free_port(), prevent_thread_lock=True, quiet=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                    args=["--no-sandbox", "--disable-dev-shm-usage"])
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        if only == "pretrain":
            pretrain_trained(page, url)
            browser.close()
            blocks.close()
            return
        page.goto(url)
        page.wait_for_selector("#next-word-model-bars .vega-embed svg", timeout=120_000)  # opens alive
        page.wait_for_timeout(1500)
        _save(page, "next-word-on-open")
        page.locator("#next-word-prompt textarea").fill("The opposite of hot is")
        page.locator("#next-word-guess textarea, #next-word-guess input").first.fill("cold")
        page.locator("#next-word-reveal").click()
        page.wait_for_function(
            "() => document.querySelector('#next-word-model-bars')?.innerHTML.includes('cold')", timeout=120_000
        )
        page.wait_for_timeout(2000)
        _save(page, "next-word-after-a-click")
        for tab_id in ("clip", "prompting"):
            page.goto(f"{url}?tab={tab_id}")
            page.wait_for_timeout(4000)
            if tab_id == "prompting":  # it opens with every strategy's answer to the default question
                page.wait_for_function("() => (document.querySelector('#prompting-header-self-consistency')"
                                       "?.innerText || '').includes('Answer:')", timeout=300_000)
                page.wait_for_timeout(1000)
            _save(page, f"{tab_id}-first-screen")
        # A phone: the first screen as it opens, then after a Reveal (the bars brought into view).
        phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True).new_page()
        phone.goto(url)
        phone.wait_for_selector("#next-word-note p", timeout=120_000)
        phone.wait_for_timeout(1500)
        _save(phone, "phone-next-word-on-open")
        phone.locator("#next-word-prompt textarea").fill("The cat sat on the")
        phone.locator("#next-word-guess textarea, #next-word-guess input").first.fill("mat")
        phone.locator("#next-word-reveal").click()
        phone.wait_for_function(  # the opening's bars (Paris first) replaced by this text's
            "() => { const h = document.querySelector('#next-word-model-bars')?.innerHTML || '';"
            " return h.includes('aria-roledescription=\"bar\"') && !h.includes('Paris'); }", timeout=120_000
        )
        phone.wait_for_timeout(2000)
        _save(phone, "phone-next-word-after-a-click")
        # The presenter's room: the code and the QR code for the projector.
        page.goto(url)
        page.wait_for_selector("button[role=tab]")
        page.get_by_text("🏫 Workshop room").click()
        page.get_by_role("button", name="Open a new room (presenter)").click()
        page.locator("#room-projector .room-code").wait_for(timeout=30_000)
        page.locator("#room-projector").scroll_into_view_if_needed()
        page.wait_for_timeout(500)
        _save(page, "room-projector")
        pretrain_trained(page, url)
        browser.close()
    blocks.close()


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=["all", "pretrain"], default="all")
    main(parser.parse_args().only)
