"""Fixtures shared by the integration tests: a migrated store of each kind."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tapioca.queue.redis_stream import connect
from tapioca.storage.base import Store
from tapioca.storage.duckdb_store import DuckDBStore
from tapioca.storage.postgres_store import PostgresStore


@pytest.fixture(params=["duckdb", "postgres"])
async def migrated_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "duckdb":
        engine: Store = DuckDBStore(tmp_path / "s.duckdb", readers=1)
    else:
        engine = PostgresStore(request.getfixturevalue("pg_dsn"), max_size=3)
    await engine.migrate()
    try:
        yield engine
    finally:
        await engine.close()


@pytest.fixture
async def pg_store(pg_dsn: str) -> AsyncIterator[PostgresStore]:
    """A migrated PostgreSQL store of the test's own database."""
    engine = PostgresStore(pg_dsn, max_size=4)
    await engine.migrate()
    try:
        yield engine
    finally:
        await engine.close()


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = connect(redis_url)
    try:
        yield client
    finally:
        await client.aclose()
