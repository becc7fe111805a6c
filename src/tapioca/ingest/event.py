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

from tapioca.model.event import FIELDS, ITEM_FIELDS, EventField, Kind, Sent, whole

UNSET: Any = msgspec.UNSET
IdInt = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
# Kinds parsed after decoding (as EventIn's validators parse them): decoded as any value.
PARSED_KINDS = (Kind.TIME, Kind.MONEY, Kind.JSON)

# What the reader of JSON texts raises for one that is not JSON (or too deep to read).
NOT_JSON = (msgspec.DecodeError, UnicodeDecodeError, RecursionError)
_JSON = msgspec.json.Decoder()


def read_json(text: bytes | str) -> Any:
    """The value of a JSON text, as both ingest paths read bodies and properties: integers
    stay exact at any size (a float would stand for a number nobody sent), so that one
    beyond 64 bits is refused, not rounded. Raises one of ``NOT_JSON``."""
    return _JSON.decode(text)


def json_problem(exc: BaseException) -> str:
    """Why a text is not JSON, as an error detail says it."""
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc).removeprefix("JSON is malformed: ")


# Integers free-form properties may hold: those of 64 bits, signed or not (orjson's).
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1
TOO_DEEP = "is nested more than 250 levels deep"
BEYOND_64_BITS = "is an integer beyond 64 bits"
_UNENCODABLE = (TypeError, OverflowError, RecursionError, UnicodeEncodeError)


class Unserialisable(ValueError):
    """Properties that JSON cannot carry: too deep, or integers beyond 64 bits, at
    ``paths`` below the properties object (``(".big", ".list.0")``; ``""``: the object)."""

    def __init__(self, message: str, paths: tuple[str, ...]) -> None:
        super().__init__(message)
        self.message = message
        self.paths = paths


def _step(key: str | int) -> str:
    return '""' if key == "" else str(key)  # an empty key is named "", as in field paths


def _beyond_64_bits(properties: dict[str, Any]) -> list[str]:
    """The paths of the integers beyond 64 bits in ``properties``, in document order."""
    found: list[str] = []
    stack: list[tuple[str, Any]] = [("", properties)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict | list):
            keys = value if isinstance(value, dict) else range(len(value))
            stack.extend(reversed([(f"{path}.{_step(k)}", value[k]) for k in keys]))
        elif isinstance(value, int) and not _INT_MIN <= value <= _INT_MAX:
            found.append(path)
    return found


def properties_json(properties: dict[str, Any] | None) -> str | None:
    """Free-form properties as JSON text, by orjson, whose limits (64-bit integers, 255
    levels) both ingest paths are held to."""
    if properties is None:
        return None
    try:
        return orjson.dumps(properties).decode()
    except _UNENCODABLE as exc:
        big = _beyond_64_bits(properties)
        if big:
            raise Unserialisable(BEYOND_64_BITS, tuple(big)) from exc
        raise Unserialisable(TOO_DEEP, ("",)) from exc


def _meta(sent: Sent) -> msgspec.Meta:
    """The bounds msgspec checks while decoding, the pattern as a whole (model/event.whole)."""
    bounds = {
        "min_length": sent.min_length, "max_length": sent.max_length, "ge": sent.ge,
        "le": sent.le, "pattern": sent.pattern and whole(sent.pattern),
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
