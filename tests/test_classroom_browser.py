"""A room at once (tests/support/classroom.py): one freshly started gallery on the bundled models,
N browser contexts opening it within a second of each other, half at 1280×800 and half at
390×844. Every page, not only the first, must open alive and answer each of its own clicks once,
with its own answer, on its first screen.

Two kinds of visitor, both sizes of each:
- *readers* wait for the opening answer, check it, then Reveal two texts of their own;
- *early clickers* type and press Reveal as soon as their page is drawn, while the opening
  answers may still be on their way: the answer to their click must stay, not be replaced by a
  late opening.
What each page draws is compared with the API's answer to the same request (vega's aria-label on
every bar, read after the chart is scrolled into view, since vega draws a chart only once it has
been on screen); where the result sits on the first screen is checked separately.
"""

from __future__ import annotations

import os

import pytest

from demos import next_word, prompting
from demos.prompting import compare
from tests.support.browser_charts import expect_bars, plot_frame
from tests.support.classroom import Classroom, fresh_gallery, open_tab

pytestmark = [pytest.mark.browser, pytest.mark.serial]  # timing: polls a page while it works

VISITORS = int(os.environ.get("GALLERY_CLASS_SIZE", "6"))  # CI: 6; `benchmarks/classroom.py` opens 30
EARLY = {2, 3}  # early clickers (one laptop, one phone); everyone else reads the opening first
# Different texts per visitor (two each), whose next-word bars differ from one another's.
TEXTS = [
    ("The capital of Italy is", "Rome"), ("My favourite colour is", "blue"), ("The cat sat on the", "mat"),
    ("Once upon a time, there was a", "king"), ("The opposite of hot is", "cold"), ("2 + 2 =", "4"),
    ("The sun rises in the", "east"), ("I drink my coffee with", "milk"), ("The largest planet is", "Jupiter"),
    ("Water freezes at zero degrees", "Celsius"), ("She opened the door and", "saw"),
    ("def add(a, b):\n    return", "a"),
]
BARS = "next-word-model-bars"
SHOWN = ("token", "probability")


# Every opening answer the app hands out, and the test of this file that opens it on every page.
OPENINGS_CHECKED = {
    "next_word_opening": "test_every_page_opens_with_the_default_bars_and_no_answer_yet",
    "prompting_opening": "test_every_page_opens_prompting_with_the_same_answers",
}


def test_every_opening_answer_is_checked_on_every_page():
    """A tab that gains an opening answer (an `opening.connect`) must gain its class check here."""
    import app as gallery_app
    from gallery import gradio_compat

    built = gallery_app.build_app()
    openings = {
        f.api_name for f in gradio_compat.event_functions(built)
        if f.api_name and f.api_name.endswith("_opening") and f.api_visibility != "private"  # not its page-side draw
    }
    assert openings, "the app hands out no opening answer at all"
    unchecked, gone = openings - set(OPENINGS_CHECKED), set(OPENINGS_CHECKED) - openings
    assert not unchecked, f"opening answers without a class check: {sorted(unchecked)}"
    assert not gone, f"listed here but not in the app: {sorted(gone)}"
    for test in OPENINGS_CHECKED.values():
        assert callable(globals().get(test)), f"{test} is named here but not defined"


@pytest.fixture(scope="module")
def gallery():
    with fresh_gallery("classroom") as url:
        yield url


@pytest.fixture(scope="module")
def api(gallery):
    from gradio_client import Client

    client = Client(gallery, verbose=False, download_files=False, httpx_kwargs={"timeout": 600})
    yield client
    client.close()


def _bars_for(api, text: str):
    """The API's answer for `text` on the default model (the dropdown's first choice)."""
    model_bars, *_ = api.predict(text, None, 1, 0, 1, api_name="/next_word_bars")
    return plot_frame(model_bars, *SHOWN)


def _guess_for(api, text: str, word: str) -> tuple[str, str]:
    _, probability, rank, _ = api.predict(text, None, word, 1, 0, 1, api_name="/next_word_guess")
    return probability, rank


def _field(visitor, elem_id: str) -> str:
    return visitor.page.locator(f"#{elem_id} input, #{elem_id} textarea").first.input_value()


def _reveal(visitor, text: str, word: str) -> None:
    page = visitor.page
    page.locator("#next-word-prompt textarea").fill(text)
    page.locator("#next-word-guess input, #next-word-guess textarea").first.fill(word)
    page.locator("#next-word-reveal").click()


