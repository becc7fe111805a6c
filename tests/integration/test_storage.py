"""Both stores: migrations from empty, idempotent bulk writes, and /stats numbers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from support.factories import make_row, random_rows
from support.reference import from_rows, stats
from tapioca.errors import TapiocaError
from tapioca.reports.executor import Executor
from tapioca.reports.stats import site_stats
from tapioca.storage.base import Store
from tapioca.storage.duckdb_store import DuckDBStore
from tapioca.storage.postgres_store import PostgresStore

pytestmark = pytest.mark.integration


@pytest.fixture(params=["duckdb", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "duckdb":
        engine: Store = DuckDBStore(tmp_path / "tapioca.duckdb", readers=2)
    else:
        engine = PostgresStore(request.getfixturevalue("pg_dsn"), max_size=4)
    try:
        yield engine
    finally:
        await engine.close()


async def test_migrations_apply_once_from_empty(store: Store) -> None:
    assert await store.migrate() == list(range(1, 21))
    assert await store.migrate() == []
    rows = await store.fetch("SELECT version, name FROM schema_migration ORDER BY version")
    assert rows == [
        (1, "event"),
        (2, "sites_sessions"),
        (3, "rollups"),
        (4, "rollup_week"),
        (5, "rollup_dirty_day"),
        (6, "rollup_sketch"),
        (7, "rollup_week_visitors"),
        (8, "rollup_redo"),
        (9, "rollup_day_sums"),
        (10, "not_null"),
        (11, "source_spelling"),
        (12, "site_any_origin"),
        (13, "accounts"),
        (14, "commerce"),
        (15, "commerce_lookup"),
        (16, "fact_session_lookup"),
        (17, "product"),
        (18, "derive_began"),
        (19, "orders"),
        (20, "rollup_hour_ahead"),
    ]
    assert await store.fetch("SELECT count(*) FROM event") == [(0,)]


async def test_writes_are_idempotent_on_site_and_event_id(store: Store) -> None:
    await store.migrate()
    first = [make_row(event_id=f"e{i}") for i in range(10)]
    result = await store.write_events([*first, make_row(event_id="e3")])
    assert (result.received, result.inserted, result.duplicates) == (11, 10, 1)
    again = await store.write_events([*first[:4], make_row(event_id="e10")])
    assert (again.inserted, again.duplicates) == (1, 4)
    other_site = await store.write_events([make_row(site_id="blog", event_id="e1")])
    assert other_site.inserted == 1
    counts = await store.fetch("SELECT site_id, count(*) FROM event GROUP BY site_id ORDER BY 1")
    assert counts == [("blog", 1), ("shop", 11)]
    assert await store.fetch("SELECT id FROM site ORDER BY id") == [("blog",), ("shop",)]


async def test_a_stored_event_keeps_its_first_values(store: Store) -> None:
    await store.migrate()
    await store.write_events([make_row(event_id=f"f{i}", path="/first") for i in range(5)])
    again = await store.write_events(
        [make_row(event_id="f2", path="/again"), make_row(event_id="f9", path="/new")]
    )
    assert (again.inserted, again.duplicates) == (1, 1)
    paths = await store.fetch("SELECT event_id, path FROM event ORDER BY event_id")
    assert paths == [(f"f{i}", "/first") for i in range(5)] + [("f9", "/new")]


async def test_overlapping_writes_at_once_store_each_event_once(store: Store) -> None:
    """Two workers writing batches that share events (a redelivery racing its original):
    the one that commits second finds the shared events stored and inserts only its own."""
    await store.migrate()
    a = [make_row(event_id=f"c{i:04d}", path="/a") for i in range(0, 600)]
    b = [make_row(event_id=f"c{i:04d}", path="/b") for i in range(300, 900)]
    first, second = await asyncio.gather(store.write_events(a), store.write_events(b))
    assert first.inserted + second.inserted == 900
    assert first.duplicates + second.duplicates == 300
    rows = await store.fetch("SELECT path, count(*) FROM event GROUP BY path ORDER BY path")
    by_path: dict[str, int] = dict(rows)
    assert sum(by_path.values()) == 900
    assert by_path["/a"] >= 300 and by_path["/b"] >= 300  # each batch's own events


@pytest.mark.parametrize("tz_name", ["UTC", "America/New_York", "Asia/Kolkata"])
async def test_stats_match_reference(store: Store, tz_name: str) -> None:
    await store.migrate()
    rows = random_rows(7, 3000)
    for start in range(0, len(rows), 700):
        await store.write_events(rows[start : start + 700])
    await store.write_events(rows[100:400])  # redelivery: must not count twice
    written = from_rows(rows)
    for site in ("shop", "blog"):
        for day in (date(2025, 11, 13), date(2025, 11, 14), date(2025, 11, 16), None):
            for limit in (3, 10):
                got = await site_stats(
                    Executor(store), site, day.isoformat() if day else None, tz_name, limit
                )
                assert got == stats(written, site, day, tz_name, limit), (site, day, limit)


async def test_day_is_half_open_in_the_zone(store: Store) -> None:
    await store.migrate()
    berlin = ZoneInfo("Europe/Berlin")
    midnight = datetime(2025, 11, 14, tzinfo=berlin).astimezone(UTC)
    rows = [
        make_row(event_id="before", ts=midnight - timedelta(microseconds=1), visitor_id="a"),
        make_row(event_id="start", ts=midnight, visitor_id="b"),
        make_row(event_id="last", ts=midnight + timedelta(days=1, microseconds=-1)),
        make_row(event_id="next", ts=midnight + timedelta(days=1), visitor_id="c"),
    ]
    await store.write_events(rows)
    got = await site_stats(Executor(store), "shop", "2025-11-14", "Europe/Berlin", 10)
    assert (got["total_views"], got["unique_users"]) == (2, 2)


async def test_ties_break_by_path_in_byte_order(store: Store) -> None:
    await store.migrate()
    paths = ["/b", "/a", "/B", "/a-z", "/ä", "/A"]
    await store.write_events([make_row(event_id=f"p{i}", path=p) for i, p in enumerate(paths)])
    got = await site_stats(Executor(store), "shop", "2025-11-14", "UTC", 10)
    assert [p["path"] for p in got["top_paths"]] == sorted(paths)


async def test_site_is_required_unless_only_one(store: Store) -> None:
    await store.migrate()
    with pytest.raises(TapiocaError) as missing:
        await site_stats(Executor(store), None, None, None, 10)
    assert (missing.value.status, missing.value.details[0].field) == (422, "site_id")
    await store.write_events([make_row(site_id="solo", event_id="x")])
    got = await site_stats(Executor(store), None, None, None, 10)
    assert (got["site_id"], got["total_views"]) == ("solo", 1)
    with pytest.raises(TapiocaError) as unknown:
        await site_stats(Executor(store), "ghost", None, None, 10)
    assert (unknown.value.status, unknown.value.code) == (404, "site_not_found")


async def test_postgres_writes_the_idempotent_way_for_a_while_after_a_stored_event(
    pg_dsn: str,
) -> None:
    """A batch meeting a stored event costs a wasted COPY; the batches right after it (a
    run of redelivered entries) skip the attempt, and every event is still stored once."""
    store = PostgresStore(pg_dsn, max_size=2)
    try:
        await store.migrate()
        await store.write_events([make_row(event_id=f"r{i}") for i in range(3)])
        assert store._idempotent_until == 0.0  # straight in: nothing was stored before
        again = await store.write_events([make_row(event_id=f"r{i}") for i in range(2, 6)])
        assert (again.inserted, again.duplicates) == (3, 1)
        assert store._idempotent_until > time.monotonic() + 20
        more = await store.write_events([make_row(event_id=f"r{i}") for i in range(4, 9)])
        assert (more.inserted, more.duplicates) == (3, 2)
        (count,), *_ = await store.fetch("SELECT count(*) FROM event")
        assert count == 9
    finally:
        await store.close()


async def test_times_are_stored_exactly_as_microseconds_or_datetimes(store: Store) -> None:
    """The worker hands times over as microseconds since 1970, imports as datetimes: both
    land as the same instant, to the microsecond, before 1970 and far ahead too."""
    await store.migrate()
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    moments = [
        datetime(2025, 11, 14, 11, 58, 30, 250001, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, 500000, tzinfo=UTC),
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2000, 1, 1, tzinfo=UTC),
    ]
    rows = []
    for i, moment in enumerate(moments):
        as_int = (moment - epoch) // timedelta(microseconds=1)
        rows.append(make_row(event_id=f"int-{i}", ts=as_int, received_at=as_int))
        rows.append(make_row(event_id=f"dt-{i}", ts=moment, received_at=moment))
    assert (await store.write_events(rows)).inserted == len(rows)
    stored = await store.fetch("SELECT event_id, ts, received_at FROM event")
    found = {event_id: (ts, received) for event_id, ts, received in stored}
    for i, moment in enumerate(moments):
        assert found[f"int-{i}"] == (moment, moment)
        assert found[f"dt-{i}"] == (moment, moment)
