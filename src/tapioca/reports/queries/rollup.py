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

from tapioca.kit.sketch import HASH_SQL
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
    """Group by the bucket key (in ``zone``, Interval.key_sql) of an hourly row's hour, or
    of a daily row's day (not for hours)."""

    def key(p: Params, day: bool) -> str:
        if day:
            return interval.truncate("CAST(r.day AS TIMESTAMP)")
        return interval.key_sql("r.hour", p.add(zone))

    return key


def usable(span: DateRange, filters: list[Filter]) -> bool:
    """Rollups answer unfiltered reports whose ends fall on whole UTC hours."""
    return not filters and span.on_whole_hours


def hour_where(site_id: str, dim: str, start: datetime | None, end: datetime | None,
                p: Params) -> str:  # fmt: skip
    clauses = [f"r.site_id = {p.add(site_id)}", f"r.dim = {p.add(dim)}"]
    if start is not None:
        clauses.append(f"r.hour >= {p.add(start)}")
    if end is not None:
        clauses.append(f"r.hour < {p.add(end)}")
    return " AND ".join(clauses)


def build_sums(
    source: Source | tuple[Source, ...], site_id: str, dim: str, span: DateRange,
    group: Group | None = None, days: bool = False,
) -> Query:  # fmt: skip
    """Sums of the figures of ``source`` (or of several sources, in one statement) over
    the range, grouped by ``group`` (column k) if given: from the hourly rows, or, with
    ``days`` (the daily rows are in the range's zone, see whole_days), from the daily row
    of each day that has no hour waiting for it to be redone and from the hourly rows of
    the days that have one. The daily row holds the figures of every source."""
    sources = source if isinstance(source, tuple) else (source,)
    figures: list[Figure] = [f for f in ALL_FIGURES if f.source in sources]
    p = Params()
    columns = (("k",) if group else ()) + tuple(f.name for f in figures)
    tail = " GROUP BY k" if group else ""
    if not days:
        key = f"{group(p, False)} AS k, " if group else ""
        where = hour_where(site_id, dim, span.start_utc, span.end_utc, p)
        if len(sources) == 1:
            select = ", ".join(f"sum(r.{f.hour_column}) AS {f.name}" for f in figures)
            table = HOUR_TABLES[sources[0]]
            return Query(f"SELECT {key}{select} FROM {table} r WHERE {where}{tail}", p.values,
                         columns)  # fmt: skip
        hourly = " UNION ALL ".join(
            f"SELECT {key}{_hourly(figures, one)} FROM {HOUR_TABLES[one]} r WHERE {where}"
            for one in sources
        )
        outer = ", ".join(f"sum({f.name}) AS {f.name}" for f in figures)
        sql = f"SELECT {'k, ' if group else ''}{outer} FROM ({hourly}) AS parts{tail}"
        return Query(sql, p.values, columns)
    assert span.start_date is not None and span.end_date is not None
    site, zone, value = p.add(site_id), p.add(span.tz.key), p.add(dim)
    lo, hi = p.add(span.start_utc), p.add(span.end_utc)
    first, last = p.add(span.start_date), p.add(span.end_date)
    hour_key = f"{group(p, False)} AS k, " if group else ""
    day_key = f"{group(p, True)} AS k, " if group else ""
    daily = ", ".join(f"r.{f.name}" for f in figures)
    outer = ", ".join(f"sum({f.name}) AS {f.name}" for f in figures)
    hourly = "\n        UNION ALL\n".join(
        f"""        SELECT {hour_key}{_hourly(figures, one)} FROM {HOUR_TABLES[one]} r
        WHERE r.site_id = {site} AND r.dim = {value} AND r.hour >= {lo} AND r.hour < {hi}
          AND (CAST(r.hour AT TIME ZONE {zone} AS DATE) IN (SELECT day FROM dirty)) IS TRUE"""
        for one in sources
    )
    # The hours of the waiting days: one index range over the report's hours, each hour
    # kept by its local day (a join with a range per waiting day read the whole site's
    # hours once per day when PostgreSQL had no statistics yet, after a burst: 1 s, not 30 ms),
    # looked up in the waiting days hashed (IS TRUE keeps PostgreSQL from making the IN a
    # join, which it planned, on no statistics, as a loop over the days for each hour:
    # 2.4M comparisons and 540 ms for the 53k hours of 90 days)
    sql = f"""
    WITH dirty AS (
        SELECT DISTINCT CAST(d.hour AT TIME ZONE {zone} AS DATE) AS day
        FROM rollup_dirty_day d WHERE d.site_id = {site} AND d.hour >= {lo} AND d.hour < {hi}
    )
    SELECT {"k, " if group else ""}{outer} FROM (
{hourly}
        UNION ALL
        SELECT {day_key}{daily} FROM rollup_day r
        WHERE r.site_id = {site} AND r.dim = {value} AND r.tz = {zone}
          AND r.day >= {first} AND r.day <= {last} AND r.day NOT IN (SELECT day FROM dirty)
    ) AS parts{tail}"""
    return Query(sql, p.values, columns)


def _hourly(figures: list[Figure], source: Source) -> str:
    """The figures as columns of an hourly row of ``source``: NULL for another source's."""
    return ", ".join(
        f"r.{f.hour_column} AS {f.name}" if f.source is source else f"NULL AS {f.name}"
        for f in figures
    )


def build_hour_totals(site_id: str, start: datetime | None, end: datetime | None) -> Query:
    """(hour as Unix seconds, events, pageviews, exact visitors) of every hour with
    events: the site's one row per hour, nothing to group."""
    p = Params()
    where = hour_where(site_id, "", start, end, p)
    sql = (
        "SELECT CAST(EXTRACT(EPOCH FROM r.hour) AS BIGINT), r.events, r.pageviews, r.visitors "
        f"FROM rollup_hour r WHERE {where}"
    )
    return Query(sql, p.values, ("hour", "events", "pageviews", "visitors"))


