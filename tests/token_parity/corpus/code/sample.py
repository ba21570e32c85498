#!/usr/bin/env python3
"""Tiny LRU cache with type hints."""
from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class LRU(Generic[K, V]):
    def __init__(self, capacity: int = 128) -> None:
        self._data: OrderedDict[K, V] = OrderedDict()
        self.capacity = capacity

    def get(self, key: K, default: V | None = None) -> V | None:
        if key not in self._data:
            return default
        self._data.move_to_end(key)
        return self._data[key]

    def put(self, key: K, value: V) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.capacity:
            self._data.popitem(last=False)


if __name__ == "__main__":
    cache: LRU[str, int] = LRU(2)
    for i, word in enumerate(["a", "bb", "ccc"]):
        cache.put(word, i ** 2)
    print(f"{cache.get('a')=}, {cache.get('ccc')=!r:>8}")
