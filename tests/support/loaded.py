"""A store of either kind loaded once for a test module, opened anew by each test."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine, Iterator, Sequence
from typing import Any

import pytest

from support.reference import Event
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


# A site of a test's traffic: its id, time zone and reporting currency.
SiteRow = tuple[str, str, str]


async def load_waves(
    store: Store, sites: Sequence[SiteRow], waves: Sequence[Sequence[Event]],
    batch: int | None = None, incremental: bool = True,
) -> None:  # fmt: skip
    """Migrate ``store``, make ``sites``, then write the ``waves`` in order: each in
    batches of ``batch`` (None: whole) derived every other batch and at the wave's end;
    or (not ``incremental``) every event, then a rebuild of everything derived. Closes
    the store."""
    from support.factories import event_row
    from tapioca.derive.jobs import derive_once, rebuild

    try:
        await store.migrate()
        for site in sites:
            await store.execute(
                "INSERT INTO site (id, timezone, currency) VALUES ($1, $2, $3)", list(site)
            )
        for wave in waves:
            rows = [event_row(e) for e in wave]
            size = batch or max(len(rows), 1)
            for n, start in enumerate(range(0, len(rows), size)):
                await store.write_events(rows[start : start + size])
                if incremental and n % 2:
                    await derive_once(store)
            if incremental:
                await derive_once(store)
        if not incremental:
            await rebuild(store)
    finally:
        await store.close()