def _value_clause(values: list[Any] | None, p: Params, column: str = "value") -> list[str]:
    if values is None:
        return []
    named = [v for v in values if v is not None]
    options = [f"{column} IN ({', '.join(p.add(v) for v in named)})"] if named else []
    if len(named) < len(values):
        options.append(f"{column} IS NULL")
    return ["(" + " OR ".join(options or ["false"]) + ")"]


def _ranges(column: str, runs: list[tuple[Any, Any]], p: Params, closed: bool) -> str:
    """SQL: ``column`` inside one of ``runs`` (inclusive ends when ``closed``)."""
    upper = "<=" if closed else "<"
    return "(" + " OR ".join(
        f"({column} >= {p.add(lo)} AND {column} {upper} {p.add(hi)})" for lo, hi in runs
    ) + ")"  # fmt: skip


def build_dirty_days(site_id: str, zone: str, start: datetime, end: datetime) -> Query:
    """The local days (in ``zone``) of [start, end) that hold an hour waiting for its
    daily rows to be redone (an hour of a half-hour zone touches two days)."""
    p = Params()
    site, tz = p.add(site_id), p.add(zone)
    lo, hi = p.add(start - timedelta(hours=1)), p.add(end)
    where = f"site_id = {site} AND hour >= {lo} AND hour < {hi}"
    sql = (
        f"SELECT CAST(hour AT TIME ZONE {tz} AS DATE) FROM rollup_dirty_day WHERE {where} "
        f"UNION SELECT CAST((hour + INTERVAL '59 minutes') AT TIME ZONE {tz} AS DATE) "
        f"FROM rollup_dirty_day WHERE {where}"
    )
    return Query(sql, p.values, ("day",))


def build_parts(
    site_id: str, dim: str, zone: str, weeks: list[date], runs: list[tuple[date, date]],
    values: list[Any] | None,
) -> Query | None:  # fmt: skip
    """The rows (value, start, visitors, sketch_id, is_week) of the weeks that start on
    ``weeks`` and of the days in ``runs`` (inclusive), for ``values`` (None: every value);
    None when there are none to read."""
    p = Params()
    key = [f"site_id = {p.add(site_id)}", f"dim = {p.add(dim)}", f"tz = {p.add(zone)}"]
    branches = []
    if runs:
        where = " AND ".join([*key, _ranges("day", runs, p, True), *_value_clause(values, p)])
        branches.append(
            "SELECT value, day AS start, visitors, sketch_id, false AS is_week "
            f"FROM rollup_day WHERE {where}"
        )
    if weeks:
        mondays = ", ".join(p.add(w) for w in weeks)
        where = " AND ".join([*key, f"week IN ({mondays})", *_value_clause(values, p)])
        branches.append(
            "SELECT value, week AS start, visitors, sketch_id, true AS is_week "
            f"FROM rollup_week WHERE {where}"
        )
    if not branches:
        return None
    union = " UNION ALL ".join(branches)
    return Query(f"SELECT value, start, visitors, sketch_id, is_week FROM ({union}) AS parts",
                 p.values)  # fmt: skip


def build_day_hashes(
    source: Source, column: str | None, site_id: str, zone: str,
    ranges: list[tuple[datetime, datetime]], values: list[Any] | None, upto: int | None,
    by_day: bool,
) -> Query:  # fmt: skip
    """Per value of ``column`` (None: the total) and, with ``by_day``, per local day: the
    distinct visitors of the rows of ``source`` in ``ranges`` (UTC, half-open) and their
    hashes (HASH_SQL, concatenated): the days whose daily rows wait to be redone.
    Events are counted up to seq ``upto``; sessions hold those already."""
    p = Params()
    table, alias, ts = (
        ("event", "e", "ts") if source is Source.EVENT else ("session", "s", "started_at")
    )
    value = f"{alias}.{column}" if column else "CAST(NULL AS VARCHAR)"
    day = (
        f"CAST({alias}.{ts} AT TIME ZONE {p.add(zone)} AS DATE)" if by_day else "CAST(NULL AS DATE)"
    )
    clauses = [f"{alias}.site_id = {p.add(site_id)}", _ranges(f"{alias}.{ts}", ranges, p, False)]
    if source is Source.EVENT:
        clauses.append(f"NOT {alias}.is_bot")
        if upto is not None:
            clauses.append(f"{alias}.seq <= {p.add(upto)}")
    clauses += _value_clause(values, p, f"{alias}.{column}") if column else []
    digest = HASH_SQL.format(column="visitor_id")
    sql = (
        f"SELECT value, day, count(*), string_agg({digest}, '') FROM ("
        f"SELECT {value} AS value, {day} AS day, {alias}.visitor_id FROM {table} {alias} "
        f"WHERE {' AND '.join(clauses)} GROUP BY 1, 2, 3) AS visitors GROUP BY value, day"
    )
    return Query(sql, p.values, ("value", "day", "visitors", "hashes"))


def build_sketches(ids: list[int]) -> Query:
    """The stored sketches of ``ids`` (primary-key lookups)."""
    p = Params()
    marks = ", ".join(p.add(i) for i in ids)
    return Query(f"SELECT id, sketch FROM rollup_sketch WHERE id IN ({marks})", p.values)


def build_data_edges(site_id: str) -> Query:
    """The first and last UTC hour that hold derived events of the site."""
    return Query(
        "SELECT min(hour), max(hour) FROM rollup_hour WHERE site_id = $1 AND dim = ''",
        [site_id],
        ("first", "last"),
    )