@pytest.fixture(scope="module")
def room(browser, gallery, api):
    """The class: every page asked for within a second; early clickers click at once."""
    classroom = Classroom(browser, gallery, VISITORS)
    spread = classroom.open()
    # Within a second on an idle machine (each page's navigation starts without waiting for the
    # server); a loaded CI machine may take longer for the browser to take each command.
    assert spread < 5.0, f"the pages were asked for {spread:.1f} s apart"
    for visitor in classroom.visitors:
        if visitor.number in EARLY:
            _reveal(visitor, *TEXTS[2 * visitor.number])
    yield classroom
    classroom.close()


def test_every_page_opens_with_the_default_bars_and_no_answer_yet(room, api):
    expected = _bars_for(api, next_word.DEFAULT_PROMPT)
    top = list(expected.sort_values(SHOWN[1], ascending=False)[SHOWN[0]])[: next_word.CANDIDATE_BUTTONS]
    for visitor in room.visitors:
        if visitor.number in EARLY:
            continue
        page = visitor.page
        visitor.wait_for_event("next_word_opening")
        visitor.settle()
        assert visitor.events("next_word_opening") and visitor.answers("next_word_opening") == 1, visitor
        page.evaluate("() => window.scrollTo(0, 0)")
        # Where the opening bars sit: on a laptop's first screen; on a phone the text, the guess
        # and Reveal come first, and the page is no wider than the phone.
        if visitor.size == "laptop":
            assert visitor.shows(BARS), f"{visitor}: the opening bars are below the first screen: {visitor.box(BARS)}"
        for elem_id in ("next-word-prompt", "next-word-guess", "next-word-reveal"):
            assert visitor.on_first_screen(elem_id), (
                f"{visitor}: #{elem_id} is not on the first screen: {visitor.box(elem_id)}")
        assert visitor.scroll_width() <= visitor.viewport["width"], f"{visitor}: the page scrolls sideways"
        visitor.screenshot("class-opening")
        page.locator(f"#{BARS}").scroll_into_view_if_needed()
        expect_bars(page, BARS, expected, x=SHOWN[0], y=SHOWN[1], what=f"{visitor}'s opening bars")
        chips = [page.locator(f"#next-word-candidate-{i + 1}").inner_text() for i in range(len(top))]
        shown = [c.rsplit(" (", 1)[0].strip().removeprefix("+ ") for c in chips]
        assert shown == top, f"{visitor}: candidate chips {chips}"
        assert _field(visitor, "next-word-guess-probability") == "—" and _field(visitor, "next-word-guess-rank") == "—"
    assert not room.errors()


def test_each_page_draws_its_own_reveals_once_on_its_first_screen(room, api):
    for round_ in range(2):
        for visitor in room.visitors:
            if round_ == 0 and visitor.number in EARLY:
                continue  # their first click was made as the page opened
            visitor.settle()
            _reveal(visitor, *TEXTS[2 * visitor.number + round_])
        for visitor in room.visitors:
            text, word = TEXTS[2 * visitor.number + round_]
            visitor.settle()
            assert visitor.answers("next_word_bars") == round_ + 1, (
                f"{visitor}: {visitor.events('next_word_bars')} for {round_ + 1} click(s)")
            assert visitor.shows(BARS), f"{visitor}: after Reveal the bars are not on screen: {visitor.box(BARS)}"
            expect_bars(visitor.page, BARS, _bars_for(api, text), x=SHOWN[0], y=SHOWN[1],
                        what=f"{visitor}'s Reveal {round_ + 1} ({text!r})")
            probability, rank = _guess_for(api, text, word)
            boxes = (_field(visitor, "next-word-guess-probability"), _field(visitor, "next-word-guess-rank"))
            assert boxes == (probability, rank)
            if round_ == 1:
                visitor.screenshot("class-second-reveal")
    # Every opening answer was delivered once or cancelled by the page's own click, never both.
    for visitor in room.visitors:
        states = [e["state"] for e in visitor.events("next_word_opening")]
        assert len(states) == 1 and states[0] in ("ok", "cancelled"), f"{visitor}: opening events {states}"
    assert not room.errors()


