"""Report queries over the rollups (derive/rollups.py) instead of raw events.

Counts (events, pageviews, sessions, bounces, durations) are sums of hourly rows, exact
for any range whose ends fall on whole UTC hours (every zone with a whole-hour offset).
Visitors of one hour or one day are stored exact; visitors over several days are the
union of the daily sketches (exact up to 4,096 visitors, within 1 % beyond). Daily rows
are in the site's time zone; a report in another zone counts its visitors from events.
"""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from collections.abc import Callable, Hashable
from datetime import date, datetime, timedelta
from typing import Any

from tapioca.kit.sketch import Sketch
from tapioca.kit.timerange import DateRange
from tapioca.reports.filters import Filter
from tapioca.reports.queries.web import Params
from tapioca.reports.sites import Site
from tapioca.storage.base import ReadStore

# Additive figures: name (a column of the daily rows, derive/rollups.DAY_FIGURES) → the
# column of the hourly table.
EVENT_SUMS = {"events": "events", "pageviews": "pageviews"}
SESSION_SUMS = {
    "sessions": "sessions",
    "bounces": "bounces",
    "duration_seconds": "duration_seconds",
    "session_pageviews": "pageviews",
    "session_events": "events",
}
# The key of a grouped sum, as SQL over the rows ``r`` of the hourly table (False) or of
# the daily one (True).
Group = Callable[[Params, bool], str]


def usable(span: DateRange, filters: list[Filter]) -> bool:
    """Rollups answer unfiltered reports whose ends fall on whole UTC hours."""
    if filters:
        return False
    ends = (span.start_utc, span.end_utc)
    return all(t is None or (t.minute, t.second, t.microsecond) == (0, 0, 0) for t in ends)


def days_usable(span: DateRange, site: Site) -> bool:
    """Daily visitor rows are in the site's zone, and all there unless being redone."""
    return span.tz.key == site.timezone.key and not site.days_redoing


def _hour_where(site_id: str, dim: str, start: datetime | None, end: datetime | None,
                p: Params) -> str:  # fmt: skip
    clauses = [f"r.site_id = {p.add(site_id)}", f"r.dim = {p.add(dim)}"]
    if start is not None:
        clauses.append(f"r.hour >= {p.add(start)}")
    if end is not None:
        clauses.append(f"r.hour < {p.add(end)}")
    return " AND ".join(clauses)


async def sums(
    db: ReadStore,
    table: str,
    figures: dict[str, str],
    site_id: str,
    dim: str,
    span: DateRange,
    group: Group | None = None,
    days: bool = False,
) -> list[dict[str, Any]]:
    """Sums of ``figures`` over the range, grouped by ``group`` (column k) if given: from
    the hourly rows of ``table``, or, with ``days`` (the daily rows are in the range's
    zone, see whole_days), from the daily row of each day that has no hour waiting for
    it to be redone and from the hourly rows of the days that have one."""
    p = Params()
    names = (["k"] if group else []) + list(figures)
    tail = " GROUP BY k" if group else ""
    if not days:
        key = f"{group(p, False)} AS k, " if group else ""
        select = ", ".join(f"sum(r.{column}) AS {name}" for name, column in figures.items())
        where = _hour_where(site_id, dim, span.start_utc, span.end_utc, p)
        sql = f"SELECT {key}{select} FROM {table} r WHERE {where}{tail}"
    else:
        assert span.start_date is not None and span.end_date is not None
        site, zone, value = p.add(site_id), p.add(span.tz.key), p.add(dim)
        lo, hi = p.add(span.start_utc), p.add(span.end_utc)
        first, last = p.add(span.start_date), p.add(span.end_date)
        hour_key = f"{group(p, False)} AS k, " if group else ""
        day_key = f"{group(p, True)} AS k, " if group else ""
        hourly = ", ".join(f"r.{column} AS {name}" for name, column in figures.items())
        daily = ", ".join(f"r.{name}" for name in figures)
        outer = ", ".join(f"sum({name}) AS {name}" for name in figures)
        sql = f"""
        WITH dirty AS (
            SELECT DISTINCT CAST(d.hour AT TIME ZONE {zone} AS DATE) AS day
            FROM rollup_dirty_day d WHERE d.site_id = {site} AND d.hour >= {lo} AND d.hour < {hi}
        )
        SELECT {"k, " if group else ""}{outer} FROM (
            SELECT {hour_key}{hourly} FROM dirty JOIN {table} r
              ON r.site_id = {site} AND r.dim = {value}
             AND r.hour >= CAST(dirty.day AS TIMESTAMP) AT TIME ZONE {zone}
             AND r.hour < CAST(dirty.day + 1 AS TIMESTAMP) AT TIME ZONE {zone}
            UNION ALL
            SELECT {day_key}{daily} FROM rollup_day r
            WHERE r.site_id = {site} AND r.dim = {value} AND r.tz = {zone}
              AND r.day >= {first} AND r.day <= {last} AND r.day NOT IN (SELECT day FROM dirty)
        ) AS parts{tail}"""
    rows = await db.fetch(sql, p.values)
    return [dict(zip(names, row, strict=True)) for row in rows]


