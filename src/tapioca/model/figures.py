"""The additive figures of events and sessions, each declared once (metrics.md, Web
metrics): the SQL that aggregates it over the rows of its table (columns unqualified), and
the column that keeps it in that table's hourly rollup. The daily rollup keeps every
figure under its own name. Derived data (derive/) computes them with this SQL; reports
(reports/) read them from events, sessions or rollups.

Distinct visitors are not additive: they are counted, not summed (``VISITORS``)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from tapioca.model.event import PAGE_VIEW


class Source(StrEnum):
    EVENT = "event"
    SESSION = "session"


@dataclass(frozen=True, slots=True)
class Figure:
    name: str  # as reports and the daily rollup name it
    source: Source
    sql: str  # an aggregate over the source's rows
    hour_column: str  # in rollup_hour (events) or rollup_session_hour (sessions)
    integral: bool = True  # a count (else a real number)

    @property
    def visitor_sql(self) -> str:
        """``sql`` over one visitor's rows of an hour or a day, the derived rollups' first
        step: a count as an INTEGER (such a count fits), which PostgreSQL then sums in a
        bigint, where it would sum bigints (what count gives) in a numeric."""
        return f"CAST({self.sql} AS INTEGER)" if self.integral else self.sql


IS_PAGE_VIEW = f"event_type = '{PAGE_VIEW}'"
SESSION_SECONDS = "EXTRACT(EPOCH FROM ended_at - started_at)"

FIGURES: tuple[Figure, ...] = (
    Figure("events", Source.EVENT, "count(*)", "events"),
    Figure("pageviews", Source.EVENT, f"count(*) FILTER (WHERE {IS_PAGE_VIEW})", "pageviews"),
    Figure("sessions", Source.SESSION, "count(*)", "sessions"),
    Figure("bounces", Source.SESSION, "count(*) FILTER (WHERE is_bounce)", "bounces"),
    Figure(
        "duration_seconds",
        Source.SESSION,
        f"sum({SESSION_SECONDS})",
        "duration_seconds",
        integral=False,
    ),
    Figure("session_pageviews", Source.SESSION, "sum(pageviews)", "pageviews"),
    Figure("session_events", Source.SESSION, "sum(events)", "events"),
)
BY_NAME = {figure.name: figure for figure in FIGURES}
EVENT_FIGURES = tuple(f for f in FIGURES if f.source is Source.EVENT)
SESSION_FIGURES = tuple(f for f in FIGURES if f.source is Source.SESSION)
HOUR_TABLES = {Source.EVENT: "rollup_hour", Source.SESSION: "rollup_session_hour"}

VISITORS = "count(DISTINCT visitor_id)"  # of events or of sessions
