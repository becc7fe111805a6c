"""Distinct visitors of a report: per value and bucket, from the daily rollups' exact
counts and sketches when they are in the report's zone (reports/queries/rollup.py), else
from events (sessions for a session dimension)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable
from datetime import date, datetime
from typing import Any

from tapioca.kit.sketch import Sketch
from tapioca.kit.timerange import DateRange, Interval
from tapioca.model.dimensions import Dimension
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
from tapioca.reports.queries.rollup import build_parts
from tapioca.reports.scope import Scope

# One row covering part of a range: (dimension value, its day or week, visitors, sketch
# id, is a week).
Part = tuple[Any, date, int, int, bool]
Counts = dict[tuple[Any, Any], int]  # (value, bucket start) → visitors


async def day_parts(
    ex: Executor, site_id: str, dim: str, span: DateRange, values: list[Any] | None = None,
    whole_weeks: bool = True,
) -> list[Part]:  # fmt: skip
    """The rows that cover the days of ``span`` for ``values`` (None: every value): its
    whole weeks (with ``whole_weeks``) and its other days."""
    rows = await ex.rows(build_parts(site_id, dim, span, values, whole_weeks))
    return [(v, s, int(n), int(i), bool(w)) for v, s, n, i, w in rows]


def part_bounds(parts: list[Part]) -> dict[Any, tuple[int, int]]:
    """Per value, bounds on its distinct visitors over the parts: the largest part's
    count (no fewer) and the sum of the parts' counts (no more)."""
    bounds: dict[Any, tuple[int, int]] = {}
    for value, _, visitors, _, _ in parts:
        low, high = bounds.get(value, (0, 0))
        bounds[value] = (max(low, visitors), high + visitors)
    return bounds


async def day_visitors(
    ex: Executor,
    site_id: str,
    dim: str,
    span: DateRange,
    bucket: Callable[[date], Hashable] | None = None,
    values: list[Any] | None = None,
    parts: list[Part] | None = None,
) -> Counts:
    """Distinct visitors per (value, bucket) over the days of ``span`` (bucket None:
    the whole range; ``values`` None: every value): exact for one day, else the union of
    the sketches of the range's whole weeks and of its other days. ``parts``: those rows
    of every value, already read (bucket None)."""
    whole_weeks = bucket is None
    if parts is None:
        parts = await day_parts(ex, site_id, dim, span, values, whole_weeks)
    elif values is not None:
        wanted = set(values)
        parts = [part for part in parts if part[0] in wanted]
    for _ in range(2):
        try:
            return await _count_parts(ex, parts, bucket)
        except SketchGone:  # a derive run replaced some: read the rows again
            parts = await day_parts(ex, site_id, dim, span, values, whole_weeks)
    return await _count_parts(ex, parts, bucket)


async def _count_parts(
    ex: Executor, parts: list[Part], bucket: Callable[[date], Hashable] | None
) -> Counts:
    groups: dict[tuple[Any, Any], list[tuple[int, int, bool]]] = defaultdict(list)
    for value, start, visitors, ident, is_week in parts:
        key = (value, bucket(start) if bucket else None)
        groups[key].append((visitors, ident, is_week))
    out: Counts = {}
    merge: dict[tuple[Any, Any], list[int]] = {}
    for key, found in groups.items():
        if len(found) == 1 and not found[0][2]:
            out[key] = found[0][0]  # one day: its exact count (a week's may be an estimate)
        else:
            merge[key] = [ident for _, ident, _ in found]
    if merge:
        sketches = await ex.sketches([i for ids in merge.values() for i in ids])
        for key, ids in merge.items():
            out[key] = Sketch.union(sketches[i] for i in ids).count()
    return out


def naive(value: Any) -> datetime:
    """A bucket start as the buckets are keyed: local, naive."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    return datetime.combine(value, datetime.min.time())


async def visitors_by(
    ex: Executor,
    scope: Scope,
    span: DateRange,
    dim: str,
    interval: Interval | None = None,
    values: list[Any] | None = None,
    parts: list[Part] | None = None,
) -> Counts:
    """Distinct visitors per (value, bucket start): from the daily rollups when they are
    in the report's zone (``parts``: their rows, already read), else from events
    (sessions for a session dimension)."""
    if interval is not Interval.HOUR and scope.over(span).days_usable:
        bucket = None if interval is None else interval.floor
        return await day_visitors(ex, scope.site.id, dim, span, bucket, values, parts)
    p = Params()
    start, end = span.start_utc, span.end_utc
    source = source_of(Dimension(dim)) if dim else Source.EVENT
    keys = [dimension_key(Dimension(dim))] if dim else []
    if source is Source.SESSION:  # a session's value: no buckets of it are asked for
        where = session_where(scope.site.id, start, end, [], p)
    else:
        if interval is not None:
            keys.append(bucket_key(source, interval, span.tz.key, p))
        where = event_where(scope.site.id, start, end, [], p)
    out: Counts = {}
    for row in await ex.dicts(build_visitors(source, where, p, keys)):
        value = row["k0"] if dim else None
        moment = naive(row[f"k{len(keys) - 1}"]) if interval is not None else None
        out[(value, moment)] = int(row["visitors"])
    return out
