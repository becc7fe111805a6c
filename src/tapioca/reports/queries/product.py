"""Queries of the product reports (reports/product.py): users' active days and first
events, from the derive job's state (derive/product.py) or from the events."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime, timedelta

from tapioca.kit.timerange import Interval
from tapioca.model.derived import LONGEST_WINDOW as LONGEST
from tapioca.reports.filters import Filter
from tapioca.reports.queries import Params, Query
from tapioca.reports.queries.events import SESSION_OF_EVENT, event_where

# The columns of a user's first event a cohort is filtered by (user_first).
COHORT_COLUMNS = ("channel", "device", "utm_source", "utm_medium", "utm_campaign")


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


def build_stored_gaps(site_id: str, first: date, last: date, p: Params) -> Query:
    """``build_gaps`` of the site's days, as the derive job keeps them (active_gap)."""
    sql = (f"SELECT day, gap, users FROM active_gap WHERE site_id = {p.add(site_id)} "
           f"AND day >= {p.add(first)} AND day <= {p.add(last)} AND users <> 0")  # fmt: skip
    return Query(sql, p.values)


def build_stored_cohorts(
    site_id: str, unit: str, first: date, last: date, until: date, p: Params
) -> Query:
    """Per cohort of ``unit`` ('d', 'w') from ``first`` to ``last`` and period up to
    ``until``: its users active in it, as the derive job keeps them (cohort_period; the
    period that is the cohort itself holds all of them)."""
    sql = (f"SELECT cohort, period, users FROM cohort_period WHERE site_id = {p.add(site_id)} "
           f"AND unit = {p.add(unit)} AND cohort >= {p.add(first)} AND cohort <= {p.add(last)} "
           f"AND period <= {p.add(until)} AND users <> 0")  # fmt: skip
    return Query(sql, p.values)


def build_stored_lifecycle(site_id: str, unit: str, first: date, last: date, p: Params) -> Query:
    """Per period of ``unit`` ('d', 'w', 'm') from ``first`` to ``last`` and kind: its
    users, as the derive job keeps them (lifecycle_period)."""
    sql = (f"SELECT period, kind, users FROM lifecycle_period WHERE site_id = {p.add(site_id)} "
           f"AND unit = {p.add(unit)} AND period >= {p.add(first)} AND period <= {p.add(last)} "
           "AND users <> 0")  # fmt: skip
    return Query(sql, p.values)


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


def step_condition(path: str | None, event_type: str, p: Params) -> str:
    """Events of a funnel step (alias e): a page view of ``path``, else of ``event_type``."""
    if path is not None:
        return f"(e.event_type = 'page_view' AND e.path = {p.add(path)})"
    return f"e.event_type = {p.add(event_type)}"


def _session_value(column: str) -> str:
    """The ``column`` (channel, device) of the session that holds event e."""
    return f"(SELECT s.{column} FROM session s WHERE {SESSION_OF_EVENT} LIMIT 1)"


def build_user_hits(
    site_id: str, conditions: list[str], start: datetime, end: datetime, last: datetime,
    upto: int, users: Sequence[str], p: Params,
) -> Query:  # fmt: skip
    """The events of ``users`` up to seq ``upto`` in [start, last] that match a step, in
    time order per user (reports/funnel.py tries them): the steps each matches (bit k:
    step k), whether it may start a try (a step-1 event in [start, end)), its seq."""
    where = event_where(site_id, start, None, [], p, upto)
    mask = " + ".join(f"CASE WHEN {c} THEN {1 << k} ELSE 0 END" for k, c in enumerate(conditions))
    # one parameter per user: DuckDB filters its scan by such a list, not by an array's
    listed = ", ".join(p.add(user) for user in users)
    sql = f"""
    SELECT e.visitor_id, e.ts, e.event_id, {mask} AS mask,
           (e.ts < {p.add(end)} AND {conditions[0]}) AS starts, e.seq
    FROM event e
    WHERE {where} AND e.ts <= {p.add(last)} AND e.visitor_id IN ({listed})
      AND ({" OR ".join(conditions)})
    ORDER BY e.visitor_id, e.ts, e.event_id"""
    return Query(sql, p.values)


def build_since(site_id: str, lo: int, hi: int, limit: int) -> Query:
    """The users with an event of seq in (lo, hi]: up to ``limit`` + 1 of them."""
    p = Params()
    sql = (f"SELECT DISTINCT visitor_id FROM event WHERE site_id = {p.add(site_id)} "
           f"AND seq > {p.add(lo)} AND seq <= {p.add(hi)} LIMIT {p.add(limit + 1)}")  # fmt: skip
    return Query(sql, p.values)


