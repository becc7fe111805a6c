"""The fast path of ingest: decode and validate a whole body in one pass (msgspec).

`EventIn` (pydantic) is the contract and reports every error. This path accepts only
what `EventIn` accepts: whenever it meets anything it is not sure about (a decode or
type error, two aliases of one field, a bad time or amount), it gives up and the caller
validates the body again with `EventIn`, which then produces the answer and the details.
A property test holds the two paths to the same records. Both are made from the event's
field table (model/event.py); this one decodes into ``Event`` (ingest/event.py).
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import Any

import msgspec

from tapioca.ingest.body import is_envelope
from tapioca.ingest.event import UNSET, Event, checked_later, properties_json
from tapioca.ingest.schemas import parse_money, parse_properties, parse_timestamp
from tapioca.model.event import ITEM_FIELDS, SENT, Kind, Sent, full_match


class GiveUp(Exception):
    """The fast path cannot vouch for this body; validate it with EventIn."""


def _json_text(value: Any) -> str | None:
    return properties_json(parse_properties(value))


_PARSERS: dict[Kind, Callable[[Any], Any]] = {
    Kind.TIME: parse_timestamp,
    Kind.MONEY: parse_money,
    Kind.JSON: _json_text,  # as the Event carries properties
}


def _text_check(sent: Sent) -> Callable[[Any], bool]:
    """Whether a text decoded as any value is one EventIn takes: a string within its
    lengths that matches its pattern as a whole (model/event.full_match); absent or null
    only when it is optional."""
    low, high = sent.min_length or 0, sent.max_length or 1 << 62
    match = full_match(sent.pattern) if sent.pattern else None

    def check(value: Any) -> bool:
        if value is UNSET or value is None:
            return not sent.required
        if not isinstance(value, str) or not low <= len(value) <= high:
            return False
        return match is None or match(value) is not None

    return check


# The fields checked after decoding: name, aliases, parser (None: a text, checked).
_CHECKED = tuple(
    (f.sent_name, f.sent.aliases, _PARSERS.get(f.kind), None if f.kind in _PARSERS else
     _text_check(f.sent))
    for f in SENT if f.sent is not None and checked_later(f)
)  # fmt: skip
_ALIASES = attrgetter(*(alias for _, aliases, _, _ in _CHECKED for alias in aliases))
_NO_ALIASES = _ALIASES(Event(site_id=""))
_PRICES = tuple(f.name for f in ITEM_FIELDS if f.kind is Kind.MONEY)

# What makes the fast path hand a body to the general one (which has the answer).
_UNSURE = (msgspec.DecodeError, msgspec.ValidationError, RecursionError, UnicodeDecodeError)
_ONE = msgspec.json.Decoder(Event)
_LIST = msgspec.json.Decoder(list[Event])
_ENVELOPE = msgspec.json.Decoder(
    msgspec.defstruct("Envelope", [("events", list[Event])], forbid_unknown_fields=True)
)


def _resolve_aliases(event: Any) -> None:
    """Move the value of an alias sent to its field; two sent for one field: give up."""
    for name, aliases, _, _ in _CHECKED:
        sent = [a for a in (name, *aliases) if getattr(event, a) is not UNSET]
        if len(sent) > 1:
            raise GiveUp("two aliases of one field")
        if sent and sent[0] != name:
            setattr(event, name, getattr(event, sent[0]))
            setattr(event, sent[0], UNSET)


def _finish(event: Any) -> Any:
    """Resolve aliases and parse times, amounts and properties, as EventIn does."""
    try:
        if _ALIASES(event) != _NO_ALIASES:  # rarely sent
            _resolve_aliases(event)
        for name, _, parse, check in _CHECKED:
            value = getattr(event, name)
            if check is not None:
                if not check(value):
                    raise GiveUp(name)
                if value is UNSET:
                    setattr(event, name, None)
            elif value is UNSET or value is None:
                setattr(event, name, None)
            elif parse is not None:
                setattr(event, name, parse(value))
        for item in event.items or ():
            for name in _PRICES:
                value = getattr(item, name)
                setattr(item, name, None if value is UNSET or value is None else parse_money(value))
    except (ValueError, TypeError, ArithmeticError) as exc:
        raise GiveUp(str(exc)) from exc
    return event


def decode_one(body: bytes) -> Any:
    try:
        return _finish(_ONE.decode(body))
    except _UNSURE as exc:
        raise GiveUp(str(exc)) from exc


def decode_batch(body: bytes) -> list[Any]:
    """A JSON array, {"events": [...]}, or NDJSON lines of events (else: give up)."""
    text = body.strip()
    try:
        if text[:1] == b"[":
            events = _LIST.decode(text)
        elif is_envelope(text):
            envelope: Any = _ENVELOPE.decode(text)
            events = envelope.events
        elif b"\n" in text:
            events = [_ONE.decode(line) for line in text.split(b"\n") if line.strip()]
        else:
            raise GiveUp("a single object: the general path decides its shape")
    except _UNSURE as exc:
        raise GiveUp(str(exc)) from exc
    return [_finish(event) for event in events]
