"""Validated events → canonical queue records (tapioca.queue.record), encoded.

Every ingest protocol hands its validated events here (ingest/event.py): the checks that
need the request (times in the future, NUL characters, the size of a record) and what
ingest adds to each event (its id, receive time, visitor id and path) are the same for
all of them."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from typing import Any
from urllib.parse import urlsplit

import msgspec
import orjson

from tapioca.errors import ErrorDetail, too_large, validation_error
from tapioca.ingest.names import normalise_event_type
from tapioca.kit.codegen import compile_function
from tapioca.kit.ids import new_event_id, visitor_id
from tapioca.model.event import ITEM_FIELDS, QUEUED, Kind
from tapioca.queue.record import RECORD_INDEX
from tapioca.queue.record import encode as encode_record


@dataclass(frozen=True, slots=True)
class RequestContext:
    """What the request adds to its events: time, client address and User-Agent."""

    received_at: datetime
    ip: str
    user_agent: str | None
    salt: bytes
    max_future: timedelta
    max_event_bytes: int


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_ITEMS_ENCODER = msgspec.json.Encoder()
ITEM_NAMES = tuple(field.name for field in ITEM_FIELDS)


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


def path_of(url: str | None, path: str | None) -> str | None:
    if path is not None:
        return path
    if url is None:
        return None
    try:
        return urlsplit(url).path or "/"
    except ValueError:
        return None


_ITEM_FROM = attrgetter(*(field.name for field in ITEM_FIELDS))
_ITEM_TEXT = tuple(i for i, f in enumerate(ITEM_FIELDS) if f.kind in (Kind.ID, Kind.MONEY))


def _item(item: Any) -> dict[str, Any]:
    """One line item as the record's JSON carries it: skus and prices as text."""
    out = list(_ITEM_FROM(item))
    for index in _ITEM_TEXT:
        if out[index] is not None:
            out[index] = str(out[index])
    return dict(zip(ITEM_NAMES, out, strict=True))


def _items_json(items: list[Any]) -> str:
    return _ITEMS_ENCODER.encode([_item(item) for item in items]).decode()


# What ingest adds to every event (api.md, Ingest; metrics.md, Time and Identity), over
# the record's fields as local names: the sent values, ids already text, times in µs. An
# event without a time gets the request's plus its ``position`` in the request in µs:
# the events of one request keep their order (a session's first event is the first sent).
_STAMP = """
event_id = event_id or new_event_id()
event_type = normalise_event_type(event_type)
received_at = received
if ts is None:
    ts = received + position
if user_agent is None:
    user_agent = ctx.user_agent
visitor_id = user_id or anonymous_id or visitor_hash(ctx.salt, site_id, ctx.ip, user_agent or "")
path = path_of(url, path)
if currency:
    currency = currency.upper()
"""
_AS_RECORD = {  # a sent value as the record carries it
    Kind.ID: "if {0} is not None and {0}.__class__ is not str:\n    {0} = str({0})",
    Kind.TIME: "if {0} is not None:\n    {0} = _micros({0})",
    Kind.ITEMS: "if {0} is not None:\n    {0} = _items_json({0})",
}


def _to_record_source() -> str:
    """``to_record``, compiled from the table (kit/codegen.py): every record field is a
    local name, read from the event, converted by its kind, stamped by _STAMP."""
    stamped = [f.name for f in QUEUED if f.sent is None]
    missing = [name for name in stamped if not re.search(rf"^{name} = ", _STAMP, re.MULTILINE)]
    if missing:
        raise RuntimeError(f"no rule of ingest stamps the record field(s) {missing}")
    body = [f"{f.name} = event.{f.sent_name}" for f in QUEUED if f.sent is not None]
    body += [_AS_RECORD[f.kind].format(f.name) for f in QUEUED if f.sent and f.kind in _AS_RECORD]
    body.append(_STAMP)
    body.append(f"return [{', '.join(f.name for f in QUEUED)}]")
    return (
        "def to_record(event, ctx, received=None, position=0):\n"
        "    if received is None:\n"
        "        received = _micros(ctx.received_at)\n" + textwrap.indent("\n".join(body), "    ")
    )


# The event's queue record, as its values in order (queue/record.py); ``received``: the
# request's time in microseconds, when the caller has it (once per request instead of
# once per event); ``position``: the event's place in the request.
to_record: Callable[[Any, RequestContext, int | None, int], list[Any]] = compile_function(
    "to_record", _to_record_source(), {
        "_micros": _micros, "_items_json": _items_json, "new_event_id": new_event_id,
        "normalise_event_type": normalise_event_type, "visitor_hash": visitor_id,
        "path_of": path_of,
    },
)  # fmt: skip
_EVENT_ID = RECORD_INDEX["event_id"]


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    return False


_SENT_NAME = {field.name: field.sent_name for field in QUEUED}
_TEXTS = attrgetter(*(f.name for f in ITEM_FIELDS if f.kind in (Kind.ID, Kind.TEXT)))


def _nul_field(record: list[Any], event: Any) -> str | None:
    """The field the client sent with a NUL character (the derived visitor_id last).
    Properties and items are looked at as sent: their JSON text escapes the character."""
    values = dict(zip(RECORD_INDEX, record, strict=True))
    if event.properties is not None:
        values["properties"] = orjson.loads(event.properties)
    values["items"] = [_TEXTS(item) for item in event.items or ()]
    keys = [k for k in values if k != "visitor_id"] + ["visitor_id"]
    return next((_SENT_NAME[key] for key in keys if _has_nul(values[key])), None)


Encoded = list[tuple[str, bytes]]


def encode(
    events: Sequence[Any],
    ctx: RequestContext,
    *,
    indexed: bool,
    details: Sequence[ErrorDetail] = (),
    nul_possible: bool = True,
    first: int = 0,
) -> Encoded:
    """The checks after field validation (future times, NUL, size), then the records:
    (event_id, encoded record) pairs, all or nothing. ``events`` are validated Events
    (ingest/event.py), None for one that failed validation (``details`` say why);
    ``first``: the position of the first of them in the request (imports come in chunks).

    ``nul_possible=False`` says the body had no way to carry a NUL character (a JSON body
    without the escape \\u0000: JSON strings hold no raw control characters), which
    saves looking at every value of every record."""
    problems = list(details)
    nul_possible = nul_possible or "\x00" in (ctx.user_agent or "")
    encoded: Encoded = []
    latest = ctx.received_at + ctx.max_future
    received = _micros(ctx.received_at)
    for index, event in enumerate(events):
        if event is None:
            continue
        prefix = f"{index}." if indexed else ""
        stamp = event.timestamp
        if stamp is not None and stamp > latest:
            seconds = int(ctx.max_future.total_seconds())
            problems.append(ErrorDetail(f"{prefix}timestamp", f"is more than {seconds} seconds "
                                        "in the future"))  # fmt: skip
            continue
        record = to_record(event, ctx, received, first + index)
        if nul_possible and (field := _nul_field(record, event)):
            problems.append(ErrorDetail(f"{prefix}{field}", "must not contain NUL characters"))
            continue
        payload = encode_record(record)
        if len(payload) > ctx.max_event_bytes:
            raise too_large(
                f"Event {index} is larger than {ctx.max_event_bytes} bytes."
                if indexed
                else f"The event is larger than {ctx.max_event_bytes} bytes."
            )
        encoded.append((record[_EVENT_ID], payload))
    if problems:
        count = len({d.field.split(".", 1)[0] for d in problems}) if indexed else 1
        raise validation_error(
            problems,
            f"{count} event(s) are invalid; nothing was accepted." if indexed else None,
        )
    return encoded
