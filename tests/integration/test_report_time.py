"""Time in reports, on both stores, against the independent reference: hours across a
clock change are real hours (the repeated hour twice, labelled with its UTC offset; the
skipped hour absent), weekly and monthly buckets are clipped to the range, every report
without dates covers the 30 days up to today, and a report counts the events the derived
tables hold (metrics.md, Time and Freshness)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from support.factories import make_row
from support.reference import ALL_METRICS, Question, WebReports, from_rows
from tapioca.derive.jobs import derive_once
from tapioca.kit.timerange import Interval
from tapioca.model.dimensions import Dimension
from tapioca.reports import web
from tapioca.reports.executor import Executor
from tapioca.reports.scope import resolve_scope
from tapioca.sites.service import SiteChanges, update_site
from tapioca.storage.base import Store
from tapioca.storage.rows import EventRow

pytestmark = pytest.mark.integration

# (zone, day the clocks go back, day they go forward)
CHANGES = [
    ("America/New_York", "2025-11-02", "2025-03-09"),
    ("Europe/Berlin", "2025-10-26", "2025-03-30"),
]


def every_20_minutes(day: str, zone: str, site: str = "shop") -> list[EventRow]:
    """Events every 20 minutes of the local day (UTC instants), visitors taking turns."""
    tz = ZoneInfo(zone)
    start = datetime.combine(date.fromisoformat(day), datetime.min.time(), tz).astimezone(UTC)
    end = datetime.combine(date.fromisoformat(day) + timedelta(days=1), datetime.min.time(),
                           tz).astimezone(UTC)  # fmt: skip
    rows, moment, n = [], start, 0
    while moment < end:
        rows.append(make_row(site_id=site, event_id=f"{day}-{n}", ts=moment,
                             visitor_id=f"u{n % 5}", path=f"/p{n % 3}"))  # fmt: skip
        moment += timedelta(minutes=20)
        n += 1
    return rows


@pytest.mark.parametrize(("zone", "back", "forward"), CHANGES)
async def test_hours_across_clock_changes(
    migrated_store: Store, zone: str, back: str, forward: str
) -> None:
    store = migrated_store
    rows = every_20_minutes(back, zone) + every_20_minutes(forward, zone)
    await store.write_events(rows)
    await derive_once(store)
    ref = WebReports(from_rows(rows))
    for day, hours in ((back, 25), (forward, 23)):
        for site_zone in ("UTC", zone):  # rollups in the report's zone or not
            await update_site(store, "shop", SiteChanges(timezone=site_zone))
            await derive_once(store)
            q = Question(day=day, tz=zone)
            scope = await resolve_scope(store, "shop", day, None, None, zone, None, rows[0].ts)
            got = await web.timeseries(Executor(store), scope, Interval.HOUR, list(ALL_METRICS))
            assert got == ref.timeseries(q, "hour", ALL_METRICS), (day, site_zone)
            labels = [r["bucket"] for r in got["results"]]
            assert len(labels) == hours and len(set(labels)) == hours
            if hours == 25:  # the repeated hour, once per offset
                assert len({label[:16] for label in labels}) == 24
            else:
                assert len({label[11:13] for label in labels}) == 23


async def test_weeks_and_months_are_clipped_to_the_range(migrated_store: Store) -> None:
    store = migrated_store
    rows = [r for day in ("2025-11-03", "2025-11-05", "2025-11-12", "2025-12-01")
            for r in every_20_minutes(day, "UTC")]  # fmt: skip
    await store.write_events(rows)
    await derive_once(store)
    ref = WebReports(from_rows(rows))
    for start, end, interval, first, events in [
        ("2025-11-05", "2025-11-20", "week", "2025-11-05", 72),  # a Wednesday: the 5th
        ("2025-11-05", "2025-12-10", "month", "2025-11-05", 144),  # the 5th and the 12th
    ]:
        q = Question(start=start, end=end, tz="UTC")
        scope = await resolve_scope(store, "shop", None, start, end, "UTC", None, rows[0].ts)
        got = await web.timeseries(Executor(store), scope, Interval(interval), list(ALL_METRICS))
        assert got == ref.timeseries(q, interval, ALL_METRICS)
        assert got["results"][0]["bucket"] == first
        assert got["results"][0]["events"] == events  # not the 3rd


@pytest.mark.parametrize("start", [None, "2025-11-10"])
@pytest.mark.parametrize("end", [None, "2025-11-20"])
async def test_every_report_without_dates_covers_the_30_days_up_to_today(
    migrated_store: Store, start: str | None, end: str | None
) -> None:
    store = migrated_store
    now = datetime(2025, 11, 25, 15, tzinfo=UTC)  # the 26th in Tokyo
    rows = [r for day in ("2025-10-20", "2025-10-27", "2025-11-12", "2025-11-25")
            for r in every_20_minutes(day, "UTC")]  # fmt: skip
    await store.write_events(rows)
    await derive_once(store)
    ref = WebReports(from_rows(rows), now=now)
    q = Question(start=start, end=end, tz="Asia/Tokyo")
    scope = await resolve_scope(store, "shop", None, start, end, q.tz, None, now)
    ex = Executor(store)
    assert await web.overview(ex, scope) == ref.overview(q)
    got = await web.timeseries(ex, scope, Interval.DAY, list(ALL_METRICS))
    assert got == ref.timeseries(q, "day", ALL_METRICS)
    first, last = ref.bounds(q)
    assert len(got["results"]) == (last - first).days + 1
    assert (last - first).days + 1 == {(None, None): 30, (None, "2025-11-20"): 30,
                                       ("2025-11-10", None): 17}.get((start, end), 11)  # fmt: skip
    got = await web.breakdown(ex, scope, Dimension.PATH, ["pageviews", "visitors"], 10)
    assert got == ref.breakdown(q, "path", ["pageviews", "visitors"], 10)


async def test_a_report_counts_the_events_its_sessions_hold(migrated_store: Store) -> None:
    """Events stored after the last derive run are counted by no report until a run
    derives them: page views, visitors and sessions move together."""
    store = migrated_store
    first = every_20_minutes("2025-11-12", "UTC")
    await store.write_events(first)
    await derive_once(store)
    later = [r._replace(event_id=f"late-{i}", visitor_id=f"new{i}")
             for i, r in enumerate(every_20_minutes("2025-11-13", "UTC"))]  # fmt: skip
    await store.write_events(later)  # not derived yet
    q = Question(start="2025-11-10", end="2025-11-14", filters=(("path", "/p1"),))
    for filters in (None, "path==/p1"):
        scope = await resolve_scope(store, "shop", None, q.start, q.end, "UTC", filters,
                                    first[0].ts)  # fmt: skip
        got = await web.overview(Executor(store), scope)
        want = WebReports(from_rows(first)).overview(q if filters else Question(
            start=q.start, end=q.end))  # fmt: skip
        assert got == want
    await derive_once(store)
    scope = await resolve_scope(store, "shop", None, q.start, q.end, "UTC", None, first[0].ts)
    got = await web.overview(Executor(store), scope)
    assert got == WebReports(from_rows(first + later)).overview(Question(start=q.start, end=q.end))
