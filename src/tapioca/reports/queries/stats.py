"""SQL for GET /stats (seed 001/002 shape). Values are always bind parameters."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tapioca.reports.queries.where import event_filter

Query = tuple[str, list[Any]]


def build_stats_totals_query(site_id: str, start: datetime | None, end: datetime | None) -> Query:
    where, params = event_filter(site_id, start, end)
    sql = (
        "SELECT count(*) FILTER (WHERE event_type = 'page_view') AS total_views, "
        "count(DISTINCT visitor_id) AS unique_users "
        f"FROM event WHERE {where}"
    )
    return sql, params


def build_top_paths_query(
    site_id: str, start: datetime | None, end: datetime | None, limit: int
) -> Query:
    where, params = event_filter(site_id, start, end)
    params.append(limit)
    sql = (
        "SELECT path, count(*) AS views FROM event "
        f"WHERE {where} AND event_type = 'page_view' AND path IS NOT NULL "
        f"GROUP BY path ORDER BY views DESC, path ASC LIMIT ${len(params)}"
    )
    return sql, params
