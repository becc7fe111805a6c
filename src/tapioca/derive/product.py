"""The product analytics state, kept incrementally from new events (metrics.md, Product
metrics; derive.md):

- ``user_first``: each user's first event ever on a site, by time then event id, with
  its channel, device and campaign. The first new event of each user replaces the stored
  one only when it is earlier, so the row is the first of every event seen so far in
  whatever order they arrived, and a range run again changes nothing;
- ``user_day``: the days, in the site's time zone, on which each user had an event: a
  set, so new events only add to it; each with the gap to the user's next active day,
  redone for every user with new events, and ``active_gap`` the count of users per
  (day, gap), moved by the same run (-1 for a row's old gap, +1 for its new one);
- ``cohort_period``: per cohort (the day or week of users' first events) and period
  (a day or week), the users of the cohort active in it; each run counts the pairs of
  the users it touches before and after its changes and moves the counts by the
  difference; ``lifecycle_period`` likewise, per period and kind (new, returning,
  resurrecting, dormant).

Bot events make nothing. The SQL is the dialect PostgreSQL and DuckDB share.
"""

from __future__ import annotations

from tapioca.derive.runner import Step, temp_table
from tapioca.model.derived import LONGEST_WINDOW as LONGEST

TABLES = ["user_first", "user_day", "active_gap", "cohort_period", "lifecycle_period"]

_FIRST_COLUMNS = "ts, event_id, channel, device, utm_source, utm_medium, utm_campaign"
_NEW = "seq > $1 AND seq <= $2 AND NOT is_bot"

_FIRST = f"""
INSERT INTO user_first (site_id, visitor_id, {_FIRST_COLUMNS})
SELECT site_id, visitor_id, {_FIRST_COLUMNS} FROM (
    SELECT site_id, visitor_id, {_FIRST_COLUMNS},
           row_number() OVER (PARTITION BY site_id, visitor_id ORDER BY ts, event_id) AS n
    FROM event WHERE {_NEW}
) AS f WHERE n = 1
ON CONFLICT (site_id, visitor_id) DO UPDATE SET
    {", ".join(f"{c} = excluded.{c}" for c in _FIRST_COLUMNS.split(", "))}
WHERE excluded.ts < user_first.ts
   OR (excluded.ts = user_first.ts AND excluded.event_id < user_first.event_id)"""

_DAYS = """
INSERT INTO user_day (site_id, day, visitor_id)
SELECT DISTINCT e.site_id, CAST(e.ts AT TIME ZONE s.timezone AS DATE), e.visitor_id
FROM event e JOIN site s ON s.id = e.site_id
WHERE e.seq > $1 AND e.seq <= $2 AND NOT e.is_bot
ON CONFLICT DO NOTHING"""

_REDONE = (
    "SELECT DISTINCT site_id, {what} FROM {events} "
    "WHERE site_id IN (SELECT site_id FROM rollup_redo)"
)


_USERS = "derive_product_users"
# The gaps of every active day of the users in _USERS whose gap is not (yet) right.
_GAPS = f"""
SELECT site_id, day, visitor_id, gap AS old, new FROM (
    SELECT u.site_id, u.day, u.visitor_id, u.gap,
           least(coalesce(lead(u.day) OVER (PARTITION BY u.site_id, u.visitor_id ORDER BY u.day)
                          - u.day, {LONGEST}), {LONGEST}) AS new
    FROM user_day u JOIN {_USERS} p ON p.site_id = u.site_id AND p.visitor_id = u.visitor_id
) AS g WHERE gap IS DISTINCT FROM new"""
# ... moved in the counts per (site, day, gap): -1 for the old gap, +1 for the new one.
_COUNTS = """
INSERT INTO active_gap (site_id, day, gap, users)
SELECT site_id, day, gap, sum(n) FROM (
    SELECT site_id, day, old AS gap, -1 AS n FROM derive_gaps WHERE old IS NOT NULL
    UNION ALL SELECT site_id, day, new, 1 FROM derive_gaps
) AS d GROUP BY site_id, day, gap
ON CONFLICT (site_id, day, gap) DO UPDATE SET users = active_gap.users + excluded.users"""
_SET_GAPS = """
UPDATE user_day SET gap = g.new FROM derive_gaps g
WHERE user_day.site_id = g.site_id AND user_day.day = g.day
  AND user_day.visitor_id = g.visitor_id"""


# The active days of the users in _USERS, each with the local day (the site's zone) of
# the user's first event ever: one join, read by every count below (a temp table).
_ACTIVE = "derive_active_days"
_ACTIVE_DAYS = f"""
SELECT u.site_id, u.visitor_id, u.day, CAST(f.ts AT TIME ZONE s.timezone AS DATE) AS first_day
FROM user_day u
JOIN {_USERS} p ON p.site_id = u.site_id AND p.visitor_id = u.visitor_id
JOIN user_first f ON f.site_id = u.site_id AND f.visitor_id = u.visitor_id
JOIN site s ON s.id = u.site_id"""

# The (cohort, period) pairs of those users, counted: a user's cohort is the day or week
# of their first event ever, a period each day or week they were active (unit 'd' or 'w').
_PERIODS = f"""
SELECT site_id, unit, cohort, period, count(DISTINCT visitor_id) AS users FROM (
    SELECT a.site_id, a.visitor_id, {{unit}} AS unit, {{cohort}} AS cohort, {{period}} AS period
    FROM {_ACTIVE} a
) AS c GROUP BY site_id, unit, cohort, period"""
_UNITS = {
    "d": ("a.first_day", "a.day"),
    "w": ("CAST(date_trunc('week', a.first_day) AS DATE)",
          "CAST(date_trunc('week', a.day) AS DATE)"),
}  # fmt: skip
_COHORTS = " UNION ALL ".join(
    _PERIODS.format(unit=f"'{unit}'", cohort=cohort, period=period)
    for unit, (cohort, period) in _UNITS.items()
)


