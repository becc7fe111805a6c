"""Report queries over the rollups (derive/rollups.py) instead of raw events.

Counts (events, pageviews, sessions, bounces, durations) are sums of hourly rows, exact
for any range whose ends fall on whole UTC hours (every zone with a whole-hour offset).
Visitors of one hour or one day are stored exact; visitors over several days are the
union of the daily sketches (exact up to 4,096 visitors, within 1 % beyond). Daily rows
are in the site's time zone; a report in another zone counts its visitors from events.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from tapioca.kit.timerange import DateRange, Interval
from tapioca.model.figures import FIGURES as ALL_FIGURES
from tapioca.model.figures import HOUR_TABLES, Figure, Source
from tapioca.reports.filters import Filter
from tapioca.reports.queries import Params, Query

# The key of a grouped sum, as SQL over the rows ``r`` of the hourly table (False) or of
# the daily one (True).
Group = Callable[[Params, bool], str]


def by_value(_p: Params, _day: bool) -> str:
    """Group by the dimension's value."""
    return "r.value"


def by_bucket(interval: Interval, zone: str) -> Group:
    """Group by the bucket (in ``zone``) of an hourly row's hour, or of a daily row's day."""

    def key(p: Params, day: bool) -> str:
        moment = "CAST(r.day AS TIMESTAMP)" if day else f"r.hour AT TIME ZONE {p.add(zone)}"
        return interval.truncate(moment)

    return key


def usable(span: DateRange, filters: list[Filter]) -> bool:
    """Rollups answer unfiltered reports whose ends fall on whole UTC hours."""
    return not filters and span.on_whole_hours


def _hour_where(site_id: str, dim: str, start: datetime | None, end: datetime | None,
                p: Params) -> str:  # fmt: skip
    clauses = [f"r.site_id = {p.add(site_id)}", f"r.dim = {p.add(dim)}"]
    if start is not None:
        clauses.append(f"r.hour >= {p.add(start)}")
    if end is not None:
        clauses.append(f"r.hour < {p.add(end)}")
    return " AND ".join(clauses)


def build_sums(
    source: Source, site_id: str, dim: str, span: DateRange, group: Group | None = None,
    days: bool = False,
) -> Query:  # fmt: skip
    """Sums of the figures of ``source`` over the range, grouped by ``group`` (column k) if
    given: from the hourly rows, or, with ``days`` (the daily rows are in the range's zone,
    see whole_days), from the daily row of each day that has no hour waiting for it to be
    redone and from the hourly rows of the days that have one."""
    figures: list[Figure] = [f for f in ALL_FIGURES if f.source is source]
    table = HOUR_TABLES[source]
    p = Params()
    columns = (("k",) if group else ()) + tuple(f.name for f in figures)
    tail = " GROUP BY k" if group else ""
    if not days:
        key = f"{group(p, False)} AS k, " if group else ""
        select = ", ".join(f"sum(r.{f.hour_column}) AS {f.name}" for f in figures)
        where = _hour_where(site_id, dim, span.start_utc, span.end_utc, p)
        return Query(f"SELECT {key}{select} FROM {table} r WHERE {where}{tail}", p.values,
                     columns)  # fmt: skip
    assert span.start_date is not None and span.end_date is not None
    site, zone, value = p.add(site_id), p.add(span.tz.key), p.add(dim)
    lo, hi = p.add(span.start_utc), p.add(span.end_utc)
    first, last = p.add(span.start_date), p.add(span.end_date)
    hour_key = f"{group(p, False)} AS k, " if group else ""
    day_key = f"{group(p, True)} AS k, " if group else ""
    hourly = ", ".join(f"r.{f.hour_column} AS {f.name}" for f in figures)
    daily = ", ".join(f"r.{f.name}" for f in figures)
    outer = ", ".join(f"sum({f.name}) AS {f.name}" for f in figures)
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
    return Query(sql, p.values, columns)


def build_hour_totals(site_id: str, start: datetime | None, end: datetime | None) -> Query:
    """(hour as Unix seconds, events, pageviews, exact visitors) of every hour with
    events: the site's one row per hour, nothing to group."""
    p = Params()
    where = _hour_where(site_id, "", start, end, p)
    sql = (
        "SELECT CAST(EXTRACT(EPOCH FROM r.hour) AS BIGINT), r.events, r.pageviews, r.visitors "
        f"FROM rollup_hour r WHERE {where}"
    )
    return Query(sql, p.values, ("hour", "events", "pageviews", "visitors"))


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


def _where(site_id: str, dim: str, zone: str, column: str, first: date | None,
           last: date | None, values: list[Any] | None, p: Params) -> str:  # fmt: skip
    clauses = [f"site_id = {p.add(site_id)}", f"dim = {p.add(dim)}", f"tz = {p.add(zone)}"]
    if first is not None:
        clauses.append(f"{column} >= {p.add(first)}")
    if last is not None:
        clauses.append(f"{column} <= {p.add(last)}")
    return " AND ".join(clauses + _value_clause(values, p))


def build_parts(
    site_id: str, dim: str, span: DateRange, values: list[Any] | None, whole_weeks: bool
) -> Query:
    """The rows (value, start, visitors, sketch_id, is_week) that cover the days of
    ``span`` for ``values`` (None: every value): its whole weeks (with ``whole_weeks``)
    and its other days."""
    p = Params()
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
    return Query(f"SELECT value, start, visitors, sketch_id, is_week FROM ({sql}) AS parts",
                 p.values)  # fmt: skip


def build_sketches(ids: list[int]) -> Query:
    """The stored sketches of ``ids`` (primary-key lookups)."""
    p = Params()
    marks = ", ".join(p.add(i) for i in ids)
    return Query(f"SELECT id, sketch FROM rollup_sketch WHERE id IN ({marks})", p.values)
