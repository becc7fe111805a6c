"""Distinct visitors of a report: per value and bucket, from the daily rollups' exact
counts and sketches when they are in the report's zone, else from events (sessions for a
session dimension).

A day whose daily rows wait to be redone (an hour of it was derived since) is read from
its events instead, as the hashes of its visitors: a report never waits for the daily
job, and counts the same events as the hourly rows it sums (reports/scope.py, ``upto``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from tapioca.kit.sketch import Sketch, hashes_from_hex
from tapioca.kit.timerange import DateRange, Interval
from tapioca.model.dimensions import EVENT_DIMENSIONS, SESSION_DIMENSIONS, Dimension
from tapioca.model.figures import Source
from tapioca.reports.executor import Executor, SketchGone
from tapioca.reports.queries import Params
from tapioca.reports.queries.events import (
    bucket_key,
    build_visitors,
    dimension_key,
    event_where,
    session_where,
    source_of,
)
from tapioca.reports.queries.rollup import build_day_hashes, build_dirty_days, build_parts
from tapioca.reports.scope import Scope

# One row covering part of a range: (dimension value, its day or week, visitors, sketch
# id, is a week).
Part = tuple[Any, date, int, int, bool]
# The visitors of a value on days read from events: (value, day or None for all of them,
# distinct visitors, their hashes as hex, concatenated).
Fresh = tuple[Any, date | None, int, str]
Key = tuple[Any, Any]  # (value, bucket start)
Counts = dict[Key, int]  # (value, bucket start) → visitors


@dataclass(frozen=True, slots=True)
class Days:
    """What covers the days of a range for one dimension: stored rows and fresh hashes
    (of ``waiting`` days)."""

    parts: list[Part]
    fresh: list[Fresh]
    waiting: int = 0


def _runs(days: list[date]) -> list[tuple[date, date]]:
    """Sorted days as runs of consecutive days (first, last)."""
    runs: list[tuple[date, date]] = []
    for day in sorted(days):
        if runs and runs[-1][1] + timedelta(days=1) == day:
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def plan(span: DateRange, dirty: set[date], whole_weeks: bool) -> tuple[list[date], list[date]]:
    """The Mondays of the range's whole weeks with no day waiting (their weekly rows
    answer, with ``whole_weeks``) and the other days with no day waiting."""
    assert span.start_date is not None and span.end_date is not None
    first, last = span.start_date, span.end_date
    weeks: list[date] = []
    if whole_weeks:
        monday = first + timedelta(days=(7 - first.weekday()) % 7)
        while monday + timedelta(days=6) <= last:
            if not any(monday + timedelta(days=i) in dirty for i in range(7)):
                weeks.append(monday)
            monday += timedelta(days=7)
    covered = {w + timedelta(days=i) for w in weeks for i in range(7)}
    days = [
        day
        for i in range((last - first).days + 1)
        if (day := first + timedelta(days=i)) not in covered and day not in dirty
    ]
    return weeks, days


def _column(dim: str) -> tuple[Source, str | None]:
    if not dim:
        return Source.EVENT, None
    dimension = Dimension(dim)
    if dimension in SESSION_DIMENSIONS:
        return Source.SESSION, SESSION_DIMENSIONS[dimension]
    return Source.EVENT, EVENT_DIMENSIONS[dimension]


async def read_days(
    ex: Executor, scope: Scope, dim: str, span: DateRange, values: list[Any] | None = None,
    whole_weeks: bool = True, by_day: bool = False,
) -> Days:  # fmt: skip
    """The stored rows that cover the days of ``span`` for ``values`` (None: every value)
    whose daily rows are current — its whole weeks (with ``whole_weeks``) and its other
    days — and the visitors' hashes of the days that wait (per day with ``by_day``)."""
    start, end = span.start_utc, span.end_utc
    assert start is not None and end is not None
    site, zone = scope.site.id, span.tz.key
    dirty = {day for (day,) in await ex.rows(build_dirty_days(site, zone, start, end))}
    weeks, days = plan(span, dirty, whole_weeks)
    parts: list[Part] = []
    query = build_parts(site, dim, zone, weeks, _runs(days), values)
    if query is not None:
        rows = await ex.rows(query)
        parts = [(v, s, int(n), int(i), bool(w)) for v, s, n, i, w in rows]
    fresh: list[Fresh] = []
    waiting = [day for day in dirty if span.start_date <= day <= span.end_date]
    if waiting:
        ranges = [(_midnight(lo, span), _midnight(hi + timedelta(days=1), span))
                  for lo, hi in _runs(waiting)]  # fmt: skip
        source, column = _column(dim)
        query = build_day_hashes(source, column, site, zone, ranges, values, scope.upto, by_day)
        fresh = [(v, d, int(n), h or "") for v, d, n, h in await ex.rows(query)]
    return Days(parts, fresh, len(waiting))


def _midnight(day: date, span: DateRange) -> datetime:
    return datetime.combine(day, time(0), span.tz)


