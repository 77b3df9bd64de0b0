"""What the browser tests share: the window size, where screenshots go, error toasts recorded as
they appear, and opening a tab by its title. (The `page` fixture that opens the launched gallery
is in tests/conftest.py.)"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
ASSET_IMAGES = ROOT / "assets" / "images"
VIEWPORT = {"width": 1280, "height": 800}  # a laptop screen: what the workshop's attendees have

# Error toasts vanish after a few seconds, so a MutationObserver records every one as it appears.
RECORD_ERROR_TOASTS = """
window.__errorToasts = [];
new MutationObserver(() => {
  document.querySelectorAll('.toast-body.error').forEach((el) => {
    if (!el.dataset.seen) { el.dataset.seen = '1'; window.__errorToasts.push(el.innerText); }
  });
}).observe(document, {subtree: true, childList: true});
"""


def take_error_toasts(pg) -> list[str]:
    """The error toasts shown so far (and forget them)."""
    return pg.evaluate("() => { const t = window.__errorToasts || []; window.__errorToasts = []; return t; }")


def screenshot(pg, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    pg.screenshot(path=str(path), full_page=True)
    return path


def open_tab(pg, tab_id_title: str) -> None:
    """Click a tab by (part of) its title; inactive tabs are not rendered until clicked."""
    pg.get_by_role("tab", name=tab_id_title).click()
