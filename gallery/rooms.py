"""Workshop rooms: a presenter opens a room, attendees join it by a short code, and their guesses
(the next word, which prompting strategy wins) are counted there, to be shown beside the model's.

Pure logic, no Gradio (`gallery/room_ui.py` is the page piece). No accounts, no names; a voter is
gradio's per-page session id, so a page that changes its guess moves its one vote. Bounded on every
side: rooms expire after hours idle, and there are caps on rooms, on counted guesses per room and
on the length of a guess.

Where the rooms are kept is a `RoomStore`, five operations; today's is this process's memory
(`MemoryRoomStore`). A gallery on several replicas would give `Rooms` a shared one (Redis, say:
docs/ARCHITECTURE.md, "Scaling out"), and nothing else would change.
"""

from __future__ import annotations

import hmac
import re
import secrets
import threading
import time
import unicodedata
from dataclasses import dataclass, field
from typing import Callable, Literal, Protocol, TypeVar

from gallery.errors import InputError

CODE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"  # no I or O: read off a slide without mix-ups with 1 and 0
CODE_LENGTH = 4  # 24**4 = 331 776 codes
MAX_ROOMS = 100  # open at once in this process
IDLE_EXPIRY_S = 4 * 3600  # a room nobody used for this long is gone
MAX_VOTES_PER_ROOM = 3000  # counted guesses (one per page and prompt) plus strategy votes
MAX_PROMPTS_PER_ROOM = 50  # prompts with guesses; the oldest is dropped beyond this
MAX_GUESS_CHARS = 40  # a next word, or a few; longer text is cut
MAX_PROMPT_CHARS = 2000  # a prompt is only a key here; longer ones are cut before comparing
_LINK_CODE = re.compile(r"[?&]room=([A-Za-z]+)")


class RoomError(InputError):
    """A room request that cannot be served (unknown code, wrong key, a cap reached)."""


def clean_code(text) -> str:
    """What a visitor typed (or the `?room=` of a pasted link) -> a code like "KQWZ", or RoomError."""
    raw = text if isinstance(text, str) else ""
    linked = _LINK_CODE.search(raw)
    code = (linked.group(1) if linked else raw).strip().upper().replace(" ", "")[:CODE_LENGTH + 4]
    if len(code) != CODE_LENGTH or any(c not in CODE_LETTERS for c in code):
        raise RoomError(f"A room code is {CODE_LENGTH} letters, like KQWZ; check the code on the presenter's screen.")
    return code


def clean_text(text, limit: int) -> str:
    """Readable text to count and show: Unicode-normalised, control and format characters
    removed, runs of spaces made one, cut to `limit` characters."""
    if not isinstance(text, str):
        return ""
    text = unicodedata.normalize("NFKC", text[: limit * 8])
    text = "".join(" " if ch.isspace() else ch for ch in text if ch.isspace() or unicodedata.category(ch)[0] != "C")
    return " ".join(text.split())[:limit].strip()


def guess_key(guess: str) -> str:
    """The same word however it was typed: "Paris", " paris ", "PARIS" count as one."""
    return guess.casefold()


def prompt_key(prompt) -> str:
    return clean_text(prompt, MAX_PROMPT_CHARS)


@dataclass
class Room:
    code: str
    key: str
    last_used: float
    # prompt key -> {voter: guess key}; and the first way each guess was written, for display
    words: dict[str, dict[str, str]] = field(default_factory=dict)
    written: dict[str, dict[str, str]] = field(default_factory=dict)
    strategies: dict[str, str] = field(default_factory=dict)  # voter -> strategy
    version: int = 0  # changes whenever a count changes: the presenter's view redraws then

    def votes(self) -> int:
        return sum(len(v) for v in self.words.values()) + len(self.strategies)


@dataclass(frozen=True)
class Tally:
    """A room's counts for one question, most popular first: [(what, votes)], and who voted."""

    counts: list[tuple[str, int]]
    voters: int
    version: int

    @property
    def favourite(self) -> str | None:
        return self.counts[0][0] if self.counts and self.counts[0][1] > 0 else None


T = TypeVar("T")


class NoSuchRoom(LookupError):
    """A store has no room under that code (never opened, closed, or expired)."""


