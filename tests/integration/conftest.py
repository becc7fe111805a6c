"""Fixtures shared by the integration tests: a migrated store of each kind."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tapioca.storage.base import EventStore
from tapioca.storage.duckdb_store import DuckDBStore
from tapioca.storage.postgres_store import PostgresStore


@pytest.fixture(params=["duckdb", "postgres"])
async def migrated_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[EventStore]:
    if request.param == "duckdb":
        engine: EventStore = DuckDBStore(tmp_path / "s.duckdb", readers=1)
    else:
        engine = PostgresStore(request.getfixturevalue("pg_dsn"), max_size=3)
    await engine.migrate()
    try:
        yield engine
    finally:
        await engine.close()
