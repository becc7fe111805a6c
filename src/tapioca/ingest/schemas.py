"""The native event as clients send it (api.md, Ingest), validated strictly.

``EventIn`` and ``ItemIn`` are made from the event's field table (model/event.py): its
fields that clients send, under their names and aliases, with their limits."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    WithJsonSchema,
    create_model,
)
from pydantic_core import PydanticCustomError, PydanticUndefined

from tapioca.errors import ErrorDetail
from tapioca.ingest.event import NOT_JSON, read_json
from tapioca.model.event import FIELDS, ITEM_FIELDS, EventField, Kind, Sent, full_match


def _integral(value: Any) -> Any:
    """A JSON number with no fraction is an integer (JSON Schema), even written 12.0; a
    float is taken only while it holds the integer exactly (|n| ≤ 2^53): 1e19 written
    with an exponent must not pass as a nearby integer."""
    if isinstance(value, float) and value.is_integer() and abs(value) <= 2**53:
        return int(value)
    return value


# Integer ids are 64-bit, as JSON parsers on both ingest paths read them. (The bounds
# come before the validator, or the document shows pydantic's names for them.)
IdInt = Annotated[StrictInt, Field(ge=-(2**63), le=2**63 - 1), BeforeValidator(_integral)]

MAX_PROPERTIES = 64
MONEY_PLACES = Decimal("0.0001")  # money is stored as DECIMAL(18, 4)
# An epoch number is read by its magnitude, as trackers send it (docs/api.md): below 10^11
# seconds, below 10^14 milliseconds, else microseconds. 10^11 seconds is the year 5138 and
# 10^11 milliseconds (10^14 microseconds) 1973-03-03, so every time of the years 1973..5138
# is read in its own unit, whichever of the three it is sent in.
EPOCH_SECONDS_BELOW = 10**11
EPOCH_MILLIS_BELOW = 10**14
EPOCH_MICROS_MAX = 253_402_300_799_999_999  # 9999-12-31T23:59:59.999999Z
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MONEY_LIMIT = 10**14  # money is below this either way


# Money as text: decimal digits (at most 14 before the point), a sign, spaces around.
MONEY_TEXT = r"^[ \t\n\r]*[+-]?(0*[0-9]{1,14}(\.[0-9]*)?|\.[0-9]+)[ \t\n\r]*$"
_MONEY_TEXT = re.compile(MONEY_TEXT)


def parse_money(value: Any) -> Decimal | None:
    """Money is decimal from the first byte: numbers and numeric strings, never bool."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ValueError("must be a number")
    if isinstance(value, str) and not _MONEY_TEXT.fullmatch(value):
        raise ValueError("must be a number (digits, at most 14 before the point)")
    try:
        amount = Decimal(str(value).strip(" \t\n\r"))
        amount = amount.quantize(MONEY_PLACES, rounding=ROUND_HALF_EVEN)  # as stores keep it
    except InvalidOperation as exc:  # not a number, or too large to quantize
        raise ValueError("must be a number") from exc
    if not amount.is_finite() or abs(amount) >= MONEY_LIMIT:
        raise ValueError("must be a finite number below 10^14")
    return amount


def parse_properties(value: Any) -> dict[str, Any] | None:
    """An object, or a JSON text of one (as exports with a properties_json column send it)."""
    if isinstance(value, str):
        try:
            value = read_json(value) if value.strip() else None
        except NOT_JSON as exc:
            raise ValueError("must be a JSON object") from exc
    if value is not None and not isinstance(value, dict):
        raise ValueError("must be a JSON object")
    if value is not None and len(value) > MAX_PROPERTIES:
        raise ValueError(f"at most {MAX_PROPERTIES} keys")
    return value


def epoch_micros(value: int | float) -> int:
    """Microseconds since 1970 of an epoch number, read by its magnitude: seconds,
    milliseconds or microseconds. Integers are exact; a fraction is taken as the decimal
    it was written as (the float's shortest repr) and rounded to the microsecond."""
    if not 0 <= value <= EPOCH_MICROS_MAX:
        raise ValueError("must be an epoch time of the years 1970..9999")
    if value < EPOCH_SECONDS_BELOW:
        scale = 1_000_000
    elif value < EPOCH_MILLIS_BELOW:
        scale = 1000
    else:
        scale = 1
    if isinstance(value, int):
        return value * scale
    return int((Decimal(repr(value)) * scale).to_integral_value(ROUND_HALF_EVEN))


_NOT_A_TIME = "must be an RFC 3339 time or an epoch number (seconds, milliseconds or microseconds)"


