"""Generated web traffic for the web-report tests, and the questions both suites ask.

Two sites over a week of November 2025 (weeks away from any DST change) and a few other
weeks and months: visitors with 1-4 visits, every 4th visitor's tracker sending session
ids, gaps around the 30-minute edge, visits starting shortly before the midnights of the
report zones, crawlers inside long gaps under human visitor ids and crawlers of their
own, values that change inside a session, one client session over five days, and events
in the last minutes (realtime). The events are reference events (support/reference.py):
each test stores or sends them its own way.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from support.reference import Event, Question

SHOP, BLOG = "shop", "blog"
DAY0 = datetime(2025, 11, 10, tzinfo=UTC)  # a Monday, weeks away from any DST change
PAGES = {
    "/": "home",
    "/products/tea": "product",
    "/products/boba": "product",
    "/category/drinks": "category",
    "/cart": "cart",
    "/checkout": "checkout",
    "/search": "search",
    "/about": "other",
}
CHANNELS = ("Direct", "Organic Search", "Paid Search", "Referral", "Email", "Organic Social")
DEVICES = ("desktop", "desktop", "mobile", "tablet")
AGENTS = (
    ("Chrome", "Windows"),
    ("Firefox", "Linux"),
    ("Mobile Safari", "iOS"),
    ("Safari", "Mac OS X"),
)
CAMPAIGNS = (
    (None, None, None, None),
    (None, None, None, None),
    ("google", "cpc", "winter", "tea"),
    ("newsletter", "email", "nov", None),
    ("facebook", "paid_social", "winter", None),
    ("bing", None, None, None),
)
REFERRERS = (None, None, "https://www.google.com/", "https://news.example.org/post")
CONTENTS = (None, None, "banner", "text")
TYPES = ("page_view",) * 5 + ("click", "click", "add_to_cart", "scroll", "purchase")
GAPS = (3, 45, 120, 600, 1799, 1800, 1800, 1801, 1860, 2400, 5400)  # seconds
# Local midnights in UTC: UTC, America/New_York (EST), Asia/Kolkata (+05:30).
MIDNIGHTS = (timedelta(0), timedelta(hours=5), timedelta(hours=18, minutes=30))
REALTIME = (
    ("rt-a", 40),
    ("rt-a", 100),
    ("rt-b", 299),
    ("rt-c", 301),
    ("u1", 150),
    ("rt-old", 3600),
)


def visit_start(rng: random.Random) -> datetime:
    day = DAY0 + timedelta(days=rng.randrange(7))
    if rng.random() < 0.35:  # shortly before a midnight of one of the report zones
        return day + rng.choice(MIDNIGHTS) - timedelta(seconds=rng.randrange(60, 1500))
    return day + timedelta(seconds=rng.randrange(86_400))


def traffic(seed: int, site: str, visitors: int) -> list[Event]:
    """Visitors with 1-4 visits; every 4th visitor's tracker sends session ids."""
    rng = random.Random(seed)
    events: list[Event] = []

    def add(**values: Any) -> None:
        events.append(Event(site_id=site, event_id=f"{site}-{seed}-{len(events)}", **values))

    for v in range(visitors):
        visitor, client = f"u{v}", v % 4 == 0
        browser, os_ = rng.choice(AGENTS)
        device = rng.choice(DEVICES)
        starts = [visit_start(rng) for _ in range(rng.randint(1, 4))]
        if v % 7 == 0:  # other months and weeks
            starts.append(datetime(2025, 10, 30, 12, tzinfo=UTC) + timedelta(hours=v % 11))
        if v % 9 == 0:
            starts.append(datetime(2025, 12, 3, 20, tzinfo=UTC) + timedelta(minutes=v))
        for k, ts in enumerate(starts):
            utm_source, medium, campaign, term = rng.choice(CAMPAIGNS)
            referrer, channel = rng.choice(REFERRERS), rng.choice(CHANNELS)
            session_id = f"cs-{site}-{v}-{k}" if client else None
            for i in range(rng.choice((1, 1, 2, 3, 4, 6, 9))):
                if i:
                    gap = rng.choice(GAPS)
                    if gap > 1800 and rng.random() < 0.5:  # a crawler inside the gap
                        add(
                            event_type="page_view",
                            ts=ts + timedelta(seconds=gap // 2),
                            user=visitor,
                            session_id=session_id,
                            is_bot=True,
                            path="/",
                            page_type="home",
                            channel="Direct",
                            device="desktop",
                        )
                    ts += timedelta(seconds=gap)
                path = rng.choice(list(PAGES))
                first = i == 0
                add(
                    event_type="page_view" if first and rng.random() < 0.75 else rng.choice(TYPES),
                    ts=ts,
                    user=visitor,
                    session_id=session_id,
                    path=path,
                    page_type=PAGES[path],
                    referrer=referrer if first else None,
                    channel=channel if first or rng.random() < 0.5 else rng.choice(CHANNELS),
                    source=utm_source if first else None,
                    device=device if rng.random() < 0.9 else rng.choice(DEVICES),
                    browser=browser,
                    os=os_,
                    utm_source=utm_source if first else None,
                    utm_medium=medium if first else None,
                    utm_campaign=campaign if first else None,
                    utm_term=term if first else None,
                    utm_content=rng.choice(CONTENTS),
                )
    for b in range(3):  # crawlers of their own
        for i in range(8):
            add(
                event_type="page_view",
                ts=DAY0 + timedelta(hours=7 * i + b, minutes=3 * i),
                user=f"bot{b}",
                is_bot=True,
                path=rng.choice(list(PAGES)),
                channel="Direct",
                device="desktop",
                browser="Googlebot",
            )
    return events


def long_client_session(site: str) -> list[Event]:
    """One client session over five days: the id wins over every gap."""
    times = (
        DAY0 + timedelta(hours=10),
        DAY0 + timedelta(days=2, hours=9),
        DAY0 + timedelta(days=5, hours=22),
    )
    return [
        Event(
            site_id=site,
            event_id=f"{site}-long-{i}",
            event_type=kind,
            ts=ts,
            user="long",
            session_id="cs-long",
            path="/products/tea",
            page_type="product",
            channel="Email",
            device="mobile",
            browser="Mobile Safari",
            os="iOS",
            utm_source="newsletter",
        )
        for i, (ts, kind) in enumerate(zip(times, ("page_view", "click", "purchase"), strict=True))
    ]


def realtime_events(
    site: str, now: datetime, ages: Sequence[tuple[str, int]] = REALTIME
) -> list[Event]:
    """Events ``ages`` seconds before now (by default 3 visitors in the last 5 minutes)."""
    events = [
        Event(
            site_id=site,
            event_id=f"{site}-rt-{i}",
            event_type="page_view",
            ts=now - timedelta(seconds=ago),
            user=name,
            path="/",
            page_type="home",
            channel="Direct",
            device="desktop",
            browser="Chrome",
            os="Windows",
        )
        for i, (name, ago) in enumerate(ages)
    ]
    events.append(
        Event(
            site_id=site,
            event_id=f"{site}-rt-bot",
            event_type="page_view",
            ts=now - timedelta(seconds=10),
            user="rt-bot",
            is_bot=True,
            path="/",
        )
    )
    return events


def dataset(now: datetime) -> list[Event]:
    return [
        *traffic(7, SHOP, 40),
        *traffic(8, BLOG, 12),
        *long_client_session(SHOP),
        *realtime_events(SHOP, now),
        Event(
            site_id=BLOG,
            event_id="blog-rt",
            event_type="page_view",
            ts=now - timedelta(seconds=30),
            user="rt-blog",
            path="/",
        ),
    ]


# == the questions both suites ask ====================================================

DAY, FROM, TO = "2025-11-12", "2025-11-10", "2025-11-14"
ZONES = ("UTC", "America/New_York", "Asia/Kolkata")
WEEK = Question(start="2025-11-09", end="2025-11-17")
# Two event-dimension filters: a session must hold ONE event matching both (docs/reports.md),
# not one event for each (the bug fixed by "Session metrics: all event filters must match one
# event of the session").
SAME_EVENT = (("path", "/cart"), ("event_type", "click"))
