"""What the rest of Tapioca needs from a store, whichever engine is behind it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from tapioca.storage.rows import EventRow

Params = Sequence[Any]
Step = tuple[str, list[Any]]
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

    async def run_derive(self, name: str, build: BuildSteps) -> int:
        """Run a derive job over the events not yet processed by it, in one transaction."""
        ...

    async def reset_derived(self, name: str, tables: list[str]) -> None: ...

    def is_unavailable(self, exc: BaseException) -> bool:
        """True when ``exc`` means the store is unreachable, not that the data is bad."""
        ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...
