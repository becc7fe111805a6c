"""The stored event row shared by both stores' writers, made from the event's table
(model/event.py): its columns in the table's order, and their kinds."""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Sequence
from operator import itemgetter
from typing import TYPE_CHECKING, Any, TypeVar

from tapioca.model.event import COLUMNS, FIELDS, Kind

# One stored event: a named tuple of the table's columns. Times are aware datetimes or, as
# the worker makes them, integers: microseconds since 1970-01-01 UTC (both stores' writers
# take either); money is a Decimal; properties and items are JSON text.
if TYPE_CHECKING:  # the type checker sees a tuple whose every column is an attribute

    class EventRow(tuple[Any, ...]):
        _fields: tuple[str, ...]

        def __new__(cls, *values: Any, **columns: Any) -> EventRow: ...
        def __getattr__(self, column: str) -> Any: ...
        def _replace(self, **columns: Any) -> EventRow: ...
        def _asdict(self) -> dict[str, Any]: ...

else:
    EventRow = namedtuple("EventRow", COLUMNS)
Row = tuple[Any, ...]  # an EventRow, as annotations name it
COLUMN_KINDS: tuple[Kind, ...] = tuple(field.kind for field in FIELDS)
_SITE, _EVENT = COLUMNS.index("site_id"), COLUMNS.index("event_id")
_EVENT_ID = itemgetter(_EVENT)


R = TypeVar("R", bound=Row)


def in_key_order(rows: Sequence[R]) -> list[R]:
    """``rows`` sorted by their unique key (site_id, event_id), stably: of the rows of one
    key the first stays first.

    Writers that insert in this one order never deadlock each other: a writer waits only
    for another's uncommitted row of a key it has reached, and a cycle of waits would need
    two of them to reach two keys in opposite orders. Python compares strings by code
    point, as PostgreSQL's "C" collation of the key columns does (UTF-8 bytes).

    Grouped by site, each site's rows sorted by event id: strings sort three times as
    fast as (site, event) tuples, and a batch seldom holds more than a few sites."""
    by_site: dict[str, list[R]] = {}
    for row in rows:
        group = by_site.get(row[_SITE])
        if group is None:
            by_site[row[_SITE]] = [row]
        else:
            group.append(row)
    ordered: list[R] = []
    for site in sorted(by_site):
        group = by_site[site]
        group.sort(key=_EVENT_ID)
        ordered += group
    return ordered


def dedupe(rows: Sequence[R]) -> list[R]:
    """Keep the first row per (site_id, event_id) within one batch."""
    seen: set[tuple[str, str]] = set()
    unique = []
    for row in rows:
        key = (row[_SITE], row[_EVENT])
        if key not in seen:
            seen.add(key)
            unique.append(row)
    return unique


def site_ids(rows: Sequence[Row]) -> list[str]:
    """The sites of ``rows``, sorted."""
    return sorted({row[_SITE] for row in rows})


# Sites that do not exist yet, made in one statement on either store from one array of
# ids (site_ids: sorted, so writers that make sites take their rows in one order).
INSERT_SITES = "INSERT INTO site (id) SELECT unnest($1::text[]) ON CONFLICT (id) DO NOTHING"
