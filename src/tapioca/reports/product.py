"""Product reports (metrics.md, Product metrics; api.md, Product): active users, top
events and retention cohorts.

Distinct users are exact: they are counted from each user's active days and first event
(derive/product.py) when the report is in the site's time zone and its filters allow,
else from the events, read in the report's zone. Either way the answer holds the events
the derived tables hold (reports/scope.py, ``upto``).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta
from typing import Any

from tapioca.errors import invalid_parameter
from tapioca.kit.timerange import Interval, TooManyBuckets
from tapioca.model.commerce import ratio
from tapioca.model.dimensions import Dimension
from tapioca.reports import web
from tapioca.reports.executor import Executor
from tapioca.reports.queries import Params
from tapioca.reports.queries.product import (
    COHORT_COLUMNS,
    LONGEST,
    build_cohorts,
    build_gaps,
    event_days,
    stored_days,
)
from tapioca.reports.scope import Scope

# Active users: each figure and the days of its window (ending on the bucket's last day).
WINDOWS = {"dau": 1, "wau": 7, "mau": LONGEST}
COHORT_UNITS = (Interval.DAY, Interval.WEEK)
MAX_PERIODS = 400


def _midnight(day: date, scope: Scope) -> datetime:
    return datetime.combine(day, time(0), scope.span.tz)


def _days(scope: Scope, first: date, last: date, p: Params) -> str:
    """The users' active days from ``first`` to ``last`` (report zone), as (visitor_id,
    day) rows: stored when they are in the report's zone and no filter applies."""
    if scope.days_usable and not scope.filters:
        return stored_days(scope.site.id, first, last, p)
    start, end = _midnight(first, scope), _midnight(last + timedelta(days=1), scope)
    return event_days(scope.site.id, start, end, scope.span.tz.key, scope.filters, scope.upto, p)


def _buckets(interval: Interval, scope: Scope) -> list[datetime]:
    try:
        return interval.buckets(scope.span)
    except TooManyBuckets as exc:
        raise invalid_parameter("interval", f"{exc}; widen it") from exc


async def active_users(
    ex: Executor, scope: Scope, interval: Interval, figures: tuple[str, ...] = tuple(WINDOWS)
) -> dict[str, Any]:
    """Per bucket, ``figures`` (dau, wau, mau): the distinct users with an event on the
    bucket's last day (in the range), and in the 7 and 30 days ending on it."""
    if interval is Interval.HOUR:
        raise invalid_parameter("interval", "active users are counted per day, week or month")
    span = scope.span
    assert span.start_date is not None and span.end_date is not None
    buckets = _buckets(interval, scope)
    ends = [min(interval.advance(b).date() - timedelta(days=1), span.end_date) for b in buckets]
    widest = max(WINDOWS[f] for f in figures)
    first = ends[0] - timedelta(days=widest - 1)
    p = Params()
    rows = await ex.rows(build_gaps(_days(scope, first, span.end_date, p), p))
    # per window: +n on each active day, -n on the day its user leaves the window
    change: dict[int, dict[date, int]] = {w: defaultdict(int) for w in set(WINDOWS.values())}
    for day, gap, n in rows:
        for width, moves in change.items():
            moves[day] += int(n)
            moves[day + timedelta(days=min(int(gap), width))] -= int(n)
    counts: dict[int, dict[date, int]] = {}
    for width, moves in change.items():
        running, at, day = 0, {}, first
        while day <= span.end_date:
            running += moves.get(day, 0)
            at[day] = running
            day += timedelta(days=1)
        counts[width] = at
    results = [
        {"bucket": interval.label(bucket, span),
         **{name: counts[WINDOWS[name]][end] for name in figures}}
        for bucket, end in zip(buckets, ends, strict=True)
    ]  # fmt: skip
    return {**scope.echo(), "interval": interval.value, "results": results}


async def top_events(ex: Executor, scope: Scope, limit: int, users: bool = True) -> dict[str, Any]:
    """Event types by events, descending, with (``users``) their distinct users: the web
    breakdown by event type."""
    metrics = ["events", "visitors"] if users else ["events"]
    found = await web.breakdown(ex, scope, Dimension.EVENT_TYPE, metrics, limit)
    results = [
        {"event_type": row["value"], "events": row["events"],
         **({"users": row["visitors"]} if users else {})}
        for row in found["results"]
    ]  # fmt: skip
    return {**scope.echo(), "results": results}


def _cohort_filters(scope: Scope) -> dict[str, str]:
    """The filters of a retention report: on the cohort's first event."""
    out: dict[str, str] = {}
    for f in scope.filters:
        if f.dimension.value not in COHORT_COLUMNS:
            raise invalid_parameter(
                "filters", f"a cohort is filtered by its first event's {', '.join(COHORT_COLUMNS)}"
            )
        out[f.dimension.value] = f.value
    return out


async def retention(
    ex: Executor, scope: Scope, unit: Interval, periods: int, today: date
) -> dict[str, Any]:
    """Per cohort (users by the ``unit`` of their first event ever) whose interval meets
    the range: its size, and its users with an event in each of the ``periods`` intervals
    after it that have begun by ``today`` (``retained[0]`` is the size), with their
    shares of the size."""
    if unit not in COHORT_UNITS:
        raise invalid_parameter("cohort", "a cohort is a day or a week")
    if not 1 <= periods <= MAX_PERIODS:
        raise invalid_parameter("periods", f"from 1 to {MAX_PERIODS}")
    filters = _cohort_filters(scope)
    span = scope.span
    cohorts = [b.date() for b in _buckets(unit, scope)]
    after = unit.advance(datetime.combine(cohorts[-1], time(0))).date()
    last = _period(unit, cohorts[-1], periods + 1) - timedelta(days=1)
    p = Params()
    days = _days(scope.unfiltered(), cohorts[0], last, p)
    query = build_cohorts(scope.site.id, unit, span.tz.key, _midnight(cohorts[0], scope),
                          _midnight(after, scope), filters, days, p)  # fmt: skip
    sizes: dict[date, int] = {}
    active: dict[tuple[date, date], int] = {}
    for cohort, period, n in await ex.rows(query):
        if period is None:
            sizes[cohort] = int(n)
        else:
            active[(cohort, period)] = int(n)
    results = []
    for cohort in cohorts:
        size = sizes.get(cohort, 0)
        begun = [k for k in range(periods + 1) if _period(unit, cohort, k) <= today]
        retained = [active.get((cohort, _period(unit, cohort, k)), 0) for k in begun]
        results.append({
            "cohort_start": cohort.isoformat(), "size": size, "retained": retained,
            "rates": [ratio(n, size, 4) for n in retained],
        })  # fmt: skip
    return {**scope.echo(), "cohort": unit.value, "periods": periods, "results": results}


def _period(unit: Interval, cohort: date, k: int) -> date:
    """The first day of the ``k``-th interval after ``cohort``."""
    return cohort + timedelta(days=k * (7 if unit is Interval.WEEK else 1))