def build_starters(
    site_id: str, first: str, start: datetime, end: datetime, upto: int | None,
    breakdown: str | None, p: Params,
) -> Query:  # fmt: skip
    """The users with a step-1 event (``first``: its condition) in [start, end): per value
    of ``breakdown`` (a session column) of each one's first such event, else in all."""
    where = event_where(site_id, start, end, [], p, upto)
    if breakdown is None:
        sql = f"SELECT NULL, count(DISTINCT e.visitor_id) FROM event e WHERE {where} AND {first}"
        return Query(sql, p.values)
    sql = f"""
    SELECT value, count(*) FROM (
        SELECT {_session_value(breakdown)} AS value,
               row_number() OVER (PARTITION BY e.visitor_id ORDER BY e.ts, e.event_id) AS n
        FROM event e WHERE {where} AND {first}
    ) AS f WHERE n = 1 GROUP BY value"""
    return Query(sql, p.values)


def _value_of(column: str, alias: str) -> str:
    """``_session_value`` of the row ``alias`` (site_id, session_id, visitor_id, ts)."""
    return re.sub(r"\be\.", f"{alias}.", _session_value(column))


def build_funnel(
    site_id: str, conditions: list[str], start: datetime, end: datetime, window: timedelta,
    upto: int | None, breakdown: str | None, p: Params,
) -> Query:  # fmt: skip
    """How far the users with a step-1 event in [start, end) and a step-2 event in [start,
    end + window] go (reports/funnel.py), in two kinds of rows.

    A user with no moment of several matching events, unless they all match one and the
    same step, is counted here: along their events
    in time order, the latest start a step-k event can follow is the latest one its
    step-(k-1) events before it can (a later start leaves the most of its window), so
    one pass per step finds each user's furthest step (``depth``). With ``breakdown``, the
    user's first start gives the value step 1 was counted under (``first_value``), and the
    earliest start of a deepest try (``value``: the earliest start within the window before
    the earliest deepest step) the value they count under. These rows have ``users``.

    The events of the other users (events at one moment may go in any order, and an event
    that matches two steps is one of them only) come as rows for reports/funnel.py to try:
    the user, time, id, the steps each matches (bit k: step k), whether it may start a
    try, and its session's value when it may."""
    first, second, n = conditions[0], conditions[1], len(conditions)
    starts = event_where(site_id, start, end, [], p, upto)
    last = p.add(end + window)
    follows = event_where(site_id, start, None, [], p, upto) + f" AND e.ts <= {last}"
    in_range = f"(e.ts >= {p.add(start)} AND e.ts < {p.add(end)} AND {first})"
    mask = " + ".join(f"CASE WHEN {c} THEN {1 << k} ELSE 0 END" for k, c in enumerate(conditions))
    within = p.add(window)
    steps = [
        f"""c{k + 1} AS (
        SELECT visitor_id, ts, c FROM (
            SELECT visitor_id, ts, candidate, max(c) OVER (
                PARTITION BY visitor_id ORDER BY ts, candidate DESC
                ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS c
            FROM (SELECT visitor_id, ts, c, 0 AS candidate FROM c{k}
                  UNION ALL
                  SELECT visitor_id, ts, NULL, 1 FROM one WHERE mask & {1 << k} <> 0) AS x
        ) AS y WHERE candidate = 1 AND ts <= c + {within})"""
        for k in range(1, n)
    ]
    ends = " UNION ALL ".join(f"SELECT visitor_id, ts, {k + 1} AS k FROM c{k + 1}"
                              for k in range(1, n))  # fmt: skip
    firsts = ""
    if breakdown is None:
        counted = "SELECT NULL AS value, NULL AS first_value, d FROM deep"
    else:  # of starts at one moment, the first by id (as reports/funnel.py tries them)
        firsts = """,
    firsts AS (
        SELECT site_id, visitor_id, ts, session_id,
               row_number() OVER (PARTITION BY visitor_id, ts ORDER BY event_id) AS r
        FROM one WHERE starts
    )"""
        counted = f"""
        SELECT {_value_of(breakdown, "b")} AS value, {_value_of(breakdown, "f")} AS first_value, d
        FROM (
            SELECT r.visitor_id, r.d, min(CASE WHEN c.ts >= r.m THEN c.ts END) AS best,
                   min(c.ts) AS earliest
            FROM (
                SELECT n.visitor_id, dd.d, min(n.ts) - {within} AS m
                FROM ends n JOIN deep dd ON dd.visitor_id = n.visitor_id AND n.k = dd.d
                GROUP BY n.visitor_id, dd.d
            ) AS r JOIN c1 c ON c.visitor_id = r.visitor_id
            GROUP BY r.visitor_id, r.d
        ) AS x
        JOIN firsts b ON b.visitor_id = x.visitor_id AND b.ts = x.best AND b.r = 1
        JOIN firsts f ON f.visitor_id = x.visitor_id AND f.ts = x.earliest AND f.r = 1"""
    value = f"CASE WHEN e.starts THEN {_session_value(breakdown)} END" if breakdown else "NULL"
    sql = f"""
    WITH movers AS (
        SELECT e.visitor_id FROM event e WHERE {starts} AND {first}
        INTERSECT
        SELECT e.visitor_id FROM event e WHERE {follows} AND {second}
    ),
    h AS (
        SELECT e.site_id, e.visitor_id, e.ts, e.event_id, e.session_id, {mask} AS mask,
               {in_range} AS starts
        FROM event e JOIN movers m ON m.visitor_id = e.visitor_id
        WHERE {follows} AND ({" OR ".join(conditions)})
    ),
    tied AS (
        SELECT DISTINCT visitor_id FROM h GROUP BY visitor_id, ts
        HAVING count(*) > 1 AND (min(mask) <> max(mask) OR max(mask) & (max(mask) - 1) <> 0)
    ),
    one AS (SELECT * FROM h WHERE NOT EXISTS (
        SELECT 1 FROM tied t WHERE t.visitor_id = h.visitor_id)),
    c1 AS (SELECT visitor_id, ts, ts AS c FROM one WHERE starts),
    {", ".join(steps)},
    ends AS ({ends}),
    deep AS (SELECT visitor_id, max(k) AS d FROM ends GROUP BY visitor_id){firsts}
    SELECT e.visitor_id, e.ts, e.event_id, e.mask, e.starts, {value} AS value,
           NULL AS first_value, NULL AS depth, NULL AS users
    FROM h e JOIN tied t ON t.visitor_id = e.visitor_id
    UNION ALL
    SELECT NULL, NULL, NULL, NULL, NULL, value, first_value, d, count(*)
    FROM ({counted}) AS z GROUP BY value, first_value, d
    ORDER BY 1, 2, 3"""
    return Query(sql, p.values)


