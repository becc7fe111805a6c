"""Answers kept until the next write, for a store that one process alone writes.

The embedded store is written by its own process only (DuckDB lets one process open a
database file for writing): every commit goes through its writer, which counts them. An
answer computed at count n is the answer for as long as the count stays n, so it can be
given again without reading. A read that overlaps a commit is kept under the count it
started at and is never given once the commit has been counted; the commit is counted
before the writer's caller goes on (a 202 is answered after it), so a client that was
told its events are stored never gets an answer from before them.

PostgreSQL has other writers (every worker); it keeps no answers.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Any, Protocol, runtime_checkable


class AnswerCache:
    def __init__(self, slots: int) -> None:
        self._slots = slots
        self._items: OrderedDict[Hashable, tuple[int, Any]] = OrderedDict()
        self.generation = 0  # commits counted so far
        self.hits = 0

    def written(self) -> None:
        """A commit happened (or may have): every answer kept so far is old."""
        self.generation += 1

    def get(self, key: Hashable) -> Any | None:
        item = self._items.get(key)
        if item is None or item[0] != self.generation:
            return None
        self._items.move_to_end(key)
        self.hits += 1
        return item[1]

    def put(self, key: Hashable, generation: int, answer: Any) -> None:
        """Keep ``answer``, computed from what was committed at ``generation``."""
        if self._slots <= 0 or generation != self.generation:
            return
        self._items[key] = (generation, answer)
        self._items.move_to_end(key)
        while len(self._items) > self._slots:
            self._items.popitem(last=False)


@runtime_checkable
class KeepsAnswers(Protocol):
    answers: AnswerCache
