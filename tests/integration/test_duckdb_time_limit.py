"""The embedded store's time limit on a read: the statement is interrupted, the caller
gets QueryTimeout (a 503 to an HTTP client), and the reader threads are free again."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tapioca.errors import QueryTimeout
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