def test_every_page_opens_prompting_with_the_same_answers(room):
    """Every page opens the prompting tab with each strategy's answer to the default question:
    the same answers on every page (computed once), none empty."""
    for visitor in room.visitors:
        open_tab(visitor.page, "Prompting")
    shown = {}
    for visitor in room.visitors:
        visitor.wait_for_event("prompting_opening")
        visitor.settle()
        assert visitor.answers("prompting_opening") == 1, f"{visitor}: {visitor.events('prompting_opening')}"
        page = visitor.page
        shown[visitor.number] = [page.get_by_label(f"{strategy} output", exact=True).input_value()
                                 for strategy in prompting.STRATEGIES]
        assert all(shown[visitor.number]), f"{visitor}: an empty answer: {shown[visitor.number]}"
        visitor.screenshot("class-prompting-opening")
    first = shown[room.visitors[0].number]
    assert all(answers == first for answers in shown.values()), shown
    assert not room.errors()


QUESTIONS = [  # typed questions (not built in), two per visitor, each with its expected answer
    ("What is the French word for 'rain'?", "pluie"), ("What is the opposite of 'tall'?", "short"),
    ("What is the capital of Spain?", "Madrid"), ("What is the plural of 'mouse'?", "mice"),
    ("What is the French word for 'cat'?", "chat"), ("What is the opposite of 'early'?", "late"),
    ("What is the capital of Japan?", "Tokyo"), ("What is the past tense of 'run'?", "ran"),
    ("What is the French word for 'house'?", "maison"), ("What is the opposite of 'heavy'?", "light"),
    ("What is the capital of Canada?", "Ottawa"), ("What is the plural of 'child'?", "children"),
]
ZERO_SHOT = prompting.STRATEGIES[0]
CHAT_MODEL = "SmolLM2"  # the bundled chat model: its llama.cpp replies do not depend on the cache's history


def _run_own_question(visitor, question: str, expected: str) -> None:
    page = visitor.page
    page.locator("#prompting-question textarea").fill(question)
    page.get_by_label("Expected answer (optional)").fill(expected)
    page.locator("#prompting-run").click()


def test_each_page_runs_its_own_prompting_questions_once_on_its_first_screen(room, api):
    """Two typed questions per page (zero-shot only, on the chat model, to keep the room's queue
    short): each run is answered once, on the page's first screen, with its own question's reply."""
    first_set = next(iter(prompting.problem_sets().values()))
    settings = (prompting.DEFAULT_K, prompting.DEFAULT_SAMPLES, prompting.DEFAULT_TEMPERATURE,
                prompting.DEFAULT_SC_TEMPERATURE, prompting.DEFAULT_SEED, compare.default_new_tokens(first_set))
    label = None
    for visitor in room.visitors:
        page = visitor.page
        page.locator("#prompting-model input").click()
        option = page.get_by_role("option", name=CHAT_MODEL)
        label = option.first.inner_text().strip()
        option.first.click()
        for strategy in prompting.STRATEGIES[1:]:  # leave zero-shot alone
            page.locator("#prompting-strategies").get_by_label(strategy, exact=True).uncheck()
    for round_ in range(2):
        for visitor in room.visitors:
            visitor.settle()
            _run_own_question(visitor, *QUESTIONS[2 * visitor.number + round_])
        for visitor in room.visitors:
            question, expected = QUESTIONS[2 * visitor.number + round_]
            visitor.settle(timeout_s=180)
            assert visitor.answers("prompting_compare") == round_ + 1, (
                f"{visitor}: {visitor.events('prompting_compare')} for {round_ + 1} run(s)")
            assert visitor.shows("prompting-results"), f"{visitor}: the replies are not on screen"
            served = api.predict(label, question, expected, [ZERO_SHOT], prompting.NO_GUESS, *settings,
                                 first_set.name, api_name="/prompting_compare")
            page = visitor.page
            exact_prompt = page.locator(f"#prompting-prompt-{ZERO_SHOT.replace(' ', '-')}")
            if round_ == 0:
                exact_prompt.get_by_text("Exact prompt").click()  # the folded "Exact prompt" box
            assert question in exact_prompt.locator("textarea").input_value(), visitor
            assert page.get_by_label(f"{ZERO_SHOT} output", exact=True).input_value() == served[2], (
                f"{visitor}: {question!r} drew a reply that is not the API's")
            if round_ == 1:
                visitor.screenshot("class-prompting-second-run")
    assert not room.errors()
