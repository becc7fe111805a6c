"""Factories for events and rows used by the unit and integration tests."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from support.reference import Event
from tapioca.enrich import NO_RULES, Enrichment, SiteRules, enrich
from tapioca.model.event import COLUMNS as EVENT_COLUMNS
from tapioca.storage.rows import EventRow

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


def event_row(e: Event) -> EventRow:
    """A reference event as its stored row, written directly (no enrichment runs): the
    user is both the visitor and the user id, items their stored JSON text."""
    return make_row(
        site_id=e.site_id, event_id=e.event_id, event_type=e.event_type, ts=e.ts,
        received_at=e.ts, visitor_id=e.user, user_id=e.user, session_id=e.session_id,
        path=e.path, url=None if e.path is None else f"https://shop.example{e.path}",
        referrer=e.referrer, channel=e.channel, source=e.source, device=e.device,
        browser=e.browser, os=e.os, page_type=e.page_type, utm_source=e.utm_source,
        utm_medium=e.utm_medium, utm_campaign=e.utm_campaign, utm_term=e.utm_term,
        utm_content=e.utm_content, is_bot=e.is_bot, revenue=e.revenue, currency=e.currency,
        transaction_id=e.transaction_id, items=e.items,
    )  # fmt: skip


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


BURSTS_START = datetime(2025, 11, 14, 8, 0, tzinfo=UTC)


def burst_rows(seed: int, count: int) -> list[EventRow]:
    """25 visitors with bursts of activity from ``BURSTS_START`` on, gaps around the
    30-minute session edge on purpose; every 5th visitor's tracker sends session ids;
    odd visitors on "shop", even ones on "blog"; a few bot events."""
    rng = random.Random(seed)
    rows = []
    for v in range(25):
        ts = BURSTS_START + timedelta(minutes=rng.randrange(600))
        for i in range(count // 25):
            gap = rng.choice([1, 5, 29, 30, 31, 45, 200, 2]) * 60 + rng.choice([-1, 0, 1])
            ts += timedelta(seconds=gap)
            client = f"c{v}-{i // 7}" if v % 5 == 0 else None
            rows.append(
                make_row(
                    site_id="shop" if v % 2 else "blog",
                    event_id=f"e{v}-{i}",
                    visitor_id=f"u{v}",
                    ts=ts,
                    event_type=rng.choice(["page_view", "page_view", "click"]),
                    path=rng.choice(["/", "/a", "/b"]),
                    channel=rng.choice(["Direct", "Organic Search"]),
                    session_id=client,
                    is_bot=rng.random() < 0.03,
                )
            )
    return rows


def enriched(
    *,
    user_agent: str | None = None,
    screen_width: int | None = None,
    url: str | None = None,
    path: str | None = None,
    referrer: str | None = None,
    utm_source: str | None = None,
    utm_medium: str | None = None,
    utm_campaign: str | None = None,
    utm_term: str | None = None,
    utm_content: str | None = None,
    device: str | None = None,
    channel: str | None = None,
    page_type: str | None = None,
    site: SiteRules = NO_RULES,
) -> Enrichment:
    """enrich() with every field absent except those given."""
    return enrich(
        user_agent=user_agent,
        screen_width=screen_width,
        url=url,
        path=path,
        referrer=referrer,
        utm_source=utm_source,
        utm_medium=utm_medium,
        utm_campaign=utm_campaign,
        utm_term=utm_term,
        utm_content=utm_content,
        device=device,
        channel=channel,
        page_type=page_type,
        site=site,
    )