def bucket_index(interval: Interval, day: str) -> str:
    """SQL: the number of the day, week or month that holds ``day`` (a date), counted
    from 1970; the one before it is one less (reports/product.py, ``index_of``)."""
    if interval is Interval.WEEK:  # 1970-01-05 is a Monday
        return f"CAST((CAST(date_trunc('week', {day}) AS DATE) - DATE '1970-01-05') / 7 AS INTEGER)"
    if interval is Interval.MONTH:
        return f"CAST(extract(year FROM {day}) * 12 + extract(month FROM {day}) - 1 AS INTEGER)"
    return f"({day} - DATE '1970-01-01')"


def build_lifecycle(site_id: str, interval: Interval, zone: str, days: str, p: Params) -> Query:
    """Per bucket (``bucket_index``) and kind: the users active in it that are new (their
    first event ever is in it), returning (active in the bucket before) or resurrecting
    (neither); and, in the bucket after each user's active one when they are not active
    in it, the dormant ones."""
    first = bucket_index(interval, f"CAST(f.ts AT TIME ZONE {p.add(zone)} AS DATE)")
    sql = f"""
    WITH a AS ({days}),
    b AS (SELECT DISTINCT visitor_id, {bucket_index(interval, "day")} AS idx FROM a),
    l AS (
        SELECT visitor_id, idx, lag(idx) OVER w AS prev, lead(idx) OVER w AS next FROM b
        WINDOW w AS (PARTITION BY visitor_id ORDER BY idx)
    )
    SELECT l.idx, CASE WHEN {first} = l.idx THEN 'new'
                       WHEN l.prev = l.idx - 1 THEN 'returning'
                       ELSE 'resurrecting' END AS kind, count(*)
    FROM l JOIN user_first f ON f.site_id = {p.add(site_id)} AND f.visitor_id = l.visitor_id
    GROUP BY 1, 2
    UNION ALL
    SELECT idx + 1, 'dormant', count(*) FROM l WHERE next IS NULL OR next <> idx + 1 GROUP BY 1"""
    return Query(sql, p.values)


def build_stickiness(interval: Interval, days: str, p: Params) -> Query:
    """Per number of active days (or weeks): how many users had that many."""
    sql = f"""
    WITH a AS ({days})
    SELECT n, count(*) FROM (
        SELECT visitor_id, count(DISTINCT {bucket_index(interval, "day")}) AS n FROM a
        GROUP BY visitor_id
    ) AS u GROUP BY n"""
    return Query(sql, p.values)