def parse_timestamp(value: Any) -> datetime | None:
    """RFC 3339 (an offset-less time is UTC) or an epoch number (``epoch_micros``)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(_NOT_A_TIME)
    if isinstance(value, int | float):
        return _EPOCH + timedelta(microseconds=epoch_micros(value))
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip().upper())  # RFC 3339 allows 't', 'z'
        except ValueError as exc:
            raise ValueError("must be an RFC 3339 time, e.g. 2025-11-14T13:30:01Z") from exc
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        try:
            return parsed.astimezone(UTC)
        except OverflowError as exc:
            raise ValueError("is outside the years 1..9999 in UTC") from exc
    raise ValueError(_NOT_A_TIME)


_EPOCH_NUMBER: dict[str, Any] = {
    "minimum": 0,
    "maximum": EPOCH_MICROS_MAX,
    "description": "epoch seconds (< 1e11), milliseconds (< 1e14) or microseconds",
}
_TIMESTAMP_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "format": "date-time", "description": "RFC 3339; no offset = UTC"},
        {"type": "integer", **_EPOCH_NUMBER},
        {"type": "number", **_EPOCH_NUMBER},
        {"type": "null"},
    ],
    "description": "when it happened (default: when received); ≤ 5 minutes in the future",
}


def _bounds(sent: Sent) -> Any:
    """The bounds pydantic checks; a pattern is checked by ``_matching`` (and documented)."""
    pattern: dict[str, Any] | None = {"pattern": sent.pattern} if sent.pattern else None
    return Field(
        min_length=sent.min_length, max_length=sent.max_length, ge=sent.ge, le=sent.le,
        json_schema_extra=pattern,
    )  # fmt: skip


def _matching(pattern: str) -> AfterValidator:
    """A text held to ``pattern`` as the fast path holds it (model/event.full_match)."""
    match = full_match(pattern)

    def check(value: str) -> str:
        if match(value) is None:
            raise PydanticCustomError(
                "string_pattern_mismatch",
                "String should match pattern '{pattern}'",
                {"pattern": pattern},
            )
        return value

    return AfterValidator(check)


_PARSERS: dict[Kind, Any] = {
    Kind.TIME: Annotated[
        datetime | None, BeforeValidator(parse_timestamp), WithJsonSchema(_TIMESTAMP_SCHEMA)
    ],
    Kind.MONEY: Annotated[Decimal | None, BeforeValidator(parse_money)],
    Kind.JSON: Annotated[dict[str, Any] | None, BeforeValidator(parse_properties)],
}


def _annotation(field: EventField, item: type[BaseModel] | None) -> Any:
    """The type a client's value must have (``item``: the model of one line item)."""
    sent = field.sent
    assert sent is not None
    if field.kind in _PARSERS:
        return _PARSERS[field.kind]
    if field.kind is Kind.INT:
        kind: Any = Annotated[StrictInt, _bounds(sent), BeforeValidator(_integral)]
    elif field.kind is Kind.ITEMS:
        assert item is not None
        kind = list[item]  # type: ignore[valid-type]
    else:
        kind = Annotated[StrictStr, _bounds(sent)]
        if sent.pattern:
            kind = Annotated[kind, _matching(sent.pattern)]
        if field.kind is Kind.ID:
            kind = kind | IdInt
    return kind if sent.required or sent.default is not None else kind | None


class Validated(BaseModel):
    """A model made from a field table: its fields are attributes (typed loosely)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    if TYPE_CHECKING:

        def __init__(self, **fields: Any) -> None: ...
        def __getattr__(self, name: str) -> Any: ...


def _model(name: str, doc: str | None, fields: tuple[EventField, ...], item: type[BaseModel] | None
           ) -> type[Validated]:  # fmt: skip
    """A strict pydantic model of the fields clients send, in the table's order."""
    definitions: dict[str, Any] = {}
    for field in fields:
        sent = field.sent
        if sent is None:
            continue
        alias = AliasChoices(field.sent_name, *sent.aliases) if sent.aliases else None
        info = Field(
            default=PydanticUndefined if sent.required else sent.default,
            validation_alias=alias,
            max_length=sent.max_items,
        )
        definitions[field.sent_name] = (_annotation(field, item), info)
    return create_model(name, __base__=Validated, __doc__=doc, **definitions)


ItemIn = _model("ItemIn", None, ITEM_FIELDS, None)
EventIn = _model("EventIn", "One event. Aliases are accepted on input and never echoed.",
                 FIELDS, ItemIn)  # fmt: skip


def field_names() -> frozenset[str]:
    """Every name a client may use for a field (names and aliases, items included)."""
    names: set[str] = set()
    for field in FIELDS + ITEM_FIELDS:
        if field.sent is not None:
            names.update((field.sent_name, *field.sent.aliases))
    return frozenset(names)


_FIELD_NAMES = field_names()


def _field_path(loc: tuple[int | str, ...], unknown_key: bool) -> str:
    """Drop pydantic's union-member tags ('constrained-str', 'int', ...) from a location."""
    parts: list[str] = []
    for position, part in enumerate(loc):
        last = position == len(loc) - 1
        if isinstance(part, int) or part in _FIELD_NAMES or (last and unknown_key):
            parts.append(str(part) if part != "" else '""')
    return ".".join(parts)


def details_of(prefix: str, exc: ValidationError) -> list[ErrorDetail]:
    """One detail per bad field (named after ``prefix``); the messages of a union's
    members are joined."""
    messages: dict[str, list[str]] = {}
    for err in exc.errors(include_url=False, include_input=False):
        path = _field_path(err["loc"], err["type"] == "extra_forbidden")
        field = f"{prefix}{path}" if path else prefix.rstrip(".") or "body"
        message = err["msg"].removeprefix("Value error, ")
        if message not in messages.setdefault(field, []):
            messages[field].append(message)
    return [ErrorDetail(field, " or ".join(msgs)) for field, msgs in messages.items()]
