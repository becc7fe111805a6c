"""A shop's own order database for the order-source tests (seed 004's schema), filled with
the UCI Online Retail data (/work/shared/data/README.md), on MariaDB or PostgreSQL.

- ``SCHEMA``: the DDL of ``orders`` and ``order_items`` for each dialect, indexes included.
  No foreign key, no identity: a writer inserts with its own ids. In MariaDB ``item_id``
  has a binary collation: the data has stock codes that differ only in case ('47559B',
  '47559b'), distinct items as in PostgreSQL and the reference.
- ``retail_orders()``: the (orders, items) lists, read from the CSV at run time. One order
  per invoice. A line is *clean* when quantity > 0 and unit price > 0. Invoice ``C<n>``
  (a cancellation) → id 10,000,000 + n, status CANCELLED, total = Σ quantity * unit price
  over its lines as given (negative); any other invoice → id n (the numeric part; 'A563185'
  → 563185, no clash), SERVED when it has a clean line (total = Σ over its clean lines),
  else VOID (total 0.00). Totals are exact sums rounded half to even to cents once.
  ``created_at`` = the invoice's earliest InvoiceDate (43 invoices have lines a minute
  apart), naive, UK local time; ``updated_at`` = ``created_at``; ``user_id`` =
  CustomerID or None; ``table_id`` None. Items: the clean lines of a SERVED order, every
  line of the others; ids 1.. in file order; an empty Description → ``item_name`` None.
  ``unit_price`` is what a DECIMAL(12,2) column holds: the four 0.001 prices become 0.00
  (their orders' rounded totals do not change), so Σ quantity * unit price over a SERVED
  order's items is exactly its ``total_amount``.
  With this rule the README's facts come out exactly: 19,960 SERVED orders, Σ total
  10,666,684.54 (the exact sum is 10,666,684.544), 305 trading days, none a Saturday,
  busiest hour 12 (3,219 orders); besides, 3,836 CANCELLED and 2,104 VOID orders. The
  SERVED count includes A563185 ('Adjust bad debt', 11,062.06): a non-cancelled invoice
  with a clean line, as the README's rule says.
- Loaders (``load_mariadb``, ``load_postgres``) create the schema in an empty database and
  bulk-load (LOAD DATA LOCAL INFILE from a temp TSV; binary COPY), then ANALYZE.
- Users: a reader with SELECT only and a writer with every privilege on the database.
  The PostgreSQL servers of tests/support/servers.py authenticate by ``trust``: the
  password of a role's URL is accepted but never checked there; its grants still are.
- Servers and databases as context managers, for fixtures (``running_mariadb``,
  ``mariadb_database``, ``postgres_database``).
"""

from __future__ import annotations

import asyncio
import csv
import gzip
import random
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote, unquote, urlsplit

import asyncmy
import asyncpg

from support.mariadb import MariaDBServer
from support.servers import PostgresServer

__all__ = [
    "CANCELLED",
    "CANCELLED_ID_OFFSET",
    "ITEM_COLUMNS",
    "ORDER_COLUMNS",
    "RETAIL_CSV",
    "SCHEMA",
    "SERVED",
    "VOID",
    "Order",
    "OrderItem",
    "connect_mariadb",
    "create_reader_mariadb",
    "create_reader_postgres",
    "create_writer_mariadb",
    "create_writer_postgres",
    "drop_role_postgres",
    "drop_user_mariadb",
    "load_mariadb",
    "load_postgres",
    "mariadb_database",
    "postgres_database",
    "retail_orders",
    "running_mariadb",
]

RETAIL_CSV = Path("/work/shared/data/online_retail.csv.gz")
SERVED, CANCELLED, VOID = "SERVED", "CANCELLED", "VOID"
CANCELLED_ID_OFFSET = 10_000_000
CENT = Decimal("0.01")
ZERO = Decimal(0)