def whole_days(span: DateRange, filters: list[Filter], site: Site) -> bool:
    """The daily rows can answer for the range: rollups usable, both ends given, the
    daily rows in the range's zone and not being redone."""
    return (
        usable(span, filters)
        and span.start_date is not None
        and span.end_date is not None
        and days_usable(span, site)
    )


async def hour_totals(
    db: ReadStore, site_id: str, start: datetime | None, end: datetime | None
) -> list[tuple[int, int, int, int]]:
    """(hour as Unix seconds, events, pageviews, exact visitors) of every hour with
    events: the site's one row per hour, nothing to group."""
    p = Params()
    where = _hour_where(site_id, "", start, end, p)
    sql = (
        "SELECT CAST(EXTRACT(EPOCH FROM r.hour) AS BIGINT), r.events, r.pageviews, r.visitors "
        f"FROM rollup_hour r WHERE {where}"
    )
    return [(int(h), int(e), int(v), int(u)) for h, e, v, u in await db.fetch(sql, p.values)]


# One row covering part of a range: (dimension value, its day or week, visitors, sketch
# id, is a week).
Part = tuple[Any, date, int, int, bool]


async def day_parts(
    db: ReadStore,
    site_id: str,
    dim: str,
    span: DateRange,
    values: list[Any] | None = None,
    whole_weeks: bool = True,
) -> list[Part]:
    """The rows that cover the days of ``span`` for ``values`` (None: every value): its
    whole weeks (with ``whole_weeks``) and its other days."""
    p = Params()
    parts = _parts(site_id, dim, span, values, p, whole_weeks)
    sql = f"SELECT value, start, visitors, sketch_id, is_week FROM ({parts}) AS parts"
    return [(v, s, int(n), int(i), bool(w)) for v, s, n, i, w in await db.fetch(sql, p.values)]


def part_bounds(parts: list[Part]) -> dict[Any, tuple[int, int]]:
    """Per value, bounds on its distinct visitors over the parts: the largest part's
    count (no fewer) and the sum of the parts' counts (no more)."""
    bounds: dict[Any, tuple[int, int]] = {}
    for value, _, visitors, _, _ in parts:
        low, high = bounds.get(value, (0, 0))
        bounds[value] = (max(low, visitors), high + visitors)
    return bounds


async def day_visitors(
    db: ReadStore,
    site_id: str,
    dim: str,
    span: DateRange,
    bucket: Callable[[date], Hashable] | None = None,
    values: list[Any] | None = None,
    parts: list[Part] | None = None,
) -> dict[tuple[Any, Any], int]:
    """Distinct visitors per (value, bucket) over the days of ``span`` (bucket None:
    the whole range; ``values`` None: every value): exact for one day, else the union of
    the sketches of the range's whole weeks and of its other days. ``parts``: those rows
    of every value, already read (bucket None)."""
    whole_weeks = bucket is None
    if parts is None:
        parts = await day_parts(db, site_id, dim, span, values, whole_weeks)
    elif values is not None:
        wanted = set(values)
        parts = [part for part in parts if part[0] in wanted]
    for _ in range(2):
        try:
            return await _count_parts(db, parts, bucket)
        except SketchGone:  # a derive run replaced some: read the rows again
            parts = await day_parts(db, site_id, dim, span, values, whole_weeks)
    return await _count_parts(db, parts, bucket)


async def _count_parts(
    db: ReadStore, parts: list[Part], bucket: Callable[[date], Hashable] | None
) -> dict[tuple[Any, Any], int]:
    groups: dict[tuple[Any, Any], list[tuple[int, int, bool]]] = defaultdict(list)
    for value, start, visitors, ident, is_week in parts:
        key = (value, bucket(start) if bucket else None)
        groups[key].append((visitors, ident, is_week))
    out: dict[tuple[Any, Any], int] = {}
    merge: dict[tuple[Any, Any], list[int]] = {}
    for key, found in groups.items():
        if len(found) == 1 and not found[0][2]:
            out[key] = found[0][0]  # one day: its exact count (a week's may be an estimate)
        else:
            merge[key] = [ident for _, ident, _ in found]
    if merge:
        sketches = await _sketches(db, [i for ids in merge.values() for i in ids])
        for key, ids in merge.items():
            out[key] = Sketch.union(sketches[i] for i in ids).count()
    return out


