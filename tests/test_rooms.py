"""Workshop rooms: the counting (pure, with an injected clock) and the app's room endpoints driven
by several API clients at once (each gradio_client is its own page session)."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from gallery import rooms
from gallery.room_ui import shown
from gallery.rooms import RoomError, Rooms


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


PROMPT = "The capital of France is"
STRATEGIES = ("zero-shot", "few-shot", "chain-of-thought")


# --- the counting ---------------------------------------------------------------------------------
def test_a_code_is_four_letters_and_a_link_or_lower_case_works():
    r = Rooms()
    code, key = r.open()
    assert re.fullmatch(r"[A-HJ-NP-Z]{4}", code) and len(key) >= 12
    assert r.join(code.lower()) == code
    assert r.join(f"  https://x.example/?tab=1&room={code.lower()}  ") == code
    for bad in ("", "ABC", "ABCDE", "AB1D", None, 12345, "IOIO"):
        with pytest.raises(RoomError):
            r.join(bad)


def test_the_same_word_counts_once_whatever_its_case_and_spaces():
    r = Rooms()
    code, _ = r.open()
    for voter, guess in [("a", "Paris"), ("b", " paris "), ("c", "PARIS"), ("d", "Lyon"), ("e", "the  best")]:
        r.guess_word(code, voter, PROMPT, guess)
    r.guess_word(code, "f", PROMPT, "The best")
    tally = r.word_tally(code, PROMPT)
    assert tally.counts == [("Paris", 3), ("the best", 2), ("Lyon", 1)]  # first spelling is shown
    assert tally.voters == 6 and tally.favourite == "Paris"


def test_a_page_has_one_vote_per_prompt_and_can_change_it():
    r = Rooms()
    code, _ = r.open()
    r.guess_word(code, "a", PROMPT, "Paris")
    r.guess_word(code, "a", PROMPT, "paris")  # pressing Reveal again, a slider moved: still one vote
    version = r.version(code)
    r.guess_word(code, "a", PROMPT, "Lyon")
    assert r.word_tally(code, PROMPT).counts == [("Lyon", 1)] and r.version(code) > version
    r.guess_word(code, "a", "Another text", "cat")
    assert r.word_tally(code, PROMPT).voters == 1
    assert r.word_tally(code, " Another   text ").counts == [("cat", 1)]  # spaces in the prompt don't matter


def test_strategy_votes_count_once_per_page_and_no_guess_takes_it_back():
    r = Rooms()
    code, _ = r.open()
    r.vote_strategy(code, "a", "few-shot", STRATEGIES)
    r.vote_strategy(code, "b", "few-shot", STRATEGIES)
    r.vote_strategy(code, "c", "zero-shot", STRATEGIES)
    r.vote_strategy(code, "c", "chain-of-thought", STRATEGIES)
    r.vote_strategy(code, "b", "no guess", STRATEGIES)
    r.vote_strategy(code, "d", "<script>", STRATEGIES)  # not a strategy: no vote
    tally = dict(r.strategy_tally(code, STRATEGIES).counts)
    assert tally == {"zero-shot": 0, "few-shot": 1, "chain-of-thought": 1}


def test_only_the_key_resets_or_closes_a_room():
    r = Rooms()
    code, key = r.open()
    other, other_key = r.open()
    r.guess_word(code, "a", PROMPT, "Paris")
    for wrong in ("", "nope", other_key, None, key + "x"):
        with pytest.raises(RoomError, match="Only the presenter"):
            r.reset(code, wrong)
        with pytest.raises(RoomError):
            r.close(code, wrong)
    assert r.word_tally(code, PROMPT).voters == 1
    r.reset(code, key)
    assert r.word_tally(code, PROMPT).voters == 0 and r.is_open(code)
    r.close(code, key)
    assert not r.is_open(code) and r.is_open(other)
    with pytest.raises(RoomError, match="no open room"):
        r.guess_word(code, "a", PROMPT, "Paris")


def test_rooms_expire_after_hours_without_use_and_use_keeps_them():
    clock = Clock()
    r = Rooms(clock, idle_s=3 * 3600)
    busy, _ = r.open()
    quiet, _ = r.open()
    for _ in range(5):  # an hour apart, the busy room gets a guess each time
        clock.now += 3600
        r.guess_word(busy, "a", PROMPT, "Paris")
    assert r.is_open(busy) and not r.is_open(quiet) and len(r) == 1
    clock.now += 3 * 3600 + 1
    assert len(r) == 0


def test_caps_on_rooms_votes_and_prompts():
    r = Rooms(max_rooms=3, max_votes=5, max_prompts=2)
    codes = [r.open()[0] for _ in range(3)]
    with pytest.raises(RoomError, match="rooms open"):
        r.open()
    code = codes[0]
    for voter in "abcde":
        r.guess_word(code, voter, PROMPT, "Paris")
    with pytest.raises(RoomError, match="limit"):
        r.guess_word(code, "f", PROMPT, "Paris")
    r.guess_word(code, "a", PROMPT, "Lyon")  # changing a vote is still allowed at the cap
    with pytest.raises(RoomError, match="limit"):
        r.vote_strategy(code, "a", "few-shot", STRATEGIES)
    other = codes[1]
    for text in ("one", "two", "three"):  # only the two newest prompts are kept
        r.guess_word(other, "a", text, "x")
    assert r.word_tally(other, "one").voters == 0 and r.word_tally(other, "three").voters == 1


def test_hostile_guesses_are_cleaned_capped_and_shown_as_text():
    r = Rooms()
    code, _ = r.open()
    html = '<img src=x onerror="alert(1)">**bold**'
    r.guess_word(code, "a", PROMPT, html)
    r.guess_word(code, "b", PROMPT, "x" * 10_000)
    r.guess_word(code, "c", PROMPT, "a\x00b\x07c\x1b[31m\u202eed\r\nnext")
    assert r.guess_word(code, "d", PROMPT, " \x00\x07 \n ") is None  # nothing readable: not counted
    words = [w for w, _ in r.word_tally(code, PROMPT).counts]
    assert len(words) == 3 and all(len(w) <= rooms.MAX_GUESS_CHARS for w in words)
    assert "x" * rooms.MAX_GUESS_CHARS in words
    assert "abc[31med next" in words  # control and direction characters gone, the newline a space
    assert not any(ch < " " or ch == "\u202e" for w in words for ch in w)
    # What the presenter's page shows in Markdown: no tag, no formatting survives.
    safe = shown(words[0])
    assert "<" not in safe and "&lt;img" in safe and "\\*\\*bold\\*\\*" in safe


# --- the app's room endpoints, several visitors at once -----------------------------------------------
def _open(c) -> tuple[str, str]:
    code, key, status, projected = c.predict(api_name="/room_open")
    assert code in status and key in status
    assert f">{code}<" in projected["value"] and projected["visible"]  # the large code for the projector
    return code, key


def _room_bars(c, prompt: str) -> dict[str, float] | None:
    """The presenter's room chart as {word: share}; None when nothing changed since their last look."""
    bars, _ = c.predict(prompt, api_name="/room_word_view")
    if not isinstance(bars, dict) or "data" not in bars:  # gr.skip(): an update without data
        return None
    return {word: share for word, share in bars["data"]}


