"""The room on the page: a small panel to open or join a room (app.py puts it under the intro,
closed), the calls that count a page's guesses in its room, and the presenter's live views: the
room's next-word guesses beside the model's probabilities for the same words, and the room's
strategy votes beside the measured winner. The counting itself is `gallery.rooms` (no Gradio).

A page's room and presenter key are `gr.State` (this page's session only: no cookie, no account).
The presenter's views redraw on a `gr.Timer` while that page holds the room's key.
"""

from __future__ import annotations

import html
import re
import weakref
from dataclasses import dataclass
from typing import Callable, Sequence

import gradio as gr
import pandas as pd

from gallery import gradio_compat, rooms, settings, ui
from gallery.rooms import RoomError

ROOMS = rooms.Rooms()  # this process's rooms
API_PREFIX = "room"  # every api_name of the room panel starts with it (tests/test_contract.py)
REFRESH_S = 2.0  # how often the presenter's view looks for new guesses
SHOWN_WORDS = 8  # the room's most popular guesses drawn (each costs the model one pass)
ROOM_SHARE, MODEL_P = "share of the room", "model probability"
# Room events are quick (a dictionary update), so they do not wait behind model calls.
ROOM_LANE = dict(concurrency_id="room", concurrency_limit=8)

PANEL_HELP = (
    "In a workshop, everyone's guesses can be counted together and shown beside the model's. "
    "**Attendees:** type the code on the presenter's screen and press *Join* (or open the link "
    "they share). Your guesses stay anonymous. **Presenter:** press *Open a new room*, then open "
    "“The room's guesses” in the Next word tab and “The room's votes” in the Prompting tab."
)
WORD_VIEW_HELP = ("*Open a room (🏫 at the top of the page) as the presenter: the guesses of everyone in it for "
                  "the text above appear here, beside the model's probabilities for the same words.*")
VOTE_VIEW_HELP = ("*Open a room (🏫 at the top of the page) as the presenter: the room's votes for the "
                  "winning strategy appear here, beside the measured winner.*")


@dataclass
class _Panel:
    code: gr.State  # the room this page is in ("" = none)
    key: gr.State  # the room key, on the presenter's page only
    status: gr.Markdown


_panels: "weakref.WeakKeyDictionary[gr.Blocks, _Panel]" = weakref.WeakKeyDictionary()


def _panel() -> _Panel | None:
    """The room panel of the app being built (None: a tab launched on its own has no rooms)."""
    root = gradio_compat.root_block()
    return _panels.get(root) if root is not None else None


def shown(text: str) -> str:
    """Visitor text made safe to show in Markdown: no HTML, no Markdown formatting."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|~>])", r"\\\1", html.escape(text, quote=False))


def _voter(request: gr.Request | None) -> str:
    return (getattr(request, "session_hash", None) or "api") if request is not None else "direct"


LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


def lan_address() -> str | None:
    """This machine's address on its local network (None if it has none). A UDP socket aimed
    at a private address picks the outgoing interface; nothing is sent."""
    import socket

    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("10.254.254.254", 1))
            address = probe.getsockname()[0]
    except OSError:
        return None
    return None if address.startswith("127.") else address


def _link(request: gr.Request | None, code: str) -> str:
    """The page's own address with ?room=CODE, from the browser's Referer when there is one.
    A presenter who opened the page on the serving laptop itself (127.0.0.1) gets the laptop's
    network address instead when the gallery is served to the network (GALLERY_HOST=0.0.0.0):
    a link or QR code naming 127.0.0.1 would lead each attendee's phone to itself."""
    from urllib.parse import urlsplit, urlunsplit

    referer = ""
    try:
        referer = request.headers.get("referer", "") if request is not None else ""
    except Exception:
        pass
    base = referer.split("?")[0].split("#")[0] if referer.startswith(("http://", "https://")) else ""
    if not base:
        return f"this page's address + `?room={code}`"
    parts = urlsplit(base)
    if parts.hostname in LOOPBACK and settings.SERVER_NAME in ("0.0.0.0", "::"):
        lan = lan_address()
        if lan:
            base = urlunsplit(parts._replace(netloc=f"{lan}:{parts.port}" if parts.port else lan))
    return f"{base}?room={code}"


