"""The next-word and prompting tabs in a real browser with the text server selected
(GALLERY_TEXT_SERVER: llama.cpp's `llama-server` on loopback serving the bundled SmolLM2): the page
names the server and its model, draws the in-process engine's bars within 1e-3, extends the text,
runs the strategies; then the server dies and the page says so while the tab goes on in-process."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from demos.next_word import distribution as NWD
from demos.prompting import prompts as PP, run as PR
from gallery import catalog, models, text_server
from gallery.text_engine import LlamaCppEngine
from tests.support import llama_server
from tests.support.browser_charts import expect_bars
from tests.support.pages import open_tab, screenshot, take_error_toasts

pytestmark = [pytest.mark.browser, pytest.mark.real_weights]

ENTRY = catalog.EMBEDDED_LM
FILE_NAME = catalog.bundled_file(ENTRY).file_name
TEXT = "The capital of France is"


@pytest.fixture(scope="module")
def served(app_url):
    """The launched gallery's text tabs on a llama-server of this module's own (killed by the
    last test), and back in-process afterwards."""
    reason = llama_server.missing_reason()
    if reason:
        pytest.fail(reason)
    server = llama_server.LlamaServer(parallel=8, ctx=8192)
    line = text_server.start(url=server.url, model=FILE_NAME)
    assert "on the text server" in line, line
    yield server
    text_server.start(url="")
    server.stop()


@pytest.fixture(scope="module")
def reference():
    """The in-process engine, fresh: what the bars must equal."""
    lm, tokenizer = models.load_causal_lm(ENTRY)
    engine = LlamaCppEngine(catalog.gguf_file(ENTRY), n_ctx=2048, n_seq=4)
    yield lm, tokenizer, engine
    engine.close()


def _choose(page, label: str, option: str, within=None) -> None:
    (within or page).get_by_label(label, exact=True).click()
    page.get_by_role("option", name=option, exact=True).click()


def test_next_word_on_the_text_server(served, reference, page):
    lm, tokenizer, engine = reference
    expected = NWD.next_token_distribution(lm, tokenizer, TEXT, engine=engine)
    open_tab(page, "1 · Next word")
    _choose(page, "Model", ENTRY.label)
    page.get_by_label("Text so far").fill(TEXT)
    page.get_by_label("Your guess for the next word").fill("Paris")
    page.get_by_role("button", name="Reveal the next word", exact=True).click()

    note = page.locator("#next-word-note")
    expect(note).to_contain_text(f"llama.cpp server at 127.0.0.1:{served.port}, serving {FILE_NAME}",
                                 timeout=60_000)
    expect(note).to_contain_text(f"The text server sends its top {text_server.TOP_N} next tokens")
    expect_bars(page, "next-word-model-bars", list(zip(expected.tokens, expected.model_probs)),
                x="token", y="probability", tolerance=1e-3, what="(the server's bars against in-process)")
    said = re.compile(r"Your word ␣Paris is one token\. The model gives it \*?\*?76\.\d\d%")
    expect(page.get_by_text(said)).to_be_visible()
    expect(page.get_by_text("🎯 the model's top choice")).to_be_visible()

    prompt = page.get_by_label("Text so far")
    page.get_by_role("button", name=re.compile(r"^\+ ␣Paris")).click()
    expect(prompt).to_have_value(TEXT + " Paris", timeout=30_000)
    page.get_by_role("button", name="Generate N tokens", exact=True).click()
    expect(page.get_by_text(re.compile(r"Added \d+ tokens? by sampling .* \(llama\.cpp server at"))).to_be_visible(
        timeout=60_000)
    screenshot(page, "next-word-text-server")


def test_prompting_on_the_text_server(served, reference, page):
    lm, tokenizer, engine = reference
    problem_set = PP.problem_sets()["Capital cities"]
    problem = problem_set.items[0]
    strategies = [PP.ZERO_SHOT, PP.COT]
    local = list(PR.compare_strategies(lm, tokenizer, problem.question, problem.answer, problem.kind, strategies,
                                       problem_set, PP.RunSettings(), engine=engine))[-1]
    open_tab(page, "5 · Prompting strategies")
    _choose(page, "Model", ENTRY.label, within=page.locator("#prompting-model"))
    _choose(page, "Problem set", problem_set.name)
    expect(page.get_by_label("Question", exact=True)).to_have_value(problem.question)
    boxes = page.locator("#prompting-strategies")
    for name in PP.STRATEGIES:
        if name not in strategies:
            boxes.get_by_label(name, exact=True).uncheck()
    page.get_by_role("button", name="Run the strategies", exact=True).click()
    summary = page.locator("#prompting-summary")
    expect(summary).to_contain_text(f"Run by the llama.cpp server at 127.0.0.1:{served.port}", timeout=60_000)
    for result in local:  # greedy: the server's answers are the in-process engine's
        slug = result.strategy.replace(" ", "-")
        header = page.locator(f"#prompting-header-{slug}")
        expect(header).to_contain_text(f"Answer: {result.answer}", timeout=60_000)
    screenshot(page, "prompting-text-server")


def test_when_the_server_dies_the_page_says_so_and_goes_on_in_process(served, page):
    served.kill()
    open_tab(page, "1 · Next word")
    _choose(page, "Model", ENTRY.label)
    page.get_by_label("Text so far").fill("The cat sat on the")
    page.get_by_role("button", name="Reveal the next word", exact=True).click()
    note = page.locator("#next-word-note")
    # The first request after the death meets it: a plain sentence in an error toast (read and
    # cleared here; the page fixture fails on any other); the next click runs in-process.
    page.wait_for_function("() => (window.__errorToasts || []).length > 0 || "
                           "document.querySelector('#next-word-note')?.innerText.includes('not answering')",
                           timeout=60_000)
    toasts = take_error_toasts(page)
    assert all("failed during this request" in t for t in toasts), toasts
    if toasts:
        page.get_by_role("button", name="Reveal the next word", exact=True).click()
    expect(note).to_contain_text(f"The text server at 127.0.0.1:{served.port} is not answering", timeout=60_000)
    expect(note).to_contain_text("llama.cpp, ")  # the in-process engine answered
    screenshot(page, "next-word-text-server-down")
