"""SQL for GET /stats (total views, unique users, top paths). Values are always bind parameters."""

from __future__ import annotations

from datetime import date, datetime

from tapioca.model.derived import DERIVED_SEQ
from tapioca.model.figures import BY_NAME, IS_PAGE_VIEW
from tapioca.reports.queries import Params, Query
from tapioca.reports.queries.events import event_where

_PAGEVIEWS = BY_NAME["pageviews"].sql


def build_stats_events_query(
    site_id: str, start: datetime | None, end: datetime | None, limit: int
) -> Query:
    """/stats of any range (None: open), from the events: one scan grouped two ways at
    once (grouping sets, hashed): per visitor, whose rows count the visitors and add up
    the page views, and per path, the top paths. Rows (kind, path, n) as those of
    ``build_stats_rollup_query``: ``users``, ``views`` and the top ``path`` rows, whose
    order the caller gives."""
    p = Params()
    where = event_where(site_id, start, end, [], p)
    sql = f"""
    WITH g AS (
        SELECT e.visitor_id, e.path, grouping(e.visitor_id) AS by_path, {_PAGEVIEWS} AS views
        FROM event e WHERE {where} GROUP BY GROUPING SETS ((e.visitor_id), (e.path))
    )
    SELECT 'users' AS kind, NULL AS path, count(*) AS n FROM g WHERE by_path = 0
    UNION ALL SELECT 'views', NULL, sum(views) FROM g WHERE by_path = 0
    UNION ALL SELECT 'path', path, views FROM (
        SELECT path, views FROM g WHERE by_path = 1 AND path IS NOT NULL AND views > 0
        ORDER BY views DESC, path LIMIT {p.add(limit)}
    ) AS top"""
    return Query(sql, p.values)


def build_stats_rollup_query(
    site_id: str, zone: str, day: date, start: datetime, end: datetime, limit: int
) -> Query:
    """/stats of one day in the site's zone, [start, end) on whole UTC hours: the rollups
    hold the events up to the seq the derive job saved (derive/rollups.py), the ``tail``
    is the events after it. One statement, so one snapshot: a derive run that commits
    meanwhile is seen wholly or not at all.

    Rows (kind, path, n): the top paths (``path``, unordered), ``views`` and ``users`` to
    add up, and ``stale`` ones, any n > 0 of which voids the rest: the day's rows cover
    other bounds, or one of its hours waits for them to be redone, or they are missing
    while the hours are there (a zone changed without redoing the days). Otherwise the
    daily rows hold exactly what the day's hourly rows add up to, so views and paths are
    read from them: one row per path instead of 24. One row per part, not one row of
    scalar subqueries, which DuckDB would plan as one large join.

    A visitor of the tail is new to the day when it has no earlier-derived event that
    day: an index lookup on (site_id, visitor_id, ts) each, which OFFSET 0 keeps
    PostgreSQL from turning into an anti-join over all the day's events."""
    p = Params()
    site, lo, hi, tz = p.add(site_id), p.add(start), p.add(end), p.add(zone)
    local = f"CAST({p.add(day)} AS DATE)"
    hours = f"r.site_id = {site} AND r.hour >= {lo} AND r.hour < {hi}"
    events = f"e.site_id = {site} AND NOT e.is_bot AND e.ts >= {lo} AND e.ts < {hi}"
    derived = DERIVED_SEQ
    day_row = (
        f"rollup_day d WHERE d.site_id = {site} AND d.dim = '' AND d.tz = {tz} AND d.day = {local}"
    )
    same_bounds = (
        f"CAST({local} AS TIMESTAMP) AT TIME ZONE {tz} = {lo} "
        f"AND CAST({local} + 1 AS TIMESTAMP) AT TIME ZONE {tz} = {hi}"
    )
    new_visitor = (
        f"NOT EXISTS (SELECT 1 FROM event e WHERE e.visitor_id = t.visitor_id AND {events} "
        f"AND e.seq <= {derived} OFFSET 0)"
    )
    totals = f"FROM rollup_hour r WHERE {hours} AND r.dim = ''"
    parts = [
        ("stale", f"CASE WHEN {same_bounds} THEN 0 ELSE 1 END", ""),
        ("stale", "count(*)", f"FROM rollup_redo WHERE site_id = {site}"),
        ("stale", "count(*)", f"FROM rollup_dirty_day r WHERE {hours}"),
        ("stale", "count(*)", f"{totals} AND NOT EXISTS (SELECT 1 FROM {day_row})"),
        ("views", "sum(d.pageviews)", f"FROM {day_row}"),
        ("views", "count(*)", f"FROM tail WHERE {IS_PAGE_VIEW}"),
        ("users", "sum(d.visitors)", f"FROM {day_row}"),
        ("users", "count(DISTINCT t.visitor_id)", f"FROM tail t WHERE {new_visitor}"),
    ]
    sql = f"""
    WITH tail AS (
        SELECT e.visitor_id, e.event_type, e.path FROM {derived} AS w (last_seq)
        CROSS JOIN LATERAL (SELECT * FROM event e WHERE {events} AND e.seq > w.last_seq) AS e
    ), paths AS (
        SELECT d.value AS path, d.pageviews AS views FROM rollup_day d
        WHERE d.site_id = {site} AND d.dim = 'path' AND d.tz = {tz} AND d.day = {local}
        UNION ALL
        SELECT path, 1 FROM tail WHERE {IS_PAGE_VIEW}
    )
    SELECT 'path' AS kind, path, views AS n FROM (
        SELECT path, sum(views) AS views FROM paths WHERE path IS NOT NULL
        GROUP BY path HAVING sum(views) > 0 ORDER BY views DESC, path LIMIT {p.add(limit)}
    ) AS top"""
    sql += "".join(
        f"\n    UNION ALL SELECT '{kind}', NULL, {n} {from_}" for kind, n, from_ in parts
    )
    return Query(sql, p.values)
