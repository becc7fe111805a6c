"""SQL for GET /stats (seed 001/002 shape). Values are always bind parameters."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tapioca.reports.queries.web import Params, event_where

Query = tuple[str, list[Any]]


def build_stats_totals_query(site_id: str, start: datetime | None, end: datetime | None) -> Query:
    p = Params()
    where = event_where(site_id, start, end, [], p)
    sql = (
        "SELECT count(*) FILTER (WHERE e.event_type = 'page_view') AS total_views, "
        "count(DISTINCT e.visitor_id) AS unique_users "
        f"FROM event e WHERE {where}"
    )
    return sql, p.values


def build_top_paths_query(
    site_id: str, start: datetime | None, end: datetime | None, limit: int
) -> Query:
    p = Params()
    where = event_where(site_id, start, end, [], p)
    sql = (
        "SELECT e.path, count(*) AS views FROM event e "
        f"WHERE {where} AND e.event_type = 'page_view' AND e.path IS NOT NULL "
        f"GROUP BY e.path ORDER BY views DESC, e.path ASC LIMIT {p.add(limit)}"
    )
    return sql, p.values
