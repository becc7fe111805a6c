"""Hourly rollups of the web reports, recomputed for the (site, UTC hour) pairs marked
dirty.

The derive job marks the hours of new events and of every session it deletes or inserts
(derive/sessions.py), then, in the same transaction:

- ``rollup_hour``: per site, UTC hour and event dimension value, events, pageviews and
  the exact visitors of that hour, recomputed from ``event`` (on PostgreSQL, for the
  hours of the new events, on a second connection meanwhile: event_rows_ahead);
- ``rollup_session_hour``: per site, UTC hour of the session start and session dimension
  value, the additive session figures and the hour's exact visitors, from ``session``;

and marks the hours for the daily and weekly rollups (derive/days.py), which may wait.

Events are read up to the seq the run saves (an event stored later, beyond a chunk or
committed while the run works, is left to the run that marks its hour): once a run
commits, every hour's rows hold exactly the events up to the saved seq, and so do the
rows of every day with no hour left in ``rollup_dirty_day`` (/stats adds the events
after that seq, reports/queries/stats.py). Each is replaced, never added to, so a re-run
changes nothing, and ``tapioca derive rebuild`` (recompute from events) must give the
same rows as the incremental path. The SQL is the dialect PostgreSQL and DuckDB share.
"""

from __future__ import annotations

from typing import Any

from tapioca.derive.runner import Step, temp_table
from tapioca.derive.sessions import HOUR, mark_dirty
from tapioca.model.dimensions import EVENT_DIMENSIONS, SESSION_DIMENSIONS
from tapioca.model.figures import EVENT_FIGURES, SESSION_FIGURES, Figure

TABLES = ["rollup_hour", "rollup_session_hour", "rollup_day", "rollup_week", "rollup_sketch",
          "rollup_dirty", "rollup_dirty_day", "rollup_redo"]  # fmt: skip


_HOURS_PENDING = "EXISTS (SELECT 1 FROM rollup_dirty)"
_DAYS_PENDING = "EXISTS (SELECT 1 FROM rollup_dirty_day)"
DAYS_PENDING_SQL = f"SELECT {_DAYS_PENDING}"


def pending_sql(days: bool) -> str:
    """True when marked work is left without new events."""
    return f"SELECT {_HOURS_PENDING} OR {_DAYS_PENDING}" if days else f"SELECT {_HOURS_PENDING}"


EVENT_COLUMNS = {str(d): col for d, col in EVENT_DIMENSIONS.items()}
SESSION_COLUMNS = {str(d): col for d, col in SESSION_DIMENSIONS.items()}


def _per_visitor(source: str, columns: dict[str, str], sums: dict[str, str]) -> str:
    """Per (site, hour, dimension value): ``sums`` and distinct visitors, in two plain
    aggregations (per visitor, then per value) over the rows of ``source``, one branch
    per dimension: hash aggregation, where grouping sets with count(DISTINCT) sort."""
    inner = ", ".join(f"{sql} AS {name}" for name, sql in sums.items())
    outer = ", ".join(f"sum({name})" for name in sums)
    branches = [("", "CAST(NULL AS VARCHAR)", "")] + [
        (dim, f"CAST({col} AS VARCHAR)", f", {col}") for dim, col in columns.items()
    ]
    union = " UNION ALL ".join(
        f"SELECT site_id, hour, '{dim}' AS dim, {value} AS value, visitor_id, {inner} "
        f"FROM {source} GROUP BY site_id, hour{group}, visitor_id"
        for dim, value, group in branches
    )
    return (
        f"SELECT site_id, hour, dim, value, {outer}, count(*) FROM ({union}) AS per_visitor "
        "GROUP BY site_id, hour, dim, value"
    )


# Rows go in by site and hour: a catch-up or a rebuild writes many hours at once, and the
# embedded store skips the stored rows of other hours only when an hour's rows lie together.
IN_ORDER = " ORDER BY site_id, hour"

# The columns of events and of sessions the rollups aggregate (figures and dimensions).
EVENT_ROW = ["event_type", *EVENT_COLUMNS.values()]
SESSION_ROW = ["is_bounce", "pageviews", "events", "started_at", "ended_at",
               *SESSION_COLUMNS.values()]  # fmt: skip


def rows_in_spans(
    temp: str, spans: str, keys: str, source: str, ts: str, bounds: tuple[str, str], where: str,
    columns: list[str],
) -> str:  # fmt: skip
    """A temp table of the rows of ``source`` whose ``ts`` falls in a row (span) of
    ``spans`` (alias d: site_id and ``bounds``), with the span's ``keys`` and the
    ``columns``: an index range per span (OFFSET 0 keeps PostgreSQL from flattening the
    lateral query into a scan of the whole table)."""
    lo, hi = bounds
    return f"""
    CREATE TEMP TABLE {temp} AS
    SELECT {keys}, x.visitor_id, {", ".join(f"x.{c}" for c in dict.fromkeys(columns))}
    FROM {spans} d CROSS JOIN LATERAL (
        SELECT * FROM {source} WHERE {source}.site_id = d.site_id AND {source}.{ts} >= {lo}
           AND {source}.{ts} < {hi}{where} OFFSET 0
    ) AS x"""


