"""Reading a shop's order database: MySQL/MariaDB (asyncmy) or PostgreSQL (asyncpg).

Every session is read-only twice over: it opens one READ ONLY transaction (the whole run
reads one consistent state of the database, and the server refuses any write in it), and
on PostgreSQL the session's default is read-only too. Tapioca never writes there; a
read-only database user is still what the docs ask for.

Reads use range predicates on the indexed columns (``created_at >= $lo AND created_at <
$hi``, never ``DATE(created_at) = …``) and come in pages keyed by (created_at, id). The
SQL is written once with ``%s`` placeholders and double-quoted names (MariaDB's session
takes ANSI_QUOTES); PostgreSQL gets ``$n``."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from tapioca.orders.source import Address, OrderSource

CONNECT_TIMEOUT_S = 10.0
STATEMENT_TIMEOUT_S = 300
PAGE_ORDERS = 5_000
_MIN_ID = -(2**63)


class SourceUnavailable(Exception):
    """The order database cannot be reached or answered with an error: the reason, never
    the password."""


class Connection(Protocol):
    async def fetch(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    def any_of(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        """``column`` is one of ``values``: the condition and its arguments."""
        ...


@dataclass(frozen=True, slots=True)
class DayCheck:
    orders: int
    amount: Decimal
    ids: Decimal


class OrderReader:
    """The reads the batch makes, over one read-only connection."""

    def __init__(self, con: Connection, source: OrderSource) -> None:
        self.con = con
        self.source = source
        self.zone = ZoneInfo(source.timezone)
        m = source.mapping
        self._orders = _name(source.column("orders"))
        self._items = _name(source.column("order_items"))
        self._id = _name(source.column("order_id"))
        self._created = _name(source.column("created_at"))
        self._total = _name(source.column("total_amount"))
        self._status = _name(source.column("status"))
        updated = m.get("updated_at")
        self._updated = _name(updated) if updated else None
        statuses = source.counted_statuses
        self._counted = f"{self._status} IN ({', '.join(['%s'] * len(statuses))})"
        self._statuses = list(statuses)

    def local(self, value: datetime) -> datetime:
        """A timestamp of the source as a naive datetime in the source's zone."""
        if value.tzinfo is not None:
            return value.astimezone(self.zone).replace(tzinfo=None)
        return value

    async def span(self) -> tuple[datetime, datetime] | None:
        """The first and last counted order's created_at (None: there is none)."""
        rows = await self.con.fetch(
            f"SELECT min({self._created}), max({self._created}) FROM {self._orders} "
            f"WHERE {self._counted}",
            self._statuses,
        )
        if not rows or rows[0][0] is None:
            return None
        return self.local(rows[0][0]), self.local(rows[0][1])

    async def day_checks(self) -> dict[date, DayCheck]:
        """Per day of the source's calendar: count, Σ amount, Σ id of the counted orders
        (the whole history in one grouped read)."""
        day = f"CAST({self._created} AS DATE)"
        rows = await self.con.fetch(
            f"SELECT {day}, count(*), sum({self._total}), sum({self._id}) "
            f"FROM {self._orders} WHERE {self._counted} GROUP BY {day}",
            self._statuses,
        )
        return {
            _day(r[0]): DayCheck(int(r[1]), Decimal(r[2] or 0), Decimal(r[3] or 0)) for r in rows
        }

    async def changed_since(self, since: datetime) -> tuple[set[date], datetime | None]:
        """The source days of the orders whose updated_at is at ``since`` or later, any
        status (one that stopped counting changes its day too), and the largest
        updated_at read."""
        assert self._updated is not None
        day = f"CAST({self._created} AS DATE)"
        rows = await self.con.fetch(
            f"SELECT {day}, max({self._updated}) FROM {self._orders} "
            f"WHERE {self._updated} >= %s GROUP BY {day}",
            [since],
        )
        latest = max((self.local(r[1]) for r in rows), default=None)
        return {_day(r[0]) for r in rows}, latest

    async def latest_update(self) -> datetime | None:
        assert self._updated is not None
        rows = await self.con.fetch(f"SELECT max({self._updated}) FROM {self._orders}")
        return self.local(rows[0][0]) if rows and rows[0][0] is not None else None

    async def orders(
        self, lo: datetime, hi: datetime, page: int | None = None
    ) -> AsyncIterator[list[tuple[Any, datetime, Decimal]]]:
        """The counted orders created in [lo, hi) (source-local), as (id, created_at,
        total_amount), page by page in (created_at, id) order."""
        # the cursor's created_at bounds the range too, so that every page starts reading
        # the index where the last one stopped (not at ``lo``)
        sql = (
            f"SELECT {self._id}, {self._created}, {self._total} FROM {self._orders} "
            f"WHERE {self._created} >= %s AND {self._created} < %s AND {self._counted} "
            f"AND ({self._created} > %s OR {self._id} > %s) "
            f"ORDER BY {self._created}, {self._id} LIMIT %s"
        )
        page = page or PAGE_ORDERS
        after: tuple[datetime, Any] = (lo, _MIN_ID)
        while True:
            at, last_id = after
            rows = await self.con.fetch(sql, [at, hi, *self._statuses, at, last_id, page])
            if not rows:
                return
            if rows[0][1].tzinfo is None:  # naive: the source's local time already
                yield rows
            else:
                yield [(r[0], self.local(r[1]), r[2]) for r in rows]
            if len(rows) < page:
                return
            after = (rows[-1][1], rows[-1][0])

    async def items(self, order_ids: Sequence[Any]) -> list[tuple[Any, ...]]:
        """(order_id, item_id, item_name, quantity, unit_price) of the orders' lines."""
        if not order_ids:
            return []
        m = self.source.mapping
        columns = ", ".join(
            _name(str(m[key]))
            for key in ("item_order_id", "item_id", "item_name", "quantity", "unit_price")
        )
        member, args = self.con.any_of(_name(str(m["item_order_id"])), order_ids)
        return await self.con.fetch(f"SELECT {columns} FROM {self._items} WHERE {member}", args)


