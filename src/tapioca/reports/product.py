"""Product reports (metrics.md, Product metrics; api.md, Product): active users, top
events, retention cohorts and funnels.

Distinct users are exact: they are counted from each user's active days and first event
(derive/product.py) when the report is in the site's time zone and its filters allow,
else from the events, read in the report's zone. Either way the answer holds the events
the derived tables hold (reports/scope.py, ``upto``); the users' days of a derive run
commit a moment before its position does (derive/runner.py, ``beside``), so for that
moment a stored count may already hold the run's events.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta
from itertools import groupby
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from tapioca.errors import AnswerTooLarge, invalid_parameter
from tapioca.kit.timerange import Interval, TooManyBuckets
from tapioca.model.commerce import ratio
from tapioca.model.derived import LONGEST_WINDOW as LONGEST
from tapioca.model.dimensions import Dimension
from tapioca.reports import web
from tapioca.reports.executor import Executor
from tapioca.reports.funnel import Hit, Step, furthest
from tapioca.reports.queries import Params
from tapioca.reports.queries.product import (
    COHORT_COLUMNS,
    build_cohorts,
    build_funnel,
    build_gaps,
    build_lifecycle,
    build_since,
    build_starters,
    build_stickiness,
    build_stored_cohorts,
    build_stored_gaps,
    build_stored_lifecycle,
    build_user_hits,
    event_days,
    step_condition,
    stored_days,
)
from tapioca.reports.scope import Scope
from tapioca.storage.base import Rows

# Active users: each figure and the days of its window (ending on the bucket's last day).
WINDOWS = {"dau": 1, "wau": 7, "mau": LONGEST}
COHORT_UNITS = (Interval.DAY, Interval.WEEK)
UNIT_KEYS = {Interval.DAY: "d", Interval.WEEK: "w"}  # cohort_period.unit (derive/product.py)
LIFE_KEYS = {**UNIT_KEYS, Interval.MONTH: "m"}  # lifecycle_period.unit
MAX_PERIODS = 400


def _midnight(day: date, scope: Scope) -> datetime:
    return datetime.combine(day, time(0), scope.span.tz)


def _stored(scope: Scope) -> bool:
    """The users' active days as the derive job keeps them answer: they are in the
    report's zone and no filter applies."""
    return scope.days_usable and not scope.filters


def _days(scope: Scope, first: date, last: date, p: Params) -> str:
    """The users' active days from ``first`` to ``last`` (report zone), as (visitor_id,
    day) rows: stored when they answer (``_stored``), else from the events."""
    if _stored(scope):
        return stored_days(scope.site.id, first, last, p)
    start, end = _midnight(first, scope), _midnight(last + timedelta(days=1), scope)
    return event_days(scope.site.id, start, end, scope.span.tz.key, scope.filters, scope.upto, p)


def _buckets(interval: Interval, scope: Scope, name: str = "interval") -> list[datetime]:
    """The buckets of the range; too many is a 422 naming parameter ``name``."""
    try:
        return interval.buckets(scope.span)
    except TooManyBuckets as exc:
        raise invalid_parameter(name, f"{exc}; widen it or shorten the range") from exc


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
    if _stored(scope):
        query = build_stored_gaps(scope.site.id, first, span.end_date, p)
    else:
        query = build_gaps(_days(scope, first, span.end_date, p), p)
    rows = await ex.rows(query)
    counts = _windows(rows, first, span.end_date)
    first_ord = first.toordinal()
    results = [
        {"bucket": interval.label(bucket, span),
         **{name: int(counts[WINDOWS[name]][end.toordinal() - first_ord]) for name in figures}}
        for bucket, end in zip(buckets, ends, strict=True)
    ]  # fmt: skip
    return {**scope.echo(), "interval": interval.value, "results": results}


