"""The validated event, as every ingest protocol hands it on (ingest/normalize.py).

``Event`` is made from the event's field table (model/event.py): the fields clients send,
under the names they send them, in the table's order, then one field per alias. The fast
path decodes bodies straight into it (ingest/fast.py); the general one validates with
EventIn and copies the result (``from_model``). Once validated, aliases are resolved (they
stay UNSET), times and amounts are parsed, properties are their JSON text, and items are
``Item`` structs.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
import orjson
from pydantic import BaseModel

from tapioca.model.event import FIELDS, ITEM_FIELDS, EventField, Kind, Sent

UNSET: Any = msgspec.UNSET
IdInt = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
# Kinds parsed after decoding (as EventIn's validators parse them): decoded as any value.
PARSED_KINDS = (Kind.TIME, Kind.MONEY, Kind.JSON)

UNSERIALISABLE = "is nested more than 250 levels deep or holds a number beyond 64 bits"
_UNENCODABLE = (TypeError, OverflowError, RecursionError, UnicodeEncodeError)


class Unserialisable(ValueError):
    """Properties that JSON cannot carry (too deep, or a number beyond 64 bits)."""


def properties_json(properties: dict[str, Any] | None) -> str | None:
    """Free-form properties as JSON text, by orjson, whose limits (64-bit integers, 255
    levels) both ingest paths are held to."""
    if properties is None:
        return None
    try:
        return orjson.dumps(properties).decode()
    except _UNENCODABLE as exc:
        raise Unserialisable(str(exc)) from exc


def _meta(sent: Sent) -> msgspec.Meta:
    bounds = {
        "min_length": sent.min_length, "max_length": sent.max_length, "pattern": sent.pattern,
        "ge": sent.ge, "le": sent.le,
    }  # fmt: skip
    given: dict[str, Any] = {k: v for k, v in bounds.items() if v is not None}
    return msgspec.Meta(**given)


def _wire_type(field: EventField, item: Any) -> Any:
    sent = field.sent
    assert sent is not None
    if field.kind is Kind.INT:
        return Annotated[int, _meta(sent)]
    if field.kind is Kind.ITEMS:
        return Annotated[list[item], msgspec.Meta(max_length=sent.max_items)]
    text = Annotated[str, _meta(sent)]
    return text | IdInt if field.kind is Kind.ID else text


def checked_later(field: EventField) -> bool:
    """Decoded as any value and checked after decoding: the parsed kinds and the aliased
    fields (absent, UNSET, differs from null, as it does for EventIn)."""
    assert field.sent is not None
    return field.kind in PARSED_KINDS or bool(field.sent.aliases)


def _struct(name: str, fields: tuple[EventField, ...], item: Any) -> Any:
    spec: list[tuple[str, Any, Any] | tuple[str, Any]] = []
    aliases: list[tuple[str, Any, Any] | tuple[str, Any]] = []
    for field in fields:
        sent = field.sent
        if sent is None:
            continue
        if checked_later(field):
            spec.append((field.sent_name, Any, UNSET))
            aliases += [(alias, Any, UNSET) for alias in sent.aliases]
        elif sent.required:
            spec.append((field.sent_name, _wire_type(field, item)))
        else:
            kind = _wire_type(field, item)
            if sent.default is None:
                kind = kind | None
            spec.append((field.sent_name, kind, sent.default))
    return msgspec.defstruct(name, spec + aliases, forbid_unknown_fields=True)


Item = _struct("Item", ITEM_FIELDS, None)
Event = _struct("Event", FIELDS, Item)


def from_model(event: BaseModel) -> Any:
    """The Event of one validated by EventIn (same names); raises Unserialisable for
    properties JSON cannot carry."""
    fields = dict(event.__dict__)
    fields["properties"] = properties_json(fields["properties"])
    if fields["items"] is not None:
        fields["items"] = [Item(**item.__dict__) for item in fields["items"]]
    return Event(**fields)