def projector(code: str, link: str) -> str:
    """What the presenter puts on the projector: the room's code in large letters and a QR code
    of the room's link (drawn here, by segno, as an SVG: nothing is fetched from anywhere)."""
    import segno

    qr, warning = "", ""
    if any(f"//{host}" in link for host in LOOPBACK):  # served to this computer only
        warning = ('<div class="room-warning">This link points at this computer itself, so other phones cannot '
                   'follow it: start the gallery with <code>GALLERY_HOST=0.0.0.0</code> and open it by '
                   "this computer's network address.</div>")
    if link.startswith(("http://", "https://")):
        svg = segno.make(link, error="m").svg_inline(scale=6, dark="#111827", light="#ffffff")
        qr = f'<div class="room-qr" role="img" aria-label="QR code of {html.escape(link)}">{svg}</div>'
    else:  # no address known (an API call): say how to make the link
        link = f"this page's address + ?room={code}"
    return (f'<div class="room-projector">{qr}<div><div class="room-code-label">Join the room</div>'
            f'<div class="room-code" aria-label="Room code">{html.escape(code)}</div>'
            f'<div class="room-link">{html.escape(link)}</div>{warning}</div></div>')


def _hidden_projector():
    return gr.update(value="", visible=False)


# --- the panel's handlers --------------------------------------------------------------------------
@ui.user_errors
def on_open(request: gr.Request):
    code, key = ROOMS.open()
    text = (
        f"**Room {code} is open.** Attendees open {_link(request, code)} or type **{code}** here and press Join.\n\n"
        f"Your room key: `{key}`. Note it: it resets or closes the room, and brings back your "
        "presenter view after a reload (type it in the key box, then *I am the presenter*)."
    )
    return code, key, code, key, text, gr.update(value=projector(code, _link(request, code)), visible=True)


@ui.user_errors
def on_join(code_text, current, key, request: gr.Request):
    code = ROOMS.join(code_text)
    key = key if code == current else ""  # the presenter rejoining their own room stays presenter
    return code, key, code, (f"You are in room **{code}**: your next-word guesses and strategy picks are counted "
                             "there, anonymously.")


@ui.user_errors
def on_leave():
    return "", "", "", "You left the room; your guesses are no longer sent to it.", _hidden_projector()


@ui.user_errors
def on_use_key(code, key_text, request: gr.Request):
    if not code:
        raise RoomError("Join your room first (type its code and press Join), then use its key.")
    if not ROOMS.is_presenter(code, key_text):
        raise RoomError("That is not this room's key: only the presenter's key shows the room's guesses.")
    return (key_text.strip(), f"You present room **{code}**: its guesses appear in the tabs' room views.",
            gr.update(value=projector(code, _link(request, code)), visible=True))


@ui.user_errors
def on_reset(code, key_text):
    if not code:
        raise RoomError("This page is in no room.")
    ROOMS.reset(code, key_text)
    return f"Room **{code}**: every guess forgotten; a new round starts."


@ui.user_errors
def on_close(code, key_text):
    if not code:
        raise RoomError("This page is in no room.")
    ROOMS.close(code, key_text)
    return "", "", "", f"Room **{code}** is closed; its guesses are gone.", _hidden_projector()


@ui.user_errors
def on_page_load(request: gr.Request):
    """`?room=CODE` in the address joins that room."""
    asked = request.query_params.get("room") if request is not None else None
    if not asked:
        return gr.skip(), gr.skip(), gr.skip()
    try:
        code = ROOMS.join(asked)
    except RoomError as error:
        return "", rooms.clean_text(asked, 8), f"⚠️ {error}"
    return code, code, f"You are in room **{code}** (from the link): your guesses are counted there, anonymously."


