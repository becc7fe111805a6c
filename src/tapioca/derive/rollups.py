"""Rollups of the web reports, recomputed for the (site, UTC hour) pairs marked dirty.

The derive job marks the hours of new events and of every session it deletes or inserts
(derive/sessions.py), then, in the same transaction:

- ``rollup_hour``: per site, UTC hour and event dimension value, events, pageviews and
  the exact visitors of that hour, recomputed from ``event``;
- ``rollup_session_hour``: per site, UTC hour of the session start and session dimension
  value, the additive session figures and the hour's exact visitors, from ``session``;
- ``rollup_day``: per site, day in the site's time zone and dimension value, the day's
  exact visitors, their sketch (kit/sketch.py) and the day's additive figures (those of
  the hourly tables), for every day that holds a dirty hour;
- ``rollup_week``: the union of those sketches per week (Monday to Sunday, site zone).

Events are read up to the seq the run saves (an event stored later, beyond a chunk or
committed while the run works, is left to the run that marks its hour): once a run
commits, every hour's rows hold exactly the events up to the saved seq, and so do the
rows of every day with no hour left in ``rollup_dirty_day`` (/stats adds the events
after that seq, reports/queries/stats.py). Each is replaced, never added to, so a re-run
changes nothing, and ``tapioca derive rebuild`` (recompute from events) must give the
same rows as the incremental path. The SQL is the dialect PostgreSQL and DuckDB share.
"""

from __future__ import annotations

import hashlib
from typing import Any

from tapioca.derive.runner import Step, Transform
from tapioca.derive.sessions import mark_dirty
from tapioca.kit.sketch import HASH_SQL, Sketch, hashes_from_hex
from tapioca.model.dimensions import EVENT_DIMENSIONS, SESSION_DIMENSIONS, TOTAL
from tapioca.model.figures import EVENT_FIGURES, FIGURES, SESSION_FIGURES, Figure, Source
from tapioca.storage.base import Rows

TABLES = ["rollup_hour", "rollup_session_hour", "rollup_day", "rollup_week", "rollup_sketch",
          "rollup_dirty", "rollup_dirty_day", "rollup_redo"]  # fmt: skip


_HOURS_PENDING = "EXISTS (SELECT 1 FROM rollup_dirty)"
_DAYS_PENDING = "EXISTS (SELECT 1 FROM rollup_dirty_day)"
DAYS_PENDING_SQL = f"SELECT {_DAYS_PENDING}"


def pending_sql(days: bool) -> str:
    """True when marked work is left without new events."""
    return f"SELECT {_HOURS_PENDING} OR {_DAYS_PENDING}" if days else f"SELECT {_HOURS_PENDING}"


_EVENT_COLUMNS = {str(d): col for d, col in EVENT_DIMENSIONS.items()}
_SESSION_COLUMNS = {str(d): col for d, col in SESSION_DIMENSIONS.items()}


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


def _hour_rollup(
    table: str, source: str, ts: str, where: str, args: list[Any], columns: list[str],
    dims: dict[str, str], sums: dict[str, str], targets: str,
) -> list[Step]:  # fmt: skip
    """Replace the dirty hours' rows of ``table``: the rows of ``source`` that start in
    each dirty hour (an index range per hour: OFFSET 0 keeps PostgreSQL from flattening
    the lateral query into a scan of the whole table), aggregated per visitor, then per
    value of each dimension."""
    temp = f"derive_{table}"
    rows = f"""
    CREATE TEMP TABLE {temp} AS
    SELECT x.site_id, d.hour, x.visitor_id, {", ".join(dict.fromkeys(columns))}
    FROM rollup_dirty d CROSS JOIN LATERAL (
        SELECT * FROM {source} WHERE {source}.site_id = d.site_id AND {source}.{ts} >= d.hour
           AND {source}.{ts} < d.hour + INTERVAL '1 hour'{where} OFFSET 0
    ) AS x"""
    insert = f"INSERT INTO {table} ({targets}) " + _per_visitor(temp, dims, sums)
    delete = f"""
    DELETE FROM {table} USING rollup_dirty d
    WHERE {table}.site_id = d.site_id AND {table}.hour = d.hour"""
    return [(delete, []), (rows, args), (insert, []), (f"DROP TABLE {temp}", [])]


def _targets(figures: tuple[Figure, ...]) -> str:
    """The columns an hourly rollup row is inserted with (_per_visitor's order)."""
    return ", ".join(["site_id", "hour", "dim", "value", *(f.hour_column for f in figures),
                      "visitors"])  # fmt: skip


