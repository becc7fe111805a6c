"""The native event as clients send it (api.md, Ingest), validated strictly."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Annotated, Any

import orjson
from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    WithJsonSchema,
    field_validator,
)

Text = Annotated[StrictStr, Field(max_length=2048)]
ShortText = Annotated[StrictStr, Field(max_length=256)]
Identifier = Annotated[StrictStr, Field(min_length=1, max_length=128)]


def _integral(value: Any) -> Any:
    """A JSON number with no fraction is an integer (JSON Schema), even written 12.0; a
    float is taken only while it holds the integer exactly (|n| ≤ 2^53): the JSON parser
    reads an integer beyond 64 bits as a float, which must not pass as a nearby one."""
    if isinstance(value, float) and value.is_integer() and abs(value) <= 2**53:
        return int(value)
    return value


# Integer ids are 64-bit, as JSON parsers on both ingest paths read them. (The bounds
# come before the validator, or the document shows pydantic's names for them.)
IdInt = Annotated[StrictInt, Field(ge=-(2**63), le=2**63 - 1), BeforeValidator(_integral)]
SiteId = Annotated[StrictStr, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")]

MAX_PROPERTIES = 64
MONEY_PLACES = Decimal("0.0001")  # money is stored as DECIMAL(18, 4)
EPOCH_MS_MAX = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
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
    """An object, or a JSON text of one (the seed-003 properties_json column)."""
    if isinstance(value, str):
        try:
            value = orjson.loads(value) if value.strip() else None
        except orjson.JSONDecodeError as exc:
            raise ValueError("must be a JSON object") from exc
    if value is not None and not isinstance(value, dict):
        raise ValueError("must be a JSON object")
    if value is not None and len(value) > MAX_PROPERTIES:
        raise ValueError(f"at most {MAX_PROPERTIES} keys")
    return value


def parse_timestamp(value: Any) -> datetime | None:
    """RFC 3339 (an offset-less time is UTC) or epoch milliseconds."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("must be an RFC 3339 time or epoch milliseconds")
    if isinstance(value, int | float):
        if not 0 <= value <= EPOCH_MS_MAX:
            raise ValueError("epoch milliseconds out of range")
        return datetime.fromtimestamp(value / 1000, UTC)
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
    raise ValueError("must be an RFC 3339 time or epoch milliseconds")


_TIMESTAMP_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "format": "date-time", "description": "RFC 3339; no offset = UTC"},
        {"type": "integer", "minimum": 0, "maximum": EPOCH_MS_MAX, "description": "epoch ms"},
        {"type": "number", "minimum": 0, "maximum": EPOCH_MS_MAX, "description": "epoch ms"},
        {"type": "null"},
    ],
    "description": "when it happened (default: when received); ≤ 5 minutes in the future",
}


class ItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sku: Annotated[StrictStr, Field(min_length=1, max_length=256)] | IdInt
    name: Text | None = None
    category: ShortText | None = None
    price: Decimal | None = None
    quantity: Annotated[StrictInt, Field(ge=0, le=1_000_000), BeforeValidator(_integral)] = 1

    @field_validator("price", mode="before")
    @classmethod
    def _price(cls, value: Any) -> Decimal | None:
        return parse_money(value)


class EventIn(BaseModel):
    """One event. Aliases are accepted on input and never echoed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    site_id: SiteId
    event_type: Annotated[StrictStr, Field(min_length=1, max_length=200)] = Field(
        validation_alias=AliasChoices("event_type", "name", "event")
    )
    timestamp: Annotated[datetime | None, WithJsonSchema(_TIMESTAMP_SCHEMA)] = Field(
        default=None, validation_alias=AliasChoices("timestamp", "occurred_at", "ts")
    )
    event_id: Identifier | IdInt | None = None
    user_id: Identifier | IdInt | None = None
    anonymous_id: Identifier | None = None
    session_id: Identifier | IdInt | None = None
    url: Text | None = None
    path: Text | None = None
    referrer: Text | None = None
    title: Text | None = None
    utm_source: ShortText | None = None
    utm_medium: ShortText | None = None
    utm_campaign: ShortText | None = None
    utm_term: ShortText | None = None
    utm_content: ShortText | None = None
    user_agent: Annotated[StrictStr, Field(max_length=1024)] | None = None
    screen_width: (
        Annotated[StrictInt, Field(ge=0, le=100_000), BeforeValidator(_integral)] | None
    ) = None
    device: ShortText | None = None
    channel: ShortText | None = None
    page_type: ShortText | None = None
    properties: dict[str, Any] | None = Field(
        default=None, validation_alias=AliasChoices("properties", "properties_json", "props")
    )
    revenue: Decimal | None = Field(default=None, validation_alias=AliasChoices("revenue", "value"))
    currency: Annotated[StrictStr, Field(pattern=r"^[A-Za-z]{3}$")] | None = None
    transaction_id: Identifier | IdInt | None = None
    items: list[ItemIn] | None = Field(default=None, max_length=1000)

    @field_validator("timestamp", mode="before")
    @classmethod
    def _timestamp(cls, value: Any) -> datetime | None:
        return parse_timestamp(value)

    @field_validator("revenue", mode="before")
    @classmethod
    def _revenue(cls, value: Any) -> Decimal | None:
        return parse_money(value)

    @field_validator("properties", mode="before")
    @classmethod
    def _properties(cls, value: Any) -> Any:
        return parse_properties(value)


def field_names() -> frozenset[str]:
    """Every name a client may use for a field (names and aliases, items included)."""
    names: set[str] = set()
    for model in (EventIn, ItemIn):
        for name, info in model.model_fields.items():
            names.add(name)
            alias = info.validation_alias
            if isinstance(alias, AliasChoices):
                names.update(str(choice) for choice in alias.choices)
    return frozenset(names)
