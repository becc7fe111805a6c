"""The order-source test support on real servers: the UCI Online Retail data
(/work/shared/data/README.md) loaded into a throw-away MariaDB and into PostgreSQL
(support/order_db.py), the README's facts checked by SQL against each database and by
the plain-Python reference (support/order_reference.py), exactly; and the reader user
refused every write while the writer may write. The data is parsed once per module and
loaded once per database."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import asyncmy
import asyncpg
import pytest
import pytest_asyncio

from support.order_db import (
    CANCELLED,
    SERVED,
    VOID,
    Order,
    OrderItem,
    connect_mariadb,
    create_reader_mariadb,
    create_reader_postgres,
    create_writer_mariadb,
    create_writer_postgres,
    drop_role_postgres,
    load_mariadb,
    load_postgres,
    mariadb_database,
    postgres_database,
    retail_orders,
    running_mariadb,
)
from support.order_reference import aov, daily, hourly, site_time, top_items
from support.servers import PostgresServer

pytestmark = pytest.mark.integration
on_module_loop = pytest.mark.asyncio(loop_scope="module")  # the loop of the `source` fixture

UK = "Europe/London"
SERVED_ORDERS = 19_960
REVENUE = Decimal("10666684.54")
TRADING_DAYS = 305
BUSIEST_HOUR = 12
ORDERS, ITEMS = 25_900, 541_509
BY_STATUS = {SERVED: 19_960, CANCELLED: 3_836, VOID: 2_104}
SATURDAY = 5  # date.weekday()


@pytest.fixture(scope="module")
def retail() -> tuple[list[Order], list[OrderItem]]:
    return retail_orders()


# -- the reference -----------------------------------------------------------------------


def test_retail_rows_follow_the_rule(retail: tuple[list[Order], list[OrderItem]]) -> None:
    orders, items = retail
    assert (len(orders), len(items)) == (ORDERS, ITEMS)
    assert len({o.id for o in orders}) == ORDERS and len({i.id for i in items}) == ITEMS
    assert Counter(o.status for o in orders) == BY_STATUS
    by_id = {o.id: o for o in orders}
    assert by_id[10_536_379].status == CANCELLED and by_id[10_536_379].total_amount < 0
    assert by_id[563185].status == SERVED  # 'A563185', Adjust bad debt
    assert by_id[563185].total_amount == Decimal("11062.06")
    assert by_id[536365].created_at == datetime(2010, 12, 1, 8, 26)
    assert all(o.updated_at == o.created_at and o.table_id is None for o in orders)
    # a SERVED order's total is exactly Σ quantity * unit price over its items
    line_totals: dict[int, Decimal] = {}
    for item in items:
        line_totals[item.order_id] = (
            line_totals.get(item.order_id, Decimal(0)) + item.quantity * item.unit_price
        )
    served = [o for o in orders if o.status == SERVED]
    assert all(line_totals[o.id] == o.total_amount for o in served)
    assert all(
        i.quantity > 0 and i.unit_price >= 0 for i in items if by_id[i.order_id].status == SERVED
    )


def test_reference_facts(retail: tuple[list[Order], list[OrderItem]]) -> None:
    orders, items = retail
    days = daily(orders, source_tz=UK, site_tz=UK)
    assert len(days) == TRADING_DAYS
    assert not [day for day in days if day.weekday() == SATURDAY]
    assert sum(row[1] for row in days.values()) == SERVED_ORDERS
    assert sum((row[0] for row in days.values()), Decimal(0)) == REVENUE
    assert all(row[2] == aov(row[0], row[1]) for row in days.values())
    assert min(days) == date(2010, 12, 1) and max(days) == date(2011, 12, 9)

    table = hourly(orders, source_tz=UK, site_tz=UK)
    assert len(table) == 374 * 24  # every hour of every day, trading or not
    per_hour = Counter[int]()
    for (_, hour), count in table.items():
        per_hour[hour] += count
    assert per_hour.most_common(1)[0][0] == BUSIEST_HOUR
    assert per_hour.total() == SERVED_ORDERS

    everything = top_items(orders, items, limit=None, source_tz=UK, site_tz=UK)
    assert sum((row[3] for row in everything), Decimal(0)) == REVENUE
    assert top_items(orders, items, limit=3, source_tz=UK, site_tz=UK) == everything[:3]
    assert everything[0][0] == "DOT"  # DOTCOM POSTAGE earns most
    # another site zone moves orders between days, never in or out of the whole range
    tokyo = daily(orders, source_tz=UK, site_tz="Asia/Tokyo")
    assert tokyo != days
    assert sum(row[1] for row in tokyo.values()) == SERVED_ORDERS
    assert sum((row[0] for row in tokyo.values()), Decimal(0)) == REVENUE


def test_reference_rounding_and_zones() -> None:
    assert aov(Decimal("0.05"), 2) == Decimal("0.02")  # 0.025: half to even
    assert aov(Decimal("0.15"), 2) == Decimal("0.08")  # 0.075
    assert aov(Decimal("-0.05"), 2) == Decimal("-0.02")
    assert aov(Decimal("10.00"), 3) == Decimal("3.33")
    # 2011-03-27 01:30 does not exist in London (clocks go forward at 01:00): read with the
    # offset from before the gap (GMT); 2011-10-30 01:30 happens twice: the first (BST)
    gap = site_time(datetime(2011, 3, 27, 1, 30), UK, "UTC")
    assert gap.replace(tzinfo=None) == datetime(2011, 3, 27, 1, 30)
    twice = site_time(datetime(2011, 10, 30, 1, 30), UK, "UTC")
    assert twice.replace(tzinfo=None) == datetime(2011, 10, 30, 0, 30)


# -- the databases -----------------------------------------------------------------------


@dataclass
class Source:
    kind: str  # "mariadb" or "postgres"
    admin: str
    reader: str
    writer: str
    load_seconds: float


async def fetch(kind: str, url: str, sql: str) -> list[tuple[Any, ...]]:
    if kind == "mariadb":
        conn = await connect_mariadb(url, autocommit=True)
        try:
            async with conn.cursor() as cur:
                await cur.execute(sql)
                return [tuple(row) for row in await cur.fetchall()]
        finally:
            await conn.ensure_closed()
    pg = await asyncpg.connect(url)
    try:
        return [tuple(row) for row in await pg.fetch(sql)]
    finally:
        await pg.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["mariadb", "postgres"])
async def source(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    retail: tuple[list[Order], list[OrderItem]],
) -> AsyncIterator[Source]:
    orders, items = retail
    suffix = uuid.uuid4().hex[:8]
    reader, writer = f"reader_{suffix}", f"writer_{suffix}"
    if request.param == "mariadb":
        with (
            running_mariadb(tmp_path_factory.mktemp("mariadb")) as server,
            mariadb_database(server, "shop") as db,
        ):
            started = time.monotonic()
            await load_mariadb(server, db, orders, items)
            seconds = time.monotonic() - started
            yield Source(
                "mariadb",
                server.url("root", "", db),
                await create_reader_mariadb(server, db, reader, "read-only pw"),
                await create_writer_mariadb(server, db, writer, "writer:pw@1"),
                seconds,
            )
        return
    pg_server: PostgresServer = request.getfixturevalue("pg_server")
    with postgres_database(pg_server) as dsn:
        started = time.monotonic()
        await load_postgres(dsn, orders, items)
        seconds = time.monotonic() - started
        try:
            yield Source(
                "postgres",
                dsn,
                await create_reader_postgres(dsn, reader, "read-only pw"),
                await create_writer_postgres(dsn, writer, "writer:pw@1"),
                seconds,
            )
        finally:
            await drop_role_postgres(dsn, reader)
            await drop_role_postgres(dsn, writer)


SQL = {
    "mariadb": {
        "day": "DATE(created_at)",
        "hour": "HOUR(created_at)",
        "saturday": "DAYOFWEEK(created_at) = 7",
    },
    "postgres": {
        "day": "created_at::date",
        "hour": "EXTRACT(HOUR FROM created_at)::int",
        "saturday": "EXTRACT(ISODOW FROM created_at) = 6",
    },
}


@on_module_loop
async def test_load_is_exact(source: Source, retail: tuple[list[Order], list[OrderItem]]) -> None:
    orders, items = retail
    print(
        f"{source.kind}: loaded {len(orders)} orders, {len(items)} items in "
        f"{source.load_seconds:.2f} s"
    )
    by_status = await fetch(
        source.kind,
        source.reader,
        "SELECT status, COUNT(*), SUM(total_amount), COUNT(user_id), MIN(created_at), "
        "MAX(updated_at) FROM orders GROUP BY status ORDER BY status",
    )
    expected = []
    for status in sorted(BY_STATUS):
        mine = [o for o in orders if o.status == status]
        expected.append(
            (
                status,
                len(mine),
                sum((o.total_amount for o in mine), Decimal(0)),
                sum(1 for o in mine if o.user_id is not None),
                min(o.created_at for o in mine),
                max(o.created_at for o in mine),
            )
        )
    assert by_status == expected
    lines = await fetch(
        source.kind,
        source.reader,
        "SELECT COUNT(*), SUM(quantity), SUM(quantity * unit_price), COUNT(item_name), "
        "COUNT(DISTINCT item_id), SUM(order_id), MAX(OCTET_LENGTH(item_name)) FROM order_items",
    )
    assert lines == [
        (
            ITEMS,
            sum(i.quantity for i in items),
            sum((i.quantity * i.unit_price for i in items), Decimal(0)),
            sum(1 for i in items if i.item_name is not None),
            len({i.item_id for i in items}),  # '47559B' and '47559b' are two items
            sum(i.order_id for i in items),
            max(len(i.item_name.encode()) for i in items if i.item_name is not None),
        )
    ]


@on_module_loop
async def test_facts_by_sql(source: Source, retail: tuple[list[Order], list[OrderItem]]) -> None:
    orders, items = retail
    sql = SQL[source.kind]
    served = "status = 'SERVED'"
    [(count, revenue, days, saturdays)] = await fetch(
        source.kind,
        source.reader,
        f"SELECT COUNT(*), SUM(total_amount), COUNT(DISTINCT {sql['day']}), "
        f"SUM(CASE WHEN {sql['saturday']} THEN 1 ELSE 0 END) FROM orders WHERE {served}",
    )
    assert (count, revenue, days, saturdays) == (SERVED_ORDERS, REVENUE, TRADING_DAYS, 0)
    [(busiest, _)] = await fetch(
        source.kind,
        source.reader,
        f"SELECT {sql['hour']} AS h, COUNT(*) AS n FROM orders WHERE {served} "
        "GROUP BY h ORDER BY n DESC LIMIT 1",
    )
    assert busiest == BUSIEST_HOUR

    # the daily and hourly tables and the top items, row for row, against the reference
    rows = await fetch(
        source.kind,
        source.reader,
        f"SELECT {sql['day']} AS d, SUM(total_amount), COUNT(*) FROM orders WHERE {served} "
        "GROUP BY d ORDER BY d",
    )
    reference = daily(orders, source_tz=UK, site_tz=UK)
    assert {day: (total, n) for day, total, n in rows} == {
        day: (total, n) for day, (total, n, _) in reference.items()
    }
    per_hour = await fetch(
        source.kind,
        source.reader,
        f"SELECT {sql['day']} AS d, {sql['hour']} AS h, COUNT(*) FROM orders "
        f"WHERE {served} GROUP BY d, h",
    )
    table = hourly(orders, source_tz=UK, site_tz=UK)
    assert {(d, h): n for d, h, n in per_hour} == {key: n for key, n in table.items() if n}
    top = await fetch(
        source.kind,
        source.reader,
        "SELECT i.item_id, SUM(i.quantity), SUM(i.quantity * i.unit_price) AS revenue "
        f"FROM order_items i JOIN orders o ON o.id = i.order_id WHERE o.{served} "
        "AND o.created_at >= '2011-11-01' AND o.created_at < '2011-12-01' "
        "GROUP BY i.item_id ORDER BY revenue DESC, i.item_id LIMIT 20",
    )
    november = top_items(
        orders, items, date(2011, 11, 1), date(2011, 11, 30), 20, source_tz=UK, site_tz=UK
    )
    assert top == [(item_id, qty, total) for item_id, _, qty, total in november]


def denied(kind: str, error: BaseException) -> bool:
    if kind == "mariadb":
        # ER_TABLEACCESS_DENIED_ERROR: "INSERT command denied to user ..."
        return isinstance(error, asyncmy.OperationalError) and error.args[0] == 1142
    return isinstance(error, asyncpg.InsufficientPrivilegeError)


async def execute(kind: str, url: str, statements: Sequence[str]) -> None:
    for statement in statements:
        await fetch(kind, url, statement)


NEW_ORDER = (
    "INSERT INTO orders (id, created_at, status, table_id, total_amount, user_id, updated_at) "
    "VALUES (99000001, '2011-12-10 10:00:00', 'SERVED', 7, 12.50, NULL, NULL)"
)
NEW_ITEM = (
    "INSERT INTO order_items (id, item_id, item_name, quantity, unit_price, order_id) "
    "VALUES (99000001, 'X1', 'new', 5, 2.50, 99000001)"
)
WRITES = {
    "insert an order": NEW_ORDER,
    "insert an item": NEW_ITEM,
    "update an order": "UPDATE orders SET status = 'VOID' WHERE id = 536365",
    "update an item": "UPDATE order_items SET quantity = 0 WHERE id = 1",
    "delete an order": "DELETE FROM orders WHERE id = 536365",
    "create a table": "CREATE TABLE mine (id INT)",
}


@on_module_loop
async def test_reader_cannot_write(source: Source) -> None:
    assert await fetch(source.kind, source.reader, "SELECT COUNT(*) FROM orders") == [(ORDERS,)]
    for what, statement in WRITES.items():
        with pytest.raises(Exception) as caught:
            await fetch(source.kind, source.reader, statement)
        assert denied(source.kind, caught.value), (what, repr(caught.value))
    totals = "SELECT COUNT(*), SUM(total_amount) FROM orders WHERE status = 'SERVED'"
    assert await fetch(source.kind, source.admin, totals) == [(SERVED_ORDERS, REVENUE)]


@on_module_loop
async def test_writer_can_write(source: Source) -> None:
    await execute(
        source.kind,
        source.writer,
        [
            NEW_ORDER,
            NEW_ITEM,
            "UPDATE orders SET status = 'CANCELLED', updated_at = '2011-12-10 11:00:00' "
            "WHERE id = 99000001",
            "UPDATE order_items SET quantity = 6 WHERE id = 99000001",
        ],
    )
    got = await fetch(
        source.kind,
        source.reader,
        "SELECT o.status, o.updated_at, i.quantity FROM orders o "
        "JOIN order_items i ON i.order_id = o.id WHERE o.id = 99000001",
    )
    assert got == [("CANCELLED", datetime(2011, 12, 10, 11), 6)]
    await execute(
        source.kind,
        source.writer,
        ["DELETE FROM order_items WHERE id = 99000001", "DELETE FROM orders WHERE id = 99000001"],
    )
    counts = "SELECT (SELECT COUNT(*) FROM orders), (SELECT COUNT(*) FROM order_items)"
    assert await fetch(source.kind, source.reader, counts) == [(ORDERS, ITEMS)]
