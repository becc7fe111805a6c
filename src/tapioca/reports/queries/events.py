"""Report queries over raw events and sessions: the rows of a range that match filters,
and their figures (model/figures.py), in total or grouped."""

from __future__ import annotations

from datetime import datetime

from tapioca.kit.timerange import Interval
from tapioca.model.dimensions import EVENT_DIMENSIONS, SESSION_DIMENSIONS, Dimension
from tapioca.model.figures import FIGURES as ALL_FIGURES
from tapioca.model.figures import VISITORS, Figure, Source
from tapioca.reports.filters import Filter
from tapioca.reports.queries import Params, Query

# The session an event belongs to: its client session id, or the derived session of its
# visitor whose span holds the event's time (aliases: e the event, s the session).
SESSION_OF_EVENT = (
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
    site_id: str,
    start: datetime | None,
    end: datetime | None,
    filters: list[Filter],
    p: Params,
    upto: int | None = None,
) -> str:
    """Events of the site in [start, end), not bots, matching every filter, stored up to
    seq ``upto`` when given."""
    clauses = [f"e.site_id = {p.add(site_id)}", "NOT e.is_bot"]
    if upto is not None:
        clauses.append(f"e.seq <= {p.add(upto)}")
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
            f"EXISTS (SELECT 1 FROM session s WHERE {SESSION_OF_EVENT} AND "
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
            f"EXISTS (SELECT 1 FROM event e WHERE {SESSION_OF_EVENT} AND NOT e.is_bot AND "
            + " AND ".join(event_filters)
            + ")"
        )
    return " AND ".join(clauses)


def _figures(source: Source) -> tuple[tuple[str, str], ...]:
    """The figures of ``source`` and its distinct visitors, as (name, SQL)."""
    figures: list[Figure] = [f for f in ALL_FIGURES if f.source is source]
    out = [(f.name, f.sql) for f in figures]
    visitors = "visitors" if source is Source.EVENT else "session_visitors"
    return (*out, (visitors, VISITORS))


FIGURES = {Source.EVENT: _figures(Source.EVENT), Source.SESSION: _figures(Source.SESSION)}
_FROM = {Source.EVENT: "event e", Source.SESSION: "session s"}
_TIME = {Source.EVENT: "e.ts", Source.SESSION: "s.started_at"}


def source_of(dimension: Dimension) -> Source:
    """Sessions for a dimension of sessions, else events."""
    return Source.SESSION if dimension in SESSION_DIMENSIONS else Source.EVENT


def dimension_key(dimension: Dimension) -> str:
    """SQL: the value of ``dimension`` of a row of its source."""
    if dimension in SESSION_DIMENSIONS:
        return f"s.{SESSION_DIMENSIONS[dimension]}"
    return f"e.{EVENT_DIMENSIONS[dimension]}"


def bucket_key(source: Source, interval: Interval, zone: str, p: Params) -> str:
    """SQL: the bucket key (Interval.key_sql) of a row's time: an event's, or a
    session's start."""
    return interval.key_sql(_TIME[source], p.add(zone))


def build_totals(source: Source, where: str, p: Params, group: str | None = None) -> Query:
    """The figures of the rows of ``source`` (events or sessions) that ``where`` keeps, in
    total or per value of ``group`` (column ``k``)."""
    keys = f"{group} AS k, " if group else ""
    select = ", ".join(f"{sql} AS {name}" for name, sql in FIGURES[source])
    tail = f" GROUP BY {group}" if group else ""
    columns = (("k",) if group else ()) + tuple(name for name, _ in FIGURES[source])
    return Query(f"SELECT {keys}{select} FROM {_FROM[source]} WHERE {where}{tail}", p.values,
                 columns)  # fmt: skip


def build_visitors(source: Source, where: str, p: Params, keys: list[str]) -> Query:
    """Distinct visitors of the rows ``where`` keeps, per value of ``keys`` (columns k0,
    k1, ...; none: in total), in column ``visitors``."""
    named = ", ".join(f"{key} AS k{i}" for i, key in enumerate(keys))
    sql = f"SELECT {named}{', ' if keys else ''}{VISITORS} AS visitors FROM {_FROM[source]} "
    sql += f"WHERE {where}" + (f" GROUP BY {', '.join(keys)}" if keys else "")
    return Query(sql, p.values, (*(f"k{i}" for i in range(len(keys))), "visitors"))


def build_realtime(site_id: str, since: datetime) -> Query:
    return Query(
        f"SELECT {VISITORS} FROM event WHERE site_id = $1 AND ts >= $2 AND NOT is_bot",
        [site_id, since],
    )
