"""The scheduler against real stores and a real order database: two schedulers run each
scheduled run once, missed runs are caught up at start, a failed run is tried again
after its backoff, and a source that dies mid-run leaves every day as it was."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from support.mariadb import MariaDBServer
from support.order_db import (
    create_reader_mariadb,
    load_mariadb,
    mariadb_database,
    running_mariadb,
    sample_orders,
)
from tapioca.orders import connectors
from tapioca.orders.source import Sealer, make_source, save_source
from tapioca.scheduler import runs
from tapioca.scheduler.jobs import ORDERS, Context, job_named, jobs, run_job
from tapioca.scheduler.loop import Scheduler
from tapioca.sites.service import SiteChanges, create_site
from tapioca.storage.base import Store
from tapioca.storage.duckdb_store import DuckDBStore
from tapioca.storage.postgres_store import PostgresStore

pytestmark = pytest.mark.integration

SITE = "bistro"
ZONE = "Europe/Paris"
SEALER = Sealer(b"s" * 48)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def source_url(mariadb_server: MariaDBServer) -> AsyncIterator[str]:
    orders, items = sample_orders(500)
    with mariadb_database(mariadb_server) as db:
        await load_mariadb(mariadb_server, db, orders, items)
        yield await create_reader_mariadb(mariadb_server, db, f"r{random.randrange(10**8)}", "pw")


async def connected(store: Store, url: str) -> None:
    await create_site(store, SITE, SiteChanges(timezone=ZONE))
    await save_source(store, SEALER, make_source(SITE, url, ZONE))


async def job_rows(store: Store) -> list[tuple[Any, ...]]:
    return await store.fetch(
        "SELECT job, scheduled_for, cause, status, attempts, details FROM job_run "
        "ORDER BY job, scheduled_for"
    )


async def test_two_schedulers_run_each_scheduled_run_once(pg_dsn: str, source_url: str) -> None:
    first, second = PostgresStore(pg_dsn, max_size=4), PostgresStore(pg_dsn, max_size=4)
    await first.migrate()
    await connected(first, source_url)
    clock = Clock(datetime(2026, 4, 2, 9, tzinfo=UTC))
    only_orders = [job for job in jobs("5 0 * * *", "15 0 * * *") if job.name == ORDERS]
    a = Scheduler(Context(first, first, SEALER, clock=clock), only_orders, timedelta(days=3))
    b = Scheduler(Context(second, second, SEALER, clock=clock), only_orders, timedelta(days=3))
    try:
        ran = await asyncio.gather(a.tick(), b.tick(), a.tick(), b.tick())
        runs_made = [run for found in ran for run in found]
        # 3 days of 00:05 Paris were due: the latest ran, once, the older two are covered
        assert [(r.cause, r.status) for r in runs_made] == [("catch_up", "succeeded")]
        rows = await job_rows(first)
        assert len(rows) == 3
        assert len({row[1] for row in rows}) == 3
        assert [row[4] for row in rows] == [1, 1, 1]
        orders_read = [row[5] for row in rows if "orders_read" in (row[5] or "")]
        assert len(orders_read) == 1
        # a person's run at the same time has its own key, and waits for the batch lock
        by_hand = await asyncio.gather(
            run_job(a.ctx, job_named(ORDERS), SITE, cause="cli"),
            run_job(b.ctx, job_named(ORDERS), SITE, cause="http"),
        )
        assert sorted(run.status for run in by_hand if run) == ["succeeded", "succeeded"]
        assert len(await job_rows(first)) == 5
        # the next day's run: due once, run once
        clock.now += timedelta(days=1)
        again = await asyncio.gather(a.tick(), b.tick())
        assert sum(len(found) for found in again) == 1
    finally:
        await first.close()
        await second.close()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    engine = DuckDBStore(tmp_path / "t.duckdb", readers=1)
    await engine.migrate()
    try:
        yield engine
    finally:
        await engine.close()


async def test_a_failed_run_is_tried_again_after_its_backoff(store: Store, source_url: str) -> None:
    await connected(store, source_url)
    clock = Clock(datetime(2026, 4, 2, 9, tzinfo=UTC))
    ctx = Context(store, store, SEALER, clock=clock)
    only_orders = [job for job in jobs("5 0 * * *", "15 0 * * *") if job.name == ORDERS]
    scheduler = Scheduler(ctx, only_orders, timedelta(days=1))
    [done] = await scheduler.tick()
    assert done.status == "succeeded"
    assert await scheduler.tick() == []
    # the database goes away (its port closed) before the next night
    good = make_source(SITE, source_url, ZONE)
    dead = make_source(SITE, source_url.replace(f":{good.address.port}/", ":1/"), ZONE)
    await save_source(store, SEALER, dead)
    clock.now += timedelta(days=1)
    [failed] = await scheduler.tick()
    assert failed.status == "failed" and "connect" in (failed.error or "").lower()
    assert "127.0.0.1:1/" in (failed.error or "")
    assert "pw" not in (failed.error or "")
    assert await scheduler.tick() == []  # not before its backoff
    clock.now += timedelta(seconds=61)
    [again] = await scheduler.tick()
    assert (again.status, again.attempts) == ("failed", 2)
    await save_source(store, SEALER, good)
    clock.now += timedelta(seconds=119)
    assert await scheduler.tick() == []  # 2 minutes after the second attempt
    clock.now += timedelta(seconds=2)
    [recovered] = await scheduler.tick()
    assert (recovered.status, recovered.attempts, recovered.run_id) == (
        "succeeded", 3, failed.run_id,
    )  # fmt: skip
    listed = await runs.list_runs(store, SITE, ORDERS, 10)
    assert [run.status for run in listed] == ["succeeded", "succeeded"]


@pytest.fixture
def own_mariadb(tmp_path: Path) -> Iterator[MariaDBServer]:
    """A server of this test's own: it is killed mid-run."""
    with running_mariadb(tmp_path / "mariadb") as server:
        yield server


