"""Queue records → event rows. Pure: no I/O, no clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson

from tapioca.enrich import SiteRules, enrich
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


NO_RULES = SiteRules()
RulesFor = Callable[[Any], SiteRules]


def no_rules(_site_id: Any) -> SiteRules:
    return NO_RULES


class PoisonRecord(ValueError):
    """A record that can never become a row (corrupt or foreign data in the queue)."""


def _time(micros: Any) -> datetime:
    if not isinstance(micros, int) or isinstance(micros, bool):
        raise PoisonRecord("time is not an integer of microseconds")
    return _EPOCH + timedelta(microseconds=micros)


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _enriched(values: dict[str, Any], rules: SiteRules) -> dict[str, Any]:
    found = enrich(
        user_agent=values["user_agent"],
        screen_width=values["screen_width"],
        url=values["url"],
        path=values["path"],
        referrer=values["referrer"],
        utm_source=values["utm_source"],
        utm_medium=values["utm_medium"],
        utm_campaign=values["utm_campaign"],
        utm_term=values["utm_term"],
        utm_content=values["utm_content"],
        device=values["device"],
        channel=values["channel"],
        page_type=values["page_type"],
        site=rules,
    )
    return {
        **values,
        "device": found.device,
        "channel": found.channel,
        "page_type": found.page_type,
        "utm_source": found.utm_source,
        "utm_medium": found.utm_medium,
        "utm_campaign": found.utm_campaign,
        "utm_term": found.utm_term,
        "utm_content": found.utm_content,
        "browser": found.browser,
        "os": found.os,
        "source": found.source,
        "is_bot": found.is_bot,
    }


def to_row(record: dict[str, Any], rules: SiteRules = NO_RULES) -> EventRow:
    """Build the stored row, enriched (bot flag, device, browser, os, source, channel, ...)."""
    try:
        for key in _REQUIRED:
            if not isinstance(record[key], str):
                raise PoisonRecord(f"{key} is not text")
        revenue = record.get("revenue")
        values: dict[str, Any] = {name: record.get(name) for name in _PLAIN}
        return EventRow(
            **_enriched(values, rules),
            ts=_time(record["ts"]),
            received_at=_time(record["received_at"]),
            revenue=None if revenue is None else Decimal(revenue),
            items=_json(record.get("items")),
            properties=_json(record.get("properties")),
        )
    except (KeyError, TypeError, ValueError, ArithmeticError, AttributeError) as exc:
        if isinstance(exc, PoisonRecord):
            raise
        raise PoisonRecord(f"malformed record: {type(exc).__name__}: {exc}") from exc


def decode_payload(payload: bytes, rules_for: RulesFor = no_rules) -> list[EventRow]:
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
        rows.append(to_row(record, rules_for(record.get("site_id"))))
    return rows
