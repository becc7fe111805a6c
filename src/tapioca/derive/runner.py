"""The one runner of derive jobs, on either store (derive.md, "Process new events by
ingest sequence").

A job takes the events stored since its last run, by ``seq``, up to the largest seq below
which every event is committed (Session.settled_seq), and runs its steps over that range in
one transaction with its new position: a run that fails leaves nothing behind (but what
steps run beside it committed, which a run repeated over the range makes again as it was:
Split), and a run repeated over the same range replaces what it made. One process at a
time runs the jobs (the store's derive lock); the others skip their turn.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from tapioca.storage.base import Lock, Rows, Session, Store


@dataclass(frozen=True, slots=True)
class BulkInsert:
    """Rows into ``table`` in one statement on either store: one array per column
    (``columns``: name and SQL type), unnested side by side."""

    table: str
    columns: tuple[tuple[str, str], ...]

    @property
    def sql(self) -> str:
        names = ", ".join(name for name, _ in self.columns)
        arrays = ", ".join(
            f"unnest(${i}::{kind}[])" for i, (_, kind) in enumerate(self.columns, start=1)
        )
        return f"INSERT INTO {self.table} ({names}) SELECT {arrays}"


@dataclass(frozen=True, slots=True)
class Transform:
    """A derive step computed in Python over many units of work at once: the rows of
    ``rows_sql`` (with ``args``) are grouped by their first ``key_width`` columns,
    ``compute(key, rows)`` gives each group's (BulkInsert, rows) pairs, and the rows of
    every group go in with one statement per BulkInsert (in the order first given)."""

    rows_sql: str
    args: tuple[Any, ...]
    key_width: int
    compute: Callable[[tuple[Any, ...], Rows], list[tuple[BulkInsert, Rows]]]

    def made(self, found: Rows) -> dict[BulkInsert, Rows]:
        groups: dict[tuple[Any, ...], Rows] = {}
        for row in found:
            groups.setdefault(tuple(row[: self.key_width]), []).append(tuple(row[self.key_width :]))
        out: dict[BulkInsert, Rows] = {}
        for key, rows in groups.items():
            for insert, made in self.compute(key, rows):
                out.setdefault(insert, []).extend(made)
        return out


Step = tuple[str, list[Any]] | Transform
BuildSteps = Callable[[int, int], list[Step]]


def temp_table(name: str, select: str, args: list[Any]) -> list[Step]:
    """A temp table of the rows of ``select``, with its statistics: PostgreSQL never
    gathers them for a temp table by itself, and without them it can guess the rows of a
    join with one hundreds of times too few, then look each of them up in a way that
    rereads a whole site's rows (the embedded store gathers them as it writes; there the
    second statement costs a few milliseconds)."""
    return [(f"CREATE TEMP TABLE {name} AS {select}", args), (f"ANALYZE {name}", [])]


_LAST_SEQ = "SELECT last_seq FROM derive_state WHERE name = $1"
# The columns of event by which the steps find and group the events of their range: the
# planner's view of them is refreshed when the range is large for the table.
_RANGE_COLUMNS = ("seq", "is_bot", "event_type", "site_id", "visitor_id", "session_id", "ts",
                  "transaction_id")  # fmt: skip
_SAVE_SEQ = (
    "INSERT INTO derive_state (name, last_seq, began_at) VALUES ($1, $2, now()) "
    "ON CONFLICT (name) DO UPDATE SET last_seq = excluded.last_seq, updated_at = now()"
)


async def _transform(session: Session, step: Transform) -> None:
    found = await session.fetch(step.rows_sql, *step.args)
    made = await asyncio.to_thread(step.made, found)  # CPU work, off the event loop
    for insert, rows in made.items():
        if rows:
            await session.execute(insert.sql, *[list(column) for column in zip(*rows, strict=True)])


async def run_steps(session: Session, steps: list[Step]) -> None:
    """The steps in order; consecutive SQL steps as one unit of work of the session."""
    plain: list[tuple[str, list[Any]]] = []
    for step in steps:
        if isinstance(step, Transform):
            if plain:
                await session.execute_all(plain)
                plain = []
            await _transform(session, step)
        else:
            plain.append(step)
    if plain:
        await session.execute_all(plain)


@asynccontextmanager
async def _background(session: Session) -> AsyncIterator[None]:
    """A transaction of ``session`` with the settings of background work."""
    async with session.transaction():
        for statement in session.dialect.background:
            await session.execute(statement)
        yield


@dataclass(frozen=True, slots=True)
class Split:
    """A run's work over two connections, where the store has a second one (run_derive).
    On the second: ``ahead``, in a transaction committed at once, into tables of its own
    that only ``merge`` reads; then ``beside``, in a transaction committed when done,
    before the run's. On the run's own, at the same time: ``steps``, then, once ``ahead``
    committed, ``merge``. Together they make what the run's ``build`` makes alone, in
    which neither side reads what the other writes (but ``merge`` what ``ahead`` made).
    A run that fails after ``beside`` committed is done again over the same range, so
    ``beside`` must change nothing when run again over a range (derive/product.py)."""

    steps: BuildSteps
    ahead: BuildSteps
    merge: BuildSteps
    beside: BuildSteps


async def _split(
    store: Store, session: Session, build: BuildSteps, split: Split, last: int, upto: int
) -> None:
    """The run's steps over two connections (Split); where the store has no second
    session, ``build``'s in ``session``."""
    async with store.beside() as other:
        if other is None:
            await run_steps(session, build(last, upto))
            return

        async def ahead() -> None:
            async with _background(other):
                await run_steps(other, split.ahead(last, upto))

        made = asyncio.ensure_future(ahead())  # awaited by both sides: each sees its outcome

        async def alongside() -> None:
            await made
            async with _background(other):
                await run_steps(other, split.beside(last, upto))

        async def own() -> None:
            await run_steps(session, split.steps(last, upto))
            await made
            await run_steps(session, split.merge(last, upto))

        done = await asyncio.gather(own(), alongside(), return_exceptions=True)
        for outcome in done:
            if isinstance(outcome, BaseException):
                raise outcome


