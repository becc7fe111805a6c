"""Factories for events and rows used by integration tests."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from tapioca.enrich import Enrichment, enrich
from tapioca.storage.rows import EVENT_COLUMNS, EventRow

PATHS = ["/", "/products/tea", "/products/boba", "/cart", "/checkout", "/about", "/blog/a"]
TYPES = ["page_view", "page_view", "page_view", "click", "add_to_cart", "purchase"]


def make_row(**values: Any) -> EventRow:
    base: dict[str, Any] = dict.fromkeys(EVENT_COLUMNS)
    now = datetime(2025, 11, 14, 12, 0, tzinfo=UTC)
    base.update(
        site_id="shop",
        event_id="e-1",
        event_type="page_view",
        ts=now,
        received_at=now,
        visitor_id="u-1",
        path="/",
        is_bot=False,
    )
    base.update(values)
    return EventRow(**base)


def random_rows(
    seed: int,
    count: int,
    *,
    sites: tuple[str, ...] = ("shop", "blog"),
    start: datetime = datetime(2025, 11, 13, 0, 0, tzinfo=UTC),
    days: int = 3,
    users: int = 60,
) -> list[EventRow]:
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        ts = start + timedelta(seconds=rng.randrange(days * 86400))
        rows.append(
            make_row(
                site_id=rng.choice(sites),
                event_id=f"ev-{seed}-{i}",
                event_type=rng.choice(TYPES),
                ts=ts,
                received_at=ts,
                visitor_id=f"u-{rng.randrange(users)}",
                path=rng.choice(PATHS),
                is_bot=rng.random() < 0.05,
            )
        )
    return rows


ENRICH_FIELDS = (
    "user_agent", "screen_width", "url", "path", "referrer", "utm_source", "utm_medium",
    "utm_campaign", "utm_term", "utm_content", "device", "channel", "page_type",
)  # fmt: skip


def enriched(**fields: Any) -> Enrichment:
    """enrich() with every field absent except those given."""
    return enrich(**(dict.fromkeys(ENRICH_FIELDS) | fields))
