"""The order batch against real order databases (MariaDB and PostgreSQL, throw-away
servers): what it keeps equals a plain-Python count of the same orders (support/
order_reference.py) after every run — the first, one after an order served after
midnight, one after changes 30 and more days back — and the order database is never
written."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from support import order_reference as ref
from support.mariadb import MariaDBServer
from support.order_db import (
    Order,
    OrderItem,
    connect_mariadb,
    create_reader_mariadb,
    create_reader_postgres,
    create_writer_mariadb,
    create_writer_postgres,
    drop_role_postgres,
    drop_user_mariadb,
    load_mariadb,
    load_postgres,
    mariadb_database,
    postgres_database,
)
from support.servers import PostgresServer
from tapioca.orders.batch import run_batch
from tapioca.orders.connectors import open_reader
from tapioca.orders.source import OrderSource, make_source
from tapioca.sites.service import SiteChanges, create_site
from tapioca.storage.base import Store
from tapioca.storage.duckdb_store import DuckDBStore

pytestmark = pytest.mark.integration

SITE = "cafe"
SITE_ZONE = "America/New_York"
SOURCE_ZONE = "Europe/London"  # its naive DATETIMEs; a London day overlaps two New York days
START = datetime(2026, 1, 1, 0, 5, tzinfo=ZoneInfo(SITE_ZONE))
STATUSES = ("SERVED", "PENDING", "CANCELLED")
ITEMS = [("T1", "Tea"), ("C2", "Cake"), ("S3", "Soup"), ("B4", "Bagel")]


@dataclass
class Shop:
    """An order database with seed 004's schema, and what the test wrote into it."""

    kind: str
    admin: str  # URL or DSN with every right
    reader_url: str
    writer_url: str
    orders: dict[int, Order] = field(default_factory=dict)
    items: list[OrderItem] = field(default_factory=list)

    async def execute(self, sql: str, *args: Any) -> None:
        if self.kind == "postgresql":
            con = await asyncpg.connect(self.admin)
            try:
                await con.execute(sql.replace("%s", "${}").format(*range(1, len(args) + 1)), *args)
            finally:
                await con.close()
            return
        con = await connect_mariadb(self.admin, autocommit=True)
        try:
            async with con.cursor() as cursor:
                await cursor.execute(sql, args)
        finally:
            con.close()

    async def add(self, order: Order, lines: list[OrderItem]) -> None:
        await self.execute(
            "INSERT INTO orders (id, created_at, status, table_id, total_amount, user_id, "
            "updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            *order,
        )
        for line in lines:
            await self.execute(
                "INSERT INTO order_items (id, item_id, item_name, quantity, unit_price, "
                "order_id) VALUES (%s, %s, %s, %s, %s, %s)",
                *line,
            )
        self.orders[order.id] = order
        self.items.extend(lines)

    async def change(self, order_id: int, touched: datetime, **values: Any) -> None:
        order = self.orders[order_id]._replace(updated_at=touched, **values)
        sets = ", ".join(f"{name} = %s" for name in [*values, "updated_at"])
        await self.execute(
            f"UPDATE orders SET {sets} WHERE id = %s", *values.values(), touched, order_id
        )
        self.orders[order_id] = order

    async def delete(self, order_id: int) -> None:
        await self.execute("DELETE FROM order_items WHERE order_id = %s", order_id)
        await self.execute("DELETE FROM orders WHERE id = %s", order_id)
        del self.orders[order_id]
        self.items = [i for i in self.items if i.order_id != order_id]


def source_local(moment: datetime) -> datetime:
    return moment.astimezone(ZoneInfo(SOURCE_ZONE)).replace(tzinfo=None)


def generated(days: int, seed: int = 7) -> tuple[list[Order], list[OrderItem]]:
    """A month and more of a café's orders before START: some days closed, some orders
    pending or cancelled, some just before midnight."""
    rng = random.Random(seed)
    orders: list[Order] = []
    items: list[OrderItem] = []
    for day in range(days, 0, -1):
        if day % 9 == 0:
            continue  # closed
        for _ in range(rng.randint(1, 12)):
            minute = rng.choice([rng.randint(7 * 60, 21 * 60), 23 * 60 + rng.randint(0, 59)])
            moment = START - timedelta(days=day) + timedelta(minutes=minute - 5)
            order_id = len(orders) + 1
            lines: list[OrderItem] = []
            for _line in range(rng.randint(1, 3)):
                item_id, name = rng.choice(ITEMS)
                quantity, price = rng.randint(1, 4), Decimal(rng.randint(150, 990)) / 100
                lines.append(
                    OrderItem(len(items) + len(lines) + 1, item_id, name, quantity, price, order_id)
                )
            total = sum((line.quantity * line.unit_price for line in lines), Decimal(0))
            status = rng.choices(STATUSES, weights=(8, 1, 1))[0]
            local = source_local(moment)
            orders.append(Order(order_id, local, status, None, total, None, local))
            items.extend(lines)
    return orders, items