class SketchCache:
    """Stored sketches by id, read (registers unpacked, so a union is an element-wise
    maximum), the most recently used up to ``budget`` bytes. A sketch id names its
    content for good (derive/rollups.sketch_id), so a kept one never goes stale: a
    redone day or week gets a new id."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self._sketches: OrderedDict[int, Sketch] = OrderedDict()
        self._size = 0

    def get(self, ident: int) -> Sketch | None:
        sketch = self._sketches.get(ident)
        if sketch is not None:
            self._sketches.move_to_end(ident)
        return sketch

    def put(self, ident: int, sketch: Sketch) -> None:
        if ident in self._sketches or sketch.nbytes > self.budget:
            return
        self._sketches[ident] = sketch
        self._size += sketch.nbytes
        while self._size > self.budget:
            _, dropped = self._sketches.popitem(last=False)
            self._size -= dropped.nbytes


SKETCHES = SketchCache(64 << 20)


class SketchGone(Exception):
    """A sketch read a moment ago was replaced since (its day or week redone)."""


async def _sketches(db: ReadStore, ids: list[int]) -> dict[int, Sketch]:
    """Stored sketches by id: kept ones, the others by primary-key lookups."""
    found = {i: sketch for i in ids if (sketch := SKETCHES.get(i)) is not None}
    missing = [i for i in dict.fromkeys(ids) if i not in found]
    if missing:
        p = Params()
        marks = ", ".join(p.add(i) for i in missing)
        sql = f"SELECT id, sketch FROM rollup_sketch WHERE id IN ({marks})"
        for ident, blob in await db.fetch(sql, p.values):
            sketch = Sketch.from_bytes(bytes(blob))
            found[int(ident)] = sketch
            SKETCHES.put(int(ident), sketch)
        if len(found) < len(set(ids)):
            raise SketchGone
    return found


def _whole_weeks(span: DateRange) -> tuple[date | None, date | None] | None:
    """The first and last Monday of the weeks (Monday to Sunday) wholly inside the range
    (None: open), or None when it holds no whole week."""
    first = None if span.start_date is None else (
        span.start_date + timedelta(days=(7 - span.start_date.weekday()) % 7))  # fmt: skip
    last = None if span.end_date is None else (
        span.end_date - timedelta(days=(span.end_date.weekday() + 1) % 7 + 6))  # fmt: skip
    if first is not None and last is not None and first > last:
        return None
    return first, last


def _value_clause(values: list[Any] | None, p: Params) -> list[str]:
    if values is None:
        return []
    named = [v for v in values if v is not None]
    options = [f"value IN ({', '.join(p.add(v) for v in named)})"] if named else []
    if len(named) < len(values):
        options.append("value IS NULL")
    return ["(" + " OR ".join(options or ["false"]) + ")"]


def _parts(site_id: str, dim: str, span: DateRange, values: list[Any] | None, p: Params,
           whole_weeks: bool) -> str:  # fmt: skip
    """The rows (value, start, visitors, sketch_id, is_week) that cover the range: its
    whole weeks (with ``whole_weeks``) and its other days."""
    weeks = _whole_weeks(span) if whole_weeks else None
    days = _where(site_id, dim, span.tz.key, "day", span.start_date, span.end_date, values, p)
    if weeks is not None:  # only the days outside the weeks
        outside = [f"day < {p.add(weeks[0])}"] if weeks[0] is not None else []
        if weeks[1] is not None:
            outside.append(f"day > {p.add(weeks[1] + timedelta(days=6))}")
        days += " AND (" + " OR ".join(outside or ["false"]) + ")"
    sql = (
        "SELECT value, day AS start, visitors, sketch_id, false AS is_week "
        f"FROM rollup_day WHERE {days}"
    )
    if weeks is not None:
        in_weeks = _where(site_id, dim, span.tz.key, "week", weeks[0], weeks[1], values, p)
        sql += " UNION ALL SELECT value, week, visitors, sketch_id, true FROM rollup_week "
        sql += f"WHERE {in_weeks}"
    return sql


def _where(site_id: str, dim: str, zone: str, column: str, first: date | None,
           last: date | None, values: list[Any] | None, p: Params) -> str:  # fmt: skip
    clauses = [f"site_id = {p.add(site_id)}", f"dim = {p.add(dim)}", f"tz = {p.add(zone)}"]
    if first is not None:
        clauses.append(f"{column} >= {p.add(first)}")
    if last is not None:
        clauses.append(f"{column} <= {p.add(last)}")
    return " AND ".join(clauses + _value_clause(values, p))
