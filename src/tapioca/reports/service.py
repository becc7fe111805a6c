"""Web report use cases."""

from __future__ import annotations

from typing import Any

from tapioca.kit.timerange import build_range, parse_zone
from tapioca.reports.queries.stats import build_stats_totals_query, build_top_paths_query
from tapioca.reports.sites import resolve_site
from tapioca.storage.base import ReadStore


async def site_stats(
    db: ReadStore, site_id: str | None, date: str | None, tz: str | None, limit: int
) -> dict[str, Any]:
    """total_views, unique_users and top_paths for one day (or all time)."""
    site = await resolve_site(db, site_id)
    zone = parse_zone(tz) if tz else site.timezone
    span = build_range(date_=date, start_date=None, end_date=None, tz=zone)
    start, end = span.start_utc, span.end_utc
    totals_sql, totals_params = build_stats_totals_query(site.id, start, end)
    paths_sql, paths_params = build_top_paths_query(site.id, start, end, limit)
    (views, users), *_ = await db.fetch(totals_sql, totals_params)
    paths = await db.fetch(paths_sql, paths_params)
    return {
        "site_id": site.id,
        "date": span.start_date.isoformat() if span.start_date else None,
        "total_views": int(views),
        "unique_users": int(users),
        "top_paths": [{"path": path, "views": int(count)} for path, count in paths],
    }
