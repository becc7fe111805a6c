"""What the rest of Tapioca needs from a store, whichever engine is behind it."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from tapioca.storage.dialect import Dialect
from tapioca.storage.rows import Row

Params = Sequence[Any]
Rows = list[tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class WriteResult:
    received: int
    inserted: int

    @property
    def duplicates(self) -> int:
        return self.received - self.inserted


class Lock(StrEnum):
    """Work that one process at a time does, across every process of an instance."""

    MIGRATE = "migrate"
    DERIVE = "derive"
    ORDERS = "orders"  # the order-analytics batch (orders/batch.py)


class Session(Protocol):
    """One connection to the primary, held by background work (migrations, derive jobs):
    statements without the reports' time limit, transactions."""

    dialect: Dialect

    async def execute(self, sql: str, *args: Any) -> None: ...

    async def executemany(self, sql: str, rows: Rows) -> None: ...

    async def execute_all(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> None:
        """Statements (SQL, arguments) one after the other, as one unit of work of the
        session (the embedded writer runs them in one job)."""
        ...

    async def fetch(self, sql: str, *args: Any) -> Rows: ...

    def transaction(self) -> AbstractAsyncContextManager[None]: ...

    def wide(self) -> AbstractAsyncContextManager[None]:
        """Heavy statements follow: the embedded store runs them on every core (its
        report statements run on one thread each)."""
        ...

    async def settled_seq(self) -> int:
        """The largest event seq such that every event up to it is committed (writers in
        flight take a seq when they insert and show it when they commit)."""
        ...

    async def refresh_statistics(self, table: str, columns: Sequence[str], new_rows: int) -> None:
        """``new_rows`` rows came into ``table`` since the planner last looked: if they
        are many for its size, let it look again (at ``columns``) before statements read
        them."""
        ...


class ReadStore(Protocol):
    """Reports read through this; it can never write."""

    async def fetch(self, sql: str, params: Params = ()) -> Rows: ...

    def snapshot(self) -> AbstractAsyncContextManager[ReadStore]:
        """Reads that all see one committed state of the store (one transaction), so
        every number of one answer comes from the same events. Inside a snapshot, a
        snapshot is the same one."""
        ...


class Store(ReadStore, Protocol):
    """The whole store: migrations, bulk idempotent writes, reads, sessions, health."""

    dialect: Dialect

    async def migrate(self) -> list[int]: ...

    async def write_events(self, rows: Sequence[Row]) -> WriteResult: ...

    async def execute(self, sql: str, params: Params = ()) -> None:
        """One write statement on the primary (settings, admin); not for events."""
        ...

    async def change(self, sql: str, params: Params = ()) -> Rows:
        """One write statement on the primary with the rows it returns (RETURNING): a
        change that must happen once, such as spending a token, says whether it did."""
        ...

    def locked(self, lock: Lock) -> AbstractAsyncContextManager[Session]:
        """A session holding ``lock``, once every other holder has let it go."""
        ...

    def leading(self, lock: Lock) -> AbstractAsyncContextManager[Session | None]:
        """A session holding ``lock`` if no other process holds it (else None)."""
        ...

    def beside(self) -> AbstractAsyncContextManager[Session | None]:
        """A second session, for statements that can run at the same time as another
        session's transaction, on another core: PostgreSQL's own connection; None on the
        embedded store, whose one writer runs them in the other session."""
        ...

    def is_unavailable(self, exc: BaseException) -> bool:
        """True when ``exc`` means the store is unreachable, not that the data is bad."""
        ...

    def is_transient(self, exc: BaseException) -> bool:
        """True when ``exc`` failed a write for meeting other transactions (a deadlock, a
        serialization failure, a lock timeout), not for its data: written again, it goes
        through."""
        ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...
