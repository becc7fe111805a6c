"""The physical event row shared by both stores' writers."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import NamedTuple


class EventRow(NamedTuple):
    """One stored event. Times are aware datetimes or, as the worker makes them,
    integers: microseconds since 1970-01-01 UTC (both stores' writers take either)."""

    site_id: str
    event_id: str
    event_type: str
    ts: datetime | int
    received_at: datetime | int
    visitor_id: str
    user_id: str | None
    anonymous_id: str | None
    session_id: str | None
    url: str | None
    path: str | None
    referrer: str | None
    title: str | None
    utm_source: str | None
    utm_medium: str | None
    utm_campaign: str | None
    utm_term: str | None
    utm_content: str | None
    user_agent: str | None
    screen_width: int | None
    device: str | None
    browser: str | None
    os: str | None
    channel: str | None
    source: str | None
    page_type: str | None
    revenue: Decimal | None
    currency: str | None
    transaction_id: str | None
    items: str | None  # JSON text
    properties: str | None  # JSON text
    is_bot: bool


EVENT_COLUMNS: tuple[str, ...] = EventRow._fields


def dedupe(rows: list[EventRow]) -> list[EventRow]:
    """Keep the first row per (site_id, event_id) within one batch."""
    seen: set[tuple[str, str]] = set()
    unique = []
    for row in rows:
        key = (row.site_id, row.event_id)
        if key not in seen:
            seen.add(key)
            unique.append(row)
    return unique
