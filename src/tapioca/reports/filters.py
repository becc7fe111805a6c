"""Report filters: ``filters=dim==value;dim2==value2`` (metrics.md; api.md)."""

from __future__ import annotations

from dataclasses import dataclass

from tapioca.errors import ErrorDetail, validation_error
from tapioca.model.dimensions import SESSION_DIMENSIONS, Dimension

FILTERABLE = {d.value for d in Dimension} - {"landing_page", "referrer", "country"}


@dataclass(frozen=True, slots=True)
class Filter:
    dimension: Dimension
    value: str

    @property
    def on_session(self) -> bool:
        return self.dimension in SESSION_DIMENSIONS


_NAME = "|".join(sorted(FILTERABLE))
# What parse_filters takes, as /openapi.json states it (values: at most 2048 characters).
FILTERS_PATTERN = rf"^(?:(?:{_NAME})==[^;]*(?:;(?:{_NAME})==[^;]*){{0,19}})?$"


def parse_filters(text: str | None) -> list[Filter]:
    """``path==/a;channel==Direct`` → filters; every problem is a 422 naming ``filters``."""
    if not text:
        return []
    filters = []
    for part in text.split(";"):
        name, sep, value = part.partition("==")
        if not sep or not name:
            raise _bad(f"'{part}' is not dimension==value")
        if name not in FILTERABLE:
            raise _bad(f"'{name}' cannot be filtered; use one of {', '.join(sorted(FILTERABLE))}")
        if len(value) > 2048:
            raise _bad("a filter value is longer than 2048 characters")
        filters.append(Filter(Dimension(name), value))
    if len(filters) > 20:
        raise _bad("at most 20 filters")
    return filters


def _bad(message: str) -> Exception:
    return validation_error([ErrorDetail("filters", message)], "Invalid parameter 'filters'.")
