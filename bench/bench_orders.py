"""The order batch on a 1M-order database (issue: "read in full in under 60 s here").

A restaurant's order history is generated (deterministic, numpy): ``--orders`` orders over
two years (730 days from 2024-12-01), busier on Friday and Saturday, growing over the two
years, a little busier in summer, closed on Christmas, Boxing Day and New Year's Day;
lunch and dinner peaks, a few orders after midnight; 1-4 lines each from a menu of 40
dishes, quantities 1-3; 92 % SERVED (the status counted), the rest CANCELLED, VOID (total
0.00) or PENDING. Ids grow with created_at, as an auto-increment does.

It is bulk-loaded (LOAD DATA / COPY of TSV files written by pyarrow) into seed 004's schema
(tests/support/order_db.py, indexes included) on a throw-away MariaDB (1 GB buffer pool)
and a throw-away PostgreSQL (1 GB of shared buffers), read through a user that may only
SELECT. For each source and each store (the embedded DuckDB file, and PostgreSQL: a
database of the same throw-away server), with the source's default settings (SERVED
counted, a 14-day lookback, no updated_at), three runs of ``run_batch`` are timed:

1. the first run: every day from the first order's to today, every order and line read;
2. a second run, nothing changed: the lookback, and the per-day check of all history;
3. a run after 1,000 orders, picked at random across the history, changed: of the SERVED
   ones, half cancelled and half with one line's quantity and the total raised; the
   others (about 8 %) served after all.

After each run the kept rows (order_day, order_hour, order_item_day) are compared with a
numpy count of the generated orders: every day from the first counted order's to today,
its count and revenue in cents, its 24 hours (and their sum, the day's count), and every
item's quantity, revenue and name per day. A difference makes the exit status 1.

Before the runs, per source: the EXPLAIN (and EXPLAIN ANALYZE) of the batch's page query,
its items query and its whole-history check, and the parts of a full read timed alone;
besides, two variants of the batch's reads that are not what it runs (a bound on the
cursor's created_at; on PostgreSQL, the items by one array parameter), to compare. The
figures go under "orders" in bench/results (unless --no-save).

    .venv/bin/python -m bench.bench_orders [--orders N] [--stores duckdb,postgres]
        [--sources mariadb,postgresql] [--source-zone ZONE] [--no-breakdown] [--no-save]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from bench.figures import Figure, ModeResult, finish

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # test helpers
from support.mariadb import MariaDBServer  # noqa: E402
from support.order_db import SCHEMA, create_reader_mariadb, create_reader_postgres  # noqa: E402
from support.servers import PostgresServer  # noqa: E402

I64 = npt.NDArray[np.int64]
Statements = list[tuple[str, list[list[Any]]]]
Changer = Callable[[Statements], Awaitable[None]]

SITE = "bistro"
SITE_ZONE = "Europe/Berlin"
FIRST_DAY = date(2024, 12, 1)
DAYS = 730
CLOSED = {(12, 25), (12, 26), (1, 1)}
STATUSES = ("SERVED", "CANCELLED", "VOID", "PENDING")  # codes 0..3; SERVED is counted
SERVED, CANCELLED, VOID, PENDING = range(4)
STATUS_SHARES = (0.92, 0.04, 0.02, 0.02)
FIRST_ID = 100_001
CHANGED = 1_000
TARGET_S = 60.0
EPOCH = date(1970, 1, 1)
BASE_DAY = (FIRST_DAY - EPOCH).days  # FIRST_DAY as days since 1970-01-01

# (item_id, name, price in cents), most ordered first
MENU: list[tuple[str, str, int]] = [
    ("D01", "Margherita", 950), ("D02", "Spaghetti Carbonara", 1250),
    ("B01", "Sparkling water 0.5 l", 390), ("B02", "Cola 0.33 l", 350),
    ("D03", "Schnitzel with fries", 1690), ("D04", "Caesar salad", 1150),
    ("B03", "Pils 0.5 l", 480), ("D05", "Pizza Diavola", 1150),
    ("B04", "House wine red 0.2 l", 590), ("D06", "Burger Classic", 1390),
    ("S01", "Tiramisu", 650), ("B05", "Espresso", 260), ("D07", "Penne all'arrabbiata", 1090),
    ("D08", "Risotto ai funghi", 1450), ("B06", "Apple spritzer 0.5 l", 420),
    ("S02", "Panna cotta", 590), ("D09", "Grilled salmon", 2190),
    ("D10", "Soup of the day", 690), ("B07", "Cappuccino", 340),
    ("D11", "Pizza Quattro formaggi", 1290), ("D12", "Veggie bowl", 1190),
    ("B08", "House wine white 0.2 l", 590), ("D13", "Lasagne", 1350),
    ("S03", "Chocolate cake", 620), ("D14", "Rib-eye steak 300 g", 3290),
    ("B09", "Lemonade 0.4 l", 450), ("D15", "Bruschetta", 790),
    ("D16", "Gnocchi al pesto", 1190), ("B10", "Weissbier 0.5 l", 510),
    ("D17", "Chicken curry", 1390), ("S04", "Ice cream, 3 scoops", 550),
    ("D18", "Fries", 450), ("B11", "Orange juice 0.2 l", 380),
    ("D19", "Mixed salad", 690), ("B12", "Prosecco 0.1 l", 650),
    ("D20", "Pizza Prosciutto", 1150), ("D21", "Kids' pasta", 750),
    ("B13", "Tea", 300), ("S05", "Creme brulee", 690), ("D22", "Fish and chips", 1590),
]  # fmt: skip
PRICES = np.array([price for _, _, price in MENU], dtype=np.int64)


# -- the generated history ---------------------------------------------------------------


@dataclass
class History:
    """The orders as numpy arrays. ``local``: site-local (Europe/Berlin) wall time as
    seconds since 1970-01-01 (naive); ``source``: the same moment in the source's zone."""

    order_id: I64
    local: I64
    source: I64
    updated: I64
    status: I64
    total: I64  # cents
    table_id: I64
    line_id: I64
    line_order: I64  # index into the order arrays
    line_item: I64  # index into MENU
    line_qty: I64

    @property
    def orders(self) -> int:
        return len(self.order_id)

    @property
    def lines(self) -> int:
        return len(self.line_id)