async def test_a_source_that_dies_mid_run_leaves_every_day_as_it_was(
    store: Store, own_mariadb: MariaDBServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    orders, items = sample_orders(30_000)
    with mariadb_database(own_mariadb) as db:
        await load_mariadb(own_mariadb, db, orders[:20_000], items[:20_000])
        url = await create_reader_mariadb(own_mariadb, db, "reader", "pw")
        await connected(store, url)
        ctx = Context(store, store, SEALER, clock=lambda: datetime(2026, 4, 1, tzinfo=UTC))
        first = await run_job(ctx, job_named(ORDERS), SITE, cause="cli")
        assert first is not None and first.status == "succeeded"
        tables = ("order_day", "order_hour", "order_item_day", "order_check", "order_sync")

        async def everything() -> dict[str, Any]:
            return {t: sorted(await store.fetch(f"SELECT * FROM {t}")) for t in tables}

        before = await everything()
        own_mariadb.sql(
            "UPDATE orders SET total_amount = total_amount + 1; "
            "INSERT INTO orders SELECT id + 100000, created_at, status, table_id, total_amount, "
            "user_id, updated_at FROM orders",
            db,
        )
        monkeypatch.setattr(connectors, "PAGE_ORDERS", 50)  # many pages: time to die in
        run = asyncio.create_task(run_job(ctx, job_named(ORDERS), SITE, cause="cli"))
        pages = 0
        while pages < 3 and not run.done():  # the batch is reading pages of orders
            listing = await asyncio.to_thread(own_mariadb.sql, "SHOW FULL PROCESSLIST")
            pages += "LIMIT 50" in listing or "order_items" in listing
        assert not run.done()
        own_mariadb.kill()
        failed = await asyncio.wait_for(run, 120)
        assert failed is not None and failed.status == "failed", failed
        assert await everything() == before
