"""Daily and weekly rollups of the web reports, recomputed for the site-days that hold a
marked hour (``rollup_dirty_day``; derive/rollups.py marks them):

- ``rollup_day``: per site, day in the site's time zone and dimension value, the day's
  exact visitors, their sketch (kit/sketch.py) and the day's additive figures (those of
  the hourly tables);
- ``rollup_week``: the union of those sketches per week (Monday to Sunday, site zone).

A run takes the marked site-days newest first, as many as its budget holds: each costs
its events (read from the hourly rollups, current by then) plus DAY_COST for its rows,
and at least one is taken, however large. All of them are recomputed together, in a
fixed number of statements: a flood of new sites or a backfill of months is worked off
in a few runs. Events are read up to the seq the run saves; rows are replaced, never
added to (derive/rollups.py says why that keeps them exact under concurrent ingest).
The SQL is the dialect PostgreSQL and DuckDB share.
"""

from __future__ import annotations

import hashlib
from typing import Any

from tapioca.derive.product import redo_steps
from tapioca.derive.rollups import (
    EVENT_COLUMNS,
    EVENT_ROW,
    SESSION_COLUMNS,
    SESSION_ROW,
    rows_in_spans,
)
from tapioca.derive.runner import BulkInsert, Step, Transform, temp_table
from tapioca.kit.sketch import HASH_SQL, Sketch, hashes_from_hex
from tapioca.model.dimensions import TOTAL
from tapioca.model.figures import FIGURES, Source
from tapioca.storage.base import Rows

# What a site-day costs beside its events, in events: its rows, sketches and weekly share
# (about 20 to 40 of each for a small site). A thousand one-event site-days cost as much as
# one day of 200,000 events.
DAY_COST = 200

# The marked site-days this run recomputes: newest first, while the cost of those before
# stays within the budget ($1).
_DAYS = f"""
WITH local AS (
    SELECT DISTINCT d.site_id, s.timezone AS tz, CAST(d.hour AT TIME ZONE s.timezone AS DATE) AS day
    FROM rollup_dirty_day d JOIN site s ON s.id = d.site_id
    UNION
    SELECT DISTINCT d.site_id, s.timezone,
           CAST((d.hour + INTERVAL '59 minutes') AT TIME ZONE s.timezone AS DATE)
    FROM rollup_dirty_day d JOIN site s ON s.id = d.site_id
), spans AS (
    SELECT site_id, tz, day, CAST(day AS TIMESTAMP) AT TIME ZONE tz AS lo,
           CAST(day + 1 AS TIMESTAMP) AT TIME ZONE tz AS hi
    FROM local
), costs AS (
    SELECT p.site_id, p.tz, p.day, p.lo, p.hi, {DAY_COST} + coalesce(sum(h.events), 0) AS cost
    FROM spans p LEFT JOIN rollup_hour h
      ON h.site_id = p.site_id AND h.dim = '' AND h.hour >= p.lo AND h.hour < p.hi
    GROUP BY p.site_id, p.tz, p.day, p.lo, p.hi
), running AS (
    SELECT *, CAST(sum(cost) OVER (ORDER BY day DESC, site_id ROWS UNBOUNDED PRECEDING)
                   - cost AS BIGINT) AS spent_before
    FROM costs
)
SELECT site_id, tz, day, lo, hi FROM running WHERE spent_before < CAST($1 AS BIGINT)"""
# The dirty hours whose local dates (one, or two in a zone with a half-hour offset) were
# all recomputed in this run; the others wait for the next.
_DAYS_DONE = """
DELETE FROM rollup_dirty_day USING site s
WHERE s.id = rollup_dirty_day.site_id
  AND EXISTS (SELECT 1 FROM derive_days dd WHERE dd.site_id = rollup_dirty_day.site_id
              AND dd.day = CAST(rollup_dirty_day.hour AT TIME ZONE s.timezone AS DATE))
  AND EXISTS (SELECT 1 FROM derive_days dd WHERE dd.site_id = rollup_dirty_day.site_id
              AND dd.day = CAST((rollup_dirty_day.hour + INTERVAL '59 minutes')
                                AT TIME ZONE s.timezone AS DATE))"""