class RoomStore(Protocol):
    """Where rooms are kept: the one thing a gallery on several replicas must share. Every change
    to a room goes through `change`, whole and atomic for that room; the rules (codes, keys, caps,
    cleaning, tallies) stay in `Rooms`, the same for every store. A shared store implements these
    five: Redis, say, with one key per room holding it serialised, a time-to-live for `expire`,
    and `change` as a WATCH/MULTI transaction (or a Lua script)."""

    def create(self, room: Room, max_rooms: int) -> Literal["created", "taken", "full"]:
        """Keep a new room, unless its code is taken or `max_rooms` are open."""

    def change(self, code: str, apply: Callable[[Room], T]) -> T:
        """-> apply(room), the room's changes kept, no other change to it in between;
        NoSuchRoom when there is none."""

    def remove(self, code: str) -> None:
        """Forget a room (nothing happens when there is none)."""

    def count(self) -> int:
        """Rooms open now."""

    def expire(self, used_before: float) -> None:
        """Forget the rooms last used before this time (the `Rooms` clock's)."""


class MemoryRoomStore:
    """The rooms in this process's memory, under one lock: today's store (one replica)."""

    def __init__(self):
        self._rooms: dict[str, Room] = {}
        self._lock = threading.Lock()

    def create(self, room: Room, max_rooms: int) -> Literal["created", "taken", "full"]:
        with self._lock:
            if room.code in self._rooms:
                return "taken"
            if len(self._rooms) >= max_rooms:
                return "full"
            self._rooms[room.code] = room
            return "created"

    def change(self, code: str, apply: Callable[[Room], T]) -> T:
        with self._lock:
            room = self._rooms.get(code)
            if room is None:
                raise NoSuchRoom(code)
            return apply(room)

    def remove(self, code: str) -> None:
        with self._lock:
            self._rooms.pop(code, None)

    def count(self) -> int:
        with self._lock:
            return len(self._rooms)

    def expire(self, used_before: float) -> None:
        with self._lock:
            for code in [c for c, r in self._rooms.items() if r.last_used < used_before]:
                del self._rooms[code]