def _windows(rows: Rows, first: date, last: date) -> dict[int, npt.NDArray[np.int64]]:
    """Per window width: the users active in the window ending on each day from ``first``
    to ``last`` (index 0: ``first``), from rows of (day, gap, users): +users on the day,
    -users on the day the gap or the window ends, summed up the days."""
    size = (last - first).days + 1
    days = np.array([(day - first).days for day, _, _ in rows], dtype=np.int64)
    gaps = np.array([gap for _, gap, _ in rows], dtype=np.int64)
    users = np.array([n for _, _, n in rows], dtype=np.int64)
    out = {}
    for width in set(WINDOWS.values()):
        moves = np.zeros(size + LONGEST + 1, dtype=np.int64)
        np.add.at(moves, days, users)
        np.add.at(moves, days + np.minimum(gaps, width), -users)
        out[width] = np.cumsum(moves)[:size]
    return out


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
    cohorts = [b.date() for b in _buckets(unit, scope, "cohort")]
    after = unit.advance(datetime.combine(cohorts[-1], time(0))).date()
    last = _period(unit, cohorts[-1], periods + 1) - timedelta(days=1)
    p = Params()
    sizes: dict[date, int] = {}
    active: dict[tuple[date, date], int] = {}
    if _stored(scope):  # the counts the derive job keeps
        query = build_stored_cohorts(scope.site.id, UNIT_KEYS[unit], cohorts[0], cohorts[-1],
                                     last, p)  # fmt: skip
        for cohort, period, n in await ex.rows(query):
            active[(cohort, period)] = int(n)
            if period == cohort:
                sizes[cohort] = int(n)
    else:
        days = _days(scope.unfiltered(), cohorts[0], last, p)
        query = build_cohorts(scope.site.id, unit, span.tz.key, _midnight(cohorts[0], scope),
                              _midnight(after, scope), filters, days, p)  # fmt: skip
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


FUNNEL_BREAKDOWNS = {"channel": "channel", "device": "device"}


def _funnel_steps(steps: list[Step], counts: list[int]) -> list[dict[str, Any]]:
    return [
        {"step": step.text, "users": n,
         "conversion_from_start": ratio(n, counts[0], 4),
         "conversion_from_previous": ratio(n, counts[i - 1] if i else counts[0], 4)}
        for i, (step, n) in enumerate(zip(steps, counts, strict=True))
    ]  # fmt: skip


