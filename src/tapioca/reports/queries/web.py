"""SQL builders of the web reports. Values are bind parameters; identifiers come from
fixed tables (filters.py), never from input."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tapioca.reports.filters import EVENT_DIMENSIONS, SESSION_DIMENSIONS, Filter

Query = tuple[str, list[Any]]


@dataclass
class Params:
    values: list[Any] = field(default_factory=list)

    def add(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


# The session an event belongs to: its client session id, or the derived session of its
# visitor whose span holds the event's time.
_SESSION_OF_EVENT = (
    "s.site_id = e.site_id AND ((e.session_id IS NOT NULL AND s.client_defined "
    "AND s.session_id = e.session_id) OR (e.session_id IS NULL AND NOT s.client_defined "
    "AND s.visitor_id = e.visitor_id AND e.ts >= s.started_at AND e.ts <= s.ended_at))"
)


def _session_conditions(filters: list[Filter], p: Params, alias: str) -> list[str]:
    return [
        f"{alias}.{SESSION_DIMENSIONS[f.dimension]} = {p.add(f.value)}"
        for f in filters
        if f.on_session
    ]


def event_where(
    site_id: str, start: datetime | None, end: datetime | None, filters: list[Filter], p: Params
) -> str:
    """Events of the site in [start, end), not bots, matching every filter."""
    clauses = [f"e.site_id = {p.add(site_id)}", "NOT e.is_bot"]
    if start is not None:
        clauses.append(f"e.ts >= {p.add(start)}")
    if end is not None:
        clauses.append(f"e.ts < {p.add(end)}")
    for f in filters:
        if not f.on_session:
            clauses.append(f"e.{EVENT_DIMENSIONS[f.dimension]} = {p.add(f.value)}")
    session_filters = _session_conditions(filters, p, "s")
    if session_filters:
        clauses.append(
            f"EXISTS (SELECT 1 FROM session s WHERE {_SESSION_OF_EVENT} AND "
            + " AND ".join(session_filters)
            + ")"
        )
    return " AND ".join(clauses)


def session_where(
    site_id: str, start: datetime | None, end: datetime | None, filters: list[Filter], p: Params
) -> str:
    """Sessions of the site that start in [start, end) and match every filter; an event
    filter keeps the sessions that hold such an event."""
    clauses = [f"s.site_id = {p.add(site_id)}"]
    if start is not None:
        clauses.append(f"s.started_at >= {p.add(start)}")
    if end is not None:
        clauses.append(f"s.started_at < {p.add(end)}")
    clauses += _session_conditions(filters, p, "s")
    event_filters = [
        f"e.{EVENT_DIMENSIONS[f.dimension]} = {p.add(f.value)}" for f in filters if not f.on_session
    ]
    if event_filters:  # one event of the session must match all of them
        clauses.append(
            f"EXISTS (SELECT 1 FROM event e WHERE {_SESSION_OF_EVENT} AND NOT e.is_bot AND "
            + " AND ".join(event_filters)
            + ")"
        )
    return " AND ".join(clauses)


EVENT_METRICS = {
    "pageviews": "count(*) FILTER (WHERE e.event_type = 'page_view')",
    "visitors": "count(DISTINCT e.visitor_id)",
    "events": "count(*)",
}
SESSION_METRICS = {
    "sessions": "count(*)",
    "bounces": "count(*) FILTER (WHERE s.is_bounce)",
    "duration_seconds": "sum(EXTRACT(EPOCH FROM s.ended_at - s.started_at))",
    "session_pageviews": "sum(s.pageviews)",
    "session_visitors": "count(DISTINCT s.visitor_id)",
    "session_events": "sum(s.events)",
}


def build_event_totals(where: str, p: Params, group: str | None = None) -> Query:
    keys = f"{group} AS k, " if group else ""
    select = ", ".join(f"{sql} AS {name}" for name, sql in EVENT_METRICS.items())
    tail = f" GROUP BY {group}" if group else ""
    return f"SELECT {keys}{select} FROM event e WHERE {where}{tail}", p.values


def build_session_totals(where: str, p: Params, group: str | None = None) -> Query:
    keys = f"{group} AS k, " if group else ""
    select = ", ".join(f"{sql} AS {name}" for name, sql in SESSION_METRICS.items())
    tail = f" GROUP BY {group}" if group else ""
    return f"SELECT {keys}{select} FROM session s WHERE {where}{tail}", p.values


def build_realtime(site_id: str, since: datetime) -> Query:
    return (
        "SELECT count(DISTINCT visitor_id) FROM event "
        "WHERE site_id = $1 AND ts >= $2 AND NOT is_bot",
        [site_id, since],
    )
