"""A real browser walks through every tab of the launched gallery (tiny models, 127.0.0.1)."""

from __future__ import annotations

import pytest

import app as gallery_app
from tests.support.pages import screenshot

pytestmark = pytest.mark.browser


def test_every_tab_renders_without_errors(page):
    for title, module_name in gallery_app.DEMOS:
        page.get_by_role("tab", name=title).click()
        page.wait_for_timeout(300)
        # A tab that failed to build shows this banner instead of its demo.
        assert not page.get_by_text("This demo could not start").is_visible(), module_name
        screenshot(page, "tab-" + module_name.split(".")[-1])
