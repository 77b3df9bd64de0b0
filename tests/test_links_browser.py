"""Links in a real browser: `?tab=<module name>` (or `#<module name>`) opens that tab, and the
share button writes a link that opens the same tab with the same main inputs."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import expect

import app as gallery_app
from demos import next_word
from tests.support.browser_charts import expect_bars, plot_frame
from tests.support.pages import open_tab

pytestmark = pytest.mark.browser


def _selected_tab(page) -> str:
    return page.locator("button[role=tab][aria-selected=true]").first.inner_text()


@pytest.mark.parametrize("how", ["query", "hash"])
def test_a_link_opens_its_tab(page, app_url, how):
    for title, module_name in gallery_app.DEMOS[::-1]:  # the last tab first: not the default one
        tab_id = module_name.split(".")[-1]
        if how == "query":
            page.goto(f"{app_url}/?tab={tab_id}")
        else:  # a new visit with '#<tab>', then '#<other tab>' followed on the open page
            page.goto("about:blank")
            page.goto(f"{app_url}/#{tab_id}")
            expect(page.locator("button[role=tab][aria-selected=true]").first).to_have_text(title, timeout=20_000)
            title, tab_id = gallery_app.DEMOS[1][0], gallery_app.DEMOS[1][1].split(".")[-1]
            page.evaluate(f"() => {{ window.location.hash = {tab_id!r}; }}")
        expect(page.locator("button[role=tab][aria-selected=true]").first).to_have_text(title, timeout=20_000)
        if how == "hash":
            break  # one is enough: the same code path


def test_share_link_restores_tab_and_inputs(page, app_url, client):
    open_tab(page, "5 · Prompting strategies")
    page.locator("#prompting-question textarea").fill("What is 7 + 5?")
    page.get_by_role("button", name="🔗 Share this tab").click()
    link = page.locator("#gallery-link textarea, #gallery-link input").first
    expect(link).to_have_value(re.compile(r"tab=prompting"), timeout=10_000)
    query = parse_qs(urlparse(link.input_value()).query)
    assert query["tab"] == ["prompting"] and query["question"] == ["What is 7 + 5?"]

    open_tab(page, "1 · Next word")
    page.locator("#next-word-prompt textarea").fill("The opposite of hot is")
    page.locator("#next-word-guess textarea, #next-word-guess input").first.fill("cold")
    page.get_by_role("button", name="🔗 Share this tab").click()
    expect(link).to_have_value(re.compile(r"tab=next_word"), timeout=10_000)
    url = link.input_value()

    fresh = page.context.new_page()
    fresh.goto(url)
    expect(fresh.locator("button[role=tab][aria-selected=true]").first).to_have_text("1 · Next word", timeout=20_000)
    expect(fresh.locator("#next-word-prompt textarea")).to_have_value("The opposite of hot is")
    expect(fresh.locator("#next-word-guess textarea, #next-word-guess input").first).to_have_value("cold")
    # The bars that open with the link are the linked text's, not the default prompt's.
    model = next_word.catalog.available(next_word.ROLE)[0].label
    out = client.predict("The opposite of hot is", model, 1.0, 0, 1.0, api_name="/next_word_bars")
    expect_bars(fresh, "next-word-model-bars", plot_frame(out[0], "token", "probability"),
                x="token", y="probability", what="after opening a shared link")
    fresh.close()


@pytest.mark.parametrize("how", ["query", "hash"])
def test_a_link_to_a_renamed_tab_still_opens_it(page, app_url, how):
    """Links handed out before the CLIP tab's id became `clip` (`?tab=clip_classify`) still open it."""
    clip_title = next(title for title, module in gallery_app.DEMOS if module == "demos.clip")
    page.goto(f"{app_url}/?tab=clip_classify" if how == "query" else f"{app_url}/#clip_classify")
    expect(page.locator("button[role=tab][aria-selected=true]").first).to_have_text(clip_title, timeout=20_000)
