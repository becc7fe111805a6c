"""Sessions, derived incrementally from new events (metrics.md, Sessions; derive.md).

For the events in a new ingest range (seq in (last, upto]):

- events with a client ``session_id`` define their session: every affected session is
  recomputed from all its events;
- the others are cut into sessions per (site, visitor) at gaps longer than 30 minutes:
  for each affected visitor, the stored sessions within 30 minutes of the new events are
  replaced by sessions recomputed from the events they and the new events span. Since
  stored sessions are maximal (separated by more than 30 minutes), nothing outside that
  span can change, so late and shuffled arrivals end exactly as ordered ones.

Sessions are made of events up to ``upto`` only: an event a writer commits while the run
works (seq above it) waits for the run that takes it, so sessions always hold exactly
the events the run's position names (reports count those; reports/scope.py).

A derived session's id is a hash of (site, visitor, first event id): unchanged sessions
keep their id. Bot events are not part of any session. The SQL is the dialect PostgreSQL
and DuckDB share.
"""

from __future__ import annotations

from tapioca.derive.runner import Step, temp_table
from tapioca.model.figures import BY_NAME

_PAGEVIEWS = BY_NAME["pageviews"].sql

GAP = "INTERVAL '30 minutes'"
HOUR = "date_trunc('hour', {ts} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"


def mark_dirty(from_: str, ts: str, site: str = "site_id") -> str:
    """Record the UTC hours ``ts`` of the rows of ``from_`` for the rollups to recompute."""
    return (
        f"INSERT INTO rollup_dirty (site_id, hour) SELECT DISTINCT {site}, "
        f"{HOUR.format(ts=ts)} {from_} ON CONFLICT DO NOTHING"
    )


_FIRST_OF = ("path", "channel", "source", "device", "browser", "os",
             "utm_source", "utm_medium", "utm_campaign")  # fmt: skip


# The columns of an event a session is made of: fewer to sort than the event's all.
_READ = ", ".join(f"e.{c}" for c in ("site_id", "session_id", "visitor_id", "event_id", "ts",
                                     "event_type", *_FIRST_OF))  # fmt: skip


def _session_select(source: str, group: str, session_id: str, client: bool) -> str:
    """Aggregate the events of a CTE named ``source``, per session (``group``), into
    session rows; its column ``starts`` is 1 on a session's first event by (ts, event_id),
    whose values are those of its one row with ``starts`` = 1, so no window is sorted
    again per session."""
    first = "FILTER (WHERE starts = 1)"
    picked = ", ".join(f"min({c}) {first}" for c in _FIRST_OF)
    return f"""
    SELECT site_id, {session_id} AS session_id, min(visitor_id) {first}, min(ts), max(ts),
           count(*), {_PAGEVIEWS}, count(*) = 1 AND {_PAGEVIEWS} = 1,
           {picked}, {str(client).lower()}
    FROM {source}
    GROUP BY {group}"""


_COLUMNS = (
    "site_id, session_id, visitor_id, started_at, ended_at, events, pageviews, is_bounce, "
    "landing_path, channel, source, device, browser, os, utm_source, utm_medium, utm_campaign, "
    "client_defined"
)


