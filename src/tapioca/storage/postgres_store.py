"""Production store: PostgreSQL through asyncpg pools; bulk writes with COPY."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

import asyncpg

from tapioca.errors import QueryTimeout, ReadsMoved, StoreUnavailable
from tapioca.logging import get_logger
from tapioca.model.event import COLUMNS
from tapioca.storage.base import Lock, Params, Rows, WriteResult
from tapioca.storage.dialect import POSTGRES
from tapioca.storage.migrations import apply_migrations
from tapioca.storage.rows import INSERT_SITES, Row, dedupe, in_key_order, site_ids

log = get_logger(__name__)

# pg_advisory_lock keys: of the work one process does at a time, and the write fence
# (writers hold it shared; a derive run takes it to wait them out).
_LOCKS = {Lock.MIGRATE: 0x7A91_0CA0, Lock.DERIVE: 0x7A91_0CA2, Lock.ORDERS: 0x7A91_0CA3}
_WRITE_FENCE = 0x7A91_0CA1
_COLUMN_LIST = ", ".join(COLUMNS)
_CREATE_INCOMING = (
    "CREATE TEMP TABLE IF NOT EXISTS incoming ON COMMIT DELETE ROWS AS "
    f"SELECT {_COLUMN_LIST} FROM event WITH NO DATA"
)
# Rows go in in key order (rows.in_key_order), so that writers never deadlock each other;
# the ORDER BY keeps the order of the COPY (the key columns compare as "C" in both).
_INSERT_EVENTS = (
    f"INSERT INTO event ({_COLUMN_LIST}) SELECT {_COLUMN_LIST} FROM incoming "
    'ORDER BY site_id COLLATE "C", event_id COLLATE "C" '
    "ON CONFLICT (site_id, event_id) DO NOTHING"
)

# After a batch met a stored event, batches go the idempotent way for this long: redelivered
# entries (a worker died) and retrying clients come in runs, and each failed COPY is wasted.
_IDEMPOTENT_FOR_S = 30.0

# Background work (derive, migrations): a backlog (an import) may take minutes a statement.
_BACKGROUND_TIMEOUT_S = 3600.0
_WRITE_CONNECTIONS = 4

# Failures that say "the server is not there", as opposed to "this data is wrong".
_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.InterfaceError,
    # the server ended the connection between two statements (e.g. a replica shutting
    # down): the next statement finds the client's protocol out of step
    asyncpg.exceptions.InternalClientError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.exceptions.TooManyConnectionsError,
)
# Failures of a transaction that met others, not of its data: written again, it goes through.
_TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.DeadlockDetectedError,  # 40P01
    asyncpg.exceptions.SerializationError,  # 40001
    asyncpg.exceptions.LockNotAvailableError,  # 55P03: lock_timeout, where the server sets one
)


async def _begin_write(con: asyncpg.Connection, sites: list[str]) -> None:
    """The start of a write transaction: hold the write fence (shared), add new sites
    (before any event, in the array's order: sorted)."""
    await con.execute("SELECT pg_advisory_xact_lock_shared($1)", _WRITE_FENCE)
    await con.execute(INSERT_SITES, sites)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_PG_EPOCH_MICROS = 946_684_800_000_000  # 2000-01-01, PostgreSQL's epoch, in Unix microseconds


def _timestamptz_out(value: datetime | int) -> tuple[int]:
    """A row's time for COPY: microseconds since 1970 (as the worker makes them) or an
    aware datetime, as PostgreSQL's binary timestamptz (microseconds since 2000)."""
    if isinstance(value, int):
        return (value - _PG_EPOCH_MICROS,)
    return ((value - _EPOCH) // _MICROSECOND - _PG_EPOCH_MICROS,)


def _timestamptz_in(value: tuple[int]) -> datetime:
    return _EPOCH + timedelta(microseconds=value[0] + _PG_EPOCH_MICROS)


async def _write_codecs(con: asyncpg.Connection) -> None:
    """The event writers' connections take times as integers: asyncpg's own encoding of
    a datetime costs four times as much."""
    await con.set_type_codec(
        "timestamptz",
        schema="pg_catalog",
        encoder=_timestamptz_out,
        decoder=_timestamptz_in,
        format="tuple",
    )


def is_connection_error(exc: BaseException) -> bool:
    if isinstance(exc, asyncpg.exceptions.QueryCanceledError):
        return False  # statement timeout: the query's own fault
    return isinstance(exc, _CONNECTION_ERRORS)


def is_transient_error(exc: BaseException) -> bool:
    return isinstance(exc, _TRANSIENT_ERRORS)


def store_error(exc: BaseException) -> BaseException:
    """The error the rest of Tapioca sees for a failed read: the store is unreachable, a
    statement ran out of time, or the driver's own (a fault of the query)."""
    if isinstance(exc, asyncpg.exceptions.QueryCanceledError):
        return QueryTimeout("the statement timeout cancelled the query")
    if is_connection_error(exc):
        return StoreUnavailable(type(exc).__name__)
    return exc


def reraise(exc: BaseException) -> NoReturn:
    """Raise a failed read's error as the rest of Tapioca sees it (store_error)."""
    translated = store_error(exc)
    if translated is exc:
        raise exc
    raise translated from exc


class Snapshot:
    """The reads of one answer: one connection in one REPEATABLE READ, read-only
    transaction (also on a streaming replica). ``moved``: a connection-class failure
    means the answer can be asked again elsewhere (ReadsMoved)."""

    def __init__(self, con: asyncpg.Connection, moved: bool = False) -> None:
        self._con = con
        self._moved = moved

    async def fetch(self, sql: str, params: Params = ()) -> Rows:
        try:
            records = await self._con.fetch(sql, *params)
        except Exception as exc:
            if self._moved and is_connection_error(exc):
                raise ReadsMoved(type(exc).__name__) from exc
            reraise(exc)
        return [tuple(r) for r in records]

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[Snapshot]:
        yield self


@asynccontextmanager
async def open_snapshot(
    pool: asyncpg.Pool, acquire_timeout_s: float, moved: bool = False
) -> AsyncIterator[Snapshot]:
    """A snapshot on a connection of ``pool``; raises the driver's error when the
    connection or its BEGIN fails (the caller decides where to read instead).

    The transaction only reads, so it ends with ROLLBACK whatever happened; when the
    connection is gone by then there is nothing left to end, and the answer's own outcome
    (its rows, or the error it met, such as ReadsMoved) is what the caller sees."""
    async with reading(pool, acquire_timeout_s) as con:
        await con.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try:
            yield Snapshot(con, moved)
        finally:
            await _end_read(con)


@asynccontextmanager
async def reading(
    pool: asyncpg.Pool, acquire_timeout_s: float
) -> AsyncIterator[asyncpg.pool.PoolConnectionProxy]:
    """A connection of ``pool`` for reads. Given back, a connection is reset (a round
    trip); when the server ended it after the reads (a replica or the primary stopping),
    the reset fails and the pool drops the connection, and that failure is not the
    answer's: the rows read stand, and so does an error the reads met."""
    con = await pool.acquire(timeout=acquire_timeout_s)
    try:
        yield con
    finally:
        try:
            await pool.release(con)
        except Exception as exc:
            if not is_connection_error(exc):
                raise


async def _end_read(con: asyncpg.Connection) -> None:
    try:
        if not con.is_closed():  # else the pool replaces it
            await con.execute("ROLLBACK")
    except Exception as exc:
        if not is_connection_error(exc):
            raise


# autovacuum's thresholds of a new ANALYZE (autovacuum_analyze_scale_factor, _threshold
# raised from 50): so many new rows make the planner's counts of a table stale.
_STALE_SHARE, _STALE_ROWS = 0.1, 1_000
_STATISTICS_WAIT_MS = 200  # for the table's lock, held by a vacuum or another ANALYZE


class _Session:
    """A pooled connection held by background work: no statement timeout to speak of."""

    dialect = POSTGRES

    def __init__(self, con: asyncpg.Connection) -> None:
        self._con = con

    @asynccontextmanager
    async def wide(self) -> AsyncIterator[None]:
        """PostgreSQL plans its own parallel workers for background work."""
        yield

    async def execute(self, sql: str, *args: Any) -> None:
        await self._con.execute(sql, *args, timeout=_BACKGROUND_TIMEOUT_S)

    async def executemany(self, sql: str, rows: Rows) -> None:
        await self._con.executemany(sql, rows, timeout=_BACKGROUND_TIMEOUT_S)

    async def execute_all(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> None:
        for sql, args in statements:
            await self._con.execute(sql, *args, timeout=_BACKGROUND_TIMEOUT_S)

    async def fetch(self, sql: str, *args: Any) -> Rows:
        records = await self._con.fetch(sql, *args, timeout=_BACKGROUND_TIMEOUT_S)
        return [tuple(r) for r in records]

    def transaction(self) -> AbstractAsyncContextManager[None]:
        return self._con.transaction()  # type: ignore[no-any-return]

    async def refresh_statistics(self, table: str, columns: Sequence[str], new_rows: int) -> None:
        """ANALYZE ``columns`` of ``table`` (its own commit; the table's row count too)
        when ``new_rows`` exceed a tenth of the rows it was last counted with, as
        autovacuum would, but before the statements that read them and not up to a
        minute later: a burst into a young table is otherwise planned as a few rows, and
        sorted where it would be hashed. A vacuum of the table under way (one that
        prevents wraparound is not cancelled for us) is not waited for: the run goes on
        with the counts there are. Names come from code, not input."""
        known = await self._con.fetchval(
            "SELECT reltuples FROM pg_class WHERE oid = to_regclass($1)", table
        )
        if known is None or new_rows <= max(known, 0) * _STALE_SHARE + _STALE_ROWS:
            return
        try:
            async with self._con.transaction():
                await self._con.execute(f"SET LOCAL lock_timeout = {_STATISTICS_WAIT_MS}")
                analyze = f"ANALYZE {table} ({', '.join(columns)})"
                await self._con.execute(analyze, timeout=_BACKGROUND_TIMEOUT_S)
        except asyncpg.exceptions.LockNotAvailableError:
            log.info("statistics_skipped", table=table, new_rows=new_rows)

    async def settled_seq(self) -> int:
        """Every seq up to max(seq) is committed once no writer holds the fence."""
        await self._con.execute("SELECT pg_advisory_lock($1)", _WRITE_FENCE)
        try:
            return int(await self._con.fetchval("SELECT coalesce(max(seq), 0) FROM event"))
        finally:
            await self._con.execute("SELECT pg_advisory_unlock($1)", _WRITE_FENCE)


class PostgresStore:
    dialect = POSTGRES

    def __init__(
        self,
        dsn: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        statement_timeout_ms: int = 30_000,
        acquire_timeout_s: float = 5.0,
    ) -> None:
        self._dsn = dsn
        self._min = min_size
        self._max = max_size
        self._statement_timeout_ms = statement_timeout_ms
        self._acquire_timeout_s = acquire_timeout_s
        self._pool: asyncpg.Pool | None = None
        self._write_pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()
        self._idempotent_until = 0.0  # monotonic time until which writes skip the direct COPY

    async def _create_pool(self, **options: Any) -> asyncpg.Pool:
        try:
            return await asyncpg.create_pool(
                self._dsn,
                timeout=self._acquire_timeout_s,
                command_timeout=max(self._statement_timeout_ms / 1000 + 5, 10),
                server_settings={
                    "statement_timeout": str(self._statement_timeout_ms),
                    "application_name": "tapioca",
                    "jit": "off",  # compiling costs more than small queries take
                },
                **options,
            )
        except Exception as exc:
            if is_connection_error(exc):
                raise StoreUnavailable(type(exc).__name__) from exc
            raise

    async def _get_pool(self) -> asyncpg.Pool:
        if self._pool is not None:
            return self._pool
        async with self._lock:
            if self._pool is None:
                self._pool = await self._create_pool(min_size=self._min, max_size=self._max)
        assert self._pool is not None
        return self._pool

    async def _get_write_pool(self) -> asyncpg.Pool:
        """The connections that write events (a few: a worker holds few batches), opened
        with the first write: one opened in the middle of a burst costs its batch ~0.3 s."""
        if self._write_pool is not None:
            return self._write_pool
        async with self._lock:
            if self._write_pool is None:
                self._write_pool = await self._create_pool(
                    min_size=2, max_size=_WRITE_CONNECTIONS, init=_write_codecs
                )
        assert self._write_pool is not None
        return self._write_pool

    async def fetch(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        pool = await self._get_pool()
        try:
            async with reading(pool, self._acquire_timeout_s) as con:
                records = await con.fetch(sql, *params)
        except Exception as exc:
            reraise(exc)
        return [tuple(r) for r in records]

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[Snapshot]:
        async with AsyncExitStack() as stack:
            try:
                pool = await self._get_pool()
                snap = await stack.enter_async_context(open_snapshot(pool, self._acquire_timeout_s))
            except Exception as exc:
                reraise(exc)
            yield snap

    async def write_events(self, rows: Sequence[Row]) -> WriteResult:
        """One transaction: COPY the batch straight into the event table. A batch that
        holds an event twice, or one stored before (a client's retry, an entry delivered
        again), fails on the unique key; it is then written again the idempotent way:
        COPY into a temp table, insert what is new (the first of each key); the batches of
        the next _IDEMPOTENT_FOR_S seconds go that way at once. The direct COPY costs
        PostgreSQL about half. Either way sites, then events, go in in key order: writers
        wait for each other on a shared key, but never in a cycle (rows.in_key_order)."""
        if not rows:
            return WriteResult(0, 0)
        rows = in_key_order(rows)
        sites = site_ids(rows)
        pool = await self._get_write_pool()
        async with pool.acquire(timeout=self._acquire_timeout_s) as con:
            if time.monotonic() >= self._idempotent_until:
                try:
                    async with con.transaction():
                        await _begin_write(con, sites)
                        await con.copy_records_to_table("event", records=rows, columns=COLUMNS)
                    return WriteResult(len(rows), len(rows))
                except asyncpg.UniqueViolationError:
                    self._idempotent_until = time.monotonic() + _IDEMPOTENT_FOR_S
            unique = dedupe(rows)
            async with con.transaction():
                await _begin_write(con, sites)
                await con.execute(_CREATE_INCOMING)
                await con.copy_records_to_table("incoming", records=unique, columns=COLUMNS)
                status = await con.execute(_INSERT_EVENTS)
        return WriteResult(len(rows), int(status.rsplit(" ", 1)[1]))

    async def migrate(self) -> list[int]:
        applied = await apply_migrations(self)
        if applied:
            log.info("migrations_applied", store="postgres", versions=applied)
        return applied

    async def execute(self, sql: str, params: Params = ()) -> None:
        pool = await self._get_pool()
        async with pool.acquire(timeout=self._acquire_timeout_s) as con:
            await con.execute(sql, *params)

    async def change(self, sql: str, params: Params = ()) -> Rows:
        return await self.fetch(sql, params)  # this store is the primary: its reads may write

    @asynccontextmanager
    async def locked(self, lock: Lock) -> AsyncIterator[_Session]:
        pool = await self._get_pool()
        async with pool.acquire(timeout=self._acquire_timeout_s) as con:
            await con.execute("SELECT pg_advisory_lock($1)", _LOCKS[lock])
            try:
                yield _Session(con)
            finally:
                await con.execute("SELECT pg_advisory_unlock($1)", _LOCKS[lock])

    @asynccontextmanager
    async def leading(self, lock: Lock) -> AsyncIterator[_Session | None]:
        pool = await self._get_pool()
        async with pool.acquire(timeout=self._acquire_timeout_s) as con:
            if not await con.fetchval("SELECT pg_try_advisory_lock($1)", _LOCKS[lock]):
                yield None  # another process holds it
                return
            try:
                yield _Session(con)
            finally:
                await con.execute("SELECT pg_advisory_unlock($1)", _LOCKS[lock])

    @asynccontextmanager
    async def beside(self) -> AsyncIterator[_Session | None]:
        """A second pooled connection; none with a pool of one (TAPIOCA_PG_POOL_MAX=1), in
        which the session that asks holds the only one."""
        if self._max < 2:
            yield None
            return
        pool = await self._get_pool()
        async with pool.acquire(timeout=self._acquire_timeout_s) as con:
            yield _Session(con)

    def is_unavailable(self, exc: BaseException) -> bool:
        return isinstance(exc, StoreUnavailable) or is_connection_error(exc)

    def is_transient(self, exc: BaseException) -> bool:
        return is_transient_error(exc)

    async def ping(self) -> None:
        await self.fetch("SELECT 1")

    async def close(self) -> None:
        for pool in (self._pool, self._write_pool):
            if pool is not None:
                await pool.close()
        self._pool = self._write_pool = None
