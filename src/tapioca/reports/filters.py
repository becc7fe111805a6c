"""Report filters: ``filters=dim==value;dim2==value2`` (metrics.md; api.md)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from tapioca.errors import ErrorDetail, validation_error


class Dimension(StrEnum):
    PATH = "path"
    PAGE_TYPE = "page_type"
    LANDING_PAGE = "landing_page"
    EVENT_TYPE = "event_type"
    REFERRER = "referrer"
    CHANNEL = "channel"
    SOURCE = "source"
    DEVICE = "device"
    BROWSER = "browser"
    OS = "os"
    UTM_SOURCE = "utm_source"
    UTM_MEDIUM = "utm_medium"
    UTM_CAMPAIGN = "utm_campaign"
    UTM_TERM = "utm_term"
    UTM_CONTENT = "utm_content"
    COUNTRY = "country"


# Dimensions of a session (its first event's values): they count sessions.
SESSION_DIMENSIONS = {
    Dimension.LANDING_PAGE: "landing_path",
    Dimension.CHANNEL: "channel",
    Dimension.SOURCE: "source",
    Dimension.DEVICE: "device",
    Dimension.BROWSER: "browser",
    Dimension.OS: "os",
    Dimension.UTM_SOURCE: "utm_source",
    Dimension.UTM_MEDIUM: "utm_medium",
    Dimension.UTM_CAMPAIGN: "utm_campaign",
}
# Dimensions of single events.
EVENT_DIMENSIONS = {
    Dimension.PATH: "path",
    Dimension.PAGE_TYPE: "page_type",
    Dimension.EVENT_TYPE: "event_type",
    Dimension.REFERRER: "referrer",
    Dimension.UTM_TERM: "utm_term",
    Dimension.UTM_CONTENT: "utm_content",
}
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
