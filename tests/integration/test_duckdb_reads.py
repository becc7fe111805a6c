"""The embedded store's reads: past their time limit the statement is interrupted, the
caller gets QueryTimeout (a 503 to an HTTP client), and the reader threads are free
again; a read of more rows than one answer may hold is refused whole (AnswerTooLarge),
never cut short; report statements run on one thread each, derive sessions on every
core."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from tapioca.errors import AnswerTooLarge, QueryTimeout
from tapioca.storage.base import Lock
from tapioca.storage.duckdb_store import DuckDBStore

pytestmark = pytest.mark.integration

# runs for minutes unless interrupted
_LONG = "SELECT sum(a % 7) FROM range(1000000000000) t(a)"


async def test_a_read_past_its_time_limit_is_interrupted_and_the_store_reads_on(
    tmp_path: Path,
) -> None:
    store = DuckDBStore(tmp_path / "t.duckdb", readers=1, query_timeout_s=0.3)
    try:
        began = time.monotonic()
        with pytest.raises(QueryTimeout):
            await store.fetch(_LONG)
        assert time.monotonic() - began < 5.0
        assert await store.fetch("SELECT 42") == [(42,)]
        async with store.snapshot() as snap:
            with pytest.raises(QueryTimeout):
                await snap.fetch(_LONG)
        assert await store.fetch("SELECT 43") == [(43,)]
    finally:
        await store.close()


async def test_a_read_of_more_rows_than_an_answer_holds_is_refused_not_cut(
    tmp_path: Path,
) -> None:
    store = DuckDBStore(tmp_path / "t.duckdb", max_rows=100)
    try:
        rows = await store.fetch("SELECT * FROM range(100)")
        assert [n for (n,) in rows] == list(range(100))
        with pytest.raises(AnswerTooLarge):
            await store.fetch("SELECT * FROM range(101)")
        async with store.snapshot() as snap:
            with pytest.raises(AnswerTooLarge):
                await snap.fetch("SELECT * FROM range(1000)")
        assert await store.fetch("SELECT 45") == [(45,)]
    finally:
        await store.close()


async def test_a_read_that_waits_for_a_reader_past_its_limit_is_given_up(
    tmp_path: Path,
) -> None:
    """Its one reader thread busy past the read's limit: the read times out in its
    time, not once the thread is free."""
    store = DuckDBStore(tmp_path / "t.duckdb", readers=1, query_timeout_s=0.5)
    try:
        busy = asyncio.get_running_loop().run_in_executor(store._readers, time.sleep, 2.0)
        began = time.monotonic()
        with pytest.raises(QueryTimeout):
            await store.fetch("SELECT 1")
        assert time.monotonic() - began < 1.5
        await busy
        assert await store.fetch("SELECT 44") == [(44,)]
    finally:
        await store.close()


async def test_reads_use_one_thread_and_a_derive_run_with_work_every_core(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "t.duckdb")
    threads = "SELECT current_setting('threads')"
    every = max(1, os.cpu_count() or 2)
    try:
        assert await store.fetch(threads) == [(1,)]
        async with store.locked(Lock.DERIVE) as session:
            assert await session.fetch(threads) == [(1,)]
            async with session.transaction(), session.wide():
                assert await session.fetch(threads) == [(every,)]
                assert await store.fetch(threads) == [(every,)]  # a setting of the database
            assert await session.fetch(threads) == [(1,)]
        with pytest.raises(RuntimeError):
            async with store.locked(Lock.DERIVE) as session, session.wide():
                raise RuntimeError("a derive run that fails")
        assert await store.fetch(threads) == [(1,)]
    finally:
        await store.close()
    wide = DuckDBStore(tmp_path / "t.duckdb", threads=3)
    try:
        assert await wide.fetch(threads) == [(3,)]
    finally:
        await wide.close()
