"""The metrics a web report shows (metrics.md, Web metrics and E-commerce metrics), each
declared once: how its value comes from the figures of one row (model/figures.py:
additive figures, and distinct visitors; reports/queries/commerce.py: those of
transactions). A metric shown per value of a session dimension is read from the
sessions' figures (their pageviews, visitors and events)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tapioca.model.commerce import money, ratio

Figures = Mapping[str, Any]  # a row: figure name → its sum or count (None: no rows)


def _count(name: str) -> Callable[[Figures], int]:
    return lambda row: int(row.get(name) or 0)


def _per_session(name: str, places: int) -> Callable[[Figures], float]:
    def value(row: Figures) -> float:
        sessions = int(row.get("sessions") or 0)
        return round(float(row.get(name) or 0) / sessions, places) if sessions else 0.0

    return value


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    session: bool  # computed from sessions (a session metric)
    value: Callable[[Figures], Any]
    of_sessions: Callable[[Figures], Any] | None = None  # per session dimension value
    commerce: bool = False  # computed from transactions too


METRICS: tuple[Metric, ...] = (
    Metric("pageviews", False, _count("pageviews"), _count("session_pageviews")),
    Metric("visitors", False, _count("visitors"), _count("session_visitors")),
    Metric("events", False, _count("events"), _count("session_events")),
    Metric("sessions", True, _count("sessions")),
    Metric("bounce_rate", True, _per_session("bounces", 4)),
    Metric("avg_session_seconds", True, _per_session("duration_seconds", 2)),
    Metric("views_per_session", True, _per_session("session_pageviews", 2)),
    # money in the site's reporting currency; transactions of every currency
    Metric("revenue", False, lambda row: money(row.get("revenue")), commerce=True),
    Metric("transactions", False, _count("transactions"), commerce=True),
    Metric(
        "conversion_rate",
        True,
        lambda row: ratio(row.get("txn_sessions"), row.get("sessions"), 4),
        commerce=True,
    ),
)
BY_NAME = {metric.name: metric for metric in METRICS}
ALL_METRICS = tuple(metric.name for metric in METRICS)
EVENT_METRICS = tuple(m.name for m in METRICS if not m.session and not m.commerce)
SESSION_METRICS = tuple(m.name for m in METRICS if m.session)
COMMERCE_METRICS = tuple(m.name for m in METRICS if m.commerce)


def values(row: Figures, names: list[str], by_session: bool = False) -> dict[str, Any]:
    """The metrics ``names`` of one row of figures (``by_session``: a row of a session
    dimension's value)."""
    out = {}
    for name in names:
        metric = BY_NAME[name]
        value = metric.of_sessions if by_session and metric.of_sessions else metric.value
        out[name] = value(row)
    return out