def auto_steps(last: int, upto: int) -> list[Step]:
    """Steps for the events without a client session id."""
    bounds = f"""
    WITH touched AS (
        SELECT site_id, visitor_id, min(ts) AS lo, max(ts) AS hi FROM event
        WHERE seq > $1 AND seq <= $2 AND session_id IS NULL AND NOT is_bot
        GROUP BY site_id, visitor_id
    )
    SELECT t.site_id, t.visitor_id,
           least(t.lo, min(s.started_at)) AS lo, greatest(t.hi, max(s.ended_at)) AS hi
    FROM touched t
    LEFT JOIN session s ON s.site_id = t.site_id AND s.visitor_id = t.visitor_id
        AND NOT s.client_defined
        AND s.ended_at >= t.lo - {GAP} AND s.started_at <= t.hi + {GAP}
    GROUP BY t.site_id, t.visitor_id, t.lo, t.hi"""
    replaced = """
    FROM session JOIN derive_bounds b
      ON session.site_id = b.site_id AND session.visitor_id = b.visitor_id
     AND NOT session.client_defined
     AND session.started_at <= b.hi AND session.ended_at >= b.lo"""
    mark: Step = (mark_dirty(replaced, "session.started_at", "session.site_id"), [])
    delete = """
    DELETE FROM session USING derive_bounds b
    WHERE session.site_id = b.site_id AND session.visitor_id = b.visitor_id
      AND NOT session.client_defined
      AND session.started_at <= b.hi AND session.ended_at >= b.lo"""
    numbered = f"""
    WITH marked AS (
        SELECT {_READ}, CASE WHEN lag(e.ts) OVER w IS NULL OR e.ts - lag(e.ts) OVER w > {GAP}
                         THEN 1 ELSE 0 END AS starts
        FROM event e JOIN derive_bounds b
          ON e.site_id = b.site_id AND e.visitor_id = b.visitor_id
         AND e.ts >= b.lo AND e.ts <= b.hi
        WHERE e.session_id IS NULL AND NOT e.is_bot AND e.seq <= $1
        WINDOW w AS (PARTITION BY e.site_id, e.visitor_id ORDER BY e.ts, e.event_id)
    ), numbered AS (
        SELECT *, sum(starts) OVER (PARTITION BY site_id, visitor_id ORDER BY ts, event_id
                                    ROWS UNBOUNDED PRECEDING) AS n
        FROM marked
    )"""
    first_id = "min(event_id) FILTER (WHERE starts = 1)"
    session_id = f"'a-' || md5(site_id || '|' || visitor_id || '|' || {first_id})"
    insert = f"INSERT INTO session ({_COLUMNS}) {numbered}" + _session_select(
        "numbered", "site_id, visitor_id, n", session_id, client=False
    )
    return [*temp_table(BOUNDS, bounds, [last, upto]), mark, (delete, []), (insert, [upto]), mark]


def client_steps(last: int, upto: int) -> list[Step]:
    """Steps for the events whose client sent a session id."""
    keys = """
    SELECT DISTINCT site_id, session_id FROM event
    WHERE seq > $1 AND seq <= $2 AND session_id IS NOT NULL AND NOT is_bot"""
    mark: Step = (mark_dirty("FROM session JOIN derive_keys k ON session.site_id = k.site_id "
                       "AND session.session_id = k.session_id", "session.started_at",
                       "session.site_id"), [])  # fmt: skip
    delete = """
    DELETE FROM session USING derive_keys k
    WHERE session.site_id = k.site_id AND session.session_id = k.session_id"""
    marked = f"""
    WITH marked AS (
        SELECT {_READ}, CASE WHEN row_number() OVER (PARTITION BY e.site_id, e.session_id
                             ORDER BY e.ts, e.event_id) = 1 THEN 1 ELSE 0 END AS starts
        FROM event e JOIN derive_keys k
          ON e.site_id = k.site_id AND e.session_id = k.session_id
        WHERE NOT e.is_bot AND e.seq <= $1
    )"""
    insert = f"INSERT INTO session ({_COLUMNS}) {marked}" + _session_select(
        "marked", "site_id, session_id", "session_id", client=True
    )
    return [*temp_table(KEYS, keys, [last, upto]), mark, (delete, []), (insert, [upto]), mark]


# What the steps leave for the steps after them (derive/commerce.py): the span of every
# (site, visitor) whose derived sessions were replaced, and every client session redone.
BOUNDS, KEYS = "derive_bounds", "derive_keys"


def session_steps(last: int, upto: int) -> list[Step]:
    """Replace the sessions the new events touch; ``BOUNDS`` and ``KEYS`` stay until
    ``session_cleanup``."""
    return auto_steps(last, upto) + client_steps(last, upto)


def session_cleanup() -> list[Step]:
    return [(f"DROP TABLE {BOUNDS}", []), (f"DROP TABLE {KEYS}", [])]