def panel(app: gr.Blocks) -> None:
    """The small "Workshop room" panel, closed; call once, inside the app's Blocks."""
    code, key = gr.State(""), gr.State("")
    with gr.Accordion("🏫 Workshop room: guess together (optional)", open=False, elem_id="room-panel"):
        gr.Markdown(PANEL_HELP)
        with gr.Row():
            code_box = gr.Textbox(label="Room code", placeholder="e.g. KQWZ", max_lines=1, scale=2, elem_id="room-code")
            join = gr.Button("Join", scale=1)
            leave = gr.Button("Leave", scale=1)
            open_room = gr.Button("Open a new room (presenter)", scale=2)
        status = gr.Markdown(elem_id="room-status")
        # The presenter's: a large code and a QR code of the link, to put on the projector.
        shown_to_room = gr.HTML(visible=False, elem_id="room-projector")
        with gr.Row():
            key_box = gr.Textbox(label="Room key (presenter only)", type="password", max_lines=1, scale=2)
            use_key = gr.Button("I am the presenter", scale=1)
            reset = gr.Button("Reset the guesses", scale=1)
            close = gr.Button("Close the room", variant="stop", scale=1)
    _panels[app] = _Panel(code, key, status)
    open_room.click(on_open, None, [code, key, code_box, key_box, status, shown_to_room], api_name="room_open",
                    **ROOM_LANE)
    gr.on([join.click, code_box.submit], on_join, [code_box, code, key], [code, key, code_box, status],
          api_name="room_join", **ROOM_LANE)
    leave.click(on_leave, None, [code, key, code_box, status, shown_to_room], api_name="room_leave", **ROOM_LANE)
    use_key.click(on_use_key, [code, key_box], [key, status, shown_to_room], api_name="room_presenter", **ROOM_LANE)
    reset.click(on_reset, [code, key_box], [status], api_name="room_reset", **ROOM_LANE)
    close.click(on_close, [code, key_box], [code, key, code_box, status, shown_to_room], api_name="room_close",
                **ROOM_LANE)
    app.load(on_page_load, None, [code, code_box, status], api_visibility="private", **ROOM_LANE)


# --- counting a page's guesses -------------------------------------------------------------------
@ui.user_errors
def on_word_guess(code, prompt, guess, request: gr.Request):
    """Count this page's next-word guess in its room (after Reveal). -> a line for the panel."""
    if not code:
        return gr.skip()
    try:
        counted = ROOMS.guess_word(code, _voter(request), prompt, guess)
    except RoomError as error:
        return f"⚠️ {error}"
    if counted is None:
        return gr.skip()
    return f"Room **{code}**: your guess “{shown(counted)}” is counted."


def count_word_guesses(event, prompt: gr.Textbox, guess: gr.Textbox) -> None:
    """After each Reveal (`event`), count the page's guess in its room, if it is in one."""
    panel_ = _panel()
    if panel_ is not None:
        event.success(on_word_guess, [panel_.code, prompt, guess], [panel_.status], api_name="room_word_guess",
                      **ROOM_LANE)


def count_strategy_votes(guess: gr.Radio, strategies: Sequence[str]) -> None:
    """Each pick of "which strategy wins" is the page's vote in its room (a later pick replaces it)."""
    panel_ = _panel()
    if panel_ is None:
        return
    allowed = tuple(strategies)

    @ui.user_errors
    def on_strategy_vote(code, choice, request: gr.Request):
        if not code:
            return gr.skip()
        try:
            ROOMS.vote_strategy(code, _voter(request), choice if isinstance(choice, str) else None, allowed)
        except RoomError as error:
            return f"⚠️ {error}"
        if choice in allowed:
            return f"Room **{code}**: your vote for **{shown(choice)}** is counted."
        return f"Room **{code}**: no vote from you."

    guess.change(on_strategy_vote, [panel_.code, guess], [panel_.status], api_name="room_strategy_vote", **ROOM_LANE)


# --- the presenter's views ---------------------------------------------------------------------------
def _bars(column: str, pairs: Sequence[tuple[str, float]], x: str = "word") -> pd.DataFrame:
    """The chart's data only: its bar order is fixed where it is built (see `ui.bar_plot`). The
    words are typed as text even when there are none yet: an empty column would be numeric, and
    the chart keeps the axis type it was first drawn with."""
    return pd.DataFrame({x: pd.Series([name for name, _ in pairs], dtype=object),
                         column: pd.Series([float(v) for _, v in pairs], dtype=float)})


def _tally_or_none(code, key, read):
    """The room's tally for its presenter; None on any other page (or a closed room)."""
    if not code or not key or not ROOMS.is_presenter(code, key):
        return None
    return read()