def _moved(table: str, keys: str, after: str, before: str) -> str:
    """Move the counts of ``table`` (by ``keys``, a column ``users``) by what this run
    changed: the counts of temp table ``after`` less those of ``before``."""
    return f"""
    INSERT INTO {table} ({keys}, users)
    SELECT {keys}, sum(n) FROM (
        SELECT {keys}, users AS n FROM {after}
        UNION ALL SELECT {keys}, -users FROM {before}
    ) AS d GROUP BY {keys} HAVING sum(n) <> 0
    ON CONFLICT ({keys}) DO UPDATE SET users = {table}.users + excluded.users"""


_MOVE = _moved("cohort_period", "site_id, unit, cohort, period", "derive_periods_after",
               "derive_periods_before")  # fmt: skip


# The lifecycle of the users in _USERS, counted per (unit, period, kind): each period
# (day 'd', week 'w', month 'm' in the site's zone) a user is active in is 'new' (their
# first event is in it), 'returning' (active in the one before) or 'resurrecting'; the
# period after one they are active in, when they are not active in it, 'dormant'.
_STEP = {"d": "INTERVAL '1 day'", "w": "INTERVAL '7 days'", "m": "INTERVAL '1 month'"}
_TRUNC = {"d": "{day}", "w": "CAST(date_trunc('week', {day}) AS DATE)",
          "m": "CAST(date_trunc('month', {day}) AS DATE)"}  # fmt: skip
_LIFE = """
SELECT * FROM (
    WITH b AS ({periods})
    SELECT site_id, unit, period, kind, count(*) AS users FROM (
        SELECT site_id, unit, period,
               CASE WHEN period = first_period THEN 'new'
                    WHEN prev = CAST(period - step AS DATE) THEN 'returning'
                    ELSE 'resurrecting' END AS kind
        FROM b
        UNION ALL
        SELECT site_id, unit, CAST(period + step AS DATE), 'dormant' FROM b
        WHERE next IS NULL OR next <> CAST(period + step AS DATE)
    ) AS k GROUP BY site_id, unit, period, kind
) AS l"""
_LIFE_PERIODS = f"""
SELECT site_id, '{{unit}}' AS unit, period, first_period, {{step}} AS step,
       lag(period) OVER w AS prev, lead(period) OVER w AS next
FROM (
    SELECT DISTINCT a.site_id, a.visitor_id, {{period}} AS period, {{first}} AS first_period
    FROM {_ACTIVE} a
) AS x
WINDOW w AS (PARTITION BY site_id, visitor_id ORDER BY period)"""
_LIFECYCLE = " UNION ALL ".join(
    _LIFE.format(periods=_LIFE_PERIODS.format(
        unit=unit, step=_STEP[unit], period=_TRUNC[unit].format(day="a.day"),
        first=_TRUNC[unit].format(day="a.first_day")))
    for unit in _STEP
)  # fmt: skip
_MOVE_LIFE = _moved("lifecycle_period", "site_id, unit, period, kind", "derive_life_after",
                    "derive_life_before")  # fmt: skip


def _kept(users: str, args: list[int], changes: list[Step]) -> list[Step]:
    """``changes`` to the first events and active days of the users of ``users`` (a
    SELECT of site_id, visitor_id), with what is kept of those users around them: the
    counts of their cohorts' periods and the gaps between their active days."""
    return [
        *temp_table(_USERS, users, args),
        *temp_table(_ACTIVE, _ACTIVE_DAYS, []),
        *temp_table("derive_periods_before", _COHORTS, []),
        *temp_table("derive_life_before", _LIFECYCLE, []),
        (f"DROP TABLE {_ACTIVE}", []),
        *changes,
        *temp_table(_ACTIVE, _ACTIVE_DAYS, []),
        *temp_table("derive_periods_after", _COHORTS, []),
        *temp_table("derive_life_after", _LIFECYCLE, []),
        (_MOVE, []),
        (_MOVE_LIFE, []),
        *temp_table("derive_gaps", _GAPS, []),
        (_COUNTS, []),
        (_SET_GAPS, []),
        *((f"DROP TABLE {t}", []) for t in (_USERS, _ACTIVE, "derive_periods_before",
                                             "derive_periods_after", "derive_life_before",
                                             "derive_life_after", "derive_gaps")),
    ]  # fmt: skip


def redo_steps(events: str) -> list[Step]:
    """A site whose zone changed has lost its rows (sites/service.py): the daily job
    writes those of each day it redoes from that day's events (``events``: a temp table of
    site_id, day and visitor_id, read in the new zone), with what is kept around them."""
    rows = _REDONE.format(what="day, visitor_id", events=events)
    insert = f"INSERT INTO user_day (site_id, day, visitor_id) {rows} ON CONFLICT DO NOTHING"
    return _kept(_REDONE.format(what="visitor_id", events=events), [], [(insert, [])])


def product_steps(last: int, upto: int) -> list[Step]:
    """Steps for the new events' first-seen rows and active days, with what is kept
    around them."""
    users = f"SELECT DISTINCT site_id, visitor_id FROM event WHERE {_NEW}"
    return _kept(users, [last, upto], [(_FIRST, [last, upto]), (_DAYS, [last, upto])])
