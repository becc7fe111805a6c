"""The stored event row shared by both stores' writers, made from the event's table
(model/event.py): its columns in the table's order, and their kinds."""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Sequence
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


R = TypeVar("R", bound=Row)


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
