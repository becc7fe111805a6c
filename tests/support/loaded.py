"""A store of either kind loaded once for a test module, opened anew by each test."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest

from support.servers import PostgresServer
from tapioca.storage.base import Store
from tapioca.storage.duckdb_store import DuckDBStore
from tapioca.storage.postgres_store import PostgresStore

Load = Callable[[Store], Coroutine[Any, Any, None]]


def loaded_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, name: str, load: Load
) -> Iterator[Callable[[], Store]]:
    """``load`` run once on a new store of ``request.param`` ("duckdb", or "postgres": a
    database of the module's ``pg_server``, dropped at the end); yields how to open it."""
    if request.param == "duckdb":
        path = tmp_path_factory.mktemp(name) / "tapioca.duckdb"
        asyncio.run(load(DuckDBStore(path, readers=2)))
        yield lambda: DuckDBStore(path, readers=2)
        return
    server: PostgresServer = request.getfixturevalue("pg_server")
    database = f"{name.replace('-', '_')}_{uuid.uuid4().hex[:12]}"
    server.create_database(database)
    try:
        asyncio.run(load(PostgresStore(server.dsn(database), max_size=2)))
        yield lambda: PostgresStore(server.dsn(database), max_size=4)
    finally:
        server.drop_database(database, force=True)
