"""Queue records → event rows. Pure: no I/O, no clock."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

from tapioca.storage.rows import EventRow

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class PoisonRecord(ValueError):
    """A record that can never become a row (corrupt or foreign data in the queue)."""


def _time(micros: Any) -> datetime:
    from datetime import timedelta

    if not isinstance(micros, int) or isinstance(micros, bool):
        raise PoisonRecord("time is not an integer of microseconds")
    return _EPOCH + timedelta(microseconds=micros)


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def to_row(record: dict[str, Any]) -> EventRow:
    """Build the stored row. Enrichment (device, channel, ...) plugs in here."""
    try:
        revenue = record.get("revenue")
        return EventRow(
            site_id=record["site_id"],
            event_id=record["event_id"],
            event_type=record["event_type"],
            ts=_time(record["ts"]),
            received_at=_time(record["received_at"]),
            visitor_id=record["visitor_id"],
            user_id=record.get("user_id"),
            anonymous_id=record.get("anonymous_id"),
            session_id=record.get("session_id"),
            url=record.get("url"),
            path=record.get("path"),
            referrer=record.get("referrer"),
            title=record.get("title"),
            utm_source=record.get("utm_source"),
            utm_medium=record.get("utm_medium"),
            utm_campaign=record.get("utm_campaign"),
            utm_term=record.get("utm_term"),
            utm_content=record.get("utm_content"),
            user_agent=record.get("user_agent"),
            screen_width=record.get("screen_width"),
            device=record.get("device"),
            browser=None,
            os=None,
            channel=record.get("channel"),
            source=None,
            page_type=record.get("page_type"),
            revenue=None if revenue is None else Decimal(revenue),
            currency=record.get("currency"),
            transaction_id=record.get("transaction_id"),
            items=_json(record.get("items")),
            properties=_json(record.get("properties")),
            is_bot=False,
        )
    except (KeyError, TypeError, ValueError, ArithmeticError, AttributeError) as exc:
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
