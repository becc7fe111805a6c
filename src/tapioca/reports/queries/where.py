"""The WHERE clause every event report starts from: one site, a time range, no bots."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def event_filter(
    site_id: str, start: datetime | None, end: datetime | None
) -> tuple[str, list[Any]]:
    clauses = ["site_id = $1", "NOT is_bot"]
    params: list[Any] = [site_id]
    if start is not None:
        params.append(start)
        clauses.append(f"ts >= ${len(params)}")
    if end is not None:
        params.append(end)
        clauses.append(f"ts < ${len(params)}")
    return " AND ".join(clauses), params
