"""Embedded store: one DuckDB file behind an async facade.

One writer thread owns the writing connection; a bounded pool of reader threads
each use their own cursor. Nothing here blocks the event loop.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import duckdb_extension_icu
import pyarrow as pa

from tapioca.kit.answers import AnswerCache
from tapioca.logging import get_logger
from tapioca.storage.base import BuildSteps, Params, Transform, WriteResult
from tapioca.storage.migrations import load_migrations
from tapioca.storage.rows import EVENT_COLUMNS, EventRow, dedupe

T = TypeVar("T")
log = get_logger(__name__)

_ARROW_SCHEMA = pa.schema(
    [
        (name, pa.timestamp("us", tz="UTC"))
        if name in ("ts", "received_at")
        else (name, pa.decimal128(18, 4))
        if name == "revenue"
        else (name, pa.int32())
        if name == "screen_width"
        else (name, pa.bool_())
        if name == "is_bot"
        else (name, pa.string())
        for name in EVENT_COLUMNS
    ]
)
_COLUMN_LIST = ", ".join(EVENT_COLUMNS)
_INSERT_EVENTS = (
    f"INSERT INTO event ({_COLUMN_LIST}) SELECT {_COLUMN_LIST} FROM incoming ON CONFLICT DO NOTHING"
)
_INSERT_SITE = "INSERT INTO site (id) VALUES ($1) ON CONFLICT DO NOTHING"


def icu_extension_path() -> Path:
    """The ICU extension (time zones) from the duckdb-extension-icu wheel: no download."""
    folder = Path(duckdb_extension_icu.__file__).parent / "extensions"
    return folder / f"v{duckdb.__version__}" / "icu.duckdb_extension"


_LAST_SEQ = "SELECT last_seq FROM derive_state WHERE name = $1"


def _transform(con: duckdb.DuckDBPyConnection, step: Transform) -> None:
    for key in con.execute(step.keys_sql).fetchall():
        for sql, args in step.clears:
            con.execute(sql, [key[i] for i in args])
        rows = con.execute(step.rows_sql, [key[i] for i in step.rows_args]).fetchall()
        for sql, out in step.compute(tuple(key), rows):
            if out:
                con.executemany(sql, out)


class QueryTimeout(Exception):
    pass


class DuckDBStore:
    dialect = "duckdb"

    def __init__(
        self,
        path: Path,
        *,
        readers: int = 4,
        memory_limit: str = "2GB",
        answer_slots: int = 256,
        query_timeout_s: float = 30.0,
        max_rows: int = 100_000,
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._query_timeout_s = query_timeout_s
        self._max_rows = max_rows
        self._con = duckdb.connect(
            str(path),
            config={
                "memory_limit": memory_limit,
                "threads": os.cpu_count() or 2,
                "autoload_known_extensions": False,
                "autoinstall_known_extensions": False,
            },
        )
        self._con.execute(f"LOAD '{icu_extension_path()}'")  # time zones, shipped on PyPI
        self._con.execute("SET TimeZone = 'UTC'")
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="duckdb-writer")
        self._readers = ThreadPoolExecutor(readers, thread_name_prefix="duckdb-reader")
        self._local = threading.local()
        self._closed = False
        self._known_sites: set[str] = set()
        self.answers = AnswerCache(answer_slots)  # this process is the file's only writer

    # -- plumbing -----------------------------------------------------------------
    async def _on_writer(self, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._writer, fn, self._con)
        finally:
            self.answers.written()  # before the caller goes on (kit/answers.py)

    def _reader_cursor(self) -> duckdb.DuckDBPyConnection:
        cursor: duckdb.DuckDBPyConnection | None = getattr(self._local, "cursor", None)
        if cursor is None:
            cursor = self._con.cursor()
            cursor.execute("SET TimeZone = 'UTC'")
            self._local.cursor = cursor
        return cursor

    # -- reads --------------------------------------------------------------------
    async def fetch(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        holder: dict[str, duckdb.DuckDBPyConnection] = {}

        def run() -> list[tuple[Any, ...]]:
            cursor = self._reader_cursor()
            holder["cursor"] = cursor
            cursor.execute(sql, list(params))
            return cursor.fetchmany(self._max_rows)

        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._readers, run)
        try:
            return await asyncio.wait_for(asyncio.shield(future), self._query_timeout_s)
        except TimeoutError as exc:
            if "cursor" in holder:
                holder["cursor"].interrupt()
            raise QueryTimeout(f"query exceeded {self._query_timeout_s}s") from exc

    # -- writes -------------------------------------------------------------------
    async def write_events(self, rows: list[EventRow]) -> WriteResult:
        if not rows:
            return WriteResult(0, 0)
        unique = dedupe(rows)
        columns = list(zip(*unique, strict=True))
        table = pa.Table.from_arrays(
            [pa.array(col, type=_ARROW_SCHEMA.field(i).type) for i, col in enumerate(columns)],
            schema=_ARROW_SCHEMA,
        )

        new_sites = {row.site_id for row in unique} - self._known_sites

        def write(con: duckdb.DuckDBPyConnection) -> int:
            con.register("incoming", table)
            try:
                if not new_sites:  # one statement is one transaction: the cheap path
                    result = con.execute(_INSERT_EVENTS).fetchone()
                    return int(result[0]) if result else 0
                con.execute("BEGIN")
                try:
                    for site_id in sorted(new_sites):
                        con.execute(_INSERT_SITE, [site_id])
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
        def apply(con: duckdb.DuckDBPyConnection) -> list[int]:
            con.execute(
                "CREATE TABLE IF NOT EXISTS schema_migration (version INTEGER PRIMARY KEY, "
                "name VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            done = {r[0] for r in con.execute("SELECT version FROM schema_migration").fetchall()}
            applied = []
            for migration in load_migrations("duckdb"):
                if migration.version in done:
                    continue
                con.execute("BEGIN")
                try:
                    for statement in migration.statements():
                        con.execute(statement)
                    con.execute(
                        "INSERT INTO schema_migration (version, name) VALUES ($1, $2)",
                        [migration.version, migration.name],
                    )
                    con.execute("COMMIT")
                except BaseException:
                    con.execute("ROLLBACK")
                    raise
                applied.append(migration.version)
            return applied

        applied = await self._on_writer(apply)
        if applied:  # keep schema changes out of the WAL (DuckDB cannot replay some ALTERs)
            await self._on_writer(lambda con: con.execute("CHECKPOINT"))
        sites = await self.fetch("SELECT id FROM site")
        self._known_sites = {row[0] for row in sites}
        if applied:
            log.info("migrations_applied", store="duckdb", versions=applied)
        return applied

    async def execute(self, sql: str, params: Params = ()) -> None:
        def run(con: duckdb.DuckDBPyConnection) -> None:
            con.execute(sql, list(params))

        await self._on_writer(run)
        if sql.lstrip().upper().startswith("INSERT INTO SITE"):
            self._known_sites.add(str(params[0]))

    async def run_derive(
        self, name: str, build: BuildSteps, *, pending_sql: str | None = None, max_seqs: int = 0
    ) -> int:
        """On the writer thread, so no write is in flight while the range is chosen."""

        def derive(con: duckdb.DuckDBPyConnection) -> int:
            upto = int(con.execute("SELECT coalesce(max(seq), 0) FROM event").fetchone()[0])  # type: ignore[index]
            row = con.execute(_LAST_SEQ, [name]).fetchone()
            last = int(row[0]) if row else 0
            if max_seqs > 0:
                upto = min(upto, last + max_seqs)
            if upto <= last:
                pending = pending_sql and con.execute(pending_sql).fetchone()
                if not (pending and pending[0]):
                    return 0
                upto = last
            con.execute("BEGIN")
            try:
                for step in build(last, upto):
                    if isinstance(step, Transform):
                        _transform(con, step)
                    else:
                        con.execute(step[0], step[1])
                con.execute(
                    "INSERT INTO derive_state (name, last_seq) VALUES ($1, $2) ON CONFLICT (name) "
                    "DO UPDATE SET last_seq = excluded.last_seq, updated_at = now()",
                    [name, upto],
                )
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
            return upto - last

        return await self._on_writer(derive)

    async def reset_derived(self, name: str, tables: list[str]) -> None:
        def reset(con: duckdb.DuckDBPyConnection) -> None:
            con.execute("BEGIN")  # one commit: readers never see part of it (/stats)
            try:
                for table in tables:
                    con.execute(f"DELETE FROM {table}")  # names come from code, not input
                con.execute("DELETE FROM derive_state WHERE name = $1", [name])
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise

        await self._on_writer(reset)

    def is_unavailable(self, exc: BaseException) -> bool:
        return isinstance(exc, duckdb.IOException | QueryTimeout)

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
