"""Production store: PostgreSQL through asyncpg pools; bulk writes with COPY."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from tapioca.errors import StoreUnavailable
from tapioca.logging import get_logger
from tapioca.storage.base import BuildSteps, Params, Transform, WriteResult
from tapioca.storage.migrations import load_migrations
from tapioca.storage.rows import EVENT_COLUMNS, EventRow, dedupe

log = get_logger(__name__)

_MIGRATION_LOCK = 0x7A91_0CA0  # pg_advisory_lock key held while migrating
_WRITE_FENCE = 0x7A91_0CA1  # writers hold it shared; derive takes it to wait them out
_DERIVE_LEADER = 0x7A91_0CA2  # one derive job at a time across all workers
_COLUMN_LIST = ", ".join(EVENT_COLUMNS)
_CREATE_INCOMING = (
    "CREATE TEMP TABLE IF NOT EXISTS incoming ON COMMIT DELETE ROWS AS "
    f"SELECT {_COLUMN_LIST} FROM event WITH NO DATA"
)
_INSERT_EVENTS = (
    f"INSERT INTO event ({_COLUMN_LIST}) SELECT {_COLUMN_LIST} FROM incoming "
    "ON CONFLICT (site_id, event_id) DO NOTHING"
)
_INSERT_SITES = "INSERT INTO site (id) SELECT unnest($1::text[]) ON CONFLICT (id) DO NOTHING"

# After a batch met a stored event, batches go the idempotent way for this long: redelivered
# entries (a worker died) and retrying clients come in runs, and each failed COPY is wasted.
_IDEMPOTENT_FOR_S = 30.0

# Derive runs in the background; a backlog (an import) may take minutes per statement.
_DERIVE_TIMEOUT_S = 3600.0
_WRITE_CONNECTIONS = 4
_LAST_SEQ = "SELECT last_seq FROM derive_state WHERE name = $1"
_SAVE_SEQ = (
    "INSERT INTO derive_state (name, last_seq) VALUES ($1, $2) "
    "ON CONFLICT (name) DO UPDATE SET last_seq = excluded.last_seq, updated_at = now()"
)

# Failures that say "the server is not there", as opposed to "this data is wrong".
_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.exceptions.TooManyConnectionsError,
)


async def _begin_write(con: asyncpg.Connection, sites: list[str]) -> None:
    """The start of a write transaction: hold the write fence (shared), add new sites."""
    await con.execute("SELECT pg_advisory_xact_lock_shared($1)", _WRITE_FENCE)
    await con.execute(_INSERT_SITES, sites)


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


class PostgresStore:
    dialect = "postgres"

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
            async with pool.acquire(timeout=self._acquire_timeout_s) as con:
                records = await con.fetch(sql, *params)
        except Exception as exc:
            if is_connection_error(exc):
                raise StoreUnavailable(type(exc).__name__) from exc
            raise
        return [tuple(r) for r in records]

    async def write_events(self, rows: list[EventRow]) -> WriteResult:
        """One transaction: COPY the batch straight into the event table. A batch that
        holds an event twice, or one stored before (a client's retry, an entry delivered
        again), fails on the unique key; it is then written again the idempotent way:
        COPY into a temp table, insert what is new (the first of each key); the batches of
        the next _IDEMPOTENT_FOR_S seconds go that way at once. The direct COPY costs
        PostgreSQL about half."""
        if not rows:
            return WriteResult(0, 0)
        sites = sorted({row.site_id for row in rows})
        pool = await self._get_write_pool()
        async with pool.acquire(timeout=self._acquire_timeout_s) as con:
            if time.monotonic() >= self._idempotent_until:
                try:
                    async with con.transaction():
                        await _begin_write(con, sites)
                        await con.copy_records_to_table(
                            "event", records=rows, columns=EVENT_COLUMNS
                        )
                    return WriteResult(len(rows), len(rows))
                except asyncpg.UniqueViolationError:
                    self._idempotent_until = time.monotonic() + _IDEMPOTENT_FOR_S
            unique = dedupe(rows)
            async with con.transaction():
                await _begin_write(con, sites)
                await con.execute(_CREATE_INCOMING)
                await con.copy_records_to_table("incoming", records=unique, columns=EVENT_COLUMNS)
                status = await con.execute(_INSERT_EVENTS)
        return WriteResult(len(rows), int(status.rsplit(" ", 1)[1]))

    async def migrate(self) -> list[int]:
        pool = await self._get_pool()
        applied: list[int] = []
        async with pool.acquire(timeout=self._acquire_timeout_s) as con:
            await con.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
            try:
                await con.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migration (version integer PRIMARY KEY, "
                    "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
                )
                done = {r[0] for r in await con.fetch("SELECT version FROM schema_migration")}
                for migration in load_migrations("postgres"):
                    if migration.version in done:
                        continue
                    async with con.transaction():
                        await con.execute(migration.sql)
                        await con.execute(
                            "INSERT INTO schema_migration (version, name) VALUES ($1, $2)",
                            migration.version,
                            migration.name,
                        )
                    applied.append(migration.version)
            finally:
                await con.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)
        if applied:
            log.info("migrations_applied", store="postgres", versions=applied)
        return applied

    async def execute(self, sql: str, params: Params = ()) -> None:
        pool = await self._get_pool()
        async with pool.acquire(timeout=self._acquire_timeout_s) as con:
            await con.execute(sql, *params)

    async def run_derive(
        self, name: str, build: BuildSteps, *, pending_sql: str | None = None, max_seqs: int = 0
    ) -> int:
        """Process new events (by seq) with ``build``; one leader at a time. Returns seqs done."""
        pool = await self._get_pool()
        async with pool.acquire(timeout=self._acquire_timeout_s) as con:
            if not await con.fetchval("SELECT pg_try_advisory_lock($1)", _DERIVE_LEADER):
                return 0  # another worker is deriving
            try:
                # Every seq up to max(seq) is committed once no writer holds the fence.
                await con.execute("SELECT pg_advisory_lock($1)", _WRITE_FENCE)
                try:
                    upto = await con.fetchval("SELECT coalesce(max(seq), 0) FROM event")
                finally:
                    await con.execute("SELECT pg_advisory_unlock($1)", _WRITE_FENCE)
                async with con.transaction():
                    last = await con.fetchval(_LAST_SEQ, name) or 0
                    if max_seqs > 0:
                        upto = min(upto, last + max_seqs)
                    if upto <= last and not (pending_sql and await con.fetchval(pending_sql)):
                        return 0
                    upto = max(upto, last)
                    # Background work: not bound by the reports' statement timeout.
                    await con.execute("SET LOCAL statement_timeout = 0")
                    await con.execute("SET LOCAL work_mem = '256MB'")  # aggregates stay in memory
                    for step in build(last, upto):
                        if isinstance(step, Transform):
                            await self._transform(con, step)
                        else:
                            await con.execute(step[0], *step[1], timeout=_DERIVE_TIMEOUT_S)
                    await con.execute(_SAVE_SEQ, name, upto)
                return int(upto - last)
            finally:
                await con.execute("SELECT pg_advisory_unlock($1)", _DERIVE_LEADER)

    @staticmethod
    async def _transform(con: asyncpg.Connection, step: Transform) -> None:
        wait = _DERIVE_TIMEOUT_S
        for key in await con.fetch(step.keys_sql, timeout=wait):
            for sql, args in step.clears:
                await con.execute(sql, *[key[i] for i in args], timeout=wait)
            rows = await con.fetch(step.rows_sql, *[key[i] for i in step.rows_args], timeout=wait)
            for sql, out in step.compute(tuple(key), [tuple(r) for r in rows]):
                if out:
                    await con.executemany(sql, out, timeout=wait)

    async def reset_derived(self, name: str, tables: list[str]) -> None:
        pool = await self._get_pool()
        async with pool.acquire(timeout=self._acquire_timeout_s) as con, con.transaction():
            for table in tables:
                await con.execute(f"DELETE FROM {table}")  # names come from code, not input
            await con.execute("DELETE FROM derive_state WHERE name = $1", name)

    def is_unavailable(self, exc: BaseException) -> bool:
        return isinstance(exc, StoreUnavailable) or is_connection_error(exc)

    async def ping(self) -> None:
        await self.fetch("SELECT 1")

    async def close(self) -> None:
        for pool in (self._pool, self._write_pool):
            if pool is not None:
                await pool.close()
        self._pool = self._write_pool = None
