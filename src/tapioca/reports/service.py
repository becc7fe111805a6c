"""Web report use cases."""

from __future__ import annotations

from typing import Any

from tapioca.kit.answers import KeepsAnswers
from tapioca.kit.timerange import DateRange, build_range, parse_zone
from tapioca.reports.queries import rollup
from tapioca.reports.queries.stats import (
    build_stats_rollup_query,
    build_stats_totals_query,
    build_top_paths_query,
)
from tapioca.reports.sites import Site, resolve_site
from tapioca.storage.base import ReadStore

# total_views, unique_users, top paths as (path, views)
Stats = tuple[int, int, list[tuple[str, int]]]


async def site_stats(
    db: ReadStore, site_id: str | None, date: str | None, tz: str | None, limit: int
) -> dict[str, Any]:
    """total_views, unique_users and top_paths for one day (or all time). The embedded
    store gives an answer again until its next write (kit/answers.py)."""
    cache = db.answers if isinstance(db, KeepsAnswers) else None
    key = ("stats", site_id, date, tz, limit)
    if cache is not None and (kept := cache.get(key)) is not None:
        return kept  # type: ignore[no-any-return]
    generation = cache.generation if cache is not None else 0
    site = await resolve_site(db, site_id)
    zone = parse_zone(tz) if tz else site.timezone
    span = build_range(date_=date, start_date=None, end_date=None, tz=zone)
    found = await stats_from_rollups(db, site, span, limit)
    views, users, paths = found or await _stats_from_events(db, site.id, span, limit)
    answer = {
        "site_id": site.id,
        "date": span.start_date.isoformat() if span.start_date else None,
        "total_views": views,
        "unique_users": users,
        "top_paths": [{"path": path, "views": count} for path, count in paths],
    }
    if cache is not None:
        cache.put(key, generation, answer)
    return answer


async def stats_from_rollups(
    db: ReadStore, site: Site, span: DateRange, limit: int
) -> Stats | None:
    """One day in the site's zone, from the rollups and the events not derived yet, in
    one statement; None when they cannot answer exactly (all time, another zone, a day
    not on whole UTC hours, a day whose visitor row waits to be redone or is missing):
    the caller then reads the events."""
    day, start, end = span.start_date, span.start_utc, span.end_utc
    if day is None or start is None or end is None or span.end_date != day:
        return None
    if span.tz.key != site.timezone.key or not rollup.usable(span, []):
        return None
    sql, params = build_stats_rollup_query(site.id, site.timezone.key, day, start, end, limit)
    sums = {"stale": 0, "views": 0, "users": 0}
    paths: list[tuple[str, int]] = []
    for kind, path, n in await db.fetch(sql, params):
        if kind == "path":
            paths.append((path, int(n)))
        else:
            sums[kind] += int(n or 0)  # a sum over no rows is NULL
    if sums["stale"]:
        return None
    paths.sort(key=lambda pv: (-pv[1], pv[0]))  # code points: the byte order of the SQL
    return sums["views"], sums["users"], paths


async def _stats_from_events(db: ReadStore, site_id: str, span: DateRange, limit: int) -> Stats:
    start, end = span.start_utc, span.end_utc
    totals_sql, totals_params = build_stats_totals_query(site_id, start, end)
    paths_sql, paths_params = build_top_paths_query(site_id, start, end, limit)
    (views, users), *_ = await db.fetch(totals_sql, totals_params)
    paths = await db.fetch(paths_sql, paths_params)
    return int(views), int(users), [(path, int(count)) for path, count in paths]