_REDONE = """
DELETE FROM rollup_redo WHERE NOT EXISTS (SELECT 1 FROM rollup_dirty_day d
                                          WHERE d.site_id = rollup_redo.site_id)"""
_WEEKS = """
SELECT DISTINCT site_id, tz, CAST(date_trunc('week', day) AS DATE) AS week FROM derive_days"""
# The day sketches of every week touched, this run's days among them.
_WEEK_ROWS = """
SELECT w.site_id, w.tz, w.week, d.dim, d.value, k.sketch
FROM derive_weeks w
JOIN rollup_day d ON d.site_id = w.site_id AND d.tz = w.tz AND d.day >= w.week
                 AND d.day < w.week + 7
JOIN rollup_sketch k ON k.id = d.sketch_id"""
_TEMPS = ("derive_day_event", "derive_day_session", "derive_weeks", "derive_days")


# The additive figures of a daily row (every figure, model/figures.py): those of events for
# an event dimension, those of the sessions started that day for a session dimension (the
# total, dim '', has both: its session figures are those of any session dimension summed,
# every session holding one value of each).
def _day_figures(source: Source) -> list[str]:
    return [f.visitor_sql if f.source is source else "0" for f in FIGURES]


_EVENT_FIGURES = _day_figures(Source.EVENT)
_SESSION_FIGURES = _day_figures(Source.SESSION)
DAY_FIGURES = [f.name for f in FIGURES]
_SESSION_AT = [i for i, f in enumerate(FIGURES) if f.source is Source.SESSION]
_TOTAL_FROM = next(iter(SESSION_COLUMNS))  # the session dimension the total's figures sum
_DAY_KEY = "site_id, tz, day"


def _day_rows_sql() -> str:
    """Per site-day and dimension value: distinct visitors and their hashes, concatenated,
    and the additive figures, from the rows of the days (temp tables). Visitors are
    grouped first, so no aggregate needs DISTINCT."""
    events, sessions = "derive_day_event", "derive_day_session"
    branches = [(TOTAL, "CAST(NULL AS VARCHAR)", "", events, _EVENT_FIGURES)]
    branches += [(d, f"CAST({c} AS VARCHAR)", f"{c}, ", events, _EVENT_FIGURES)
                 for d, c in EVENT_COLUMNS.items()]  # fmt: skip
    branches += [(d, f"CAST({c} AS VARCHAR)", f"{c}, ", sessions, _SESSION_FIGURES)
                 for d, c in SESSION_COLUMNS.items()]  # fmt: skip
    union = " UNION ALL ".join(
        f"SELECT {_DAY_KEY}, '{dim}' AS dim, {value} AS value, visitor_id, "
        + ", ".join(f"{sql} AS f{i}" for i, sql in enumerate(figures))
        + f" FROM {table} GROUP BY {_DAY_KEY}, {group}visitor_id"
        for dim, value, group, table, figures in branches
    )
    digest = HASH_SQL.format(column="visitor_id")
    sums = ", ".join(f"sum(f{i})" for i in range(len(DAY_FIGURES)))
    return (
        f"SELECT {_DAY_KEY}, dim, value, count(*), string_agg({digest}, ''), {sums} "
        f"FROM ({union}) AS visitors GROUP BY {_DAY_KEY}, dim, value ORDER BY {_DAY_KEY}"
    )


def sketch_id(kind: str, site_id: str, tz: str, dim: str, value: Any, day: Any, blob: bytes) -> int:
    """The id of the sketch ``blob`` of one daily or weekly row: 63 bits of a BLAKE2 hash
    of the row's key and the sketch, so an id never names other content (readers may
    keep sketches by id) and a rebuild gives the same ids."""
    text = f"{kind}|{site_id}|{tz}|{dim}|{'' if value is None else 'v' + str(value)}|{day}|"
    digest = hashlib.blake2b(text.encode(), digest_size=8)
    digest.update(blob)
    return int.from_bytes(digest.digest(), "big") >> 1


_KEY = (("site_id", "text"), ("{period}", "date"), ("tz", "text"), ("dim", "text"),
        ("value", "text"), ("visitors", "bigint"), ("sketch_id", "bigint"))  # fmt: skip
