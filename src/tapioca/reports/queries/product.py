"""Queries of the product reports (reports/product.py): users' active days and first
events, from the derive job's state (derive/product.py) or from the events."""

from __future__ import annotations

from datetime import date, datetime

from tapioca.kit.timerange import Interval
from tapioca.reports.filters import Filter
from tapioca.reports.queries import Params, Query
from tapioca.reports.queries.events import event_where

# The columns of a user's first event a cohort is filtered by (user_first).
COHORT_COLUMNS = ("channel", "device", "utm_source", "utm_medium", "utm_campaign")
# The longest window of active users (mau): a gap between two active days of a user
# longer than this counts as this (reports/product.py).
LONGEST = 30


def stored_days(site_id: str, first: date, last: date, p: Params) -> str:
    """(visitor_id, day) of every user's active day in [first, last], the site's days."""
    return (f"SELECT visitor_id, day FROM user_day WHERE site_id = {p.add(site_id)} "
            f"AND day >= {p.add(first)} AND day <= {p.add(last)}")  # fmt: skip


def event_days(
    site_id: str, start: datetime, end: datetime, zone: str, filters: list[Filter],
    upto: int | None, p: Params,
) -> str:  # fmt: skip
    """(visitor_id, day) of every user's active day in [start, end), days in ``zone``,
    from the events that match ``filters``."""
    where = event_where(site_id, start, end, filters, p, upto)
    return (f"SELECT DISTINCT e.visitor_id, CAST(e.ts AT TIME ZONE {p.add(zone)} AS DATE) AS day "
            f"FROM event e WHERE {where}")  # fmt: skip


def build_gaps(days: str, p: Params) -> Query:
    """Per active day and gap (in days) to the same user's next active day, at most
    LONGEST (also when there is none): how many users. A user is active in the window of
    W days ending on day d when one of their active days x has x <= d < x + min(gap, W)."""
    sql = f"""
    WITH a AS ({days}),
    g AS (SELECT day, lead(day) OVER (PARTITION BY visitor_id ORDER BY day) - day AS gap FROM a)
    SELECT day, least(coalesce(gap, {LONGEST}), {LONGEST}) AS gap, count(*)
    FROM g GROUP BY day, least(coalesce(gap, {LONGEST}), {LONGEST})"""
    return Query(sql, p.values)


def build_cohorts(
    site_id: str, unit: Interval, zone: str, start: datetime, end: datetime,
    filters: dict[str, str], days: str, p: Params,
) -> Query:  # fmt: skip
    """Per cohort (the ``unit`` that holds a user's first event ever, in ``zone``) whose
    first event is in [start, end) and matches ``filters`` (COHORT_COLUMNS): its users
    (period NULL), and per later period with activity (``days``: the users' active days)
    its distinct users."""
    local = f"f.ts AT TIME ZONE {p.add(zone)}"
    clauses = [f"f.site_id = {p.add(site_id)}", f"f.ts >= {p.add(start)}", f"f.ts < {p.add(end)}"]
    clauses += [f"f.{column} = {p.add(value)}" for column, value in filters.items()]
    period = f"CAST({unit.truncate('a.day')} AS DATE)"
    sql = f"""
    WITH c AS (
        SELECT f.visitor_id, CAST({unit.truncate(local)} AS DATE) AS cohort FROM user_first f
        WHERE {" AND ".join(clauses)}
    ), a AS ({days})
    SELECT cohort, NULL AS period, count(*) FROM c GROUP BY cohort
    UNION ALL
    SELECT c.cohort, {period}, count(DISTINCT c.visitor_id)
    FROM c JOIN a ON a.visitor_id = c.visitor_id AND a.day >= c.cohort
    GROUP BY c.cohort, {period}"""
    return Query(sql, p.values)
