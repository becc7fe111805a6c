"""Validated events → canonical queue records (tapioca.queue.record), encoded."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import urlsplit

import msgspec
import orjson
from pydantic import ValidationError

from tapioca.errors import ErrorDetail, TapiocaError, too_large, validation_error
from tapioca.ingest.fast import GiveUp
from tapioca.ingest.names import normalise_event_type
from tapioca.ingest.schemas import EventIn, field_names
from tapioca.kit.ids import new_event_id, visitor_id
from tapioca.queue.record import QueueRecord
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


_FIELD_NAMES = field_names()
_ITEMS_ENCODER = msgspec.json.Encoder()
_UNENCODABLE = (TypeError, OverflowError, RecursionError, UnicodeEncodeError)


class _Unserialisable(ValueError):
    pass


def _properties_json(properties: dict[str, Any] | None) -> str | None:
    """Free-form properties as JSON text, by orjson, whose limits (64-bit integers, 255
    levels) both ingest paths are held to."""
    if properties is None:
        return None
    try:
        return orjson.dumps(properties).decode()
    except _UNENCODABLE as exc:
        raise _Unserialisable(str(exc)) from exc


UNSERIALISABLE = "is nested more than 250 levels deep or holds a number beyond 64 bits"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


def _text(value: str | int | None) -> str | None:
    return None if value is None else str(value)


def path_of(url: str | None, path: str | None) -> str | None:
    if path is not None:
        return path
    if url is None:
        return None
    try:
        return urlsplit(url).path or "/"
    except ValueError:
        return None


class ItemFields(Protocol):
    @property
    def sku(self) -> str | int: ...
    @property
    def name(self) -> str | None: ...
    @property
    def category(self) -> str | None: ...
    @property
    def price(self) -> Decimal | None: ...
    @property
    def quantity(self) -> int: ...


class EventFields(Protocol):
    """A validated event, whichever path validated it (EventIn or the fast path)."""

    @property
    def site_id(self) -> str: ...
    @property
    def event_type(self) -> str: ...
    @property
    def timestamp(self) -> datetime | None: ...
    @property
    def event_id(self) -> str | int | None: ...
    @property
    def user_id(self) -> str | int | None: ...
    @property
    def anonymous_id(self) -> str | None: ...
    @property
    def session_id(self) -> str | int | None: ...
    @property
    def url(self) -> str | None: ...
    @property
    def path(self) -> str | None: ...
    @property
    def referrer(self) -> str | None: ...
    @property
    def title(self) -> str | None: ...
    @property
    def utm_source(self) -> str | None: ...
    @property
    def utm_medium(self) -> str | None: ...
    @property
    def utm_campaign(self) -> str | None: ...
    @property
    def utm_term(self) -> str | None: ...
    @property
    def utm_content(self) -> str | None: ...
    @property
    def user_agent(self) -> str | None: ...
    @property
    def screen_width(self) -> int | None: ...
    @property
    def device(self) -> str | None: ...
    @property
    def channel(self) -> str | None: ...
    @property
    def page_type(self) -> str | None: ...
    @property
    def properties(self) -> dict[str, Any] | None: ...
    @property
    def revenue(self) -> Decimal | None: ...
    @property
    def currency(self) -> str | None: ...
    @property
    def transaction_id(self) -> str | int | None: ...
    @property
    def items(self) -> Sequence[ItemFields] | None: ...


def to_record(event: EventFields, ctx: RequestContext, received: int | None = None) -> QueueRecord:
    """The event's queue record; ``received``: the request's time in microseconds, when
    the caller has it (once per request instead of once per event)."""
    if received is None:
        received = _micros(ctx.received_at)
    user_agent = event.user_agent if event.user_agent is not None else ctx.user_agent
    user_id = _text(event.user_id)
    visitor = (
        user_id
        or event.anonymous_id
        or visitor_id(ctx.salt, event.site_id, ctx.ip, user_agent or "")
    )
    items = event.items
    return QueueRecord(
        event.site_id,
        _text(event.event_id) or new_event_id(),
        normalise_event_type(event.event_type),
        received if event.timestamp is None else _micros(event.timestamp),
        received,
        visitor,
        user_id,
        event.anonymous_id,
        _text(event.session_id),
        event.url,
        path_of(event.url, event.path),
        event.referrer,
        event.title,
        event.utm_source,
        event.utm_medium,
        event.utm_campaign,
        event.utm_term,
        event.utm_content,
        user_agent,
        event.screen_width,
        event.device,
        event.channel,
        event.page_type,
        _properties_json(event.properties),
        None if event.revenue is None else str(event.revenue),
        event.currency.upper() if event.currency else None,
        _text(event.transaction_id),
        None
        if items is None
        else _ITEMS_ENCODER.encode(
            [
                {
                    "sku": str(item.sku),
                    "name": item.name,
                    "category": item.category,
                    "price": None if item.price is None else str(item.price),
                    "quantity": item.quantity,
                }
                for item in items
            ]
        ).decode(),
    )


def _field_path(loc: tuple[int | str, ...], unknown_key: bool) -> str:
    """Drop pydantic's union-member tags ('constrained-str', 'int', ...) from a location."""
    parts: list[str] = []
    for position, part in enumerate(loc):
        last = position == len(loc) - 1
        if isinstance(part, int) or part in _FIELD_NAMES or (last and unknown_key):
            parts.append(str(part) if part != "" else '""')
    return ".".join(parts)


