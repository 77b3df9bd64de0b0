"""What a tab shows as its page opens, before anyone clicks: its answer to the default request,
computed once for everyone and handed to each page as a fresh copy.

- **Every page gets it**, not only the first: each hand-out is a copy (`gradio_compat.fresh_copy`).
- **At once**: the answers are worked out when the server starts (`warm_all`, in the background;
  not on ZeroGPU, where there is no GPU outside a request), and the opening events run in a lane
  of their own (`LANE`), so they never wait behind a long job of another visitor.
- **Never over a visitor's own request** (`connect`): the opening answer first goes into a state
  of the page, and is drawn only if the visitor has not asked for an answer of their own by then.
  Cancelling the opening event on a click was not enough: a page can be clicked before gradio
  has sent its load event, and a click in a room of 6 on 2 busy cores was then replaced by the
  opening bars that arrived after it.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable, Hashable, Sequence

import gradio as gr

from gallery import gradio_compat, settings, ui

log = logging.getLogger("gallery")

# Serving a kept answer takes microseconds; the limit bounds how many pages may wait together
# for the one computation still running just after a start.
LANE = dict(concurrency_id="opening", concurrency_limit=settings.OPENING_CONCURRENCY)

_ALL: list["Opening"] = []  # every tab's opening, in the order the tabs were imported


class Opening:
    """`compute(key) -> outputs`, run once per key (a model label) and kept; `default_key()`
    names the key a page opens with (None: nothing to show, e.g. no model on this machine)."""

    def __init__(self, name: str, compute: Callable[[Hashable], Sequence],
                 default_key: Callable[[], Hashable | None]):
        self.name = name
        self._compute = compute
        self._default_key = default_key
        self._answers: dict[Hashable, Sequence] = {}
        self._locks: dict[Hashable, threading.Lock] = {}
        self._guard = threading.Lock()
        _ALL.append(self)

    def default_key(self) -> Hashable | None:
        return self._default_key()

    def ready(self, key: Hashable) -> bool:
        return key in self._answers

    def get(self, key: Hashable):
        """The opening answer for `key`, as this page's own copy; the first caller computes it
        while later callers for the same key wait for it (one computation, however many pages)."""
        if key not in self._answers:
            with self._guard:
                lock = self._locks.setdefault(key, threading.Lock())
            with lock:
                if key not in self._answers:
                    self._answers[key] = self._compute(key)
        return gradio_compat.fresh_copy(self._answers[key])

    def warm(self) -> None:
        key = self.default_key()
        if key is not None:
            self.get(key)


def warm_all() -> threading.Thread | None:
    """Work out every tab's opening answer in a background thread, one after another, so the
    first visitors find them ready. Off on ZeroGPU and with GALLERY_WARM=0."""
    if not settings.WARM_OPENINGS:
        return None

    def work():
        for opening in list(_ALL):
            try:
                opening.warm()
                log.info("opening answer of %s ready", opening.name)
            except Exception:  # a tab whose model cannot load: its first visitor gets the message
                log.exception("could not prepare the opening answer of %s", opening.name)

    thread = threading.Thread(target=work, name="warm-openings", daemon=True)
    thread.start()
    return thread


def connect(opening_fn, outputs: list, own_triggers: list, api_name: str) -> None:
    """Wire a tab's opening answer into `outputs`: `opening_fn(request)` (in LANE) puts it into a
    state of the page; it is then drawn only if none of `own_triggers` (the tab's clicks that draw
    the same outputs) has fired on this page. A page-side counter records those clicks the moment
    they happen, and is read when the opening has arrived, so however the two cross, the answer
    to the visitor's own click is the one that stays.

    Call it before wiring the tab's own handlers to those triggers: the page runs the events of
    one trigger in the order they were wired, each after the one before has been sent, so a
    counter wired last counted a click only after the click's own requests were out, and on a
    busy machine a late opening, read in between, replaced the visitor's own bars."""
    asked = gr.Number(0, visible=False, interactive=False)  # clicks of this page that draw `outputs`
    gr.on(own_triggers, None, [asked], [asked], js="(n) => (n || 0) + 1", queue=False, api_visibility="private")
    staged = gr.State(None)

    @ui.user_errors
    def draw_opening(answer, clicks):
        if answer is None or clicks:
            return [gr.skip()] * len(outputs) if len(outputs) > 1 else gr.skip()
        return answer

    draw_opening.__name__ = f"draw_{api_name}"
    gr.on(None, opening_fn, None, [staged], api_name=api_name, **LANE).then(
        draw_opening, [staged, asked], outputs, queue=False, api_visibility="private",
    )
