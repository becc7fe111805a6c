"""A site's order source (api.md, "Order source"): where its order database is, which of
its tables and columns hold orders and their lines, which statuses count, and the zone of
its naive timestamps. The URL's password is sealed with the instance secret: stored
sealed, never shown, never logged."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import orjson
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tapioca.errors import ErrorDetail, TapiocaError, not_found, validation_error
from tapioca.kit.clock import utc_text
from tapioca.kit.timerange import zone_named
from tapioca.sites.service import get_site
from tapioca.storage.base import ReadStore, Store

KINDS = {"mysql": "mysql", "mariadb": "mysql", "postgresql": "postgresql", "postgres": "postgresql"}
DEFAULT_PORTS = {"mysql": 3306, "postgresql": 5432}
DEFAULT_STATUSES = ("SERVED",)
DEFAULT_LOOKBACK_DAYS = 14
MAX_LOOKBACK_DAYS = 366
# a table or column name: letters, digits and _ (a table may be schema.table)
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
STATUS_PATTERN = r"^[^\x00]{1,100}$"
# kind://user[:password]@host[:port]/database: what parse_url takes (and /openapi.json says)
_PORT = (
    r"(:([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|"
    r"6553[0-5]))?"
)
URL_PATTERN = (
    r"^(mysql|mariadb|postgresql|postgres)://[^:@/?#\s\x00]+(:[^@/?#\s\x00]*)?"
    r"@[A-Za-z0-9][A-Za-z0-9.-]*" + _PORT + r"/[^/?#\s\x00]+$"
)

# Seed 004's schema: orders(id, created_at, status, table_id, total_amount, user_id) and
# order_items(id, item_id, item_name, quantity, unit_price, order_id).
DEFAULT_MAPPING: dict[str, str | None] = {
    "orders": "orders",
    "order_id": "id",
    "created_at": "created_at",
    "status": "status",
    "total_amount": "total_amount",
    "updated_at": None,
    "order_items": "order_items",
    "item_order_id": "order_id",
    "item_id": "item_id",
    "item_name": "item_name",
    "quantity": "quantity",
    "unit_price": "unit_price",
}
TABLES = frozenset({"orders", "order_items"})


@dataclass(frozen=True, slots=True)
class Address:
    """Where the order database is, with the credential to read it."""

    kind: str  # mysql | postgresql
    host: str
    port: int
    user: str
    password: str = field(repr=False)
    database: str

    def shown(self) -> str:
        """The URL without its password (what answers and logs may hold)."""
        user = quote(self.user, safe="")
        return f"{self.kind}://{user}@{self.host}:{self.port}/{quote(self.database, safe='')}"


@dataclass(frozen=True, slots=True)
class OrderSource:
    site_id: str
    address: Address
    timezone: str
    counted_statuses: tuple[str, ...] = DEFAULT_STATUSES
    mapping: dict[str, str | None] = field(default_factory=lambda: dict(DEFAULT_MAPPING))
    lookback_days: int = DEFAULT_LOOKBACK_DAYS
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def column(self, name: str) -> str:
        value = self.mapping.get(name)
        assert value is not None, name
        return value

    def public(self) -> dict[str, Any]:
        """The source as answers show it: no password."""
        return {
            "site_id": self.site_id,
            "url": self.address.shown(),
            "kind": self.address.kind,
            "timezone": self.timezone,
            "counted_statuses": list(self.counted_statuses),
            "mapping": dict(self.mapping),
            "lookback_days": self.lookback_days,
            "created_at": utc_text(self.created_at),
            "updated_at": utc_text(self.updated_at),
        }


def parse_url(url: str) -> Address:
    """``mysql://user:password@host:port/db`` (or mariadb://, postgresql://); 422 naming
    ``url`` otherwise. The message never holds the password."""
    if not re.match(URL_PATTERN, url):
        raise _bad("url", "is not kind://user[:password]@host[:port]/database (kind: mysql, "
                   "mariadb, postgresql)")  # fmt: skip
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise _bad(
            "url", "is not a URL of the form kind://user:password@host:port/database"
        ) from None
    kind = KINDS.get(parts.scheme.lower())
    if kind is None:
        raise _bad("url", "must start with mysql://, mariadb:// or postgresql://")
    database = unquote(parts.path.lstrip("/"))
    if not parts.hostname or not database:
        raise _bad("url", "needs a host and a database: kind://user:password@host:port/database")
    if not parts.username:
        raise _bad("url", "needs a user (a read-only one): kind://user:password@host/database")
    if parts.query or parts.fragment:
        raise _bad("url", "takes no query or fragment")
    return Address(
        kind, parts.hostname, port or DEFAULT_PORTS[kind], unquote(parts.username),
        unquote(parts.password or ""), database,
    )  # fmt: skip


def _bad(name: str, message: str) -> TapiocaError:
    return validation_error([ErrorDetail(name, message)])


def check_mapping(mapping: dict[str, Any] | None) -> dict[str, str | None]:
    """The default mapping with ``mapping``'s names over it; 422 for an unknown key or a
    name that is not a plain identifier."""
    merged = dict(DEFAULT_MAPPING)
    problems = []
    for key, value in (mapping or {}).items():
        if key not in DEFAULT_MAPPING:
            problems.append(ErrorDetail(f"mapping.{key}"[:100], "is not a mapped name"))
        elif value is None and key == "updated_at":
            merged[key] = None
        elif not isinstance(value, str) or not all(
            IDENTIFIER.match(part) for part in value.split(".", 1)
        ):
            problems.append(ErrorDetail(f"mapping.{key}", "must be a table or column name"))
        elif "." in value and key not in TABLES:
            problems.append(ErrorDetail(f"mapping.{key}", "must be a column name"))
        else:
            merged[key] = value
    if problems:
        raise validation_error(problems)
    return merged


def make_source(
    site_id: str,
    url: str,
    timezone: str,
    counted_statuses: list[str] | None = None,
    mapping: dict[str, Any] | None = None,
    lookback_days: int | None = None,
) -> OrderSource:
    try:
        zone_named(timezone)
    except ValueError:
        raise _bad("timezone", f"'{timezone[:64]}' is not an IANA zone") from None
    statuses = tuple(dict.fromkeys(counted_statuses or DEFAULT_STATUSES))
    if not statuses or len(statuses) > 50 or not all(re.match(STATUS_PATTERN, s) for s in statuses):
        raise _bad("counted_statuses", "1 to 50 statuses, each 1 to 100 characters")
    days = DEFAULT_LOOKBACK_DAYS if lookback_days is None else lookback_days
    if not 0 <= days <= MAX_LOOKBACK_DAYS:
        raise _bad("lookback_days", f"from 0 to {MAX_LOOKBACK_DAYS}")
    return OrderSource(site_id, parse_url(url), timezone, statuses, check_mapping(mapping), days)


class Sealer:
    """Seals and opens a source's URL with a key derived from the instance secret."""

    def __init__(self, secret: bytes) -> None:
        key = HKDF(hashes.SHA256(), 32, salt=None, info=b"tapioca order source").derive(secret)
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def seal(self, address: Address) -> str:
        document = orjson.dumps(
            [address.kind, address.host, address.port, address.user, address.password,
             address.database]
        )  # fmt: skip
        return self._fernet.encrypt(document).decode()

    def open(self, sealed: str) -> Address:
        try:
            kind, host, port, user, password, database = orjson.loads(
                self._fernet.decrypt(sealed.encode())
            )
        except InvalidToken:
            raise TapiocaError(
                500, "source_sealed_elsewhere",
                "The order source's credentials were sealed with another instance secret: "
                "connect it again.",
            ) from None  # fmt: skip
        return Address(kind, host, int(port), user, password, database)


