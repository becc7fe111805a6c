"""Web reports on both stores, compared with the independent reference (metrics.md).

The expected answers come from support/reference.py (``WebReports``): plain Python over
the generated events of support/web_traffic.py, knowing nothing of Tapioca's report or
derive code. Here the events are written as rows (no enrichment runs), in shuffled small
batches derived now and then, and the service functions are asked directly.

The data is loaded once per store (module fixture); each test opens the store anew.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from support.factories import make_row
from support.loaded import loaded_store
from support.reference import (
    ALL_METRICS,
    EVENT_DIMS,
    SESSION_DIMS,
    Event,
    Filters,
    Question,
    WebReports,
    truncate,
)
from support.web_traffic import BLOG, DAY, FROM, SAME_EVENT, SHOP, TO, WEEK, ZONES, dataset
from tapioca.derive.jobs import derive_once
from tapioca.errors import TapiocaError
from tapioca.kit.timerange import Interval
from tapioca.model.dimensions import Dimension
from tapioca.reports import web
from tapioca.reports.executor import Executor
from tapioca.reports.scope import Scope, resolve_scope
from tapioca.storage.base import Store
from tapioca.storage.rows import EventRow

pytestmark = pytest.mark.integration


def to_row(e: Event) -> EventRow:
    """The stored row (the service-level test writes rows, so no enrichment runs)."""
    return make_row(
        site_id=e.site_id,
        event_id=e.event_id,
        event_type=e.event_type,
        ts=e.ts,
        received_at=e.ts,
        visitor_id=e.user,
        user_id=e.user,
        session_id=e.session_id,
        path=e.path,
        url=None if e.path is None else f"https://shop.example{e.path}",
        referrer=e.referrer,
        channel=e.channel,
        source=e.source,
        device=e.device,
        browser=e.browser,
        os=e.os,
        page_type=e.page_type,
        utm_source=e.utm_source,
        utm_medium=e.utm_medium,
        utm_campaign=e.utm_campaign,
        utm_term=e.utm_term,
        utm_content=e.utm_content,
        is_bot=e.is_bot,
    )


# == fixtures =========================================================================

NOW = datetime.now(UTC).replace(microsecond=0)
EVENTS = dataset(NOW)
SITE_ZONES = {SHOP: "UTC", BLOG: "Asia/Kolkata"}
REF = WebReports(EVENTS, SITE_ZONES, NOW)


async def load(store: Store, late_days: frozenset[date] = frozenset()) -> None:
    """Shuffled small batches, derived now and then (late events), then derived; then
    the events of ``late_days``, derived without their daily rollups."""
    try:
        await store.migrate()
        events = list(EVENTS)
        random.Random(3).shuffle(events)
        late = [to_row(e) for e in events if e.ts.date() in late_days]
        rows = [to_row(e) for e in events if e.ts.date() not in late_days]
        for n, start in enumerate(range(0, len(rows), 173)):
            await store.write_events(rows[start : start + 173])
            if n % 2:
                await derive_once(store)
        await derive_once(store)
        for start in range(0, len(late), 173):
            await store.write_events(late[start : start + 173])
        if late:
            await derive_once(store, days=False)
        await store.execute("UPDATE site SET timezone = $1 WHERE id = $2", [SITE_ZONES[BLOG], BLOG])
    finally:
        await store.close()


def _loaded(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    late_days: frozenset[date] = frozenset(),
) -> Iterator[Callable[[], Store]]:
    yield from loaded_store(
        request, tmp_path_factory, "web-reports", lambda store: load(store, late_days)
    )


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def opener(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[], Store]]:
    """Loads the data into a store once per module; yields how to open that store."""
    yield from _loaded(request, tmp_path_factory)


# Days whose events arrive after the rest is derived, and are derived without their
# daily rollups: those wait to be redone.
LATE_DAYS = frozenset({date(2025, 11, 12), date(2025, 11, 15)})


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def waiting_opener(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[], Store]]:
    """The same data, the daily rollups of LATE_DAYS waiting for the next daily run."""
    yield from _loaded(request, tmp_path_factory, LATE_DAYS)


@pytest.fixture
async def db(opener: Callable[[], Store]) -> AsyncIterator[Store]:
    store = opener()
    try:
        yield store
    finally:
        await store.close()


async def scope_of(db: Store, q: Question) -> Scope:
    return await resolve_scope(db, q.site, q.day, q.start, q.end, q.tz, q.filter_text, NOW)


# == the data has the edge cases it is meant to have ==================================


def test_the_traffic_has_the_edge_cases() -> None:
    sessions = [s for s in REF.sessions if s.first.site_id == SHOP]
    for zone in ("UTC", "America/New_York", "Asia/Kolkata"):
        crossing = [
            s
            for s in sessions
            if truncate(s.start, "day", ZoneInfo(zone))
            != truncate(s.events[-1].ts, "day", ZoneInfo(zone))
        ]
        assert len(crossing) >= 3, zone
    gaps = [
        (b.ts - a.ts).total_seconds()
        for s in sessions
        for a, b in pairwise(s.events)
        if s.first.session_id is None
    ]
    assert 1800 in gaps  # exactly 30 minutes stays one session
    assert any(
        g > 1800
        for s in sessions
        if s.first.session_id
        for g in [(b.ts - a.ts).total_seconds() for a, b in pairwise(s.events)]
    )
    assert sum(s.is_bounce for s in sessions) >= 5
    assert any(len(s.events) == 1 and not s.is_bounce for s in sessions)
    assert any(e.channel != s.first.channel for s in sessions for e in s.events)
    bots = [e for e in EVENTS if e.is_bot and not e.user.startswith("bot")]
    assert len(bots) >= 5  # crawler hits under human visitor ids, inside >30 min gaps
    assert len(sessions) > 150 and len(EVENTS) > 600
    one_event = [s for s in sessions if s.holds(SAME_EVENT)]
    each_filter = [s for s in sessions if all(s.holds((f,)) for f in SAME_EVENT)]
    assert 0 < len(one_event) < len(each_filter)  # the two readings differ on this data


# == overview =========================================================================

FILTERS: list[Filters] = [
    (("path", "/products/tea"),),
    (("path", "/"),),  # crawler hits are on "/"
    (("channel", "Organic Search"),),
    (("device", "mobile"),),
    (("event_type", "click"),),
    (("page_type", "product"), ("utm_source", "google")),
    (("channel", "Direct"), ("path", "/cart")),
    (("device", "desktop"), ("event_type", "add_to_cart")),
    (("browser", "Firefox"), ("os", "Linux")),
    (("utm_campaign", "winter"), ("utm_content", "banner")),
    (("path", "/nowhere"),),
    SAME_EVENT,
]

OVERVIEW = [
    *(Question(day=DAY, tz=z) for z in ZONES),
    *(Question(start=FROM, end=TO, tz=z) for z in ZONES),
    Question(),  # all time
    Question(tz="Asia/Kolkata"),
    Question(start="2025-11-13", tz="Asia/Kolkata"),  # open end
    Question(end="2025-11-11", tz="America/New_York"),  # open start
    Question(day="2025-11-20"),  # nothing
    Question(site=BLOG, day=DAY, tz=None),  # the site's zone
    Question(site=BLOG, start=FROM, end=TO, tz="UTC"),
    *(replace(WEEK, filters=f) for f in FILTERS),
    Question(day=DAY, tz="Asia/Kolkata", filters=(("channel", "Direct"),)),
]


@pytest.mark.parametrize("q", OVERVIEW, ids=str)
async def test_overview(db: Store, q: Question) -> None:
    assert await web.overview(Executor(db), await scope_of(db, q)) == REF.overview(q)


# == timeseries =======================================================================

TIMESERIES = [
    (Question(day=DAY, tz="America/New_York"), "hour", ALL_METRICS),
    (Question(day="2025-11-13", tz="Asia/Kolkata"), "hour", ("sessions", "pageviews")),
    (Question(day=DAY, tz="UTC", filters=(("channel", "Direct"),)), "hour", ALL_METRICS),
    (Question(start="2025-11-07", end="2025-11-19", tz="Asia/Kolkata"), "day", ALL_METRICS),
    (Question(start="2025-11-07", end="2025-11-19", tz="America/New_York"), "day", ("visitors",)),
    (
        Question(start="2025-11-08", end="2025-11-18", filters=(("path", "/cart"),)),
        "day",
        ALL_METRICS,
    ),
    (Question(start="2025-11-08", end="2025-11-18", filters=SAME_EVENT), "day", ALL_METRICS),
    (Question(start="2025-10-22", end="2025-12-10", tz="Asia/Kolkata"), "week", ALL_METRICS),
    (Question(start="2025-10-29", end="2025-12-04", tz="UTC"), "week", ("events", "bounce_rate")),
    (Question(start="2025-09-15", end="2026-01-10", tz="America/New_York"), "month", ALL_METRICS),
    (Question(site=BLOG, start="2025-09-01", end="2026-01-31", tz=None), "month", ALL_METRICS),
]


@pytest.mark.parametrize(
    ("q", "interval", "metrics"), TIMESERIES, ids=[f"{i}-{q}" for q, i, _ in TIMESERIES]
)
async def test_timeseries(db: Store, q: Question, interval: str, metrics: tuple[str, ...]) -> None:
    got = await web.timeseries(
        Executor(db), await scope_of(db, q), Interval(interval), list(metrics)
    )
    expected = REF.timeseries(q, interval, metrics)
    assert got == expected
    assert len(expected["results"]) > 3
    assert any(all(r[m] == 0 for m in metrics) for r in expected["results"])  # zero-filled


DEFAULT_SPANS = [(None, None), ("2025-11-01", None), (None, "2025-11-16")]


@pytest.mark.parametrize(("start", "end"), DEFAULT_SPANS)
async def test_timeseries_default_span_is_30_days_up_to_today(
    db: Store, start: str | None, end: str | None
) -> None:
    """Timeseries need both bounds: a missing end is today, a missing start 29 days
    before the end (docs/reports.md)."""
    zone = "Asia/Kolkata"
    today = NOW.astimezone(ZoneInfo(zone)).date()
    last = date.fromisoformat(end) if end else today
    first = date.fromisoformat(start) if start else last - timedelta(days=29)
    q = Question(start=start, end=end, tz=zone)
    got = await web.timeseries(Executor(db), await scope_of(db, q), Interval.DAY, list(ALL_METRICS))
    full = Question(start=first.isoformat(), end=last.isoformat(), tz=zone)
    assert got == REF.timeseries(full, "day", ALL_METRICS)


# == breakdown ========================================================================

SESSION_ORDER = (
    "sessions",
    "pageviews",
    "visitors",
    "events",
    "bounce_rate",
    "avg_session_seconds",
    "views_per_session",
)
BREAKDOWN = [
    *((WEEK, d, ("events", "pageviews", "visitors"), 1000) for d in EVENT_DIMS),
    *((WEEK, d, SESSION_ORDER, 1000) for d in SESSION_DIMS),
    *(
        (Question(day=DAY, tz="Asia/Kolkata"), d, ("visitors", "pageviews"), 1000)
        for d in EVENT_DIMS
    ),
    *(
        (Question(day=DAY, tz="America/New_York"), d, ("visitors", "sessions"), 1000)
        for d in SESSION_DIMS
    ),
    (WEEK, "country", ("visitors", "pageviews"), 10),
    (WEEK, "path", ("visitors",), 3),  # ties cut by value
    (WEEK, "utm_content", ("pageviews", "events"), 2),
    (WEEK, "channel", ("bounce_rate", "sessions"), 2),
    (WEEK, "device", ("avg_session_seconds",), 1),
    (WEEK, "landing_page", ("views_per_session", "sessions"), 4),
    (Question(), "browser", ("visitors", "events"), 10),
    (
        replace(WEEK, filters=(("channel", "Organic Search"),)),
        "path",
        ("pageviews", "visitors"),
        50,
    ),
    (replace(WEEK, filters=(("path", "/cart"),)), "channel", SESSION_ORDER, 50),
    (replace(WEEK, filters=(("device", "mobile"),)), "device", SESSION_ORDER, 50),
    (replace(WEEK, filters=(("device", "tablet"),)), "event_type", ("events", "visitors"), 50),
    (
        replace(WEEK, filters=(("channel", "Direct"), ("path", "/products/tea"))),
        "landing_page",
        SESSION_ORDER,
        50,
    ),
    (replace(WEEK, filters=SAME_EVENT), "channel", SESSION_ORDER, 50),
    (
        replace(WEEK, filters=(("event_type", "purchase"), ("utm_source", "google"))),
        "page_type",
        ("pageviews", "events"),
        50,
    ),
]


@pytest.mark.parametrize(
    ("q", "dimension", "metrics", "limit"),
    BREAKDOWN,
    ids=[f"{d}-{m[0]}-{n}-{q}" for q, d, m, n in BREAKDOWN],
)
async def test_breakdown(
    db: Store, q: Question, dimension: str, metrics: tuple[str, ...], limit: int
) -> None:
    got = await web.breakdown(
        Executor(db), await scope_of(db, q), Dimension(dimension), list(metrics), limit
    )
    expected = REF.breakdown(q, dimension, metrics, limit)
    assert got == expected
    assert dimension == "country" or expected["results"] or q.filters


async def test_breakdown_refuses_session_metrics_on_event_dimensions(db: Store) -> None:
    scope = await scope_of(db, WEEK)
    with pytest.raises(TapiocaError) as caught:
        await web.breakdown(Executor(db), scope, Dimension.PATH, ["visitors", "bounce_rate"], 10)
    assert caught.value.status == 422
    assert [d.field for d in caught.value.details] == ["metrics"]


# == realtime =========================================================================


@pytest.mark.parametrize("site", [SHOP, BLOG])
async def test_realtime(db: Store, site: str) -> None:
    scope = await scope_of(db, Question(site=site))
    got = await web.realtime(Executor(db), scope.site, NOW)
    assert got == REF.realtime(site, NOW)
    assert got["visitors"] == {SHOP: 3, BLOG: 1}[site]


# == days that wait for their daily rollups ===========================================

WAITING = [
    ("overview", WEEK, None),
    ("overview", Question(day="2025-11-12"), None),
    ("timeseries", Question(start="2025-11-07", end="2025-11-19"), "day"),
    ("timeseries", Question(start="2025-10-29", end="2025-12-04"), "week"),
    ("timeseries", Question(start="2025-09-15", end="2026-01-10"), "month"),
    *(("breakdown", WEEK, d) for d in ("path", "event_type", "channel", "landing_page")),
]


@pytest.mark.parametrize(
    ("report", "q", "arg"), WAITING, ids=[f"{r}-{a}-{q}" for r, q, a in WAITING]
)
async def test_reports_read_the_hours_and_events_of_the_days_that_wait(
    waiting_opener: Callable[[], Store], report: str, q: Question, arg: str | None
) -> None:
    """Counts over days sum the daily rows, and the hourly rows of the days whose daily
    rows wait to be redone; visitors merge the daily sketches with the visitors of those
    days read from events: exact all the same, without waiting for the daily run."""
    db = waiting_opener()
    try:
        waiting = await db.fetch("SELECT DISTINCT site_id, hour FROM rollup_dirty_day")
        assert {(site, hour.date()) for site, hour in waiting} >= {(SHOP, d) for d in LATE_DAYS}
        scope = await scope_of(db, q)
        if report == "overview":
            got, want = await web.overview(Executor(db), scope), REF.overview(q)
        elif report == "timeseries":
            assert arg is not None
            interval = Interval(arg)
            got = await web.timeseries(Executor(db), scope, interval, list(ALL_METRICS))
            want = REF.timeseries(q, arg, ALL_METRICS)
        else:
            assert arg is not None
            dimension = Dimension(arg)
            names = (
                ["visitors", "pageviews", "events"]
                if arg in EVENT_DIMS
                else ["visitors", "sessions", "bounce_rate", "avg_session_seconds"]
            )
            got = await web.breakdown(Executor(db), scope, dimension, list(names), 1000)
            want = REF.breakdown(q, arg, tuple(names), 1000)
        assert got == want
    finally:
        await db.close()