async def funnel(
    ex: Executor, scope: Scope, steps: list[Step], window: timedelta, window_text: str,
    breakdown: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Users at each step (reports/funnel.py) of the tries that start in the range, and
    their conversion from the first step and from the one before; with ``breakdown``
    (channel, device: of the session of the best try's start), per value too."""
    if scope.filters:
        raise invalid_parameter("filters", "a funnel takes no filters; use breakdown")
    column = _funnel_column(breakdown)
    if column is None and scope.upto is not None:
        reached = {None: await _kept_funnel(ex, scope, steps, window)}
    else:
        reached = await _reached(ex, scope, steps, window, column, scope.upto)
    total = [sum(c[k] for c in reached.values()) for k in range(len(steps))]
    out: dict[str, Any] = {**scope.echo(), "window": window_text,
                           "steps": _funnel_steps(steps, total)}  # fmt: skip
    if breakdown is not None:
        ranked = sorted(reached.items(), key=lambda kv: (-kv[1][0], kv[0] is None, kv[0] or ""))
        out["breakdown"] = breakdown
        out["results"] = [{"value": v, "steps": _funnel_steps(steps, c)} for v, c in ranked if c[0]]
    return out


async def _kept_funnel(
    ex: Executor, scope: Scope, steps: list[Step], window: timedelta
) -> list[int]:
    """Users per step, from the answer kept for the same funnel over fewer events when
    there is one: each user's furthest step depends on their own events only, so the
    users with events since (by seq) are counted again, without and with them, and the
    kept counts move by the difference. A rebuild (another ``since``) starts over."""
    span, upto = scope.span, scope.upto
    assert upto is not None
    key = ("funnel", scope.site.id, tuple(s.text for s in steps), window, span.start_utc,
           span.end_utc)  # fmt: skip
    kept = ex.kept.get(key)
    if kept is not None:
        counted, counts = kept
        since, before = cast(tuple[datetime | None, int], counted)
        if since == scope.since and before <= upto:
            moved = await _moved(ex, scope, steps, window, before)
            if moved is not None:
                counts = [n + moved[k] for k, n in enumerate(counts)]
                ex.kept.put(key, (scope.since, upto), counts)
                return list(counts)
    counts = (await _reached(ex, scope, steps, window, None, upto))[None]
    ex.kept.put(key, (scope.since, upto), counts)
    return list(counts)


# Past this many users with new events, a funnel is counted again from all of them.
MOVED_USERS = 1_000


async def _moved(
    ex: Executor, scope: Scope, steps: list[Step], window: timedelta, before: int
) -> list[int] | None:
    """How the users at each step moved from the events up to seq ``before`` to those up
    to ``scope.upto``: the users with events since tried on their events without and
    with them. None when there are too many of them, or of their events, to read."""
    upto, site = scope.upto, scope.site.id
    assert upto is not None
    moved = [0] * len(steps)
    if before == upto:
        return moved
    users = [user for (user,) in await ex.rows(build_since(site, before, upto, MOVED_USERS))]
    if len(users) > MOVED_USERS:
        return None
    if not users:
        return moved
    start, end = scope.span.start_utc, scope.span.end_utc
    assert start is not None and end is not None
    p = Params()
    conditions = [step_condition(s.path, s.text, p) for s in steps]
    query = build_user_hits(site, conditions, start, end, end + window, upto, users, p)
    try:
        rows = await ex.rows(query)
    except AnswerTooLarge:
        return None
    ex.kept.moved += 1
    for _user, group in groupby(rows, key=lambda row: row[0]):
        hits = [(Hit(ts, event_id, int(mask), bool(starts)), seq)
                for _, ts, event_id, mask, starts, seq in group]  # fmt: skip
        then, _ = furthest(len(steps), [h for h, seq in hits if seq <= before], window)
        now, _ = furthest(len(steps), [h for h, _ in hits], window)
        for k in range(now):
            moved[k] += 1
        for k in range(then):
            moved[k] -= 1
    return moved


async def _reached(
    ex: Executor, scope: Scope, steps: list[Step], window: timedelta, column: str | None,
    upto: int | None,
) -> dict[Any, list[int]]:  # fmt: skip
    """Per value of ``column`` (None: one), the users at each step, of the events up to
    seq ``upto``."""
    start, end = scope.span.start_utc, scope.span.end_utc
    assert start is not None and end is not None
    site, n = scope.site.id, len(steps)
    p = Params()
    first = step_condition(steps[0].path, steps[0].text, p)
    starters = await ex.rows(build_starters(site, first, start, end, upto, column, p))
    # step 1 from the starters, moved to the value of the best try's start for those who
    # went further
    reached: dict[Any, list[int]] = defaultdict(lambda: [0] * n)
    reached[None] = [0] * n
    for value, users in starters:
        reached[value][0] += int(users)
    p = Params()
    conditions = [step_condition(s.path, s.text, p) for s in steps]
    rows = await ex.rows(build_funnel(site, conditions, start, end, window, upto, column, p))
    for user, group in groupby(rows, key=lambda row: row[0]):
        if user is None:  # counted in SQL: (value, value of step 1, depth, users)
            for *_, value, first_value, depth, users in group:
                _move(reached, first_value, value, int(depth), int(users))
        else:
            _try_user(reached, list(group), n, window)
    return reached


def _funnel_column(breakdown: str | None) -> str | None:
    if breakdown is None:
        return None
    column = FUNNEL_BREAKDOWNS.get(breakdown)
    if column is None:
        raise invalid_parameter("breakdown", f"one of {', '.join(FUNNEL_BREAKDOWNS)}")
    return column


def _move(reached: dict[Any, list[int]], first: Any, value: Any, depth: int, users: int) -> None:
    """``users`` counted at step 1 under ``first`` (their first start's value) reach
    ``depth`` on a try begun under ``value``: counted there at each step up to it."""
    reached[first][0] -= users
    counts = reached[value]
    for k in range(depth):
        counts[k] += users


def _try_user(reached: dict[Any, list[int]], rows: Rows, n: int, window: timedelta) -> None:
    """One user's events (reports/funnel.py tries them): how far their best try goes."""
    hits: list[Hit] = []
    values: dict[int, Any] = {}
    for _, ts, event_id, mask, starts, value, *_ in rows:
        hit = Hit(ts, event_id, int(mask), bool(starts))
        hits.append(hit)
        if hit.starts and hit.mask & 1:
            values[id(hit)] = value
    depth, begun = furthest(n, hits, window)
    if begun is not None:
        earliest = next(h for h in hits if h.starts and h.mask & 1)
        _move(reached, values[id(earliest)], values[id(begun)], depth, 1)


_EPOCH, _MONDAY = date(1970, 1, 1), date(1970, 1, 5)
LIFECYCLE = ("new", "returning", "resurrecting", "dormant")


def index_of(interval: Interval, day: date) -> int:
    """The ``bucket_index`` of ``day``, in Python."""
    if interval is Interval.WEEK:
        return (day - timedelta(days=day.weekday()) - _MONDAY).days // 7
    if interval is Interval.MONTH:
        return day.year * 12 + day.month - 1
    return (day - _EPOCH).days


def _whole(interval: Interval, scope: Scope) -> list[date]:
    if interval is Interval.HOUR:
        raise invalid_parameter("interval", "users are counted per day, week or month")
    return [b.date() for b in _buckets(interval, scope)]


async def lifecycle(ex: Executor, scope: Scope, interval: Interval) -> dict[str, Any]:
    """Per bucket — whole days, weeks or months that hold the range's days — its active
    users by kind (PostHog's lifecycle): new (first event ever in it), returning (also
    active in the bucket before), resurrecting (active again after a bucket or more
    without); and dormant: active in the bucket before, not in this one (a count of
    users, not negative)."""
    buckets = _whole(interval, scope)
    before = buckets[0] - timedelta(days=1)
    last = interval.advance(datetime.combine(buckets[-1], time(0))).date() - timedelta(days=1)
    p = Params()
    found: dict[tuple[int, str], int] = {}
    if _stored(scope):  # the counts the derive job keeps
        query = build_stored_lifecycle(scope.site.id, LIFE_KEYS[interval], buckets[0],
                                       buckets[-1], p)  # fmt: skip
        for period, kind, n in await ex.rows(query):
            found[(index_of(interval, period), kind)] = int(n)
    else:
        days = _days(scope, interval.floor(before).date(), last, p)
        query = build_lifecycle(scope.site.id, interval, scope.span.tz.key, days, p)
        for idx, kind, n in await ex.rows(query):
            found[(int(idx), kind)] = int(n)
    results = [
        {
            "bucket": b.isoformat(),
            **{k: found.get((index_of(interval, b), k), 0) for k in LIFECYCLE},
        }
        for b in buckets
    ]
    return {**scope.echo(), "interval": interval.value, "results": results}


async def stickiness(ex: Executor, scope: Scope, interval: Interval) -> dict[str, Any]:
    """Users by how many days (or weeks) of the range they were active on, from one to
    every one of them."""
    if interval not in COHORT_UNITS:
        raise invalid_parameter("interval", "active days or weeks: day or week")
    span = scope.span
    assert span.start_date is not None and span.end_date is not None
    p = Params()
    rows = await ex.rows(build_stickiness(interval, _days(scope, span.start_date,
                                                          span.end_date, p), p))  # fmt: skip
    counts = {int(n): int(users) for n, users in rows}
    most = len(_whole(interval, scope))
    results = [{"active": k, "users": counts.get(k, 0)} for k in range(1, most + 1)]
    return {**scope.echo(), "interval": interval.value, "results": results}