ORDER_COLUMNS = (
    "id",
    "created_at",
    "status",
    "table_id",
    "total_amount",
    "user_id",
    "updated_at",
)
ITEM_COLUMNS = ("id", "item_id", "item_name", "quantity", "unit_price", "order_id")

SCHEMA: Mapping[str, tuple[str, ...]] = {
    "mariadb": (
        """CREATE TABLE orders (
            id BIGINT NOT NULL PRIMARY KEY,
            created_at DATETIME NOT NULL,
            status VARCHAR(32) NOT NULL,
            table_id INT NULL,
            total_amount DECIMAL(12,2) NOT NULL,
            user_id BIGINT NULL,
            updated_at DATETIME NULL,
            KEY ix_orders_created_at (created_at),
            KEY ix_orders_updated_at (updated_at)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
        """CREATE TABLE order_items (
            id BIGINT NOT NULL PRIMARY KEY,
            item_id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
            item_name VARCHAR(255) NULL,
            quantity INT NOT NULL,
            unit_price DECIMAL(12,2) NOT NULL,
            order_id BIGINT NOT NULL,
            KEY ix_order_items_order_id (order_id)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    ),
    "postgresql": (
        """CREATE TABLE orders (
            id BIGINT NOT NULL PRIMARY KEY,
            created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
            status VARCHAR(32) NOT NULL,
            table_id INTEGER NULL,
            total_amount NUMERIC(12,2) NOT NULL,
            user_id BIGINT NULL,
            updated_at TIMESTAMP WITHOUT TIME ZONE NULL
        )""",
        "CREATE INDEX ix_orders_created_at ON orders (created_at)",
        "CREATE INDEX ix_orders_updated_at ON orders (updated_at)",
        """CREATE TABLE order_items (
            id BIGINT NOT NULL PRIMARY KEY,
            item_id VARCHAR(64) NOT NULL,
            item_name VARCHAR(255) NULL,
            quantity INTEGER NOT NULL,
            unit_price NUMERIC(12,2) NOT NULL,
            order_id BIGINT NOT NULL
        )""",
        "CREATE INDEX ix_order_items_order_id ON order_items (order_id)",
    ),
}


class Order(NamedTuple):
    """A row of ``orders`` (fields in column order: the tuple is the row)."""

    id: int
    created_at: datetime
    status: str
    table_id: int | None
    total_amount: Decimal
    user_id: int | None
    updated_at: datetime | None


class OrderItem(NamedTuple):
    """A row of ``order_items`` (fields in column order: the tuple is the row)."""

    id: int
    item_id: str
    item_name: str | None
    quantity: int
    unit_price: Decimal
    order_id: int


# -- the retail data -----------------------------------------------------------------


class _Line(NamedTuple):
    stock_code: str
    description: str | None
    quantity: int
    price: Decimal  # as given (may have 3 places)
    cents: Decimal  # the price rounded half to even to 2 places
    when: datetime


@dataclass(slots=True)
class _Invoice:
    number: str
    customer: int | None
    lines: list[_Line]


_CSV_COLUMNS = (
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "CustomerID",
)


def _invoice_id(number: str) -> int:
    digits = number.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    if number.startswith("C"):
        return CANCELLED_ID_OFFSET + int(digits)
    return int(digits)


def _whole(text: str, what: str) -> int:
    """A whole number written as ``6`` or ``6.0``."""
    number = Decimal(text)
    if number != number.to_integral_value():
        raise ValueError(f"{what} {text} is not whole")
    return int(number)


def _read_invoices(path: Path) -> list[_Invoice]:
    invoices: dict[str, _Invoice] = {}
    # the columns repeat a few values each: parse every distinct text once
    dates: dict[str, datetime] = {}
    prices: dict[str, tuple[Decimal, Decimal]] = {}
    quantities: dict[str, int] = {}
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        col = {name: header.index(name) for name in _CSV_COLUMNS}
        i_number, i_code, i_name = col["InvoiceNo"], col["StockCode"], col["Description"]
        i_qty, i_date, i_price = col["Quantity"], col["InvoiceDate"], col["UnitPrice"]
        i_customer = col["CustomerID"]
        for row in reader:
            number = row[i_number]
            invoice = invoices.get(number)
            if invoice is None:
                customer = row[i_customer]
                invoice = invoices[number] = _Invoice(
                    number, _whole(customer, "CustomerID") if customer else None, []
                )
            text = row[i_qty]
            quantity = quantities.get(text)
            if quantity is None:
                quantity = quantities[text] = _whole(text, f"invoice {number}: quantity")
            text = row[i_date]
            when = dates.get(text)
            if when is None:
                when = dates[text] = datetime.fromisoformat(text)
            text = row[i_price]
            price = prices.get(text)
            if price is None:
                exact = Decimal(text)
                price = prices[text] = (exact, exact.quantize(CENT, ROUND_HALF_EVEN))
            invoice.lines.append(_Line(row[i_code], row[i_name] or None, quantity, *price, when))
    return list(invoices.values())


def retail_orders(path: Path = RETAIL_CSV) -> tuple[list[Order], list[OrderItem]]:
    """The retail data as (orders, items), by the rule of this module's docstring."""
    orders: list[Order] = []
    items: list[OrderItem] = []
    seen: set[int] = set()
    for invoice in _read_invoices(path):
        order_id = _invoice_id(invoice.number)
        if order_id in seen:
            raise ValueError(f"invoice {invoice.number}: id {order_id} taken")
        seen.add(order_id)
        clean = [line for line in invoice.lines if line.quantity > 0 and line.price > 0]
        if invoice.number.startswith("C"):
            status, kept, counted = CANCELLED, invoice.lines, invoice.lines
        elif clean:
            status, kept, counted = SERVED, clean, clean
        else:
            status, kept, counted = VOID, invoice.lines, []
        total = sum((line.quantity * line.price for line in counted), ZERO)
        created = min(line.when for line in invoice.lines)
        orders.append(
            Order(
                id=order_id,
                created_at=created,
                status=status,
                table_id=None,
                total_amount=total.quantize(CENT, ROUND_HALF_EVEN),
                user_id=invoice.customer,
                updated_at=created,
            )
        )
        for line in kept:
            items.append(
                OrderItem(
                    id=len(items) + 1,
                    item_id=line.stock_code,
                    item_name=line.description,
                    quantity=line.quantity,
                    unit_price=line.cents,
                    order_id=order_id,
                )
            )
    return orders, items


# -- MariaDB ---------------------------------------------------------------------------


def _ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def _tsv_field(value: object) -> str:
    """A LOAD DATA field (default escaping: backslash; ``\\N`` is NULL)."""
    if value is None:
        return "\\N"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    text = str(value)
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def _write_tsv(path: Path, rows: Iterable[Sequence[object]]) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        fh.writelines("\t".join(map(_tsv_field, row)) + "\n" for row in rows)


async def connect_mariadb(url: str, **options: Any) -> asyncmy.Connection:
    """An asyncmy connection to a ``mysql://user:password@host:port/db`` URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("mysql", "mariadb"):
        raise ValueError(f"not a MySQL URL: {url}")
    conn: asyncmy.Connection = await asyncmy.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 3306,
        user=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        database=unquote(parts.path.lstrip("/")) or None,
        charset="utf8mb4",
        **options,
    )
    return conn


@asynccontextmanager
async def _root_connection(
    server: MariaDBServer, db: str | None = None
) -> AsyncIterator[asyncmy.Connection]:
    conn: asyncmy.Connection = await asyncmy.connect(
        unix_socket=str(server.socket_path),
        user="root",
        database=db,
        charset="utf8mb4",
        autocommit=True,
    )
    try:
        yield conn
    finally:
        await conn.ensure_closed()


async def load_mariadb(
    server: MariaDBServer, db: str, orders: Sequence[Order], items: Sequence[OrderItem]
) -> None:
    """Create the schema in the (existing, empty) database ``db`` and load the rows: LOAD
    DATA LOCAL INFILE of temp TSV files, by the mariadb client (asyncmy 0.2's LOCAL INFILE
    fails: it hands its reader the file name as bytes)."""
    with tempfile.TemporaryDirectory(prefix="tapioca-orders-") as tmp:
        files = {"orders": Path(tmp) / "orders.tsv", "order_items": Path(tmp) / "items.tsv"}
        await asyncio.to_thread(_write_tsv, files["orders"], orders)
        await asyncio.to_thread(_write_tsv, files["order_items"], items)
        script = [
            *SCHEMA["mariadb"],
            "SET SESSION unique_checks = 0, foreign_key_checks = 0",
            *(
                f"LOAD DATA LOCAL INFILE {_literal(str(files[table]))} INTO TABLE {table} "
                "CHARACTER SET utf8mb4 FIELDS TERMINATED BY '\\t' "
                f"LINES TERMINATED BY '\\n' ({', '.join(columns)})"
                for table, columns in (("orders", ORDER_COLUMNS), ("order_items", ITEM_COLUMNS))
            ),
            "ANALYZE TABLE orders, order_items",
            "SELECT (SELECT COUNT(*) FROM orders), (SELECT COUNT(*) FROM order_items)",
        ]
        output = await asyncio.to_thread(server.sql, ";\n".join(script), db)
    loaded = tuple(int(n) for n in output.splitlines()[-1].split("\t"))
    if loaded != (len(orders), len(items)):
        raise RuntimeError(f"loaded {loaded} (orders, items) of {(len(orders), len(items))}")


async def create_reader_mariadb(server: MariaDBServer, db: str, user: str, password: str) -> str:
    """A user ``user@'%'`` that may only SELECT in ``db``; returns its URL."""
    async with _root_connection(server) as conn, conn.cursor() as cur:
        await cur.execute(f"CREATE USER {_literal(user)}@'%' IDENTIFIED BY {_literal(password)}")
        await cur.execute(f"GRANT SELECT ON {_ident(db)}.* TO {_literal(user)}@'%'")
    return server.url(user, password, db)


async def create_writer_mariadb(server: MariaDBServer, db: str, user: str, password: str) -> str:
    """A user ``user@'%'`` with every privilege on ``db``; returns its URL."""
    async with _root_connection(server) as conn, conn.cursor() as cur:
        await cur.execute(f"CREATE USER {_literal(user)}@'%' IDENTIFIED BY {_literal(password)}")
        await cur.execute(f"GRANT ALL PRIVILEGES ON {_ident(db)}.* TO {_literal(user)}@'%'")
    return server.url(user, password, db)


async def drop_user_mariadb(server: MariaDBServer, user: str) -> None:
    async with _root_connection(server) as conn, conn.cursor() as cur:
        await cur.execute(f"DROP USER IF EXISTS {_literal(user)}@'%'")


@contextmanager
def running_mariadb(base_dir: Path) -> Iterator[MariaDBServer]:
    """A started throw-away MariaDB server, killed and removed at the end."""
    server = MariaDBServer(base_dir)
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.cleanup()


@contextmanager
def mariadb_database(server: MariaDBServer, name: str | None = None) -> Iterator[str]:
    """A new empty database (named ``name`` or uniquely), dropped at the end."""
    db = name or f"test_{uuid.uuid4().hex[:16]}"
    server.create_database(db)
    try:
        yield db
    finally:
        if server.is_running():
            server.drop_database(db)


# -- PostgreSQL ------------------------------------------------------------------------


def _pg_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _pg_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _with_user(dsn: str, user: str, password: str) -> str:
    parts = urlsplit(dsn)
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{parts.hostname}:{parts.port}"
    return parts._replace(netloc=netloc).geturl()


async def load_postgres(dsn: str, orders: Sequence[Order], items: Sequence[OrderItem]) -> None:
    """Create the schema in the (empty) database of ``dsn`` and load the rows by COPY."""
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            for statement in SCHEMA["postgresql"]:
                await conn.execute(statement)
            await conn.copy_records_to_table("orders", records=orders, columns=ORDER_COLUMNS)
            await conn.copy_records_to_table("order_items", records=items, columns=ITEM_COLUMNS)
        await conn.execute("ANALYZE orders, order_items")
    finally:
        await conn.close()


async def _create_role(admin_dsn: str, user: str, password: str, grants: Sequence[str]) -> str:
    conn = await asyncpg.connect(admin_dsn)
    try:
        db = await conn.fetchval("SELECT current_database()")
        role = _pg_ident(user)
        await conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD {_pg_literal(password)}")
        await conn.execute(f"GRANT CONNECT ON DATABASE {_pg_ident(db)} TO {role}")
        await conn.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
        for grant in grants:
            await conn.execute(grant.format(role=role))
    finally:
        await conn.close()
    return _with_user(admin_dsn, user, password)


async def create_reader_postgres(admin_dsn: str, user: str, password: str) -> str:
    """A login role that may only SELECT the tables of the database of ``admin_dsn`` (its
    public schema, those there now and later ones the admin creates); returns its DSN."""
    return await _create_role(
        admin_dsn,
        user,
        password,
        [
            "GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}",
            "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO {role}",
        ],
    )


async def create_writer_postgres(admin_dsn: str, user: str, password: str) -> str:
    """A login role with every privilege on the tables of the database of ``admin_dsn``
    (and CREATE in its public schema); returns its DSN."""
    return await _create_role(
        admin_dsn,
        user,
        password,
        [
            "GRANT CREATE ON SCHEMA public TO {role}",
            "GRANT ALL PRIVILEGES ON ALL TABLES IN SCHEMA public TO {role}",
            "GRANT ALL PRIVILEGES ON ALL SEQUENCES IN SCHEMA public TO {role}",
            "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO {role}",
        ],
    )


async def drop_role_postgres(admin_dsn: str, user: str) -> None:
    """Drop a role made by ``create_*_postgres``: its grants in the database of
    ``admin_dsn`` first (roles belong to the whole server)."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        if await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", user):
            await conn.execute(f"DROP OWNED BY {_pg_ident(user)}")
            await conn.execute(f"DROP ROLE {_pg_ident(user)}")
    finally:
        await conn.close()


