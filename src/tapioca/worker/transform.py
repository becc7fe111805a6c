"""Queue records → event rows. Pure: no I/O, no clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson

from tapioca.enrich.bots import is_bot
from tapioca.storage.rows import EVENT_COLUMNS, EventRow

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_REQUIRED = ("site_id", "event_id", "event_type", "visitor_id")
# Record keys that are copied unchanged into the row, in row order.
_PLAIN = {name for name in EVENT_COLUMNS} - {
    "ts",
    "received_at",
    "revenue",
    "items",
    "properties",
    "browser",
    "os",
    "source",
    "is_bot",
}


class PoisonRecord(ValueError):
    """A record that can never become a row (corrupt or foreign data in the queue)."""


def _time(micros: Any) -> datetime:
    if not isinstance(micros, int) or isinstance(micros, bool):
        raise PoisonRecord("time is not an integer of microseconds")
    return _EPOCH + timedelta(microseconds=micros)


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def to_row(record: dict[str, Any]) -> EventRow:
    """Build the stored row. Enrichment (device, channel, ...) plugs in here."""
    try:
        for key in _REQUIRED:
            if not isinstance(record[key], str):
                raise PoisonRecord(f"{key} is not text")
        revenue = record.get("revenue")
        values: dict[str, Any] = {name: record.get(name) for name in _PLAIN}
        return EventRow(
            **values,
            ts=_time(record["ts"]),
            received_at=_time(record["received_at"]),
            revenue=None if revenue is None else Decimal(revenue),
            items=_json(record.get("items")),
            properties=_json(record.get("properties")),
            browser=None,
            os=None,
            source=None,
            is_bot=is_bot(values["user_agent"]),
        )
    except (KeyError, TypeError, ValueError, ArithmeticError, AttributeError) as exc:
        if isinstance(exc, PoisonRecord):
            raise
        raise PoisonRecord(f"malformed record: {type(exc).__name__}: {exc}") from exc


def decode_payload(payload: bytes) -> list[EventRow]:
    """A queue entry holds one request's records as NDJSON."""
    rows = []
    for line in payload.split(b"\n"):
        if not line:
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise PoisonRecord(f"undecodable record: {exc}") from exc
        if not isinstance(record, dict):
            raise PoisonRecord("record is not an object")
        rows.append(to_row(record))
    return rows