_COLUMNS = (
    "site_id, kind, url_sealed, url_shown, timezone, counted_statuses, mapping, "
    "lookback_days, created_at, updated_at"
)
_SAVE = (
    f"INSERT INTO order_source ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now(), "
    "now()) ON CONFLICT (site_id) DO UPDATE SET kind = excluded.kind, url_sealed = "
    "excluded.url_sealed, url_shown = excluded.url_shown, timezone = excluded.timezone, "
    "counted_statuses = excluded.counted_statuses, mapping = excluded.mapping, "
    "lookback_days = excluded.lookback_days, updated_at = now()"
)


async def save_source(store: Store, sealer: Sealer, source: OrderSource) -> OrderSource:
    address = source.address
    await store.execute(
        _SAVE,
        (
            source.site_id, address.kind, sealer.seal(address), address.shown(),
            source.timezone, orjson.dumps(list(source.counted_statuses)).decode(),
            orjson.dumps(source.mapping).decode(), source.lookback_days,
        ),
    )  # fmt: skip
    saved = await load_source(store, sealer, source.site_id)
    assert saved is not None
    return saved


async def connect_source(
    store: Store,
    sealer: Sealer,
    site_id: str,
    url: str,
    timezone: str | None = None,
    counted_statuses: list[str] | None = None,
    mapping: dict[str, Any] | None = None,
    lookback_days: int | None = None,
) -> OrderSource:
    """Set the site's order source (the site's own zone unless ``timezone``): the route
    and the CLI's."""
    site = await get_site(store, site_id)
    zone = site.timezone.key if timezone is None else timezone
    source = make_source(site_id, url, zone, counted_statuses, mapping, lookback_days)
    return await save_source(store, sealer, source)


async def load_source(db: ReadStore, sealer: Sealer, site_id: str) -> OrderSource | None:
    rows = await db.fetch(f"SELECT {_COLUMNS} FROM order_source WHERE site_id = $1", (site_id,))
    return _source_of(rows[0], sealer) if rows else None


async def all_sources(db: ReadStore, sealer: Sealer) -> list[OrderSource]:
    rows = await db.fetch(f"SELECT {_COLUMNS} FROM order_source ORDER BY site_id")
    return [_source_of(row, sealer) for row in rows]


def _json(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def _source_of(row: tuple[Any, ...], sealer: Sealer) -> OrderSource:
    site_id, _kind, sealed, _shown, timezone, statuses, mapping, days, created, updated = row
    return OrderSource(
        site_id, sealer.open(sealed), timezone, tuple(_json(statuses)),
        {**DEFAULT_MAPPING, **_json(mapping)}, int(days), created, updated,
    )  # fmt: skip


async def delete_source(store: Store, site_id: str) -> None:
    """Forget the source and what was kept of it (its runs stay listed)."""
    rows = await store.change(
        "DELETE FROM order_source WHERE site_id = $1 RETURNING site_id", (site_id,)
    )
    if not rows:
        raise not_found("order_source", f"Site '{site_id}' has no order source.")
    for table in ("order_day", "order_hour", "order_item_day", "order_check", "order_sync"):
        await store.execute(f"DELETE FROM {table} WHERE site_id = $1", (site_id,))
    await store.execute(
        "DELETE FROM forecast_point WHERE site_id = $1 AND series IN "
        "('daily_revenue', 'daily_orders', 'hourly_orders')",
        (site_id,),
    )
    await store.execute(
        "DELETE FROM forecast_run WHERE site_id = $1 AND series IN "
        "('daily_revenue', 'daily_orders', 'hourly_orders')",
        (site_id,),
    )


def with_password(source: OrderSource, password: str) -> OrderSource:
    return replace(source, address=replace(source.address, password=password))
