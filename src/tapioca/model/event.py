"""The event, declared once (architecture.md, Data model; api.md, Ingest).

``FIELDS`` lists every field of an event, in the order of the queue record and of the
stored row: how a client sends it (``Sent``: its name, aliases and limits), whether the
queue record carries it (ingest stamps the record fields clients do not send; the worker
derives the others) and how the store keeps it. The ingest schema and its fast path
(ingest/schemas.py, ingest/fast.py), the queue record (queue/record.py), the stored row
and its COPY columns (storage/rows.py) are made from this table; the migrations create
the columns, and a test holds the migrated tables to it (tests/integration/test_schema.py).

The queue record is versioned (queue/record.py): a field added to the record is appended
after every record field of earlier versions, with ``since`` set to the new version.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from functools import cache

# The canonical event names that reports and derived data look for (metrics.md, Event
# names; ingest/names.py maps every spelling to them).
PAGE_VIEW = "page_view"
PURCHASE = "purchase"
VIEW_CART = "view_cart"
REFUND = "refund"

# A site id: letters, digits and _.:- (at most 100), sent with every event and named by
# every report.
SITE_ID_PATTERN = r"^[A-Za-z0-9_.:-]+$"
SITE_ID_MAX = 100
# Ids clients send (event, user, session, transaction): text, or a 64-bit integer.
ID_MAX = 128
TEXT_MAX = 2048
SHORT_MAX = 256
MAX_ITEMS = 1000


class Kind(StrEnum):
    TEXT = "text"  # a string
    ID = "id"  # a string, or a 64-bit integer sent for one; kept as text
    INT = "int"  # an integer
    TIME = "time"  # a moment: sent as RFC 3339 or an epoch number; µs since 1970 UTC in the record
    MONEY = "money"  # a decimal amount (18 digits, 4 after the point)
    JSON = "json"  # a JSON object, carried and kept as its JSON text
    ITEMS = "items"  # line items (ITEM_FIELDS), carried and kept as their JSON text
    FLAG = "flag"  # a boolean


@dataclass(frozen=True, slots=True)
class Sent:
    """How clients send a field: under ``name`` (default: the field's) or one of
    ``aliases``; strings within ``min_length``..``max_length`` matching ``pattern`` as a
    whole (``full_match``), integers within ``ge``..``le``, at most ``max_items`` items;
    ``default`` when absent."""

    name: str | None = None
    aliases: tuple[str, ...] = ()
    required: bool = False
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    ge: int | None = None
    le: int | None = None
    max_items: int | None = None
    default: int | None = None  # the value when not sent (a field with one is never null)


@dataclass(frozen=True, slots=True)
class EventField:
    name: str  # the record field and the stored column
    kind: Kind
    sent: Sent | None = None  # None: clients never send it
    queued: bool = True  # in the queue record; else the worker derives it (enrichment)
    required: bool = False  # never null once stored
    ordered: bool = False  # compared byte by byte in the store (ids, dimension values)
    since: int = 1  # the queue record version that added it (queued fields)

    @property
    def sent_name(self) -> str:
        """The name clients send it under."""
        return self.name if self.sent is None or self.sent.name is None else self.sent.name


def whole(pattern: str) -> str:
    r"""The one reading of a field's ``pattern``, on both ingest paths and for site ids:
    the whole text matches it, as JSON Schema reads ``^...$``. Python's ``$`` alone would
    also match before a final newline (and let "shop\n" pass); a search for
    ``\A(?:pattern)\Z`` is a full match, for ``re`` and for msgspec's ``Meta(pattern)``."""
    return rf"\A(?:{pattern})\Z"


@cache
def full_match(pattern: str) -> Callable[[str], re.Match[str] | None]:
    """A matcher of ``whole(pattern)``."""
    return re.compile(whole(pattern)).search


_ID = Sent(min_length=1, max_length=ID_MAX)

FIELDS: tuple[EventField, ...] = (
    EventField(
        "site_id",
        Kind.TEXT,
        Sent(required=True, min_length=1, max_length=SITE_ID_MAX, pattern=SITE_ID_PATTERN),
        required=True,
        ordered=True,
    ),
    EventField("event_id", Kind.ID, _ID, required=True, ordered=True),  # else ingest assigns one
    EventField(
        "event_type",
        Kind.TEXT,
        Sent(aliases=("name", "event"), required=True, min_length=1, max_length=200),
        required=True,
        ordered=True,
    ),
    # when it happened; else when it was received
    EventField(
        "ts", Kind.TIME, Sent(name="timestamp", aliases=("occurred_at", "ts")), required=True
    ),
    EventField("received_at", Kind.TIME, required=True),  # stamped by ingest
    EventField("visitor_id", Kind.TEXT, required=True, ordered=True),  # stamped by ingest
    EventField("user_id", Kind.ID, _ID, ordered=True),
    EventField("anonymous_id", Kind.TEXT, _ID, ordered=True),
    EventField("session_id", Kind.ID, _ID, ordered=True),
    EventField("url", Kind.TEXT, Sent(max_length=TEXT_MAX)),
    EventField("path", Kind.TEXT, Sent(max_length=TEXT_MAX), ordered=True),
    EventField("referrer", Kind.TEXT, Sent(max_length=TEXT_MAX)),
    EventField("title", Kind.TEXT, Sent(max_length=TEXT_MAX)),
    EventField("utm_source", Kind.TEXT, Sent(max_length=SHORT_MAX), ordered=True),
    EventField("utm_medium", Kind.TEXT, Sent(max_length=SHORT_MAX), ordered=True),
    EventField("utm_campaign", Kind.TEXT, Sent(max_length=SHORT_MAX), ordered=True),
    EventField("utm_term", Kind.TEXT, Sent(max_length=SHORT_MAX), ordered=True),
    EventField("utm_content", Kind.TEXT, Sent(max_length=SHORT_MAX), ordered=True),
    EventField("user_agent", Kind.TEXT, Sent(max_length=1024)),  # else the request's header
    EventField("screen_width", Kind.INT, Sent(ge=0, le=100_000)),
    EventField("device", Kind.TEXT, Sent(max_length=SHORT_MAX), ordered=True),
    EventField("browser", Kind.TEXT, queued=False, ordered=True),
    EventField("os", Kind.TEXT, queued=False, ordered=True),
    EventField("channel", Kind.TEXT, Sent(max_length=SHORT_MAX), ordered=True),
    EventField("source", Kind.TEXT, queued=False, ordered=True),
    EventField("page_type", Kind.TEXT, Sent(max_length=SHORT_MAX), ordered=True),
    EventField("properties", Kind.JSON, Sent(aliases=("properties_json", "props"))),
    EventField("revenue", Kind.MONEY, Sent(aliases=("value",))),
    EventField("currency", Kind.TEXT, Sent(pattern=r"^[A-Za-z]{3}$")),
    EventField("transaction_id", Kind.ID, _ID, ordered=True),
    EventField("items", Kind.ITEMS, Sent(max_items=MAX_ITEMS)),
    EventField("is_bot", Kind.FLAG, queued=False, required=True),
)

# One line item of an event's ``items`` (kept in the event's JSON text, in this order).
ITEM_FIELDS: tuple[EventField, ...] = (
    EventField("sku", Kind.ID, Sent(required=True, min_length=1, max_length=SHORT_MAX)),
    EventField("name", Kind.TEXT, Sent(max_length=TEXT_MAX)),
    EventField("category", Kind.TEXT, Sent(max_length=SHORT_MAX)),
    EventField("price", Kind.MONEY, Sent()),
    EventField("quantity", Kind.INT, Sent(ge=0, le=1_000_000, default=1)),
)

BY_NAME = {field.name: field for field in FIELDS}
SENT = tuple(field for field in FIELDS if field.sent is not None)
QUEUED = tuple(field for field in FIELDS if field.queued)
COLUMNS = tuple(field.name for field in FIELDS)
RECORD_VERSION = max(field.since for field in QUEUED)
