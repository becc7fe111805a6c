"""The product analytics state, kept incrementally from new events (metrics.md, Product
metrics; derive.md):

- ``user_first``: each user's first event ever on a site, by time then event id, with
  its channel, device and campaign. The first new event of each user replaces the stored
  one only when it is earlier, so the row is the first of every event seen so far in
  whatever order they arrived, and a range run again changes nothing;
- ``user_day``: the days, in the site's time zone, on which each user had an event: a
  set, so new events only add to it.

Bot events make nothing. The SQL is the dialect PostgreSQL and DuckDB share.
"""

from __future__ import annotations

from tapioca.derive.runner import Step

TABLES = ["user_first", "user_day"]

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

# A site whose zone changed has lost its rows (sites/service.py): the daily job writes
# those of each day it redoes from that day's events, read in the new zone.
REDO_DAYS = """
INSERT INTO user_day (site_id, day, visitor_id)
SELECT DISTINCT site_id, day, visitor_id FROM {events}
WHERE site_id IN (SELECT site_id FROM rollup_redo)
ON CONFLICT DO NOTHING"""


def product_steps(last: int, upto: int) -> list[Step]:
    """Steps for the new events' first-seen rows and active days."""
    return [(_FIRST, [last, upto]), (_DAYS, [last, upto])]