async def run_derive(
    store: Store, name: str, build: BuildSteps, *, split: Split | None = None,
    pending_sql: str | None = None, max_seqs: int = 0,
) -> int:  # fmt: skip
    """Run job ``name`` over the events it has not processed (at most ``max_seqs`` of them
    when > 0), in one transaction; also when ``pending_sql`` says work is left without new
    events. Returns the seqs done (0 when another process is deriving).

    With ``split``, a run of new events is made over two connections where the store has
    them (PostgreSQL, on the other core): see Split. A failure on either side undoes the
    run's transaction.
    """
    async with store.leading(Lock.DERIVE) as session:
        if session is None:
            return 0
        upto = await session.settled_seq()
        found = await session.fetch(_LAST_SEQ, name)  # the lock held: no other run moves it
        last = int(found[0][0]) if found else 0
        if max_seqs > 0:
            upto = min(upto, last + max_seqs)
        if upto > last:
            await session.refresh_statistics("event", _RANGE_COLUMNS, upto - last)
        async with _background(session):
            if upto <= last:
                pending = pending_sql and await session.fetch(pending_sql)
                if not (pending and pending[0][0]):
                    return 0
                upto = last
            async with session.wide():
                if split is None or upto == last:
                    await run_steps(session, build(last, upto))
                else:
                    await _split(store, session, build, split, last, upto)
            await session.execute(_SAVE_SEQ, name, upto)
        return upto - last


async def reset_derived(store: Store, name: str, tables: list[str]) -> None:
    """Empty ``tables`` and forget job ``name``'s position, in one commit (readers never
    see part of it), while no derive run is under way."""
    async with store.locked(Lock.DERIVE) as session, session.transaction():
        for table in tables:
            await session.execute(f"DELETE FROM {table}")  # names come from code, not input
        await session.execute("DELETE FROM derive_state WHERE name = $1", name)