def bounds(days: Days) -> dict[Any, tuple[int, int]]:
    """Per value, bounds on its distinct visitors over the range: the largest part's
    count (no fewer) and the sum of the parts' counts (no more)."""
    out: dict[Any, tuple[int, int]] = {}
    counts = [(p[0], p[2]) for p in days.parts] + [(f[0], f[2]) for f in days.fresh]
    for value, visitors in counts:
        low, high = out.get(value, (0, 0))
        out[value] = (max(low, visitors), high + visitors)
    return out


async def day_visitors(
    ex: Executor,
    scope: Scope,
    dim: str,
    span: DateRange,
    bucket: Callable[[date], Hashable] | None = None,
    values: list[Any] | None = None,
    days: Days | None = None,
) -> Counts:
    """Distinct visitors per (value, bucket) over the days of ``span`` (bucket None: the
    whole range; ``values`` None: every value): exact for one day, else the union of the
    sketches of the range's whole weeks, of its other days and of the hashes of the days
    read from events. ``days``: those of every value, already read (bucket None)."""
    whole_weeks = bucket is None

    async def read() -> Days:
        return await read_days(ex, scope, dim, span, values, whole_weeks, bucket is not None)

    if days is None:
        days = await read()
    elif values is not None:
        wanted = set(values)
        days = Days([p for p in days.parts if p[0] in wanted],
                    [f for f in days.fresh if f[0] in wanted], days.waiting)  # fmt: skip
    for _ in range(2):
        try:
            return await _count(ex, days, bucket)
        except SketchGone:  # a derive run replaced some: read the rows again
            days = await read()
    return await _count(ex, days, bucket)


async def _count(ex: Executor, days: Days, bucket: Callable[[date], Hashable] | None) -> Counts:
    groups: dict[Key, list[tuple[int, int, bool]]] = defaultdict(list)
    hashes: dict[Key, list[tuple[int, str]]] = defaultdict(list)
    for value, start, visitors, ident, is_week in days.parts:
        groups[(value, bucket(start) if bucket else None)].append((visitors, ident, is_week))
    for value, day, visitors, text in days.fresh:
        key = (value, bucket(day) if bucket and day is not None else None)
        hashes[key].append((visitors, text))
    several = days.waiting > 1 and any(day is None for _, day, _, _ in days.fresh)
    out: Counts = {}
    merge: dict[Key, list[int]] = {}
    for key in groups.keys() | hashes.keys():
        found, read = groups.get(key, []), hashes.get(key, [])
        if len(found) + len(read) == 1 and not (read and several):
            # one day, or a week's row (may be an estimate, from its sketch); several days
            # read from events are counted as a sketch, as the union of their daily
            # sketches will be once the days are redone (the same hashes, merged losslessly)
            if read:
                out[key] = read[0][0]
            elif not found[0][2]:
                out[key] = found[0][0]
            else:
                merge[key] = [found[0][1]]
        else:
            merge[key] = [ident for _, ident, _ in found]
    out.update(await _unions(ex, merge, hashes))
    return out


async def _unions(
    ex: Executor, merge: dict[Key, list[int]], hashes: dict[Key, list[tuple[int, str]]]
) -> Counts:
    """The visitors of each key's stored sketches ``merge`` and days read from events
    ``hashes``; a union of stored sketches alone counted before is not counted again
    (their ids name their content for good)."""
    out: Counts = {}
    pending: dict[Key, list[int]] = {}
    for key, ids in merge.items():
        known = None if key in hashes else ex.union_count(ids)
        if known is None:
            pending[key] = ids
        else:
            out[key] = known
    if pending:
        sketches = await ex.sketches([i for ids in pending.values() for i in ids])
        for key, ids in pending.items():
            parts = [sketches[i] for i in ids]
            for _, text in hashes.get(key, []):
                parts.append(Sketch.of(hashes_from_hex([text])))
            out[key] = Sketch.union(parts).count()
            if key not in hashes:
                ex.keep_union_count(ids, out[key])
    return out


async def visitors_by(
    ex: Executor,
    scope: Scope,
    span: DateRange,
    dim: str,
    interval: Interval | None = None,
    values: list[Any] | None = None,
    days: Days | None = None,
) -> Counts:
    """Distinct visitors per (value, bucket key): from the daily rollups when they are in
    the report's zone (``days``: what covers the range, already read), else from events
    (sessions for a session dimension)."""
    if interval is not Interval.HOUR and scope.over(span).days_usable:
        bucket = None if interval is None else interval.floor
        return await day_visitors(ex, scope, dim, span, bucket, values, days)
    p = Params()
    start, end = span.start_utc, span.end_utc
    source = source_of(Dimension(dim)) if dim else Source.EVENT
    keys = [dimension_key(Dimension(dim))] if dim else []
    if source is Source.SESSION:  # a session's value: no buckets of it are asked for
        where = session_where(scope.site.id, start, end, [], p)
    else:
        if interval is not None:
            keys.append(bucket_key(source, interval, span.tz.key, p))
        where = event_where(scope.site.id, start, end, [], p, scope.upto)
    out: Counts = {}
    for row in await ex.dicts(build_visitors(source, where, p, keys)):
        value = row["k0"] if dim else None
        moment = interval.key_of(row[f"k{len(keys) - 1}"]) if interval is not None else None
        out[(value, moment)] = int(row["visitors"])
    return out