@pytest.fixture
def clients(app_url):
    from gradio_client import Client

    made = [Client(app_url, verbose=False, download_files=False) for _ in range(5)]
    yield made
    with ThreadPoolExecutor(len(made)) as pool:  # each close waits up to 1 s for its heartbeat thread
        list(pool.map(lambda c: c.close(), made))


def test_two_visitors_guess_in_one_room_and_a_third_in_another(clients):
    presenter, alice, bob, other_presenter, carol = clients
    code, key = _open(presenter)
    other_code, _ = _open(other_presenter)
    assert code != other_code
    for visitor, room in ((alice, code), (bob, code), (carol, other_code)):
        joined, status = visitor.predict(room.lower(), api_name="/room_join")
        assert joined == room and room in status
    assert "counted" in alice.predict(PROMPT, "Paris", api_name="/room_word_guess")
    assert "counted" in bob.predict(PROMPT, " paris", api_name="/room_word_guess")
    bob.predict(PROMPT, "PARIS", api_name="/room_word_guess")  # Reveal again: still one vote
    assert "counted" in carol.predict(PROMPT, "Lyon", api_name="/room_word_guess")

    assert _room_bars(presenter, PROMPT) == {"Paris": 1.0}
    assert _room_bars(other_presenter, PROMPT) == {"Lyon": 1.0}
    # The model's side for the same word, as the model itself scores it.
    from demos import next_word
    from demos.next_word import distribution as NWD

    label = next_word.catalog.available("next_word")[0].label
    bars, note = presenter.predict(PROMPT, label, api_name="/room_word_model")
    assert "stay hidden" in note  # the presenter's gate: the room guesses before the model's bets show
    presenter.predict(api_name="/room_reveal_model")  # the presenter presses Reveal the model's bets
    bars, note = presenter.predict(PROMPT, label, api_name="/room_word_model")
    assert bars.get("visible") is True
    bars = bars["value"]
    lm, tokenizer, _ = NWD.load(label)
    guess = NWD.word_probability(lm, tokenizer, PROMPT, "Paris")
    [[word, p]] = bars["data"]
    assert word == "Paris" and p == pytest.approx(guess.probability, rel=1e-5)
    top = NWD.next_token_distribution(lm, tokenizer, PROMPT).tokens[0]
    assert f"top token: **{shown(top)}**" in note and (f"rank **{guess.rank:,}**" in note or "🎯" in note)
    # A visitor without the key sees no tally.
    bars, note = alice.predict(PROMPT, api_name="/room_word_view")
    assert "Paris" not in str(bars) and "presenter" in note

    # Attendees cannot reset or close: the key is checked.
    from gradio_client.exceptions import AppError

    for action in ("/room_reset", "/room_close"):
        with pytest.raises(AppError, match="Only the presenter"):
            alice.predict("wrong key", api_name=action)
        with pytest.raises(AppError, match="Only the presenter"):
            alice.predict("", api_name=action)
    assert _room_bars(presenter, PROMPT) is None  # unchanged: the failed resets did nothing
    # The presenter can: reset empties the room, close ends it.
    assert "forgotten" in presenter.predict(key, api_name="/room_reset")
    assert _room_bars(presenter, PROMPT) == {}
    presenter.predict(key, api_name="/room_close")
    assert "no open room" in alice.predict(PROMPT, "Paris", api_name="/room_word_guess")