def _details(prefix: str, exc: ValidationError) -> list[ErrorDetail]:
    """One detail per bad field; the messages of a union's members are joined."""
    messages: dict[str, list[str]] = {}
    for err in exc.errors(include_url=False, include_input=False):
        path = _field_path(err["loc"], err["type"] == "extra_forbidden")
        field = f"{prefix}{path}" if path else prefix.rstrip(".") or "body"
        message = err["msg"].removeprefix("Value error, ")
        if message not in messages.setdefault(field, []):
            messages[field].append(message)
    return [ErrorDetail(field, " or ".join(msgs)) for field, msgs in messages.items()]


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def _nul_field(record: QueueRecord, event: EventFields) -> str | None:
    """The field the client sent with a NUL character (the derived visitor_id last).
    Properties and items are looked at as sent: their JSON text escapes the character."""
    values: dict[str, Any] = msgspec.structs.asdict(record)
    values["properties"] = event.properties
    values["items"] = [[i.sku, i.name, i.category] for i in event.items or ()]
    keys = [k for k in values if k != "visitor_id"] + ["visitor_id"]
    return next((key for key in keys if _has_nul(values[key])), None)


Encoded = list[tuple[str, bytes]]


def encode_events(raw: list[Any], ctx: RequestContext, *, indexed: bool) -> Encoded:
    """Validate every event with EventIn; all or nothing. Returns (event_id, encoded
    record) pairs (tapioca.queue.record)."""
    details: list[ErrorDetail] = []
    events: list[EventFields | None] = []
    for index, item in enumerate(raw):
        prefix = f"{index}." if indexed else ""
        events.append(None)
        if not isinstance(item, dict):
            details.append(ErrorDetail(prefix.rstrip(".") or "body", "must be a JSON object"))
            continue
        try:
            events[-1] = EventIn.model_validate(item)
        except ValidationError as exc:
            details.extend(_details(prefix, exc))
    return encode_valid(events, ctx, indexed=indexed, details=details, fast=False)


def encode_valid(
    events: Sequence[EventFields | None],
    ctx: RequestContext,
    *,
    indexed: bool,
    details: list[ErrorDetail] | None = None,
    fast: bool = True,
    nul_possible: bool = True,
) -> Encoded:
    """The checks after field validation (future times, NUL, size), then the records.

    ``nul_possible=False`` says the body had no way to carry a NUL character (a JSON body
    without the escape \\u0000: JSON strings hold no raw control characters), which
    saves looking at every value of every record."""
    details = details if details is not None else []
    nul_possible = nul_possible or "\x00" in (ctx.user_agent or "")
    encoded: Encoded = []
    latest = ctx.received_at + ctx.max_future
    received = _micros(ctx.received_at)
    for index, event in enumerate(events):
        if event is None:
            continue
        prefix = f"{index}." if indexed else ""
        if event.timestamp is not None and event.timestamp > latest:
            details.append(
                ErrorDetail(
                    f"{prefix}timestamp",
                    f"is more than {int(ctx.max_future.total_seconds())} seconds in the future",
                )
            )
            continue
        try:
            record = to_record(event, ctx, received)
        except _Unserialisable as exc:  # too deep, or a number JSON cannot carry
            if fast:
                raise GiveUp(f"unserialisable value: {exc}") from exc
            details.append(ErrorDetail(f"{prefix}properties", UNSERIALISABLE))
            continue
        if nul_possible and (field := _nul_field(record, event)):
            details.append(ErrorDetail(f"{prefix}{field}", "must not contain NUL characters"))
            continue
        payload = encode_record(record)
        if len(payload) > ctx.max_event_bytes:
            raise too_large(
                f"Event {index} is larger than {ctx.max_event_bytes} bytes."
                if indexed
                else f"The event is larger than {ctx.max_event_bytes} bytes."
            )
        encoded.append((record.event_id, payload))
    if details:
        count = len({d.field.split(".", 1)[0] for d in details}) if indexed else 1
        raise validation_error(
            details[:100],
            f"{count} event(s) are invalid; nothing was accepted." if indexed else None,
        )
    return encoded


def ensure_batch_size(count: int, limit: int) -> None:
    if count > limit:
        raise too_large(f"A request may carry at most {limit} events; this one has {count}.")
    if count == 0:
        raise TapiocaError(
            422, "validation_error", "The batch is empty.", [ErrorDetail("events", "no events")]
        )
