"""Embedded store: one DuckDB file behind an async facade.

One writer thread owns the writing connection; a bounded pool of reader threads
each use their own cursor. Nothing here blocks the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import duckdb_extension_icu
import pyarrow as pa

from tapioca.errors import AnswerTooLarge, QueryTimeout
from tapioca.logging import get_logger
from tapioca.model.event import COLUMNS, Kind
from tapioca.storage.answers import AnswerCache
from tapioca.storage.base import Lock, Params, Rows, WriteResult
from tapioca.storage.dialect import DUCKDB
from tapioca.storage.migrations import apply_migrations
from tapioca.storage.rows import COLUMN_KINDS, INSERT_SITES, Row, dedupe, site_ids

T = TypeVar("T")
log = get_logger(__name__)

_ARROW_TYPES = {
    Kind.TIME: pa.timestamp("us", tz="UTC"),
    Kind.MONEY: pa.decimal128(18, 4),
    Kind.INT: pa.int32(),
    Kind.FLAG: pa.bool_(),
}
_ARROW_SCHEMA = pa.schema(
    [
        (name, _ARROW_TYPES.get(kind, pa.string()))
        for name, kind in zip(COLUMNS, COLUMN_KINDS, strict=True)
    ]
)
_COLUMN_LIST = ", ".join(COLUMNS)
_INSERT_EVENTS = (
    f"INSERT INTO event ({_COLUMN_LIST}) SELECT {_COLUMN_LIST} FROM incoming ON CONFLICT DO NOTHING"
)


def icu_extension_path() -> Path:
    """The ICU extension (time zones) from the duckdb-extension-icu wheel: no download."""
    folder = Path(duckdb_extension_icu.__file__).parent / "extensions"
    return folder / f"v{duckdb.__version__}" / "icu.duckdb_extension"


class _Session:
    """The writing connection, held by background work: its statements run one after the
    other on the writer thread while the session holds the store's write lock. A write is
    counted (storage/answers.py) when it commits: a run that writes nothing keeps the
    answers given so far."""

    dialect = DUCKDB

    def __init__(self, store: DuckDBStore) -> None:
        self._store = store
        self._in_transaction = False
        self._wrote = False

    async def execute(self, sql: str, *args: Any) -> None:
        await self._write(lambda con: con.execute(sql, list(args)))

    async def executemany(self, sql: str, rows: Rows) -> None:
        await self._write(lambda con: con.executemany(sql, rows))

    async def execute_all(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> None:
        def run(con: duckdb.DuckDBPyConnection) -> None:
            for sql, args in statements:
                con.execute(sql, list(args))

        await self._write(run)

    async def _write(self, fn: Callable[[duckdb.DuckDBPyConnection], Any]) -> None:
        await self._store._run_writer(fn, counted=not self._in_transaction)
        self._wrote = True

    async def fetch(self, sql: str, *args: Any) -> Rows:
        return await self._store._run_writer(
            lambda con: con.execute(sql, list(args)).fetchall(), counted=False
        )

    async def refresh_statistics(self, table: str, columns: Sequence[str], new_rows: int) -> None:
        """DuckDB keeps its statistics as it writes."""

    @asynccontextmanager
    async def wide(self) -> AsyncIterator[None]:
        """Heavy statements follow (a derive run with work): on every core, while report
        statements, small and several at once, run on one thread each."""
        await self._store._set_threads(self._store._bulk_threads)
        try:
            yield
        finally:
            with contextlib.suppress(duckdb.Error):  # more threads do no harm
                await self._store._set_threads(self._store._threads)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        await self._store._run_writer(lambda con: con.execute("BEGIN"), counted=False)
        self._in_transaction, self._wrote = True, False
        try:
            yield
        except BaseException:
            await self._store._run_writer(lambda con: con.execute("ROLLBACK"), counted=False)
            raise
        finally:
            self._in_transaction = False
        await self._store._run_writer(lambda con: con.execute("COMMIT"), counted=self._wrote)

    async def settled_seq(self) -> int:
        """No write is in flight while the session holds the writer."""
        ((upto,),) = await self.fetch("SELECT coalesce(max(seq), 0) FROM event")
        return int(upto)


class _Snapshot:
    """The reads of one answer: one DuckDB transaction, its statements one at a time. The
    transaction begins with the first statement, in the same job on the reader thread."""

    def __init__(self, store: DuckDBStore, cursor: duckdb.DuckDBPyConnection | None) -> None:
        self._store = store
        self.cursor = cursor
        self.begun = False
        self.answers = store.answers

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        if self.cursor is None:
            self.cursor = self._store._new_cursor()
        if not self.begun:
            self.cursor.execute("BEGIN TRANSACTION")
            self.begun = True
        return self.cursor

    async def fetch(self, sql: str, params: Params = ()) -> Rows:
        return await self._store._read(self._cursor, sql, params)

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[_Snapshot]:
        yield self


class DuckDBStore:
    dialect = DUCKDB

    def __init__(
        self,
        path: Path,
        *,
        readers: int = 4,
        threads: int = 1,
        memory_limit: str = "2GB",
        answer_slots: int = 256,
        query_timeout_s: float = 30.0,
        max_rows: int = 100_000,
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._query_timeout_s = query_timeout_s
        self._max_rows = max_rows
        # Report statements are small and several run at once (one per reader thread):
        # a statement of its own on each core beats each statement spread over every
        # core. The derive job's statements are large: they use every core (wide).
        self._threads = threads
        self._bulk_threads = max(threads, os.cpu_count() or 2)
        self._con = duckdb.connect(
            str(path),
            config={
                "memory_limit": memory_limit,
                "threads": threads,
                "autoload_known_extensions": False,
                "autoinstall_known_extensions": False,
            },
        )
        self._con.execute(f"LOAD '{icu_extension_path()}'")  # time zones, shipped on PyPI
        self._con.execute("SET TimeZone = 'UTC'")
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="duckdb-writer")
        self._write_lock = asyncio.Lock()  # one writer job at a time, or one session
        self._readers = ThreadPoolExecutor(readers, thread_name_prefix="duckdb-reader")
        self._local = threading.local()
        self._snapshot_cursors: list[duckdb.DuckDBPyConnection] = []
        self._closed = False
        self._known_sites: set[str] = set()
        self.answers = AnswerCache(answer_slots)  # this process is the file's only writer

    # -- plumbing -----------------------------------------------------------------
    async def _on_writer(self, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        async with self._write_lock:
            return await self._run_writer(fn)

    async def _run_writer(
        self, fn: Callable[[duckdb.DuckDBPyConnection], T], counted: bool = True
    ) -> T:
        """Run ``fn`` on the writer thread (the caller holds the write lock); ``counted``:
        it may have committed a write, which the answers kept so far predate."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._writer, fn, self._con)
        finally:
            if counted:
                self.answers.written()  # before the caller goes on (storage/answers.py)

    def _new_cursor(self) -> duckdb.DuckDBPyConnection:
        cursor = self._con.cursor()
        cursor.execute("SET TimeZone = 'UTC'")
        return cursor

    def _reader_cursor(self) -> duckdb.DuckDBPyConnection:
        cursor: duckdb.DuckDBPyConnection | None = getattr(self._local, "cursor", None)
        if cursor is None:
            cursor = self._local.cursor = self._new_cursor()
        return cursor

    # -- reads --------------------------------------------------------------------
    async def _read(
        self,
        cursor: Callable[[], duckdb.DuckDBPyConnection],
        sql: str,
        params: Params,
    ) -> Rows:
        """Run ``sql`` on a reader thread with the cursor ``cursor()`` gives there, within
        the query time limit (then interrupted), and at most ``max_rows`` rows (else
        AnswerTooLarge)."""
        holder: dict[str, Any] = {}

        def run() -> list[tuple[Any, ...]]:
            holder["cursor"] = use = cursor()
            use.execute(sql, list(params))
            rows = use.fetchmany(self._max_rows + 1)
            if len(rows) > self._max_rows:
                raise AnswerTooLarge(f"more than {self._max_rows} rows")
            return rows

        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._readers, run)
        # a timer, not wait_for: no task and no shield per statement (reports run several)
        timer = loop.call_later(self._query_timeout_s, _stop_late, future, holder)
        try:
            return await future
        except BaseException as exc:
            if holder.get("late"):
                raise QueryTimeout(f"query exceeded {self._query_timeout_s}s") from exc
            raise
        finally:
            timer.cancel()

    async def fetch(self, sql: str, params: Params = ()) -> Rows:
        return await self._read(self._reader_cursor, sql, params)

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[_Snapshot]:
        """One read transaction on a cursor of its own, kept for the next snapshot: it
        begins with the first statement and ends after the answer, off its path."""
        snap = _Snapshot(self, self._snapshot_cursors.pop() if self._snapshot_cursors else None)
        try:
            yield snap
        finally:
            if snap.cursor is not None:
                if snap.begun:
                    loop = asyncio.get_running_loop()
                    loop.run_in_executor(self._readers, self._end_snapshot, snap.cursor)
                else:
                    self._snapshot_cursors.append(snap.cursor)

    def _end_snapshot(self, cursor: duckdb.DuckDBPyConnection) -> None:
        try:
            cursor.execute("ROLLBACK")
        except duckdb.Error:  # an interrupted statement: this cursor is not kept
            cursor.close()
        else:
            self._snapshot_cursors.append(cursor)

    # -- writes -------------------------------------------------------------------
    async def write_events(self, rows: Sequence[Row]) -> WriteResult:
        if not rows:
            return WriteResult(0, 0)
        unique = dedupe(rows)
        columns = list(zip(*unique, strict=True))
        table = pa.Table.from_arrays(
            [pa.array(col, type=_ARROW_SCHEMA.field(i).type) for i, col in enumerate(columns)],
            schema=_ARROW_SCHEMA,
        )

        new_sites = [site for site in site_ids(unique) if site not in self._known_sites]

        def write(con: duckdb.DuckDBPyConnection) -> int:
            con.register("incoming", table)
            try:
                if not new_sites:  # one statement is one transaction: the cheap path
                    result = con.execute(_INSERT_EVENTS).fetchone()
                    return int(result[0]) if result else 0
                con.execute("BEGIN")
                try:
                    con.execute(INSERT_SITES, [new_sites])  # one statement for any number
                    result = con.execute(_INSERT_EVENTS).fetchone()
                    con.execute("COMMIT")
                except BaseException:
                    con.execute("ROLLBACK")
                    raise
            finally:
                con.unregister("incoming")
            self._known_sites.update(new_sites)
            return int(result[0]) if result else 0

        inserted = await self._on_writer(write)
        return WriteResult(len(rows), inserted)

    async def salt_for(self, day: date) -> bytes:
        def get_or_create(con: duckdb.DuckDBPyConnection) -> bytes:
            con.execute(
                "INSERT INTO visitor_salt VALUES ($1, $2) ON CONFLICT DO NOTHING",
                [day, os.urandom(32)],
            )
            con.execute("DELETE FROM visitor_salt WHERE day < $1", [day])
            row = con.execute("SELECT salt FROM visitor_salt WHERE day = $1", [day]).fetchone()
            assert row is not None
            return bytes(row[0])

        return await self._on_writer(get_or_create)

    # -- lifecycle ----------------------------------------------------------------
    async def migrate(self) -> list[int]:
        applied = await apply_migrations(self)
        if applied:  # keep schema changes out of the WAL (DuckDB cannot replay some ALTERs)
            await self._on_writer(lambda con: con.execute("CHECKPOINT"))
            log.info("migrations_applied", store="duckdb", versions=applied)
        sites = await self.fetch("SELECT id FROM site")
        self._known_sites = {row[0] for row in sites}
        return applied

    async def execute(self, sql: str, params: Params = ()) -> None:
        def run(con: duckdb.DuckDBPyConnection) -> None:
            con.execute(sql, list(params))

        await self._on_writer(run)

    async def change(self, sql: str, params: Params = ()) -> Rows:
        def run(con: duckdb.DuckDBPyConnection) -> Rows:
            return con.execute(sql, list(params)).fetchall()

        return await self._on_writer(run)

    @asynccontextmanager
    async def locked(self, _lock: Lock) -> AsyncIterator[_Session]:
        """This process is the file's only writer: holding the writer is holding any lock."""
        async with self._write_lock:
            yield _Session(self)

    async def _set_threads(self, n: int) -> None:
        if self._bulk_threads != self._threads:  # a setting of the whole database
            await self._run_writer(lambda con: con.execute(f"SET threads = {int(n)}"), False)

    @asynccontextmanager
    async def leading(self, lock: Lock) -> AsyncIterator[_Session | None]:
        async with self.locked(lock) as session:
            yield session

    @asynccontextmanager
    async def beside(self) -> AsyncIterator[_Session | None]:
        """One writer: work beside a session runs in it."""
        yield None

    def is_unavailable(self, exc: BaseException) -> bool:
        return isinstance(exc, duckdb.IOException | QueryTimeout)

    def is_transient(self, exc: BaseException) -> bool:
        """One writer: its writes never meet another's."""
        return False

    async def ping(self) -> None:
        await self.fetch("SELECT 1")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._readers.shutdown(wait=True)
        await self._on_writer(lambda con: con.execute("CHECKPOINT"))
        self._writer.shutdown(wait=True)
        self._con.close()


def _stop_late(future: asyncio.Future[Any], holder: dict[str, Any]) -> None:
    """A read past its time limit: its statement is interrupted (its await then raises),
    or, still waiting for a reader thread, it is given up."""
    holder["late"] = True
    cursor = holder.get("cursor")
    if cursor is not None:
        cursor.interrupt()
    else:
        future.cancel()
