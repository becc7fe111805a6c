"""The one place report queries run: on the read store a process was given (a replica
router in production), with the visitor sketches it has read kept by id."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

from tapioca.errors import ReadsMoved
from tapioca.kit.sketch import Sketch, SketchCache
from tapioca.reports.queries import Query
from tapioca.reports.queries.rollup import build_sketches
from tapioca.storage.answers import AnswerCache, KeepsAnswers
from tapioca.storage.base import ReadStore, Rows

T = TypeVar("T")
SKETCH_BUDGET = 64 << 20  # bytes of sketches kept per process


class SketchGone(Exception):
    """A sketch read a moment ago was replaced since (its day or week redone)."""


class KeptAnswers:
    """Answers a report can bring up to date from the events it counted (a funnel, by the
    users with events since): report key → (what it counted, the answer), the last
    ``slots`` used. ``moved`` counts the answers brought up to date."""

    def __init__(self, slots: int = 128) -> None:
        self._slots = slots
        self._items: OrderedDict[Hashable, tuple[Hashable, Any]] = OrderedDict()
        self.moved = 0

    def get(self, key: Hashable) -> tuple[Hashable, Any] | None:
        item = self._items.get(key)
        if item is not None:
            self._items.move_to_end(key)
        return item

    def put(self, key: Hashable, counted: Hashable, answer: Any) -> None:
        self._items[key] = (counted, answer)
        self._items.move_to_end(key)
        while len(self._items) > self._slots:
            self._items.popitem(last=False)


class Executor:
    def __init__(
        self,
        db: ReadStore,
        sketches: SketchCache | None = None,
        answers: AnswerCache | None = None,
        kept: KeptAnswers | None = None,
    ) -> None:
        self.db = db
        self.kept = kept if kept is not None else KeptAnswers()
        self._sketches = sketches if sketches is not None else SketchCache(SKETCH_BUDGET)
        # the embedded store's answers, kept until its next write (storage/answers.py)
        if answers is None and isinstance(db, KeepsAnswers):
            answers = db.answers
        self.answers = answers

    async def answer(self, report: Callable[[Executor], Awaitable[T]]) -> T:
        """``report`` run on one snapshot of the store (every number from the same
        events); asked again once on another database when its replica went away."""
        for attempt in range(2):
            try:
                async with self.db.snapshot() as snap:
                    return await report(Executor(snap, self._sketches, self.answers, self.kept))
            except ReadsMoved:
                if attempt:
                    raise
        raise AssertionError("unreachable")

    async def rows(self, query: Query) -> Rows:
        return await self.db.fetch(query.sql, query.params)

    async def dicts(self, query: Query) -> list[dict[str, Any]]:
        """The rows as dicts by the query's column names."""
        return [dict(zip(query.columns, row, strict=True)) for row in await self.rows(query)]

    def union_count(self, ids: list[int]) -> int | None:
        """The visitors of the union of stored sketches ``ids``, when counted before."""
        return self._sketches.union_count(ids)

    def keep_union_count(self, ids: list[int], count: int) -> None:
        self._sketches.keep_union_count(ids, count)

    async def sketches(self, ids: list[int]) -> dict[int, Sketch]:
        """Stored sketches by id: kept ones, the others by primary-key lookups. Raises
        SketchGone when one of them is no longer stored."""
        found = {i: sketch for i in ids if (sketch := self._sketches.get(i)) is not None}
        missing = [i for i in dict.fromkeys(ids) if i not in found]
        if missing:
            for ident, blob in await self.rows(build_sketches(missing)):
                sketch = Sketch.from_bytes(bytes(blob))
                found[int(ident)] = sketch
                self._sketches.put(int(ident), sketch)
            if len(found) < len(set(ids)):
                raise SketchGone
        return found