def _event_rollup(upto: int) -> list[Step]:
    return _hour_rollup(
        "rollup_hour", "event", "ts", " AND NOT event.is_bot AND event.seq <= $1", [upto],
        ["event_type", *_EVENT_COLUMNS.values()], _EVENT_COLUMNS,
        {f.name: f.sql for f in EVENT_FIGURES}, _targets(EVENT_FIGURES),
    )  # fmt: skip


def _session_rollup() -> list[Step]:
    return _hour_rollup(
        "rollup_session_hour", "session", "started_at", "", [],
        ["is_bounce", "pageviews", "events", "started_at", "ended_at",
         *_SESSION_COLUMNS.values()],
        _SESSION_COLUMNS, {f.name: f.sql for f in SESSION_FIGURES}, _targets(SESSION_FIGURES),
    )  # fmt: skip


# -- days: exact visitors and sketches --------------------------------------------------
_DAYS = """
CREATE TEMP TABLE derive_days AS
WITH local AS (
    SELECT DISTINCT d.site_id, s.timezone AS tz, CAST(d.hour AT TIME ZONE s.timezone AS DATE) AS day
    FROM rollup_dirty_day d JOIN site s ON s.id = d.site_id
    UNION
    SELECT DISTINCT d.site_id, s.timezone,
           CAST((d.hour + INTERVAL '59 minutes') AT TIME ZONE s.timezone AS DATE)
    FROM rollup_dirty_day d JOIN site s ON s.id = d.site_id
)
SELECT site_id, tz, day,
       CAST(day AS TIMESTAMP) AT TIME ZONE tz AS lo,
       CAST(day + 1 AS TIMESTAMP) AT TIME ZONE tz AS hi, CAST($1 AS BIGINT) AS upto
FROM local ORDER BY day DESC, site_id LIMIT {limit}"""
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
# Days recomputed per run at most (newest first): a backlog (an import, a new zone) is
# worked off over several runs, so no run holds the embedded writer for long.
DAYS_PER_RUN = 4


# The additive figures of a daily row (every figure, model/figures.py): those of events for
# an event dimension, those of the sessions started that day for a session dimension (the
# total, dim '', has both: its session figures are those of any session dimension summed,
# every session holding one value of each).
def _day_figures(source: Source) -> list[str]:
    return [f.sql if f.source is source else "0" for f in FIGURES]


_EVENT_FIGURES = _day_figures(Source.EVENT)
_SESSION_FIGURES = _day_figures(Source.SESSION)
DAY_FIGURES = [f.name for f in FIGURES]
_SESSION_AT = [i for i, f in enumerate(FIGURES) if f.source is Source.SESSION]
_TOTAL_FROM = next(iter(_SESSION_COLUMNS))  # the session dimension the total's figures sum


def _day_rows_sql() -> str:
    """Per dimension value of one day: distinct visitors and their hashes, concatenated,
    and the additive figures. Visitors are grouped first, so no aggregate needs DISTINCT."""
    e_where = "site_id = $1 AND ts >= $2 AND ts < $3 AND NOT is_bot AND seq <= $4"
    s_where = "site_id = $1 AND started_at >= $2 AND started_at < $3"
    branches = [(TOTAL, "CAST(NULL AS VARCHAR)", "", "event", e_where, _EVENT_FIGURES)]
    branches += [(d, f"CAST({c} AS VARCHAR)", f"{c}, ", "event", e_where, _EVENT_FIGURES)
                 for d, c in _EVENT_COLUMNS.items()]  # fmt: skip
    branches += [(d, f"CAST({c} AS VARCHAR)", f"{c}, ", "session", s_where, _SESSION_FIGURES)
                 for d, c in _SESSION_COLUMNS.items()]  # fmt: skip
    union = " UNION ALL ".join(
        f"SELECT '{dim}' AS dim, {value} AS value, visitor_id, "
        + ", ".join(f"{sql} AS f{i}" for i, sql in enumerate(figures))
        + f" FROM {table} WHERE {where} GROUP BY {group}visitor_id"
        for dim, value, group, table, where, figures in branches
    )
    digest = HASH_SQL.format(column="visitor_id")
    sums = ", ".join(f"sum(f{i})" for i in range(len(DAY_FIGURES)))
    return (
        f"SELECT dim, value, count(*), string_agg({digest}, ''), {sums} "
        f"FROM ({union}) AS visitors GROUP BY dim, value"
    )