_SKETCHES = BulkInsert("rollup_sketch", (("id", "bigint"), ("sketch", "bytea")))
_ROLLUP_DAY = BulkInsert(
    "rollup_day",
    tuple((n.format(period="day"), t) for n, t in _KEY)
    + tuple((f.name, "bigint" if f.integral else "double precision") for f in FIGURES),
)
_ROLLUP_WEEK = BulkInsert("rollup_week", tuple((n.format(period="week"), t) for n, t in _KEY))


def _day_sketches(key: tuple[Any, ...], rows: Rows) -> list[tuple[BulkInsert, Rows]]:
    site_id, tz, day = key
    totals = [0.0] * len(FIGURES)  # the session figures of the total
    for dim, _, _, _, *figures in rows:
        if dim == _TOTAL_FROM:
            for i in _SESSION_AT:
                totals[i] += float(figures[i] or 0)
    days, sketches = [], []
    for dim, value, visitors, digests, *figures in rows:
        text = digests or ""
        sketch = Sketch.of(hashes_from_hex([text]))
        blob = sketch.to_bytes()
        ident = sketch_id("day", site_id, tz, dim, value, day, blob)
        counts = [float(f or 0) for f in figures]
        if dim == TOTAL:
            for i in _SESSION_AT:
                counts[i] = totals[i]
        kept = [int(c) if f.integral else c for f, c in zip(FIGURES, counts, strict=True)]
        days.append((site_id, day, tz, dim, value, int(visitors), ident, *kept))
        sketches.append((ident, blob))
    return [(_SKETCHES, sketches), (_ROLLUP_DAY, days)]


def _week_sketches(key: tuple[Any, ...], rows: Rows) -> list[tuple[BulkInsert, Rows]]:
    site_id, tz, week = key
    parts: dict[tuple[str, Any], list[bytes]] = {}
    for dim, value, blob in rows:
        parts.setdefault((dim, value), []).append(bytes(blob))
    weeks, sketches = [], []
    for (dim, value), blobs in parts.items():
        sketch = Sketch.union_bytes(blobs)
        blob = sketch.to_bytes()
        ident = sketch_id("week", site_id, tz, dim, value, week, blob)
        weeks.append((site_id, week, tz, dim, value, sketch.count(), ident))
        sketches.append((ident, blob))
    return [(_SKETCHES, sketches), (_ROLLUP_WEEK, weeks)]


def _clear(table: str, column: str, spans: str) -> list[Step]:
    """Delete the rows of every (site, day or week) of ``spans``, and their sketches."""
    return [
        (f"DELETE FROM rollup_sketch WHERE id IN (SELECT r.sketch_id FROM {table} r "
         f"JOIN {spans} p ON r.site_id = p.site_id AND r.{column} = p.{column})", []),
        (f"DELETE FROM {table} USING {spans} p "
         f"WHERE {table}.site_id = p.site_id AND {table}.{column} = p.{column}", []),
    ]  # fmt: skip


def day_steps(upto: int, budget: int) -> list[Step]:
    """Recompute the newest marked site-days that fit in ``budget`` (events), and the
    weeks that hold them, from the events up to ``upto``."""
    keys, bounds = "d.site_id, d.tz, d.day", ("d.lo", "d.hi")
    event_rows = rows_in_spans("derive_day_event", "derive_days", keys, "event", "ts", bounds,
                               " AND NOT event.is_bot AND event.seq <= $1", EVENT_ROW)  # fmt: skip
    session_rows = rows_in_spans("derive_day_session", "derive_days", keys, "session",
                                 "started_at", bounds, "", SESSION_ROW)  # fmt: skip
    return [
        *temp_table("derive_days", _DAYS, [budget]), (event_rows, [upto]), (session_rows, []),
        *redo_steps("derive_day_event"),
        *_clear("rollup_day", "day", "derive_days"),
        Transform(_day_rows_sql(), (), 3, _day_sketches),
        *temp_table("derive_weeks", _WEEKS, []),
        *_clear("rollup_week", "week", "derive_weeks"),
        Transform(_WEEK_ROWS, (), 3, _week_sketches),
        (_DAYS_DONE, []), (_REDONE, []),
        *[(f"DROP TABLE {temp}", []) for temp in _TEMPS],
    ]  # fmt: skip