@ui.user_errors
def on_word_view(code, key, prompt, seen):
    """The room's guesses for the presenter's current text: bars (share of the room's pages)
    and a line naming the favourite. Unchanged since the last look: nothing is sent."""
    tally = _tally_or_none(code, key, lambda: ROOMS.word_tally(code, prompt))
    if tally is None:
        return gr.skip(), WORD_VIEW_HELP, None
    signature = [code, tally.version, rooms.prompt_key(prompt)]
    if signature == seen:
        return gr.skip(), gr.skip(), gr.skip()
    top = tally.counts[:SHOWN_WORDS]
    bars = _bars(ROOM_SHARE, [(word, n / max(tally.voters, 1)) for word, n in top])
    if not top:
        said = shown(rooms.prompt_key(prompt)[-60:])
        return bars, f"Room **{code}**: no guesses yet for this text (“{said}”).", signature
    favourite, votes = top[0]
    note = (f"Room **{code}**: **{tally.voters}** page{'s' * (tally.voters != 1)} guessed the next word after "
            f"“{shown(rooms.prompt_key(prompt)[-60:])}”. The room's favourite: **{shown(favourite)}** "
            f"({votes / tally.voters:.0%}).")
    return bars, note, signature


REVEAL_BETS, HIDE_BETS = "🎲 Reveal the model's bets", "Hide the model's bets"
BETS_HIDDEN = ("*The model's bets stay hidden while the room guesses: press **Reveal the model's bets** "
               "when everyone has guessed.*")


def on_word_model(code, key, prompt, model_label, model_view: Callable, revealed: bool = True):
    """The model's side, for the same words: its probability for each, its top token, and where
    the room's favourite ranks for it (a model call; it runs only when the room's tally changed,
    and only once the presenter has revealed the model's bets)."""
    if not revealed:
        return gr.update(visible=False), BETS_HIDDEN
    tally = _tally_or_none(code, key, lambda: ROOMS.word_tally(code, prompt))
    if tally is None or not tally.counts:
        return gr.skip(), ""
    words = [word for word, _ in tally.counts[:SHOWN_WORDS]]
    top_token, scores, label = model_view(model_label, prompt, words)
    bars = gr.update(value=_bars(MODEL_P, [(word, p) for word, (p, _) in zip(words, scores)]), visible=True)
    p, rank = scores[0]
    if rank is None:
        verdict = "too many tokens to score"
    else:
        verdict = "the model's top choice too 🎯" if rank == 1 else f"rank **{rank:,}** for the model"
    note = (f"**{label}**'s top token: **{shown(top_token)}**. The room's favourite, **{shown(words[0])}**, "
            f"gets p = {p:.1%} from the model: {verdict}.")
    return bars, note


@dataclass
class WordView:
    room_bars: gr.BarPlot
    model_bars: gr.BarPlot
    note: gr.Markdown
    model_note: gr.Markdown
    timer: gr.Timer
    seen: gr.State
    reveal: gr.Button  # the presenter's gate: the model's bets appear when they press it
    revealed: gr.State


def word_view() -> WordView | None:
    """The presenter's view in the Next word tab (a closed accordion); wire it with `connect_word_view`."""
    if _panel() is None:
        return None
    with gr.Accordion("🏫 The room's guesses (presenter)", open=False, elem_id="room-word-view"):
        note = gr.Markdown(WORD_VIEW_HELP)
        reveal = gr.Button(REVEAL_BETS, size="sm", elem_id="room-reveal-model")
        with gr.Row():
            room_bars = ui.bar_plot(x="word", y=ROOM_SHARE, y_lim=[0, 1], label="The room's guesses, most common first",
                                    x_label_angle=-30, height=260, elem_id="room-word-bars")
            model_bars = ui.bar_plot(x="word", y=MODEL_P, y_lim=[0, 1],
                                     label="The model's probability for the same words, highest first",
                                     x_label_angle=-30, height=260, elem_id="room-model-bars", visible=False)
        model_note = gr.Markdown(BETS_HIDDEN, elem_id="room-model-note")
    return WordView(room_bars, model_bars, note, model_note, gr.Timer(REFRESH_S, active=False), gr.State(None),
                    reveal, gr.State(False))


def _timer_on_for_presenter(timer: gr.Timer) -> None:
    panel_ = _panel()
    panel_.key.change(ui.user_errors(lambda key: gr.Timer(active=bool(key))), panel_.key, timer,
                      api_visibility="private", **ROOM_LANE)


