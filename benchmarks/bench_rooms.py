"""Workshop rooms: what counting a guess and drawing the presenter's tally cost, beside the plain
Python they stand for, and a guess through the app's API beside a call that runs no model.

    python -m benchmarks.bench_rooms [--repeats 200]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections import Counter

from benchmarks.common import Row, launch_app, paired, print_rows

PROMPT = "The capital of France is"
FULL_ROOM = 3000  # votes in the room: the cap


def run(repeats: int = 200) -> list[Row]:
    from gallery import rooms

    room_list = rooms.Rooms()
    code, _ = room_list.open()
    words = [f"word{i % 40}" for i in range(FULL_ROOM - 1)]
    plain: dict[str, str] = {}
    for i, word in enumerate(words):
        room_list.guess_word(code, f"voter{i}", PROMPT, word)
        plain[f"voter{i}"] = word.casefold()
    turn = iter(range(10**9))

    def plain_guess():
        plain["last"] = ("Paris" if next(turn) % 2 else "Lyon").casefold()

    def room_guess():
        room_list.guess_word(code, "last", PROMPT, "Paris" if next(turn) % 2 else "Lyon")

    rows = [Row("rooms", f"count a guess ({FULL_ROOM:,} in the room)", *paired(plain_guess, room_guess, repeats),
                note="plain dict update vs Rooms.guess_word (clean, cap, lock)")]
    rows.append(Row("rooms", f"presenter's tally ({FULL_ROOM:,} votes)",
                    *paired(lambda: Counter(plain.values()).most_common(), lambda: room_list.word_tally(code, PROMPT),
                            max(repeats // 10, 5)),
                    note="Counter.most_common vs Rooms.word_tally"))

    os.environ.setdefault("GALLERY_TINY_MODELS", tempfile.mkdtemp(prefix="bench-rooms-models-"))
    from tests.support.tiny_models import build_all

    build_all(os.environ["GALLERY_TINY_MODELS"])
    blocks, client = launch_app()
    try:
        api_code, *_ = client.predict(api_name="/room_open")
        client.predict(api_code, api_name="/room_join")
        calls = max(repeats // 10, 10)
        raw, app = paired(lambda: client.predict(api_name="/next_word_clear_history"),
                          lambda: client.predict(PROMPT, "Paris", api_name="/room_word_guess"), calls)
        rows.append(Row("rooms", "a guess through the API (round trip)", raw, app,
                        note="/next_word_clear_history (next word tab, no model) vs /room_word_guess"))
    finally:
        client.close()
        blocks.close()
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=200)
    print_rows(run(parser.parse_args().repeats))
