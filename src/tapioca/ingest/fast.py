"""The fast path of ingest: decode and validate a whole body in one pass (msgspec).

`EventIn` (pydantic) is the contract and reports every error. This path accepts only
what `EventIn` accepts: whenever it meets anything it is not sure about (a decode or
type error, two aliases of one field, a bad time or amount), it gives up and the caller
validates the body again with `EventIn`, which then produces the answer and the details.
A property test holds the two paths to the same records.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from tapioca.ingest.schemas import parse_money, parse_properties, parse_timestamp

Text = Annotated[str, msgspec.Meta(max_length=2048)]
Short = Annotated[str, msgspec.Meta(max_length=256)]
Ident = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
IdInt = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
SiteId = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")]


class GiveUp(Exception):
    """The fast path cannot vouch for this body; validate it with EventIn."""


class WireItem(msgspec.Struct, forbid_unknown_fields=True):
    sku: Annotated[str, msgspec.Meta(min_length=1, max_length=256)] | IdInt
    name: Text | None = None
    category: Short | None = None
    price: Any = None
    quantity: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)] = 1


class WireEvent(msgspec.Struct, forbid_unknown_fields=True):
    site_id: Annotated[
        str, msgspec.Meta(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")
    ]
    # Fields with aliases: UNSET (absent) differs from null, as it does for EventIn.
    event_type: Any = msgspec.UNSET  # a Name once _finish has checked it
    name: Any = msgspec.UNSET
    event: Any = msgspec.UNSET
    timestamp: Any = msgspec.UNSET
    occurred_at: Any = msgspec.UNSET
    ts: Any = msgspec.UNSET
    event_id: Ident | IdInt | None = None
    user_id: Ident | IdInt | None = None
    anonymous_id: Ident | None = None
    session_id: Ident | IdInt | None = None
    url: Text | None = None
    path: Text | None = None
    referrer: Text | None = None
    title: Text | None = None
    utm_source: Short | None = None
    utm_medium: Short | None = None
    utm_campaign: Short | None = None
    utm_term: Short | None = None
    utm_content: Short | None = None
    user_agent: Annotated[str, msgspec.Meta(max_length=1024)] | None = None
    screen_width: Annotated[int, msgspec.Meta(ge=0, le=100_000)] | None = None
    device: Short | None = None
    channel: Short | None = None
    page_type: Short | None = None
    properties: Any = msgspec.UNSET
    properties_json: Any = msgspec.UNSET
    props: Any = msgspec.UNSET
    revenue: Any = msgspec.UNSET
    value: Any = msgspec.UNSET
    currency: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z]{3}$")] | None = None
    transaction_id: Ident | IdInt | None = None
    items: Annotated[list[WireItem], msgspec.Meta(max_length=1000)] | None = None


class Envelope(msgspec.Struct, forbid_unknown_fields=True):
    events: list[WireEvent]


# What makes the fast path hand a body to the general one (which has the answer).
_UNSURE = (msgspec.DecodeError, msgspec.ValidationError, RecursionError, UnicodeDecodeError)
_ONE = msgspec.json.Decoder(WireEvent)
_LIST = msgspec.json.Decoder(list[WireEvent])
_ENVELOPE = msgspec.json.Decoder(Envelope)


def _one_of(first: Any, second: Any, third: Any = msgspec.UNSET) -> Any:
    """The value of whichever alias was sent (None if none); two aliases: give up."""
    if second is msgspec.UNSET and third is msgspec.UNSET:  # the usual case
        return None if first is msgspec.UNSET else first
    present = [v for v in (first, second, third) if v is not msgspec.UNSET]
    if len(present) > 1:
        raise GiveUp("two aliases of one field")
    return present[0]


def _finish(event: WireEvent) -> WireEvent:
    """Resolve aliases and parse times, amounts and properties, as EventIn does."""
    unset = msgspec.UNSET
    name = event.event_type  # the aliases are rare: _one_of only when one is there
    if event.name is not unset or event.event is not unset or name is unset:
        name = _one_of(name, event.name, event.event)
    if not (isinstance(name, str) and 1 <= len(name) <= 200):
        raise GiveUp("event_type")
    event.event_type = name
    try:
        stamp = event.timestamp
        if event.occurred_at is not unset or event.ts is not unset or stamp is unset:
            stamp = _one_of(stamp, event.occurred_at, event.ts)
        event.timestamp = stamp if stamp is None else parse_timestamp(stamp)
        amount = event.revenue
        if event.value is not unset or amount is unset:
            amount = _one_of(amount, event.value)
        event.revenue = None if amount is None else parse_money(amount)
        props = event.properties
        if event.properties_json is not unset or event.props is not unset or props is unset:
            props = _one_of(props, event.properties_json, event.props)
        event.properties = None if props is None else parse_properties(props)
        for item in event.items or ():
            item.price = None if item.price is None else parse_money(item.price)
    except (ValueError, TypeError, ArithmeticError) as exc:
        raise GiveUp(str(exc)) from exc
    return event


def decode_one(body: bytes) -> WireEvent:
    try:
        return _finish(_ONE.decode(body))
    except _UNSURE as exc:
        raise GiveUp(str(exc)) from exc


def decode_batch(body: bytes) -> list[WireEvent]:
    """A JSON array, {"events": [...]}, or NDJSON lines of events (else: give up)."""
    text = body.strip()
    try:
        if text[:1] == b"[":
            events = _LIST.decode(text)
        elif text[:1] == b"{" and text[1:].lstrip().startswith(b'"events"'):
            events = _ENVELOPE.decode(text).events
        elif b"\n" in text:
            events = [_ONE.decode(line) for line in text.split(b"\n") if line.strip()]
        else:
            raise GiveUp("a single object: the general path decides its shape")
    except _UNSURE as exc:
        raise GiveUp(str(exc)) from exc
    return [_finish(event) for event in events]
