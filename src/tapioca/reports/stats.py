"""GET /stats: views, visitors and top paths of a day (the classic one-day summary)."""

from __future__ import annotations

from typing import Any

from tapioca.kit.timerange import DateRange
from tapioca.reports.executor import Executor
from tapioca.reports.params import build_range, parse_zone
from tapioca.reports.queries import rollup
from tapioca.reports.queries.stats import build_stats_events_query, build_stats_rollup_query
from tapioca.sites.lookup import resolve_site
from tapioca.sites.site import Site
from tapioca.storage.base import Rows

# total_views, unique_users, top paths as (path, views)
Stats = tuple[int, int, list[tuple[str, int]]]


async def site_stats(
    ex: Executor, site_id: str | None, date: str | None, tz: str | None, limit: int,
    start_date: str | None = None, end_date: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """total_views, unique_users and top_paths for one day, a range of days, or all time
    (no dates), from one snapshot of the store. The embedded store gives an answer again
    until its next write (storage/answers.py)."""
    cache = ex.answers
    key = ("stats", site_id, date, start_date, end_date, tz, limit)
    if cache is not None and (kept := cache.get(key)) is not None:
        return kept  # type: ignore[no-any-return]
    generation = cache.generation if cache is not None else 0

    async def run(snap: Executor) -> dict[str, Any]:
        site = (await resolve_site(snap.db, site_id)).site
        zone = parse_zone(tz) if tz else site.timezone
        span = build_range(date_=date, start_date=start_date, end_date=end_date, tz=zone)
        found = await stats_from_rollups(snap, site, span, limit)
        views, users, paths = found or await _stats_from_events(snap, site.id, span, limit)
        return {
            "site_id": site.id,
            "date": span.start_date.isoformat()
            if span.start_date == span.end_date and span.start_date
            else None,
            "start_date": span.start_date.isoformat() if span.start_date else None,
            "end_date": span.end_date.isoformat() if span.end_date else None,
            "total_views": views,
            "unique_users": users,
            "top_paths": [{"path": path, "views": count} for path, count in paths],
        }

    answer = await ex.answer(run)
    if cache is not None:
        cache.put(key, generation, answer)
    return answer


async def stats_from_rollups(ex: Executor, site: Site, span: DateRange, limit: int) -> Stats | None:
    """One day in the site's zone, from the rollups and the events not derived yet, in
    one statement; None when they cannot answer exactly (all time, another zone, a day
    not on whole UTC hours, a day whose visitor row waits to be redone or is missing):
    the caller then reads the events."""
    day, start, end = span.start_date, span.start_utc, span.end_utc
    if day is None or start is None or end is None or span.end_date != day:
        return None
    if span.tz.key != site.timezone.key or not rollup.usable(span, []):
        return None
    query = build_stats_rollup_query(site.id, site.timezone.key, day, start, end, limit)
    sums, paths = _parts(await ex.rows(query))
    return None if sums["stale"] else (sums["views"], sums["users"], paths)


async def _stats_from_events(ex: Executor, site_id: str, span: DateRange, limit: int) -> Stats:
    query = build_stats_events_query(site_id, span.start_utc, span.end_utc, limit)
    sums, paths = _parts(await ex.rows(query))
    return sums["views"], sums["users"], paths


def _parts(rows: Rows) -> tuple[dict[str, int], list[tuple[str, int]]]:
    """The sums of a /stats query's (kind, path, n) rows per kind, and its top paths, most
    views first, ties by path."""
    sums = {"stale": 0, "views": 0, "users": 0}
    paths: list[tuple[str, int]] = []
    for kind, path, n in rows:
        if kind == "path":
            paths.append((path, int(n)))
        else:
            sums[kind] += int(n or 0)  # a sum over no rows is NULL
    paths.sort(key=lambda pv: (-pv[1], pv[0]))  # code points: the byte order of the SQL
    return sums, paths
