"""Lookups kept briefly in memory, so a warm Lambda answers from there and still sees a
change made elsewhere (another container, an operator) within the cache's seconds."""

from __future__ import annotations

from collections.abc import Callable
from time import monotonic
from typing import TypeVar

T = TypeVar("T")


class TTLCache:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._items: dict[str, tuple[float, object]] = {}

    def get(self, key: str, load: Callable[[], T]) -> T:
        hit = self._items.get(key)
        if hit is not None and monotonic() - hit[0] < self.seconds:
            return hit[1]  # type: ignore[return-value]
        value = load()
        self._items[key] = (monotonic(), value)
        return value

    def forget(self, key: str) -> None:
        self._items.pop(key, None)