def test_strategy_votes_through_the_api(clients):
    presenter, alice, bob, *_ = clients
    code, _ = _open(presenter)
    for visitor in (alice, bob):
        visitor.predict(code, api_name="/room_join")
    assert "counted" in alice.predict("few-shot", api_name="/room_strategy_vote")
    bob.predict("zero-shot", api_name="/room_strategy_vote")
    bob.predict("few-shot", api_name="/room_strategy_vote")  # changed their mind
    bars, note = presenter.predict(None, None, api_name="/room_vote_view")
    shares = {s: v for s, v in bars["data"]}
    assert shares["few-shot"] == 1.0 and shares["zero-shot"] == 0.0
    assert "**2** votes" in note and "favourite: **few-shot**" in note and "Run the strategies" in note
    # Beside the measured winner (the last run's results: only few-shot was right).
    measured = [{"strategy": "zero-shot", "correct": False}, {"strategy": "few-shot", "correct": True}]
    bars, note = presenter.predict(None, measured, api_name="/room_vote_view")
    assert "Measured winner" in note and "**few-shot** (100%)" in note and "called it" in note


def test_the_measured_winner_comes_from_the_scored_set_else_the_last_run():
    from gradio.components.native_plot import PlotData

    from gallery.room_ui import measured_scores

    scored = PlotData(columns=["strategy", "accuracy"], data=[["zero-shot", 0.2], ["few-shot", 0.6]],
                      datatypes={"strategy": "nominal", "accuracy": "quantitative"}, mark="bar")
    last_run = [{"strategy": "zero-shot", "correct": True}, {"strategy": "few-shot", "correct": False}]
    assert measured_scores(scored, last_run)[0] == {"zero-shot": 0.2, "few-shot": 0.6}
    assert measured_scores(None, last_run)[0] == {"zero-shot": 1.0, "few-shot": 0.0}
    assert measured_scores(None, None) == ({}, "")


def test_two_replicas_sharing_one_store_count_into_the_same_room():
    """`Rooms` keeps its rooms only through the RoomStore interface: two of them (two replicas of
    the gallery) over one store open, join, count, reset and close the same rooms."""
    store = rooms.MemoryRoomStore()
    one, two = Rooms(store=store), Rooms(store=store)
    code, key = one.open()
    assert two.join(code) == code and len(two) == 1
    two.guess_word(code, "page-a", "The capital of France is", "Paris")
    one.guess_word(code, "page-b", "The capital of France is", " paris ")
    assert two.word_tally(code, "The capital of France is").counts == [("Paris", 2)]
    assert two.is_presenter(code, key) and not two.is_presenter(code, "not-the-key")
    two.reset(code, key)
    assert one.word_tally(code, "The capital of France is").voters == 0
    one.close(code, key)
    assert not two.is_open(code) and len(two) == 0


def test_the_room_link_names_the_laptop_s_network_address_not_127_0_0_1(monkeypatch):
    """A presenter who opens the gallery on the serving laptop (http://127.0.0.1:7860) must not
    put 127.0.0.1 in the QR code: each phone would look for the gallery on itself."""
    from types import SimpleNamespace

    from gallery import room_ui, settings

    request = SimpleNamespace(headers={"referer": "http://127.0.0.1:7860/?tab=next_word#x"})
    monkeypatch.setattr(room_ui, "lan_address", lambda: "192.168.1.20")
    monkeypatch.setattr(settings, "SERVER_NAME", "0.0.0.0")
    assert room_ui._link(request, "KQWZ") == "http://192.168.1.20:7860/?room=KQWZ"
    assert "points at this computer" not in room_ui.projector("KQWZ", room_ui._link(request, "KQWZ"))
    monkeypatch.setattr(settings, "SERVER_NAME", "127.0.0.1")  # served to this laptop only: say so
    link = room_ui._link(request, "KQWZ")
    assert link == "http://127.0.0.1:7860/?room=KQWZ" and "points at this computer" in room_ui.projector("KQWZ", link)
    hosted = SimpleNamespace(headers={"referer": "https://me-gallery.hf.space/"})  # a Space: as it is
    assert room_ui._link(hosted, "KQWZ") == "https://me-gallery.hf.space/?room=KQWZ"
