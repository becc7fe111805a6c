"""What the rest of Tapioca needs from a store, whichever engine is behind it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from tapioca.storage.rows import EventRow

Params = Sequence[Any]


Rows = list[tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class Transform:
    """A derive step computed in Python, one unit of work at a time: for every row
    (key) of ``keys_sql``, each of ``clears`` (SQL, the key's columns it takes) and then
    ``rows_sql`` (with the key's columns ``rows_args``) run, and ``compute(key, rows)``
    gives the (INSERT statement, rows) pairs to store."""

    keys_sql: str
    clears: tuple[tuple[str, tuple[int, ...]], ...]
    rows_sql: str
    rows_args: tuple[int, ...]
    compute: Callable[[tuple[Any, ...], Rows], list[tuple[str, Rows]]]


Step = tuple[str, list[Any]] | Transform
BuildSteps = Callable[[int, int], list[Step]]


@dataclass(frozen=True, slots=True)
class WriteResult:
    received: int
    inserted: int

    @property
    def duplicates(self) -> int:
        return self.received - self.inserted


class ReadStore(Protocol):
    """Reports read through this; it can never write."""

    async def fetch(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]: ...


class EventStore(ReadStore, Protocol):
    """The full store: migrations, bulk idempotent writes, reads, health."""

    dialect: str

    async def migrate(self) -> list[int]: ...

    async def write_events(self, rows: list[EventRow]) -> WriteResult: ...

    async def execute(self, sql: str, params: Params = ()) -> None:
        """One write statement on the primary (settings, admin); not for events."""
        ...

    async def run_derive(
        self, name: str, build: BuildSteps, *, pending_sql: str | None = None, max_seqs: int = 0
    ) -> int:
        """Run a derive job over the events not yet processed by it (at most ``max_seqs``
        of them when > 0), in one transaction; also when ``pending_sql`` says there is
        work left without new events."""
        ...

    async def reset_derived(self, name: str, tables: list[str]) -> None: ...

    def is_unavailable(self, exc: BaseException) -> bool:
        """True when ``exc`` means the store is unreachable, not that the data is bad."""
        ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...
