"""One bounded, thread-safe, least-recently-used map for every cache the gallery keeps in memory:
CLIP's embeddings, pre-training's finished runs and their samples, the examples' answers."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Hashable, Sequence


class LRU:
    """At most `max_items` values; a lookup or a store makes a key the newest, and the oldest
    goes first. Safe to share between the threads serving visitors."""

    def __init__(self, max_items: int):
        self.max_items = max_items
        self._items: OrderedDict[Hashable, object] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable):
        """The value kept for `key`, or None."""
        return self.get_many([key]).get(key)

    def get_many(self, keys: Sequence[Hashable]) -> dict:
        with self._lock:
            found = {}
            for key in keys:
                if key in self._items:
                    self._items.move_to_end(key)
                    found[key] = self._items[key]
            return found

    def put(self, key: Hashable, value: object) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)

    def values(self) -> list:
        """Every value kept, the oldest first."""
        with self._lock:
            return list(self._items.values())

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