def sketch_id(kind: str, site_id: str, tz: str, dim: str, value: Any, day: Any, blob: bytes) -> int:
    """The id of the sketch ``blob`` of one daily or weekly row: 63 bits of a BLAKE2 hash
    of the row's key and the sketch, so an id never names other content (readers may
    keep sketches by id) and a rebuild gives the same ids."""
    text = f"{kind}|{site_id}|{tz}|{dim}|{'' if value is None else 'v' + str(value)}|{day}|"
    digest = hashlib.blake2b(text.encode(), digest_size=8)
    digest.update(blob)
    return int.from_bytes(digest.digest(), "big") >> 1


_INSERT_SKETCH = "INSERT INTO rollup_sketch (id, sketch) VALUES ($1, $2)"


_INSERT_DAY = (
    f"INSERT INTO rollup_day (site_id, day, tz, dim, value, visitors, sketch_id, "
    f"{', '.join(DAY_FIGURES)}) VALUES "
    f"({', '.join(f'${i}' for i in range(1, 8 + len(DAY_FIGURES)))})"
)


def _day_sketches(key: tuple[Any, ...], rows: Rows) -> list[tuple[str, Rows]]:
    site_id, tz, day, *_ = key
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
    return [(_INSERT_SKETCH, sketches), (_INSERT_DAY, days)]


def _week_sketches(key: tuple[Any, ...], rows: Rows) -> list[tuple[str, Rows]]:
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
    return [
        (_INSERT_SKETCH, sketches),
        ("INSERT INTO rollup_week (site_id, week, tz, dim, value, visitors, sketch_id) "
         "VALUES ($1, $2, $3, $4, $5, $6, $7)", weeks),
    ]  # fmt: skip


def _clear(table: str, column: str) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """Delete a (site, day or week)'s rows and their sketches."""
    where = f"site_id = $1 AND {column} = $2"
    return (
        (f"DELETE FROM rollup_sketch WHERE id IN (SELECT sketch_id FROM {table} WHERE {where})",
         (0, 2)),
        (f"DELETE FROM {table} WHERE {where}", (0, 2)),
    )  # fmt: skip


def _day_rollup(upto: int) -> list[Step]:
    days = Transform(
        keys_sql="SELECT site_id, tz, day, lo, hi, upto FROM derive_days ORDER BY site_id, day",
        clears=_clear("rollup_day", "day"),
        rows_sql=_day_rows_sql(),
        rows_args=(0, 3, 4, 5),
        compute=_day_sketches,
    )
    weeks = Transform(
        keys_sql="SELECT DISTINCT site_id, tz, CAST(date_trunc('week', day) AS DATE) AS week "
        "FROM derive_days ORDER BY site_id, week",
        clears=_clear("rollup_week", "week"),
        rows_sql="SELECT d.dim, d.value, k.sketch FROM rollup_day d "
        "JOIN rollup_sketch k ON k.id = d.sketch_id WHERE d.site_id = $1 AND d.tz = $2 "
        "AND d.day >= $3 AND d.day < CAST($3 AS DATE) + 7",
        rows_args=(0, 1, 2),
        compute=_week_sketches,
    )
    redone = ("DELETE FROM rollup_redo WHERE NOT EXISTS (SELECT 1 FROM rollup_dirty_day d "
              "WHERE d.site_id = rollup_redo.site_id)")  # fmt: skip
    return [(_DAYS.format(limit=DAYS_PER_RUN), [upto]), days, weeks, (_DAYS_DONE, []),
            (redone, []), ("DROP TABLE derive_days", [])]  # fmt: skip


def rollup_steps(last: int, upto: int, days: bool = True) -> list[Step]:
    """Mark the hours of the new events, recompute every dirty hour, and, when ``days``,
    every day that holds an hour marked since the last time days were done."""
    mark = mark_dirty("FROM event WHERE seq > $1 AND seq <= $2 AND NOT is_bot", "ts")
    steps: list[Step] = [
        (mark, [last, upto]),
        *_event_rollup(upto),
        *_session_rollup(),
        (
            "INSERT INTO rollup_dirty_day (site_id, hour) SELECT site_id, hour FROM rollup_dirty "
            "ON CONFLICT DO NOTHING",
            [],
        ),
        ("DELETE FROM rollup_dirty", []),
    ]
    if days:
        steps += _day_rollup(upto)
    return steps