@contextmanager
def postgres_database(server: PostgresServer, name: str | None = None) -> Iterator[str]:
    """A new empty database on ``server`` (named ``name`` or uniquely); yields its
    superuser DSN; dropped (WITH (FORCE)) at the end."""
    db = name or f"test_{uuid.uuid4().hex[:16]}"
    server.create_database(db)
    try:
        yield server.dsn(db)
    finally:
        server.drop_database(db, force=True)


# -- a small shop ------------------------------------------------------------------------


def sample_orders(
    count: int, start: datetime = datetime(2026, 3, 1, 8), days: int = 30, seed: int = 3
) -> tuple[list[Order], list[OrderItem]]:
    """``count`` SERVED orders of one line each, spread over ``days`` days from ``start``
    (naive, the shop's local time), deterministic for ``seed``."""
    rng = random.Random(seed)
    orders: list[Order] = []
    items: list[OrderItem] = []
    for n in range(1, count + 1):
        created = start + timedelta(minutes=rng.randint(0, 60 * 24 * days))
        price = Decimal(rng.randint(100, 2000)) / 100
        orders.append(Order(n, created, SERVED, None, price, None, created))
        items.append(OrderItem(n, f"I{n % 40}", f"Item {n % 40}", 1, price, n))
    return orders, items