def _hour_rows(
    table: str, spans: str, source: str, ts: str, where: str, args: list[Any],
    columns: list[str], dims: dict[str, str], sums: dict[str, str], targets: str,
) -> list[Step]:  # fmt: skip
    """Into ``table``, the rows of the hours of ``spans`` (site_id, hour): the rows of
    ``source`` that start in each, aggregated per visitor, then per value of each
    dimension."""
    temp = f"derive_{table}"
    rows = rows_in_spans(temp, spans, "d.site_id, d.hour", source, ts,
                         ("d.hour", "d.hour + INTERVAL '1 hour'"), where, columns)  # fmt: skip
    insert = f"INSERT INTO {table} ({targets}) " + _per_visitor(temp, dims, sums) + IN_ORDER
    return [(rows, args), (insert, []), (f"DROP TABLE {temp}", [])]


def _replaced(table: str) -> Step:
    """The dirty hours' rows of ``table`` out, for _hour_rows to make again."""
    delete = f"""
    DELETE FROM {table} USING rollup_dirty d
    WHERE {table}.site_id = d.site_id AND {table}.hour = d.hour"""
    return (delete, [])


def _targets(figures: tuple[Figure, ...]) -> str:
    """The columns an hourly rollup row is inserted with (_per_visitor's order)."""
    return ", ".join(["site_id", "hour", "dim", "value", *(f.hour_column for f in figures),
                      "visitors"])  # fmt: skip


def _event_rows(table: str, spans: str, upto: int) -> list[Step]:
    """Into ``table``, rollup_hour's rows of the hours of ``spans``: events up to ``upto``."""
    return _hour_rows(
        table, spans, "event", "ts", " AND NOT event.is_bot AND event.seq <= $1", [upto],
        EVENT_ROW, EVENT_COLUMNS,
        {f.name: f.visitor_sql for f in EVENT_FIGURES}, _targets(EVENT_FIGURES),
    )  # fmt: skip


def _event_rollup(upto: int) -> list[Step]:
    return [_replaced("rollup_hour"), *_event_rows("rollup_hour", "rollup_dirty", upto)]


def _session_rollup() -> list[Step]:
    rows = _hour_rows(
        "rollup_session_hour", "rollup_dirty", "session", "started_at", "", [], SESSION_ROW,
        SESSION_COLUMNS, {f.name: f.visitor_sql for f in SESSION_FIGURES},
        _targets(SESSION_FIGURES),
    )  # fmt: skip
    return [_replaced("rollup_session_hour"), *rows]


# The hourly event rows a run makes on a second connection (runner.Split): committed at
# once, then moved into rollup_hour by the run's own transaction.
AHEAD = "rollup_hour_ahead"
_AHEAD_HOURS = "derive_ahead_hours"


def event_rows_ahead(last: int, upto: int) -> list[Step]:
    """Into AHEAD, the rollup_hour rows of the hours of the new events (runner.Split,
    ``ahead``): made while the run makes its sessions, as _event_rollup makes them. Of
    the hours a run marks, only those hold new events: the sessions' hours hold none, and
    a stored event never changes, so their event rows stay as they are."""
    hours = (f"SELECT DISTINCT site_id, {HOUR.format(ts='ts')} AS hour FROM event "
             "WHERE seq > $1 AND seq <= $2 AND NOT is_bot")  # fmt: skip
    return [
        (f"DELETE FROM {AHEAD}", []),  # a run that failed after making them
        *temp_table(_AHEAD_HOURS, hours, [last, upto]),
        *_event_rows(AHEAD, _AHEAD_HOURS, upto),
        (f"DROP TABLE {_AHEAD_HOURS}", []),
    ]


def merge_ahead(last: int, upto: int) -> list[Step]:
    """In the run's transaction, once event_rows_ahead committed: its rows replace those
    of their hours in rollup_hour (runner.Split, ``merge``)."""
    columns = _targets(EVENT_FIGURES)
    return [
        (
            f"""
    DELETE FROM rollup_hour USING (SELECT DISTINCT site_id, hour FROM {AHEAD}) AS a
    WHERE rollup_hour.site_id = a.site_id AND rollup_hour.hour = a.hour""",
            [],
        ),
        (f"INSERT INTO rollup_hour ({columns}) SELECT {columns} FROM {AHEAD}{IN_ORDER}", []),
        (f"DELETE FROM {AHEAD}", []),
    ]


def rollup_steps(last: int, upto: int, events: bool = True) -> list[Step]:
    """Mark the hours of the new events, recompute every dirty hour, and mark the days
    that hold them for the daily rollups (derive/days.py). ``events`` False: rollup_hour's
    rows are made beside the run (event_rows_ahead, merge_ahead)."""
    mark = mark_dirty("FROM event WHERE seq > $1 AND seq <= $2 AND NOT is_bot", "ts")
    return [
        (mark, [last, upto]),
        *(_event_rollup(upto) if events else []),
        *_session_rollup(),
        (
            "INSERT INTO rollup_dirty_day (site_id, hour) SELECT site_id, hour FROM rollup_dirty "
            "ON CONFLICT DO NOTHING",
            [],
        ),
        ("DELETE FROM rollup_dirty", []),
    ]