def connect_word_view(view: WordView | None, prompt: gr.Textbox, model: gr.Dropdown, model_view: Callable) -> None:
    """`model_view(model_label, text, words) -> (top token, [(probability, rank)] per word, model label)`."""
    if view is None:
        return
    panel_ = _panel()
    _timer_on_for_presenter(view.timer)
    look = dict(inputs=[panel_.code, panel_.key, prompt, view.seen], outputs=[view.room_bars, view.note, view.seen])
    view.timer.tick(on_word_view, **look, api_visibility="private", **ROOM_LANE)
    panel_.key.change(on_word_view, **look, api_name="room_word_view", **ROOM_LANE)

    @ui.user_errors
    def on_model_side(code, key, text, model_label, revealed):
        return on_word_model(code, key, text, model_label, model_view, bool(revealed))

    @ui.user_errors
    def on_gate(revealed):
        """The presenter's button: reveal the model's bets (or hide them again for the next round)."""
        revealed = not revealed
        return revealed, HIDE_BETS if revealed else REVEAL_BETS

    view.reveal.click(on_gate, [view.revealed], [view.revealed, view.reveal], api_name="room_reveal_model",
                      **ROOM_LANE)
    gr.on([view.seen.change, model.change, view.revealed.change], on_model_side,
          [panel_.code, panel_.key, prompt, model, view.revealed], [view.model_bars, view.model_note],
          api_name="room_word_model", **ui.short())  # a few forward passes: short lane


def measured_scores(scored, compared) -> tuple[dict[str, float], str]:
    """The measured side: accuracy per strategy from the scored set (the accuracy chart), else
    right/wrong from the last run of the strategies (its results data)."""
    rows = getattr(scored, "data", None) or []
    columns = list(getattr(scored, "columns", None) or [])
    if rows and "strategy" in columns and "accuracy" in columns:
        s, a = columns.index("strategy"), columns.index("accuracy")
        return {str(r[s]): float(r[a]) for r in rows if r[a] is not None}, "accuracy over the scored set"
    if isinstance(compared, list) and compared:
        return ({str(r.get("strategy")): float(bool(r.get("correct"))) for r in compared if isinstance(r, dict)},
                "right or wrong on the last question run")
    return {}, ""


def strategy_view(strategies: Sequence[str]):
    """The presenter's view in the Prompting tab: the room's votes beside the measured winner."""
    if _panel() is None:
        return None
    with gr.Accordion("🏫 The room's votes (presenter)", open=False, elem_id="room-vote-view"):
        note = gr.Markdown(VOTE_VIEW_HELP)
        bars = gr.BarPlot(x="strategy", y=ROOM_SHARE, y_lim=[0, 1], sort=list(strategies), height=240,
                          label="The room's votes: which strategy wins?", elem_id="room-vote-bars")
    return bars, note, gr.Timer(REFRESH_S, active=False), gr.State(None), tuple(strategies)


def connect_strategy_view(view, scored: gr.BarPlot, compared: gr.JSON) -> None:
    if view is None:
        return
    bars, note, timer, seen, strategies = view
    panel_ = _panel()
    _timer_on_for_presenter(timer)

    @ui.user_errors
    def on_vote_view(code, key, last_seen, scored_value, compared_value):
        tally = _tally_or_none(code, key, lambda: ROOMS.strategy_tally(code, strategies))
        if tally is None:
            return gr.skip(), VOTE_VIEW_HELP, None
        measured, how = measured_scores(scored_value, compared_value)
        signature = [code, tally.version, sorted(measured.items())]
        if signature == last_seen:
            return gr.skip(), gr.skip(), gr.skip()
        counts = dict(tally.counts)
        lines = [f"Room **{code}**: **{tally.voters}** vote{'s' * (tally.voters != 1)}."]
        if tally.favourite:
            lines.append(f"The room's favourite: **{tally.favourite}** ({counts[tally.favourite] / tally.voters:.0%}).")
        if measured:
            best = max(measured.values())
            winners = [s for s, v in measured.items() if v == best]
            lines.append(f"Measured winner ({how}): **{', '.join(winners)}** ({best:.0%}).")
            if tally.favourite:
                lines.append("The room called it 🎯" if tally.favourite in winners else "The room guessed otherwise.")
        else:
            lines.append("Run the strategies or score the set to see the measured winner beside the votes.")
        shares = [(s, counts.get(s, 0) / max(tally.voters, 1)) for s in strategies]
        return _bars(ROOM_SHARE, shares, x="strategy"), " ".join(lines), signature

    look = dict(inputs=[panel_.code, panel_.key, seen, scored, compared], outputs=[bars, note, seen])
    timer.tick(on_vote_view, **look, api_visibility="private", **ROOM_LANE)
    panel_.key.change(on_vote_view, **look, api_name="room_vote_view", **ROOM_LANE)