def _name(identifier: str) -> str:
    """A checked identifier (orders/source.py), quoted."""
    return ".".join(f'"{part}"' for part in identifier.split("."))


def _day(value: Any) -> date:
    return value.date() if isinstance(value, datetime) else value


_MARK = re.compile(r"%s")


class _Postgres:
    def __init__(self, con: Any) -> None:
        self._con = con

    async def fetch(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        counter = iter(range(1, len(args) + 1))
        numbered = _MARK.sub(lambda _m: f"${next(counter)}", sql)
        rows: list[tuple[Any, ...]] = await self._con.fetch(numbered, *args)
        return rows  # asyncpg's records index and unpack as tuples do

    def any_of(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        # one array parameter: one statement, prepared once, whatever the page's size
        return f"{column} = ANY(%s)", [list(values)]


class _MySQL:
    def __init__(self, con: Any) -> None:
        self._con = con

    async def fetch(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        async with self._con.cursor() as cursor:
            await cursor.execute(sql, list(args))
            rows: list[tuple[Any, ...]] = await cursor.fetchall()
            return rows

    def any_of(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        return f"{column} IN ({', '.join(['%s'] * len(values))})", list(values)


@asynccontextmanager
async def open_reader(source: OrderSource) -> AsyncIterator[OrderReader]:
    """A reader of the source over one read-only transaction; SourceUnavailable when the
    database cannot be reached or refuses."""
    opener = _open_postgres if source.address.kind == "postgresql" else _open_mysql
    try:
        async with opener(source) as con:
            yield OrderReader(con, source)
    except SourceUnavailable:
        raise
    except (OSError, TimeoutError) as exc:
        raise SourceUnavailable(f"cannot reach {source.address.shown()}: {_reason(exc)}") from None
    except Exception as exc:
        if type(exc).__module__.split(".")[0] in ("asyncpg", "asyncmy", "pymysql"):
            raise SourceUnavailable(f"{source.address.shown()}: {_reason(exc)}") from None
        raise


def _reason(exc: BaseException) -> str:
    """What went wrong, without the password (drivers do not echo it, but make sure)."""
    text = f"{type(exc).__name__}: {exc}"[:300]
    return text


@asynccontextmanager
async def _open_postgres(source: OrderSource) -> AsyncIterator[Connection]:
    import asyncpg

    a: Address = source.address
    con = await asyncpg.connect(
        host=a.host, port=a.port, user=a.user, password=a.password or None,
        database=a.database, timeout=CONNECT_TIMEOUT_S,
        server_settings={
            "default_transaction_read_only": "on",
            "statement_timeout": str(STATEMENT_TIMEOUT_S * 1000),
            "TimeZone": source.timezone,
            "application_name": "tapioca-orders",
        },
    )  # fmt: skip
    try:
        async with con.transaction(isolation="repeatable_read", readonly=True):
            yield _Postgres(con)
    finally:
        await con.close(timeout=5)


@asynccontextmanager
async def _open_mysql(source: OrderSource) -> AsyncIterator[Connection]:
    import asyncmy

    a = source.address
    con = await asyncio.wait_for(
        asyncmy.connect(
            host=a.host, port=a.port, user=a.user, password=a.password, db=a.database,
            connect_timeout=CONNECT_TIMEOUT_S, autocommit=True, charset="utf8mb4",
        ),
        CONNECT_TIMEOUT_S,
    )  # fmt: skip
    try:
        wrapped = _MySQL(con)
        await wrapped.fetch("SET SESSION sql_mode = CONCAT(@@sql_mode, ',ANSI_QUOTES')")
        await wrapped.fetch(f"SET SESSION max_statement_time = {STATEMENT_TIMEOUT_S}")
        await wrapped.fetch("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        await wrapped.fetch("SET SESSION TRANSACTION READ ONLY")
        await wrapped.fetch("START TRANSACTION READ ONLY, WITH CONSISTENT SNAPSHOT")
        yield wrapped
        await wrapped.fetch("COMMIT")
    finally:
        con.close()