class Rooms:
    """Every open room, kept in `store` (this process's memory unless told otherwise). Thread-safe;
    `clock` is injectable (tests)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, *, max_rooms: int = MAX_ROOMS,
                 idle_s: float = IDLE_EXPIRY_S, max_votes: int = MAX_VOTES_PER_ROOM,
                 max_prompts: int = MAX_PROMPTS_PER_ROOM, store: RoomStore | None = None):
        self.clock, self.max_rooms, self.idle_s = clock, max_rooms, idle_s
        self.max_votes, self.max_prompts = max_votes, max_prompts
        self._store: RoomStore = store if store is not None else MemoryRoomStore()

    # --- opening, finding, closing ---
    def _in_room(self, code, apply: Callable[[Room], T], touch: bool = True) -> T:
        """-> apply(room) for the open room `code` (a visitor's text), atomically; RoomError in
        words when there is none. `touch`: this counts as a use (it keeps the room open)."""
        code = clean_code(code)
        self._store.expire(self.clock() - self.idle_s)

        def used(room: Room) -> T:
            if touch:
                room.last_used = self.clock()
            return apply(room)

        try:
            return self._store.change(code, used)
        except NoSuchRoom:
            raise RoomError(f"There is no open room {code}: it may have been closed, or it expired after "
                            "hours without use. Check the code, or ask the presenter.") from None

    def open(self) -> tuple[str, str]:
        """-> (code, key). The key lets its holder reset or close the room; nobody else can."""
        self._store.expire(self.clock() - self.idle_s)
        key = secrets.token_urlsafe(9)  # 12 characters, 72 random bits
        while True:
            code = "".join(secrets.choice(CODE_LETTERS) for _ in range(CODE_LENGTH))
            made = self._store.create(Room(code, key, self.clock()), self.max_rooms)
            if made == "created":
                return code, key
            if made == "full":
                raise RoomError(f"This gallery already has {self.max_rooms} rooms open, its limit. Rooms "
                                "close themselves after a few hours without use; try again later.")

    def join(self, code) -> str:
        return self._in_room(code, lambda room: room.code)

    def is_open(self, code) -> bool:
        try:
            self.join(code)
            return True
        except RoomError:
            return False

    def _as_presenter(self, code, key, apply: Callable[[Room], T]) -> T:
        """apply(room) for the holder of the room's key only."""

        def checked(room: Room) -> T:
            if not isinstance(key, str) or not hmac.compare_digest(key.strip().encode(), room.key.encode()):
                raise RoomError("Only the presenter can do that: it needs the room key shown when the room was opened.")
            return apply(room)

        return self._in_room(code, checked)

    def is_presenter(self, code, key) -> bool:
        try:
            self._as_presenter(code, key, lambda room: None)
            return True
        except RoomError:
            return False

    def reset(self, code, key) -> None:
        """Forget every guess (a new round); the room stays open with the same code."""

        def clear(room: Room) -> None:
            room.words.clear(), room.written.clear(), room.strategies.clear()
            room.version += 1

        self._as_presenter(code, key, clear)

    def close(self, code, key) -> None:
        self._store.remove(self._as_presenter(code, key, lambda room: room.code))

    def __len__(self) -> int:
        self._store.expire(self.clock() - self.idle_s)
        return self._store.count()

    # --- counting ---
    def _check_room_for_one_more(self, room: Room, is_new: bool) -> None:
        if is_new and room.votes() >= self.max_votes:
            raise RoomError(f"Room {room.code} has counted {self.max_votes} guesses, its limit; the presenter "
                            "can reset it for the next round.")

    def guess_word(self, code, voter: str, prompt, guess) -> str | None:
        """Count this page's guess for the next word after `prompt` (replacing its earlier one for
        the same prompt). -> the guess as counted, or None when there was nothing to count."""
        word, where = clean_text(guess, MAX_GUESS_CHARS), prompt_key(prompt)
        if not word:
            return None

        def count(room: Room) -> str:
            votes = room.words.get(where, {})
            self._check_room_for_one_more(room, voter not in votes)
            if where not in room.words:
                if len(room.words) >= self.max_prompts:  # forget the prompt guessed on first
                    oldest = next(iter(room.words))
                    room.words.pop(oldest), room.written.pop(oldest, None)
                room.words[where] = votes
            key = guess_key(word)
            if votes.get(voter) != key:
                votes[voter] = key
                room.written.setdefault(where, {}).setdefault(key, word)
                room.version += 1
            return room.written[where][key]

        return self._in_room(code, count)

    def vote_strategy(self, code, voter: str, strategy: str | None, allowed: tuple[str, ...]) -> None:
        """Count this page's "which strategy wins" guess; None (or "no guess") takes it back."""

        def count(room: Room) -> None:
            if strategy in allowed:
                self._check_room_for_one_more(room, voter not in room.strategies)
                if room.strategies.get(voter) != strategy:
                    room.strategies[voter] = strategy
                    room.version += 1
            elif room.strategies.pop(voter, None) is not None:
                room.version += 1

        self._in_room(code, count)

    # --- what the presenter sees ---
    def word_tally(self, code, prompt) -> Tally:
        where = prompt_key(prompt)

        def tally(room: Room) -> Tally:
            votes = room.words.get(where, {})
            counts: dict[str, int] = {}
            for key in votes.values():
                counts[key] = counts.get(key, 0) + 1
            written = room.written.get(where, {})
            ranked = sorted(counts.items(), key=lambda kv: -kv[1])  # stable: first guessed first on ties
            return Tally([(written[k], n) for k, n in ranked], len(votes), room.version)

        return self._in_room(code, tally)

    def strategy_tally(self, code, allowed: tuple[str, ...]) -> Tally:
        def tally(room: Room) -> Tally:
            counts = {s: 0 for s in allowed}
            for strategy in room.strategies.values():
                counts[strategy] = counts.get(strategy, 0) + 1
            ranked = sorted(counts.items(), key=lambda kv: -kv[1])
            return Tally(ranked, len(room.strategies), room.version)

        return self._in_room(code, tally)

    def version(self, code) -> int:
        return self._in_room(code, lambda room: room.version, touch=False)