@pytest.fixture(params=["mariadb", "postgresql"])
async def shop(
    request: pytest.FixtureRequest, mariadb_server: MariaDBServer, pg_server: PostgresServer
) -> AsyncIterator[Shop]:
    orders, items = generated(45)
    tag = f"u{random.randrange(10**8)}"
    if request.param == "mariadb":
        with mariadb_database(mariadb_server) as db:
            await load_mariadb(mariadb_server, db, orders, items)
            reader = await create_reader_mariadb(mariadb_server, db, f"r{tag}", "read-pw")
            writer = await create_writer_mariadb(mariadb_server, db, f"w{tag}", "write-pw")
            try:
                yield Shop("mariadb", writer, reader, writer, {o.id: o for o in orders}, items)
            finally:
                await drop_user_mariadb(mariadb_server, f"r{tag}")
                await drop_user_mariadb(mariadb_server, f"w{tag}")
        return
    with postgres_database(pg_server) as dsn:
        await load_postgres(dsn, orders, items)
        reader = await create_reader_postgres(dsn, f"r{tag}", "read-pw")
        writer = await create_writer_postgres(dsn, f"w{tag}", "write-pw")
        try:
            yield Shop("postgresql", dsn, reader, writer, {o.id: o for o in orders}, items)
        finally:
            await drop_role_postgres(dsn, f"r{tag}")
            await drop_role_postgres(dsn, f"w{tag}")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    engine = DuckDBStore(tmp_path / "t.duckdb", readers=1)
    await engine.migrate()
    await create_site(engine, SITE, SiteChanges(timezone=SITE_ZONE))
    try:
        yield engine
    finally:
        await engine.close()


def source_of(shop: Shop, **options: Any) -> OrderSource:
    return make_source(SITE, shop.reader_url, SOURCE_ZONE, **options)


async def kept(store: Store) -> dict[str, Any]:
    days = {
        r[0]: (Decimal(r[2]).quantize(Decimal("0.01")), int(r[1]))
        for r in await store.fetch(
            "SELECT day, orders, revenue FROM order_day WHERE site_id = $1", (SITE,)
        )
    }
    hours = {
        (r[0], int(r[1])): int(r[2])
        for r in await store.fetch(
            "SELECT day, hour, orders FROM order_hour WHERE site_id = $1", (SITE,)
        )
    }
    items = {
        (r[0], r[1]): (int(r[2]), Decimal(r[3]).quantize(Decimal("0.01")), r[4])
        for r in await store.fetch(
            "SELECT day, item_id, quantity, revenue, item_name FROM order_item_day "
            "WHERE site_id = $1",
            (SITE,),
        )
    }
    return {"days": days, "hours": hours, "items": items}


def expected(shop: Shop, through: date) -> dict[str, Any]:
    """The reference's count of the shop's orders: every day from the first counted
    order's to ``through`` (closed days as zeros), 24 hours a day, items per day."""
    zones: dict[str, Any] = {"source_tz": SOURCE_ZONE, "site_tz": SITE_ZONE, "statuses": {"SERVED"}}
    orders = list(shop.orders.values())
    daily = ref.daily(orders, **zones)
    first = min(daily)
    days = {}
    day = first
    while day <= through:
        revenue, count, _aov = daily.get(day, (Decimal("0.00"), 0, Decimal(0)))
        days[day] = (revenue.quantize(Decimal("0.01")), count)
        day += timedelta(days=1)
    hours = ref.hourly(orders, first, through, **zones)
    items = {}
    day = first
    while day <= through:
        for item in ref.top_items(orders, shop.items, day, day, None, **zones):
            items[(day, item[0])] = (
                int(item[2]),
                Decimal(item[3]).quantize(Decimal("0.01")),
                item[1],
            )
        day += timedelta(days=1)
    return {"days": days, "hours": hours, "items": items}


def site_day(moment: datetime) -> date:
    return moment.astimezone(ZoneInfo(SITE_ZONE)).date()