def source_seconds(local: I64, source_zone: str) -> I64:
    """Site-local wall times as wall times of ``source_zone``: one offset per distinct
    local hour (the restaurant is closed from 01:00 to 10:30: no order is in a DST gap or
    fold)."""
    if source_zone == SITE_ZONE:
        return local.copy()
    hours, inverse = np.unique(local // 3600, return_inverse=True)
    site, zone = ZoneInfo(SITE_ZONE), ZoneInfo(source_zone)
    offsets = np.empty(len(hours), dtype=np.int64)
    for i, hour in enumerate(hours.tolist()):
        wall = datetime(1970, 1, 1) + timedelta(hours=hour)
        there = wall.replace(tzinfo=site).astimezone(zone).replace(tzinfo=None)
        offsets[i] = int((there - wall).total_seconds())
    result: I64 = local + offsets[inverse]
    return result


def generate(n: int, source_zone: str, seed: int = 2024) -> History:
    """``n`` orders of a restaurant over DAYS days (see the module's docstring)."""
    rng = np.random.default_rng(seed)
    days = np.arange(DAYS)
    dates = [FIRST_DAY + timedelta(days=int(d)) for d in days]
    weekday = np.array([d.weekday() for d in dates])
    day_of_year = np.array([d.timetuple().tm_yday for d in dates])
    weight = (
        np.array([0.75, 0.8, 0.9, 1.0, 1.3, 1.45, 1.1])[weekday]
        * (1 + 0.35 * days / DAYS)  # growth
        * (1 + 0.12 * np.sin(2 * np.pi * (day_of_year - 100) / 365.25))  # summer terrace
        * rng.lognormal(0.0, 0.12, DAYS)
        * np.array([(d.month, d.day) not in CLOSED for d in dates])
    )
    day = np.repeat(days, rng.multinomial(n, weight / weight.sum()))
    weekend = np.isin(weekday[day], (5, 6))
    # lunch, afternoon, dinner, late (until 01:00); more lunch on weekdays
    u = rng.random(n)
    lunch_share = np.where(weekend, 0.30, 0.44)
    part = np.select([u < lunch_share, u < lunch_share + 0.07, u < 0.96], [0, 1, 2], default=3)

    def peak(mean: float, sd: float, lo: float, hi: float) -> npt.NDArray[np.float64]:
        """A normal peak of opening hours, kept within [lo, hi) (drawn again, uniformly,
        outside: no pile of orders at opening time)."""
        hours = rng.normal(mean, sd, n)
        outside = (hours < lo) | (hours >= hi)
        hours[outside] = rng.uniform(lo, hi, int(outside.sum()))
        return hours

    hour = np.choose(
        part,
        [
            peak(12.7, 0.75, 11.0, 15.0),
            rng.uniform(14.5, 17.5, n),
            peak(19.4, 1.1, 17.0, 23.0),
            rng.uniform(22.5, 25.0, n),
        ],
    )
    local = (BASE_DAY + day) * 86_400 + (hour * 3600).astype(np.int64)
    local.sort()
    status = rng.choice(4, size=n, p=STATUS_SHARES).astype(np.int64)
    per_order = rng.choice(4, size=n, p=(0.30, 0.38, 0.22, 0.10)) + 1
    line_order = np.repeat(np.arange(n, dtype=np.int64), per_order)
    popularity = 1.0 / np.arange(1, len(MENU) + 1) ** 0.8
    line_item = rng.choice(len(MENU), size=len(line_order), p=popularity / popularity.sum())
    line_qty = rng.choice(3, size=len(line_order), p=(0.82, 0.14, 0.04)) + 1
    starts = np.concatenate([[0], np.cumsum(per_order)[:-1]])
    total = np.add.reduceat(line_qty * PRICES[line_item], starts).astype(np.int64)
    total[status == VOID] = 0
    return History(
        order_id=np.arange(FIRST_ID, FIRST_ID + n, dtype=np.int64),
        local=local,
        source=source_seconds(local, source_zone),
        updated=source_seconds(local, source_zone) + rng.integers(300, 5_400, n),
        status=status,
        total=total,
        table_id=rng.integers(1, 41, n).astype(np.int64),
        line_id=np.arange(1, len(line_order) + 1, dtype=np.int64),
        line_order=line_order,
        line_item=line_item.astype(np.int64),
        line_qty=line_qty.astype(np.int64),
    )


# -- TSV files and bulk loads ----------------------------------------------------------

ORDER_COLUMNS = ("id", "created_at", "status", "table_id", "total_amount", "updated_at")
ITEM_COLUMNS = ("id", "item_id", "item_name", "quantity", "unit_price", "order_id")


def write_tsv(history: History, directory: Path) -> dict[str, Path]:
    """orders.tsv and order_items.tsv (no header, tab-separated, no NULL: user_id is left
    out and loads as NULL)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    def cents(values: I64) -> Any:
        # decimal128(12, 2) holds the unscaled value: the cents, as 128-bit integers
        pairs = np.stack([values, values >> 63], axis=1).astype("<i8")
        buffer = pa.py_buffer(pairs.tobytes())
        return pa.Array.from_buffers(pa.decimal128(12, 2), len(values), [None, buffer])

    def stamp(seconds: I64) -> Any:
        return pa.array(seconds.astype("datetime64[s]"))

    orders = pa.table(
        [
            pa.array(history.order_id),
            stamp(history.source),
            pa.array(STATUSES).take(pa.array(history.status)),
            pa.array(history.table_id),
            cents(history.total),
            stamp(history.updated),
        ],
        names=list(ORDER_COLUMNS),
    )
    ids = pa.array([item_id for item_id, _, _ in MENU])
    names = pa.array([name for _, name, _ in MENU])
    items = pa.table(
        [
            pa.array(history.line_id),
            ids.take(pa.array(history.line_item)),
            names.take(pa.array(history.line_item)),
            pa.array(history.line_qty),
            cents(PRICES[history.line_item]),
            pa.array(history.order_id[history.line_order]),
        ],
        names=list(ITEM_COLUMNS),
    )
    options = pacsv.WriteOptions(include_header=False, delimiter="\t", quoting_style="none")
    files = {"orders": directory / "orders.tsv", "order_items": directory / "order_items.tsv"}
    pacsv.write_csv(orders, files["orders"], options)
    pacsv.write_csv(items, files["order_items"], options)
    return files


def load_mariadb(server: MariaDBServer, db: str, files: dict[str, Path]) -> tuple[int, int]:
    """Seed 004's schema in ``db``, the files loaded by LOAD DATA LOCAL INFILE, ANALYZE;
    the rows loaded."""
    columns = {"orders": ORDER_COLUMNS, "order_items": ITEM_COLUMNS}
    script = [
        *SCHEMA["mariadb"],
        "SET SESSION unique_checks = 0, foreign_key_checks = 0",
        *(
            f"LOAD DATA LOCAL INFILE '{files[table]}' INTO TABLE {table} CHARACTER SET utf8mb4 "
            f"FIELDS TERMINATED BY '\\t' LINES TERMINATED BY '\\n' ({', '.join(columns[table])})"
            for table in ("orders", "order_items")
        ),
        "ANALYZE TABLE orders, order_items",
        "SELECT (SELECT COUNT(*) FROM orders), (SELECT COUNT(*) FROM order_items)",
    ]
    output = server.sql(";\n".join(script), db, timeout=3_600)
    first, second = output.splitlines()[-1].split("\t")
    return int(first), int(second)


async def load_postgres(dsn: str, files: dict[str, Path]) -> tuple[int, int]:
    """Seed 004's schema, the files loaded by COPY (text format), VACUUM ANALYZE (what
    autovacuum would have done to a shop's tables); the rows loaded."""
    import asyncpg

    con = await asyncpg.connect(dsn)
    try:
        async with con.transaction():
            for statement in SCHEMA["postgresql"]:
                await con.execute(statement)
            await con.copy_to_table(
                "orders", source=files["orders"], columns=ORDER_COLUMNS, format="text"
            )
            await con.copy_to_table(
                "order_items", source=files["order_items"], columns=ITEM_COLUMNS, format="text"
            )
        await con.execute("VACUUM ANALYZE orders, order_items")
        row = await con.fetchrow(
            "SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM order_items)"
        )
        assert row is not None
        return int(row[0]), int(row[1])
    finally:
        await con.close()


# -- the shop changes 1,000 orders -----------------------------------------------------


@dataclass
class Changes:
    cancelled: list[int] = field(default_factory=list)  # order indexes
    served: list[int] = field(default_factory=list)
    raised: list[int] = field(default_factory=list)  # line indexes (quantity + 1)

    def describe(self) -> str:
        return (
            f"{len(self.cancelled)} cancelled, {len(self.served)} served after all, "
            f"{len(self.raised)} with a line's quantity raised"
        )


def pick_changes(history: History, seed: int) -> Changes:
    """CHANGED distinct orders across the whole history: of the SERVED ones, half
    cancelled and half with their first line's quantity raised (and the total); the others
    served after all (a VOID one's total set to its lines' sum)."""
    rng = np.random.default_rng(seed)
    picked = rng.choice(history.orders, size=CHANGED, replace=False)
    first_line = np.searchsorted(history.line_order, picked)
    changes = Changes()
    for k, (order, line) in enumerate(zip(picked.tolist(), first_line.tolist(), strict=True)):
        if history.status[order] != SERVED:
            changes.served.append(order)
        elif k % 2:
            changes.cancelled.append(order)
        else:
            changes.raised.append(line)
    return changes


def line_sum(history: History, order: int) -> int:
    lo, hi = np.searchsorted(history.line_order, [order, order + 1])
    lines = slice(int(lo), int(hi))
    return int((history.line_qty[lines] * PRICES[history.line_item[lines]]).sum())


def apply_changes(history: History, changes: Changes) -> Statements:
    """Apply ``changes`` to ``history``; the statements (``%s`` placeholders, one row of
    arguments each) that make the same change in the order database."""
    touched = datetime(2026, 12, 1, 5, 0)
    cancel, serve, raise_line, raise_total = [], [], [], []
    for order in changes.cancelled:
        history.status[order] = CANCELLED
        cancel.append([touched, int(history.order_id[order])])
    for order in changes.served:
        history.status[order] = SERVED
        history.total[order] = line_sum(history, order)
        serve.append(
            [touched, Decimal(int(history.total[order])) / 100, int(history.order_id[order])]
        )
    for line in changes.raised:
        order = int(history.line_order[line])
        history.line_qty[line] += 1
        history.total[order] += PRICES[history.line_item[line]]
        raise_line.append([int(history.line_id[line])])
        raise_total.append(
            [touched, Decimal(int(history.total[order])) / 100, int(history.order_id[order])]
        )
    return [
        ("UPDATE orders SET status = 'CANCELLED', updated_at = %s WHERE id = %s", cancel),
        ("UPDATE orders SET status = 'SERVED', updated_at = %s, total_amount = %s WHERE id = %s",
         serve),
        ("UPDATE order_items SET quantity = quantity + 1 WHERE id = %s", raise_line),
        ("UPDATE orders SET updated_at = %s, total_amount = %s WHERE id = %s", raise_total),
    ]  # fmt: skip


async def write_mariadb(url: str, statements: Statements) -> None:
    from support.order_db import connect_mariadb

    con = await connect_mariadb(url, autocommit=False)
    try:
        async with con.cursor() as cursor:
            for sql, rows in statements:
                if rows:
                    await cursor.executemany(sql, rows)
        await con.commit()
    finally:
        con.close()


async def write_postgres(dsn: str, statements: Statements) -> None:
    import asyncpg

    con = await asyncpg.connect(dsn)
    try:
        async with con.transaction():
            for sql, rows in statements:
                if rows:
                    await con.executemany(sql_numbered(sql), rows)
    finally:
        await con.close()


# -- what the batch must keep ------------------------------------------------------------


@dataclass
class Expected:
    days: dict[date, tuple[int, int]]  # orders, revenue in cents
    hours: dict[tuple[date, int], int]
    items: dict[tuple[date, str], tuple[int, int, str]]  # quantity, revenue in cents, name


def expected(history: History, today: date) -> Expected:
    """The counted orders of every site day from the first counted order's to ``today``
    (closed days as zeros), per day, per hour (24 a day) and per item."""
    counted = history.status == SERVED
    day = history.local // 86_400 - BASE_DAY
    hour = history.local % 86_400 // 3600
    first = int(day[counted].min())
    span = (today - FIRST_DAY).days + 1
    orders = np.bincount(day[counted], minlength=span)
    revenue = np.bincount(day[counted], weights=history.total[counted], minlength=span)
    by_hour = np.bincount(day[counted] * 24 + hour[counted], minlength=span * 24)
    days_of = [FIRST_DAY + timedelta(days=d) for d in range(span)]
    lines = counted[history.line_order]
    line_day = day[history.line_order][lines]
    key = line_day * len(MENU) + history.line_item[lines]
    quantity = np.bincount(key, weights=history.line_qty[lines], minlength=span * len(MENU))
    money = history.line_qty[lines] * PRICES[history.line_item[lines]]
    item_revenue = np.bincount(key, weights=money, minlength=span * len(MENU))
    items = {}
    for k in np.flatnonzero(quantity).tolist():
        item_id, name, _ = MENU[k % len(MENU)]
        items[(days_of[k // len(MENU)], item_id)] = (
            round(quantity[k]),
            round(item_revenue[k]),
            name,
        )
    return Expected(
        days={days_of[d]: (int(orders[d]), round(revenue[d])) for d in range(first, span)},
        hours={(days_of[d], h): int(by_hour[d * 24 + h]) for d in range(first, span)
               for h in range(24)},
        items=items,
    )  # fmt: skip


def cents_of(value: Any) -> int:
    exact = Decimal(value) * 100
    if exact != exact.to_integral_value():
        raise ValueError(f"{value} is not a whole number of cents")
    return int(exact)


def compare(name: str, got: Mapping[Any, Any], want: Mapping[Any, Any]) -> str | None:
    """None when the kept rows equal the expected ones; else how many differ, and the
    first three."""
    if got == want:
        return None
    wrong = sorted(key for key in got.keys() | want.keys() if got.get(key) != want.get(key))
    shown = ", ".join(f"{key}: {got.get(key)} != {want.get(key)}" for key in wrong[:3])
    return f"{name}: {len(wrong)} rows differ ({shown})"


async def differences(store: Any, history: History, today: date) -> list[str]:
    """What the store keeps that differs from ``expected`` (empty: exact)."""
    want = expected(history, today)
    got_days = {
        r[0]: (int(r[1]), cents_of(r[2]))
        for r in await store.fetch(
            "SELECT day, orders, revenue FROM order_day WHERE site_id = $1", (SITE,)
        )
    }
    got_hours = {
        (r[0], int(r[1])): int(r[2])
        for r in await store.fetch(
            "SELECT day, hour, orders FROM order_hour WHERE site_id = $1", (SITE,)
        )
    }
    got_items = {
        (r[0], r[1]): (int(r[2]), cents_of(r[3]), r[4])
        for r in await store.fetch(
            "SELECT day, item_id, quantity, revenue, item_name FROM order_item_day "
            "WHERE site_id = $1",
            (SITE,),
        )
    }
    problems = [
        problem
        for problem in (
            compare("order_day", got_days, want.days),
            compare("order_hour", got_hours, want.hours),
            compare("order_item_day", got_items, want.items),
        )
        if problem
    ]
    per_day: dict[date, int] = {}
    for (day, _hour), n in got_hours.items():
        per_day[day] = per_day.get(day, 0) + n
    if per_day != {day: n for day, (n, _) in got_days.items()}:
        problems.append("order_hour: a day's hours do not add up to its orders")
    return problems


# -- the source's plans ------------------------------------------------------------------


class Recorder:
    """A reader's connection that keeps every statement it runs, with its arguments."""

    def __init__(self, con: Any) -> None:
        self.con = con
        self.calls: list[tuple[str, list[Any]]] = []

    async def fetch(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self.calls.append((sql, list(args)))
        rows: list[tuple[Any, ...]] = await self.con.fetch(sql, args)
        return rows

    def any_of(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        found: tuple[str, list[Any]] = self.con.any_of(column, values)
        return found


def plan_text(kind: str, rows: list[tuple[Any, ...]]) -> list[str]:
    """A plan as lines (MariaDB's table with a head line; long lines cut)."""
    if kind == "postgresql":
        lines = [str(r[0]) for r in rows]
    else:
        head = ["id", "select_type", "table", "type", "possible_keys", "key", "key_len", "ref",
                "rows", "Extra"]  # fmt: skip
        if rows and len(rows[0]) == 13:  # ANALYZE: what it read too
            head[9:9] = ["r_rows", "filtered", "r_filtered"]
        lines = [" | ".join(head)]
        lines += [" | ".join("NULL" if v is None else str(v) for v in r) for r in rows]
    return [line if len(line) <= 240 else line[:200] + " …" for line in lines]


def literal(value: Any) -> str:
    return str(value) if isinstance(value, int) else "'" + str(value).replace("'", "''") + "'"


async def explain(source: Any, history: History) -> list[str]:
    """The plans of the batch's statements as its first run makes them: a page of orders
    (the whole history's range of created_at; the second page, and one with the cursor
    90 % into the history), EXPLAIN and EXPLAIN ANALYZE; the items of a page; the
    whole-history check. On PostgreSQL also the page's generic plan (the driver prepares
    the statement once: after five runs PostgreSQL may plan it without its values)."""
    from tapioca.orders.connectors import open_reader

    kind = source.address.kind
    lo = datetime.fromtimestamp(int(history.source[0]) // 86_400 * 86_400, UTC)
    hi = datetime.fromtimestamp(int(history.source[-1]) // 86_400 * 86_400 + 86_400, UTC)
    lo, hi = lo.replace(tzinfo=None), hi.replace(tzinfo=None)
    out: list[str] = []
    async with open_reader(source) as reader:
        recorder = Recorder(reader.con)
        reader.con = recorder
        pages = cast(AsyncGenerator[Any, None], reader.orders(lo, hi))
        first = await anext(pages)
        await anext(pages)
        page_sql, second_args = recorder.calls[-1]
        await pages.aclose()
        # the cursor of a page 90 % into the history: (created_at, id) of an order there
        late = int(len(history.order_id) * 0.9)
        created = datetime.fromtimestamp(int(history.source[late]), UTC).replace(tzinfo=None)
        last_created, last_id = first[-1][1], first[-1][0]
        # the page's arguments: the cursor's created_at (the range's start), the range's
        # end, the statuses, the cursor (created_at, id), the page's size
        if [second_args[0], *second_args[-3:-1]] != [last_created, last_created, last_id]:
            raise RuntimeError(f"the page query's arguments changed: {second_args}")
        late_args = [created, *second_args[1:-3], created, int(history.order_id[late]),
                     second_args[-1]]  # fmt: skip
        await reader.items([row[0] for row in first])
        items_sql, items_args = recorder.calls[-1]
        await reader.day_checks()
        checks_sql, checks_args = recorder.calls[-1]
        con = recorder.con
        analyze = "EXPLAIN (ANALYZE, BUFFERS) " if kind == "postgresql" else "ANALYZE "
        statements = [
            ("page of orders: the second page", "EXPLAIN ", page_sql, second_args),
            ("the same, executed", analyze, page_sql, second_args),
            ("page of orders: the cursor 90 % into the history", "EXPLAIN ", page_sql,
             late_args),
            ("the same, executed", analyze, page_sql, late_args),
            (f"items of a page ({len(items_args)} order ids)", "EXPLAIN ", items_sql, items_args),
            ("the same, executed", analyze, items_sql, items_args),
            ("whole-history check (count, sums per day)", "EXPLAIN ", checks_sql, checks_args),
        ]  # fmt: skip
        for title, prefix, sql, args in statements:
            shown = sql if len(sql) < 400 else sql[:200] + " … " + sql[-120:]
            out += [f"-- {title}", shown]
            out += plan_text(kind, await con.fetch(prefix + sql, args))
            out.append("")
        if kind == "postgresql":
            raw = con._con  # the asyncpg connection
            numbered = sql_numbered(page_sql)
            await raw.execute(f"PREPARE bench_page AS {numbered}")
            await raw.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            for title, args in (("the second page", second_args), ("90 % in", late_args)):
                values = ", ".join(literal(v) for v in args)
                rows = await raw.fetch(f"EXPLAIN (ANALYZE) EXECUTE bench_page({values})")
                out += [f"-- page of orders, {title}: generic plan (force_generic_plan), "
                        "executed"]  # fmt: skip
                out += plan_text(kind, [tuple(r) for r in rows])
                out.append("")
            await raw.execute("DEALLOCATE bench_page")
    return out


def sql_numbered(sql: str) -> str:
    """``%s`` placeholders as ``$1``, ``$2``, …"""
    parts = sql.split("%s")
    return "".join(part + (f"${n}" if n < len(parts) else "") for n, part in enumerate(parts, 1))


async def breakdown(source: Any, history: History, result: ModeResult) -> None:
    """The reads of a full first run timed alone, in one read-only transaction: the
    whole-history check; every page of orders; every page with its items."""
    from tapioca.orders.connectors import open_reader

    lo = datetime.fromtimestamp(int(history.source[0]) // 86_400 * 86_400, UTC)
    hi = datetime.fromtimestamp(int(history.source[-1]) // 86_400 * 86_400 + 86_400, UTC)
    lo, hi = lo.replace(tzinfo=None), hi.replace(tzinfo=None)
    async with open_reader(source) as reader:
        began = time.perf_counter()
        checks = await reader.day_checks()
        result.add(Figure(f"read alone: whole-history check ({len(checks)} days)",
                          time.perf_counter() - began, "s"))  # fmt: skip
        began, orders = time.perf_counter(), 0
        async for page in reader.orders(lo, hi):
            orders += len(page)
        result.add(Figure(f"read alone: every page of orders ({orders:,})",
                          time.perf_counter() - began, "s"))  # fmt: skip
        began, lines = time.perf_counter(), 0
        async for page in reader.orders(lo, hi):
            lines += len(await reader.items([row[0] for row in page]))
        result.add(Figure(f"read alone: every page and its items ({lines:,} lines)",
                          time.perf_counter() - began, "s"))  # fmt: skip


# -- the runs --------------------------------------------------------------------------


def remove(*paths: Path) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


@asynccontextmanager
async def open_store(kind: str, work: Path, pg: PostgresServer) -> AsyncIterator[Any]:
    """A fresh, migrated store with the site."""
    from tapioca.sites.service import SiteChanges, create_site

    if kind == "duckdb":
        from tapioca.storage.duckdb_store import DuckDBStore

        path = work / f"store-{time.monotonic_ns()}.duckdb"
        store: Any = DuckDBStore(path, readers=1)
    else:
        from tapioca.storage.postgres_store import PostgresStore

        name = f"store_{time.monotonic_ns()}"
        pg.create_database(name)
        store = PostgresStore(pg.dsn(name))
    try:
        await store.migrate()
        await create_site(store, SITE, SiteChanges(timezone=SITE_ZONE))
        yield store
    finally:
        await store.close()
        if kind == "duckdb":
            remove(path, Path(f"{path}.wal"))


@dataclass
class Row:
    source: str
    store: str
    run: str
    seconds: float
    days: int
    orders_read: int
    problems: list[str]


async def timed_runs(
    source: Any,
    store: Any,
    history: History,
    change: Changer,
    seed: int,
    label: tuple[str, str],
) -> list[Row]:
    from tapioca.orders.batch import run_batch

    site = ZoneInfo(SITE_ZONE)
    last_day = FIRST_DAY + timedelta(days=DAYS - 1)
    morning = datetime.combine(last_day + timedelta(days=1), datetime.min.time(), site)
    rows = []
    for run, at in (
        ("first run: every day read", timedelta(hours=6)),
        ("second run, nothing changed", timedelta(hours=7)),
        (f"after {CHANGED:,} orders changed", timedelta(hours=8)),
    ):
        if run.startswith("after"):
            changes = pick_changes(history, seed)
            await change(apply_changes(history, changes))
            run += f" ({changes.describe()})"
        now = (morning + at).astimezone(UTC)
        began = time.perf_counter()
        result = await run_batch(store, source, SITE_ZONE, now=now)
        seconds = time.perf_counter() - began
        problems = await differences(store, history, now.astimezone(site).date())
        rows.append(Row(*label, run, seconds, result.days_recomputed, result.orders_read,
                        problems))  # fmt: skip
        verdict = "exact" if not problems else "DIFFERS: " + "; ".join(problems)
        print(f"[{label[0]} / {label[1]}] {run}: {seconds:.2f} s, {result.days_recomputed} "
              f"days, {result.orders_read:,} orders read; {verdict}", flush=True)  # fmt: skip
    return rows


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--sources", default="mariadb,postgresql")
    parser.add_argument("--stores", default="duckdb,postgres")
    parser.add_argument(
        "--source-zone", default=SITE_ZONE, help="the zone of the source's naive timestamps"
    )
    parser.add_argument("--no-breakdown", action="store_true", help="skip the reads alone")
    parser.add_argument("--no-save", action="store_true", help="print only")
    args = parser.parse_args()

    began = time.perf_counter()
    history = generate(args.orders, args.source_zone)
    generated = time.perf_counter() - began
    print(f"generated {history.orders:,} orders, {history.lines:,} lines in {generated:.1f} s "
          f"({(history.status == SERVED).sum():,} SERVED)", flush=True)  # fmt: skip
    rows: list[Row] = []
    results: list[ModeResult] = []
    plans: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory(prefix="tapioca-orders-") as tmp:
        os.chmod(tmp, 0o755)
        work = Path(tmp)
        began = time.perf_counter()
        files = write_tsv(history, work)
        print(f"TSV files written in {time.perf_counter() - began:.1f} s", flush=True)
        os.chmod(files["orders"], 0o644)
        os.chmod(files["order_items"], 0o644)
        pg = PostgresServer(work / "pg")
        maria: MariaDBServer | None = None
        try:
            pg.init()
            pg._append(pg.data_dir / "postgresql.conf",
                       ["shared_buffers = 1GB", "work_mem = 64MB", "fsync = on",
                        "max_wal_size = 8GB"])  # fmt: skip
            pg.start()
            for kind in args.sources.split(","):
                label = "MariaDB" if kind == "mariadb" else "PostgreSQL"
                # each source starts from the generated history: the other's changes undone
                history = generate(args.orders, args.source_zone)
                began = time.perf_counter()
                if kind == "mariadb":
                    maria = MariaDBServer(work / "maria", buffer_pool="1G")
                    maria.init()
                    maria.start()
                    maria.create_database("shop")
                    loaded = await asyncio.to_thread(load_mariadb, maria, "shop", files)
                    reader = await create_reader_mariadb(maria, "shop", "tapioca", "read-pw")
                    change: Changer = partial(write_mariadb, maria.url("root", "", "shop"))
                else:
                    pg.create_database("shop")
                    loaded = await load_postgres(pg.dsn("shop"), files)
                    reader = await create_reader_postgres(pg.dsn("shop"), "tapioca", "read-pw")
                    change = partial(write_postgres, pg.dsn("shop"))

                if loaded != (history.orders, history.lines):
                    raise RuntimeError(
                        f"{label}: loaded {loaded} of {history.orders, history.lines}"
                    )
                load_s = time.perf_counter() - began
                print(f"{label}: loaded in {load_s:.1f} s", flush=True)
                from tapioca.orders.source import make_source

                source = make_source(SITE, reader, args.source_zone)
                plans[label] = await explain(source, history)
                print("\n".join(plans[label]), flush=True)
                reads = ModeResult(f"{label} source: reads alone")
                reads.add(Figure(f"bulk load ({history.orders:,} orders, {history.lines:,} "
                                 "lines, indexes, ANALYZE)", load_s, "s"))  # fmt: skip
                if not args.no_breakdown:
                    await breakdown(source, history, reads)
                results.append(reads)
                for n, store_kind in enumerate(args.stores.split(",")):
                    name = "embedded (DuckDB)" if store_kind == "duckdb" else "PostgreSQL"
                    async with open_store(store_kind, work, pg) as store:
                        got = await timed_runs(source, store, history, change,
                                               seed=len(rows) + n, label=(label, name))  # fmt: skip
                    rows += got
                    result = ModeResult(f"{label} source, {name} store")
                    for row in got:
                        first = row.run.startswith("first")
                        result.add(Figure(
                            f"{row.run}: {row.days} days, {row.orders_read:,} orders read",
                            row.seconds, "s", f"< {TARGET_S:.0f}" if first else "",
                            row.seconds < TARGET_S if first else None,
                        ))  # fmt: skip
                        result.add(Figure(f"exact after: {row.run.split(':')[0]}",
                                          float(len(row.problems)), "tables differ", "= 0",
                                          not row.problems))  # fmt: skip
                    results.append(result)
                if maria is not None:
                    maria.cleanup()
                    maria = None
        finally:
            if maria is not None:
                maria.cleanup()
            pg.cleanup()
    print()
    print("| source | store | run | s | days | orders read | exact |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row.source} | {row.store} | {row.run} | {row.seconds:.2f} | {row.days} | "
              f"{row.orders_read:,} | {'yes' if not row.problems else 'NO'} |")  # fmt: skip
    print()
    for label, lines in plans.items():
        print(f"## {label}: plans\n" + "\n".join(lines))
    command = "python -m bench.bench_orders " + " ".join(sys.argv[1:])
    finish("orders", results, command.strip(), keep=not args.no_save)
    failed = [row for row in rows if row.problems]
    slow = [row for row in rows if row.run.startswith("first") and row.seconds >= TARGET_S]
    if failed:
        print(f"{len(failed)} runs kept counts that differ from the generated orders")
    if slow:
        print(f"{len(slow)} first runs took {TARGET_S:.0f} s or more")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