async def test_every_run_keeps_what_the_orders_say(shop: Shop, store: Store) -> None:
    source = source_of(shop)
    now = START.astimezone(UTC)
    first = await run_batch(store, source, SITE_ZONE, now=now)
    assert await kept(store) == expected(shop, site_day(now))
    assert first.orders_read == sum(o.status == "SERVED" for o in shop.orders.values())
    assert first.days_recomputed == len(expected(shop, site_day(now))["days"])

    # served after midnight: created at 23:50 yesterday, in the database only after the run
    late_moment = START - timedelta(minutes=15)
    late = Order(10_001, source_local(late_moment), "SERVED", 3, Decimal("12.30"), None, None)
    await shop.add(late, [OrderItem(20_001, "T1", "Tea", 3, Decimal("4.10"), 10_001)])
    pending = next(o for o in shop.orders.values() if o.status == "PENDING")
    await shop.change(pending.id, source_local(START), status="SERVED")
    now = (START + timedelta(days=1)).astimezone(UTC)
    second = await run_batch(store, source, SITE_ZONE, now=now)
    assert await kept(store) == expected(shop, site_day(now))
    assert (await kept(store))["days"][site_day(late_moment)][1] >= 1
    # the lookback, the two days since, and the days (in New York) of the London day of the
    # order now served
    assert 14 + 2 <= second.days_recomputed <= 14 + 2 + 2

    # changes 30 and more days back: out of the lookback, found by the daily checks
    back = [
        o
        for o in shop.orders.values()
        if o.status == "SERVED"
        and site_day(START) - site_day(o.created_at.replace(tzinfo=ZoneInfo(SOURCE_ZONE)))
        >= timedelta(days=30)
    ]
    await shop.change(
        back[0].id, source_local(now), total_amount=back[0].total_amount + Decimal("100.00")
    )
    await shop.change(back[1].id, source_local(now), status="CANCELLED")
    await shop.delete(back[2].id)
    old_moment = START - timedelta(days=44, hours=-10)
    await shop.add(
        Order(10_002, source_local(old_moment), "SERVED", None, Decimal("9.99"), None, None),
        [OrderItem(20_002, "S3", "Soup", 1, Decimal("9.99"), 10_002)],
    )
    now = (START + timedelta(days=2)).astimezone(UTC)
    third = await run_batch(store, source, SITE_ZONE, now=now)
    assert await kept(store) == expected(shop, site_day(now))
    assert third.days_recomputed > 14 + 1

    # nothing changed: the lookback only, the same numbers
    now = (START + timedelta(days=2, hours=1)).astimezone(UTC)
    fourth = await run_batch(store, source, SITE_ZONE, now=now)
    assert fourth.days_recomputed == 14 + 1
    assert await kept(store) == expected(shop, site_day(now))


async def test_updated_at_finds_changes_without_a_lookback(shop: Shop, store: Store) -> None:
    source = source_of(shop, lookback_days=0, mapping={"updated_at": "updated_at"})
    now = START.astimezone(UTC)
    await run_batch(store, source, SITE_ZONE, now=now)
    assert await kept(store) == expected(shop, site_day(now))
    pending = [o for o in shop.orders.values() if o.status == "PENDING"]
    for order in pending[:3]:
        await shop.change(order.id, source_local(START + timedelta(hours=2)), status="SERVED")
    now = (START + timedelta(hours=3)).astimezone(UTC)
    run = await run_batch(store, source, SITE_ZONE, now=now)
    assert await kept(store) == expected(shop, site_day(now))
    # a London day overlaps the New York day before it and its own
    london_days = {o.created_at.date() for o in pending[:3]}
    touched = {d - timedelta(days=n) for d in london_days for n in (0, 1)}
    assert run.days_recomputed == len(touched | {site_day(now)})


async def test_a_backfill_counts_the_days_asked(shop: Shop, store: Store) -> None:
    source = source_of(shop)
    now = START.astimezone(UTC)
    await run_batch(store, source, SITE_ZONE, now=now)
    day = site_day(START) - timedelta(days=20)
    run = await run_batch(store, source, SITE_ZONE, now=now, asked=(day, day + timedelta(days=2)))
    assert run.days_recomputed == 3
    assert await kept(store) == expected(shop, site_day(now))


@pytest.mark.parametrize("credential", ["reader", "writer"])
async def test_tapioca_never_writes_to_the_order_database(shop: Shop, credential: str) -> None:
    """Its session is read-only whatever the user may do: a write through it fails and
    leaves the database as it was."""
    url = shop.reader_url if credential == "reader" else shop.writer_url
    source = make_source(SITE, url, SOURCE_ZONE)
    before = len(shop.orders)
    attempts = [
        "INSERT INTO orders (id, created_at, status, total_amount) "
        "VALUES (99999, '2026-01-01', 'SERVED', 1)",
        "UPDATE orders SET total_amount = 0",
        "DELETE FROM order_items",
        "CREATE TABLE tapioca_was_here (id int)",
    ]
    for statement in attempts:
        with pytest.raises(Exception) as caught:
            async with open_reader(source) as reader:
                await reader.con.fetch(statement)
        assert "read" in str(caught.value).lower() or "denied" in str(caught.value).lower(), (
            caught.value
        )
    async with open_reader(make_source(SITE, shop.reader_url, SOURCE_ZONE)) as reader:
        assert len(await reader.con.fetch("SELECT id FROM orders")) == before
        assert len(await reader.con.fetch("SELECT id FROM order_items")) == len(shop.items)
